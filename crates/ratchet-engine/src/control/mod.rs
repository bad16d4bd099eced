//! Operator control of a running ratchet process, from any machine that reaches the
//! database: `ratchet pause` / `ratchet resume` and `ratchet set batch-size 500` store a
//! control in the state schema (`state::Control`); the running process reads them from a
//! session of its own a few times per batch time ([`Controls`], a [`Throttle`] hook), so
//! that a pause stops the backfill between two batches and a new batch size applies to
//! the next batch, without a restart.
//!
//! The settings and their accepted values are defined here once: the CLI parses and
//! names them from [`Setting`], the hook applies them.
//!
//! [`Throttle`]: crate::backfill::Throttle

mod hook;

pub use hook::{ControlHandle, Controls};

/// The control key of `ratchet pause` (its value is the reason, possibly empty).
pub const PAUSE: &str = "pause";

/// A setting an operator may change while ratchet runs (`ratchet set NAME VALUE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// A fixed batch size, in rows (the adaptive sizing is off while it is set).
    BatchSize,
    /// The batch duration the adaptive sizing aims at, in milliseconds.
    TargetBatchMs,
    /// Backfill workers walking slices at once.
    Workers,
    /// The probe p99 above which the monitors pause, in milliseconds (applied by the
    /// monitors, which read it from the controls).
    MaxProbeP99Ms,
}

impl Setting {
    pub const ALL: [Setting; 4] = [
        Setting::BatchSize,
        Setting::TargetBatchMs,
        Setting::Workers,
        Setting::MaxProbeP99Ms,
    ];

    /// The key in the `controls` table.
    pub fn key(self) -> &'static str {
        match self {
            Setting::BatchSize => "batch_size",
            Setting::TargetBatchMs => "target_batch_ms",
            Setting::Workers => "workers",
            Setting::MaxProbeP99Ms => "max_probe_p99_ms",
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Setting::BatchSize => "batch-size",
            Setting::TargetBatchMs => "target-batch-ms",
            Setting::Workers => "workers",
            Setting::MaxProbeP99Ms => "max-probe-p99-ms",
        }
    }

    /// The values it accepts.
    pub fn range(self) -> std::ops::RangeInclusive<i64> {
        match self {
            // `batch_size` is an `int` column of the state schema.
            Setting::BatchSize => 1..=i64::from(i32::MAX),
            Setting::TargetBatchMs | Setting::MaxProbeP99Ms => 1..=3_600_000,
            // As `--backfill-workers`.
            Setting::Workers => 1..=64,
        }
    }

    /// By its command-line name or its key (`batch-size`, `batch_size`).
    pub fn parse(name: &str) -> Option<Setting> {
        let name = name.trim().replace('_', "-").to_ascii_lowercase();
        Setting::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The command-line names, for messages.
    pub fn names() -> String {
        let names: Vec<&str> = Setting::ALL.iter().map(|s| s.name()).collect();
        names.join(", ")
    }

    /// A value given on the command line, checked against [`Setting::range`]; the error
    /// says what is accepted.
    pub fn value(self, text: &str) -> Result<i64, String> {
        let range = self.range();
        let accepted = format!(
            "{} takes a whole number from {} to {} (or `default` to clear it)",
            self.name(),
            range.start(),
            range.end()
        );
        match text.trim().parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(format!("`{text}` is not accepted: {accepted}")),
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One change an operator makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Pause {
        reason: Option<String>,
    },
    Resume,
    /// A value already checked by [`Setting::value`].
    Set(Setting, i64),
    /// Back to the configured value.
    Reset(Setting),
}

impl Change {
    /// The control's key and its new value (`None`: cleared).
    pub fn key_value(&self) -> (&'static str, Option<String>) {
        match self {
            Change::Pause { reason } => (PAUSE, Some(reason.clone().unwrap_or_default())),
            Change::Resume => (PAUSE, None),
            Change::Set(s, v) => (s.key(), Some(v.to_string())),
            Change::Reset(s) => (s.key(), None),
        }
    }
}

/// What a change did: the control's value before and after, and whether it changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Changed {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub changed: bool,
    /// The active migration when it was made, if any.
    pub migration: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_by_either_name() {
        assert_eq!(Setting::parse("batch-size"), Some(Setting::BatchSize));
        assert_eq!(
            Setting::parse("max_probe_p99_ms"),
            Some(Setting::MaxProbeP99Ms)
        );
        assert_eq!(Setting::parse("nosuch"), None);
        for s in Setting::ALL {
            assert_eq!(Setting::parse(s.key()), Some(s));
        }
    }

    #[test]
    fn values_are_positive_and_bounded() {
        assert_eq!(Setting::BatchSize.value("500"), Ok(500));
        let err = Setting::BatchSize.value("-3").unwrap_err();
        assert!(err.contains("from 1 to"), "{err}");
        assert!(Setting::BatchSize.value("0").is_err());
        assert!(Setting::Workers.value("65").is_err());
        assert!(Setting::TargetBatchMs.value("fast").is_err());
    }
}
