//! The `[lint]` table of `ratchet.toml`:
//!
//! ```toml
//! [lint]
//! pg_version = "15"            # or 15, or "14.3"
//! assume_in_transaction = true
//! fail_on = "warning"          # error | warning | info
//! exclude = ["migrations/legacy/**", "**/*_seed.sql"]
//! enable = ["naming-convention"]
//! disable = ["prefer-bigint", "A7"]
//! small_table_rows = 10000     # with --database-url
//! large_table_rows = 1000000
//!
//! [lint.severity]
//! varchar-length-limit = "error"
//!
//! [lint.rules.naming-convention]
//! table = "^[a-z][a-z0-9_]*$"
//! ```
//!
//! Unknown keys are errors (a typo must not silently disable a check).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::rule::Severity;
use crate::settings::{PgVersion, Settings};
use crate::LintError;

/// The `[lint]` table; every field optional so that flags and defaults fill the gaps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintConfig {
    pub pg_version: Option<toml::Value>,
    pub assume_in_transaction: Option<bool>,
    pub fail_on: Option<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub enable: Vec<String>,
    #[serde(default)]
    pub disable: Vec<String>,
    pub small_table_rows: Option<f64>,
    pub large_table_rows: Option<f64>,
    #[serde(default)]
    pub severity: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: BTreeMap<String, toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    lint: Option<LintConfig>,
}

impl LintConfig {
    /// Reads the `[lint]` table of a `ratchet.toml` text (other tables are ignored: they
    /// belong to other commands).
    pub fn from_toml(path: &str, text: &str) -> Result<LintConfig, LintError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| LintError::Config {
            path: path.into(),
            message: e.to_string(),
        })?;
        let cfg = file.lint.unwrap_or_default();
        cfg.check(path)?;
        Ok(cfg)
    }

    fn check(&self, path: &str) -> Result<(), LintError> {
        let bad = |message: String| {
            Err(LintError::Config {
                path: path.into(),
                message,
            })
        };
        for name in self
            .enable
            .iter()
            .chain(&self.disable)
            .chain(self.severity.keys())
            .chain(self.rules.keys())
        {
            if name != "all" && crate::rules::find(name).is_none() {
                return bad(format!(
                    "unknown rule `{name}`{} (`ratchet explain --list` lists every rule)",
                    crate::rules::did_you_mean(name)
                ));
            }
        }
        for (name, sev) in &self.severity {
            if Severity::parse(sev).is_none() {
                return bad(format!(
                    "severity of `{name}` must be error, warning or info, not `{sev}`"
                ));
            }
        }
        if let Some(f) = &self.fail_on {
            if Severity::parse(f).is_none() {
                return bad(format!("fail_on must be error, warning or info, not `{f}`"));
            }
        }
        if self.pg_version.is_some() && self.pg_version()?.is_none() {
            return bad("pg_version must look like 15 or \"14.3\"".into());
        }
        Ok(())
    }

    /// The configured version, if any.
    pub fn pg_version(&self) -> Result<Option<PgVersion>, LintError> {
        Ok(match &self.pg_version {
            None => None,
            Some(toml::Value::Integer(i)) => u32::try_from(*i).ok().map(PgVersion::new),
            Some(toml::Value::Float(f)) => PgVersion::parse(&f.to_string()),
            Some(toml::Value::String(s)) => PgVersion::parse(s),
            Some(_) => None,
        })
    }

    /// The configured `fail_on`, if any.
    pub fn fail_on(&self) -> Option<Severity> {
        self.fail_on.as_deref().and_then(Severity::parse)
    }

    /// Applies this config on top of `settings` (flags are applied after, by the caller).
    pub fn apply(&self, settings: &mut Settings) {
        if let Ok(Some(v)) = self.pg_version() {
            settings.pg_version = v;
        }
        if let Some(t) = self.assume_in_transaction {
            settings.assume_in_transaction = t;
        }
        if let Some(n) = self.small_table_rows {
            settings.small_table_rows = n;
        }
        if let Some(n) = self.large_table_rows {
            settings.large_table_rows = n;
        }
        settings.exclude.extend(self.exclude.iter().cloned());
        settings.enable.extend(self.enable.iter().cloned());
        settings.disable.extend(self.disable.iter().cloned());
        for (k, v) in &self.severity {
            if let Some(s) = Severity::parse(v) {
                settings.severities.insert(k.clone(), s);
            }
        }
        for (k, v) in &self.rules {
            settings.options.insert(k.clone(), v.clone());
        }
    }
}

/// Whether `path` matches one of the glob `patterns` (`*`, `?`, `**`). A pattern without a
/// `/` matches the file name or any path component sequence ending the path.
pub fn is_excluded(path: &str, patterns: &[String]) -> bool {
    let path = path.replace('\\', "/");
    let path = path.trim_start_matches("./");
    patterns.iter().any(|p| {
        let p = p.trim_start_matches("./");
        glob_match(p.as_bytes(), path.as_bytes())
            || glob_match(format!("**/{p}").as_bytes(), path.as_bytes())
            || glob_match(
                format!("{}/**", p.trim_end_matches('/')).as_bytes(),
                path.as_bytes(),
            )
            || glob_match(
                format!("**/{}/**", p.trim_end_matches('/')).as_bytes(),
                path.as_bytes(),
            )
    })
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match p {
        [] => s.is_empty(),
        [b'*', b'*', b'/', rest @ ..] => {
            (0..=s.len()).any(|i| (i == 0 || s[i - 1] == b'/') && glob_match(rest, &s[i..]))
        }
        [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| glob_match(rest, &s[i..])),
        [b'*', rest @ ..] => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| glob_match(rest, &s[i..])),
        [b'?', rest @ ..] => !s.is_empty() && s[0] != b'/' && glob_match(rest, &s[1..]),
        [c, rest @ ..] => !s.is_empty() && s[0] == *c && glob_match(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let pats = |p: &str| vec![p.to_string()];
        assert!(is_excluded(
            "migrations/legacy/001.sql",
            &pats("migrations/legacy/**")
        ));
        assert!(is_excluded("migrations/legacy/001.sql", &pats("legacy")));
        assert!(is_excluded("a/b/x_seed.sql", &pats("**/*_seed.sql")));
        assert!(is_excluded("x_seed.sql", &pats("*_seed.sql")));
        assert!(!is_excluded("migrations/001.sql", &pats("legacy")));
        assert!(!is_excluded("migrations/001.sql", &pats("*.yaml")));
    }

    #[test]
    fn config_round_trip() {
        let cfg = LintConfig::from_toml(
            "ratchet.toml",
            "[lint]\npg_version = \"14.3\"\ndisable = [\"A18\"]\n[lint.severity]\nA18 = \"info\"\n[engine]\nx = 1\n",
        )
        .expect("valid config");
        let mut s = Settings::default();
        cfg.apply(&mut s);
        assert_eq!(
            s.pg_version,
            PgVersion {
                major: 14,
                minor: Some(3)
            }
        );
        assert_eq!(s.severities.get("A18"), Some(&Severity::Info));
    }

    #[test]
    fn config_rejects_unknown_rule() {
        let err = LintConfig::from_toml("ratchet.toml", "[lint]\ndisable = [\"no-such-rule\"]\n");
        assert!(err.is_err());
    }
}
