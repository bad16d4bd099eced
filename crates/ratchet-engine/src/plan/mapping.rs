//! How a version shows the physical tables (the views are built by `crate::views`).

use serde::{Deserialize, Serialize};

/// How physical tables and columns appear in a version: the result of the migration's
/// renames, drops and replacements. Tables and columns not listed appear as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub tables: Vec<TableMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMapping {
    pub physical: String,
    pub logical: String,
    pub hidden: bool,
    pub columns: Vec<ColumnMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnMapping {
    pub physical: String,
    pub logical: String,
    pub hidden: bool,
    /// The physical column whose place this one takes in the view's column order (a
    /// duplicated column shows where the original was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Position in the view (columns without one follow, in table order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<usize>,
    /// The default the view shows instead of the table's (`Some(None)`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Option<String>>,
    /// A NOT NULL column that only `up` fills until complete: inserts through this version
    /// that leave it out are counted (they fail after complete), for `status`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub count_omitted: bool,
}
