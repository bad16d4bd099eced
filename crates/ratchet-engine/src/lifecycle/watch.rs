//! [`Engine::live_view`]: everything `ratchet status --watch` shows of a migration that
//! another process runs, read from the state schema in one call per tick.

use serde::Serialize;

use crate::backfill::Progress;
use crate::error::EngineError;
use crate::lifecycle::{Engine, Status};
use crate::state::{Control, EventFilter, EventRow, LockHolder, RunnerRow};

/// The running migration as another terminal sees it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveView {
    pub status: Status,
    /// The active migration's backfills, from the cursors each batch commits.
    pub backfills: Vec<Progress>,
    /// The running process's last heartbeat (with its latest health), if one ever ran.
    pub runner: Option<RunnerRow>,
    /// The session holding the migration lock: a ratchet process is running now.
    pub lock_holder: Option<LockHolder>,
    /// The operator's controls (`paused`, `batch_size`, …).
    pub controls: Vec<Control>,
    /// The newest events, newest first.
    pub events: Vec<EventRow>,
}

impl Engine {
    /// Status, progress, heartbeat, lock holder, controls and the `events` newest events.
    /// Reads only; takes no lock.
    pub async fn live_view(&self, events: i64) -> Result<LiveView, EngineError> {
        let status = self.status().await?;
        let backfills = match status.active {
            Some(_) => self.backfill_progress().await?,
            None => vec![],
        };
        Ok(LiveView {
            status,
            backfills,
            runner: self.state.runner(&self.client).await?,
            lock_holder: self
                .state
                .lock_holder(&self.client, &self.lock_key())
                .await?,
            controls: self.state.controls(&self.client).await?,
            events: self.latest_events(events).await?,
        })
    }

    /// The `limit` newest events of this schema, newest first.
    async fn latest_events(&self, limit: i64) -> Result<Vec<EventRow>, EngineError> {
        let filter = EventFilter {
            limit: Some(limit),
            ..EventFilter::default()
        };
        let mut events = self.state.events(&self.client, &filter).await?;
        events.reverse();
        Ok(events)
    }
}
