//! Operations that change existing data while both versions run: `add_column` with `up`,
//! `drop_column` with `down`, `alter_column`, `create_constraint`, `drop_constraint`,
//! `drop_multicolumn_constraint`.
//!
//! A change that must be checked against the data (a type, NOT NULL, a check, a unique
//! or foreign key) is made on a *duplicate* column: added empty, kept in sync with the
//! original by dual-write triggers (created in the same transaction, so no write slips
//! through), backfilled in batches, constrained `NOT VALID` and validated at complete.
//! At complete the original is dropped and the duplicate takes its name. Metadata-only
//! changes (comment, default, rename, dropping NOT NULL) need no duplicate.

use indexmap::IndexMap;
use ratchet_spec::{
    AddColumn, AlterColumn, ConstraintType, CreateConstraint, DropColumn, DropConstraint,
    DropMulticolumnConstraint, TableForeignKeyReference,
};

use super::ddl::{column_reference, ConstraintDef};
use super::{Planner, VColumn, VTable};
use crate::dualwrite::trigger_name;
use crate::error::EngineError;
use crate::fragment;
use crate::plan::{
    Action, Lock, Phase, Statement, ACCESS_EXCLUSIVE, ROW_SHARE, SHARE_ROW_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
};
use crate::plan::{BackfillSpec, Pair};
use crate::sql::{ident, ident_list, literal};

/// A column being duplicated by one operation.
struct Dup {
    logical: String,
    old: String,
    new: String,
    new_type: String,
    up: String,
    down: String,
}

/// The two sides of a dual write: the old physical column, the new one with its type, and
/// the expressions between them.
#[derive(Clone, Copy)]
struct Sides<'a> {
    old: Option<&'a str>,
    new: Option<(&'a str, &'a str)>,
    up: Option<&'a str>,
    down: Option<&'a str>,
}

/// Work collected for one operation's duplicates, turned into steps at the end.
#[derive(Default)]
struct Work {
    /// Start, in the transaction that adds the columns and triggers.
    tx1: Vec<Statement>,
    /// Start, after the backfills (concurrent index builds).
    indexes: Vec<(String, String)>,
    /// Complete: constraints to VALIDATE.
    validate: Vec<String>,
    /// Complete: the columns to SET NOT NULL (with their helper check).
    not_null: Vec<(String, String)>,
    /// Complete, after the old columns are gone: final statements.
    finish: Vec<Statement>,
    /// The operation makes the column nullable: a NOT NULL original is not carried over.
    drop_not_null: bool,
}

impl Work {
    /// A CHECK added `NOT VALID` at start under a temporary name (the final name may still
    /// be taken by the original column's constraint), validated and renamed at complete.
    fn check(&mut self, qt: &str, name: &str, expr: &str, lock: Vec<Lock>) {
        let temp = temp_name(name);
        self.tx1.push(Statement::new(
            format!(
                "ALTER TABLE {qt} ADD CONSTRAINT {} CHECK {expr} NOT VALID",
                ident(&temp)
            ),
            lock.clone(),
        ));
        self.validate.push(temp.clone());
        self.finish.push(Statement::new(
            format!(
                "ALTER TABLE {qt} RENAME CONSTRAINT {} TO {}",
                ident(&temp),
                ident(name)
            ),
            lock,
        ));
    }

    /// NOT NULL for a new column without a scan under a strong lock: a `NOT VALID` check
    /// at start, validated at complete, then `SET NOT NULL` (PostgreSQL 12+ skips the
    /// scan when a validated check proves it) and the check dropped.
    fn not_null_check(&mut self, qt: &str, column: &str, lock: Vec<Lock>) {
        let check = temp_name(&format!("{column}_nn"));
        self.tx1.push(Statement::new(
            format!(
                "ALTER TABLE {qt} ADD CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID",
                ident(&check),
                ident(column)
            ),
            lock,
        ));
        self.validate.push(check.clone());
        self.not_null.push((column.to_string(), check));
    }
}

