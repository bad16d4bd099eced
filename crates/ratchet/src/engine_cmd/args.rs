//! The engine commands' arguments (clap derive; the help text is the doc comment).
//!
//! The engine settings are `Option`s without a clap default: a flag that is not given
//! leaves the value to the `[engine]` table of `ratchet.toml`, then to
//! `ratchet_engine::Config::default()` (see `settings.rs`). The `[default: …]` in each
//! help text is checked against `Config::default()` by a test there.

use std::path::PathBuf;
use std::time::Duration;

pub use super::monitor_settings::MonitorArgs;

/// Connection options shared by every command that talks to the database. Each may also
/// be set in the `[engine]` table of `ratchet.toml` (the key is the option's name with
/// `_` for `-`); the flag wins.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnArgs {
    /// PostgreSQL connection URL, e.g. postgres://user@host:5432/db.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Config file whose `[engine]` table sets the engine options' defaults (schemas, lock
    /// timeout, attempts, wait, backfill batches and workers) [default: ./ratchet.toml
    /// when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The application schema to manage [default: public, or `schema` in ratchet.toml].
    #[arg(long)]
    pub schema: Option<String>,
    /// Where ratchet keeps its state (migrations, steps, events) [default: ratchet, or
    /// `state_schema` in ratchet.toml].
    #[arg(long)]
    pub state_schema: Option<String>,
    /// lock_timeout of every DDL statement (e.g. 500ms, 2s); on timeout the statement is
    /// retried with backoff instead of waiting and blocking the queries behind it
    /// [default: 500ms, or `lock_timeout` in ratchet.toml].
    #[arg(long, value_parser = parse_duration)]
    pub lock_timeout: Option<Duration>,
    /// Attempts per step on lock timeout or deadlock before giving up [default: 30, or
    /// `max_attempts` in ratchet.toml].
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// How long to wait for another ratchet process to finish (e.g. 30s, 5m; 0: refuse at
    /// once). The default also covers a previous run whose connection the server is still
    /// closing [default: 10s, or `wait` in ratchet.toml].
    #[arg(long, value_parser = parse_duration)]
    pub wait: Option<Duration>,
}

/// Backfill batch sizing; each may also be set in the `[engine]` table of `ratchet.toml`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BackfillArgs {
    /// The duration each backfill batch should take (e.g. 200ms, 1s); the batch size
    /// adapts to it [default: 200ms, or `batch_target` in ratchet.toml].
    #[arg(long, value_parser = parse_duration)]
    pub batch_target: Option<Duration>,
    /// Smallest backfill batch, in rows [default: 10, or `batch_min` in ratchet.toml].
    #[arg(long)]
    pub batch_min: Option<i64>,
    /// Largest backfill batch, in rows [default: 100000, or `batch_max` in ratchet.toml].
    #[arg(long)]
    pub batch_max: Option<i64>,
    /// Sessions filling a table at once, each on its own slice of the key range. More
    /// workers finish sooner and load the server more; a resumed backfill may use more
    /// workers than it started with [default: 1, or `backfill_workers` in ratchet.toml].
    #[arg(long, value_parser = clap::value_parser!(u16).range(WORKERS))]
    pub backfill_workers: Option<u16>,
}

/// The range `--backfill-workers` (and `backfill_workers` in ratchet.toml) accepts.
pub const WORKERS: std::ops::RangeInclusive<i64> = 1..=64;

