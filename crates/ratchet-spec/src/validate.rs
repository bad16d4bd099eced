//! Checks that need no database: mistakes visible in the file alone.
//!
//! Catching these before connecting means `ratchet lint`/`plan` can fail fast in CI, and
//! the engine never has to wonder whether, say, a check constraint came without its
//! expression. Checks that need the catalog (does the table exist?) live in the planner.

use std::collections::HashSet;

// MAX_IDENT: PostgreSQL's NAMEDATALEN - 1; longer identifiers are silently truncated.
use ratchet_sql::{ident_too_long, MAX_IDENT};

use crate::error::{Position, SpecError};
use crate::model::*;
use crate::Migration;

const FK_ACTIONS: &[&str] = &[
    "NO ACTION",
    "RESTRICT",
    "CASCADE",
    "SET NULL",
    "SET DEFAULT",
];
const MATCH_TYPES: &[&str] = &["SIMPLE", "FULL"];
const REPLICA_IDENTITIES: &[&str] = &["default", "full", "nothing", "index"];

/// Runs every static check; all problems are returned, each at its operation.
pub fn validate_static(m: &Migration) -> Result<(), Vec<SpecError>> {
    let mut errors = Vec::new();
    check_header(m, &mut errors);
    for (index, op) in m.operations.iter().enumerate() {
        let mut c = Checker {
            at: m.position(index),
            kind: op.value.kind(),
            errors: &mut errors,
        };
        c.operation(&op.value);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_header(m: &Migration, errors: &mut Vec<SpecError>) {
    check_flags(m, errors);
    if let Some(declared) = &m.declared_name {
        if declared.value != m.name {
            errors.push(SpecError::invalid(
                Position::new(&m.path, declared.line, declared.column),
                format!(
                    "`name: {}` differs from the file name `{}`",
                    declared.value, m.name
                ),
                "a migration is named after its file: remove `name:` or rename the file"
                    .to_string(),
            ));
        }
    }
    if let Some(schema) = &m.version_schema {
        if !is_plain_identifier(schema) {
            errors.push(SpecError::invalid(
                Position::new(&m.path, 1, 1),
                format!("`version_schema: {schema}` is not a valid schema name suffix"),
                format!("use letters, digits and `_` only, start with a letter or `_`, at most {MAX_IDENT} bytes"),
            ));
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes.
fn is_plain_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !ident_too_long(s)
}

/// Uppercases and collapses whitespace: `set  null` → `SET NULL`.
fn normalize_keyword(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_uppercase)
        .collect::<Vec<_>>()
        .join(" ")
}

struct Checker<'a> {
    at: Position,
    kind: &'static str,
    errors: &'a mut Vec<SpecError>,
}

impl Checker<'_> {
    fn err(&mut self, message: String, hint: impl Into<String>) {
        self.errors.push(SpecError::invalid(
            self.at.clone(),
            format!("{}: {message}", self.kind),
            hint.into(),
        ));
    }

    /// An identifier must be non-empty and fit in 63 bytes.
    fn ident(&mut self, what: &str, name: &str) {
        if name.trim().is_empty() {
            self.err(
                format!("{what} is empty"),
                format!("give the {what} a name"),
            );
        } else if ident_too_long(name) {
            self.err(
                format!(
                    "{what} `{name}` is {} bytes long; PostgreSQL would silently truncate it to {MAX_IDENT}",
                    name.len()
                ),
                format!("shorten the {what} to at most {MAX_IDENT} bytes"),
            );
        }
    }

    fn rename(&mut self, what: &str, from: &str, to: &str) {
        self.ident(what, from);
        self.ident(&format!("new {what}"), to);
        if from == to {
            self.err(
                format!("renames {what} `{from}` to the same name"),
                "remove the operation, or give `to` the new name",
            );
        }
    }

    fn operation(&mut self, op: &Operation) {
        match op {
            Operation::CreateTable(op) => self.create_table(op),
            Operation::DropTable(op) => self.ident("table name", &op.name),
            Operation::RenameTable(op) => self.rename("table", &op.from, &op.to),
            Operation::AddColumn(op) => {
                self.ident("table name", &op.table);
                self.column(&op.column);
            }
            Operation::DropColumn(op) => {
                self.ident("table name", &op.table);
                self.ident("column name", &op.column);
            }
            Operation::RenameColumn(op) => {
                self.ident("table name", &op.table);
                self.rename("column", &op.from, &op.to);
            }
            Operation::AlterColumn(op) => self.alter_column(op),
            Operation::CreateIndex(op) => self.create_index(op),
            Operation::DropIndex(op) => self.ident("index name", &op.name),
            Operation::CreateConstraint(op) => self.create_constraint(op),
            Operation::DropConstraint(op) => {
                self.ident("table name", &op.table);
                self.ident("constraint name", &op.name);
            }
            Operation::DropMulticolumnConstraint(op) => {
                self.ident("table name", &op.table);
                self.ident("constraint name", &op.name);
            }
            Operation::RenameConstraint(op) => {
                self.ident("table name", &op.table);
                self.rename("constraint", &op.from, &op.to);
            }
            Operation::SetReplicaIdentity(op) => self.replica_identity(op),
            Operation::Sql(op) => {
                if op.up.trim().is_empty() {
                    self.err("`up` is empty".to_string(), "give the SQL to run in `up`");
                }
            }
        }
    }

    fn create_table(&mut self, op: &CreateTable) {
        self.ident("table name", &op.name);
        if op.columns.is_empty() {
            self.err(
                format!("table `{}` has no columns", op.name),
                "list at least one column under `columns:`",
            );
        }
        let mut seen = HashSet::new();
        for column in &op.columns {
            self.column(column);
            if !seen.insert(column.name.as_str()) {
                self.err(
                    format!("column `{}` is defined twice", column.name),
                    "remove or rename one of the two column definitions",
                );
            }
        }
        for constraint in &op.constraints {
            self.table_constraint(constraint, &seen);
        }
    }

    fn column(&mut self, column: &Column) {
        self.ident("column name", &column.name);
        if column.type_.trim().is_empty() {
            self.err(
                format!("column `{}` has an empty type", column.name),
                "give the column a type, e.g. `type: text`",
            );
        }
        if let Some(check) = &column.check {
            self.check_constraint(check);
        }
        if let Some(fk) = &column.references {
            self.foreign_key(fk);
        }
    }

    fn check_constraint(&mut self, check: &CheckConstraint) {
        self.ident("constraint name", &check.name);
        if check.constraint.trim().is_empty() {
            self.err(
                format!("check constraint `{}` has an empty expression", check.name),
                "write the boolean expression in `constraint:`",
            );
        }
    }

    fn foreign_key(&mut self, fk: &ForeignKeyReference) {
        self.ident("constraint name", &fk.name);
        self.ident("referenced table name", &fk.table);
        self.ident("referenced column name", &fk.column);
        self.fk_options(
            fk.on_delete.as_deref(),
            fk.on_update.as_deref(),
            fk.match_type.as_deref(),
        );
    }

    fn fk_options(
        &mut self,
        on_delete: Option<&str>,
        on_update: Option<&str>,
        match_type: Option<&str>,
    ) {
        for (field, value) in [("on_delete", on_delete), ("on_update", on_update)] {
            let Some(value) = value else { continue };
            if !FK_ACTIONS.contains(&normalize_keyword(value).as_str()) {
                self.err(
                    format!("`{field}: {value}` is not a foreign key action"),
                    format!("use one of {}", FK_ACTIONS.join(", ")),
                );
            }
        }
        if let Some(value) = match_type {
            if !MATCH_TYPES.contains(&normalize_keyword(value).as_str()) {
                self.err(
                    format!("`match_type: {value}` is not a match type"),
                    "use SIMPLE or FULL (PostgreSQL does not implement MATCH PARTIAL)",
                );
            }
        }
    }

    fn table_fk(&mut self, fk: &TableForeignKeyReference, columns: &[String]) {
        self.ident("referenced table name", &fk.table);
        if fk.columns.is_empty() {
            self.err(
                "foreign key references no columns".to_string(),
                "list the referenced columns under `references.columns`",
            );
        }
        if !columns.is_empty() && !fk.columns.is_empty() && fk.columns.len() != columns.len() {
            self.err(
                format!(
                    "foreign key has {} columns but references {}",
                    columns.len(),
                    fk.columns.len()
                ),
                "`columns` and `references.columns` must have the same length",
            );
        }
        for column in &fk.columns {
            self.ident("referenced column name", column);
        }
        self.fk_options(
            fk.on_delete.as_deref(),
            fk.on_update.as_deref(),
            fk.match_type.as_deref(),
        );
    }

    /// The fields a constraint needs (and may have) depend on its type.
    fn constraint_shape(&mut self, shape: ConstraintShape<'_>) {
        let ConstraintShape {
            name,
            type_,
            columns,
            check,
            references,
            exclude,
        } = shape;
        self.ident("constraint name", name);
        for column in columns {
            self.ident("column name", column);
        }
        let type_name = constraint_type_name(type_);
        match type_ {
            ConstraintType::Check if !matches!(check, Some(c) if !c.trim().is_empty()) => self.err(
                format!("check constraint `{name}` has no `check` expression"),
                "add `check: <boolean expression>`",
            ),
            ConstraintType::ForeignKey if references.is_none() => self.err(
                format!("foreign key constraint `{name}` has no `references`"),
                "add `references:` with `table` and `columns`",
            ),
            ConstraintType::Exclude if exclude.is_none() => self.err(
                format!("exclusion constraint `{name}` has no `exclude`"),
                "add `exclude:` with `index_method` and `elements`",
            ),
            ConstraintType::Unique | ConstraintType::PrimaryKey | ConstraintType::ForeignKey
                if columns.is_empty() =>
            {
                self.err(
                    format!("{type_name} constraint `{name}` has no `columns`"),
                    "list the constrained columns under `columns:`",
                )
            }
            _ => {}
        }
        let misplaced = [
            ("check", check.is_some(), ConstraintType::Check),
            (
                "references",
                references.is_some(),
                ConstraintType::ForeignKey,
            ),
            ("exclude", exclude.is_some(), ConstraintType::Exclude),
        ];
        for (field, present, owner) in misplaced {
            if present && type_ != owner {
                self.err(
                    format!("`{field}` given on {type_name} constraint `{name}`"),
                    format!(
                        "`{field}` belongs to `type: {}`; remove it or change the type",
                        constraint_type_name(owner)
                    ),
                );
            }
        }
        if let Some(fk) = references {
            self.table_fk(fk, columns);
        }
    }

    fn table_constraint(&mut self, c: &TableConstraint, table_columns: &HashSet<&str>) {
        self.constraint_shape(ConstraintShape {
            name: &c.name,
            type_: c.type_,
            columns: &c.columns,
            check: c.check.as_deref(),
            references: c.references.as_ref(),
            exclude: c.exclude.as_ref(),
        });
        for column in &c.columns {
            if !table_columns.contains(column.as_str()) {
                self.err(
                    format!(
                        "constraint `{}` names column `{column}`, which the table does not define",
                        c.name
                    ),
                    "list only columns defined in this create_table",
                );
            }
        }
    }

    fn create_constraint(&mut self, op: &CreateConstraint) {
        self.ident("table name", &op.table);
        self.constraint_shape(ConstraintShape {
            name: &op.name,
            type_: op.type_,
            columns: &op.columns,
            check: op.check.as_deref(),
            references: op.references.as_ref(),
            exclude: op.exclude.as_ref(),
        });
        for (field, map) in [("up", &op.up), ("down", &op.down)] {
            for column in map.keys() {
                if !op.columns.contains(column) {
                    self.err(
                        format!(
                            "`{field}` has an expression for `{column}`, which is not in `columns`"
                        ),
                        "give `up`/`down` expressions only for the constrained columns",
                    );
                }
            }
        }
    }

    fn alter_column(&mut self, op: &AlterColumn) {
        self.ident("table name", &op.table);
        self.ident("column name", &op.column);
        if let Some(name) = &op.name {
            self.ident("new column name", name);
            if *name == op.column {
                self.err(
                    format!("renames column `{name}` to the same name"),
                    "remove `name:` or give the new name",
                );
            }
        }
        let changes_something = op.name.is_some()
            || op.type_.is_some()
            || op.nullable.is_some()
            || op.default.is_some()
            || op.comment.is_some()
            || op.check.is_some()
            || op.unique.is_some()
            || op.references.is_some();
        if !changes_something {
            self.err(
                format!("changes nothing on column `{}`", op.column),
                "set at least one of name, type, nullable, default, comment, check, unique, references",
            );
        }
        if let Some(check) = &op.check {
            self.check_constraint(check);
        }
        if let Some(unique) = &op.unique {
            self.ident("constraint name", &unique.name);
        }
        if let Some(fk) = &op.references {
            self.foreign_key(fk);
        }
    }

    fn create_index(&mut self, op: &CreateIndex) {
        self.ident("index name", &op.name);
        self.ident("table name", &op.table);
        if op.columns.is_empty() {
            self.err(
                format!("index `{}` has no columns", op.name),
                "list at least one column under `columns:` (`- column: name`)",
            );
        }
        for column in &op.columns {
            self.ident("column name", &column.column);
            if let Some(sort) = &column.sort {
                if !matches!(normalize_keyword(sort).as_str(), "ASC" | "DESC") {
                    self.err(
                        format!("`sort: {sort}` is not a sort order"),
                        "use ASC or DESC",
                    );
                }
            }
            if let Some(nulls) = &column.nulls {
                if !matches!(normalize_keyword(nulls).as_str(), "FIRST" | "LAST") {
                    self.err(
                        format!("`nulls: {nulls}` is not a nulls order"),
                        "use FIRST or LAST",
                    );
                }
            }
        }
    }

    fn replica_identity(&mut self, op: &SetReplicaIdentity) {
        self.ident("table name", &op.table);
        let type_ = op.identity.type_.to_lowercase();
        if !REPLICA_IDENTITIES.contains(&type_.as_str()) {
            self.err(
                format!("`type: {}` is not a replica identity", op.identity.type_),
                "use one of default, full, nothing, index",
            );
        } else if type_ == "index" && op.identity.index.is_none() {
            self.err(
                "replica identity `index` needs the index name".to_string(),
                "add `index: <unique index name>` under `identity:`",
            );
        } else if type_ != "index" && op.identity.index.is_some() {
            self.err(
                format!("`index` given with replica identity `{type_}`"),
                "remove `index:`, or use `type: index`",
            );
        }
        if let Some(index) = &op.identity.index {
            self.ident("index name", index);
        }
    }
}

/// The parts of a constraint shared by `create_table.constraints` and `create_constraint`.
struct ConstraintShape<'a> {
    name: &'a str,
    type_: ConstraintType,
    columns: &'a [String],
    check: Option<&'a str>,
    references: Option<&'a TableForeignKeyReference>,
    exclude: Option<&'a ExcludeConstraint>,
}

