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
