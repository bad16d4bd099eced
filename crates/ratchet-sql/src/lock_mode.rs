//! PostgreSQL's eight table-level lock modes ("Explicit Locking", table 13.2), ordered by
//! strength, and their SQL names.
//!
//! The SQL name (`ACCESS EXCLUSIVE`, as `LOCK TABLE … IN … MODE` writes it) is the one
//! form a lock mode has outside the program: in messages, in `ratchet plan` output and in
//! JSON, through `Display`/`FromStr` and serde alike.

use std::fmt;
use std::str::FromStr;

/// Table-level lock modes, weakest first: `a < b` means `b` conflicts with at least what
/// `a` conflicts with, for the questions ratchet asks (does it block reads, writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    /// Every mode, weakest first.
    pub const ALL: [LockMode; 8] = [
        LockMode::AccessShare,
        LockMode::RowShare,
        LockMode::RowExclusive,
        LockMode::ShareUpdateExclusive,
        LockMode::Share,
        LockMode::ShareRowExclusive,
        LockMode::Exclusive,
        LockMode::AccessExclusive,
    ];

    /// The SQL name, e.g. `ACCESS EXCLUSIVE`.
    pub fn name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// Blocks plain `SELECT`s.
    pub fn blocks_reads(self) -> bool {
        self == LockMode::AccessExclusive
    }

    /// Blocks `INSERT`/`UPDATE`/`DELETE` (they take ROW EXCLUSIVE, which SHARE and
    /// everything stronger conflict with).
    pub fn blocks_writes(self) -> bool {
        self >= LockMode::Share
    }

    /// "ACCESS EXCLUSIVE lock (blocks reads and writes)".
    pub fn describe(self) -> String {
        let what = if self.blocks_reads() {
            "blocks reads and writes"
        } else if self.blocks_writes() {
            "blocks writes; reads continue"
        } else if self == LockMode::ShareUpdateExclusive {
            "reads and writes continue; other DDL and VACUUM wait"
        } else {
            "conflicts only with stronger locks"
        };
        format!("{} lock ({what})", self.name())
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A lock mode name that is none of PostgreSQL's eight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a PostgreSQL lock mode (ACCESS SHARE … ACCESS EXCLUSIVE)")]
pub struct UnknownLockMode(pub String);

impl FromStr for LockMode {
    type Err = UnknownLockMode;

    /// The SQL name, in any case and with any spacing between its words, as
    /// `LOCK TABLE … IN access  exclusive MODE` accepts it.
    fn from_str(s: &str) -> Result<LockMode, UnknownLockMode> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let normalized = words.join(" ");
        LockMode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(&normalized))
            .ok_or_else(|| UnknownLockMode(s.to_string()))
    }
}

impl serde::Serialize for LockMode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for LockMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<LockMode, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_and_from_str() {
        for mode in LockMode::ALL {
            assert_eq!(mode.to_string().parse::<LockMode>(), Ok(mode));
        }
        assert_eq!(
            "share  row exclusive".parse::<LockMode>(),
            Ok(LockMode::ShareRowExclusive)
        );
        assert!("AccessExclusiveLock".parse::<LockMode>().is_err());
        assert!("".parse::<LockMode>().is_err());
    }

    #[test]
    fn serde_uses_the_sql_name() {
        let json = serde_json::to_string(&LockMode::AccessExclusive).unwrap();
        assert_eq!(json, r#""ACCESS EXCLUSIVE""#);
        let back: LockMode = serde_json::from_str(r#""SHARE UPDATE EXCLUSIVE""#).unwrap();
        assert_eq!(back, LockMode::ShareUpdateExclusive);
        let err = serde_json::from_str::<LockMode>(r#""BIG""#).unwrap_err();
        assert!(
            err.to_string().contains("not a PostgreSQL lock mode"),
            "{err}"
        );
    }

    #[test]
    fn ordered_weakest_first() {
        assert!(LockMode::ALL.windows(2).all(|w| w[0] < w[1]));
        assert!(LockMode::Share.blocks_writes() && !LockMode::Share.blocks_reads());
        assert!(!LockMode::ShareUpdateExclusive.blocks_writes());
        assert_eq!(
            LockMode::AccessExclusive.describe(),
            "ACCESS EXCLUSIVE lock (blocks reads and writes)"
        );
    }
}
