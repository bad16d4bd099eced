//! `drop_table`: hidden from the new version at once, dropped at complete.

use ratchet_spec::DropTable;

use crate::error::EngineError;
use crate::plan::{Phase, Statement, ACCESS_EXCLUSIVE};
use crate::planner::Planner;

impl Planner<'_> {
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
}
