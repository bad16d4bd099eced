//! Planning of each operation: its checks against the virtual schema, and the steps it
//! adds to `start`, `complete` and `abort`.

use ratchet_spec::{
    AddColumn, CreateIndex, CreateTable, DropColumn, DropIndex, DropTable, RenameColumn,
    RenameConstraint, RenameTable, SetReplicaIdentity, Sql,
};

use super::ddl::{column_definition, column_reference, table_constraint};
use super::{check_ident_len, Planner, VColumn, VTable};
use crate::error::EngineError;
use crate::fragment;
use crate::plan::{
    Action, Phase, Statement, ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE,
};
use crate::sql::{ident, literal};

impl Planner<'_> {
    /// Check a user SQL expression with the PostgreSQL parser.
    /// An error points at the fragment's own line and column in the file, not at the
    /// operation (issue 9).
    pub(super) fn expr(&self, what: &str, sql: &str) -> Result<(), EngineError> {
        let Some((message, offset)) = fragment::expression_error(sql) else {
            return Ok(());
        };
        Err(EngineError::Invalid {
            location: self.input.migration.fragment_location(self.op, sql, offset),
            message: format!("{what} `{sql}` is not a valid SQL expression: {message}"),
            hint: "write a single SQL expression (pgroll's `SELECT CASE …` form is accepted too)"
                .into(),
        })
    }

    pub(super) fn type_name(&self, ty: &str) -> Result<(), EngineError> {
        fragment::check_type(ty).map_err(|e| {
            self.invalid(
                format!("`{ty}` is not a valid type name: {e}"),
                "use a PostgreSQL type, e.g. `text`, `bigint`, `varchar(255)`, `numeric(10,2)`",
            )
        })
    }

    fn column_fragments(&self, c: &ratchet_spec::Column) -> Result<(), EngineError> {
        check_ident_len(&c.name).map_err(|m| self.invalid(m, "use a shorter column name"))?;
        self.type_name(&c.type_)?;
        if let Some(d) = &c.default {
            self.expr("default", d)?;
        }
        if let Some(ch) = &c.check {
            self.expr("check", &ch.constraint)?;
        }
        if let Some(g) = c.generated.as_ref().and_then(|g| g.expression.as_ref()) {
            self.expr("generated expression", g)?;
        }
        Ok(())
    }

    /// Resolve a referenced `table.column` to physical names.
    pub(super) fn resolve_reference(
        &self,
        table: &str,
        column: &str,
    ) -> Result<(String, String), EngineError> {
        let t = self.table(table)?;
        let c = self.column(t, column)?;
        Ok((t.physical.clone(), c.physical.clone()))
    }

    pub(super) fn create_table(&mut self, o: &CreateTable) -> Result<(), EngineError> {
        self.ensure_table_name_free(&o.name)?;
        let pk: Vec<&str> = o
            .columns
            .iter()
            .filter(|c| c.pk)
            .map(|c| c.name.as_str())
            .collect();
        let mut defs = Vec::new();
        let mut locks = Vec::new();
        for c in &o.columns {
            self.column_fragments(c)?;
            let reference = match &c.references {
                Some(r) => {
                    let (t, col) = self.resolve_reference(&r.table, &r.column)?;
                    locks.push(self.lock(SHARE_ROW_EXCLUSIVE, &t));
                    Some(column_reference(&self.schema, &t, &col, r))
                }
                None => None,
            };
            defs.push(column_definition(c, pk.len() == 1 && c.pk, reference));
        }
        if pk.len() > 1 {
            defs.push(format!(
                "PRIMARY KEY ({})",
                pk.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
            ));
        }
        let names: Vec<&str> = o.columns.iter().map(|c| c.name.as_str()).collect();
        for k in &o.constraints {
            check_ident_len(&k.name).map_err(|m| self.invalid(m, "use a shorter name"))?;
            for col in &k.columns {
                if !names.contains(&col.as_str()) {
                    return Err(self.invalid(
                        format!(
                            "constraint `{}` names column `{col}`, which table `{}` does not have",
                            k.name, o.name
                        ),
                        format!("columns of `{}`: {}", o.name, names.join(", ")),
                    ));
                }
            }
            if let Some(ch) = &k.check {
                self.expr("check", ch)?;
            }
            let (ref_table, ref_cols) = match &k.references {
                Some(r) => {
                    let t = self.table(&r.table)?;
                    let mut cols = Vec::new();
                    for c in &r.columns {
                        cols.push(self.column(t, c)?.physical.clone());
                    }
                    locks.push(self.lock(SHARE_ROW_EXCLUSIVE, &t.physical));
                    (Some(self.q(&t.physical)), cols)
                }
                None => (None, vec![]),
            };
            defs.push(
                table_constraint(k, ref_table.as_deref(), &ref_cols).map_err(|e| {
                    self.invalid(e, "see the constraint's fields in docs/operations.md")
                })?,
            );
        }
        let qt = self.q(&o.name);
        let mut stmts = vec![Statement::new(
            format!("CREATE TABLE {qt} (\n  {}\n)", defs.join(",\n  ")),
            locks,
        )];
        if let Some(c) = &o.comment {
            stmts.push(Statement::new(
                format!("COMMENT ON TABLE {qt} IS {}", literal(c)),
                vec![],
            ));
        }
        for c in o.columns.iter().filter(|c| c.comment.is_some()) {
            stmts.push(Statement::new(
                format!(
                    "COMMENT ON COLUMN {qt}.{} IS {}",
                    ident(&c.name),
                    literal(c.comment.as_deref().unwrap_or_default())
                ),
                vec![],
            ));
        }
        self.start
            .push(self.tx(Phase::Start, format!("create table {}", o.name), stmts));
        self.abort.push(self.tx(
            Phase::Abort,
            format!("drop table {}", o.name),
            vec![Statement::new(
                format!("DROP TABLE IF EXISTS {qt}"),
                vec![self.lock(ACCESS_EXCLUSIVE, &o.name)],
            )],
        ));
        self.tables.push(VTable {
            physical: o.name.clone(),
            logical: o.name.clone(),
            hidden: false,
            created: true,
            columns: o
                .columns
                .iter()
                .map(|c| VColumn {
                    physical: c.name.clone(),
                    logical: c.name.clone(),
                    hidden: false,
                    type_name: c.type_.clone(),
                    not_null: !c.nullable || c.pk,
                    has_default: c.default.is_some() || c.generated.is_some(),
                    replaces: None,
                })
                .collect(),
        });
        Ok(())
    }

    pub(super) fn drop_table(&mut self, o: &DropTable) -> Result<(), EngineError> {
        let physical = self.table(&o.name)?.physical.clone();
        self.table_mut(&o.name).hidden = true;
        self.complete.push(self.tx(
            Phase::Complete,
            format!("drop table {}", o.name),
            vec![Statement::new(
                format!("DROP TABLE IF EXISTS {}", self.q(&physical)),
                vec![self.lock(ACCESS_EXCLUSIVE, &physical)],
            )],
        ));
        Ok(())
    }

    pub(super) fn rename_table(&mut self, o: &RenameTable) -> Result<(), EngineError> {
        let physical = self.table(&o.from)?.physical.clone();
        if o.from == o.to {
            return Err(self.invalid("`from` and `to` are the same name", "nothing to rename"));
        }
        self.ensure_table_name_free(&o.to)?;
        self.table_mut(&o.from).logical = o.to.clone();
        self.table_renames.push(self.tx(
            Phase::Complete,
            format!("rename table {} to {}", o.from, o.to),
            vec![Statement::new(
                format!(
                    "ALTER TABLE IF EXISTS {} RENAME TO {}",
                    self.q(&physical),
                    ident(&o.to)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &physical)],
            )],
        ));
        Ok(())
    }

    pub(super) fn add_column(&mut self, o: &AddColumn) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = &o.column;
        if t.columns.iter().any(|x| x.logical == c.name && !x.hidden) {
            return Err(self.invalid(
                format!("column `{}` already exists in table `{}`", c.name, o.table),
                "choose another name, or use alter_column to change the existing column",
            ));
        }
        self.column_fragments(c)?;
        if c.pk {
            return Err(self.invalid(
                "add_column cannot add a primary key column to an existing table",
                "add the column, then use create_constraint with type: primary_key",
            ));
        }
        if c.generated.is_some() {
            return Err(self.unsupported(
                "add_column with `generated`",
                "a stored generated or identity column rewrites the table under an ACCESS EXCLUSIVE lock; add a plain column with `up` instead",
            ));
        }
        let volatile = c
            .default
            .as_deref()
            .is_some_and(|d| fragment::is_volatile(d, &self.catalog().volatile_functions));
        // A column of that name may still exist physically (dropped in this migration):
        // then build it under a temporary name and rename it at complete.
        let taken = t.columns.iter().any(|x| x.physical == c.name);
        let physical = if taken {
            format!("_ratchet_new_{}", c.name)
        } else {
            c.name.clone()
        };
        if !t.created {
            // A volatile default would rewrite the table under ACCESS EXCLUSIVE: fill the
            // existing rows with a backfill instead (from `up`, or the default itself).
            let up =
                o.up.clone()
                    .or(if volatile { c.default.clone() } else { None });
            if let Some(up) = up {
                return self.add_column_with_up(o, physical, &up);
            }
        }
        if !c.nullable && c.default.is_none() && !t.created {
            return Err(self.invalid(
                format!("column `{}` is NOT NULL without a default, so existing rows and inserts through the old version would have no value", c.name),
                "set `nullable: true`, give a constant `default`, or give `up` to compute it from existing columns",
            ));
        }
        let mut col = c.clone();
        col.name = physical.clone();
        col.unique = false;
        col.check = None;
        col.references = None;
        col.comment = None;
        let qt = self.q(&t.physical);
        let mut stmts = vec![Statement::new(
            format!(
                "ALTER TABLE {qt} ADD COLUMN {}",
                column_definition(&col, false, None)
            ),
            vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
        )];
        let mut validate = Vec::new();
        if let Some(ch) = &c.check {
            stmts.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} CHECK ({}) NOT VALID",
                    ident(&ch.name),
                    ch.constraint
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            ));
            validate.push((ch.name.clone(), vec![]));
        }
        if let Some(r) = &c.references {
            let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
            stmts.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} FOREIGN KEY ({}) {} NOT VALID",
                    ident(&r.name),
                    ident(&physical),
                    column_reference(&self.schema, &rt, &rc, r)
                ),
                vec![
                    self.lock(SHARE_ROW_EXCLUSIVE, &t.physical),
                    self.lock(SHARE_ROW_EXCLUSIVE, &rt),
                ],
            ));
            validate.push((r.name.clone(), vec![self.lock("ROW SHARE", &rt)]));
        }
        if let Some(cm) = &c.comment {
            stmts.push(Statement::new(
                format!(
                    "COMMENT ON COLUMN {qt}.{} IS {}",
                    ident(&physical),
                    literal(cm)
                ),
                vec![self.lock(SHARE_UPDATE_EXCLUSIVE, &t.physical)],
            ));
        }
        self.start.push(self.tx(
            Phase::Start,
            format!("add column {}.{}", o.table, c.name),
            stmts,
        ));
        for (name, extra) in validate {
            let mut locks = vec![self.lock(SHARE_UPDATE_EXCLUSIVE, &t.physical)];
            locks.extend(extra);
            self.start.push(self.tx(
                Phase::Start,
                format!("validate constraint {name} (reads and writes continue)"),
                vec![Statement::new(
                    format!("ALTER TABLE {qt} VALIDATE CONSTRAINT {}", ident(&name)),
                    locks,
                )],
            ));
        }
        if c.unique {
            let index = unique_name(&t.physical, &c.name);
            self.ensure_index_name_free(&index)?;
            self.push_create_index(
                &index,
                format!(
                    "CREATE UNIQUE INDEX CONCURRENTLY {} ON {qt} ({})",
                    ident(&index),
                    ident(&physical)
                ),
                &t.physical,
                format!("build unique index {index} without blocking writes"),
            );
            self.start.push(self.tx(
                Phase::Start,
                format!("attach unique constraint {index}"),
                vec![Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} UNIQUE USING INDEX {}",
                        ident(&index),
                        ident(&index)
                    ),
                    vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
                )],
            ));
        }
        self.abort.push(self.tx(
            Phase::Abort,
            format!("drop column {}.{}", o.table, c.name),
            vec![Statement::new(
                format!(
                    "ALTER TABLE IF EXISTS {qt} DROP COLUMN IF EXISTS {}",
                    ident(&physical)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            )],
        ));
        if taken {
            self.rename_column_at_complete(&t.physical, &physical, &c.name);
        }
        self.table_mut(&o.table).columns.push(VColumn {
            physical,
            logical: c.name.clone(),
            hidden: false,
            type_name: c.type_.clone(),
            not_null: !c.nullable,
            has_default: c.default.is_some(),
            replaces: None,
        });
        Ok(())
    }

    /// A concurrent index build, with its abort.
    pub(super) fn push_create_index(
        &mut self,
        index: &str,
        sql: String,
        table: &str,
        description: String,
    ) {
        self.indexes.push(index.to_string());
        self.start.push(self.step(
            Phase::Start,
            description,
            Action::CreateIndexConcurrently {
                schema: self.schema.clone(),
                index: index.to_string(),
                statement: Statement::new(sql, vec![self.lock(SHARE_UPDATE_EXCLUSIVE, table)]),
            },
        ));
        self.abort.push(self.step(
            Phase::Abort,
            format!("drop index {index}"),
            Action::DropIndexConcurrently {
                statement: Statement::new(
                    format!("DROP INDEX CONCURRENTLY IF EXISTS {}", self.q(index)),
                    vec![self.lock(SHARE_UPDATE_EXCLUSIVE, table)],
                ),
            },
        ));
    }

    pub(super) fn drop_column(&mut self, o: &DropColumn) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = self.column(&t, &o.column)?.clone();
        if let Some(down) = &o.down {
            if !t.created {
                return self.drop_column_with_down(o, down);
            }
        }
        if c.not_null && !c.has_default && !t.created {
            return Err(self.invalid(
                format!("column `{}` is NOT NULL without a default: inserts through the new version could not fill it", o.column),
                "give `down:` to compute it for new-version writes, or make it nullable first",
            ));
        }
        if let Some(pk) = self.catalog_table(&t).and_then(|ct| ct.primary_key()) {
            if pk.columns.contains(&c.physical) {
                return Err(self.invalid(
                    format!(
                        "column `{}` is part of the primary key of `{}`",
                        o.column, o.table
                    ),
                    "drop or replace the primary key first (drop_constraint / create_constraint)",
                ));
            }
        }
        let tm = self.table_mut(&o.table);
        if let Some(col) = tm
            .columns
            .iter_mut()
            .find(|x| x.logical == o.column && !x.hidden)
        {
            col.hidden = true;
        }
        self.complete.push(self.tx(
            Phase::Complete,
            format!("drop column {}.{}", o.table, o.column),
            vec![Statement::new(
                format!(
                    "ALTER TABLE {} DROP COLUMN IF EXISTS {}",
                    self.q(&t.physical),
                    ident(&c.physical)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            )],
        ));
        Ok(())
    }

    pub(super) fn rename_column(&mut self, o: &RenameColumn) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = self.column(&t, &o.from)?.clone();
        if o.from == o.to {
            return Err(self.invalid("`from` and `to` are the same name", "nothing to rename"));
        }
        if t.columns.iter().any(|x| x.logical == o.to && !x.hidden) {
            return Err(self.invalid(
                format!("column `{}` already exists in table `{}`", o.to, o.table),
                "choose another name",
            ));
        }
        check_ident_len(&o.to).map_err(|m| self.invalid(m, "use a shorter name"))?;
        if t.columns.iter().any(|x| x.physical == o.to && x.hidden) {
            return Err(self.unsupported(
                "rename_column onto the name of a column dropped in the same migration",
                "drop the column in one migration and rename in the next",
            ));
        }
        let tm = self.table_mut(&o.table);
        if let Some(col) = tm
            .columns
            .iter_mut()
            .find(|x| x.logical == o.from && !x.hidden)
        {
            col.logical = o.to.clone();
        }
        self.rename_column_at_complete(&t.physical, &c.physical, &o.to);
        Ok(())
    }

    pub(super) fn rename_constraint(&mut self, o: &RenameConstraint) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let exists = self
            .catalog_table(&t)
            .is_some_and(|ct| ct.constraints.iter().any(|k| k.name == o.from));
        if !exists {
            let known: Vec<String> = self
                .catalog_table(&t)
                .map(|ct| ct.constraints.iter().map(|k| k.name.clone()).collect())
                .unwrap_or_default();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(self.invalid(
                format!("table `{}` has no constraint `{}`", o.table, o.from),
                super::did_you_mean(&o.from, &known, "constraints"),
            ));
        }
        let taken = self
            .catalog_table(&t)
            .is_some_and(|ct| ct.constraints.iter().any(|k| k.name == o.to));
        if taken || o.from == o.to {
            return Err(self.invalid(
                format!("table `{}` already has a constraint `{}`", o.table, o.to),
                "choose another name",
            ));
        }
        check_ident_len(&o.to).map_err(|m| self.invalid(m, "use a shorter name"))?;
        self.complete.push(self.tx(
            Phase::Complete,
            format!("rename constraint {} to {}", o.from, o.to),
            vec![Statement::new(
                format!(
                    "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                    self.q(&t.physical),
                    ident(&o.from),
                    ident(&o.to)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            )],
        ));
        Ok(())
    }

    pub(super) fn create_index(&mut self, o: &CreateIndex) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        self.ensure_index_name_free(&o.name)?;
        let mut cols = Vec::new();
        for ic in &o.columns {
            let c = self.column(&t, &ic.column)?;
            let mut s = ident(&c.physical);
            if let Some(coll) = &ic.collate {
                s.push_str(&format!(" COLLATE {}", ident(coll)));
            }
            if let Some(op) = &ic.opclass {
                s.push_str(&format!(" {}", ident(&op.name)));
                if !op.params.is_empty() {
                    s.push_str(&format!(" ({})", op.params.join(", ")));
                }
            }
            if let Some(sort) = &ic.sort {
                s.push_str(&format!(" {}", sort.to_uppercase()));
            }
            if let Some(n) = &ic.nulls {
                s.push_str(&format!(" NULLS {}", n.to_uppercase()));
            }
            cols.push(s);
        }
        let mut sql = format!(
            "CREATE {}INDEX CONCURRENTLY {} ON {}",
            if o.unique { "UNIQUE " } else { "" },
            ident(&o.name),
            self.q(&t.physical)
        );
        if let Some(m) = &o.method {
            sql.push_str(&format!(" USING {}", ident(&m.to_lowercase())));
        }
        sql.push_str(&format!(" ({})", cols.join(", ")));
        if let Some(sp) = &o.storage_parameters {
            sql.push_str(&format!(" WITH ({sp})"));
        }
        if let Some(p) = &o.predicate {
            self.expr("predicate", p)?;
            sql.push_str(&format!(" WHERE {p}"));
        }
        self.push_create_index(
            &o.name,
            sql,
            &t.physical,
            format!("build index {} without blocking writes", o.name),
        );
        Ok(())
    }

    pub(super) fn drop_index(&mut self, o: &DropIndex) -> Result<(), EngineError> {
        let Some(idx) = self.catalog().indexes.get(&o.name) else {
            return Err(self.invalid(
                format!(
                    "index `{}` does not exist in schema `{}`",
                    o.name, self.schema
                ),
                "check the name with \\di in psql",
            ));
        };
        if let Some(k) = &idx.constraint {
            return Err(self.invalid(
                format!("index `{}` backs constraint `{k}`", o.name),
                "use drop_constraint to remove the constraint and its index",
            ));
        }
        let table = idx.table.clone();
        self.complete.push(self.step(
            Phase::Complete,
            format!("drop index {}", o.name),
            Action::DropIndexConcurrently {
                statement: Statement::new(
                    format!("DROP INDEX CONCURRENTLY IF EXISTS {}", self.q(&o.name)),
                    vec![self.lock(SHARE_UPDATE_EXCLUSIVE, &table)],
                ),
            },
        ));
        Ok(())
    }

    pub(super) fn set_replica_identity(
        &mut self,
        o: &SetReplicaIdentity,
    ) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let clause = match o.identity.type_.to_lowercase().as_str() {
            "default" => "DEFAULT".to_string(),
            "full" => "FULL".to_string(),
            "nothing" => "NOTHING".to_string(),
            "index" => {
                let Some(name) = &o.identity.index else {
                    return Err(self.invalid(
                        "identity type `index` needs `index:`",
                        "name a unique index of the table",
                    ));
                };
                let ok = self
                    .catalog()
                    .indexes
                    .get(name)
                    .is_some_and(|i| i.table == t.physical && i.unique);
                if !ok && !self.indexes.contains(name) {
                    return Err(self.invalid(
                        format!("`{name}` is not a unique index of table `{}`", o.table),
                        "create a unique index on NOT NULL columns first",
                    ));
                }
                format!("USING INDEX {}", ident(name))
            }
            other => {
                return Err(self.invalid(
                    format!("unknown replica identity type `{other}`"),
                    "use one of: default, full, nothing, index",
                ))
            }
        };
        let set = |clause: &str| {
            vec![Statement::new(
                format!(
                    "ALTER TABLE {} REPLICA IDENTITY {clause}",
                    self.q(&t.physical)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            )]
        };
        let start = set(&clause);
        // Abort puts back what the table had (a table created by this migration goes
        // away on abort anyway).
        let abort = self
            .catalog()
            .tables
            .get(&t.physical)
            .map(|x| (x.replica_identity.clone(), set(&x.replica_identity)));
        self.start.push(self.tx(
            Phase::Start,
            format!(
                "set replica identity of {} to {}",
                o.table, o.identity.type_
            ),
            start,
        ));
        if let Some((before, statements)) = abort {
            self.abort.push(self.tx(
                Phase::Abort,
                format!("restore replica identity of {} to {before}", o.table),
                statements,
            ));
        }
        Ok(())
    }

    pub(super) fn sql(&mut self, o: &Sql) -> Result<(), EngineError> {
        let phase = if o.on_complete {
            Phase::Complete
        } else {
            Phase::Start
        };
        let statements = fragment::split_statements(&o.up).map_err(|e| {
            self.invalid(
                format!("`up` is not valid SQL: {e}"),
                "fix the SQL; nothing was run",
            )
        })?;
        for s in statements {
            let locks = fragment::infer_locks(&s, &self.schema);
            let stmt = Statement::new(s.clone(), locks);
            let outside = fragment::needs_no_transaction(&s)
                || (fragment::is_enum_add_value(&s) && self.catalog().server_version_num < 120000);
            let step = if outside {
                self.step(
                    phase,
                    "raw SQL (outside a transaction)",
                    Action::NoTransaction { statement: stmt },
                )
            } else {
                self.tx(phase, "raw SQL", vec![stmt])
            };
            match phase {
                Phase::Complete => self.complete.push(step),
                _ => self.start.push(step),
            }
        }
        if let (Some(down), false) = (&o.down, o.on_complete) {
            fragment::split_statements(down).map_err(|e| {
                self.invalid(
                    format!("`down` is not valid SQL: {e}"),
                    "fix the SQL; nothing was run",
                )
            })?;
            let locks = fragment::infer_locks(down, &self.schema);
            self.abort.push(self.tx(
                Phase::Abort,
                "raw SQL `down`",
                vec![Statement::new(down.clone(), locks)],
            ));
        }
        Ok(())
    }
}

/// PostgreSQL's own name for a single-column unique constraint, kept within 63 bytes.
fn unique_name(table: &str, column: &str) -> String {
    let mut n = format!("{table}_{column}_key");
    while n.len() > super::MAX_IDENT {
        n.remove(0);
    }
    n
}
