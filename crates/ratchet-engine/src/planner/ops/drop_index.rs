//! `drop_index`: dropped `CONCURRENTLY` at complete; a partitioned index with `DROP INDEX`
//! (the only way PostgreSQL drops one).

use ratchet_spec::DropIndex;

use crate::error::EngineError;
use crate::plan::{Action, Phase, Statement, SHARE_UPDATE_EXCLUSIVE};
use crate::planner::partitions::DROP_PARTITIONED_INDEX_LOCK;
use crate::planner::Planner;

impl Planner<'_> {
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
        if let Some(parent) = &idx.parent {
            return Err(self.invalid(
                format!(
                    "index `{}` is the index of partition `{}`, attached to partitioned index `{parent}`",
                    o.name, idx.table
                ),
                format!("drop `{parent}` instead: it drops the indexes of every partition with it"),
            ));
        }
        let table = idx.table.clone();
        if idx.partitioned {
            return self.drop_partitioned_index(&o.name, &table);
        }
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

    /// A partitioned index: `DROP INDEX CONCURRENTLY` refuses it, and its partitions'
    /// indexes cannot be dropped while attached. `DROP INDEX` of the parent index drops
    /// them all in one transaction, under ACCESS EXCLUSIVE on the table and every
    /// partition: it waits at most `lock_timeout` for them (and is retried), and then
    /// holds them only for the catalog change (the files are removed at commit).
    fn drop_partitioned_index(&mut self, index: &str, table: &str) -> Result<(), EngineError> {
        let Some(p) = self
            .catalog()
            .table(table)
            .and_then(|t| t.partitioning.clone())
        else {
            return Err(self.invalid(
                format!("partitioned index `{index}` is on `{table}`, which is not a partitioned table of schema `{}`", self.schema),
                "drop it with a `sql` operation",
            ));
        };
        let statement = self.drop_partitioned_index_statement(index, table, &p);
        self.complete.push(self.tx(
            Phase::Complete,
            format!(
                "drop partitioned index {index} and its {} partitions' indexes ({DROP_PARTITIONED_INDEX_LOCK})",
                p.partitions.len()
            ),
            vec![statement],
        ));
        Ok(())
    }
}
