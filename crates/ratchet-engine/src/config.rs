//! The settings of an engine run, and the rules that keep them consistent (batch sizes
//! within their bounds), so every caller (the CLI, a library user, a test) gets the same
//! clamping and can tell the user what was changed.

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
    /// The health monitors that throttle and pause backfills (`[monitor]`).
    pub monitor: MonitorConfig,
    /// What `complete` waits for besides the backfill and the validation (`[gates]`).
    pub gates: GateConfig,
}

/// The gates of `complete` that depend on time and on the application fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    /// How long a migration stays expanded before `complete` may contract it, counted
    /// from the end of its start (default 0; the CLI picks it per environment).
    pub min_soak: Duration,
    /// An application instance whose last heartbeat is older than this is gone and no
    /// longer holds `complete` back (default 2 min; the client sends one every 30 s).
    pub client_timeout: Duration,
}

impl Default for GateConfig {
    fn default() -> GateConfig {
        GateConfig {
            min_soak: Duration::ZERO,
            client_timeout: Duration::from_secs(120),
        }
    }
}

impl Config {
    /// [`BackfillConfig::normalize`] of the backfill settings: the one place batch sizes
    /// are clamped. Returns what it changed.
    pub fn normalize(&mut self) -> Vec<Clamped> {
        self.backfill.normalize()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            schema: "public".into(),
            state_schema: "ratchet".into(),
            lock_timeout: ratchet_sql::DEFAULT_LOCK_TIMEOUT,
            max_attempts: 30,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            lock_wait: Duration::from_secs(10),
            backfill: BackfillConfig::default(),
            run_backfill: true,
            completes_at_once: false,
            monitor: MonitorConfig::default(),
            gates: GateConfig::default(),
        }
    }
}

/// The health monitors (`crate::monitor`): how often they sample, the probe query, and
/// the thresholds of the health policy. Every value has a default that needs no
/// configuration; a threshold at its default never fires on an idle server.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Off: no monitor runs and nothing is throttled (`--no-monitor`).
    pub enabled: bool,
    /// How often each sampler samples, on its own connection (default 1 s).
    pub interval: Duration,
    /// The user's probe query (`--probe-sql`), timed on its own connection; none by default.
    pub probe_sql: Option<String>,
    /// How often the probe runs (default 200 ms).
    pub probe_interval: Duration,
    /// The sliding window of the probe's quantiles (default 10 s).
    pub probe_window: Duration,
    /// How long the probe is timed before the migration's work begins, for the baseline
    /// `max_probe_ratio` compares with (default 3 s; only with a probe).
    pub probe_baseline: Duration,
    /// Longest lock wait a ratchet session may cause another session (default 1000 ms).
    pub max_lock_wait_ms: u64,
    /// Highest probe p99 (default 100 ms); `ratchet set max-probe-p99-ms` overrides it.
    pub max_probe_p99_ms: u64,
    /// Highest probe p99 against its baseline (default 4.0).
    pub max_probe_ratio: f64,
    /// Baselines under this count as this long in `max_probe_ratio` and
    /// `max_statements_ratio`: a ratio against a few microseconds is noise (default 5 ms).
    pub ratio_floor_ms: f64,
    /// Highest mean execution time of the top statements on the migrated tables over the
    /// window, against their mean before the migration (`pg_stat_statements`; default 4.0).
    pub max_statements_ratio: f64,
    /// Highest replay lag of any standby, in seconds (default 10).
    pub max_replication_lag_s: f64,
    /// Most WAL a replication slot may retain, in MB (default 10240: 10 GiB).
    pub max_slot_wal_mb: u64,
    /// Most WAL segments waiting for the archiver (default 64; a failing archiver
    /// throttles too).
    pub max_archiver_backlog: u64,
    /// Most active sessions on the server (default 64).
    pub max_active_sessions: u32,
    /// Highest share of the server's CPU time busy, in percent, when the server runs on
    /// this machine (`/proc/stat`; default 0: off, as the backfill's own work counts too).
    pub max_server_cpu_pct: f64,
    /// Most rollbacks per second in the database (default 50).
    pub max_rollback_rate: f64,
    /// A monitor this many times over its threshold asks for a pause at once instead of
    /// a throttle (default 2.0).
    pub pause_factor: f64,
    /// A monitor over its threshold for longer than this while the backfill is throttled
    /// asks for a pause: throttling did not help (default 10 s).
    pub max_throttle: Duration,
    /// Paused (or, before a DDL attempt, unhealthy) longer than this stops the run,
    /// resumable (default 5 min).
    pub max_pause: Duration,
}

