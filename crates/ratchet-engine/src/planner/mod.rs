//! The planner: migration file + catalog → [`Plan`].
//!
//! It walks the operations in order over a *virtual schema* (physical tables and columns
//! with the logical names the new version gives them), so that an operation can refer to
//! what an earlier one in the same file created or renamed. Every reference is checked
//! against it before anything runs: a missing table, a duplicate name or an index on a
//! column that does not exist fails here, with the file location, and changes nothing.
//!
//! Physical changes in `start` are additive only. Renames and drops are deferred to
//! `complete`; the new version sees them at once through its views.

use ratchet_spec::Migration;

use crate::catalog::{Catalog, Table};
use crate::error::EngineError;
use crate::plan::{Action, Lock, LockMode, Phase, Plan, Statement, Step, ACCESS_EXCLUSIVE};
use crate::plan::{ColumnMapping, Mapping, TableMapping};
use crate::sql::{ident, qualified};
use crate::views;

mod checks;
mod ddl;
mod expand;
mod ops;
mod partitions;

/// PostgreSQL's limit on identifier length (NAMEDATALEN - 1); longer names are silently
/// truncated, which would make two names collide.
pub use ratchet_sql::MAX_IDENT;

/// Everything the planner needs besides the file.
pub struct PlanInput<'a> {
    pub migration: &'a Migration,
    pub catalog: &'a Catalog,
    /// The version schema of the last completed migration, if it still exists.
    pub previous_version_schema: Option<String>,
    /// See [`crate::Config::completes_at_once`].
    pub completes_at_once: bool,
}

/// Plan `input.migration` against `input.catalog`.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, EngineError> {
    let m = input.migration;
    check_row_security(input.catalog)?;
    let version_schema = version_schema_name(m, &input.catalog.schema)?;
    let mut p = Planner::new(input, version_schema.clone());
    for (i, op) in m.operations.iter().enumerate() {
        p.op = i;
        p.operation(&op.value)?;
    }
    Ok(p.finish(input.previous_version_schema.clone()))
}

/// PostgreSQL 14 has no `security_invoker` views: the version schema's views would read a
/// table with row-level security as their owner, the migration role, bypassing the
/// policies that apply to the application's role. Refused, never created silently.
fn check_row_security(catalog: &Catalog) -> Result<(), EngineError> {
    if catalog.server_version_num >= 150000 {
        return Ok(());
    }
    let rls: Vec<&str> = catalog
        .tables
        .values()
        .filter(|t| t.row_security && !crate::catalog::is_internal_table(&t.name))
        .map(|t| t.name.as_str())
        .collect();
    if rls.is_empty() {
        return Ok(());
    }
    Err(EngineError::refused(
        crate::error::Refusal::Capability,
        format!(
            "table(s) {} of schema `{}` have row-level security, and PostgreSQL {} cannot create \
             `security_invoker` views: the version schema's views would bypass the policies; \
             upgrade to PostgreSQL 15 or later to migrate it with version schemas",
            rls.iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", "),
            catalog.schema,
            catalog.server_version_num / 10000
        ),
    ))
}

/// `<schema>_<version_schema or migration name>`, checked against PostgreSQL's limits.
pub fn version_schema_name(m: &Migration, schema: &str) -> Result<String, EngineError> {
    let suffix = m.version_schema.clone().unwrap_or_else(|| m.name.clone());
    let name = format!("{schema}_{suffix}");
    if name.len() > MAX_IDENT {
        return Err(EngineError::Invalid {
            location: m.path.display().to_string(),
            message: format!(
                "the version schema name `{name}` is {} bytes long; PostgreSQL truncates \
                 names to {MAX_IDENT}",
                name.len()
            ),
            hint: "shorten the file name or set a short `version_schema:` in the file".into(),
        });
    }
    Ok(name)
}

/// A column rename planned for complete, by physical names.
struct PendingRename {
    table: String,
    from: String,
    step: Step,
}

/// A table as the new version sees it.
#[derive(Debug, Clone)]
struct VTable {
    physical: String,
    logical: String,
    hidden: bool,
    columns: Vec<VColumn>,
    /// Created by this migration (no concurrent traffic can be using it yet).
    created: bool,
}

