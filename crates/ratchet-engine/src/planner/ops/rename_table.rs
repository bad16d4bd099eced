//! `rename_table`: the new version sees the new name through its views; the table is renamed
//! at complete.

use ratchet_spec::RenameTable;

use crate::error::EngineError;
use crate::plan::{Phase, Statement, ACCESS_EXCLUSIVE};
use crate::planner::Planner;
use crate::sql::ident;

impl Planner<'_> {
    pub(super) fn rename_table(&mut self, o: &RenameTable) -> Result<(), EngineError> {
        let physical = self.table(&o.from)?.physical.clone();
        if o.from == o.to {
            return Err(self.invalid("`from` and `to` are the same name", "nothing to rename"));
        }
        self.ensure_table_name_free(&o.to)?;
        self.table_mut(&o.from).logical = o.to.clone();
        self.table_renames.push(self.tx(
            Phase::Complete,
            format!("rename table {} to {}", o.from, o.to),
            vec![Statement::new(
                format!(
                    "ALTER TABLE IF EXISTS {} RENAME TO {}",
                    self.q(&physical),
                    ident(&o.to)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &physical)],
            )],
        ));
        Ok(())
    }
}
