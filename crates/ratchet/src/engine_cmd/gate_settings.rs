//! The `[gates]` table of `ratchet.toml` and the gate flags: which environment this is,
//! how long a migration soaks there before `complete`, and when a silent application
//! instance counts as gone.
//!
//! ```toml
//! [gates]
//! environment = "production"  # default: $RATCHET_ENV, else "development"
//! client_timeout = "2m"
//! [gates.min_soak]            # per environment; or `min_soak = "1h"` for all of them
//! development = "0"
//! staging = "1h"
//! production = "7d"
//! ```
//!
//! Without a `min_soak` for the environment: 0 in `development`, 1 day anywhere else. A
//! flag wins over the file (`--environment`, `--min-soak`, `--client-timeout`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use ratchet_engine::config::GateConfig;
use serde::Deserialize;

use super::args::{format_duration, parse_duration};
use super::settings::{duration, Source};

/// The environment when neither `--environment`, `RATCHET_ENV` nor the file names one.
pub const DEFAULT_ENVIRONMENT: &str = "development";

/// `min_soak` where nothing sets it: 0 in development, a day elsewhere.
pub fn default_min_soak(environment: &str) -> Duration {
    if environment == DEFAULT_ENVIRONMENT {
        Duration::ZERO
    } else {
        Duration::from_secs(86_400)
    }
}

/// The gate flags of the commands that judge them (`complete`, `status`, `flags`,
/// `clients`, `config`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GateArgs {
    /// The environment whose `min_soak` applies [default: $RATCHET_ENV, `environment` in
    /// [gates] of ratchet.toml, else development].
    #[arg(long, env = "RATCHET_ENV")]
    pub environment: Option<String>,
    /// How long a migration stays expanded before `complete` may contract it (e.g. 1h,
    /// 7d) [default: [gates] min_soak for the environment; else 0 in development, 1d
    /// elsewhere].
    #[arg(long, value_parser = parse_duration)]
    pub min_soak: Option<Duration>,
    /// An application instance silent for longer is gone and no longer holds `complete`
    /// back [default: 2m, or `client_timeout` in [gates]].
    #[arg(long, value_parser = parse_duration)]
    pub client_timeout: Option<Duration>,
}

/// The gate settings in effect and where each comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Gates {
    pub environment: String,
    pub config: GateConfig,
    pub sources: BTreeMap<&'static str, Source>,
}

/// The keys `ratchet config` shows, in order.
pub const KEYS: &[&str] = &["environment", "min_soak", "client_timeout"];

