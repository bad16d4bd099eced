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
        /// How long the batch took.
        batch_duration: Duration,
    },
    /// Progress of a validation, after each chunk.
    Validate {
        table: String,
        rows_checked: u64,
        /// The planner's estimate of the table's rows (`pg_class.reltuples`), if any.
        rows_total: Option<u64>,
        mismatches: u64,
        rows_per_second: f64,
        chunk_size: i64,
        /// How long the chunk took.
        chunk_duration: Duration,
    },
    /// The monitors' verdict, every sample (reporters decide what is worth a line).
    Health(HealthReport),
    /// An operator's `ratchet pause` holds the work; `None` once `ratchet resume` lets it
    /// go on.
    Held(Option<Hold>),
    Info(String),
}

/// Who holds the work with `ratchet pause`, and where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    /// "alice from 10.0.0.7 (deploy in progress)": the role, its address, the reason.
    pub by: String,
    /// "between two batches on items (4580 rows done)".
    pub place: String,
}

/// What the monitors see, as one verdict with its reasons and the figures behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HealthReport {
    pub state: HealthState,
    /// Why, one line per monitor that is not ok, e.g. "probe p99 84 ms > 50 ms".
    pub reasons: Vec<String>,
    /// The latest figures by name, for the status block, the event log and the metrics:
    /// `lock_waits_caused`, `lock_wait_max_ms`, `probe_p50_ms`, `probe_p99_ms`,
    /// `rollbacks_per_s`, `deadlocks_per_s`, `active_sessions`, `connections_used`,
    /// `replication_lag_s`, `replication_bytes_behind`, `slot_wal_retained_bytes`, ….
    pub figures: std::collections::BTreeMap<String, f64>,
}

/// A monitor's answer, and the policy's over all of them (the worst one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Ok,
    Throttle,
    Pause,
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
