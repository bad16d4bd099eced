//! The health monitors' settings, and where each comes from: a flag, else the
//! `[monitor]` table of `ratchet.toml`, else `ratchet_engine::config::MonitorConfig::default()`
//! (the same precedence and the same strictness as `[engine]`, see `settings.rs`).
//!
//! ```toml
//! [monitor]
//! enabled = true                # --no-monitor turns them off
//! interval = "1s"               # --monitor-interval
//! probe_sql = "SELECT 1 FROM orders WHERE id = 1"
//! probe_interval = "200ms"
//! probe_window = "10s"
//! probe_baseline = "3s"
//! max_lock_wait_ms = 1000
//! max_probe_p99_ms = 100
//! max_probe_ratio = 4.0
//! ratio_floor_ms = 5.0
//! max_statements_ratio = 4.0
//! max_replication_lag_s = 10.0
//! max_slot_wal_mb = 10240
//! max_archiver_backlog = 64
//! max_active_sessions = 64
//! max_server_cpu_pct = 0
//! max_rollback_rate = 50.0
//! pause_factor = 2.0
//! max_throttle = "10s"
//! max_pause = "5m"
//! ```
//!
//! Each key is named like its flag, except `interval` (`--monitor-interval`) and
//! `enabled` (`--no-monitor`). An unknown key or a value of the wrong kind is an error
//! naming the file, the line and the key.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use ratchet_engine::config::MonitorConfig;
use serde::Deserialize;

use super::args::{format_duration, parse_duration};
use super::settings::{duration, integer, Source};

/// Every key of `[monitor]`, in the order `ratchet config` shows them.
pub const KEYS: &[&str] = &[
    "enabled",
    "interval",
    "probe_sql",
    "probe_interval",
    "probe_window",
    "probe_baseline",
    "max_lock_wait_ms",
    "max_probe_p99_ms",
    "max_probe_ratio",
    "ratio_floor_ms",
    "max_statements_ratio",
    "max_replication_lag_s",
    "max_slot_wal_mb",
    "max_archiver_backlog",
    "max_active_sessions",
    "max_server_cpu_pct",
    "max_rollback_rate",
    "pause_factor",
    "max_throttle",
    "max_pause",
];

