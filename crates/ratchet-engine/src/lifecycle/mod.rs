//! The commands of a migration's life: plan, start, complete, abort, migrate, status.
//!
//! Each is safe to run twice: a second `start` of the same file resumes (or does nothing),
//! a second `complete` or `abort` finds nothing active and does nothing.

use ratchet_spec::Migration;
use serde::Serialize;
use serde_json::json;

mod backfill;
mod control;
mod engine;
mod flags;
mod watch;

use crate::catalog;
use crate::error::{EngineError, Gate, Refusal};
pub use crate::gates::CompleteOptions;
pub use engine::Engine;
pub use flags::{read_flag, FlagChanged};
pub use watch::LiveView;

use crate::plan::{Action, Phase, Plan};
use crate::planner::{self, PlanInput};
use crate::report::Event;
use crate::state::{MigrationPhase, MigrationRow};

/// What `start` did.
#[derive(Debug, Clone, Serialize)]
pub struct StartOutcome {
    pub migration: String,
    pub version_schema: String,
    /// The migration was already completed earlier: nothing was done.
    pub already_completed: bool,
    /// A previous, interrupted `start` of the same file was resumed.
    pub resumed: bool,
    /// `complete` dropped this previous version schema: applications still on it with
    /// `search_path = <it>, public` now fall through to the base tables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped_version_schema: Option<String>,
    /// `--no-backfill`: the backfill and the start steps after it (the version schema's
    /// views among them) are left for `ratchet backfill`; the new version cannot be used
    /// before that, since its columns are not filled yet.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub backfill_left: bool,
}

/// `ratchet status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub schema: String,
    /// The version schema applications should use now: the newest one that exists and
    /// whose views are built. A deploy step may hand it to the new application as is.
    pub version_schema: Option<String>,
    /// The active migration's version schema while it is not usable yet (its `start`
    /// stopped or is still running before the views step).
    pub pending_version_schema: Option<String>,
    pub active: Option<ActiveStatus>,
    pub history: Vec<HistoryEntry>,
    /// The freeze standing now (`ratchet freeze`): who, when, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze: Option<crate::state::Freeze>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActiveStatus {
    pub name: String,
    pub phase: MigrationPhase,
    pub version_schema: String,
    pub steps: Vec<StepStatus>,
    /// The plan's warnings (e.g. a NOT NULL column only `up` fills: new-version inserts
    /// that omit it fail after `complete`), repeated while the migration is active.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Where the team is in the careful sequence, and the next command.
    pub sequence: crate::gates::Sequence,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepStatus {
    pub index: usize,
    pub phase: Phase,
    pub description: String,
    pub done: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub name: String,
    pub phase: MigrationPhase,
    pub version_schema: String,
    pub done: bool,
}

/// What `migrate` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateOutcome {
    pub applied: Vec<String>,
    pub left_active: Option<String>,
    pub version_schema: Option<String>,
}

impl Engine {
    /// The version schema of the newest completed migration, if its schema still exists.
    async fn previous_version_schema(
        &self,
        cat: &catalog::Catalog,
    ) -> Result<Option<String>, EngineError> {
        let history = self.state.history(&self.client).await?;
        Ok(history
            .iter()
            .rev()
            .find(|m| m.phase == MigrationPhase::Completed)
            .map(|m| m.version_schema.clone())
            .filter(|vs| cat.schemas.contains(vs)))
    }

    /// Plan `m` against the live catalog; reads the catalog only.
    pub async fn plan(&self, m: &Migration) -> Result<Plan, EngineError> {
        static_checks(m)?;
        let cat = catalog::load(&self.client, &self.config.schema).await?;
        let previous = self.previous_version_schema(&cat).await?;
        planner::plan(&PlanInput {
            migration: m,
            catalog: &cat,
            previous_version_schema: previous,
            completes_at_once: self.config.completes_at_once,
        })
    }

    /// Expand phase of `m`: run (or resume) its start steps.
    pub async fn start(&mut self, m: &Migration) -> Result<StartOutcome, EngineError> {
        let history = self.state.history(&self.client).await?;
        if !history
            .iter()
            .any(|h| h.name == m.name && h.phase == MigrationPhase::Completed)
        {
            self.refuse_if_frozen("start").await?;
        }
        if let Some(active) = history.iter().find(|h| h.is_active()) {
            return self.resume_start(active, m).await;
        }
        if let Some(done) = history.iter().find(|h| h.name == m.name) {
            check_checksum(done, m)?;
            return Ok(StartOutcome {
                migration: m.name.clone(),
                version_schema: done.version_schema.clone(),
                already_completed: true,
                resumed: false,
                dropped_version_schema: None,
                backfill_left: false,
            });
        }
        self.start_new(m).await
    }

