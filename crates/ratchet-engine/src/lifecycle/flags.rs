//! Flags, the freeze and the application fleet (`ratchet flags`, `freeze`, `unfreeze`,
//! `clients`): like the operator's controls, they change or read the state schema only and
//! work on an engine connected read-only, while another process runs a migration.

use ratchet_spec::Migration;
use serde::Serialize;
use serde_json::json;

use crate::error::{EngineError, Gate, Refusal};
use crate::gates::{self, Clients, Sequence};
use crate::lifecycle::Engine;
use crate::plan::Action;
use crate::report::Event;
use crate::state::{EventFilter, EventRow, Flag, FlagSetting, Freeze, MigrationRow};

/// What `set_flag` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagChanged {
    pub flag: String,
    pub old: FlagSetting,
    pub new: FlagSetting,
    pub changed: bool,
    /// The gate `--force` passed over, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
}

fn backfills(plan: &crate::plan::Plan) -> bool {
    plan.steps
        .iter()
        .any(|s| matches!(s.action, Action::Backfill(_)))
}

/// The name of the read flag ratchet creates for a migration that backfills.
pub fn read_flag(migration: &str) -> String {
    format!("{migration}.read_new")
}

impl Engine {
    /// Create the flags `m` owns (off): its `read_new` flag when it backfills, and the
    /// ones its file declares. Idempotent (a resumed start finds them).
    pub(crate) async fn create_flags(
        &self,
        row: &MigrationRow,
        m: &Migration,
    ) -> Result<(), EngineError> {
        if backfills(&row.plan) {
            let description = "read the new structure (on after the backfill is validated)";
            self.state
                .create_flag(
                    &self.client,
                    &read_flag(&m.name),
                    Some(&m.name),
                    true,
                    Some(description),
                )
                .await?;
        }
        for f in &m.flags {
            self.state
                .create_flag(
                    &self.client,
                    &f.name,
                    Some(&m.name),
                    f.gates_complete,
                    f.description.as_deref(),
                )
                .await?;
        }
        Ok(())
    }

    /// Refuse a start whose flags are taken by another schema or migration, before
    /// anything of it is recorded.
    pub(crate) async fn check_flags_free(
        &self,
        plan: &crate::plan::Plan,
        m: &Migration,
    ) -> Result<(), EngineError> {
        let auto = backfills(plan).then(|| read_flag(&m.name));
        for name in auto.iter().chain(m.flags.iter().map(|f| &f.name)) {
            self.state
                .check_flag_free(&self.client, name, Some(&m.name))
                .await?;
        }
        Ok(())
    }

    /// Refuse `what` while a freeze stands, naming who set it, when and why.
    pub(crate) async fn refuse_if_frozen(&self, what: &str) -> Result<(), EngineError> {
        let Some(f) = self.state.freeze(&self.client).await? else {
            return Ok(());
        };
        Err(EngineError::refused(
            Refusal::Gate(Gate::Frozen),
            format!(
                "changes to schema `{}` are frozen since {} by {}{}: \"{}\"; `{what}` is refused until `ratchet unfreeze`",
                self.config.schema,
                f.set_at,
                f.set_by,
                f.host.as_deref().map(|h| format!(" from {h}")).unwrap_or_default(),
                f.reason
            ),
        ))
    }

    /// Every flag of this schema.
    pub async fn flags(&self) -> Result<Vec<Flag>, EngineError> {
        self.state.flags(&self.client).await
    }

    pub async fn flag(&self, name: &str) -> Result<Option<Flag>, EngineError> {
        self.state.flag(&self.client, name).await
    }

    /// The changes of one flag (or of every flag), oldest first.
    pub async fn flag_history(&self, name: Option<&str>) -> Result<Vec<EventRow>, EngineError> {
        self.state
            .events(
                &self.client,
                &EventFilter {
                    kinds: vec!["flag".into(), "flag_created".into(), "flag_deleted".into()],
                    flag: name.map(str::to_string),
                    ..EventFilter::default()
                },
            )
            .await
    }