/// The health monitors: they sample the database from their own connections while
/// ratchet works, and throttle or pause backfills, validation and DDL attempts when it
/// is unhealthy (see docs/monitors.md). Each may also be set in the `[monitor]` table of
/// `ratchet.toml`; a threshold of 0 is off.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MonitorArgs {
    /// Run without the health monitors: nothing is throttled or paused [default:
    /// monitors on, or `enabled = false` in ratchet.toml].
    #[arg(long)]
    pub no_monitor: bool,
    /// How often the monitors sample [default: 1s, or `interval` in ratchet.toml].
    #[arg(long = "monitor-interval", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// A query of the application's, timed on its own connection: its p99 throttles the
    /// work. Several statements (`BEGIN; …; ROLLBACK`) run one round trip each, timed
    /// together [default: none, or `probe_sql` in ratchet.toml].
    #[arg(long, value_name = "SQL")]
    pub probe_sql: Option<String>,
    /// How often the probe runs [default: 200ms, or `probe_interval` in ratchet.toml].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub probe_interval: Option<Duration>,
    /// The sliding window of the probe's quantiles [default: 10s, or `probe_window` in
    /// ratchet.toml].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub probe_window: Option<Duration>,
    /// How long the probe is timed before the work begins, for its baseline [default: 3s,
    /// or `probe_baseline` in ratchet.toml].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub probe_baseline: Option<Duration>,
    /// Longest wait ratchet may cause another session on a lock [default: 1000, or
    /// `max_lock_wait_ms` in ratchet.toml].
    #[arg(long, value_name = "MS")]
    pub max_lock_wait_ms: Option<u64>,
    /// Highest probe p99 [default: 100, or `max_probe_p99_ms` in ratchet.toml].
    #[arg(long, value_name = "MS")]
    pub max_probe_p99_ms: Option<u64>,
    /// Highest probe p99 against its baseline [default: 4.0, or `max_probe_ratio` in
    /// ratchet.toml].
    #[arg(long, value_name = "RATIO")]
    pub max_probe_ratio: Option<f64>,
    /// Baselines under this count as this long in the ratios [default: 5.0, or
    /// `ratio_floor_ms` in ratchet.toml].
    #[arg(long, value_name = "MS")]
    pub ratio_floor_ms: Option<f64>,
    /// Highest mean time of the top statements on the migrated tables against their mean
    /// before (pg_stat_statements) [default: 4.0, or `max_statements_ratio` in
    /// ratchet.toml].
    #[arg(long, value_name = "RATIO")]
    pub max_statements_ratio: Option<f64>,
    /// Highest replay lag of any standby, in seconds [default: 10.0, or
    /// `max_replication_lag_s` in ratchet.toml].
    #[arg(long, value_name = "SECONDS")]
    pub max_replication_lag_s: Option<f64>,
    /// Most WAL a replication slot may retain, in MB [default: 10240, or
    /// `max_slot_wal_mb` in ratchet.toml].
    #[arg(long, value_name = "MB")]
    pub max_slot_wal_mb: Option<u64>,
    /// Most WAL segments waiting for the archiver [default: 64, or
    /// `max_archiver_backlog` in ratchet.toml].
    #[arg(long, value_name = "SEGMENTS")]
    pub max_archiver_backlog: Option<u64>,
    /// Most active sessions on the server [default: 64, or `max_active_sessions` in
    /// ratchet.toml].
    #[arg(long, value_name = "N")]
    pub max_active_sessions: Option<u32>,
    /// Highest share of the server's CPU busy, in percent, when it runs on this machine
    /// (0: off) [default: 0.0, or `max_server_cpu_pct` in ratchet.toml].
    #[arg(long, value_name = "PERCENT")]
    pub max_server_cpu_pct: Option<f64>,
    /// Most rollbacks per second in the database [default: 50.0, or `max_rollback_rate`
    /// in ratchet.toml].
    #[arg(long, value_name = "PER_SECOND")]
    pub max_rollback_rate: Option<f64>,
    /// A monitor this many times over its threshold pauses at once instead of throttling
    /// [default: 2.0, or `pause_factor` in ratchet.toml].
    #[arg(long, value_name = "FACTOR")]
    pub pause_factor: Option<f64>,
    /// Over a threshold this long while throttled pauses [default: 10s, or
    /// `max_throttle` in ratchet.toml].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_throttle: Option<Duration>,
    /// Paused this long stops the command, resumable (nothing is lost) [default: 5m, or
    /// `max_pause` in ratchet.toml].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_pause: Option<Duration>,
}

/// The settings a flag or the `[monitor]` table gives; `None`: not given there.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Values {
    pub enabled: Option<bool>,
    pub interval: Option<Duration>,
    pub probe_sql: Option<String>,
    pub probe_interval: Option<Duration>,
    pub probe_window: Option<Duration>,
    pub probe_baseline: Option<Duration>,
    pub max_lock_wait_ms: Option<u64>,
    pub max_probe_p99_ms: Option<u64>,
    pub max_probe_ratio: Option<f64>,
    pub ratio_floor_ms: Option<f64>,
    pub max_statements_ratio: Option<f64>,
    pub max_replication_lag_s: Option<f64>,
    pub max_slot_wal_mb: Option<u64>,
    pub max_archiver_backlog: Option<u64>,
    pub max_active_sessions: Option<u32>,
    pub max_server_cpu_pct: Option<f64>,
    pub max_rollback_rate: Option<f64>,
    pub pause_factor: Option<f64>,
    pub max_throttle: Option<Duration>,
    pub max_pause: Option<Duration>,
}

impl Values {
    pub fn from_flags(a: &MonitorArgs) -> Values {
        Values {
            enabled: a.no_monitor.then_some(false),
            interval: a.interval,
            probe_sql: a.probe_sql.clone(),
            probe_interval: a.probe_interval,
            probe_window: a.probe_window,
            probe_baseline: a.probe_baseline,
            max_lock_wait_ms: a.max_lock_wait_ms,
            max_probe_p99_ms: a.max_probe_p99_ms,
            max_probe_ratio: a.max_probe_ratio,
            ratio_floor_ms: a.ratio_floor_ms,
            max_statements_ratio: a.max_statements_ratio,
            max_replication_lag_s: a.max_replication_lag_s,
            max_slot_wal_mb: a.max_slot_wal_mb,
            max_archiver_backlog: a.max_archiver_backlog,
            max_active_sessions: a.max_active_sessions,
            max_server_cpu_pct: a.max_server_cpu_pct,
            max_rollback_rate: a.max_rollback_rate,
            pause_factor: a.pause_factor,
            max_throttle: a.max_throttle,
            max_pause: a.max_pause,
        }
    }

