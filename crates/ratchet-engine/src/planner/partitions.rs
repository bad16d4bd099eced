//! Declarative partitioned tables: the routes PostgreSQL leaves open where the plain ones
//! are refused on a partitioned parent.
//!
//! - An index cannot be built `CONCURRENTLY` on a partitioned table. It is created on the
//!   parent alone (`ON ONLY`: no rows, instant, INVALID), each leaf partition's index is
//!   built concurrently in a step of its own, and each is attached to its parent's index
//!   (`ALTER INDEX … ATTACH PARTITION`, one short transaction each, bottom-up through
//!   sub-partitioned levels); the parent index turns valid with the last attach.
//! - `DROP INDEX CONCURRENTLY` cannot drop a partitioned index, and an attached partition's
//!   index cannot be dropped alone: the parent index is dropped in one transaction, under
//!   ACCESS EXCLUSIVE on the table and every partition, held for the catalog change only.
//! - PostgreSQL before 18 refuses `ADD CONSTRAINT … FOREIGN KEY … NOT VALID` on a
//!   partitioned table. The key is added `NOT VALID` on each leaf partition, validated leaf
//!   by leaf, and then added to the parent, which adopts the validated partition
//!   constraints without scanning anything.
//! - A backfill walks the leaf partitions one by one, each a backfill step of its own with
//!   its own bound and keyset cursor (see `expand::push_expand`).

use crate::catalog::{Partition, PartitionKind, Partitioning};
use crate::error::EngineError;
use crate::fragment;
use crate::plan::{
    Action, Lock, Phase, Statement, ACCESS_EXCLUSIVE, ROW_SHARE, SHARE_ROW_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
};
use crate::planner::{Planner, VTable, MAX_IDENT};
use crate::sql::{ident, qualified};
use ratchet_sql::LockMode;

/// The first PostgreSQL version that adds a `NOT VALID` foreign key to a partitioned table.
const NOT_VALID_FK_ON_PARTITIONED: i32 = 180000;

/// A foreign key added `NOT VALID` on the leaf partitions of a partitioned table (before
/// PostgreSQL 18): what each phase runs instead of the statement on the parent.
pub(super) struct LeafForeignKey {
    /// `ADD CONSTRAINT … NOT VALID` on each leaf, for the transaction that adds the key.
    pub(super) add: Vec<Statement>,
    /// `VALIDATE CONSTRAINT` on each leaf (named), each for a transaction of its own.
    pub(super) validate: Vec<(String, Statement)>,
    /// The key added to the parent: PostgreSQL adopts the leaves' validated constraints
    /// (no scan), so it holds its locks only for the catalog change.
    pub(super) attach: Statement,
    /// Abort: the parent's key (with the adopted ones), then whatever leaf key is left.
    pub(super) drop: Vec<Statement>,
}

