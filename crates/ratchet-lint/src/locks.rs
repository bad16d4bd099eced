//! Which lock each statement takes, from the PostgreSQL documentation ("Explicit Locking"
//! and each command's reference page). One place, so that every rule's message names the
//! same lock and the lock-timeout rule knows exactly which statements queue behind traffic.

use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
use pg_query::NodeEnum;

use crate::ast::{self, QualifiedName};

/// Table-level lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    pub fn name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// Blocks plain `SELECT`s.
    pub fn blocks_reads(self) -> bool {
        self == LockMode::AccessExclusive
    }

    /// Blocks `INSERT`/`UPDATE`/`DELETE`.
    pub fn blocks_writes(self) -> bool {
        self >= LockMode::Share
    }

    /// "ACCESS EXCLUSIVE lock (blocks reads and writes)".
    pub fn describe(self) -> String {
        let what = if self.blocks_reads() {
            "blocks reads and writes"
        } else if self.blocks_writes() {
            "blocks writes; reads continue"
        } else if self == LockMode::ShareUpdateExclusive {
            "reads and writes continue; other DDL and VACUUM wait"
        } else {
            "conflicts only with stronger locks"
        };
        format!("{} lock ({what})", self.name())
    }
}

/// The strongest lock a statement takes on an existing relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub mode: LockMode,
    pub table: QualifiedName,
}

/// The lock of one `ALTER TABLE` sub-command (docs: "ALTER TABLE", the lock per form).
pub fn alter_cmd_lock(cmd: &pg_query::protobuf::AlterTableCmd) -> LockMode {
    use AlterTableType as T;
    match ast::cmd_type(cmd) {
        T::AtSetStatistics
        | T::AtClusterOn
        | T::AtDropCluster
        | T::AtSetRelOptions
        | T::AtResetRelOptions
        | T::AtReplaceRelOptions
        | T::AtValidateConstraint
        | T::AtDetachPartitionFinalize => LockMode::ShareUpdateExclusive,
        T::AtAttachPartition => LockMode::ShareUpdateExclusive,
        T::AtDetachPartition => match cmd.def.as_deref().and_then(ast::inner) {
            Some(NodeEnum::PartitionCmd(p)) if p.concurrent => LockMode::ShareUpdateExclusive,
            _ => LockMode::AccessExclusive,
        },
        T::AtEnableTrig
        | T::AtEnableAlwaysTrig
        | T::AtEnableReplicaTrig
        | T::AtDisableTrig
        | T::AtEnableTrigAll
        | T::AtDisableTrigAll
        | T::AtEnableTrigUser
        | T::AtDisableTrigUser => LockMode::ShareRowExclusive,
        T::AtAddConstraint => match ast::cmd_constraint(cmd) {
            Some(c) if ast::constr_type(c) == ConstrType::ConstrForeign => {
                LockMode::ShareRowExclusive
            }
            _ => LockMode::AccessExclusive,
        },
        _ => LockMode::AccessExclusive,
    }
}

