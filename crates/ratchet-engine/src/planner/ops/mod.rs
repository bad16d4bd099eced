//! One file per operation of the migration file format: its checks against the virtual
//! schema and the steps it adds to `start`, `complete` and `abort`. The machinery they share
//! (duplicates, dual-write pairs, carried constraints, "NOT VALID then VALIDATE") is in
//! `planner::expand`.

mod add_column;
mod alter_column;
mod create_constraint;
mod create_index;
mod create_table;
mod drop_column;
mod drop_constraint;
mod drop_index;
mod drop_table;
mod rename_column;
mod rename_constraint;
mod rename_table;
mod set_replica_identity;
mod sql;

use ratchet_spec::Operation;

use crate::error::EngineError;
use crate::planner::Planner;

impl Planner<'_> {
    /// Plan one operation of the file.
    pub(super) fn operation(&mut self, op: &Operation) -> Result<(), EngineError> {
        match op {
            Operation::CreateTable(o) => self.create_table(o),
            Operation::DropTable(o) => self.drop_table(o),
            Operation::RenameTable(o) => self.rename_table(o),
            Operation::AddColumn(o) => self.add_column(o),
            Operation::DropColumn(o) => self.drop_column(o),
            Operation::RenameColumn(o) => self.rename_column(o),
            Operation::RenameConstraint(o) => self.rename_constraint(o),
            Operation::CreateIndex(o) => self.create_index(o),
            Operation::DropIndex(o) => self.drop_index(o),
            Operation::SetReplicaIdentity(o) => self.set_replica_identity(o),
            Operation::Sql(o) => self.sql(o),
            Operation::AlterColumn(o) => self.alter_column(o),
            Operation::CreateConstraint(o) => self.create_constraint(o),
            Operation::DropConstraint(o) => self.drop_constraint(o),
            Operation::DropMulticolumnConstraint(o) => self.drop_multicolumn_constraint(o),
        }
    }
}
