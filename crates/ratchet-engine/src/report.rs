//! What the engine tells its caller while it works.

use std::time::Duration;

use crate::plan::Phase;

/// What the engine tells its caller while it works (the CLI prints these; the library
/// never prints).
#[derive(Debug, Clone)]
pub enum Event {
    StepStarted {
        phase: Phase,
        step: usize,
        description: String,
    },
    StepDone {
        phase: Phase,
        step: usize,
        description: String,
        duration: Duration,
        attempts: u32,
    },
    StepSkipped {
        phase: Phase,
        step: usize,
        description: String,
    },
    Retry {
        description: String,
        attempt: u32,
        wait: Duration,
        sqlstate: String,
        message: String,
        /// The sessions ratchet's statement waited for, as [`Blocker`] lines.
        blockers: Vec<String>,
    },
    /// Progress of a backfill, after each batch.
    Backfill {
        table: String,
        rows_done: u64,
        rows_total: Option<u64>,
        rows_per_second: f64,
        batch_size: i64,
    },
    Info(String),
}

/// Receives [`Event`]s.
pub trait Reporter: Send + Sync {
    fn report(&self, event: &Event);
}

/// A reporter that drops everything.
pub struct Silent;
impl Reporter for Silent {
    fn report(&self, _: &Event) {}
}
