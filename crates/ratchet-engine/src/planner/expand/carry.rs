//! Carrying the originals' constraints and indexes onto the duplicates: the originals go
//! away with the old columns at complete, so each constraint or index that involves one is
//! re-created over the duplicates, under a temporary name that takes the final name at
//! complete.

use crate::catalog::ConstraintInfo;
use crate::error::EngineError;
use crate::fragment;
use crate::plan::{Lock, LockMode, Statement, ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE};
use crate::planner::expand::{temp_name, Work};
use crate::planner::{Planner, VTable};
use crate::sql::{ident, ident_list};

/// The duplicates of one operation, `(original, duplicate)` by physical names.
struct Carry<'a> {
    /// The table whose columns are duplicated.
    table: &'a VTable,
    map: &'a [(String, String)],
    /// The quoted table.
    qt: String,
    /// `schema.table`, as the locks name it.
    lt: String,
}

impl Carry<'_> {
    fn mapped(&self, cols: &[String]) -> Vec<String> {
        cols.iter()
            .map(|c| {
                self.map
                    .iter()
                    .find(|(o, _)| o == c)
                    .map(|(_, n)| n.clone())
                    .unwrap_or(c.clone())
            })
            .collect()
    }

    fn touches(&self, cols: &[String]) -> bool {
        cols.iter().any(|c| self.map.iter().any(|(o, _)| o == c))
    }

    fn lock(&self, mode: LockMode) -> Vec<Lock> {
        vec![Lock::new(mode, self.lt.clone())]
    }
}

impl Planner<'_> {
    /// Re-create on the duplicates the constraints (but `skip`, the one the operation
    /// drops), the indexes and the NOT NULL of the originals.
    pub(super) fn carry_constraints(
        &self,
        t: &VTable,
        map: &[(String, String)],
        skip: Option<&str>,
        work: &mut Work,
    ) -> Result<(), EngineError> {
        let Some(ct) = self.catalog_table(t) else {
            return Ok(());
        };
        let carry = Carry {
            table: t,
            map,
            qt: self.q(&t.physical),
            lt: format!("{}.{}", self.schema, t.physical),
        };
        for k in &ct.constraints {
            if Some(k.name.as_str()) == skip || !carry.touches(&k.columns) {
                continue;
            }
            self.carry_constraint(&carry, k, work)?;
        }
        self.carry_indexes(t, &carry, work)?;
        // A NOT NULL original: the duplicate gets it back at complete, unless the
        // operation drops that very not-null constraint (PostgreSQL 18 names them).
        let dropped_not_null = |col: &str| {
            ct.constraints
                .iter()
                .any(|k| Some(k.name.as_str()) == skip && k.kind == "n" && k.columns == [col])
        };
        if !work.drop_not_null {
            for (old, new) in map {
                if ct.column(old).is_some_and(|c| c.not_null) && !dropped_not_null(old) {
                    let route = self.not_null_route(&carry.table.physical, old, Some(old));
                    work.add_not_null(&carry.qt, new, carry.lock(ACCESS_EXCLUSIVE), route);
                }
            }
        }
        Ok(())
    }

    /// One constraint of the original columns, over the duplicates.
    fn carry_constraint(
        &self,
        carry: &Carry<'_>,
        k: &ConstraintInfo,
        work: &mut Work,
    ) -> Result<(), EngineError> {
        let qt = &carry.qt;
        let temp = temp_name(&k.name);
        match k.kind.as_str() {
            "c" => {
                let expr = k
                    .definition
                    .trim_start_matches("CHECK ")
                    .trim_end_matches(" NOT VALID");
                let e = self.rewrite(expr, carry.map)?;
                work.check(qt, &k.name, &e, carry.lock(ACCESS_EXCLUSIVE));
            }
            "p" => {
                return Err(self.unsupported(
                    format!("changing a primary-key column ({})", k.columns.join(", ")),
                    "create a new key with create_constraint first",
                ))
            }
            "u" => {
                self.refuse_unique_constraint_on_partitioned(
                    carry.table,
                    &format!("carrying unique constraint {} onto the new column", k.name),
                )?;
                let columns = format!("({})", ident_list(&carry.mapped(&k.columns)));
                work.unique_key(
                    qt,
                    (&temp, &k.name, "UNIQUE"),
                    &columns,
                    carry.lock(ACCESS_EXCLUSIVE),
                );
            }
            "f" => {
                // `FOREIGN KEY (a, b) REFERENCES …`: keep everything after the column list.
                let Some(rest) = k.definition.find(')').map(|i| &k.definition[i + 1..]) else {
                    return Ok(());
                };
                let body = format!(
                    "FOREIGN KEY ({}){}",
                    ident_list(&carry.mapped(&k.columns)),
                    rest.trim_end_matches(" NOT VALID")
                );
                let Some(referenced) = &k.referenced_table else {
                    return Ok(());
                };
                self.foreign_key_on_duplicates(
                    work,
                    &carry.table.physical,
                    (&temp, &k.name),
                    &body,
                    (
                        carry.lock(SHARE_ROW_EXCLUSIVE),
                        carry.lock(ACCESS_EXCLUSIVE),
                    ),
                    referenced,
                )?;
            }
            "x" => {
                return Err(self.unsupported(
                    format!("changing a column of exclusion constraint {}", k.name),
                    "exclusion constraints cannot be built online; use a new table",
                ))
            }
            _ => {}
        }
        Ok(())
    }

    /// The indexes attached to partitioned index `index`, at every level below it, as
    /// `(partition, index)` (those of the schema's own partitions).
    pub(super) fn attached_indexes(&self, index: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut parents = vec![index.to_string()];
        while let Some(parent) = parents.pop() {
            for i in self.catalog().indexes.values() {
                if i.parent.as_deref() == Some(parent.as_str()) {
                    out.push((i.table.clone(), i.name.clone()));
                    parents.push(i.name.clone());
                }
            }
        }
        out.sort();
        out
    }

    /// Every index naming a migrated column, in a key, a key expression, INCLUDE or the
    /// predicate; ordering, NULLS, collations and operator classes kept. Indexes behind
    /// a constraint come with the constraint.
    fn carry_indexes(
        &self,
        t: &VTable,
        carry: &Carry<'_>,
        work: &mut Work,
    ) -> Result<(), EngineError> {
        for idx in self.catalog().indexes.values() {
            if idx.table != t.physical || idx.constraint.is_some() || !idx.valid {
                continue;
            }
            let temp = temp_name(&idx.name);
            let carried =
                fragment::carry_index(&idx.definition, &temp, carry.map).map_err(|e| {
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
                carry.lock(ACCESS_EXCLUSIVE),
            ));
            if idx.partitioned {
                work.partition_index_renames
                    .push((temp.clone(), idx.name.clone()));
            }
        }
        Ok(())
    }
}