    /// `start` while migration `active` is active: resume it when it is `m` and the file is
    /// unchanged; refuse otherwise (or restart a changed file none of whose steps ran).
    async fn resume_start(
        &mut self,
        active: &MigrationRow,
        m: &Migration,
    ) -> Result<StartOutcome, EngineError> {
        if active.name != m.name {
            return Err(EngineError::refused(
                Refusal::AnotherMigrationActive,
                format!(
                "migration `{}` is still active (phase: {}); run `ratchet complete` or `ratchet abort` first",
                active.name, active.phase
            )));
        }
        if !checksum_matches(active, m) {
            let done = self.state.done_steps(&self.client, active.id).await?;
            if active.phase != MigrationPhase::Started || !done.is_empty() {
                return Err(changed_file(active, m, true));
            }
            // Nothing of the old file ran (issue 9: a typo at step 0): undo its
            // traces (the abort steps are idempotent) and start the fixed file.
            self.report(Event::Info(format!(
                "no step of {} ran with the previous file; starting the changed one",
                m.name
            )));
            self.abort().await?;
            return Box::pin(self.start(m)).await;
        }
        if active.phase != MigrationPhase::Started {
            return Err(EngineError::refused(
                Refusal::WrongPhase,
                format!(
                    "migration `{}` is {}; finish that with `ratchet {}`",
                    active.name,
                    active.phase,
                    if active.phase == MigrationPhase::Completing {
                        "complete"
                    } else {
                        "abort"
                    }
                ),
            ));
        }
        let active = active.clone();
        self.create_flags(&active, m).await?;
        self.report(Event::Info(format!("resuming the start of {}", m.name)));
        self.run_phase(&active, Phase::Start).await?;
        let backfill_left = self.start_unfinished(&active).await? > 0;
        Ok(StartOutcome {
            migration: m.name.clone(),
            version_schema: active.version_schema.clone(),
            already_completed: false,
            resumed: true,
            dropped_version_schema: None,
            backfill_left,
        })
    }

    /// `start` of a migration that never ran: plan, record, run the start steps.
    async fn start_new(&mut self, m: &Migration) -> Result<StartOutcome, EngineError> {
        let plan = self.plan(m).await?;
        for w in &plan.warnings {
            self.report(Event::Info(format!("warning: {w}")));
        }
        let cat = catalog::load(&self.client, &self.config.schema).await?;
        if cat.schemas.contains(&plan.version_schema) {
            return Err(EngineError::refused(
                Refusal::SchemaExists,
                format!(
                    "schema `{}` already exists and is not a version schema of an active migration",
                    plan.version_schema
                ),
            ));
        }
        self.check_flags_free(&plan, m).await?;
        let file = serde_json::to_value(m.file()).unwrap_or_default();
        let row = self
            .state
            .insert(&self.client, &m.name, &m.checksum, &plan, &file)
            .await?;
        self.state
            .event(
                &self.client,
                Some(&m.name),
                "start",
                json!({"checksum": m.checksum, "raw_checksum": m.raw_checksum}),
            )
            .await?;
        self.create_flags(&row, m).await?;
        self.run_phase(&row, Phase::Start).await?;
        let backfill_left = self.start_unfinished(&row).await? > 0;
        self.state
            .event(
                &self.client,
                Some(&m.name),
                "started",
                json!({"version_schema": plan.version_schema}),
            )
            .await?;
        Ok(StartOutcome {
            migration: m.name.clone(),
            version_schema: plan.version_schema,
            already_completed: false,
            resumed: false,
            dropped_version_schema: None,
            backfill_left,
        })
    }

    /// How many start steps of `m` have not run yet.
    async fn start_unfinished(&self, m: &MigrationRow) -> Result<usize, EngineError> {
        let done = self.state.done_steps(&self.client, m.id).await?;
        Ok(m.plan
            .steps_of(Phase::Start)
            .filter(|(i, _)| !done.contains(&(*i as i32)))
            .count())
    }

    /// Contract phase of the active migration. `Ok(None)` when nothing is active.
    pub async fn complete(&mut self) -> Result<Option<StartOutcome>, EngineError> {
        self.complete_with(CompleteOptions::default()).await
    }

