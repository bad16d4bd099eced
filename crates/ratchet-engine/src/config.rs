//! The settings of an engine run.

use std::time::Duration;

/// Settings of an engine run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The application schema ratchet manages (default `public`).
    pub schema: String,
    /// Where ratchet keeps its bookkeeping (default `ratchet`).
    pub state_schema: String,
    /// `lock_timeout` for every DDL statement (default 500 ms).
    pub lock_timeout: Duration,
    /// Attempts per step on lock timeout / deadlock before giving up.
    pub max_attempts: u32,
    /// First backoff between attempts; doubles each time up to `max_backoff`, ±50 % jitter.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long to wait for another ratchet process's migration lock (0: refuse at once).
    pub lock_wait: Duration,
    /// Batch sizing of backfills.
    pub backfill: BackfillConfig,
    /// `start` runs the backfills (false: leave them to `ratchet backfill`).
    pub run_backfill: bool,
    /// The caller completes each migration right after its start (`start --complete`,
    /// `migrate --complete`): no new-version write can run in between, so a `down` that
    /// names no column of the new version is left out with a warning instead of refused.
    pub completes_at_once: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            schema: "public".into(),
            state_schema: "ratchet".into(),
            lock_timeout: Duration::from_millis(500),
            max_attempts: 30,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            lock_wait: Duration::from_secs(10),
            backfill: BackfillConfig::default(),
            run_backfill: true,
            completes_at_once: false,
        }
    }
}

/// Batch sizing of backfills.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// The duration a batch should take (default 200 ms).
    pub target: Duration,
    /// First batch size in rows (pages for tables without a key).
    pub initial: i64,
    pub min: i64,
    pub max: i64,
    /// Sessions filling one table at once (default 1). The table's remaining key range is
    /// cut into this many slices of about the same number of rows; each session walks one
    /// slice at a time in its own adaptive batches.
    pub workers: usize,
}

impl Default for BackfillConfig {
    fn default() -> BackfillConfig {
        BackfillConfig {
            target: Duration::from_millis(200),
            initial: 1000,
            min: 10,
            max: 100_000,
            workers: 1,
        }
    }
}