impl Planner<'_> {
    fn state_schema(&self) -> &str {
        &self.input.state_schema
    }

    /// `(logical, physical)` of the visible columns of `t`.
    fn names(t: &VTable) -> Vec<(String, String)> {
        t.columns
            .iter()
            .filter(|c| !c.hidden)
            .map(|c| (c.logical.clone(), c.physical.clone()))
            .collect()
    }

    /// The key of a table for keyset batches: its primary key's physical columns and types.
    fn key_of(&self, t: &VTable) -> Vec<(String, String)> {
        let Some(ct) = self.catalog_table(t) else {
            return vec![];
        };
        let Some(pk) = ct.primary_key() else {
            return vec![];
        };
        pk.columns
            .iter()
            .filter_map(|c| ct.column(c).map(|ci| (c.clone(), ci.type_name.clone())))
            .collect()
    }

    fn rewrite(&self, expr: &str, map: &[(String, String)]) -> Result<String, EngineError> {
        fragment::rewrite_columns(expr, |n| {
            map.iter().find(|(l, _)| l == n).map(|(_, p)| ident(p))
        })
        .map_err(|e| {
            self.invalid(
                format!("`{expr}` is not a valid expression: {e}"),
                "fix the expression",
            )
        })
    }

    /// Add the dual-write pair for one duplicate (or one side), its backfill, and the
    /// abort/complete bookkeeping common to all of them.
    fn push_pair(
        &mut self,
        t: &VTable,
        sides: Sides<'_>,
        new_names: Vec<(String, String)>,
        tx1: &mut Vec<Statement>,
    ) -> Result<Pair, EngineError> {
        let Sides {
            old,
            new,
            up,
            mut down,
        } = sides;
        if let Some(u) = up {
            self.expr("up", u)?;
        }
        if let Some(d) = down {
            self.expr("down", d)?;
        }
        for (what, expr, names) in [
            ("up", up, Self::names(t)),
            ("down", down, new_names.clone()),
        ] {
            let Some(expr) = expr else { continue };
            let known: Vec<&str> = names.iter().map(|(l, _)| l.as_str()).collect();
            // Inside a subquery an unqualified name may be a column of the subquery's own
            // tables: PostgreSQL resolves it when the expression is compiled in the start
            // transaction below.
            let subquery = fragment::has_subquery(expr);
            for (n, _, _) in fragment::column_refs(expr).unwrap_or_default() {
                if known.contains(&n.as_str()) {
                    continue;
                }
                if subquery {
                    self.warnings.push(format!(
                        "{}: `{what}` of {} refers to `{n}`, which is not a column of that version \
                         of the table; it must be a column of a table in its subquery",
                        self.location(),
                        t.logical
                    ));
                    continue;
                }
                if what == "down" && self.input.completes_at_once {
                    // No new-version write can run before complete: `down` would never run.
                    self.warnings.push(format!(
                        "{}: `down` of {} refers to `{n}`, which is not a column of the new version \
                         of the table; left out, since the migration completes at once (without \
                         --complete this is an error)",
                        self.location(),
                        t.logical
                    ));
                    down = None;
                    break;
                }
                let side = if what == "up" { "old" } else { "new" };
                return Err(self.invalid(
                    format!(
                        "`{what}` of {} refers to `{n}`, which is not a column of the {side} version of the table",
                        t.logical
                    ),
                    format!(
                        "{} (`{what}` reads the {side} version's columns)",
                        super::did_you_mean(&n, &known, "columns")
                    ),
                ));
            }
        }
        let key = self.key_of(t);
        let pair = Pair {
            schema: self.schema.clone(),
            table: t.physical.clone(),
            old: old.map(str::to_string),
            new: new.map(|(n, _)| n.to_string()),
            up: up.map(str::to_string),
            down: down.map(str::to_string),
            old_names: Self::names(t),
            new_names,
            name: trigger_name(&t.physical, new.map(|(n, _)| n).or(old).unwrap_or_default()),
            keyed: !key.is_empty(),
        };
        let qt = self.q(&t.physical);
        if let Some((n, ty)) = new {
            tx1.push(Statement::new(
                format!("ALTER TABLE {qt} ADD COLUMN {} {ty}", ident(n)),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            ));
        }
        for sql in pair
            .create_sql()
            .map_err(|e| self.invalid(e, "check `up` and `down`"))?
        {
            tx1.push(Statement::new(
                sql,
                vec![self.lock(SHARE_ROW_EXCLUSIVE, &t.physical)],
            ));
        }
        // Compile `up` and `down` against the table inside the start transaction: a wrong
        // type, function or operator fails here, before any trigger that cannot run is
        // installed (not at the first write).
        for (what, sql) in [("up", pair.up_sql("r.")), ("down", pair.down_sql("r."))] {
            let sql = sql.map_err(|e| self.invalid(e, format!("check `{what}`")))?;
            if let Some(e) = sql {
                tx1.push(Statement::new(
                    format!("SELECT {e} FROM {qt} AS r WHERE false"),
                    vec![],
                ));
            }
        }
        let mut abort = pair
            .drop_sql()
            .into_iter()
            .map(|s| Statement::new(s, vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)]))
            .collect::<Vec<_>>();
        if let Some((n, _)) = new {
            abort.push(Statement::new(
                format!(
                    "ALTER TABLE IF EXISTS {qt} DROP COLUMN IF EXISTS {}",
                    ident(n)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            ));
        }
        self.abort.push(self.tx(
            Phase::Abort,
            format!("drop the dual writes of {}", t.logical),
            abort,
        ));
        Ok(pair)
    }

    /// Push tx1 (columns + triggers + backfill bounds) and the backfills of `pairs`.
    fn push_expand(&mut self, t: &VTable, what: &str, mut tx1: Vec<Statement>, pairs: &[Pair]) {
        let key = self.key_of(t);
        let mut backfills = Vec::new();
        for pair in pairs.iter().filter(|p| p.new.is_some() && p.up.is_some()) {
            // Steps of start come first in the plan, so this is the backfill's index.
            let index = self.start.len() + 1 + backfills.len();
            let spec = BackfillSpec {
                schema: self.schema.clone(),
                table: t.physical.clone(),
                key: key.clone(),
                pair: pair.clone(),
            };
            if !t.created {
                tx1.push(spec.capture_sql(self.state_schema(), index));
                backfills.push(spec);
            }
        }
        self.start.push(self.tx(
            Phase::Start,
            format!("{what}: add columns and dual-write triggers atomically"),
            tx1,
        ));
        for spec in backfills {
            let d = format!(
                "backfill {}.{} in batches",
                t.logical,
                spec.pair.new.clone().unwrap_or_default()
            );
            self.start
                .push(self.step(Phase::Start, d, Action::Backfill(spec)));
        }
    }

    fn push_work(
        &mut self,
        t: &VTable,
        what: &str,
        work: Work,
        pairs: &[Pair],
        drop_old: &[String],
    ) {
        let qt = self.q(&t.physical);
        for (name, sql) in &work.indexes {
            self.push_create_index(
                name,
                sql.clone(),
                &t.physical,
                format!("build index {name} on the new column"),
            );
        }
        if !work.validate.is_empty() {
            let stmts = work
                .validate
                .iter()
                .map(|c| {
                    Statement::new(
                        format!("ALTER TABLE {qt} VALIDATE CONSTRAINT {}", ident(c)),
                        vec![self.lock(SHARE_UPDATE_EXCLUSIVE, &t.physical)],
                    )
                })
                .collect();
            self.complete.push(self.tx(
                Phase::Complete,
                format!("{what}: validate constraints (reads and writes continue)"),
                stmts,
            ));
        }
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = || vec![Lock::new(ACCESS_EXCLUSIVE, lt.clone())];
        let mut fin = Vec::new();
        for (col, check) in &work.not_null {
            fin.push(Statement::new(
                format!("ALTER TABLE {qt} ALTER COLUMN {} SET NOT NULL", ident(col)),
                lock(),
            ));
            fin.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} DROP CONSTRAINT IF EXISTS {}",
                    ident(check)
                ),
                lock(),
            ));
        }
        for p in pairs {
            for s in p.drop_sql() {
                fin.push(Statement::new(s, lock()));
            }
        }
        for old in drop_old {
            fin.push(Statement::new(
                format!("ALTER TABLE {qt} DROP COLUMN IF EXISTS {}", ident(old)),
                lock(),
            ));
        }
        fin.extend(work.finish);
        if !fin.is_empty() {
            self.complete.push(self.tx(
                Phase::Complete,
                format!("{what}: switch to the new columns"),
                fin,
            ));
        }
    }

    /// Duplicate `dups` of table `t`: new columns, triggers, carried constraints and
    /// indexes, backfills; the caller adds the operation's own constraints to `work`.
    fn duplicate(
        &mut self,
        table: &str,
        what: &str,
        dups: Vec<Dup>,
        skip_constraint: Option<&str>,
        mut work: Work,
    ) -> Result<(), EngineError> {
        let t = self.table(table)?.clone();
        // The new version's columns after this operation.
        let new_names: Vec<(String, String)> = Self::names(&t)
            .into_iter()
            .map(|(l, p)| match dups.iter().find(|d| d.old == p) {
                Some(d) => (d.logical.clone(), d.new.clone()),
                None => (l, p),
            })
            .collect();
        let map: Vec<(String, String)> = dups
            .iter()
            .map(|d| (d.old.clone(), d.new.clone()))
            .collect();
        self.carry_constraints(&t, &map, skip_constraint, &mut work)?;
        let mut tx1 = Vec::new();
        let mut pairs = Vec::new();
        for d in &dups {
            let sides = Sides {
                old: Some(&d.old),
                new: Some((&d.new, &d.new_type)),
                up: Some(&d.up),
                down: Some(&d.down),
            };
            let p = self.push_pair(&t, sides, new_names.clone(), &mut tx1)?;
            pairs.push(p);
        }
        tx1.append(&mut work.tx1);
        self.push_expand(&t, what, tx1, &pairs);
        let drop_old: Vec<String> = dups.iter().map(|d| d.old.clone()).collect();
        self.push_work(&t, what, work, &pairs, &drop_old);
        // The new version sees the duplicates under the logical names.
        let tm = self.table_mut(table);
        for d in &dups {
            let Some(pos) = tm
                .columns
                .iter()
                .position(|c| c.physical == d.old && !c.hidden)
            else {
                continue;
            };
            let old = tm.columns[pos].clone();
            tm.columns[pos].hidden = true;
            tm.columns.push(VColumn {
                physical: d.new.clone(),
                logical: d.logical.clone(),
                hidden: false,
                type_name: d.new_type.clone(),
                not_null: old.not_null,
                has_default: old.has_default,
                replaces: Some(d.old.clone()),
            });
        }
        for d in &dups {
            self.rename_column_at_complete(&t.physical, &d.new, &d.logical);
        }
        Ok(())
    }

    /// Re-create on the duplicates the constraints and indexes that involve the
    /// originals (the originals go away with the old columns at complete).
    fn carry_constraints(
        &self,
        t: &VTable,
        map: &[(String, String)],
        skip: Option<&str>,
        work: &mut Work,
    ) -> Result<(), EngineError> {
        let Some(ct) = self.catalog_table(t) else {
            return Ok(());
        };
        let qt = self.q(&t.physical);
        let mapped = |cols: &[String]| -> Vec<String> {
            cols.iter()
                .map(|c| {
                    map.iter()
                        .find(|(o, _)| o == c)
                        .map(|(_, n)| n.clone())
                        .unwrap_or(c.clone())
                })
                .collect()
        };
        let touches = |cols: &[String]| cols.iter().any(|c| map.iter().any(|(o, _)| o == c));
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: &str| vec![Lock::new(m, lt.clone())];
        for k in &ct.constraints {
            if Some(k.name.as_str()) == skip || !touches(&k.columns) {
                continue;
            }
            let temp = temp_name(&k.name);
            match k.kind.as_str() {
                "c" => {
                    let expr = k
                        .definition
                        .trim_start_matches("CHECK ")
                        .trim_end_matches(" NOT VALID");
                    let e = self.rewrite(expr, map)?;
                    work.check(&qt, &k.name, &e, lock(ACCESS_EXCLUSIVE));
                }
                "u" | "p" => {
                    if k.kind == "p" {
                        return Err(self.unsupported(
                            format!("changing a primary-key column ({})", k.columns.join(", ")),
                            "create a new key with create_constraint first",
                        ));
                    }
                    work.indexes.push((
                        temp.clone(),
                        format!(
                            "CREATE UNIQUE INDEX CONCURRENTLY {} ON {qt} ({})",
                            ident(&temp),
                            ident_list(&mapped(&k.columns))
                        ),
                    ));
                    work.finish.push(Statement::new(
                        format!(
                            "ALTER TABLE {qt} ADD CONSTRAINT {} UNIQUE USING INDEX {}",
                            ident(&k.name),
                            ident(&temp)
                        ),
                        lock(ACCESS_EXCLUSIVE),
                    ));
                }
                "f" => {
                    // `FOREIGN KEY (a, b) REFERENCES …`: keep everything after the column list.
                    let Some(rest) = k.definition.find(')').map(|i| &k.definition[i + 1..]) else {
                        continue;
                    };
                    let rest = rest.trim_end_matches(" NOT VALID");
                    work.tx1.push(Statement::new(
                        format!(
                            "ALTER TABLE {qt} ADD CONSTRAINT {} FOREIGN KEY ({}){rest} NOT VALID",
                            ident(&temp),
                            ident_list(&mapped(&k.columns))
                        ),
                        lock(SHARE_ROW_EXCLUSIVE),
                    ));
                    work.validate.push(temp.clone());
                    work.finish.push(Statement::new(
                        format!(
                            "ALTER TABLE {qt} RENAME CONSTRAINT {} TO {}",
                            ident(&temp),
                            ident(&k.name)
                        ),
                        lock(ACCESS_EXCLUSIVE),
                    ));
                }
                "x" => {
                    return Err(self.unsupported(
                        format!("changing a column of exclusion constraint {}", k.name),
                        "exclusion constraints cannot be built online; use a new table",
                    ))
                }
                _ => {}
            }
        }
        for idx in self.catalog().indexes.values() {
            // Every index naming a migrated column, in a key, a key expression, INCLUDE
            // or the predicate; ordering, NULLS, collations and operator classes kept.
            if idx.table != t.physical || idx.constraint.is_some() || !idx.valid {
                continue;
            }
            let temp = temp_name(&idx.name);
            let carried = fragment::carry_index(&idx.definition, &temp, map).map_err(|e| {
                self.unsupported(
                    format!("carrying index {} onto the new column ({e})", idx.name),
                    "drop the index in an earlier migration and re-create it afterwards",
                )
            })?;
            let Some(create) = carried else { continue };
            work.indexes.push((temp.clone(), create));
            work.finish.push(Statement::new(
                format!(
                    "ALTER INDEX {} RENAME TO {}",
                    self.q(&temp),
                    ident(&idx.name)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        // A NOT NULL original: the duplicate gets it back at complete.
        let carry_not_null = !work.drop_not_null;
        for (old, new) in map.iter().filter(|_| carry_not_null) {
            if ct.column(old).is_some_and(|c| c.not_null) {
                work.not_null_check(&qt, new, lock(ACCESS_EXCLUSIVE));
            }
        }
        Ok(())
    }

    pub(super) fn add_column_with_up(
        &mut self,
        o: &AddColumn,
        physical: String,
        up: &str,
    ) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = &o.column;
        let qt = self.q(&t.physical);
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
        let mut work = Work::default();
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: &str| vec![Lock::new(m, lt.clone())];
        if !c.nullable {
            work.not_null_check(&qt, &physical, lock(ACCESS_EXCLUSIVE));
            tx1.append(&mut work.tx1);
            if c.default.is_none() {
                self.warnings.push(omitted_not_null(&o.table, &c.name));
                self.count_omitted.push((o.table.clone(), c.name.clone()));
            }
        }
        if let Some(ch) = &c.check {
            let e = self.rewrite(&ch.constraint, &[(c.name.clone(), physical.clone())])?;
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
            let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
            tx1.push(Statement::new(
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
            work.validate.push(r.name.clone());
        }
        if c.unique {
            let name = format!("{}_{}_key", t.physical, c.name);
            work.indexes.push((
                name.clone(),
                format!(
                    "CREATE UNIQUE INDEX CONCURRENTLY {} ON {qt} ({})",
                    ident(&name),
                    ident(&physical)
                ),
            ));
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} UNIQUE USING INDEX {}",
                    ident(&name),
                    ident(&name)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        if let Some(d) = &c.default {
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(&physical)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        if let Some(cm) = &c.comment {
            tx1.push(Statement::new(
                format!(
                    "COMMENT ON COLUMN {qt}.{} IS {}",
                    ident(&physical),
                    literal(cm)
                ),
                vec![],
            ));
        }
        self.push_expand(
            &t,
            &format!("add column {}.{}", o.table, c.name),
            tx1,
            std::slice::from_ref(&pair),
        );
        self.push_work(
            &t,
            &format!("add column {}.{}", o.table, c.name),
            work,
            &[pair],
            &[],
        );
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

    pub(super) fn drop_column_with_down(
        &mut self,
        o: &DropColumn,
        down: &str,
    ) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = self.column(&t, &o.column)?.clone();
        let new_names: Vec<(String, String)> = Self::names(&t)
            .into_iter()
            .filter(|(l, _)| l != &o.column)
            .collect();
        let mut tx1 = Vec::new();
        let sides = Sides {
            old: Some(&c.physical),
            new: None,
            up: None,
            down: Some(down),
        };
        let pair = self.push_pair(&t, sides, new_names, &mut tx1)?;
        // A default on the dropped column would fill it for rows the new version inserts
        // (its views do not show the column), and `down` would never run for them: the
        // table loses the default during the expand (the old version's views keep their
        // own copy of it), and abort puts it back.
        let default = self
            .catalog_table(&t)
            .and_then(|ct| ct.column(&c.physical))
            .and_then(|ci| ci.default.clone());
        if let Some(d) = default {
            let qt = self.q(&t.physical);
            let lock = vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)];
            tx1.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ALTER COLUMN {} DROP DEFAULT",
                    ident(&c.physical)
                ),
                lock.clone(),
            ));
            let restore = Statement::new(
                format!(
                    "ALTER TABLE IF EXISTS {qt} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(&c.physical)
                ),
                lock,
            );
            self.abort.push(self.tx(
                Phase::Abort,
                format!("restore the default of {}.{}", o.table, o.column),
                vec![restore],
            ));
        }
        self.push_expand(
            &t,
            &format!("drop column {}.{}", o.table, o.column),
            tx1,
            std::slice::from_ref(&pair),
        );
        self.push_work(
            &t,
            &format!("drop column {}.{}", o.table, o.column),
            Work::default(),
            &[pair],
            std::slice::from_ref(&c.physical),
        );
        if let Some(col) = self
            .table_mut(&o.table)
            .columns
            .iter_mut()
            .find(|x| x.logical == o.column && !x.hidden)
        {
            col.hidden = true;
        }
        Ok(())
    }

    pub(super) fn alter_column(&mut self, o: &AlterColumn) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = self.column(&t, &o.column)?.clone();
        let unchanged = o.name.is_none()
            && o.type_.is_none()
            && o.nullable.is_none()
            && o.default.is_none()
            && o.comment.is_none()
            && o.check.is_none()
            && o.unique.is_none()
            && o.references.is_none();
        if unchanged {
            return Err(self.invalid("alter_column changes nothing", "give at least one of name, type, nullable, default, comment, check, unique, references"));
        }
        if let Some(ty) = &o.type_ {
            self.type_name(ty)?;
        }
        let logical = o.name.clone().unwrap_or(o.column.clone());
        if o.name.is_some() && t.columns.iter().any(|x| x.logical == logical && !x.hidden) {
            return Err(self.invalid(
                format!("column `{logical}` already exists in table `{}`", o.table),
                "choose another name",
            ));
        }
        let becomes_not_null = o.nullable == Some(false) && !c.not_null;
        // A foreign key over the column's own values (no `up`, or `up` the column itself)
        // needs no duplicate: it is added NOT VALID and validated in place.
        let in_place_fk = is_identity(o.up.as_deref(), &o.column);
        let needs_dup = !t.created
            && (o.type_.is_some()
                || becomes_not_null
                || o.check.is_some()
                || o.unique.is_some()
                || (o.references.is_some() && !in_place_fk));
        let qt = self.q(&t.physical);
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: &str| vec![Lock::new(m, lt.clone())];
        if !needs_dup {
            return self.alter_metadata(o, &t, &c, &logical);
        }
        let new = temp_column(&c.physical);
        let new_type = o.type_.clone().unwrap_or(c.type_name.clone());
        let mut work = Work {
            drop_not_null: o.nullable == Some(true),
            ..Work::default()
        };
        if becomes_not_null {
            work.not_null_check(&qt, &new, lock(ACCESS_EXCLUSIVE));
            let has_default = match &o.default {
                Some(d) => d.is_some(),
                None => self
                    .catalog_table(&t)
                    .and_then(|ct| ct.column(&c.physical))
                    .is_some_and(|ci| ci.default.is_some()),
            };
            if !has_default {
                self.warnings.push(omitted_not_null(&o.table, &logical));
                self.count_omitted.push((o.table.clone(), logical.clone()));
            }
        }
        // The operation's own constraints, over the duplicate.
        let on_new = [
            (o.column.clone(), new.clone()),
            (logical.clone(), new.clone()),
        ];
        if let Some(ch) = &o.check {
            self.expr("check", &ch.constraint)?;
            let e = self.rewrite(&ch.constraint, &on_new)?;
            work.check(&qt, &ch.name, &e, lock(ACCESS_EXCLUSIVE));
        }
        if let Some(u) = &o.unique {
            let temp = temp_name(&u.name);
            work.indexes.push((
                temp.clone(),
                format!(
                    "CREATE UNIQUE INDEX CONCURRENTLY {} ON {qt} ({})",
                    ident(&temp),
                    ident(&new)
                ),
            ));
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} UNIQUE USING INDEX {}",
                    ident(&u.name),
                    ident(&temp)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        if let Some(r) = &o.references {
            let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
            let temp = temp_name(&r.name);
            work.tx1.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} FOREIGN KEY ({}) {} NOT VALID",
                    ident(&temp),
                    ident(&new),
                    column_reference(&self.schema, &rt, &rc, r)
                ),
                vec![
                    self.lock(SHARE_ROW_EXCLUSIVE, &t.physical),
                    self.lock(SHARE_ROW_EXCLUSIVE, &rt),
                ],
            ));
            work.validate.push(temp.clone());
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} RENAME CONSTRAINT {} TO {}",
                    ident(&temp),
                    ident(&r.name)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        // Default and comment end up on the duplicate. A default kept across a type change
        // is tried on the duplicate inside the start transaction (set and dropped again:
        // the duplicate must stay without one while the old version writes), so a default
        // the new type cannot take fails at start, not at complete (`default: null` drops
        // it instead). Without it, inserts that leave the column out would work during
        // the expand and fail after complete.
        let default = match (&o.default, &o.type_) {
            (Some(d), _) => d.clone(),
            (None, ty) => self
                .catalog_table(&t)
                .and_then(|ct| ct.column(&c.physical))
                .and_then(|ci| ci.default.clone())
                .map(|d| match ty {
                    Some(ty) => format!("CAST(({d}) AS {ty})"),
                    None => d,
                }),
        };
        if let (Some(d), Some(_), None) = (&default, &o.type_, &o.default) {
            for sql in [
                format!(
                    "ALTER TABLE {qt} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(&new)
                ),
                format!("ALTER TABLE {qt} ALTER COLUMN {} DROP DEFAULT", ident(&new)),
            ] {
                work.tx1.push(Statement::new(sql, lock(ACCESS_EXCLUSIVE)));
            }
        }
        if let Some(d) = &default {
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(&new)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        let comment = match &o.comment {
            Some(cm) => cm.clone(),
            None => self
                .catalog_table(&t)
                .and_then(|ct| ct.column(&c.physical))
                .and_then(|ci| ci.comment.clone()),
        };
        if let Some(cm) = comment {
            work.tx1.push(Statement::new(
                format!("COMMENT ON COLUMN {qt}.{} IS {}", ident(&new), literal(&cm)),
                vec![],
            ));
        }
        let dup = Dup {
            logical: logical.clone(),
            old: c.physical.clone(),
            new: new.clone(),
            new_type,
            up: o.up.clone().unwrap_or(o.column.clone()),
            down: o.down.clone().unwrap_or(logical.clone()),
        };
        self.duplicate(
            &o.table,
            &format!("alter column {}.{}", o.table, o.column),
            vec![dup],
            None,
            work,
        )?;
        self.view_defaults.push((o.table.clone(), logical, default));
        Ok(())
    }

    /// alter_column without a duplicate: comment, default, rename, dropping NOT NULL, or
    /// any change to a table created in the same migration.
    fn alter_metadata(
        &mut self,
        o: &AlterColumn,
        t: &VTable,
        c: &VColumn,
        logical: &str,
    ) -> Result<(), EngineError> {
        let qt = self.q(&t.physical);
        let col = ident(&c.physical);
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: &str| vec![Lock::new(m, lt.clone())];
        let mut start = Vec::new();
        let mut complete = Vec::new();
        if let Some(cm) = &o.comment {
            let v = cm.as_deref().map(literal).unwrap_or("NULL".into());
            start.push(Statement::new(
                format!("COMMENT ON COLUMN {qt}.{col} IS {v}"),
                lock(SHARE_UPDATE_EXCLUSIVE),
            ));
        }
        if o.nullable == Some(true) && c.not_null {
            start.push(Statement::new(
                format!("ALTER TABLE {qt} ALTER COLUMN {col} DROP NOT NULL"),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        // On a table created by this migration nothing runs against it yet: change it directly.
        if t.created {
            if let Some(ty) = &o.type_ {
                start.push(Statement::new(
                    format!("ALTER TABLE {qt} ALTER COLUMN {col} TYPE {ty}"),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            if o.nullable == Some(false) {
                start.push(Statement::new(
                    format!("ALTER TABLE {qt} ALTER COLUMN {col} SET NOT NULL"),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            if let Some(ch) = &o.check {
                start.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} CHECK ({})",
                        ident(&ch.name),
                        ch.constraint
                    ),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            if let Some(u) = &o.unique {
                start.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} UNIQUE ({col})",
                        ident(&u.name)
                    ),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            if let Some(r) = &o.references {
                let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
                start.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} FOREIGN KEY ({col}) {}",
                        ident(&r.name),
                        column_reference(&self.schema, &rt, &rc, r)
                    ),
                    vec![
                        self.lock(SHARE_ROW_EXCLUSIVE, &t.physical),
                        self.lock(SHARE_ROW_EXCLUSIVE, &rt),
                    ],
                ));
            }
            if let Some(d) = &o.default {
                let v = d
                    .as_deref()
                    .map(|d| format!("SET DEFAULT {d}"))
                    .unwrap_or("DROP DEFAULT".into());
                start.push(Statement::new(
                    format!("ALTER TABLE {qt} ALTER COLUMN {col} {v}"),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
        } else if let Some(d) = &o.default {
            if let Some(v) = d {
                self.expr("default", v)?;
            }
            // The new version sees the new default at once (on its view); the table gets it
            // at complete, so the old version keeps its own until then.
            let v = d
                .as_deref()
                .map(|d| format!("SET DEFAULT {d}"))
                .unwrap_or("DROP DEFAULT".into());
            complete.push(Statement::new(
                format!("ALTER TABLE {qt} ALTER COLUMN {col} {v}"),
                lock(ACCESS_EXCLUSIVE),
            ));
            self.view_defaults
                .push((o.table.clone(), logical.to_string(), d.clone()));
        }
        let what = format!("alter column {}.{}", o.table, o.column);
        if !start.is_empty() {
            self.start.push(self.tx(Phase::Start, what.clone(), start));
        }
        if let (false, Some(r)) = (t.created, &o.references) {
            let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
            let body = format!(
                "FOREIGN KEY ({col}) {}",
                column_reference(&self.schema, &rt, &rc, r)
            );
            self.foreign_key_in_place(&t.physical, &r.name, &body, &rt);
        }
        if !complete.is_empty() {
            self.complete
                .push(self.tx(Phase::Complete, what.clone(), complete));
        }
        if logical != o.column {
            self.rename_column_at_complete(&t.physical, &c.physical, logical);
            if let Some(x) = self
                .table_mut(&o.table)
                .columns
                .iter_mut()
                .find(|x| x.logical == o.column && !x.hidden)
            {
                x.logical = logical.to_string();
            }
        }
        Ok(())
    }

    /// A foreign key over existing values, with no duplicate column and no backfill:
    /// added `NOT VALID` in one short transaction (SHARE ROW EXCLUSIVE on both tables; from
    /// then on every write is checked), validated in the next one (SHARE UPDATE EXCLUSIVE,
    /// reads and writes go on); abort drops it.
    fn foreign_key_in_place(&mut self, table: &str, name: &str, body: &str, referenced: &str) {
        let qt = self.q(table);
        let add = Statement::new(
            format!(
                "ALTER TABLE {qt} ADD CONSTRAINT {} {body} NOT VALID",
                ident(name)
            ),
            vec![
                self.lock(SHARE_ROW_EXCLUSIVE, table),
                self.lock(SHARE_ROW_EXCLUSIVE, referenced),
            ],
        );
        let validate = Statement::new(
            format!("ALTER TABLE {qt} VALIDATE CONSTRAINT {}", ident(name)),
            vec![
                self.lock(SHARE_UPDATE_EXCLUSIVE, table),
                self.lock(ROW_SHARE, referenced),
            ],
        );
        let drop = Statement::new(
            format!(
                "ALTER TABLE IF EXISTS {qt} DROP CONSTRAINT IF EXISTS {}",
                ident(name)
            ),
            vec![self.lock(ACCESS_EXCLUSIVE, table)],
        );
        self.start.push(self.tx(
            Phase::Start,
            format!("add foreign key {name} NOT VALID"),
            vec![add],
        ));
        self.start.push(self.tx(
            Phase::Start,
            format!("validate foreign key {name} (reads and writes go on)"),
            vec![validate],
        ));
        self.abort
            .push(self.tx(Phase::Abort, format!("drop foreign key {name}"), vec![drop]));
    }

    pub(super) fn create_constraint(&mut self, o: &CreateConstraint) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let mut cols = Vec::new();
        for c in &o.columns {
            cols.push(self.column(&t, c)?.clone());
        }
        if let Some(ch) = &o.check {
            self.expr("check", ch)?;
        }
        let refs = match &o.references {
            Some(r) => {
                let rt = self.table(&r.table)?.clone();
                let mut rc = Vec::new();
                for c in &r.columns {
                    rc.push(self.column(&rt, c)?.physical.clone());
                }
                Some((self.q(&rt.physical), r, rc, rt.physical))
            }
            None => None,
        };
        let qt = self.q(&t.physical);
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: &str| vec![Lock::new(m, lt.clone())];
        if t.created {
            let phys: Vec<String> = cols.iter().map(|c| c.physical.clone()).collect();
            let check = match &o.check {
                Some(ch) => Some(
                    self.rewrite(
                        ch,
                        &cols
                            .iter()
                            .map(|c| (c.logical.clone(), c.physical.clone()))
                            .collect::<Vec<_>>(),
                    )?,
                ),
                None => None,
            };
            let body = ConstraintDef {
                check: check.as_deref(),
                references: refs
                    .as_ref()
                    .map(|(q, r, rc, _)| (q.as_str(), *r, rc.as_slice())),
                exclude: o.exclude.as_ref(),
                index_params: o.index_parameters.as_ref(),
                nulls_not_distinct: o.nulls_not_distinct,
                no_inherit: o.no_inherit,
                ..ConstraintDef::new(o.type_, &phys).deferrable(o.deferrable, o.initially_deferred)
            }
            .body()
            .map_err(|e| self.invalid(e, "see create_constraint in docs/operations.md"))?;
            self.start.push(self.tx(
                Phase::Start,
                format!("add constraint {} to new table {}", o.name, o.table),
                vec![Statement::new(
                    format!("ALTER TABLE {qt} ADD CONSTRAINT {} {body}", ident(&o.name)),
                    lock(ACCESS_EXCLUSIVE),
                )],
            ));
            return Ok(());
        }
        if o.type_ == ConstraintType::Exclude {
            return Err(self.unsupported(
                "create_constraint of type exclude on an existing table",
                "an exclusion constraint can be neither NOT VALID nor built concurrently; create a new table and copy the data",
            ));
        }
        if let (ConstraintType::ForeignKey, Some((rq, r, rc, rphys))) = (o.type_, &refs) {
            let identity = cols.iter().all(|c| {
                is_identity(o.up.get(&c.logical).map(String::as_str), &c.logical)
                    && is_identity(o.down.get(&c.logical).map(String::as_str), &c.logical)
            });
            if identity {
                let phys: Vec<String> = cols.iter().map(|c| c.physical.clone()).collect();
                let body = fk_body(o, &phys, (rq, r, rc))
                    .map_err(|e| self.invalid(e, "add references: {table, columns}"))?;
                self.foreign_key_in_place(&t.physical, &o.name, &body, rphys);
                return Ok(());
            }
        }
        let mut dups = Vec::new();
        for c in &cols {
            dups.push(Dup {
                logical: c.logical.clone(),
                old: c.physical.clone(),
                new: temp_column(&c.physical),
                new_type: c.type_name.clone(),
                up: o.up.get(&c.logical).cloned().unwrap_or(c.logical.clone()),
                down: o.down.get(&c.logical).cloned().unwrap_or(c.logical.clone()),
            });
        }
        let new_cols: Vec<String> = dups.iter().map(|d| d.new.clone()).collect();
        let mut work = Work::default();
        let temp = temp_name(&o.name);
        match o.type_ {
            ConstraintType::Check => {
                let map: Vec<(String, String)> = dups
                    .iter()
                    .map(|d| (d.logical.clone(), d.new.clone()))
                    .collect();
                let mut e = self.rewrite(o.check.as_deref().unwrap_or("true"), &map)?;
                if o.no_inherit {
                    e.push_str(" NO INHERIT");
                }
                work.check(&qt, &o.name, &e, lock(ACCESS_EXCLUSIVE));
            }
            ConstraintType::ForeignKey => {
                let Some((rq, r, rc, rphys)) = &refs else {
                    return Err(self.invalid(
                        "a foreign_key constraint needs `references`",
                        "add references: {table, columns}",
                    ));
                };
                let body = fk_body(o, &new_cols, (rq, r, rc))
                    .map_err(|e| self.invalid(e, "add references: {table, columns}"))?;
                work.tx1.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} {body} NOT VALID",
                        ident(&temp)
                    ),
                    vec![
                        self.lock(SHARE_ROW_EXCLUSIVE, &t.physical),
                        self.lock(SHARE_ROW_EXCLUSIVE, rphys),
                    ],
                ));
                work.validate.push(temp.clone());
                work.finish.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} RENAME CONSTRAINT {} TO {}",
                        ident(&temp),
                        ident(&o.name)
                    ),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            ConstraintType::Unique | ConstraintType::PrimaryKey => {
                let mut sql = format!(
                    "CREATE UNIQUE INDEX CONCURRENTLY {} ON {qt} ({})",
                    ident(&temp),
                    ident_list(&new_cols)
                );
                if o.nulls_not_distinct {
                    sql.push_str(" NULLS NOT DISTINCT");
                }
                work.indexes.push((temp.clone(), sql));
                let kind = if o.type_ == ConstraintType::PrimaryKey {
                    "PRIMARY KEY"
                } else {
                    "UNIQUE"
                };
                if o.type_ == ConstraintType::PrimaryKey {
                    for d in &dups {
                        work.not_null_check(&qt, &d.new, lock(ACCESS_EXCLUSIVE));
                    }
                }
                work.finish.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} {kind} USING INDEX {}",
                        ident(&o.name),
                        ident(&temp)
                    ),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            ConstraintType::Exclude => {}
        }
        self.duplicate(
            &o.table,
            &format!("create constraint {}", o.name),
            dups,
            None,
            work,
        )
    }

    pub(super) fn drop_constraint(&mut self, o: &DropConstraint) -> Result<(), EngineError> {
        let (cols, _) = self.constraint_columns(&o.table, &o.name)?;
        if cols.len() != 1 {
            return Err(self.invalid(
                format!("constraint `{}` spans {} columns", o.name, cols.len()),
                "use drop_multicolumn_constraint with per-column up/down",
            ));
        }
        let mut up = IndexMap::new();
        let mut down = IndexMap::new();
        if let Some(u) = &o.up {
            up.insert(cols[0].clone(), u.clone());
        }
        if let Some(d) = &o.down {
            down.insert(cols[0].clone(), d.clone());
        }
        self.drop_constraint_cols(&o.table, &o.name, &cols, &up, &down)
    }

    pub(super) fn drop_multicolumn_constraint(
        &mut self,
        o: &DropMulticolumnConstraint,
    ) -> Result<(), EngineError> {
        let (cols, _) = self.constraint_columns(&o.table, &o.name)?;
        self.drop_constraint_cols(&o.table, &o.name, &cols, &o.up, &o.down)
    }

    /// The logical columns of constraint `name` of `table`.
    fn constraint_columns(
        &self,
        table: &str,
        name: &str,
    ) -> Result<(Vec<String>, String), EngineError> {
        let t = self.table(table)?;
        let Some(k) = self
            .catalog_table(t)
            .and_then(|ct| ct.constraints.iter().find(|k| k.name == name))
        else {
            let known: Vec<String> = self
                .catalog_table(t)
                .map(|ct| ct.constraints.iter().map(|k| k.name.clone()).collect())
                .unwrap_or_default();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(self.invalid(
                format!("table `{table}` has no constraint `{name}`"),
                super::did_you_mean(name, &known, "constraints"),
            ));
        };
        if k.kind == "p" {
            return Err(self.unsupported("dropping a primary key", "a table needs a key for batched backfills; replace it with create_constraint first"));
        }
        let cols = k
            .columns
            .iter()
            .map(|p| {
                t.columns
                    .iter()
                    .find(|c| &c.physical == p && !c.hidden)
                    .map(|c| c.logical.clone())
                    .unwrap_or(p.clone())
            })
            .collect();
        Ok((cols, k.kind.clone()))
    }

    fn drop_constraint_cols(
        &mut self,
        table: &str,
        name: &str,
        cols: &[String],
        up: &IndexMap<String, String>,
        down: &IndexMap<String, String>,
    ) -> Result<(), EngineError> {
        let t = self.table(table)?.clone();
        let mut dups = Vec::new();
        for l in cols {
            let c = self.column(&t, l)?.clone();
            dups.push(Dup {
                logical: c.logical.clone(),
                old: c.physical.clone(),
                new: temp_column(&c.physical),
                new_type: c.type_name.clone(),
                up: up.get(l).cloned().unwrap_or(l.clone()),
                down: down.get(l).cloned().unwrap_or(l.clone()),
            });
        }
        self.duplicate(
            table,
            &format!("drop constraint {name}"),
            dups,
            Some(name),
            Work::default(),
        )
    }
}

