//! The migration file model: what a migration file says, independent of its format.
//!
//! The vocabulary is pgroll's (so pgroll users' files run unchanged); every struct denies
//! unknown fields so that a typo is an error with a location instead of a silently ignored
//! option. Field names follow pgroll's spelling (`snake_case`, with its one exception
//! `onComplete` on `sql`).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A whole migration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationFile {
    /// Optional explicit name of the version schema (`<schema>_<version_schema>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_schema: Option<String>,
    /// pgroll writes `name` into some files; it must equal the file name when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub operations: Vec<Operation>,
    /// Feature flags the migration owns besides the `<migration>.read_new` flag ratchet
    /// creates for every migration that backfills (ratchet's own extension to pgroll's
    /// format). Created off by `start`; see `docs/flags.md`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<FlagDecl>,
}

/// A feature flag declared in a migration file (`flags:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagDecl {
    /// The flag's full name, as applications ask for it (`ratchet.flag('<name>', key)`):
    /// letters, digits, `_`, `-`, `.` and `:`, at most 100 characters.
    pub name: String,
    /// What the flag switches, for `ratchet flags list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `complete` waits until the flag is fully on (default true: a flag that switches
    /// reads to the new structure must be on before the old one is dropped).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub gates_complete: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One operation: exactly one key per list entry, as in pgroll.
///
/// Serialize/Deserialize are written by hand in `operation_serde.rs` (one-key map in every
/// format, precise errors for two keys or an unknown operation).
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    CreateTable(CreateTable),
    DropTable(DropTable),
    RenameTable(RenameTable),
    AddColumn(AddColumn),
    DropColumn(DropColumn),
    RenameColumn(RenameColumn),
    AlterColumn(AlterColumn),
    CreateIndex(CreateIndex),
    DropIndex(DropIndex),
    CreateConstraint(CreateConstraint),
    DropConstraint(DropConstraint),
    DropMulticolumnConstraint(DropMulticolumnConstraint),
    RenameConstraint(RenameConstraint),
    SetReplicaIdentity(SetReplicaIdentity),
    Sql(Sql),
}

impl Operation {
    /// The key this operation is written under in a file (`create_table`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::CreateTable(_) => "create_table",
            Operation::DropTable(_) => "drop_table",
            Operation::RenameTable(_) => "rename_table",
            Operation::AddColumn(_) => "add_column",
            Operation::DropColumn(_) => "drop_column",
            Operation::RenameColumn(_) => "rename_column",
            Operation::AlterColumn(_) => "alter_column",
            Operation::CreateIndex(_) => "create_index",
            Operation::DropIndex(_) => "drop_index",
            Operation::CreateConstraint(_) => "create_constraint",
            Operation::DropConstraint(_) => "drop_constraint",
            Operation::DropMulticolumnConstraint(_) => "drop_multicolumn_constraint",
            Operation::RenameConstraint(_) => "rename_constraint",
            Operation::SetReplicaIdentity(_) => "set_replica_identity",
            Operation::Sql(_) => "sql",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTable {
    pub name: String,
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<TableConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A column definition (create_table, add_column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub pk: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    /// pgroll's default: columns are NOT NULL unless `nullable: true`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nullable: bool,
    /// SQL expression, e.g. `'''text'''`, `"100"`, `now()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<ForeignKeyReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<Generated>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConstraint {
    pub name: String,
    pub constraint: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_inherit: bool,
}

/// A single-column foreign key (`references:` on a column or on `alter_column`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignKeyReference {
    pub name: String,
    pub table: String,
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_update: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deferrable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub initially_deferred: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generated {
    /// `GENERATED ALWAYS AS (expression) STORED` (or `VIRTUAL`, see `is_virtual`)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// `virtual: true` (ratchet's extension; PostgreSQL 18+): the expression is computed
    /// when read, nothing is stored, so adding such a column to an existing table needs
    /// no rewrite and no backfill.
    #[serde(default, rename = "virtual", skip_serializing_if = "is_false")]
    pub is_virtual: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// `ALWAYS` or `BY DEFAULT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_specified_values: Option<String>,
    /// Raw sequence options, e.g. `START 1 INCREMENT 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_options: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintType {
    Unique,
    Check,
    PrimaryKey,
    ForeignKey,
    Exclude,
}

/// A table-level constraint in `create_table.constraints`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConstraint {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: ConstraintType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<TableForeignKeyReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ExcludeConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_parameters: Option<IndexParameters>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub nulls_not_distinct: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deferrable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub initially_deferred: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_inherit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableForeignKeyReference {
    pub table: String,
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_update: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_delete_set_columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExcludeConstraint {
    pub index_method: String,
    /// Raw element list, e.g. `title WITH =`.
    pub elements: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexParameters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_parameters: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropTable {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameTable {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddColumn {
    pub table: String,
    pub column: Column,
    /// SQL expression over the row's existing columns that fills the new column for
    /// existing rows and for writes made through the old version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropColumn {
    pub table: String,
    pub column: String,
    /// SQL expression that fills the dropped column for writes made through the new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameColumn {
    pub table: String,
    pub from: String,
    pub to: String,
}

/// `alter_column`: any mix of changes to one column.
///
/// `default` and `comment` distinguish "not given" (`None`) from "set to null"
/// (`Some(None)`): `default: null` drops the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlterColumn {
    pub table: String,
    pub column: String,
    /// New name of the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nullable: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::double_option"
    )]
    pub default: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::double_option"
    )]
    pub comment: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<UniqueConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<ForeignKeyReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniqueConstraint {
    pub name: String,
}

/// Index columns: pgroll accepts a list of `{column: …, opclass: …}` entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexColumn {
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collate: Option<String>,
    /// `ASC` or `DESC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `FIRST` or `LAST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nulls: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opclass: Option<OpClass>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpClass {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIndex {
    pub name: String,
    pub table: String,
    pub columns: Vec<IndexColumn>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// btree (default), hash, gist, gin, spgist, brin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Raw storage parameters, e.g. `fillfactor = 70`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_parameters: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropIndex {
    pub name: String,
}

/// `create_constraint`: a (possibly multi-column) constraint added to an existing table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConstraint {
    pub table: String,
    pub name: String,
    #[serde(rename = "type")]
    pub type_: ConstraintType,
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<TableForeignKeyReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ExcludeConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_parameters: Option<IndexParameters>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub nulls_not_distinct: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deferrable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub initially_deferred: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_inherit: bool,
    /// Per-column `up` expressions (column name → SQL).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub up: IndexMap<String, String>,
    /// Per-column `down` expressions (column name → SQL).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub down: IndexMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropConstraint {
    pub table: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropMulticolumnConstraint {
    pub table: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub up: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub down: IndexMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameConstraint {
    pub table: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetReplicaIdentity {
    pub table: String,
    pub identity: ReplicaIdentity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaIdentity {
    /// `default`, `full`, `nothing` or `index`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The index name when `type: index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sql {
    pub up: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
    /// Run `up` at `complete` instead of at `start`.
    #[serde(rename = "onComplete", default, skip_serializing_if = "is_false")]
    pub on_complete: bool,
}

/// `skip_serializing_if` helper: `false` is every flag's default, so it is left out when
/// writing a file (`ratchet convert`), as a person would.
fn is_false(value: &bool) -> bool {
    !*value
}