    /// Validate (when the migration backfilled anything and has no passed validation yet),
    /// then complete: what `migrate` and `start --complete` do.
    pub async fn validate_and_complete(&mut self) -> Result<Option<StartOutcome>, EngineError> {
        if let Some(v) = self.validate(false).await? {
            if !v.passed {
                return Err(EngineError::refused(
                    Refusal::Gate(Gate::ValidationFailed),
                    format!(
                    "validation found {} mismatching row(s) (first: {}); run `ratchet validate --repair`",
                    v.mismatches,
                    v.samples.first().map(|s| s.to_string()).unwrap_or_default()
                )));
            }
        }
        self.complete_with(CompleteOptions {
            at_once: true,
            ..CompleteOptions::default()
        })
        .await
    }

    /// Complete, refused unless every gate passes (see [`crate::gates::before_complete`]);
    /// `opts` may pass over some of them, loudly and in the event log.
    pub async fn complete_with(
        &mut self,
        opts: CompleteOptions,
    ) -> Result<Option<StartOutcome>, EngineError> {
        let Some(active) = self.state.active(&self.client).await? else {
            return Ok(None);
        };
        if active.phase == MigrationPhase::Started {
            self.refuse_if_frozen("complete").await?;
        }
        if active.phase == MigrationPhase::Aborting {
            return Err(EngineError::refused(
                Refusal::WrongPhase,
                format!(
                    "migration `{}` is being aborted; run `ratchet abort` to finish that",
                    active.name
                ),
            ));
        }
        let unfinished = self.start_unfinished(&active).await?;
        if unfinished > 0 {
            return Err(EngineError::refused(
                Refusal::StartUnfinished,
                format!(
                "the start of `{}` has {unfinished} unfinished step(s); run `ratchet backfill` (or `ratchet start` with its file again) first",
                active.name
            )));
        }
        if active.phase == MigrationPhase::Started {
            let cleared = crate::gates::before_complete(
                &self.state,
                &self.client,
                &active,
                &self.config.gates,
                opts,
            )
            .await?;
            if cleared.revalidate && !opts.skip_validation {
                self.report(Event::Info(format!(
                    "the tables of {} were written since the last validation began: validating again before the contract",
                    active.name
                )));
                if let Some(v) = self.validate(false).await? {
                    if !v.passed {
                        return Err(EngineError::refused(
                            Refusal::Gate(Gate::ValidationFailed),
                            format!(
                                "validation before the contract found {} mismatching row(s) (first: {}); run `ratchet validate --repair`, then complete",
                                v.mismatches,
                                v.samples.first().map(|s| s.to_string()).unwrap_or_default()
                            ),
                        ));
                    }
                }
            }
        }
        self.state
            .set_phase(&self.client, active.id, MigrationPhase::Completing)
            .await?;
        self.state
            .event(&self.client, Some(&active.name), "complete", json!({}))
            .await?;
        self.run_phase(&active, Phase::Complete).await?;
        self.state
            .set_phase(&self.client, active.id, MigrationPhase::Completed)
            .await?;
        self.state
            .event(&self.client, Some(&active.name), "completed", json!({}))
            .await?;
        Ok(Some(StartOutcome {
            migration: active.name.clone(),
            version_schema: active.version_schema.clone(),
            already_completed: false,
            resumed: false,
            dropped_version_schema: active.plan.previous_version_schema.clone(),
            backfill_left: false,
        }))
    }

    /// Undo the expand of the active migration. `Ok(None)` when nothing is active.
    pub async fn abort(&mut self) -> Result<Option<String>, EngineError> {
        let Some(active) = self.state.active(&self.client).await? else {
            return Ok(None);
        };
        if active.phase == MigrationPhase::Completing {
            return Err(EngineError::refused(
                Refusal::WrongPhase,
                format!(
                    "`ratchet complete` of `{}` has begun and may have dropped old structures; \
                 it cannot be aborted. Run `ratchet complete` to finish it, then fix forward \
                 with a new migration",
                    active.name
                ),
            ));
        }
        self.state
            .set_phase(&self.client, active.id, MigrationPhase::Aborting)
            .await?;
        self.state
            .event(&self.client, Some(&active.name), "abort", json!({}))
            .await?;
        self.run_phase(&active, Phase::Abort).await?;
        self.state.delete_flags(&self.client, &active.name).await?;
        self.state
            .set_phase(&self.client, active.id, MigrationPhase::Aborted)
            .await?;
        self.state
            .event(&self.client, Some(&active.name), "aborted", json!({}))
            .await?;
        Ok(Some(active.name))
    }

