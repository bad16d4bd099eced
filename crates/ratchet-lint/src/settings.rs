//! What every rule may depend on besides the SQL: the target PostgreSQL version, whether
//! files run inside one transaction, table-size thresholds, and the per-rule choices made
//! in `ratchet.toml` (see [`crate::config`]).

use std::collections::BTreeMap;

use crate::rule::{Rule, Severity};

/// A PostgreSQL server version. `minor` is known only from `--pg-version 14.3` or the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PgVersion {
    pub major: u32,
    pub minor: Option<u32>,
}

impl PgVersion {
    pub const fn new(major: u32) -> PgVersion {
        PgVersion { major, minor: None }
    }

    /// Parses `15`, `14.3` or `9.6.24` (for 9.x the first two parts form the major version).
    pub fn parse(s: &str) -> Option<PgVersion> {
        let mut parts = s.trim().split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let second = parts.next().flatten();
        if major < 10 {
            let minor = parts.next().flatten();
            return Some(PgVersion {
                major: major * 10 + second.unwrap_or(0),
                minor,
            });
        }
        Some(PgVersion {
            major,
            minor: second,
        })
    }

    /// From `server_version_num` (e.g. 150004 → 15.4).
    pub fn from_num(num: u32) -> PgVersion {
        if num >= 100_000 {
            PgVersion {
                major: num / 10_000,
                minor: Some(num % 10_000),
            }
        } else {
            PgVersion {
                major: num / 100,
                minor: Some(num % 100),
            }
        }
    }

    /// True for major versions `>= major` (9.6 is `96`).
    pub fn at_least(self, major: u32) -> bool {
        self.major >= major
    }
}

impl std::fmt::Display for PgVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let major = if self.major >= 90 && self.major < 100 {
            format!("{}.{}", self.major / 10, self.major % 10)
        } else {
            self.major.to_string()
        };
        match self.minor {
            Some(m) => write!(f, "{major}.{m}"),
            None => f.write_str(&major),
        }
    }
}

impl Default for PgVersion {
    fn default() -> Self {
        PgVersion::new(15)
    }
}

/// Everything configurable about a lint run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Target server version (`--pg-version`, default 15).
    pub pg_version: PgVersion,
    /// The migration runner wraps each file in one transaction (`--assume-in-transaction`).
    /// A file's `-- ratchet:transaction` / `-- ratchet:no-transaction` directive wins.
    pub assume_in_transaction: bool,
    /// With a database: tables with fewer estimated rows are "tiny" (blocking DDL is `info`).
    pub small_table_rows: f64,
    /// With a database: tables with at least this many rows make blocking DDL an `error`.
    pub large_table_rows: f64,
    /// Rules turned on in addition to the defaults (codes or names).
    pub enable: Vec<String>,
    /// Rules turned off (codes or names).
    pub disable: Vec<String>,
    /// Severity overrides by rule code or name.
    pub severities: BTreeMap<String, Severity>,
    /// Per-rule options (`[lint.rules.<name>]`), e.g. naming-convention patterns.
    pub options: BTreeMap<String, toml::Table>,
    /// Glob patterns of paths not to lint.
    pub exclude: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            pg_version: PgVersion::default(),
            assume_in_transaction: false,
            small_table_rows: 10_000.0,
            large_table_rows: 1_000_000.0,
            enable: Vec::new(),
            disable: Vec::new(),
            severities: BTreeMap::new(),
            options: BTreeMap::new(),
            exclude: Vec::new(),
        }
    }
}

impl Settings {
    /// With `--database-url`, the target is the server's version unless `--pg-version` was
    /// given (`explicit`): the database wins over `ratchet.toml` and the default.
    pub fn target_server(&mut self, server: Option<PgVersion>, explicit: bool) {
        if let (Some(v), false) = (server, explicit) {
            self.pg_version = v;
        }
    }

    /// Whether `rule` runs: `disable` beats `enable`, which beats the default.
    pub fn is_enabled(&self, rule: &Rule) -> bool {
        if self.disable.iter().any(|d| rule.matches(d) || d == "all") {
            return self.enable.iter().any(|e| rule.matches(e));
        }
        rule.enabled_by_default || self.enable.iter().any(|e| rule.matches(e) || e == "all")
    }

    /// The severity configured for `rule`, if any.
    pub fn severity_override(&self, rule: &Rule) -> Option<Severity> {
        self.severities
            .iter()
            .find(|(k, _)| rule.matches(k))
            .map(|(_, v)| *v)
    }

    /// An option from `[lint.rules.<rule name or code>]`.
    pub fn rule_option(&self, rule: &Rule, key: &str) -> Option<&toml::Value> {
        self.options
            .iter()
            .find(|(k, _)| rule.matches(k))
            .and_then(|(_, t)| t.get(key))
    }
}
