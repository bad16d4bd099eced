//! The engine settings a command runs with, and where each comes from: a flag, else the
//! `[engine]` table of `ratchet.toml`, else `ratchet_engine::Config::default()`.
//!
//! ```toml
//! [engine]
//! schema = "public"
//! state_schema = "ratchet"
//! lock_timeout = "500ms"     # durations as the flags take them: "500ms", "2s", "1m"
//! max_attempts = 30
//! wait = "10s"
//! batch_target = "200ms"
//! batch_min = 10
//! batch_max = 100000
//! backfill_workers = 1       # 1 to 64
//! ```
//!
//! Each key is named like its flag (`--lock-timeout` is `lock_timeout`). Parsing is
//! strict, as for `[lint]`: an unknown key or a value of the wrong kind is an error that
//! names the file, the line, the key and what it accepts. A typo must not silently leave
//! a 30 s lock timeout in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use ratchet_engine::config::Clamped;
use ratchet_engine::Config;
use serde::Deserialize;

use super::args::{format_duration, parse_duration, BackfillArgs, ConnArgs, WORKERS};
use super::monitor_settings::{self, MonitorArgs};

/// Every key of `[engine]`, in the order `ratchet config` shows them.
pub const KEYS: &[&str] = &[
    "schema",
    "state_schema",
    "lock_timeout",
    "max_attempts",
    "wait",
    "batch_target",
    "batch_min",
    "batch_max",
    "backfill_workers",
];

/// The settings a flag or the `[engine]` table gives; `None`: not given there.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Values {
    pub schema: Option<String>,
    pub state_schema: Option<String>,
    pub lock_timeout: Option<Duration>,
    pub max_attempts: Option<u32>,
    pub wait: Option<Duration>,
    pub batch_target: Option<Duration>,
    pub batch_min: Option<i64>,
    pub batch_max: Option<i64>,
    pub backfill_workers: Option<u16>,
}

/// Where the value of a setting comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    File,
    Default,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::File => "file",
            Source::Default => "default",
        }
    }
}

/// The settings of one engine command.
#[derive(Debug)]
pub struct Settings {
    pub config: Config,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// The source of each key of [`KEYS`].
    pub sources: BTreeMap<&'static str, Source>,
    /// The batch sizes the engine's rule changed (see `BackfillConfig::normalize`).
    pub clamped: Vec<Clamped>,
    /// The source of each key of the `[monitor]` table (`monitor_settings::KEYS`).
    pub monitor_sources: BTreeMap<&'static str, Source>,
}

impl Settings {
    /// Flags over the `[engine]` table of `--config` or `./ratchet.toml` over the
    /// defaults. `batches` is `None` for a command without backfill flags: the table's
    /// backfill settings still apply.
    pub fn resolve(conn: &ConnArgs, batches: Option<&BackfillArgs>) -> anyhow::Result<Settings> {
        Settings::resolve_with(conn, batches, None)
    }

    /// [`Settings::resolve`], and the `[monitor]` table under the monitor flags (`None`
    /// for a command without them: the table still applies).
    pub fn resolve_with(
        conn: &ConnArgs,
        batches: Option<&BackfillArgs>,
        monitor: Option<&MonitorArgs>,
    ) -> anyhow::Result<Settings> {
        let file = crate::config_file::locate(conn.config.as_deref());
        let (from_file, monitor_file) = match &file {
            Some(path) => (read(path)?, monitor_settings::read(path)?),
            None => (Values::default(), monitor_settings::Values::default()),
        };
        let flags = Values::from_flags(conn, batches);
        let mut settings = Settings::merge(&flags, &from_file, file);
        let none = MonitorArgs::default();
        let monitor_flags = monitor_settings::Values::from_flags(monitor.unwrap_or(&none));
        let (config, sources) = monitor_settings::merge(&monitor_flags, &monitor_file);
        settings.config.monitor = config;
        settings.monitor_sources = sources;
        Ok(settings)
    }