impl Planner<'_> {
    /// The partitioning of the existing partitioned table `physical` (none for a plain table
    /// or one this migration creates).
    pub(in crate::planner) fn partitioning_of(&self, physical: &str) -> Option<&Partitioning> {
        let t = self.tables.iter().find(|t| t.physical == physical)?;
        self.catalog_table(t)?.partitioning.as_ref()
    }

    /// `events_p3_kind_idx` for index `events_kind_idx` of `events` on partition
    /// `events_p3` (the table's name in the index replaced by the partition's), else
    /// `<partition>_<index>`; within 63 bytes, with a hash of the full name when cut.
    pub(in crate::planner) fn partition_index_name(
        index: &str,
        table: &str,
        partition: &str,
    ) -> String {
        let full = match index.strip_prefix(table) {
            Some(rest) if rest.starts_with('_') => format!("{partition}{rest}"),
            _ => format!("{partition}_{index}"),
        };
        if full.len() <= MAX_IDENT {
            return full;
        }
        use sha2::Digest;
        let h = hex::encode(&sha2::Sha256::digest(full.as_bytes())[..4]);
        let mut cut = String::new();
        for ch in full.chars() {
            if cut.len() + ch.len_utf8() > MAX_IDENT - h.len() - 1 {
                break;
            }
            cut.push(ch);
        }
        format!("{cut}_{h}")
    }

    /// The index each partition of `table` gets for partitioned index `index`:
    /// [`Planner::partition_index_name`], or, when a relation of that name exists or this
    /// plan uses it already (PostgreSQL names the partitions' indexes of
    /// `CREATE INDEX ON parent (kind)` `<partition>_kind_idx` too), the first free
    /// `<name>_<n>`. Resolved once per index; every later step uses the same names.
    pub(in crate::planner) fn partition_index_names(
        &mut self,
        index: &str,
        table: &str,
        p: &Partitioning,
    ) -> std::collections::BTreeMap<String, String> {
        if let Some(names) = self.partition_indexes.get(index) {
            return names.clone();
        }
        let mut names = std::collections::BTreeMap::new();
        for part in &p.partitions {
            let base = Self::partition_index_name(index, table, &part.name);
            let mut name = base.clone();
            let mut n = 1;
            while self.indexes.contains(&name) || self.catalog().relation_name_taken(&name) {
                let suffix = format!("_{n}");
                let mut cut = base.clone();
                while cut.len() + suffix.len() > MAX_IDENT {
                    cut.pop();
                }
                name = format!("{cut}{suffix}");
                n += 1;
            }
            self.indexes.push(name.clone());
            names.insert(part.name.clone(), name);
        }
        self.partition_indexes
            .insert(index.to_string(), names.clone());
        names
    }

    /// Refuse partitions ratchet cannot work on for `what`.
    fn check_no_foreign_partitions(
        &self,
        table: &str,
        p: &Partitioning,
        what: &str,
    ) -> Result<(), EngineError> {
        let foreign: Vec<String> = p.foreign().map(|f| format!("`{}`", f.name)).collect();
        if foreign.is_empty() {
            return Ok(());
        }
        Err(self.unsupported(
            format!(
                "{what} on partitioned table `{table}`, which has foreign-table partitions ({})",
                foreign.join(", ")
            ),
            "a foreign table has no local indexes or rows; detach the foreign partitions first, or make the change with a `sql` operation",
        ))
    }

    /// A unique index on a partitioned table must contain the partition key of every level
    /// (PostgreSQL enforces uniqueness per partition only). Refused here, before anything
    /// runs, with the key and what to do.
    pub(in crate::planner) fn check_unique_on_partitioned(
        &self,
        (table, index): (&str, &str),
        columns: &[String],
        p: &Partitioning,
    ) -> Result<(), EngineError> {
        let levels =
            std::iter::once((table, p.key.as_str(), &p.key_columns, p.key_has_expressions)).chain(
                p.partitions.iter().filter_map(|s| {
                    let key = s.key.as_deref()?;
                    Some((s.name.as_str(), key, &s.key_columns, s.key_has_expressions))
                }),
            );
        for (rel, key, key_columns, expressions) in levels {
            let missing: Vec<&String> = key_columns
                .iter()
                .filter(|k| !columns.contains(k))
                .collect();
            if !expressions && missing.is_empty() {
                continue;
            }
            let what = if rel == table {
                format!("partitioned table `{table}`")
            } else {
                format!("partition `{rel}` of `{table}`")
            };
            let hint = if expressions {
                "a partition key with an expression cannot be part of a unique index; create the index without `unique`, or enforce uniqueness in a non-partitioned table".to_string()
            } else {
                format!(
                    "add {} to the index's columns, or create it without `unique`",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(self.invalid(
                format!(
                    "unique index `{index}` on {what} must include the partition key `{key}`: PostgreSQL checks uniqueness within each partition only"
                ),
                hint,
            ));
        }
        Ok(())
    }

    /// `ADD CONSTRAINT … USING INDEX` (how ratchet turns a concurrently built unique index
    /// into a constraint) is not supported on partitioned tables: refused, with the way that
    /// works.
    pub(in crate::planner) fn refuse_unique_constraint_on_partitioned(
        &self,
        t: &VTable,
        what: &str,
    ) -> Result<(), EngineError> {
        let Some(p) = self.partitioning_of(&t.physical) else {
            return Ok(());
        };
        Err(self.unsupported(
            format!(
                "{what} on partitioned table `{}` (partitioned by {}): PostgreSQL has no `ADD CONSTRAINT … USING INDEX` for partitioned tables, and building the constraint directly would lock every partition for the whole build",
                t.logical, p.key
            ),
            "create a unique index instead (create_index with `unique: true` and the partition key among its columns: built partition by partition without blocking writes)",
        ))
    }

    /// Refuse changing a column of a partition key: PostgreSQL can neither drop nor change
    /// it, so the duplicate could never replace it at complete.
    pub(in crate::planner) fn refuse_partition_key_column(
        &self,
        t: &VTable,
        column: &str,
        what: &str,
    ) -> Result<(), EngineError> {
        let Some(p) = self.partitioning_of(&t.physical) else {
            return Ok(());
        };
        let in_key = p.key_columns.iter().any(|k| k == column)
            || p.partitions
                .iter()
                .any(|s| s.key_columns.iter().any(|k| k == column));
        if !in_key {
            return Ok(());
        }
        Err(self.unsupported(
            format!(
                "{what} `{}.{column}`, a column of the partition key of partitioned table `{}` (partitioned by {}): PostgreSQL cannot drop or change a partition key column",
                t.logical, t.logical, p.key
            ),
            "create a new partitioned table with the new key and move the rows, or keep the column as it is",
        ))
    }

    /// `CREATE INDEX` (written `CONCURRENTLY` on `table`) on a partitioned table, as the
    /// module documentation describes: the parent's index `ON ONLY`, each leaf's built
    /// concurrently, each attached, and the abort that drops them all.
    pub(in crate::planner) fn push_partitioned_index(
        &mut self,
        index: &str,
        sql: &str,
        table: &str,
        p: &Partitioning,
    ) -> Result<(), EngineError> {
        self.check_no_foreign_partitions(table, p, &format!("index {index}"))?;
        let schema = self.schema.clone();
        let retarget = |name: &str, rel: (&str, &str), only: bool, concurrent: bool| {
            fragment::retarget_index(sql, name, rel, only, concurrent)
        };
        let location = self.location();
        let bad = |e: String| EngineError::Unsupported {
            location: location.clone(),
            operation: format!("index {index} on partitioned table `{table}` ({e})"),
            hint: "create the index with a `sql` operation".into(),
        };
        let names = self.partition_index_names(index, table, p);
        let name_of = |part: &Partition| names[&part.name].clone();
        // The index of each partitioned relation (the root and sub-partitioned partitions),
        // on that relation alone: no rows to read, so instant; SHARE blocks writes for the
        // catalog change only.
        let mut only = vec![Statement::new(
            retarget(index, (&schema, table), true, false).map_err(bad)?,
            vec![self.lock(LockMode::Share, table)],
        )];
        for sub in p
            .partitions
            .iter()
            .filter(|s| s.kind == PartitionKind::Partitioned)
        {
            only.push(Statement::new(
                retarget(&name_of(sub), (&sub.schema, &sub.name), true, false).map_err(bad)?,
                vec![Lock::new(LockMode::Share, sub.lock_name())],
            ));
        }
        self.start.push(self.tx(
            Phase::Start,
            format!(
                "create index {index} on partitioned table {table} only (INVALID until each of its {} partitions' indexes is attached)",
                p.partitions.len()
            ),
            only,
        ));
        let leaves: Vec<&Partition> = p.leaves().collect();
        for (i, leaf) in leaves.iter().enumerate() {
            let name = name_of(leaf);
            let build = retarget(&name, (&leaf.schema, &leaf.name), false, true).map_err(bad)?;
            self.start.push(self.step(
                Phase::Start,
                format!(
                    "build index {name} on partition {} without blocking writes ({} of {})",
                    leaf.name,
                    i + 1,
                    leaves.len()
                ),
                Action::CreateIndexConcurrently {
                    schema: leaf.schema.clone(),
                    index: name.clone(),
                    statement: Statement::new(
                        build,
                        vec![Lock::new(SHARE_UPDATE_EXCLUSIVE, leaf.lock_name())],
                    ),
                },
            ));
            // Abort: a leaf index not attached yet (or INVALID) is dropped concurrently;
            // an attached one goes with the parent's (that step runs first).
            self.abort.push(self.step(
                Phase::Abort,
                format!("drop index {name} of partition {}", leaf.name),
                Action::DropIndexConcurrently {
                    statement: Statement::new(
                        format!(
                            "DROP INDEX CONCURRENTLY IF EXISTS {}",
                            qualified(&leaf.schema, &name)
                        ),
                        vec![Lock::new(SHARE_UPDATE_EXCLUSIVE, leaf.lock_name())],
                    ),
                },
            ));
        }
        // Bottom-up: a sub-partitioned partition's index is complete (valid) before it is
        // attached to the level above.
        let mut by_depth: Vec<&Partition> = p.partitions.iter().collect();
        by_depth.sort_by_key(|s| std::cmp::Reverse(s.level));
        for part in by_depth {
            let name = name_of(part);
            let (parent_schema, parent_index) = if part.level == 1 {
                (schema.clone(), index.to_string())
            } else {
                (part.parent_schema.clone(), names[&part.parent].clone())
            };
            self.start.push(self.tx(
                Phase::Start,
                format!(
                    "attach index {name} of partition {} to {parent_index} (ACCESS EXCLUSIVE on that index only, for the catalog change)",
                    part.name
                ),
                vec![Statement::new(
                    format!(
                        "ALTER INDEX {} ATTACH PARTITION {}",
                        qualified(&parent_schema, &parent_index),
                        qualified(&part.schema, &name)
                    ),
                    vec![
                        Lock::new(ACCESS_EXCLUSIVE, format!("{}.{name}", part.schema)),
                        Lock::new(
                            SHARE_UPDATE_EXCLUSIVE,
                            format!("{parent_schema}.{parent_index}"),
                        ),
                    ],
                )],
            ));
        }
        let mut drop = vec![self.drop_partitioned_index_statement(index, table, p)];
        for sub in p
            .partitions
            .iter()
            .filter(|s| s.kind == PartitionKind::Partitioned)
        {
            drop.push(Statement::new(
                format!(
                    "DROP INDEX IF EXISTS {}",
                    qualified(&sub.schema, &name_of(sub))
                ),
                vec![Lock::new(ACCESS_EXCLUSIVE, sub.lock_name())],
            ));
        }
        self.abort.push(self.tx(
            Phase::Abort,
            format!(
                "drop partitioned index {index} with the partitions' indexes attached to it ({})",
                DROP_PARTITIONED_INDEX_LOCK
            ),
            drop,
        ));
        Ok(())
    }

    /// `DROP INDEX` of a partitioned index: the only way to drop it (see the module
    /// documentation), with its locks.
    pub(in crate::planner) fn drop_partitioned_index_statement(
        &self,
        index: &str,
        table: &str,
        p: &Partitioning,
    ) -> Statement {
        let mut locks = vec![self.lock(ACCESS_EXCLUSIVE, table)];
        locks.extend(
            p.partitions
                .iter()
                .map(|s| Lock::new(ACCESS_EXCLUSIVE, s.lock_name())),
        );
        Statement::new(format!("DROP INDEX IF EXISTS {}", self.q(index)), locks)
    }

    /// The leaf partitions a foreign key must go through on this server: `Some` for a
    /// partitioned table before PostgreSQL 18 (see [`LeafForeignKey`]).
    fn foreign_key_leaves(&self, physical: &str) -> Result<Option<Vec<Partition>>, EngineError> {
        let Some(p) = self.partitioning_of(physical) else {
            return Ok(None);
        };
        if self.catalog().server_version_num >= NOT_VALID_FK_ON_PARTITIONED {
            self.route(format!(
                "PostgreSQL {}: a foreign key on partitioned table `{physical}` is added NOT VALID on the parent and validated at complete",
                self.major()
            ));
            return Ok(None);
        }
        self.check_no_foreign_partitions(physical, p, "a foreign key")?;
        self.route(format!(
            "PostgreSQL {}: a foreign key on partitioned table `{physical}` is added NOT VALID on each leaf partition, validated there, then added to the parent, which adopts them without a scan (PostgreSQL 18 adds it NOT VALID on the parent)",
            self.major()
        ));
        Ok(Some(p.leaves().cloned().collect()))
    }

    /// A foreign key `name` (`body`: `FOREIGN KEY (…) REFERENCES …`) of `table` referencing
    /// `referenced`, on the leaves of a partitioned table where this server needs it
    /// (`None`: add it `NOT VALID` on the table itself).
    pub(in crate::planner) fn leaf_foreign_key(
        &self,
        table: &str,
        name: &str,
        body: &str,
        referenced: &str,
    ) -> Result<Option<LeafForeignKey>, EngineError> {
        let Some(leaves) = self.foreign_key_leaves(table)? else {
            return Ok(None);
        };
        let all = self.partitioning_of(table).map(|p| p.partitions.clone());
        let refd = || self.lock(SHARE_ROW_EXCLUSIVE, referenced);
        let add = leaves
            .iter()
            .map(|l| {
                Statement::new(
                    format!(
                        "ALTER TABLE {} ADD CONSTRAINT {} {body} NOT VALID",
                        l.qualified(),
                        ident(name)
                    ),
                    vec![Lock::new(SHARE_ROW_EXCLUSIVE, l.lock_name()), refd()],
                )
            })
            .collect();
        let validate = leaves
            .iter()
            .map(|l| {
                let validate = Statement::new(
                    format!(
                        "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                        l.qualified(),
                        ident(name)
                    ),
                    vec![
                        Lock::new(SHARE_UPDATE_EXCLUSIVE, l.lock_name()),
                        self.lock(ROW_SHARE, referenced),
                    ],
                );
                (l.name.clone(), validate)
            })
            .collect();
        let mut locks = vec![self.lock(SHARE_ROW_EXCLUSIVE, table)];
        locks.extend(
            all.iter()
                .flatten()
                .map(|s| Lock::new(SHARE_ROW_EXCLUSIVE, s.lock_name())),
        );
        // Adopting the partitions' keys replaces their action triggers on the referenced
        // table by the parent's: ACCESS EXCLUSIVE there, for the catalog change.
        locks.push(self.lock(ACCESS_EXCLUSIVE, referenced));
        let attach = Statement::new(
            format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {body}",
                self.q(table),
                ident(name)
            ),
            locks,
        );
        let mut drop_locks = vec![self.lock(ACCESS_EXCLUSIVE, table)];
        drop_locks.extend(
            all.iter()
                .flatten()
                .map(|s| Lock::new(ACCESS_EXCLUSIVE, s.lock_name())),
        );
        let mut drop = vec![Statement::new(
            format!(
                "ALTER TABLE IF EXISTS {} DROP CONSTRAINT IF EXISTS {}",
                self.q(table),
                ident(name)
            ),
            drop_locks,
        )];
        drop.extend(leaves.iter().map(|l| {
            Statement::new(
                format!(
                    "ALTER TABLE IF EXISTS {} DROP CONSTRAINT IF EXISTS {}",
                    l.qualified(),
                    ident(name)
                ),
                vec![Lock::new(ACCESS_EXCLUSIVE, l.lock_name())],
            )
        }));
        Ok(Some(LeafForeignKey {
            add,
            validate,
            attach,
            drop,
        }))
    }
}

