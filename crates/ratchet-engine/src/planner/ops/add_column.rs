//! `add_column`: a plain column (added at start, constraints `NOT VALID` then validated), or,
//! with `up` or a volatile default, a column filled by dual writes and a backfill.

use ratchet_spec::{AddColumn, Column};

use crate::error::EngineError;
use crate::fragment;
use crate::plan::{
    Lock, LockMode, Phase, Statement, ACCESS_EXCLUSIVE, ROW_SHARE, SHARE_ROW_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
};
use crate::planner::ddl::{column_definition, column_reference};
use crate::planner::expand::{omitted_not_null, Sides, Work};
use crate::planner::{Planner, VColumn, VTable, MAX_IDENT};
use crate::sql::{ident, literal};

impl Planner<'_> {
    pub(super) fn add_column(&mut self, o: &AddColumn) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = &o.column;
        let volatile = self.check_new_column(o, &t)?;
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
        self.add_plain_column(o, &t, physical)
    }

    /// The column's name, fragments and kind checked; whether its default is volatile.
    fn check_new_column(&self, o: &AddColumn, t: &VTable) -> Result<bool, EngineError> {
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
        if c.generated.as_ref().is_some_and(|g| g.is_virtual) {
            if o.up.is_some() || c.default.is_some() {
                return Err(self.invalid(
                    format!(
                        "virtual generated column `{}` with `up` or `default`",
                        c.name
                    ),
                    "a generated column computes its own value: drop `up` and `default`",
                ));
            }
            if !c.nullable {
                return Err(self.invalid(
                    format!("virtual generated column `{}` is NOT NULL", c.name),
                    "PostgreSQL would check every row under ACCESS EXCLUSIVE to add it NOT NULL: set `nullable: true` (a later alter_column with nullable: false checks it without blocking)",
                ));
            }
        } else if c.generated.is_some() {
            return Err(self.unsupported(
                "add_column with `generated`",
                "a stored generated or identity column rewrites the table under an ACCESS EXCLUSIVE lock; add a plain column with `up` instead, or (PostgreSQL 18+) a virtual generated column with `generated: {expression: …, virtual: true}`",
            ));
        }
        Ok(c.default
            .as_deref()
            .is_some_and(|d| fragment::is_volatile(d, &self.catalog().volatile_functions)))
    }

    /// A column every row can take as it is (nullable, or with a constant default): added
    /// in one short transaction, its check and foreign key `NOT VALID` and validated in the
    /// next steps, a unique key from a concurrent index build.
    fn add_plain_column(
        &mut self,
        o: &AddColumn,
        t: &VTable,
        physical: String,
    ) -> Result<(), EngineError> {
        let c = &o.column;
        let qt = self.q(&t.physical);
        let (stmts, validate, attach) = self.plain_column_statements(t, c, &physical)?;
        self.start.push(self.tx(
            Phase::Start,
            format!("add column {}.{}", o.table, c.name),
            stmts,
        ));
        for (what, statement) in validate {
            self.start.push(self.tx(
                Phase::Start,
                format!("validate {what} (reads and writes continue)"),
                vec![statement],
            ));
        }
        if let Some((name, statement)) = attach {
            self.start.push(self.tx(
                Phase::Start,
                format!("add foreign key {name} to partitioned table {} (it adopts the partitions' validated keys without a scan; ACCESS EXCLUSIVE on the referenced table for the catalog change, where the partitions' action triggers are replaced by the parent's)", o.table),
                vec![statement],
            ));
        }
        if c.unique {
            self.plain_unique_key(t, c, &physical)?;
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
        if physical != c.name {
            self.rename_column_at_complete(&t.physical, &physical, &c.name);
        }
        self.table_mut(&o.table).columns.push(VColumn {
            physical,
            logical: c.name.clone(),
            hidden: false,
            type_name: c.type_.clone(),
            not_null: !c.nullable,
            has_default: c.default.is_some() || c.generated.is_some(),
            replaces: None,
        });
        Ok(())
    }

    /// The start transaction of a plain column, the validations after it (what, and the
    /// statement), and the foreign key to add to a partitioned parent after its leaves'
    /// keys are validated (see `planner::partitions`).
    #[allow(clippy::type_complexity)]
    fn plain_column_statements(
        &self,
        t: &VTable,
        c: &Column,
        physical: &str,
    ) -> Result<
        (
            Vec<Statement>,
            Vec<(String, Statement)>,
            Option<(String, Statement)>,
        ),
        EngineError,
    > {
        let mut col = c.clone();
        col.name = physical.to_string();
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
        let validate_on_table = |name: &str, extra: Vec<Lock>| {
            let mut locks = vec![self.lock(SHARE_UPDATE_EXCLUSIVE, &t.physical)];
            locks.extend(extra);
            (
                format!("constraint {name}"),
                Statement::new(
                    format!("ALTER TABLE {qt} VALIDATE CONSTRAINT {}", ident(name)),
                    locks,
                ),
            )
        };
        if let Some(ch) = &c.check {
            stmts.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} CHECK ({}) NOT VALID",
                    ident(&ch.name),
                    ch.constraint
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            ));
            validate.push(validate_on_table(&ch.name, vec![]));
        }
        let mut attach = None;
        if let Some(r) = &c.references {
            let (body, rt) = self.new_column_foreign_key_body(r, physical)?;
            match self.leaf_foreign_key(&t.physical, &r.name, &body, &rt)? {
                None => {
                    stmts.push(self.new_column_foreign_key(t, &r.name, &body, &rt));
                    validate.push(validate_on_table(&r.name, vec![self.lock(ROW_SHARE, &rt)]));
                }
                Some(leaf) => {
                    stmts.extend(leaf.add);
                    let n = leaf.validate.len();
                    validate.extend(leaf.validate.into_iter().enumerate().map(
                        |(i, (partition, v))| {
                            let what = format!(
                                "foreign key {} on partition {partition} ({} of {n})",
                                r.name,
                                i + 1
                            );
                            (what, v)
                        },
                    ));
                    attach = Some((r.name.clone(), leaf.attach));
                }
            }
        }
        if let Some(cm) = &c.comment {
            stmts.push(Statement::new(
                format!(
                    "COMMENT ON COLUMN {qt}.{} IS {}",
                    ident(physical),
                    literal(cm)
                ),
                vec![self.lock(SHARE_UPDATE_EXCLUSIVE, &t.physical)],
            ));
        }
        Ok((stmts, validate, attach))
    }

    /// `FOREIGN KEY ("column") REFERENCES …` of the new column's `references`, and the
    /// referenced table's physical name.
    fn new_column_foreign_key_body(
        &self,
        r: &ratchet_spec::ForeignKeyReference,
        physical: &str,
    ) -> Result<(String, String), EngineError> {
        let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
        let body = format!(
            "FOREIGN KEY ({}) {}",
            ident(physical),
            column_reference(&self.schema, &rt, &rc, r)
        );
        Ok((body, rt))
    }

    /// `references` of the new column: added `NOT VALID` (every write checked from then
    /// on; the existing rows are validated in a later step).
    fn new_column_foreign_key(&self, t: &VTable, name: &str, body: &str, rt: &str) -> Statement {
        Statement::new(
            format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {body} NOT VALID",
                self.q(&t.physical),
                ident(name),
            ),
            vec![
                self.lock(SHARE_ROW_EXCLUSIVE, &t.physical),
                self.lock(SHARE_ROW_EXCLUSIVE, rt),
            ],
        )
    }

    /// `unique: true` on a plain column: the index built concurrently, then attached.
    fn plain_unique_key(
        &mut self,
        t: &VTable,
        c: &Column,
        physical: &str,
    ) -> Result<(), EngineError> {
        self.refuse_unique_constraint_on_partitioned(t, "a unique column")?;
        let qt = self.q(&t.physical);
        let index = unique_name(&t.physical, &c.name);
        self.ensure_index_name_free(&index)?;
        self.push_create_index(
            &index,
            format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {} ON {qt} ({})",
                ident(&index),
                ident(physical)
            ),
            &t.physical,
            format!("build unique index {index} without blocking writes"),
        )?;
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
        Ok(())
    }

    /// A column filled by `up` for the existing rows and the old version's writes: dual
    /// writes and a backfill; NOT NULL, check, foreign key and unique key are validated at
    /// complete, when every row has its value.
    pub(super) fn add_column_with_up(
        &mut self,
        o: &AddColumn,
        physical: String,
        up: &str,
    ) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = &o.column;
        let mut new_names = Self::names(&t);
        new_names.push((c.name.clone(), physical.clone()));
        let mut tx1 = Vec::new();
        let sides = Sides {
            old: None,
            new: Some((&physical, &c.type_)),
            up: Some(up),
            down: None,
        };
        let pair = self.push_pair(&t, sides, new_names, &mut tx1)?;
        let work = self.filled_column_work(o, &t, &physical, &mut tx1)?;
        let what = format!("add column {}.{}", o.table, c.name);
        self.push_expand(&t, &what, tx1, std::slice::from_ref(&pair));
        self.push_work(&t, &what, work, &[pair], &[])?;
        if physical != c.name {
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
        if let Some(d) = &c.default {
            self.view_defaults
                .push((o.table.clone(), c.name.clone(), Some(d.clone())));
        }
        Ok(())
    }

    /// The constraints, default and comment of a column `up` fills: what goes into the
    /// start transaction `tx1`, and the rest as [`Work`] for complete.
    fn filled_column_work(
        &mut self,
        o: &AddColumn,
        t: &VTable,
        physical: &str,
        tx1: &mut Vec<Statement>,
    ) -> Result<Work, EngineError> {
        let c = &o.column;
        let qt = self.q(&t.physical);
        let mut work = Work::default();
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: LockMode| vec![Lock::new(m, lt.clone())];
        if !c.nullable {
            let route = self.not_null_route(&t.physical, physical, None);
            work.add_not_null(&qt, physical, lock(ACCESS_EXCLUSIVE), route);
            tx1.append(&mut work.tx1);
            if c.default.is_none() {
                self.warnings.push(omitted_not_null(&o.table, &c.name));
                self.count_omitted.push((o.table.clone(), c.name.clone()));
            }
        }
        if let Some(ch) = &c.check {
            let e = self.rewrite(&ch.constraint, &[(c.name.clone(), physical.to_string())])?;
            tx1.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} CHECK {e} NOT VALID",
                    ident(&ch.name)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
            work.validate.push(ch.name.clone());
        }
        if let Some(r) = &c.references {
            let (body, rt) = self.new_column_foreign_key_body(r, physical)?;
            match self.leaf_foreign_key(&t.physical, &r.name, &body, &rt)? {
                None => {
                    tx1.push(self.new_column_foreign_key(t, &r.name, &body, &rt));
                    work.validate.push(r.name.clone());
                }
                Some(leaf) => {
                    tx1.extend(leaf.add);
                    work.validate_leaves
                        .extend(leaf.validate.into_iter().map(|(_, v)| v));
                    work.finish.push(leaf.attach);
                }
            }
        }
        if c.unique {
            self.refuse_unique_constraint_on_partitioned(t, "a unique column")?;
            let name = format!("{}_{}_key", t.physical, c.name);
            let columns = format!("({})", ident(physical));
            work.unique_key(
                &qt,
                (&name, &name, "UNIQUE"),
                &columns,
                lock(ACCESS_EXCLUSIVE),
            );
        }
        if let Some(d) = &c.default {
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(physical)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        if let Some(cm) = &c.comment {
            tx1.push(Statement::new(
                format!(
                    "COMMENT ON COLUMN {qt}.{} IS {}",
                    ident(physical),
                    literal(cm)
                ),
                vec![],
            ));
        }
        Ok(work)
    }
}

/// PostgreSQL's own name for a single-column unique constraint, kept within 63 bytes.
fn unique_name(table: &str, column: &str) -> String {
    let mut n = format!("{table}_{column}_key");
    while n.len() > MAX_IDENT {
        n.remove(0);
    }
    n
}