/// The lock `node` takes on an existing table, or `None` for statements that take no
/// conflicting table lock (SELECT, SET, CREATE TABLE, …).
pub fn statement_lock(node: &NodeEnum) -> Option<Lock> {
    match node {
        NodeEnum::AlterTableStmt(a) => {
            let table = ast::alter_table_name(a)?;
            let mode = ast::alter_cmds(a).map(alter_cmd_lock).max()?;
            Some(Lock { mode, table })
        }
        NodeEnum::IndexStmt(i) => {
            let table = ast::range_var_name(i.relation.as_ref()?);
            let mode = if i.concurrent {
                LockMode::ShareUpdateExclusive
            } else {
                LockMode::Share
            };
            Some(Lock { mode, table })
        }
        NodeEnum::DropStmt(d) => {
            let table = ast::drop_objects(d).into_iter().next()?;
            let mode = match ast::object_type(d.remove_type) {
                ObjectType::ObjectIndex if d.concurrent => LockMode::ShareUpdateExclusive,
                ObjectType::ObjectIndex
                | ObjectType::ObjectTable
                | ObjectType::ObjectMatview
                | ObjectType::ObjectView
                | ObjectType::ObjectTrigger
                | ObjectType::ObjectRule
                | ObjectType::ObjectPolicy => LockMode::AccessExclusive,
                _ => return None,
            };
            Some(Lock { mode, table })
        }
        NodeEnum::ReindexStmt(r) => {
            let table = match &r.relation {
                Some(rv) => ast::range_var_name(rv),
                None => QualifiedName::new(None, &r.name),
            };
            let concurrent = ast::option_on(&r.params, "concurrently");
            let mode = if concurrent {
                LockMode::ShareUpdateExclusive
            } else {
                LockMode::AccessExclusive
            };
            Some(Lock { mode, table })
        }
        NodeEnum::TruncateStmt(t) => {
            let table = t.relations.iter().find_map(|r| match ast::inner(r)? {
                NodeEnum::RangeVar(rv) => Some(ast::range_var_name(rv)),
                _ => None,
            })?;
            Some(Lock {
                mode: LockMode::AccessExclusive,
                table,
            })
        }
        NodeEnum::RenameStmt(r) => {
            let table = ast::range_var_name(r.relation.as_ref()?);
            Some(Lock {
                mode: LockMode::AccessExclusive,
                table,
            })
        }
        NodeEnum::AlterObjectSchemaStmt(s) => {
            let table = ast::range_var_name(s.relation.as_ref()?);
            Some(Lock {
                mode: LockMode::AccessExclusive,
                table,
            })
        }
        NodeEnum::CreateTrigStmt(t) => {
            let table = ast::range_var_name(t.relation.as_ref()?);
            Some(Lock {
                mode: LockMode::ShareRowExclusive,
                table,
            })
        }
        NodeEnum::RuleStmt(r) => {
            let table = ast::range_var_name(r.relation.as_ref()?);
            Some(Lock {
                mode: LockMode::AccessExclusive,
                table,
            })
        }
        NodeEnum::CreatePolicyStmt(p) => {
            let table = ast::range_var_name(p.table.as_ref()?);
            Some(Lock {
                mode: LockMode::AccessExclusive,
                table,
            })
        }
        NodeEnum::RefreshMatViewStmt(r) => {
            let table = ast::range_var_name(r.relation.as_ref()?);
            let mode = if r.concurrent {
                LockMode::Exclusive
            } else {
                LockMode::AccessExclusive
            };
            Some(Lock { mode, table })
        }
        NodeEnum::ClusterStmt(c) => {
            let table = ast::range_var_name(c.relation.as_ref()?);
            Some(Lock {
                mode: LockMode::AccessExclusive,
                table,
            })
        }
        NodeEnum::VacuumStmt(v) if vacuum_full(v) => {
            let table = v.rels.iter().find_map(|r| match ast::inner(r)? {
                NodeEnum::VacuumRelation(vr) => vr.relation.as_ref().map(ast::range_var_name),
                _ => None,
            })?;
            Some(Lock {
                mode: LockMode::AccessExclusive,
                table,
            })
        }
        NodeEnum::LockStmt(l) => {
            let table = l.relations.iter().find_map(|r| match ast::inner(r)? {
                NodeEnum::RangeVar(rv) => Some(ast::range_var_name(rv)),
                _ => None,
            })?;
            let mode = match l.mode {
                1 => LockMode::AccessShare,
                2 => LockMode::RowShare,
                3 => LockMode::RowExclusive,
                4 => LockMode::ShareUpdateExclusive,
                5 => LockMode::Share,
                6 => LockMode::ShareRowExclusive,
                7 => LockMode::Exclusive,
                _ => LockMode::AccessExclusive,
            };
            Some(Lock { mode, table })
        }
        NodeEnum::CommentStmt(_) => None,
        _ => None,
    }
}

fn vacuum_full(v: &pg_query::protobuf::VacuumStmt) -> bool {
    v.is_vacuumcmd && ast::option_on(&v.options, "full")
}