    /// Apply every migration of `local` not applied yet, in order. Each is started and
    /// completed, except the last, which is completed only when `complete_last`.
    pub async fn migrate(
        &mut self,
        local: &[Migration],
        complete_last: bool,
    ) -> Result<MigrateOutcome, EngineError> {
        let history = self.state.history(&self.client).await?;
        // Something left to start: refused while frozen (what is half done, a contract or
        // an abort, may still be finished; `start` and `complete` check again).
        if history.len() < local.len() {
            self.refuse_if_frozen("migrate").await?;
        }
        for (i, h) in history.iter().enumerate() {
            let Some(m) = local.get(i) else {
                return Err(EngineError::refused(
                    Refusal::OrderMismatch,
                    format!(
                    "the database has applied `{}`, which is not in the folder (it has {} migration(s)); \
                     use the folder the database was migrated from",
                    h.name,
                    local.len()
                )));
            };
            if m.name != h.name {
                return Err(EngineError::refused(
                    Refusal::OrderMismatch,
                    format!(
                    "the folder's migration #{} is `{}` but the database applied `{}` at that position; \
                     migrations must be applied in the same order everywhere",
                    i + 1,
                    m.name,
                    h.name
                )));
            }
            check_checksum(h, m)?;
        }
        let mut out = MigrateOutcome::default();
        // A run killed half-way through a contract or an abort: finish that first (both
        // resume where they stopped), then go on as if it had not been interrupted.
        let interrupted = history.iter().find(|h| {
            matches!(
                h.phase,
                MigrationPhase::Completing | MigrationPhase::Aborting
            )
        });
        let history = match interrupted {
            Some(h) => {
                self.report(Event::Info(format!(
                    "finishing the interrupted {} of {}",
                    if h.phase == MigrationPhase::Completing {
                        "complete"
                    } else {
                        "abort"
                    },
                    h.name
                )));
                if h.phase == MigrationPhase::Completing {
                    self.complete_with(CompleteOptions::default()).await?;
                    out.applied.push(h.name.clone());
                } else {
                    self.abort().await?;
                }
                self.state.history(&self.client).await?
            }
            None => history,
        };
        let first_new = history.iter().filter(|h| !h.is_active()).count();
        for (i, m) in local.iter().enumerate().skip(first_new) {
            let last = i + 1 == local.len();
            let at_once =
                std::mem::replace(&mut self.config.completes_at_once, !last || complete_last);
            let started = self.start(m).await;
            self.config.completes_at_once = at_once;
            let started = started?;
            out.version_schema = Some(started.version_schema.clone());
            if last && !complete_last {
                out.left_active = Some(m.name.clone());
                break;
            }
            self.validate_and_complete().await?;
            out.applied.push(m.name.clone());
        }
        Ok(out)
    }

    /// The active migration, the version schema to use, and the history.
    pub async fn status(&self) -> Result<Status, EngineError> {
        let history = self.state.history(&self.client).await?;
        let active = match history.iter().find(|h| h.is_active()) {
            Some(a) => {
                let done = self.state.done_steps(&self.client, a.id).await?;
                let mut warnings = a.plan.warnings.clone();
                for (_, column, n) in
                    crate::views::omission_counts(&self.client, &a.version_schema).await?
                {
                    if n > 0 {
                        warnings.push(format!(
                            "{n} insert(s) through {} left out `{column}`: they work now (`up` fills it) and fail after `complete`; make the new application write it",
                            a.version_schema
                        ));
                    }
                }
                Some(ActiveStatus {
                    sequence: crate::gates::sequence(
                        &self.state,
                        &self.client,
                        a,
                        &self.config.gates,
                    )
                    .await?,
                    name: a.name.clone(),
                    phase: a.phase,
                    version_schema: a.version_schema.clone(),
                    warnings,
                    steps: a
                        .plan
                        .steps
                        .iter()
                        .enumerate()
                        .map(|(i, s)| StepStatus {
                            index: i,
                            phase: s.phase,
                            description: s.description.clone(),
                            done: done.contains(&(i as i32)),
                        })
                        .collect(),
                })
            }
            None => None,
        };
        let (version_schema, pending_version_schema) = self.usable_version_schema(&history).await?;
        Ok(Status {
            schema: self.config.schema.clone(),
            version_schema,
            pending_version_schema,
            active,
            freeze: self.state.freeze(&self.client).await?,
            history: history
                .iter()
                .map(|h| HistoryEntry {
                    name: h.name.clone(),
                    phase: h.phase,
                    version_schema: h.version_schema.clone(),
                    done: h.phase == MigrationPhase::Completed,
                })
                .collect(),
        })
    }
}

