//! What a backfill step fills (the worker is `crate::backfill`).

use serde::{Deserialize, Serialize};

use super::Pair;

/// What to backfill: the new column of one dual-write pair, for every pre-existing row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillSpec {
    pub schema: String,
    /// Physical table name.
    pub table: String,
    /// Physical key columns with their types; empty means batches over `ctid` ranges.
    pub key: Vec<(String, String)>,
    pub pair: Pair,
}