#[derive(clap::Args, Debug)]
pub struct CompleteArgs {
    /// Complete even though the latest validation is missing or failed. Loud, and recorded
    /// in the event log.
    #[arg(long)]
    pub skip_validation: bool,
    /// Complete although a read flag is not fully on, the soak time has not elapsed or an
    /// application instance still uses an older version. Loud, and recorded in the event
    /// log. Never passes over an unfinished backfill or a freeze.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub gates: super::gate_settings::GateArgs,
    #[command(flatten)]
    pub observe: super::observe::ObserveArgs,
    #[command(flatten)]
    pub monitor: MonitorArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct BackfillCmdArgs {
    #[command(flatten)]
    pub batches: BackfillArgs,
    #[command(flatten)]
    pub observe: super::observe::ObserveArgs,
    #[command(flatten)]
    pub monitor: MonitorArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Recompute the mismatching rows from `up`.
    #[arg(long)]
    pub repair: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub observe: super::observe::ObserveArgs,
    #[command(flatten)]
    pub monitor: MonitorArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The migration file (YAML, JSON or TOML).
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// The migration file (YAML, JSON or TOML).
    pub file: PathBuf,
    /// Complete the migration right after starting it (validating backfills first).
    #[arg(long)]
    pub complete: bool,
    /// Leave the backfill (and the version schema, created once the new columns are
    /// filled) for `ratchet backfill` instead of running it now.
    #[arg(long)]
    pub no_backfill: bool,
    #[command(flatten)]
    pub batches: BackfillArgs,
    #[command(flatten)]
    pub observe: super::observe::ObserveArgs,
    #[command(flatten)]
    pub monitor: MonitorArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// Folder of migration files, applied in file-name order.
    pub dir: PathBuf,
    /// Complete the last migration too (the others are always completed).
    #[arg(long)]
    pub complete: bool,
    #[command(flatten)]
    pub batches: BackfillArgs,
    #[command(flatten)]
    pub observe: super::observe::ObserveArgs,
    #[command(flatten)]
    pub monitor: MonitorArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Show the running migration's status block, refreshed every --interval, until it
    /// leaves the active phase or Ctrl-C (with --format json: one JSON object per tick).
    #[arg(long)]
    pub watch: bool,
    /// Time between two refreshes of --watch.
    #[arg(long, value_parser = parse_duration, default_value = "1s", requires = "watch")]
    pub interval: Duration,
    #[command(flatten)]
    pub gates: super::gate_settings::GateArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Probe the server and the role: what ratchet can use, what is missing.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Print the engine settings every engine command would use, and where each comes from
/// (a flag, the `[engine]` table of ratchet.toml, or the default). Needs no database.
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub batches: BackfillArgs,
    #[command(flatten)]
    pub monitor: MonitorArgs,
    #[command(flatten)]
    pub gates: super::gate_settings::GateArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `ratchet pause`: the running process stops between two batches (and before its next
/// DDL attempt) until `ratchet resume`.
#[derive(clap::Args, Debug)]
pub struct PauseArgs {
    /// Why, for the event log and the running process's output.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `ratchet set KEY VALUE`: change a setting of the running process, from its next batch.
#[derive(clap::Args, Debug)]
pub struct SetArgs {
    /// batch-size (rows, fixed), target-batch-ms, workers, max-probe-p99-ms. Without it,
    /// lists the controls set now.
    pub key: Option<String>,
    /// A whole number from 1, or `default` to go back to the configured value.
    // Hyphens allowed: `-3` is a bad value to name, not an unknown flag.
    #[arg(allow_hyphen_values = true)]
    pub value: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `ratchet events`: the event log.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Keep printing new events as they are written, until Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
    /// Only this migration's events.
    #[arg(long, value_name = "NAME")]
    pub migration: Option<String>,
    /// Only the latest N events [default: all].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub limit: Option<i64>,
    /// text: one line per event; json: one JSON object per line.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `500ms`, `2s`, `1m`; a number without a unit is refused (was it seconds or
/// milliseconds? `--wait 1` used to mean 1 ms, issue 9). `0` needs no unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let Some(i) = s.find(|c: char| !c.is_ascii_digit() && c != '.') else {
        if s.parse::<f64>() == Ok(0.0) {
            return Ok(Duration::ZERO);
        }
        return Err(format!(
            "`{s}` has no unit: write {s}s for seconds or {s}ms for milliseconds"
        ));
    };
    let (num, unit) = (&s[..i], s[i..].trim());
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 500ms, 2s, 1m)"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000.0,
        "m" | "min" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        "d" => n * 86_400_000.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (use ms, s, m, h or d)"
            ))
        }
    };
    Ok(Duration::from_millis(ms as u64))
}

/// A duration written the way [`parse_duration`] reads it back: `500ms`, `2s`, `1m`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0".into(),
        _ if ms.is_multiple_of(86_400_000) => format!("{}d", ms / 86_400_000),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::{format_duration, parse_duration};
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("250").unwrap_err().contains("250ms"));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn formatted_durations_read_back() {
        for (d, s) in [
            (0, "0"),
            (500, "500ms"),
            (2000, "2s"),
            (1500, "1500ms"),
            (120_000, "2m"),
            (7_200_000, "2h"),
            (604_800_000, "7d"),
        ] {
            let d = Duration::from_millis(d);
            assert_eq!(format_duration(d), s);
            assert_eq!(parse_duration(s).unwrap(), d);
        }
    }
}