/// The locks a statement on a partitioned table takes on its partitions, added to what
/// the plan claims: `ALTER TABLE` (but `REPLICA IDENTITY`, `RENAME CONSTRAINT`, which a
/// foreign key does not pass down), `CREATE TRIGGER` and `DROP TRIGGER` on the parent take
/// the parent's lock on every partition too, at every level (checked against `pg_locks`
/// in `tests/plan_locks.rs`). Statements that name partitions themselves are left as they
/// are.
pub(in crate::planner) fn claim_partition_locks(
    catalog: &crate::catalog::Catalog,
    created: &[String],
    steps: &mut [crate::plan::Step],
) {
    for t in catalog.tables.values() {
        let Some(p) = &t.partitioning else { continue };
        if created.contains(&t.name) || p.partitions.is_empty() {
            continue;
        }
        let qt = qualified(&catalog.schema, &t.name);
        let on = format!("{}.{}", catalog.schema, t.name);
        let parts: Vec<String> = p.partitions.iter().map(Partition::lock_name).collect();
        for step in steps.iter_mut() {
            let statements = match &mut step.action {
                Action::Transaction { statements, .. } => statements.iter_mut().collect(),
                Action::NoTransaction { statement } => vec![statement],
                _ => Vec::<&mut Statement>::new(),
            };
            for st in statements {
                if !recurses(&st.sql, &qt) || st.locks.iter().any(|l| parts.contains(&l.on)) {
                    continue;
                }
                let Some(mode) = st.locks.iter().find(|l| l.on == on).map(|l| l.mode) else {
                    continue;
                };
                st.locks
                    .extend(parts.iter().map(|part| Lock::new(mode, part.clone())));
            }
        }
    }
}