#[derive(Debug, Clone)]
struct VColumn {
    physical: String,
    logical: String,
    hidden: bool,
    type_name: String,
    not_null: bool,
    has_default: bool,
    replaces: Option<String>,
}

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    schema: String,
    version_schema: String,
    tables: Vec<VTable>,
    /// Index names that exist or that this migration creates.
    indexes: Vec<String>,
    op: usize,
    start: Vec<Step>,
    complete: Vec<Step>,
    /// Column renames, then table renames: they run last in `complete`, so every other
    /// complete step can use the physical names `start` saw.
    column_renames: Vec<PendingRename>,
    table_renames: Vec<Step>,
    abort: Vec<Step>,
    /// Defaults the new version's views show while the table keeps the old ones:
    /// `(table, column, default)` by logical names.
    view_defaults: Vec<(String, String, Option<String>)>,
    /// `(table, column)` (logical): NOT NULL columns only `up` fills until complete,
    /// whose omissions by new-version inserts are counted for `status`.
    count_omitted: Vec<(String, String)>,
    /// `(table, column, what)` by physical names: indexes and constraints this migration
    /// builds over existing columns in place, which a later duplicate of the column in
    /// the same file would not carry (see `expand::Planner::check_duplicable`).
    built_on: Vec<(String, String, String)>,
    warnings: Vec<String>,
    /// See [`Plan::routes`]; each once.
    routes: std::cell::RefCell<Vec<String>>,
    /// The indexes of partitions this plan builds for partitioned index `name`:
    /// `name -> partition -> index`, resolved once (free names) and reused by every step.
    partition_indexes:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput<'a>, version_schema: String) -> Planner<'a> {
        let cat = input.catalog;
        let tables = cat
            .tables
            .values()
            .filter(|t| !crate::catalog::is_internal_table(&t.name))
            .map(vtable_from)
            .collect();
        Planner {
            input,
            schema: cat.schema.clone(),
            version_schema,
            tables,
            indexes: cat.indexes.keys().cloned().collect(),
            op: 0,
            start: Vec::new(),
            complete: Vec::new(),
            column_renames: Vec::new(),
            table_renames: Vec::new(),
            abort: Vec::new(),
            view_defaults: Vec::new(),
            count_omitted: Vec::new(),
            built_on: Vec::new(),
            partition_indexes: Default::default(),
            warnings: Vec::new(),
            routes: Default::default(),
        }
    }

    fn catalog(&self) -> &Catalog {
        self.input.catalog
    }

    /// The server's major version, e.g. 18.
    fn major(&self) -> i32 {
        self.catalog().server_version_num / 10000
    }

    /// Record a version-specific route (once).
    fn route(&self, r: String) {
        let mut routes = self.routes.borrow_mut();
        if !routes.contains(&r) {
            routes.push(r);
        }
    }

    /// The route of a NOT NULL on column `column` of table `table` (physical names), which
    /// is called `final_column` after complete and replaces `old` (a duplicated column,
    /// whose own not-null constraint's name it takes on PostgreSQL 18; else
    /// `<table>_<column>_not_null`, PostgreSQL's own naming, when that name is free).
    fn not_null_route(
        &self,
        table: &str,
        final_column: &str,
        old: Option<&str>,
    ) -> expand::NotNull {
        if !self.native_not_null() {
            return expand::NotNull::Check;
        }
        let constraints = self
            .catalog()
            .table(table)
            .map(|t| t.constraints.as_slice())
            .unwrap_or_default();
        let dropped = |k: &crate::catalog::ConstraintInfo| {
            k.kind == "n" && old.is_some_and(|o| k.columns.len() == 1 && k.columns[0] == o)
        };
        let name = constraints
            .iter()
            .find(|k| dropped(k))
            .map(|k| k.name.clone())
            .unwrap_or_else(|| expand::temp_with("", &format!("{table}_{final_column}_not_null")));
        let free = !constraints.iter().any(|k| k.name == name && !dropped(k));
        expand::NotNull::Native(free.then_some(name))
    }

    /// PostgreSQL 18+: a NOT NULL constraint can be added `NOT VALID` and validated later
    /// (no CHECK stand-in, no `SET NOT NULL` under ACCESS EXCLUSIVE at complete).
    fn native_not_null(&self) -> bool {
        let native = self.catalog().server_version_num >= 180000;
        let r = if native {
            format!(
                "PostgreSQL {}: NOT NULL is added as a NOT VALID not-null constraint and validated at complete (SHARE UPDATE EXCLUSIVE); no CHECK stand-in and no SET NOT NULL under ACCESS EXCLUSIVE",
                self.major()
            )
        } else {
            format!(
                "PostgreSQL {}: NOT NULL goes through a CHECK (… IS NOT NULL) NOT VALID, validated at complete, then SET NOT NULL (which skips its scan thanks to the check) and the check dropped; PostgreSQL 18 can add NOT NULL NOT VALID directly",
                self.major()
            )
        };
        self.route(r);
        native
    }

    fn location(&self) -> String {
        self.input.migration.location(self.op)
    }

    fn invalid(&self, message: impl Into<String>, hint: impl Into<String>) -> EngineError {
        EngineError::Invalid {
            location: self.location(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    fn unsupported(&self, what: impl Into<String>, hint: impl Into<String>) -> EngineError {
        EngineError::Unsupported {
            location: self.location(),
            operation: what.into(),
            hint: hint.into(),
        }
    }

    fn q(&self, physical: &str) -> String {
        qualified(&self.schema, physical)
    }

    fn lock(&self, mode: LockMode, physical: &str) -> Lock {
        Lock::new(mode, format!("{}.{physical}", self.schema))
    }

    /// The visible table with logical name `name`.
    fn table(&self, name: &str) -> Result<&VTable, EngineError> {
        if let Some(t) = self.tables.iter().find(|t| t.logical == name && !t.hidden) {
            return Ok(t);
        }
        let known: Vec<&str> = self
            .tables
            .iter()
            .filter(|t| !t.hidden)
            .map(|t| t.logical.as_str())
            .collect();
        Err(self.invalid(
            format!("table `{name}` does not exist in schema `{}`", self.schema),
            did_you_mean(name, &known, "tables"),
        ))
    }

    fn table_mut(&mut self, name: &str) -> &mut VTable {
        self.tables
            .iter_mut()
            .find(|t| t.logical == name && !t.hidden)
            .expect("table checked by the caller")
    }

    fn column<'t>(&self, t: &'t VTable, name: &str) -> Result<&'t VColumn, EngineError> {
        if let Some(c) = t.columns.iter().find(|c| c.logical == name && !c.hidden) {
            return Ok(c);
        }
        let known: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| !c.hidden)
            .map(|c| c.logical.as_str())
            .collect();
        Err(self.invalid(
            format!("column `{name}` does not exist in table `{}`", t.logical),
            did_you_mean(name, &known, "columns"),
        ))
    }

    /// The physical catalog table behind a virtual one (None when created by this plan).
    fn catalog_table(&self, t: &VTable) -> Option<&Table> {
        if t.created {
            return None;
        }
        self.catalog().table(&t.physical)
    }

    fn ensure_table_name_free(&self, name: &str) -> Result<(), EngineError> {
        let taken = self.tables.iter().any(|t| t.logical == name && !t.hidden)
            || self.tables.iter().any(|t| t.physical == name)
            || self.indexes.iter().any(|i| i == name)
            || self.catalog().types.iter().any(|t| t == name);
        if taken {
            return Err(self.invalid(
                format!(
                    "a table, index or type named `{name}` already exists in schema `{}`",
                    self.schema
                ),
                "choose another name, or drop the existing one in an earlier migration",
            ));
        }
        check_ident_len(name).map_err(|m| self.invalid(m, "use a shorter name"))
    }

    fn ensure_index_name_free(&self, name: &str) -> Result<(), EngineError> {
        if self.indexes.iter().any(|i| i == name) || self.tables.iter().any(|t| t.physical == name)
        {
            return Err(self.invalid(
                format!(
                    "a relation named `{name}` already exists in schema `{}`",
                    self.schema
                ),
                "index names share the namespace of tables; choose another name",
            ));
        }
        check_ident_len(name).map_err(|m| self.invalid(m, "use a shorter name"))
    }

    fn step(&self, phase: Phase, description: impl Into<String>, action: Action) -> Step {
        Step {
            phase,
            operation: Some(self.op),
            description: description.into(),
            action,
        }
    }

    /// Queue the physical rename of a column for the end of complete (renames run after
    /// every other complete step, so those can use the names start saw).
    fn rename_column_at_complete(&mut self, table_physical: &str, from: &str, to: &str) {
        let step = self.tx(
            Phase::Complete,
            format!("rename column {table_physical}.{from} to {to}"),
            vec![Statement::new(
                format!(
                    "ALTER TABLE {} RENAME COLUMN {} TO {}",
                    self.q(table_physical),
                    ident(from),
                    ident(to)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, table_physical)],
            )],
        );
        self.column_renames.push(PendingRename {
            table: table_physical.to_string(),
            from: from.to_string(),
            step,
        });
    }

    /// The physical column `column` of `table_physical` goes away at complete (dropped,
    /// or replaced by a duplicate): a rename of it that an earlier operation of the file
    /// planned must not run after it (it would fail on a column that no longer exists,
    /// half-way through the contract). The new version's name is the duplicate's.
    fn cancel_rename_at_complete(&mut self, table_physical: &str, column: &str) {
        self.column_renames
            .retain(|r| !(r.table == table_physical && r.from == column));
    }

    fn tx(&self, phase: Phase, description: impl Into<String>, statements: Vec<Statement>) -> Step {
        self.step(
            phase,
            description,
            Action::Transaction {
                statements,
                backfill_bounds: Vec::new(),
            },
        )
    }

    fn finish(self, previous: Option<String>) -> Plan {
        let major = self.major();
        let mut routes = vec![
            if major >= 15 {
                format!("PostgreSQL {major}: the version schema's views are security_invoker, so row-level security applies to the role that queries them")
            } else {
                format!("PostgreSQL {major}: no security_invoker views; refused on tables with row-level security (their views would bypass the policies)")
            },
            if major >= 17 {
                format!("PostgreSQL {major}: each DDL transaction sets transaction_timeout beside lock_timeout, so no step holds its locks for long")
            } else {
                format!("PostgreSQL {major}: no transaction_timeout (17+); lock_timeout and statement_timeout bound each DDL step")
            },
        ];
        routes.extend(self.routes.borrow().iter().cloned());
        let mapping = self.mapping();
        let completed = completed_mapping(&self.tables);
        let new_catalog_view = self.catalog_after();
        let desired = views::desired_views(&new_catalog_view, &mapping, &self.version_schema);
        let preview = views::preview(&self.version_schema, &desired);
        let vs = self.version_schema.clone();
        let mut steps = self.start;
        steps.push(Step {
            phase: Phase::Start,
            operation: None,
            description: format!("create the views of version schema {vs}"),
            action: Action::SyncViews {
                version_schema: vs.clone(),
                mapping,
                preview,
            },
        });
        if let Some(prev) = previous.as_ref().filter(|p| **p != vs) {
            steps.push(drop_schema_step(
                Phase::Complete,
                format!("drop the previous version schema {prev}"),
                prev,
            ));
        }
        steps.extend(self.complete);
        steps.extend(self.column_renames.into_iter().map(|r| r.step));
        steps.extend(self.table_renames);
        steps.push(Step {
            phase: Phase::Complete,
            operation: None,
            description: format!("refresh the views of version schema {vs}"),
            action: Action::SyncViews {
                version_schema: vs.clone(),
                mapping: completed,
                preview: vec![Statement::new(
                    format!("-- views of {vs} are recreated where a column changed"),
                    vec![],
                )],
            },
        });
        steps.push(drop_schema_step(
            Phase::Abort,
            format!("drop version schema {vs}"),
            &vs,
        ));
        steps.extend(self.abort.into_iter().rev());
        let created: Vec<String> = self
            .tables
            .iter()
            .filter(|t| t.created)
            .map(|t| t.physical.clone())
            .collect();
        partitions::claim_partition_locks(self.input.catalog, &created, &mut steps);
        Plan {
            migration: self.input.migration.name.clone(),
            schema: self.schema,
            version_schema: vs,
            previous_version_schema: previous,
            steps,
            warnings: self.warnings,
            routes,
        }
    }

    /// The mapping of every table the migration changed, for the version's views.
    /// The catalog as the plan leaves it: with the tables and columns it creates, so that
    /// the preview shows the views as they will be.
    fn catalog_after(&self) -> Catalog {
        let mut after = self.catalog().clone();
        for t in &self.tables {
            let entry = after
                .tables
                .entry(t.physical.clone())
                .or_insert_with(|| Table {
                    oid: 0,
                    name: t.physical.clone(),
                    columns: vec![],
                    constraints: vec![],
                    comment: None,
                    estimated_rows: 0.0,
                    replica_identity: "DEFAULT".into(),
                    row_security: false,
                    partitioning: None,
                });
            for c in &t.columns {
                if entry.column(&c.physical).is_some() {
                    continue;
                }
                let attnum = entry.columns.iter().map(|x| x.attnum).max().unwrap_or(0) + 1;
                entry.columns.push(crate::catalog::ColumnInfo {
                    name: c.physical.clone(),
                    attnum,
                    type_name: c.type_name.clone(),
                    not_null: c.not_null,
                    default: None,
                    identity: None,
                    generated: None,
                    comment: None,
                });
            }
        }
        after
    }

    fn mapping(&self) -> Mapping {
        let tables = self
            .tables
            .iter()
            .map(|t| TableMapping {
                physical: t.physical.clone(),
                logical: t.logical.clone(),
                hidden: t.hidden,
                columns: t
                    .columns
                    .iter()
                    .map(|c| ColumnMapping {
                        order: view_order(t).iter().position(|x| x.physical == c.physical),
                        physical: c.physical.clone(),
                        logical: c.logical.clone(),
                        hidden: c.hidden,
                        replaces: c.replaces.clone(),
                        default: self
                            .view_defaults
                            .iter()
                            .rev()
                            .find(|(tb, col, _)| *tb == t.logical && *col == c.logical && !c.hidden)
                            .map(|(_, _, d)| d.clone()),
                        count_omitted: !c.hidden
                            && self
                                .count_omitted
                                .iter()
                                .any(|(tb, col)| *tb == t.logical && *col == c.logical),
                    })
                    .collect(),
            })
            .collect();
        Mapping { tables }
    }
}

