//! The expand machinery shared by the operations that change existing data while both
//! versions run (`add_column` with `up`, `drop_column` with `down`, `alter_column`,
//! `create_constraint`, `drop_constraint`, `drop_multicolumn_constraint`).
//!
//! A change that must be checked against the data (a type, NOT NULL, a check, a unique
//! or foreign key) is made on a *duplicate* column: added empty, kept in sync with the
//! original by dual-write triggers (created in the same transaction, so no write slips
//! through), backfilled in batches, constrained `NOT VALID` and validated at complete.
//! At complete the original is dropped and the duplicate takes its name. Metadata-only
//! changes (comment, default, rename, dropping NOT NULL) need no duplicate.
//!
//! [`Work`] collects what one operation adds to each phase; [`Planner::duplicate`] turns it
//! into steps; `carry` re-creates the originals' constraints and indexes on the duplicates.

mod carry;

use crate::dualwrite::trigger_name;
use crate::error::EngineError;
use crate::fragment;
use crate::plan::{
    Action, BackfillSpec, Lock, Pair, Phase, Statement, ACCESS_EXCLUSIVE, ROW_SHARE,
    SHARE_ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE,
};
use crate::planner::{did_you_mean, Planner, VColumn, VTable, MAX_IDENT};
use crate::sql::ident;

/// A column being duplicated by one operation.
pub(in crate::planner) struct Dup {
    pub(in crate::planner) logical: String,
    pub(in crate::planner) old: String,
    pub(in crate::planner) new: String,
    pub(in crate::planner) new_type: String,
    pub(in crate::planner) up: String,
    pub(in crate::planner) down: String,
}

/// The two sides of a dual write: the old physical column, the new one with its type, and
/// the expressions between them.
#[derive(Clone, Copy)]
pub(in crate::planner) struct Sides<'a> {
    pub(in crate::planner) old: Option<&'a str>,
    pub(in crate::planner) new: Option<(&'a str, &'a str)>,
    pub(in crate::planner) up: Option<&'a str>,
    pub(in crate::planner) down: Option<&'a str>,
}

/// Work collected for one operation's duplicates, turned into steps at the end.
#[derive(Default)]
pub(in crate::planner) struct Work {
    /// Start, in the transaction that adds the columns and triggers.
    pub(in crate::planner) tx1: Vec<Statement>,
    /// Start, after the backfills (concurrent index builds).
    pub(in crate::planner) indexes: Vec<(String, String)>,
    /// Complete: constraints to VALIDATE.
    pub(in crate::planner) validate: Vec<String>,
    /// Complete: the columns to SET NOT NULL (with their helper check).
    pub(in crate::planner) not_null: Vec<(String, String)>,
    /// Complete, after the old columns are gone: final statements.
    pub(in crate::planner) finish: Vec<Statement>,
    /// The operation makes the column nullable: a NOT NULL original is not carried over.
    pub(in crate::planner) drop_not_null: bool,
}

impl Work {
    /// A CHECK added `NOT VALID` at start under a temporary name (the final name may still
    /// be taken by the original column's constraint), validated and renamed at complete.
    pub(in crate::planner) fn check(&mut self, qt: &str, name: &str, expr: &str, lock: Vec<Lock>) {
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
    pub(in crate::planner) fn not_null_check(&mut self, qt: &str, column: &str, lock: Vec<Lock>) {
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
    /// `(logical, physical)` of the visible columns of `t`.
    pub(in crate::planner) fn names(t: &VTable) -> Vec<(String, String)> {
        t.columns
            .iter()
            .filter(|c| !c.hidden)
            .map(|c| (c.logical.clone(), c.physical.clone()))
            .collect()
    }

    /// The key of a table for keyset batches: its primary key's physical columns and types.
    pub(in crate::planner) fn key_of(&self, t: &VTable) -> Vec<(String, String)> {
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

    pub(in crate::planner) fn rewrite(
        &self,
        expr: &str,
        map: &[(String, String)],
    ) -> Result<String, EngineError> {
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
    pub(in crate::planner) fn push_pair(
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
                        did_you_mean(&n, &known, "columns")
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

    /// Push tx1 (columns and triggers; the executor records the backfills' bounds in the
    /// same transaction) and the backfills of `pairs`.
    pub(in crate::planner) fn push_expand(
        &mut self,
        t: &VTable,
        what: &str,
        tx1: Vec<Statement>,
        pairs: &[Pair],
    ) {
        let key = self.key_of(t);
        let backfills: Vec<BackfillSpec> = pairs
            .iter()
            .filter(|p| p.new.is_some() && p.up.is_some() && !t.created)
            .map(|pair| BackfillSpec {
                schema: self.schema.clone(),
                table: t.physical.clone(),
                key: key.clone(),
                pair: pair.clone(),
            })
            .collect();
        // Steps of start come first in the plan, so the backfills follow this step at
        // these indexes.
        let first = self.start.len() + 1;
        self.start.push(self.step(
            Phase::Start,
            format!("{what}: add columns and dual-write triggers atomically"),
            Action::Transaction {
                statements: tx1,
                backfill_bounds: (first..first + backfills.len()).collect(),
            },
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

    pub(in crate::planner) fn push_work(
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
    pub(in crate::planner) fn duplicate(
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

    /// A foreign key over existing values, with no duplicate column and no backfill:
    /// added `NOT VALID` in one short transaction (SHARE ROW EXCLUSIVE on both tables; from
    /// then on every write is checked), validated in the next one (SHARE UPDATE EXCLUSIVE,
    /// reads and writes go on); abort drops it.
    pub(in crate::planner) fn foreign_key_in_place(
        &mut self,
        table: &str,
        name: &str,
        body: &str,
        referenced: &str,
    ) {
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

    /// A concurrent index build, with its abort.
    pub(in crate::planner) fn push_create_index(
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
}

/// `_ratchet_new_<col>` within 63 bytes.
pub(in crate::planner) fn temp_column(col: &str) -> String {
    temp_with("_ratchet_new_", col)
}

/// A temporary constraint or index name for `name` during the expand.
pub(in crate::planner) fn temp_name(name: &str) -> String {
    temp_with("_ratchet_", name)
}

pub(in crate::planner) fn temp_with(prefix: &str, name: &str) -> String {
    let mut s = prefix.to_string();
    for ch in name.chars() {
        if s.len() + ch.len_utf8() > MAX_IDENT {
            break;
        }
        s.push(ch);
    }
    s
}

/// The warning for a NOT NULL column that `up` fills during the expand.
pub(in crate::planner) fn omitted_not_null(table: &str, column: &str) -> String {
    format!(
        "`{table}.{column}` becomes NOT NULL with no default: until `complete` the trigger fills it \
         with `up` when a new-version insert omits it, after `complete` such an insert fails; \
         make the new application always write `{column}` (or give it a default)"
    )
}

/// Whether `up`/`down` leaves the column as it is: absent, or the column itself.
pub(in crate::planner) fn is_identity(expr: Option<&str>, column: &str) -> bool {
    let Some(e) = expr else { return true };
    let e = e
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    e == column || e.trim_matches('"') == column
}
