//! What a backfill step fills (the worker is `crate::backfill`).

use serde::{Deserialize, Serialize};

use super::Pair;

/// What to backfill: the new column of one dual-write pair, for every pre-existing row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillSpec {
    pub schema: String,
    /// Physical table name: the table, or one leaf partition of a partitioned table
    /// (then in `schema`, which may differ from the parent's).
    pub table: String,
    /// The partitioned table `table` is a leaf partition of: the dual-write triggers are
    /// the parent's (cloned onto each partition by PostgreSQL 13+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Physical key columns with their types; empty means batches over `ctid` ranges.
    pub key: Vec<(String, String)>,
    /// Walk the table in page (`ctid`) ranges although it has a key: the heap's own
    /// order, without an end-key lookup per batch. Plans made before page walks keep
    /// walking key ranges (their stored cursors are keys).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pages: bool,
    pub pair: Pair,
}

impl BackfillSpec {
    /// Whether batches are page ranges (cursors and bounds are page numbers).
    pub fn walks_pages(&self) -> bool {
        self.key.is_empty() || self.pages
    }
}
