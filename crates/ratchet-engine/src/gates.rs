//! Gates: the careful sequence of a migration (expanded → backfilled → validated → reads
//! switched → soaked → no old clients → complete), where a migration stands in it, and
//! the refusals of `complete` (and of raising a read flag) that keep a team from skipping
//! a step. Each refusal names the reason and the command that would satisfy it.

use serde::Serialize;
use serde_json::json;
use tokio_postgres::Client;

use crate::config::GateConfig;
use crate::error::{EngineError, Gate, Refusal};
use crate::plan::{Action, Phase};
use crate::state::flags::sessions_using;
use crate::state::{ClientRow, FlagSetting, MigrationRow, State};

/// One stage of the sequence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// `expanded`, `backfilled`, `validated`, `reads switched`, `soaked`,
    /// `no old clients`, `complete`.
    pub name: &'static str,
    pub state: StageState,
    /// What stands: `2 of 3 start steps`, `10%`, `3h 12m left`, …
    pub detail: String,
    /// The command (or the wait) that moves this stage on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(skip)]
    gate: Option<Gate>,
    /// `complete --force` may pass it (never the backfill or the validation).
    #[serde(skip)]
    forcible: bool,
    /// The validation passed but the tables were written since it began.
    #[serde(skip)]
    stale: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    Done,
    Pending,
    /// Does not apply to this migration (no backfill, no read flag, no soak time).
    Skipped,
}

/// Where a migration stands, and the next command to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sequence {
    pub stages: Vec<Stage>,
    pub next: String,
}

/// How an application instance's version relates to a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientVersion {
    /// The migration's version or a newer one.
    Current,
    /// A version older than the migration: its `complete` would break the instance.
    Old,
    /// The base tables (`version` = the schema's own name) without a version schema:
    /// what the next contract changes, so it counts as old.
    BaseTables,
    /// A version of another schema that shares the state schema.
    OtherSchema,
    /// A version ratchet does not know: treated as old.
    Unknown,
}

/// One application instance, its version judged against the active (or latest) migration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    #[serde(flatten)]
    pub row: ClientRow,
    /// The migration its version names, if any.
    pub migration: Option<String>,
    pub judged: ClientVersion,
    /// Silent longer than the client timeout.
    pub gone: bool,
}

/// `ratchet clients`: the instances and the live sessions per version schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clients {
    /// The migration the instances are judged against.
    pub migration: Option<String>,
    pub client_timeout_s: f64,
    pub instances: Vec<Instance>,
    /// Sessions using each live version schema right now (a lock on one of its views,
    /// or its name in `pg_stat_activity`: see `sessions_using`).
    pub sessions: Vec<VersionSessions>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionSessions {
    pub version_schema: String,
    pub migration: String,
    pub sessions: i64,
}

fn stage(name: &'static str, state: StageState, detail: impl Into<String>) -> Stage {
    Stage {
        name,
        state,
        detail: detail.into(),
        next: None,
        gate: None,
        forcible: false,
        stale: false,
    }
}

impl Stage {
    fn pending(mut self, gate: Gate, next: impl Into<String>, forcible: bool) -> Stage {
        self.state = StageState::Pending;
        self.gate = Some(gate);
        self.next = Some(next.into());
        self.forcible = forcible;
        self
    }
}

fn has_backfill(m: &MigrationRow) -> bool {
    m.plan
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::Backfill(_)))
}

/// The qualified tables `m` backfills.
pub(crate) fn backfilled_tables(m: &MigrationRow) -> Vec<String> {
    m.plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Backfill(b) => Some(crate::sql::qualified(&b.schema, &b.table)),
            _ => None,
        })
        .collect()
}

