//! `drop_index`: dropped `CONCURRENTLY` at complete.

use ratchet_spec::DropIndex;

use crate::error::EngineError;
use crate::plan::{Action, Phase, Statement, SHARE_UPDATE_EXCLUSIVE};
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
}
