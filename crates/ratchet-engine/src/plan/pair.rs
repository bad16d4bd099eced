//! The data of a dual-write pair (its SQL is built in `crate::dualwrite`).

use serde::{Deserialize, Serialize};

/// One pair of physical columns kept in sync, or one side alone (`add_column` with `up`
/// has no old column; `drop_column` with `down` has no new one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub schema: String,
    /// Physical table.
    pub table: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// `up` over the old version's column names.
    pub up: Option<String>,
    /// `down` over the new version's column names.
    pub down: Option<String>,
    /// The old version's columns: `(logical, physical)`.
    pub old_names: Vec<(String, String)>,
    /// The new version's columns: `(logical, physical)`.
    pub new_names: Vec<(String, String)>,
    /// Base name of the trigger function and triggers.
    pub name: String,
    /// Whether the table has a key (without one, the backfill walks `ctid` ranges).
    pub keyed: bool,
}