/// The visible columns of `t` in the order the version shows them: a duplicate takes the
/// place of the column it replaces, new columns come last.
/// `DROP SCHEMA … CASCADE` of a version schema, as a step of `phase`.
fn drop_schema_step(phase: Phase, description: String, schema: &str) -> Step {
    Step {
        phase,
        operation: None,
        description,
        action: Action::Transaction {
            statements: vec![Statement::new(
                format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema)),
                vec![Lock::new(
                    ACCESS_EXCLUSIVE,
                    format!("every view in {schema}"),
                )],
            )],
            backfill_bounds: Vec::new(),
        },
    }
}

fn view_order(t: &VTable) -> Vec<&VColumn> {
    let mut out = Vec::new();
    for c in &t.columns {
        if c.hidden {
            if let Some(r) = t
                .columns
                .iter()
                .find(|x| !x.hidden && x.replaces.as_deref() == Some(c.physical.as_str()))
            {
                out.push(r);
            }
        } else if c.replaces.is_none() {
            out.push(c);
        }
    }
    out
}

/// The mapping after complete: every physical name is the logical one, and the columns
/// keep the order the version showed during the expand.
fn completed_mapping(tables: &[VTable]) -> Mapping {
    Mapping {
        tables: tables
            .iter()
            .filter(|t| !t.hidden)
            .map(|t| TableMapping {
                physical: t.logical.clone(),
                logical: t.logical.clone(),
                hidden: false,
                columns: view_order(t)
                    .iter()
                    .enumerate()
                    .map(|(i, c)| ColumnMapping {
                        physical: c.logical.clone(),
                        logical: c.logical.clone(),
                        hidden: false,
                        replaces: None,
                        order: Some(i),
                        default: None,
                        count_omitted: false,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn vtable_from(t: &Table) -> VTable {
    VTable {
        physical: t.name.clone(),
        logical: t.name.clone(),
        hidden: false,
        created: false,
        columns: t
            .columns
            .iter()
            .filter(|c| !c.name.starts_with("_ratchet_"))
            .map(|c| VColumn {
                physical: c.name.clone(),
                logical: c.name.clone(),
                hidden: false,
                type_name: c.type_name.clone(),
                not_null: c.not_null,
                has_default: c.default.is_some() || c.identity.is_some() || c.generated.is_some(),
                replaces: None,
            })
            .collect(),
    }
}

fn check_ident_len(name: &str) -> Result<(), String> {
    if name.len() > MAX_IDENT {
        return Err(format!(
            "`{name}` is {} bytes long; PostgreSQL silently truncates names to {MAX_IDENT} bytes",
            name.len()
        ));
    }
    Ok(())
}

/// A hint naming the closest known name, or listing the known ones.
fn did_you_mean(name: &str, known: &[&str], what: &str) -> String {
    // A known name that starts with the one given (`amount` for `amount_cents`) counts.
    let prefix = known
        .iter()
        .filter(|k| name.len() >= 3 && (k.starts_with(name) || name.starts_with(**k)))
        .min_by_key(|k| k.len().abs_diff(name.len()))
        .map(|k| (0, *k));
    let best = prefix.or_else(|| {
        known
            .iter()
            .map(|k| (strsim(name, k), *k))
            .min_by_key(|(d, _)| *d)
            .filter(|(d, k)| *d <= 2.max(k.len() / 3))
    });
    match best {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None if known.is_empty() => format!("there are no {what} yet"),
        None => format!("existing {what}: {}", known.join(", ")),
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn strsim(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