/// `3h 12m`, `45s`.
pub fn human(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Judge every heartbeat against migration `m` of `state.schema`.
pub async fn clients(
    state: &State,
    client: &Client,
    m: Option<&MigrationRow>,
    timeout: std::time::Duration,
) -> Result<Clients, EngineError> {
    let versions = state.versions(client).await?;
    let rows = state.clients(client).await?;
    let instances = rows
        .into_iter()
        .map(|row| {
            let named = versions
                .iter()
                .rev()
                .filter(|(_, _, name, vs)| *vs == row.version || *name == row.version)
                .max_by_key(|(schema, ..)| *schema == state.schema);
            let (judged, migration) = match named {
                Some((schema, ..)) if *schema != state.schema => (ClientVersion::OtherSchema, None),
                Some((_, id, name, _)) => (
                    match m {
                        Some(m) if *id < m.id => ClientVersion::Old,
                        _ => ClientVersion::Current,
                    },
                    Some(name.clone()),
                ),
                None if row.version == state.schema => (ClientVersion::BaseTables, None),
                None => (ClientVersion::Unknown, None),
            };
            Instance {
                gone: row.seen_s > timeout.as_secs_f64(),
                row,
                migration,
                judged,
            }
        })
        .collect();
    let mut sessions = Vec::new();
    for (schema, _, name, vs) in versions.iter().filter(|v| v.0 == state.schema) {
        debug_assert_eq!(schema, &state.schema);
        let n = sessions_using(client, vs).await?;
        if n > 0 || m.is_some_and(|m| m.plan.previous_version_schema.as_deref() == Some(vs)) {
            sessions.push(VersionSessions {
                version_schema: vs.clone(),
                migration: name.clone(),
                sessions: n,
            });
        }
    }
    Ok(Clients {
        migration: m.map(|m| m.name.clone()),
        client_timeout_s: timeout.as_secs_f64(),
        instances,
        sessions,
    })
}

/// Where the active migration `m` stands in the sequence.
pub async fn sequence(
    state: &State,
    client: &Client,
    m: &MigrationRow,
    gates: &GateConfig,
) -> Result<Sequence, EngineError> {
    let mut stages = Vec::new();
    let done = state.done_steps(client, m.id).await?;
    let start: Vec<usize> = m.plan.steps_of(Phase::Start).map(|(i, _)| i).collect();
    let start_done = start
        .iter()
        .filter(|i| done.contains(&(**i as i32)))
        .count();
    let expanded = stage(
        "expanded",
        StageState::Done,
        format!("{start_done} of {} start steps", start.len()),
    );
    stages.push(if start_done < start.len() {
        expanded.pending(
            Gate::BackfillUnfinished,
            "ratchet backfill (or `ratchet start` with its file again)",
            false,
        )
    } else {
        expanded
    });

    let backfills = has_backfill(m);
    if backfills {
        let unfinished = state.unfinished_backfills(client, m.id).await?;
        let s = stage("backfilled", StageState::Done, "every backfill finished");
        stages.push(if unfinished > 0 {
            stage(
                "backfilled",
                StageState::Pending,
                format!("{unfinished} unfinished"),
            )
            .pending(Gate::BackfillUnfinished, "ratchet backfill", false)
        } else {
            s
        });
        let v = state.latest_validation_writes(client, m.id).await?;
        stages.push(match v {
            None => stage("validated", StageState::Pending, "not validated").pending(
                Gate::NotValidated,
                "ratchet validate",
                false,
            ),
            Some((false, _)) => stage(
                "validated",
                StageState::Pending,
                "the latest validation failed",
            )
            .pending(Gate::ValidationFailed, "ratchet validate --repair", false),
            Some((true, writes)) => {
                let stale = match writes {
                    Some(w) => {
                        crate::state::flags::write_count(client, &backfilled_tables(m)).await? != w
                    }
                    None => true,
                };
                Stage {
                    stale,
                    ..stage(
                        "validated",
                        StageState::Done,
                        if stale {
                            "passed; written since, so `complete` validates again first"
                        } else {
                            "passed"
                        },
                    )
                }
            }
        });
    } else {
        stages.push(stage(
            "backfilled",
            StageState::Skipped,
            "nothing to backfill",
        ));
        stages.push(stage(
            "validated",
            StageState::Skipped,
            "nothing to validate",
        ));
    }

    let flags: Vec<_> = state
        .flags(client)
        .await?
        .into_iter()
        .filter(|f| f.gates_complete && f.migration.as_deref() == Some(m.name.as_str()))
        .collect();
    match flags.iter().min_by_key(|f| f.setting.percent()) {
        None => stages.push(stage("reads switched", StageState::Skipped, "no read flag")),
        Some(low) if low.setting == FlagSetting::On => stages.push(stage(
            "reads switched",
            StageState::Done,
            format!("{} flag(s) on", flags.len()),
        )),
        Some(low) => {
            let next = if low.setting == FlagSetting::Off {
                format!("ratchet flags set {} 10%", low.name)
            } else {
                format!("ratchet flags set {} on", low.name)
            };
            stages.push(
                stage(
                    "reads switched",
                    StageState::Pending,
                    format!("{} is {}", low.name, low.setting),
                )
                .pending(Gate::FlagNotOn, next, true),
            );
        }
    }

    let soak = gates.min_soak.as_secs_f64();
    if soak == 0.0 {
        stages.push(stage(
            "soaked",
            StageState::Skipped,
            "no soak time (min_soak = 0)",
        ));
    } else {
        let for_s = state.expanded_for(client, m.id).await?.unwrap_or(0.0);
        let s = stage(
            "soaked",
            StageState::Done,
            format!("expanded for {} (min_soak {})", human(for_s), human(soak)),
        );
        stages.push(if start_done < start.len() || for_s < soak {
            let left = human(soak - for_s);
            s.pending(
                Gate::SoakNotElapsed,
                format!("wait {left} (min_soak in [gates] of ratchet.toml)"),
                true,
            )
        } else {
            s
        });
    }

    let fleet = clients(state, client, Some(m), gates.client_timeout).await?;
    let old: Vec<&Instance> = fleet
        .instances
        .iter()
        .filter(|i| {
            !i.gone
                && matches!(
                    i.judged,
                    ClientVersion::Old | ClientVersion::Unknown | ClientVersion::BaseTables
                )
        })
        .collect();
    let old_sessions: i64 = fleet
        .sessions
        .iter()
        .filter(|s| m.plan.previous_version_schema.as_deref() == Some(s.version_schema.as_str()))
        .map(|s| s.sessions)
        .sum();
    if old.is_empty() && old_sessions == 0 {
        stages.push(stage(
            "no old clients",
            StageState::Done,
            format!(
                "{} live instance(s), none on an older version",
                fleet.instances.iter().filter(|i| !i.gone).count()
            ),
        ));
    } else {
        let mut what: Vec<String> = old
            .iter()
            .take(5)
            .map(|i| {
                format!(
                    "{}/{} on `{}` ({}, seen {} ago)",
                    i.row.app,
                    i.row.instance,
                    i.row.version,
                    match i.judged {
                        ClientVersion::Unknown => "unknown version",
                        ClientVersion::BaseTables => "the tables without a version schema",
                        _ => "older version",
                    },
                    human(i.row.seen_s)
                )
            })
            .collect();
        if old.len() > 5 {
            what.push(format!("{} more", old.len() - 5));
        }
        if old_sessions > 0 {
            what.push(format!(
                "{old_sessions} session(s) using `{}` right now",
                m.plan
                    .previous_version_schema
                    .as_deref()
                    .unwrap_or_default()
            ));
        }
        stages.push(
            stage("no old clients", StageState::Pending, what.join("; ")).pending(
                Gate::OldClients,
                format!(
                    "move them to `{}` or stop them; an instance silent for {} counts as gone (`ratchet clients`)",
                    m.version_schema,
                    human(gates.client_timeout.as_secs_f64())
                ),
                true,
            ),
        );
    }
    let next = stages
        .iter()
        .find_map(|s| s.next.clone())
        .unwrap_or_else(|| "ratchet complete".to_string());
    stages.push(Stage {
        next: Some("ratchet complete".into()),
        ..stage(
            "complete",
            StageState::Pending,
            "the contract: drops the old structure",
        )
    });
    Ok(Sequence { stages, next })
}

/// What `complete` may pass over.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompleteOptions {
    /// Complete without a passed validation (loud, in the event log).
    pub skip_validation: bool,
    /// Complete although reads are not switched, the soak time has not elapsed or old
    /// clients are still seen (loud, in the event log). Never passes an unfinished
    /// backfill.
    pub force: bool,
    /// The caller completes right after the start (`start --complete`, `migrate`): no
    /// application could follow the expanded version, so the read flags and the soak
    /// time do not apply; old clients still do.
    pub at_once: bool,
}