    /// Set flag `name`. Raising a flag of an active migration that backfills above 0 is
    /// refused until its backfill finished and its latest validation passed (`force`
    /// passes over that, loudly and in the event log); lowering is always allowed (it is
    /// how a team backs off while it fixes forward).
    pub async fn set_flag(
        &mut self,
        name: &str,
        setting: FlagSetting,
        force: bool,
    ) -> Result<FlagChanged, EngineError> {
        let Some(flag) = self.state.flag(&self.client, name).await? else {
            let known: Vec<String> = self.flags().await?.into_iter().map(|f| f.name).collect();
            let hint = ratchet_spec::closest(name, &known)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(EngineError::Invalid {
                location: format!("flag `{name}`"),
                message: format!(
                    "there is no such flag in schema `{}`{hint}",
                    self.config.schema
                ),
                hint: "`ratchet flags list` shows the flags; migrations create theirs at `start`"
                    .into(),
            });
        };
        let mut forced = None;
        if setting.percent() > flag.setting.percent() {
            if let Some(reason) = self.flag_gate(&flag).await? {
                if !force {
                    return Err(EngineError::refused(
                        Refusal::Gate(Gate::FlagBeforeValidation),
                        reason,
                    ));
                }
                self.report(Event::Info(format!("warning: --force: {reason}")));
                forced = Some(reason);
            }
        }
        let extra = match &forced {
            Some(r) => json!({"forced": r}),
            None => json!({}),
        };
        let changed = setting != flag.setting;
        if changed {
            self.state
                .write_flag(&mut self.client, name, setting, extra)
                .await?;
        }
        Ok(FlagChanged {
            flag: name.to_string(),
            old: flag.setting,
            new: setting,
            changed,
            forced,
        })
    }

    /// Why `flag` may not be raised now, if it may not: its migration is active, backfills,
    /// and the backfill is unfinished or the latest validation did not pass.
    async fn flag_gate(&self, flag: &Flag) -> Result<Option<String>, EngineError> {
        let Some(owner) = &flag.migration else {
            return Ok(None);
        };
        let Some(m) = self.state.active(&self.client).await? else {
            return Ok(None);
        };
        if &m.name != owner {
            return Ok(None);
        }
        let seq = gates::sequence(&self.state, &self.client, &m, &self.config.gates).await?;
        let pending = seq.stages.iter().find(|s| {
            matches!(s.name, "expanded" | "backfilled" | "validated") && s.next.is_some()
        });
        Ok(pending.map(|s| {
            format!(
                "flag `{}` reads what `{}` backfills: it may be raised only once the backfill is finished and validated ({}: {}); next: {}",
                flag.name,
                m.name,
                s.name,
                s.detail,
                s.next.as_deref().unwrap_or_default()
            )
        }))
    }

    /// `ratchet freeze`: `start`, `migrate` and `complete` refuse for everyone until
    /// [`Engine::unfreeze`]. Returns whether it changed anything.
    pub async fn freeze(&mut self, reason: &str) -> Result<bool, EngineError> {
        self.state
            .write_freeze(&mut self.client, Some(reason))
            .await
    }

    pub async fn unfreeze(&mut self) -> Result<bool, EngineError> {
        self.state.write_freeze(&mut self.client, None).await
    }

    /// The freeze standing now, if any.
    pub async fn frozen(&self) -> Result<Option<Freeze>, EngineError> {
        self.state.freeze(&self.client).await
    }

    /// The application instances, judged against the active migration (or the latest).
    pub async fn clients(&self) -> Result<Clients, EngineError> {
        let history = self.state.history(&self.client).await?;
        let m = history
            .iter()
            .find(|h| h.is_active())
            .or_else(|| history.last());
        gates::clients(
            &self.state,
            &self.client,
            m,
            self.config.gates.client_timeout,
        )
        .await
    }

    /// Where the active migration stands in the careful sequence, if one is active.
    pub async fn sequence(&self) -> Result<Option<Sequence>, EngineError> {
        match self.state.active(&self.client).await? {
            Some(m) => Ok(Some(
                gates::sequence(&self.state, &self.client, &m, &self.config.gates).await?,
            )),
            None => Ok(None),
        }
    }
}