    /// Set `key` from its TOML value; the error says what the key accepts.
    fn set(&mut self, key: &str, v: &toml::Value) -> Result<(), String> {
        let ms = "a whole number of milliseconds";
        match key {
            "enabled" => {
                self.enabled = Some(
                    v.as_bool()
                        .ok_or(format!("expected true or false, not {v}"))?,
                )
            }
            "interval" => self.interval = Some(duration(v)?),
            "probe_sql" => self.probe_sql = Some(text(v)?),
            "probe_interval" => self.probe_interval = Some(duration(v)?),
            "probe_window" => self.probe_window = Some(duration(v)?),
            "probe_baseline" => self.probe_baseline = Some(duration(v)?),
            "max_lock_wait_ms" => self.max_lock_wait_ms = Some(integer(v, ms)?),
            "max_probe_p99_ms" => self.max_probe_p99_ms = Some(integer(v, ms)?),
            "max_probe_ratio" => self.max_probe_ratio = Some(number(v)?),
            "ratio_floor_ms" => self.ratio_floor_ms = Some(number(v)?),
            "max_statements_ratio" => self.max_statements_ratio = Some(number(v)?),
            "max_replication_lag_s" => self.max_replication_lag_s = Some(number(v)?),
            "max_slot_wal_mb" => {
                self.max_slot_wal_mb = Some(integer(v, "a whole number of megabytes")?)
            }
            "max_archiver_backlog" => {
                self.max_archiver_backlog = Some(integer(v, "a whole number of segments")?)
            }
            "max_active_sessions" => {
                self.max_active_sessions = Some(integer(v, "a whole number of sessions")?)
            }
            "max_server_cpu_pct" => self.max_server_cpu_pct = Some(number(v)?),
            "max_rollback_rate" => self.max_rollback_rate = Some(number(v)?),
            "pause_factor" => self.pause_factor = Some(number(v)?),
            "max_throttle" => self.max_throttle = Some(duration(v)?),
            "max_pause" => self.max_pause = Some(duration(v)?),
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }
}

/// Flags over the file over the defaults: the monitors' config and the source of each
/// key of [`KEYS`].
pub fn merge(flags: &Values, file: &Values) -> (MonitorConfig, BTreeMap<&'static str, Source>) {
    let mut sources = BTreeMap::new();
    let mut c = MonitorConfig::default();
    macro_rules! take {
        ($field:ident) => {{
            let source = match (flags.$field.is_some(), file.$field.is_some()) {
                (true, _) => Source::Flag,
                (false, true) => Source::File,
                (false, false) => Source::Default,
            };
            sources.insert(stringify!($field), source);
            flags.$field.clone().or_else(|| file.$field.clone())
        }};
    }
    c.enabled = take!(enabled).unwrap_or(c.enabled);
    c.interval = take!(interval).unwrap_or(c.interval);
    c.probe_sql = take!(probe_sql).or(c.probe_sql);
    c.probe_interval = take!(probe_interval).unwrap_or(c.probe_interval);
    c.probe_window = take!(probe_window).unwrap_or(c.probe_window);
    c.probe_baseline = take!(probe_baseline).unwrap_or(c.probe_baseline);
    c.max_lock_wait_ms = take!(max_lock_wait_ms).unwrap_or(c.max_lock_wait_ms);
    c.max_probe_p99_ms = take!(max_probe_p99_ms).unwrap_or(c.max_probe_p99_ms);
    c.max_probe_ratio = take!(max_probe_ratio).unwrap_or(c.max_probe_ratio);
    c.ratio_floor_ms = take!(ratio_floor_ms).unwrap_or(c.ratio_floor_ms);
    c.max_statements_ratio = take!(max_statements_ratio).unwrap_or(c.max_statements_ratio);
    c.max_replication_lag_s = take!(max_replication_lag_s).unwrap_or(c.max_replication_lag_s);
    c.max_slot_wal_mb = take!(max_slot_wal_mb).unwrap_or(c.max_slot_wal_mb);
    c.max_archiver_backlog = take!(max_archiver_backlog).unwrap_or(c.max_archiver_backlog);
    c.max_active_sessions = take!(max_active_sessions).unwrap_or(c.max_active_sessions);
    c.max_server_cpu_pct = take!(max_server_cpu_pct).unwrap_or(c.max_server_cpu_pct);
    c.max_rollback_rate = take!(max_rollback_rate).unwrap_or(c.max_rollback_rate);
    c.pause_factor = take!(pause_factor).unwrap_or(c.pause_factor);
    c.max_throttle = take!(max_throttle).unwrap_or(c.max_throttle);
    c.max_pause = take!(max_pause).unwrap_or(c.max_pause);
    (c, sources)
}

/// The flag of `key`.
pub fn flag_of(key: &str) -> String {
    match key {
        "enabled" => "--no-monitor".into(),
        "interval" => "--monitor-interval".into(),
        _ => format!("--{}", key.replace('_', "-")),
    }
}

/// The value of `key` in `c`, written as in ratchet.toml.
pub fn value_of(c: &MonitorConfig, key: &str) -> serde_json::Value {
    let d = |d: Duration| serde_json::Value::from(format_duration(d));
    match key {
        "enabled" => c.enabled.into(),
        "interval" => d(c.interval),
        "probe_sql" => c.probe_sql.clone().into(),
        "probe_interval" => d(c.probe_interval),
        "probe_window" => d(c.probe_window),
        "probe_baseline" => d(c.probe_baseline),
        "max_lock_wait_ms" => c.max_lock_wait_ms.into(),
        "max_probe_p99_ms" => c.max_probe_p99_ms.into(),
        "max_probe_ratio" => c.max_probe_ratio.into(),
        "ratio_floor_ms" => c.ratio_floor_ms.into(),
        "max_statements_ratio" => c.max_statements_ratio.into(),
        "max_replication_lag_s" => c.max_replication_lag_s.into(),
        "max_slot_wal_mb" => c.max_slot_wal_mb.into(),
        "max_archiver_backlog" => c.max_archiver_backlog.into(),
        "max_active_sessions" => c.max_active_sessions.into(),
        "max_server_cpu_pct" => c.max_server_cpu_pct.into(),
        "max_rollback_rate" => c.max_rollback_rate.into(),
        "pause_factor" => c.pause_factor.into(),
        "max_throttle" => d(c.max_throttle),
        "max_pause" => d(c.max_pause),
        _ => serde_json::Value::Null,
    }
}

fn unknown_key(key: &str) -> String {
    let known: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    let hint = ratchet_spec::closest(key, &known)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    format!("unknown key{hint}; [monitor] accepts: {}", KEYS.join(", "))
}

/// A number, `4` or `4.5`, not negative.
fn number(v: &toml::Value) -> Result<f64, String> {
    let n = match v {
        toml::Value::Float(f) => *f,
        toml::Value::Integer(i) => *i as f64,
        _ => f64::NAN,
    };
    match n >= 0.0 {
        true => Ok(n),
        false => Err(format!("expected a number of 0 or more, not {v}")),
    }
}

fn text(v: &toml::Value) -> Result<String, String> {
    match v.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
        _ => Err(format!("expected a query in quotes, not {v}")),
    }
}