/// Whether `sql` on the table `qt` (quoted) passes down to its partitions.
fn recurses(sql: &str, qt: &str) -> bool {
    let alter = [
        format!("ALTER TABLE {qt} "),
        format!("ALTER TABLE IF EXISTS {qt} "),
    ];
    if alter.iter().any(|a| sql.starts_with(a.as_str())) {
        return !sql.contains(" REPLICA IDENTITY ") && !sql.contains(" RENAME CONSTRAINT ");
    }
    let trigger = sql.starts_with("CREATE TRIGGER ") || sql.starts_with("DROP TRIGGER ");
    let on = format!(" ON {qt}");
    trigger && (sql.ends_with(&on) || sql.contains(&format!("{on} ")))
}

/// What the `DROP INDEX` of a partitioned index locks, for the plan's descriptions.
pub(in crate::planner) const DROP_PARTITIONED_INDEX_LOCK: &str =
    "DROP INDEX CONCURRENTLY cannot drop a partitioned index: ACCESS EXCLUSIVE on the table and every partition, held only for the catalog change";

/// Why a foreign key goes through the leaf partitions, for the plan's descriptions.
pub(in crate::planner) const LEAF_FOREIGN_KEY_REASON: &str =
    "PostgreSQL before 18 cannot add a NOT VALID foreign key to a partitioned table";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_index_takes_the_partition_name_and_stays_within_63_bytes() {
        let n = Planner::partition_index_name;
        assert_eq!(
            n("events_kind_idx", "events", "events_p3"),
            "events_p3_kind_idx"
        );
        assert_eq!(n("by_kind", "events", "events_p3"), "events_p3_by_kind");
        let long = n(&"i".repeat(60), "events", &"p".repeat(30));
        assert_eq!(long.len(), MAX_IDENT);
        assert_ne!(long, n(&"i".repeat(61), "events", &"p".repeat(30)));
    }
}