impl Default for MonitorConfig {
    fn default() -> MonitorConfig {
        MonitorConfig {
            enabled: true,
            interval: Duration::from_secs(1),
            probe_sql: None,
            probe_interval: Duration::from_millis(200),
            probe_window: Duration::from_secs(10),
            probe_baseline: Duration::from_secs(3),
            max_lock_wait_ms: 1000,
            max_probe_p99_ms: 100,
            max_probe_ratio: 4.0,
            ratio_floor_ms: 5.0,
            max_statements_ratio: 4.0,
            max_replication_lag_s: 10.0,
            max_slot_wal_mb: 10240,
            max_archiver_backlog: 64,
            max_active_sessions: 64,
            max_server_cpu_pct: 0.0,
            max_rollback_rate: 50.0,
            pause_factor: 2.0,
            max_throttle: Duration::from_secs(10),
            max_pause: Duration::from_secs(300),
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

/// A batch setting [`BackfillConfig::normalize`] changed: what it was given and what it
/// uses instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clamped {
    pub setting: BatchSetting,
    pub given: i64,
    pub used: i64,
}

/// The settings of [`BackfillConfig`] that [`BackfillConfig::normalize`] may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSetting {
    Min,
    Max,
    Initial,
    Workers,
}

impl BatchSetting {
    /// The field's name in [`BackfillConfig`].
    pub fn as_str(self) -> &'static str {
        match self {
            BatchSetting::Min => "min",
            BatchSetting::Max => "max",
            BatchSetting::Initial => "initial",
            BatchSetting::Workers => "workers",
        }
    }
}

impl BackfillConfig {
    /// Bring the batch sizes into a usable shape: at least one row (or page) per batch,
    /// `max` not below `min`, the first batch within `min..=max`, at least one worker.
    /// Returns what it changed, in that order, so that the caller can say so.
    pub fn normalize(&mut self) -> Vec<Clamped> {
        let mut changed = Vec::new();
        let mut set = |setting, field: &mut i64, used: i64| {
            if *field != used {
                changed.push(Clamped {
                    setting,
                    given: *field,
                    used,
                });
                *field = used;
            }
        };
        let min = self.min.max(1);
        set(BatchSetting::Min, &mut self.min, min);
        let max = self.max.max(min);
        set(BatchSetting::Max, &mut self.max, max);
        let initial = self.initial.clamp(min, max);
        set(BatchSetting::Initial, &mut self.initial, initial);
        let mut workers = i64::try_from(self.workers).unwrap_or(i64::MAX);
        let at_least_one = workers.max(1);
        set(BatchSetting::Workers, &mut workers, at_least_one);
        self.workers = usize::try_from(workers).unwrap_or(usize::MAX);
        changed
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(min: i64, max: i64, initial: i64, workers: usize) -> BackfillConfig {
        BackfillConfig {
            min,
            max,
            initial,
            workers,
            ..BackfillConfig::default()
        }
    }

    #[test]
    fn the_defaults_are_left_alone() {
        let mut b = BackfillConfig::default();
        assert_eq!(b.normalize(), []);
        assert_eq!((b.min, b.max, b.initial, b.workers), (10, 100_000, 1000, 1));
    }

    #[test]
    fn batch_sizes_are_clamped_and_each_change_reported() {
        let mut b = batches(0, -5, 1000, 0);
        let clamped = |setting, given, used| Clamped {
            setting,
            given,
            used,
        };
        assert_eq!(
            b.normalize(),
            [
                clamped(BatchSetting::Min, 0, 1),
                clamped(BatchSetting::Max, -5, 1),
                clamped(BatchSetting::Initial, 1000, 1),
                clamped(BatchSetting::Workers, 0, 1),
            ]
        );
        assert_eq!((b.min, b.max, b.initial, b.workers), (1, 1, 1, 1));
    }

    #[test]
    fn the_first_batch_moves_into_the_bounds() {
        let mut b = batches(2000, 5000, 1000, 4);
        assert_eq!(
            b.normalize(),
            [Clamped {
                setting: BatchSetting::Initial,
                given: 1000,
                used: 2000
            }]
        );
        let mut b = batches(10, 100, 1000, 1);
        assert_eq!(b.normalize()[0].used, 100);
        assert_eq!(b.initial, 100);
    }
}
