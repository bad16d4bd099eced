//! The operator's commands (`ratchet pause`, `resume`, `set`, `events`): they change or
//! read the state schema only, on an engine connected read-only (no migration lock), so
//! they work while another process runs a migration.

use serde_json::json;

use crate::control::{Change, Changed};
use crate::error::EngineError;
use crate::lifecycle::Engine;
use crate::state::{Control, EventFilter, EventRow};

impl Engine {
    /// Make an operator's change, with its event row (kind `control`). The running
    /// process applies it at its next batch or DDL attempt.
    pub async fn change_control(&mut self, change: &Change) -> Result<Changed, EngineError> {
        let (key, value) = change.key_value();
        let migration = self.state.active(&self.client).await?.map(|m| m.name);
        let extra = match change {
            Change::Pause {
                reason: Some(reason),
            } => json!({ "reason": reason }),
            _ => json!({}),
        };
        let (old, changed) = self
            .state
            .change_control(
                &mut self.client,
                migration.as_deref(),
                key,
                value.as_deref(),
                extra,
            )
            .await?;
        Ok(Changed {
            key: key.to_string(),
            old,
            new: value,
            changed,
            migration,
        })
    }

    /// The controls set now.
    pub async fn controls(&self) -> Result<Vec<Control>, EngineError> {
        self.state.controls(&self.client).await
    }

    /// The event log, oldest first.
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<EventRow>, EngineError> {
        self.state.events(&self.client, filter).await
    }
}