    fn merge(flags: &Values, file: &Values, path: Option<PathBuf>) -> Settings {
        let mut sources = BTreeMap::new();
        let mut pick = |key: &'static str, flag: bool, in_file: bool| {
            let source = match (flag, in_file) {
                (true, _) => Source::Flag,
                (false, true) => Source::File,
                (false, false) => Source::Default,
            };
            sources.insert(key, source);
        };
        macro_rules! take {
            ($field:ident) => {{
                pick(
                    stringify!($field),
                    flags.$field.is_some(),
                    file.$field.is_some(),
                );
                flags.$field.clone().or_else(|| file.$field.clone())
            }};
        }
        let mut config = Config::default();
        let b = &mut config.backfill;
        set(&mut config.schema, take!(schema));
        set(&mut config.state_schema, take!(state_schema));
        set(&mut config.lock_timeout, take!(lock_timeout));
        set(&mut config.max_attempts, take!(max_attempts));
        set(&mut config.lock_wait, take!(wait));
        set(&mut b.target, take!(batch_target));
        set(&mut b.min, take!(batch_min));
        set(&mut b.max, take!(batch_max));
        set(&mut b.workers, take!(backfill_workers).map(usize::from));
        let clamped = config.normalize();
        Settings {
            config,
            file: path,
            sources,
            clamped,
            monitor_sources: BTreeMap::new(),
        }
    }

    /// `(key, value, source)` for every key of [`KEYS`], the values as the engine uses
    /// them (after clamping).
    pub fn rows(&self) -> Vec<(&'static str, serde_json::Value, Source)> {
        KEYS.iter()
            .map(|&key| {
                let source = self.sources.get(key).cloned().unwrap_or(Source::Default);
                (key, value_of(&self.config, key), source)
            })
            .collect()
    }

    /// `(key, value, source)` for every key of the `[monitor]` table.
    pub fn monitor_rows(&self) -> Vec<(&'static str, serde_json::Value, Source)> {
        monitor_settings::KEYS
            .iter()
            .map(|&key| {
                let source = self
                    .monitor_sources
                    .get(key)
                    .cloned()
                    .unwrap_or(Source::Default);
                let value = monitor_settings::value_of(&self.config.monitor, key);
                (key, value, source)
            })
            .collect()
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// The value of `key` in `config`, written as in ratchet.toml.
fn value_of(config: &Config, key: &str) -> serde_json::Value {
    let d = |d: Duration| serde_json::Value::from(format_duration(d));
    let b = &config.backfill;
    match key {
        "schema" => config.schema.clone().into(),
        "state_schema" => config.state_schema.clone().into(),
        "lock_timeout" => d(config.lock_timeout),
        "max_attempts" => config.max_attempts.into(),
        "wait" => d(config.lock_wait),
        "batch_target" => d(b.target),
        "batch_min" => b.min.into(),
        "batch_max" => b.max.into(),
        "backfill_workers" => b.workers.into(),
        _ => serde_json::Value::Null,
    }
}

impl Values {
    fn from_flags(conn: &ConnArgs, batches: Option<&BackfillArgs>) -> Values {
        let none = BackfillArgs::default();
        let b = batches.unwrap_or(&none);
        Values {
            schema: conn.schema.clone(),
            state_schema: conn.state_schema.clone(),
            lock_timeout: conn.lock_timeout,
            max_attempts: conn.max_attempts,
            wait: conn.wait,
            batch_target: b.batch_target,
            batch_min: b.batch_min,
            batch_max: b.batch_max,
            backfill_workers: b.backfill_workers,
        }
    }

    /// Set `key` from its TOML value; the error says what the key accepts.
    fn set(&mut self, key: &str, v: &toml::Value) -> Result<(), String> {
        match key {
            "schema" => self.schema = Some(name(v)?),
            "state_schema" => self.state_schema = Some(name(v)?),
            "lock_timeout" => self.lock_timeout = Some(duration(v)?),
            "max_attempts" => self.max_attempts = Some(integer(v, "a whole number of attempts")?),
            "wait" => self.wait = Some(duration(v)?),
            "batch_target" => self.batch_target = Some(duration(v)?),
            "batch_min" => self.batch_min = Some(integer(v, "a whole number of rows")?),
            "batch_max" => self.batch_max = Some(integer(v, "a whole number of rows")?),
            "backfill_workers" => self.backfill_workers = Some(workers(v)?),
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }
}

fn unknown_key(key: &str) -> String {
    let known: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    let hint = ratchet_spec::closest(key, &known)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    format!("unknown key{hint}; [engine] accepts: {}", KEYS.join(", "))
}

fn name(v: &toml::Value) -> Result<String, String> {
    match v.as_str() {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(format!("expected a schema name in quotes, not {v}")),
    }
}

/// A duration as the flags take it (`"500ms"`, `"2s"`, `"1m"`); a bare `0` is fine, any
/// other number is refused as on the command line (seconds or milliseconds?).
pub(super) fn duration(v: &toml::Value) -> Result<Duration, String> {
    let expected = "expected a duration in quotes with a unit, like \"500ms\", \"2s\" or \"1m\"";
    match v {
        toml::Value::String(s) => parse_duration(s).map_err(|e| format!("{e}; {expected}")),
        toml::Value::Integer(0) => Ok(Duration::ZERO),
        toml::Value::Integer(n) => Err(format!(
            "{expected}, not the bare number {n} (\"{n}ms\" or \"{n}s\"?)"
        )),
        other => Err(format!("{expected}, not {other}")),
    }
}

pub(super) fn integer<T: TryFrom<i64>>(v: &toml::Value, what: &str) -> Result<T, String> {
    v.as_integer()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("expected {what}, not {v}"))
}

fn workers(v: &toml::Value) -> Result<u16, String> {
    let what = format!(
        "a whole number from {} to {}",
        WORKERS.start(),
        WORKERS.end()
    );
    let n: u16 = integer(v, &what)?;
    match WORKERS.contains(&i64::from(n)) {
        true => Ok(n),
        false => Err(format!("expected {what}, not {v}")),
    }
}

/// The `[engine]` table of the config file at `path` (other tables belong to other
/// commands; an unknown one is an error, see `config_file::check_tables`).
pub fn read(path: &Path) -> anyhow::Result<Values> {
    let text = crate::config_file::read(path)?;
    parse(&path.display().to_string(), &text)
}

use crate::config_file::Entries;

#[derive(Deserialize)]
struct Top {
    engine: Option<Entries>,
}

fn parse(path: &str, text: &str) -> anyhow::Result<Values> {
    crate::config_file::check_tables(path, text)?;
    let top: Top = toml::from_str(text).map_err(|e| anyhow!("invalid config {path}: {e}"))?;
    let mut values = Values::default();
    crate::config_file::apply_entries(path, text, "engine", top.engine, |k, v| values.set(k, v))?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse("ratchet.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn every_key_is_read() {
        let v = parse(
            "ratchet.toml",
            "[lint]\nfail_on = \"error\"\n[engine]\nschema = \"app\"\nstate_schema = \"rs\"\n\
             lock_timeout = \"2s\"\nmax_attempts = 5\nwait = 0\nbatch_target = \"1s\"\n\
             batch_min = 1\nbatch_max = 50\nbackfill_workers = 4\n",
        )
        .unwrap();
        assert_eq!(
            v,
            Values {
                schema: Some("app".into()),
                state_schema: Some("rs".into()),
                lock_timeout: Some(Duration::from_secs(2)),
                max_attempts: Some(5),
                wait: Some(Duration::ZERO),
                batch_target: Some(Duration::from_secs(1)),
                batch_min: Some(1),
                batch_max: Some(50),
                backfill_workers: Some(4),
            }
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_line_and_key() {
        let e = err("[engine]\n\nlock_timout = \"1s\"\n");
        assert!(
            e.starts_with("invalid config ratchet.toml:3: [engine] lock_timout"),
            "{e}"
        );
        assert!(e.contains("did you mean `lock_timeout`?"), "{e}");
        assert!(
            e.contains("accepts: schema, state_schema, lock_timeout"),
            "{e}"
        );
        let e = err("[engine]\nlock_timeout = 500\n");
        assert!(
            e.starts_with("invalid config ratchet.toml:2: [engine] lock_timeout = 500:"),
            "{e}"
        );
        assert!(e.contains("\"500ms\" or \"500s\""), "{e}");
        let e = err("[engine]\nwait = \"soon\"\n");
        assert!(e.contains("`soon` is not a duration"), "{e}");
        let e = err("[engine]\nbackfill_workers = 65\n");
        assert!(e.contains("a whole number from 1 to 64, not 65"), "{e}");
        let e = err("[engine]\nmax_attempts = \"3\"\n");
        assert!(
            e.contains("expected a whole number of attempts, not \"3\""),
            "{e}"
        );
        let e = err("[engine]\nschema = 1\n");
        assert!(e.contains("schema name"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_the_defaults() {
        let file = Values {
            lock_timeout: Some(Duration::from_secs(3)),
            batch_max: Some(7),
            ..Values::default()
        };
        let flags = Values {
            batch_max: Some(90),
            ..Values::default()
        };
        let s = Settings::merge(&flags, &file, Some("ratchet.toml".into()));
        assert_eq!(s.config.lock_timeout, Duration::from_secs(3));
        assert_eq!(s.config.backfill.max, 90);
        assert_eq!(s.config.max_attempts, Config::default().max_attempts);
        assert_eq!(s.sources["lock_timeout"], Source::File);
        assert_eq!(s.sources["batch_max"], Source::Flag);
        assert_eq!(s.sources["schema"], Source::Default);
        // The first batch (1000 by default) fits into the bounds the engine clamps to.
        assert_eq!(s.config.backfill.initial, 90);
    }

    /// The `[default: …]` of every flag's help is the engine's default (the help texts
    /// are written by hand; `Config::default()` is the truth).
    #[test]
    fn help_defaults_are_the_engines() {
        use clap::Args as _;
        let cmd = BackfillArgs::augment_args(ConnArgs::augment_args(clap::Command::new("t")));
        let defaults = Settings::merge(&Values::default(), &Values::default(), None);
        for (key, value, _) in defaults.rows() {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == key)
                .unwrap_or_else(|| panic!("no flag for `{key}`"));
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let shown = value
                .as_str()
                .map(str::to_string)
                .unwrap_or(value.to_string());
            let expected = format!("[default: {shown}, or `{key}` in ratchet.toml]");
            assert!(
                help.contains(&expected),
                "--{key}: {help}\nexpected {expected}"
            );
        }
    }
}
