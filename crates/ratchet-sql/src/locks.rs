//! Which lock each statement takes, from the PostgreSQL documentation ("Explicit Locking"
//! and each command's reference page). One place, so that every lint rule's message names
//! the same lock, the lock-timeout rule knows exactly which statements queue behind
//! traffic, and `ratchet plan` shows for a raw `sql` operation the lock `ratchet lint`
//! names (issue 9: `ADD CONSTRAINT … FOREIGN KEY … NOT VALID` was shown as ACCESS
//! EXCLUSIVE by a second, cruder table).

use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
use pg_query::NodeEnum;

use crate::ast::{self, QualifiedName};
pub use crate::lock_mode::LockMode;

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
    use LockMode::{AccessExclusive, ShareRowExclusive, ShareUpdateExclusive};
    let weaker_if = |concurrent: bool, weaker: LockMode, otherwise: LockMode| {
        if concurrent {
            weaker
        } else {
            otherwise
        }
    };
    let (mode, table) = match node {
        NodeEnum::AlterTableStmt(a) => (
            ast::alter_cmds(a).map(alter_cmd_lock).max()?,
            ast::alter_table_name(a)?,
        ),
        NodeEnum::IndexStmt(i) => (
            weaker_if(i.concurrent, ShareUpdateExclusive, LockMode::Share),
            relation(&i.relation)?,
        ),
        NodeEnum::DropStmt(d) => (drop_lock(d)?, ast::drop_objects(d).into_iter().next()?),
        NodeEnum::ReindexStmt(r) => {
            let table = match &r.relation {
                Some(rv) => ast::range_var_name(rv),
                None => QualifiedName::new(None, &r.name),
            };
            let concurrent = ast::option_on(&r.params, "concurrently");
            (
                weaker_if(concurrent, ShareUpdateExclusive, AccessExclusive),
                table,
            )
        }
        NodeEnum::TruncateStmt(t) => (AccessExclusive, first_range_var(&t.relations)?),
        NodeEnum::RenameStmt(r) => (AccessExclusive, relation(&r.relation)?),
        NodeEnum::AlterObjectSchemaStmt(s) => (AccessExclusive, relation(&s.relation)?),
        NodeEnum::CreateTrigStmt(t) => (ShareRowExclusive, relation(&t.relation)?),
        NodeEnum::RuleStmt(r) => (AccessExclusive, relation(&r.relation)?),
        NodeEnum::CreatePolicyStmt(p) => (AccessExclusive, relation(&p.table)?),
        NodeEnum::RefreshMatViewStmt(r) => (
            weaker_if(r.concurrent, LockMode::Exclusive, AccessExclusive),
            relation(&r.relation)?,
        ),
        NodeEnum::ClusterStmt(c) => (AccessExclusive, relation(&c.relation)?),
        NodeEnum::VacuumStmt(v) if vacuum_full(v) => {
            let table = v.rels.iter().find_map(|r| match ast::inner(r)? {
                NodeEnum::VacuumRelation(vr) => vr.relation.as_ref().map(ast::range_var_name),
                _ => None,
            })?;
            (AccessExclusive, table)
        }
        NodeEnum::LockStmt(l) => (lock_stmt_mode(l.mode), first_range_var(&l.relations)?),
        _ => return None,
    };
    Some(Lock { mode, table })
}

/// The table a statement's `relation` names.
fn relation(rv: &Option<pg_query::protobuf::RangeVar>) -> Option<QualifiedName> {
    rv.as_ref().map(ast::range_var_name)
}

/// The first table of a relation list (`TRUNCATE a, b`, `LOCK a, b`).
fn first_range_var(nodes: &[pg_query::Node]) -> Option<QualifiedName> {
    nodes.iter().find_map(|r| match ast::inner(r)? {
        NodeEnum::RangeVar(rv) => Some(ast::range_var_name(rv)),
        _ => None,
    })
}

/// The lock of a `DROP` of a relation-like object; `None` for other objects (a function,
/// a type), which take no table lock.
fn drop_lock(d: &pg_query::protobuf::DropStmt) -> Option<LockMode> {
    match ast::object_type(d.remove_type) {
        ObjectType::ObjectIndex if d.concurrent => Some(LockMode::ShareUpdateExclusive),
        ObjectType::ObjectIndex
        | ObjectType::ObjectTable
        | ObjectType::ObjectMatview
        | ObjectType::ObjectView
        | ObjectType::ObjectTrigger
        | ObjectType::ObjectRule
        | ObjectType::ObjectPolicy => Some(LockMode::AccessExclusive),
        _ => None,
    }
}