fn constraint_type_name(t: ConstraintType) -> &'static str {
    match t {
        ConstraintType::Unique => "unique",
        ConstraintType::Check => "check",
        ConstraintType::PrimaryKey => "primary_key",
        ConstraintType::ForeignKey => "foreign_key",
        ConstraintType::Exclude => "exclude",
    }
}

/// Longest flag name a file may declare.
pub const MAX_FLAG_NAME: usize = 100;

/// Whether `name` is a valid flag name: 1 to [`MAX_FLAG_NAME`] characters among letters,
/// digits, `_`, `-`, `.` and `:`.
pub fn valid_flag_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FLAG_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn check_flags(m: &Migration, errors: &mut Vec<SpecError>) {
    // The line naming the flag (the file's first line when it is written oddly).
    let at_flag = |name: &str| {
        let line = m
            .source
            .lines()
            .position(|l| l.contains(name) && !name.is_empty())
            .map_or(1, |i| i + 1);
        Position::new(&m.path, line, 1)
    };
    let auto = format!("{}.read_new", m.name);
    let mut seen = std::collections::HashSet::new();
    for f in &m.flags {
        let at = at_flag(&f.name);
        if !valid_flag_name(&f.name) {
            errors.push(SpecError::invalid(
                at.clone(),
                format!("flag name `{}` is not valid", f.name),
                format!(
                    "flag names have 1 to {MAX_FLAG_NAME} letters, digits, `_`, `-`, `.` or `:`, e.g. `{}.read_totals`",
                    m.name
                ),
            ));
        } else if f.name == auto {
            errors.push(SpecError::invalid(
                at.clone(),
                format!("flag `{}` is the one ratchet creates itself", f.name),
                "ratchet creates `<migration>.read_new` for every migration that backfills: remove it from `flags:`".to_string(),
            ));
        } else if !seen.insert(f.name.as_str()) {
            errors.push(SpecError::invalid(
                at.clone(),
                format!("flag `{}` is declared twice", f.name),
                "declare each flag once".to_string(),
            ));
        }
    }
}