impl Gates {
    pub fn rows(&self) -> Vec<(&'static str, serde_json::Value, Source)> {
        KEYS.iter()
            .map(|&k| {
                let v = match k {
                    "environment" => self.environment.clone().into(),
                    "min_soak" => format_duration(self.config.min_soak).into(),
                    _ => format_duration(self.config.client_timeout).into(),
                };
                (
                    k,
                    v,
                    self.sources.get(k).cloned().unwrap_or(Source::Default),
                )
            })
            .collect()
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
struct FileValues {
    environment: Option<String>,
    /// `None` key: one value for every environment.
    min_soak: BTreeMap<Option<String>, Duration>,
    client_timeout: Option<Duration>,
}

/// [`resolve`] with the config file the connection options name (or ./ratchet.toml).
pub fn resolve_for(conn: &super::args::ConnArgs, flags: &GateArgs) -> anyhow::Result<Gates> {
    resolve(
        crate::config_file::locate(conn.config.as_deref()).as_deref(),
        flags,
    )
}

/// Flags over `[gates]` of `file` over the defaults.
pub fn resolve(file: Option<&Path>, flags: &GateArgs) -> anyhow::Result<Gates> {
    let values = match file {
        Some(p) => parse(&p.display().to_string(), &crate::config_file::read(p)?)?,
        None => FileValues::default(),
    };
    let mut sources = BTreeMap::new();
    let src = |flag: bool, file: bool| match (flag, file) {
        (true, _) => Source::Flag,
        (false, true) => Source::File,
        _ => Source::Default,
    };
    let environment = flags
        .environment
        .clone()
        .or(values.environment.clone())
        .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string());
    sources.insert(
        "environment",
        src(flags.environment.is_some(), values.environment.is_some()),
    );
    let from_file = values
        .min_soak
        .get(&Some(environment.clone()))
        .or_else(|| values.min_soak.get(&None))
        .copied();
    sources.insert(
        "min_soak",
        src(flags.min_soak.is_some(), from_file.is_some()),
    );
    let min_soak = flags
        .min_soak
        .or(from_file)
        .unwrap_or_else(|| default_min_soak(&environment));
    sources.insert(
        "client_timeout",
        src(
            flags.client_timeout.is_some(),
            values.client_timeout.is_some(),
        ),
    );
    let client_timeout = flags
        .client_timeout
        .or(values.client_timeout)
        .unwrap_or(GateConfig::default().client_timeout);
    Ok(Gates {
        environment,
        config: GateConfig {
            min_soak,
            client_timeout,
        },
        sources,
    })
}

#[derive(Deserialize)]
struct Top {
    gates: Option<crate::config_file::Entries>,
}

fn parse(path: &str, text: &str) -> anyhow::Result<FileValues> {
    let top: Top = toml::from_str(text).map_err(|e| anyhow!("invalid config {path}: {e}"))?;
    let mut v = FileValues::default();
    crate::config_file::apply_entries(path, text, "gates", top.gates, |key, value| {
        match key {
            "environment" => match value.as_str() {
                Some(s) if !s.is_empty() => v.environment = Some(s.to_string()),
                _ => {
                    return Err(format!(
                        "expected an environment name in quotes, not {value}"
                    ))
                }
            },
            "client_timeout" => v.client_timeout = Some(duration(value)?),
            "min_soak" => match value {
                toml::Value::Table(t) => {
                    for (env, d) in t {
                        let d = duration(d).map_err(|e| format!("[gates.min_soak] {env}: {e}"))?;
                        v.min_soak.insert(Some(env.clone()), d);
                    }
                }
                other => {
                    v.min_soak.insert(None, duration(other)?);
                }
            },
            _ => {
                let known: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
                let hint = ratchet_spec::closest(key, &known)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown key{hint}; [gates] accepts: {}",
                    KEYS.join(", ")
                ));
            }
        }
        Ok(())
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates(text: &str, flags: &GateArgs) -> anyhow::Result<Gates> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ratchet.toml");
        std::fs::write(&p, text).unwrap();
        resolve(Some(&p), flags)
    }

    #[test]
    fn min_soak_per_environment_with_defaults() {
        let text = "[gates]\nclient_timeout = \"30s\"\n[gates.min_soak]\nstaging = \"1h\"\nproduction = \"7d\"\n";
        let g = gates(text, &GateArgs::default()).unwrap();
        assert_eq!(g.environment, "development");
        assert_eq!(g.config.min_soak, Duration::ZERO);
        assert_eq!(g.config.client_timeout, Duration::from_secs(30));
        let prod = GateArgs {
            environment: Some("production".into()),
            ..GateArgs::default()
        };
        assert_eq!(
            gates(text, &prod).unwrap().config.min_soak,
            Duration::from_secs(7 * 86_400)
        );
        let qa = GateArgs {
            environment: Some("qa".into()),
            ..GateArgs::default()
        };
        let g = gates(text, &qa).unwrap();
        assert_eq!(g.config.min_soak, Duration::from_secs(86_400));
        assert_eq!(g.sources["min_soak"], Source::Default);
        let one = gates("[gates]\nmin_soak = \"2h\"\n", &qa).unwrap();
        assert_eq!(one.config.min_soak, Duration::from_secs(7200));
        let flag = GateArgs {
            min_soak: Some(Duration::from_secs(5)),
            ..qa
        };
        assert_eq!(
            gates(text, &flag).unwrap().config.min_soak,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn bad_entries_name_file_line_and_key() {
        let e = gates("[gates]\nmin_sok = \"1h\"\n", &GateArgs::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ratchet.toml:2") && e.contains("did you mean `min_soak`"),
            "{e}"
        );
        let e = gates(
            "[gates]\n[gates.min_soak]\nproduction = 7\n",
            &GateArgs::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("production") && e.contains("bare number"), "{e}");
    }
}