/// The `[monitor]` table of the config file at `path`.
pub fn read(path: &Path) -> anyhow::Result<Values> {
    let text = crate::config_file::read(path)?;
    parse(&path.display().to_string(), &text)
}

use crate::config_file::Entries;

#[derive(Deserialize)]
struct Top {
    monitor: Option<Entries>,
}

fn parse(path: &str, text: &str) -> anyhow::Result<Values> {
    let top: Top = toml::from_str(text).map_err(|e| anyhow!("invalid config {path}: {e}"))?;
    let mut values = Values::default();
    crate::config_file::apply_entries(path, text, "monitor", top.monitor, |k, v| values.set(k, v))?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_read() {
        let v = parse(
            "ratchet.toml",
            "[engine]\nwait = \"1s\"\n[monitor]\nenabled = false\ninterval = \"500ms\"\n\
             probe_sql = \"SELECT 1\"\nprobe_interval = \"100ms\"\nprobe_window = \"5s\"\n\
             probe_baseline = \"1s\"\nmax_lock_wait_ms = 200\nmax_probe_p99_ms = 30\n\
             max_probe_ratio = 3\nmax_replication_lag_s = 2.5\nmax_active_sessions = 20\n\
             max_rollback_rate = 10.0\npause_factor = 3.0\nmax_throttle = \"20s\"\n\
             max_pause = \"1m\"\nratio_floor_ms = 0.5\nmax_statements_ratio = 6\n\
             max_slot_wal_mb = 2048\nmax_archiver_backlog = 16\n",
        )
        .unwrap();
        assert_eq!(v.enabled, Some(false));
        assert_eq!(v.interval, Some(Duration::from_millis(500)));
        assert_eq!(v.probe_sql.as_deref(), Some("SELECT 1"));
        assert_eq!(v.max_probe_ratio, Some(3.0));
        assert_eq!(v.max_replication_lag_s, Some(2.5));
        assert_eq!(v.max_active_sessions, Some(20));
        assert_eq!(v.max_pause, Some(Duration::from_secs(60)));
        assert_eq!(v.max_throttle, Some(Duration::from_secs(20)));
        assert_eq!(v.ratio_floor_ms, Some(0.5));
        assert_eq!(v.max_statements_ratio, Some(6.0));
        assert_eq!(v.max_slot_wal_mb, Some(2048));
        assert_eq!(v.max_archiver_backlog, Some(16));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_line_and_key() {
        let err = |t: &str| parse("ratchet.toml", t).unwrap_err().to_string();
        let e = err("[monitor]\n\nmax_probe_p99 = 50\n");
        assert!(
            e.starts_with("invalid config ratchet.toml:3: [monitor] max_probe_p99 = 50: unknown key (did you mean `max_probe_p99_ms`?)"),
            "{e}"
        );
        assert!(
            e.contains("[monitor] accepts: enabled, interval, probe_sql"),
            "{e}"
        );
        let e = err("[monitor]\nmax_pause = 60\n");
        assert!(e.contains("\"60ms\" or \"60s\""), "{e}");
        let e = err("[monitor]\nmax_probe_ratio = -1\n");
        assert!(e.contains("expected a number of 0 or more, not -1"), "{e}");
        let e = err("[monitor]\nenabled = \"no\"\n");
        assert!(e.contains("expected true or false"), "{e}");
        let e = err("[monitor]\nmax_lock_wait_ms = 1.5\n");
        assert!(e.contains("a whole number of milliseconds"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_the_defaults() {
        let file = Values {
            max_probe_p99_ms: Some(30),
            max_pause: Some(Duration::from_secs(60)),
            ..Values::default()
        };
        let flags = Values::from_flags(&MonitorArgs {
            max_probe_p99_ms: Some(80),
            no_monitor: true,
            ..MonitorArgs::default()
        });
        let (c, sources) = merge(&flags, &file);
        assert_eq!(c.max_probe_p99_ms, 80);
        assert_eq!(c.max_pause, Duration::from_secs(60));
        assert!(!c.enabled);
        assert_eq!(c.interval, MonitorConfig::default().interval);
        assert_eq!(sources["max_probe_p99_ms"], Source::Flag);
        assert_eq!(sources["max_pause"], Source::File);
        assert_eq!(sources["enabled"], Source::Flag);
        assert_eq!(sources["interval"], Source::Default);
    }

    /// The `[default: …]` of every flag's help is the engine's default.
    #[test]
    fn help_defaults_are_the_engines() {
        use clap::Args as _;
        let cmd = MonitorArgs::augment_args(clap::Command::new("t"));
        let defaults = MonitorConfig::default();
        for &key in KEYS.iter().filter(|k| **k != "enabled") {
            let flag = flag_of(key);
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(flag.trim_start_matches("--")))
                .unwrap_or_else(|| panic!("no flag {flag} for `{key}`"));
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let value = value_of(&defaults, key);
            let shown = match &value {
                serde_json::Value::Null => "none".to_string(),
                v => v.as_str().map(str::to_string).unwrap_or(v.to_string()),
            };
            let expected = format!("[default: {shown}, or `{key}` in ratchet.toml]");
            assert!(
                help.contains(&expected),
                "{flag}: {help}\nexpected {expected}"
            );
        }
    }
}