/// What [`before_complete`] found: whether the validation must run again first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleared {
    pub revalidate: bool,
}

/// Refuse `complete` of `m` unless every stage before it is done (see [`sequence`]),
/// with the first pending stage's reason and command. Returns whether the validation
/// is stale (the tables were written since it began): `complete` validates again.
pub async fn before_complete(
    state: &State,
    client: &Client,
    m: &MigrationRow,
    gates: &GateConfig,
    opts: CompleteOptions,
) -> Result<Cleared, EngineError> {
    let seq = sequence(state, client, m, gates).await?;
    let mut forced = Vec::new();
    let mut revalidate = false;
    for s in &seq.stages {
        revalidate |= s.stale;
        let Some(gate) = s.gate else {
            continue;
        };
        let validation = matches!(gate, Gate::NotValidated | Gate::ValidationFailed);
        if validation && opts.skip_validation {
            state
                .event(
                    client,
                    Some(&m.name),
                    "validation_skipped",
                    json!({"warning": "complete ran with --skip-validation", "detail": s.detail}),
                )
                .await?;
            continue;
        }
        if opts.at_once && matches!(gate, Gate::FlagNotOn | Gate::SoakNotElapsed) {
            continue;
        }
        if s.forcible && opts.force {
            forced.push(json!({"stage": s.name, "detail": s.detail}));
            continue;
        }
        let next = s.next.as_deref().unwrap_or("ratchet status");
        let hint = if s.forcible {
            " (`ratchet complete --force` overrides this, recorded in the event log)"
        } else {
            ""
        };
        return Err(EngineError::refused(
            Refusal::Gate(gate),
            format!(
                "`{}` cannot be completed: {}: {}; next: {next}{hint}",
                m.name, s.name, s.detail
            ),
        ));
    }
    if !forced.is_empty() {
        state
            .event(
                client,
                Some(&m.name),
                "gates_forced",
                json!({"warning": "complete ran with --force", "passed_over": forced}),
            )
            .await?;
    }
    Ok(Cleared { revalidate })
}
