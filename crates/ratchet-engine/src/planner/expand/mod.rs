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
mod pair;

use crate::error::EngineError;
use crate::fragment;
use crate::plan::{
    Action, BackfillSpec, Lock, Pair, Phase, Statement, ACCESS_EXCLUSIVE, ROW_SHARE,
    SHARE_ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE,
};
use crate::planner::{Planner, VColumn, VTable, MAX_IDENT};
use crate::sql::ident;

/// A column being duplicated by one operation.
pub(super) struct Dup {
    pub(super) logical: String,
    pub(super) old: String,
    pub(super) new: String,
    pub(super) new_type: String,
    pub(super) up: String,
    pub(super) down: String,
}

/// The two sides of a dual write: the old physical column, the new one with its type, and
/// the expressions between them.
#[derive(Clone, Copy)]
pub(super) struct Sides<'a> {
    pub(super) old: Option<&'a str>,
    pub(super) new: Option<(&'a str, &'a str)>,
    pub(super) up: Option<&'a str>,
    pub(super) down: Option<&'a str>,
}

/// How a NOT NULL reaches a column the migration fills (see [`Work::add_not_null`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::planner) enum NotNull {
    /// A `CHECK (… IS NOT NULL) NOT VALID` stand-in, then `SET NOT NULL` (before 18).
    Check,
    /// `NOT NULL … NOT VALID` (PostgreSQL 18+), renamed at complete to the name given (none:
    /// the name is taken; the constraint keeps its temporary name).
    Native(Option<String>),
}

/// Work collected for one operation's duplicates, turned into steps at the end.
#[derive(Default)]
pub(super) struct Work {
    /// Start, in the transaction that adds the columns and triggers.
    pub(super) tx1: Vec<Statement>,
    /// Start, after the backfills (concurrent index builds).
    pub(super) indexes: Vec<(String, String)>,
    /// Complete: constraints to VALIDATE.
    pub(super) validate: Vec<String>,
    /// Complete: `VALIDATE CONSTRAINT` statements on partitions (a foreign key added to
    /// each leaf of a partitioned table, see `planner::partitions`), after `validate`.
    pub(super) validate_leaves: Vec<Statement>,
    /// Complete: the columns to SET NOT NULL (with their helper check).
    pub(super) not_null: Vec<(String, String)>,
    /// Complete, after the old columns are gone: final statements.
    pub(super) finish: Vec<Statement>,
    /// Complete, last: the partitions' indexes of a partitioned index carried onto the
    /// duplicates (`(temporary index, original index)`) take the names the original's
    /// partitions' indexes had (dropped with the old columns earlier in the transaction).
    pub(super) partition_index_renames: Vec<(String, String)>,
    /// The operation makes the column nullable: a NOT NULL original is not carried over.
    pub(super) drop_not_null: bool,
}

