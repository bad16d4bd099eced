//! Carrying the originals' constraints and indexes onto the duplicates.

use crate::error::EngineError;
use crate::fragment;
use crate::plan::{Lock, Statement, ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE};
use crate::planner::expand::{temp_name, Work};
use crate::planner::{Planner, VTable};
use crate::sql::{ident, ident_list};

impl Planner<'_> {
    /// Re-create on the duplicates the constraints and indexes that involve the
    /// originals (the originals go away with the old columns at complete).
    pub(in crate::planner) fn carry_constraints(
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
}