impl Engine {
    /// The newest version schema applications can use, and the active migration's own
    /// when it is not usable yet. Usable: the schema exists and, for a migration whose
    /// start has not finished, every step building its views is done (issue 9: `status`
    /// named a schema a failed start had never created).
    async fn usable_version_schema(
        &self,
        history: &[MigrationRow],
    ) -> Result<(Option<String>, Option<String>), EngineError> {
        let existing: Vec<String> = self
            .client
            .query("SELECT nspname::text FROM pg_namespace", &[])
            .await
            .map_err(|e| EngineError::db("listing schemas", e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut pending = None;
        for h in history.iter().rev() {
            let exists = existing.contains(&h.version_schema);
            let usable = match h.phase {
                MigrationPhase::Completed | MigrationPhase::Completing => exists,
                MigrationPhase::Started => exists && self.views_built(h).await?,
                MigrationPhase::Aborting | MigrationPhase::Aborted => false,
            };
            if usable {
                return Ok((Some(h.version_schema.clone()), pending));
            }
            if h.is_active() && pending.is_none() {
                pending = Some(h.version_schema.clone());
            }
        }
        Ok((None, pending))
    }

    /// Whether every start step that builds `m`'s views is done.
    async fn views_built(&self, m: &MigrationRow) -> Result<bool, EngineError> {
        let done = self.state.done_steps(&self.client, m.id).await?;
        Ok(m.plan
            .steps_of(Phase::Start)
            .filter(|(_, s)| matches!(s.action, crate::plan::Action::SyncViews { .. }))
            .all(|(i, _)| done.contains(&(i as i32))))
    }
}

/// Whether `m` has the operations `row` was started with. The checksum is over the
/// normalized operations, so a comment or reformatting changes nothing; rows recorded
/// before that carry the raw file's checksum, which is accepted too.
fn checksum_matches(row: &MigrationRow, m: &Migration) -> bool {
    row.checksum == m.checksum || row.checksum == m.raw_checksum
}

fn check_checksum(row: &MigrationRow, m: &Migration) -> Result<(), EngineError> {
    if checksum_matches(row, m) {
        return Ok(());
    }
    Err(changed_file(row, m, row.is_active()))
}

fn changed_file(row: &MigrationRow, m: &Migration, active: bool) -> EngineError {
    let next = if active {
        "its start has run steps already: `ratchet abort` undoes them, then `ratchet start` \
         takes the changed file; or restore the file and run the same command again"
    } else {
        "applied migrations are immutable: restore the file and put the change in a new migration"
    };
    EngineError::refused(
        Refusal::FileChanged,
        format!(
        "{}: the operations changed after migration `{}` was started (checksum {} in the database, {} on disk); {next}",
        m.path.display(),
        m.name,
        &row.checksum[..12.min(row.checksum.len())],
        &m.checksum[..12.min(m.checksum.len())]
    ))
}

/// The file's own checks that need no database.
fn static_checks(m: &Migration) -> Result<(), EngineError> {
    ratchet_spec::validate_static(m).map_err(|errs| {
        let mut it = errs.into_iter();
        let first = it.next().map(|e| e.to_string()).unwrap_or_default();
        let rest: Vec<String> = it.map(|e| e.to_string()).collect();
        EngineError::File(if rest.is_empty() {
            first
        } else {
            format!("{first}\n{}", rest.join("\n"))
        })
    })
}

impl Engine {
    /// Give every live version schema (the active migration's and the newest completed
    /// one's) the privileges of the base schema and its tables again: for privileges
    /// granted after the migration started (`ratchet grants`). Only adds. Returns the
    /// version schemas it synced.
    pub async fn sync_grants(&self) -> Result<Vec<String>, EngineError> {
        let cat = catalog::load(&self.client, &self.config.schema).await?;
        let history = self.state.history(&self.client).await?;
        let active = history.iter().rev().find(|m| m.is_active());
        let completed = history
            .iter()
            .rev()
            .find(|m| m.phase == MigrationPhase::Completed);
        let mut done = Vec::new();
        for m in active.into_iter().chain(completed) {
            if !cat.schemas.contains(&m.version_schema) || done.contains(&m.version_schema) {
                continue;
            }
            // The mapping the version's views were last built from: the start one while
            // the migration is expanded, the refreshed one after complete.
            let mapping = m
                .plan
                .steps
                .iter()
                .filter(|s| m.phase == MigrationPhase::Completed || s.phase == Phase::Start)
                .filter_map(|s| match &s.action {
                    Action::SyncViews { mapping, .. } => Some(mapping),
                    _ => None,
                })
                .next_back();
            let Some(mapping) = mapping else { continue };
            crate::views::resync_grants(&self.client, &cat, mapping, &m.version_schema).await?;
            done.push(m.version_schema.clone());
        }
        Ok(done)
    }
}