impl Work {
    /// A CHECK added `NOT VALID` at start under a temporary name (the final name may still
    /// be taken by the original column's constraint), validated and renamed at complete.
    pub(super) fn check(&mut self, qt: &str, name: &str, expr: &str, lock: Vec<Lock>) {
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

    /// NOT NULL for a new column without a scan under a strong lock. Before PostgreSQL
    /// 18 ([`NotNull::Check`]): a `NOT VALID` check at start, validated at complete, then
    /// `SET NOT NULL` (PostgreSQL 12+ skips the scan when a validated check proves it) and
    /// the check dropped. On 18 ([`NotNull::Native`]): a not-null constraint added `NOT
    /// VALID` at start and validated at complete, which makes the column NOT NULL by
    /// itself; it takes its final name once the old column (and its own not-null
    /// constraint) is gone.
    pub(super) fn add_not_null(&mut self, qt: &str, column: &str, lock: Vec<Lock>, route: NotNull) {
        let temp = temp_name(&format!("{column}_nn"));
        let constraint = match &route {
            NotNull::Check => format!("CHECK ({} IS NOT NULL)", ident(column)),
            NotNull::Native(_) => format!("NOT NULL {}", ident(column)),
        };
        self.tx1.push(Statement::new(
            format!(
                "ALTER TABLE {qt} ADD CONSTRAINT {} {constraint} NOT VALID",
                ident(&temp)
            ),
            lock.clone(),
        ));
        self.validate.push(temp.clone());
        match route {
            NotNull::Check => self.not_null.push((column.to_string(), temp)),
            NotNull::Native(Some(name)) => self.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} RENAME CONSTRAINT {} TO {}",
                    ident(&temp),
                    ident(&name)
                ),
                lock,
            )),
            NotNull::Native(None) => {}
        }
    }

    /// A unique key built without blocking writes: `CREATE UNIQUE INDEX CONCURRENTLY`
    /// after the backfill, attached as constraint `name` (`kind`: `UNIQUE` or `PRIMARY
    /// KEY`) at complete. `columns` is the index's column list, e.g. `("a", "b")`.
    pub(super) fn unique_key(
        &mut self,
        qt: &str,
        (index, name, kind): (&str, &str, &str),
        columns: &str,
        lock: Vec<Lock>,
    ) {
        self.indexes.push((
            index.to_string(),
            format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {} ON {qt} {columns}",
                ident(index)
            ),
        ));
        self.finish.push(Statement::new(
            format!(
                "ALTER TABLE {qt} ADD CONSTRAINT {} {kind} USING INDEX {}",
                ident(name),
                ident(index)
            ),
            lock,
        ));
    }

    /// A foreign key over the duplicates: `body` (`FOREIGN KEY (…) REFERENCES …`) added
    /// `NOT VALID` under the temporary name `temp` at start (every write is checked from
    /// then on), validated at complete and renamed to `name`.
    pub(super) fn foreign_key(
        &mut self,
        qt: &str,
        (temp, name): (&str, &str),
        body: &str,
        locks: Vec<Lock>,
        rename_lock: Vec<Lock>,
    ) {
        self.tx1.push(Statement::new(
            format!(
                "ALTER TABLE {qt} ADD CONSTRAINT {} {body} NOT VALID",
                ident(temp)
            ),
            locks,
        ));
        self.validate.push(temp.to_string());
        self.finish.push(Statement::new(
            format!(
                "ALTER TABLE {qt} RENAME CONSTRAINT {} TO {}",
                ident(temp),
                ident(name)
            ),
            rename_lock,
        ));
    }
}