/// `LOCK TABLE … IN <mode> MODE`: the parser's `LOCKMODE` number (1 = ACCESS SHARE …
/// 8 = ACCESS EXCLUSIVE, the default when no mode is written).
fn lock_stmt_mode(mode: i32) -> LockMode {
    usize::try_from(mode - 1)
        .ok()
        .and_then(|i| LockMode::ALL.get(i).copied())
        .unwrap_or(LockMode::AccessExclusive)
}

fn vacuum_full(v: &pg_query::protobuf::VacuumStmt) -> bool {
    v.is_vacuumcmd && ast::option_on(&v.options, "full")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock of the only statement of `sql`, as `MODE on table`.
    fn lock(sql: &str) -> Option<String> {
        let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).unwrap();
        let node = parsed.protobuf.stmts[0].stmt.as_ref()?.node.as_ref()?;
        statement_lock(node).map(|l| format!("{} on {}", l.mode, l.table))
    }

    #[test]
    fn alter_table_takes_the_strongest_lock_of_its_subcommands() {
        assert_eq!(
            lock("ALTER TABLE t ADD COLUMN c int").as_deref(),
            Some("ACCESS EXCLUSIVE on t")
        );
        assert_eq!(
            lock("ALTER TABLE app.t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID")
                .as_deref(),
            Some("SHARE ROW EXCLUSIVE on app.t")
        );
        assert_eq!(
            lock("ALTER TABLE t VALIDATE CONSTRAINT f").as_deref(),
            Some("SHARE UPDATE EXCLUSIVE on t")
        );
        assert_eq!(
            lock("ALTER TABLE t VALIDATE CONSTRAINT f, ADD COLUMN c int").as_deref(),
            Some("ACCESS EXCLUSIVE on t")
        );
        assert_eq!(
            lock("ALTER TABLE t SET (fillfactor = 70)").as_deref(),
            Some("SHARE UPDATE EXCLUSIVE on t")
        );
        assert_eq!(
            lock("ALTER TABLE t DISABLE TRIGGER ALL").as_deref(),
            Some("SHARE ROW EXCLUSIVE on t")
        );
    }

    #[test]
    fn concurrently_weakens_the_lock() {
        assert_eq!(
            lock("CREATE INDEX i ON t (a)").as_deref(),
            Some("SHARE on t")
        );
        assert_eq!(
            lock("CREATE INDEX CONCURRENTLY i ON t (a)").as_deref(),
            Some("SHARE UPDATE EXCLUSIVE on t")
        );
        assert_eq!(
            lock("DROP INDEX CONCURRENTLY i").as_deref(),
            Some("SHARE UPDATE EXCLUSIVE on i")
        );
        assert_eq!(
            lock("REINDEX (CONCURRENTLY) TABLE t").as_deref(),
            Some("SHARE UPDATE EXCLUSIVE on t")
        );
        assert_eq!(
            lock("REINDEX (CONCURRENTLY false) TABLE t").as_deref(),
            Some("ACCESS EXCLUSIVE on t")
        );
        assert_eq!(
            lock("REFRESH MATERIALIZED VIEW CONCURRENTLY m").as_deref(),
            Some("EXCLUSIVE on m")
        );
    }

    #[test]
    fn other_statements() {
        assert_eq!(
            lock("DROP TABLE old").as_deref(),
            Some("ACCESS EXCLUSIVE on old")
        );
        assert_eq!(
            lock("TRUNCATE a, b").as_deref(),
            Some("ACCESS EXCLUSIVE on a")
        );
        assert_eq!(
            lock("LOCK TABLE t IN ROW EXCLUSIVE MODE").as_deref(),
            Some("ROW EXCLUSIVE on t")
        );
        assert_eq!(
            lock("VACUUM (FULL) t").as_deref(),
            Some("ACCESS EXCLUSIVE on t")
        );
        assert_eq!(lock("VACUUM t").as_deref(), None);
        assert_eq!(
            lock("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()")
                .as_deref(),
            Some("SHARE ROW EXCLUSIVE on t")
        );
        // No conflicting lock on an existing table.
        assert_eq!(lock("SELECT 1"), None);
        assert_eq!(lock("CREATE TABLE n (a int)"), None);
        assert_eq!(lock("DROP FUNCTION f()"), None);
    }
}