/// `_ratchet_new_<col>` within 63 bytes.
fn temp_column(col: &str) -> String {
    temp_with("_ratchet_new_", col)
}

/// A temporary constraint or index name for `name` during the expand.
fn temp_name(name: &str) -> String {
    temp_with("_ratchet_", name)
}

fn temp_with(prefix: &str, name: &str) -> String {
    let mut s = prefix.to_string();
    for ch in name.chars() {
        if s.len() + ch.len_utf8() > super::MAX_IDENT {
            break;
        }
        s.push(ch);
    }
    s
}

/// The warning for a NOT NULL column that `up` fills during the expand.
fn omitted_not_null(table: &str, column: &str) -> String {
    format!(
        "`{table}.{column}` becomes NOT NULL with no default: until `complete` the trigger fills it \
         with `up` when a new-version insert omits it, after `complete` such an insert fails; \
         make the new application always write `{column}` (or give it a default)"
    )
}

/// Whether `up`/`down` leaves the column as it is: absent, or the column itself.
fn is_identity(expr: Option<&str>, column: &str) -> bool {
    let Some(e) = expr else { return true };
    let e = e
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    e == column || e.trim_matches('"') == column
}

/// The foreign key of `create_constraint` `o` over `cols`, referencing `(table, reference,
/// columns)`.
fn fk_body(
    o: &CreateConstraint,
    cols: &[String],
    (table, r, ref_cols): (&String, &&TableForeignKeyReference, &Vec<String>),
) -> Result<String, String> {
    ConstraintDef {
        references: Some((table.as_str(), *r, ref_cols.as_slice())),
        ..ConstraintDef::new(o.type_, cols).deferrable(o.deferrable, o.initially_deferred)
    }
    .body()
}