impl Planner<'_> {
    /// `(logical, physical)` of the visible columns of `t`.
    pub(super) fn names(t: &VTable) -> Vec<(String, String)> {
        t.columns
            .iter()
            .filter(|c| !c.hidden)
            .map(|c| (c.logical.clone(), c.physical.clone()))
            .collect()
    }

    /// The key of a table for keyset batches: its primary key's physical columns and types.
    pub(super) fn key_of(&self, t: &VTable) -> Vec<(String, String)> {
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

    pub(super) fn rewrite(
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

    /// Push tx1 (columns and triggers; the executor records the backfills' bounds in the
    /// same transaction) and the backfills of `pairs`.
    pub(super) fn push_expand(
        &mut self,
        t: &VTable,
        what: &str,
        tx1: Vec<Statement>,
        pairs: &[Pair],
    ) {
        let key = self.key_of(t);
        // A partitioned table is walked partition by partition: each leaf is a backfill of
        // its own (its bound, its cursors, its progress), the key is the parent's (every
        // partition has the same primary key columns).
        let leaves: Option<Vec<crate::catalog::Partition>> = self
            .partitioning_of(&t.physical)
            .map(|p| p.leaves().cloned().collect());
        let backfills: Vec<BackfillSpec> = pairs
            .iter()
            .filter(|p| p.new.is_some() && p.up.is_some() && !t.created)
            .flat_map(|pair| match &leaves {
                None => vec![BackfillSpec {
                    schema: self.schema.clone(),
                    table: t.physical.clone(),
                    parent: None,
                    key: key.clone(),
                    pages: true,
                    pair: pair.clone(),
                }],
                Some(leaves) => leaves
                    .iter()
                    .map(|l| BackfillSpec {
                        schema: l.schema.clone(),
                        table: l.name.clone(),
                        parent: Some(t.physical.clone()),
                        key: key.clone(),
                        pages: true,
                        pair: pair.clone(),
                    })
                    .collect(),
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
        let per_pair = leaves.as_ref().map_or(1, Vec::len).max(1);
        for (i, spec) in backfills.into_iter().enumerate() {
            let mut d = format!(
                "backfill {}.{} in batches",
                t.logical,
                spec.pair.new.clone().unwrap_or_default()
            );
            if spec.parent.is_some() {
                d.push_str(&format!(
                    ", partition {} ({} of {per_pair})",
                    spec.table,
                    i % per_pair + 1
                ));
            }
            self.start
                .push(self.step(Phase::Start, d, Action::Backfill(Box::new(spec))));
        }
    }

    pub(super) fn push_work(
        &mut self,
        t: &VTable,
        what: &str,
        work: Work,
        pairs: &[Pair],
        drop_old: &[String],
    ) -> Result<(), EngineError> {
        let qt = self.q(&t.physical);
        for (name, sql) in &work.indexes {
            self.push_create_index(
                name,
                sql.clone(),
                &t.physical,
                format!("build index {name} on the new column"),
            )?;
        }
        if !work.validate.is_empty() || !work.validate_leaves.is_empty() {
            let stmts = work
                .validate
                .iter()
                .map(|c| {
                    Statement::new(
                        format!("ALTER TABLE {qt} VALIDATE CONSTRAINT {}", ident(c)),
                        vec![self.lock(SHARE_UPDATE_EXCLUSIVE, &t.physical)],
                    )
                })
                .chain(work.validate_leaves)
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
        for (temp, original) in &work.partition_index_renames {
            let ours = self
                .partition_indexes
                .get(temp)
                .cloned()
                .unwrap_or_default();
            for (partition, name) in self.attached_indexes(original) {
                let Some(ours) = ours.get(&partition) else {
                    continue;
                };
                fin.push(Statement::new(
                    format!("ALTER INDEX {} RENAME TO {}", self.q(ours), ident(&name)),
                    vec![self.lock(ACCESS_EXCLUSIVE, ours)],
                ));
            }
        }
        if !fin.is_empty() {
            self.complete.push(self.tx(
                Phase::Complete,
                format!("{what}: switch to the new columns"),
                fin,
            ));
        }
        Ok(())
    }

    /// Refuse a duplicate whose original cannot be replaced at complete without losing
    /// something: a column this migration added or duplicated already (what it built on
    /// it is not in the catalog, so it would not be carried), a column an earlier
    /// operation of the file indexed or constrained in place (likewise), and a column a
    /// stored generated column is computed from (`DROP COLUMN` would fail at complete).
    fn check_duplicable(&self, t: &VTable, d: &Dup) -> Result<(), EngineError> {
        let Some(ct) = self.catalog_table(t) else {
            return Ok(());
        };
        self.refuse_partition_key_column(t, &d.old, "replacing")?;
        if ct.column(&d.old).is_none() {
            return Err(self.unsupported(
                format!(
                    "replacing `{}.{}`, which an earlier operation of this file added or replaced (what the file built on it would not be carried to the replacement)",
                    t.logical, d.logical
                ),
                "give the column its final type and constraints where the file adds it, make all changes in one alter_column, or move this one into the next migration",
            ));
        }
        if let Some((_, _, what)) = self
            .built_on
            .iter()
            .find(|(tb, c, _)| *tb == t.physical && *c == d.old)
        {
            return Err(self.unsupported(
                format!(
                    "replacing `{}.{}` after an earlier operation of this file built {what} on it (it would be dropped with the old column at complete)",
                    t.logical, d.logical
                ),
                format!("put this operation before the one that builds {what}, or into the next migration"),
            ));
        }
        for g in &ct.columns {
            let Some(expr) = g.generated.as_deref() else {
                continue;
            };
            let refs = fragment::column_refs(expr).unwrap_or_default();
            if refs.iter().any(|(n, _, _)| *n == d.old) {
                return Err(self.unsupported(
                    format!(
                        "replacing `{}.{}`: the generated column `{}` is computed from it, and the old column cannot be dropped at complete while it is",
                        t.logical, d.logical, g.name
                    ),
                    format!("drop or change `{}` in an earlier migration first", g.name),
                ));
            }
        }
        Ok(())
    }

    /// Duplicate `dups` of table `t`: new columns, triggers, carried constraints and
    /// indexes, backfills; the caller adds the operation's own constraints to `work`.
    pub(super) fn duplicate(
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
        for d in &dups {
            self.check_duplicable(&t, d)?;
        }
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
        self.push_work(&t, what, work, &pairs, &drop_old)?;
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
            self.cancel_rename_at_complete(&t.physical, &d.old);
            self.rename_column_at_complete(&t.physical, &d.new, &d.logical);
        }
        Ok(())
    }

    /// A foreign key over existing values, with no duplicate column and no backfill:
    /// added `NOT VALID` in one short transaction (SHARE ROW EXCLUSIVE on both tables; from
    /// then on every write is checked), validated in the next one (SHARE UPDATE EXCLUSIVE,
    /// reads and writes go on); abort drops it.
    pub(super) fn foreign_key_in_place(
        &mut self,
        table: &str,
        name: &str,
        body: &str,
        referenced: &str,
    ) -> Result<(), EngineError> {
        if let Some(leaf) = self.leaf_foreign_key(table, name, body, referenced)? {
            self.foreign_key_in_place_on_leaves((table, referenced), name, leaf);
            return Ok(());
        }
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
        // A partitioned table gets here on PostgreSQL 18+ only: say which route this is.
        let route = match self.partitioning_of(table) {
            Some(_) => {
                " on partitioned table (PostgreSQL 18+ allows it; validated partition by partition)"
            }
            None => "",
        };
        self.start.push(self.tx(
            Phase::Start,
            format!("add foreign key {name} NOT VALID{route}"),
            vec![add],
        ));
        self.start.push(self.tx(
            Phase::Start,
            format!("validate foreign key {name} (reads and writes go on)"),
            vec![validate],
        ));
        self.abort
            .push(self.tx(Phase::Abort, format!("drop foreign key {name}"), vec![drop]));
        Ok(())
    }

    /// [`Planner::foreign_key_in_place`] through the leaf partitions: `NOT VALID` on each
    /// leaf in one short transaction, each leaf validated in a transaction of its own, then
    /// the key added to the parent (it adopts the leaves' validated keys, no scan).
    fn foreign_key_in_place_on_leaves(
        &mut self,
        (table, referenced): (&str, &str),
        name: &str,
        leaf: crate::planner::partitions::LeafForeignKey,
    ) {
        let why = crate::planner::partitions::LEAF_FOREIGN_KEY_REASON;
        let n = leaf.validate.len();
        self.start.push(self.tx(
            Phase::Start,
            format!(
                "add foreign key {name} NOT VALID on each of the {n} partitions of {table} ({why})"
            ),
            leaf.add,
        ));
        for (i, (partition, v)) in leaf.validate.into_iter().enumerate() {
            self.start.push(self.tx(
                Phase::Start,
                format!(
                    "validate foreign key {name} on partition {partition} ({} of {n}; reads and writes go on)",
                    i + 1
                ),
                vec![v],
            ));
        }
        self.start.push(self.tx(
            Phase::Start,
            format!("add foreign key {name} to partitioned table {table} (it adopts the partitions' validated keys without a scan; ACCESS EXCLUSIVE on {referenced} for the catalog change, where the partitions' action triggers are replaced by the parent's)"),
            vec![leaf.attach],
        ));
        self.abort.push(self.tx(
            Phase::Abort,
            format!("drop foreign key {name} from {table} and its partitions"),
            leaf.drop,
        ));
    }

    /// A foreign key over duplicates ([`Work::foreign_key`], with its `locks` and
    /// `rename_lock`), or, on a partitioned table where this server refuses `NOT VALID`
    /// there, on each leaf partition under the temporary name (added with the columns,
    /// validated at complete), renamed on each leaf once the old columns and their key are
    /// gone, and then added to the parent, which adopts the leaves' validated keys.
    pub(super) fn foreign_key_on_duplicates(
        &self,
        work: &mut Work,
        table: &str,
        (temp, name): (&str, &str),
        body: &str,
        (locks, rename_lock): (Vec<Lock>, Vec<Lock>),
        referenced: &str,
    ) -> Result<(), EngineError> {
        let qt = self.q(table);
        let Some(leaf) = self.leaf_foreign_key(table, temp, body, referenced)? else {
            work.foreign_key(&qt, (temp, name), body, locks, rename_lock);
            // PostgreSQL 18 on a partitioned table: the partitions' clones of the key keep
            // their name when the parent's is renamed; they follow it.
            let partitions = self.partitioning_of(table).map(|p| p.partitions.clone());
            for part in partitions.iter().flatten() {
                work.finish.push(Statement::new(
                    format!(
                        "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                        part.qualified(),
                        ident(temp),
                        ident(name)
                    ),
                    vec![Lock::new(ACCESS_EXCLUSIVE, part.lock_name())],
                ));
            }
            return Ok(());
        };
        work.tx1.extend(leaf.add);
        work.validate_leaves
            .extend(leaf.validate.into_iter().map(|(_, v)| v));
        let leaves: Vec<crate::catalog::Partition> = self
            .partitioning_of(table)
            .map(|p| p.leaves().cloned().collect())
            .unwrap_or_default();
        for l in &leaves {
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                    l.qualified(),
                    ident(temp),
                    ident(name)
                ),
                vec![Lock::new(ACCESS_EXCLUSIVE, l.lock_name())],
            ));
        }
        if let Some(attach) = self.leaf_foreign_key(table, name, body, referenced)? {
            work.finish.push(attach.attach);
        }
        Ok(())
    }

    /// A concurrent index build, with its abort; on a partitioned table, the partitioned
    /// route (`planner::partitions`).
    pub(in crate::planner) fn push_create_index(
        &mut self,
        index: &str,
        sql: String,
        table: &str,
        description: String,
    ) -> Result<(), EngineError> {
        self.indexes.push(index.to_string());
        if let Some(p) = self.partitioning_of(table).cloned() {
            return self.push_partitioned_index(index, &sql, table, &p);
        }
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
        Ok(())
    }
}

/// `_ratchet_new_<col>` within 63 bytes.
pub(super) fn temp_column(col: &str) -> String {
    temp_with("_ratchet_new_", col)
}

/// A temporary constraint or index name for `name` during the expand.
pub(super) fn temp_name(name: &str) -> String {
    temp_with("_ratchet_", name)
}

pub(super) fn temp_with(prefix: &str, name: &str) -> String {
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
pub(super) fn omitted_not_null(table: &str, column: &str) -> String {
    format!(
        "`{table}.{column}` becomes NOT NULL with no default: until `complete` the trigger fills it \
         with `up` when a new-version insert omits it, after `complete` such an insert fails; \
         make the new application always write `{column}` (or give it a default)"
    )
}

/// Whether `up`/`down` leaves the column as it is: absent, or the column itself.
pub(super) fn is_identity(expr: Option<&str>, column: &str) -> bool {
    let Some(e) = expr else { return true };
    let e = e
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    e == column || e.trim_matches('"') == column
}
