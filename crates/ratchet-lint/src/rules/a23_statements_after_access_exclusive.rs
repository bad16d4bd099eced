//! A23 `statements-after-access-exclusive`.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::ast;
use crate::context::Statement;
use crate::locks::LockMode;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// A slow statement (an index build, a backfill `UPDATE`/`DELETE`/`INSERT … SELECT`, a
    /// validating or rewriting `ALTER TABLE`, `REFRESH`, `CLUSTER`, `VACUUM`) that runs in the
    /// same transaction after a statement took an ACCESS EXCLUSIVE lock on an existing table.
    /// Quick statements after it (another `ADD COLUMN`, `COMMENT`, `GRANT`) are not reported.
    ///
    /// ## Why it is dangerous
    /// Locks are held until COMMIT, so the ACCESS EXCLUSIVE lock — which blocks all reads
    /// and writes of the table — lasts for the whole slow statement too.
    ///
    /// ## What to do instead
    /// Commit right after the ACCESS EXCLUSIVE statement (separate transactions or
    /// migrations), or put it last. Backfills belong in batches outside DDL transactions
    /// (ratchet runs them that way).
    ///
    /// ## Example
    /// ```sql
    /// BEGIN;
    /// ALTER TABLE users ADD COLUMN plan text;
    /// UPDATE users SET plan = 'free';  -- the whole update runs with `users` locked
    /// COMMIT;
    /// ```
    code: "A23",
    name: "statements-after-access-exclusive",
    severity: Warning,
    summary: "a slow statement runs in the same transaction after an ACCESS EXCLUSIVE lock was taken",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements().iter().filter(|s| s.tx.in_transaction) {
        let Some(slow) = slow_kind(stmt) else {
            continue;
        };
        let held = cx
            .before(stmt)
            .iter()
            .filter(|s| s.tx.in_transaction && s.tx.id == stmt.tx.id)
            .find_map(|s| {
                s.lock.as_ref().filter(|l| {
                    l.mode == LockMode::AccessExclusive && !cx.is_new_table(&l.table, s)
                })
            });
        let Some(lock) = held else { continue };
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!("{slow} runs while this transaction holds an ACCESS EXCLUSIVE lock on `{}`: reads and writes of `{}` stay blocked until COMMIT", lock.table, lock.table),
            )
            .help("COMMIT after the ACCESS EXCLUSIVE statement (or put it last); run backfills in batches outside DDL transactions"),
        );
    }
}

fn slow_kind(stmt: &Statement) -> Option<&'static str> {
    match &stmt.node {
        NodeEnum::IndexStmt(_) => Some("an index build"),
        NodeEnum::UpdateStmt(_) => Some("an UPDATE"),
        NodeEnum::DeleteStmt(_) => Some("a DELETE"),
        NodeEnum::InsertStmt(i)
            if i.select_stmt.as_deref().and_then(ast::inner).is_some_and(
                |s| matches!(s, NodeEnum::SelectStmt(sel) if sel.values_lists.is_empty()),
            ) =>
        {
            Some("an INSERT … SELECT")
        }
        NodeEnum::RefreshMatViewStmt(_) => Some("REFRESH MATERIALIZED VIEW"),
        NodeEnum::ClusterStmt(_) => Some("CLUSTER"),
        NodeEnum::VacuumStmt(_) => Some("VACUUM/ANALYZE"),
        node => {
            let a = ast::alter_table(node)?;
            ast::alter_cmds(a)
                .any(|c| {
                    matches!(
                        ast::cmd_type(c),
                        AlterTableType::AtValidateConstraint
                            | AlterTableType::AtSetNotNull
                            | AlterTableType::AtAlterColumnType
                    ) || (ast::cmd_type(c) == AlterTableType::AtAddConstraint
                        && ast::cmd_constraint(c)
                            .is_some_and(|k| !k.skip_validation && k.indexname.is_empty()))
                })
                .then_some("a scanning ALTER TABLE")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_on_backfill_after_add_column() {
        insta::assert_snapshot!(lint_errors(&RULE, "BEGIN;\nALTER TABLE users ADD COLUMN plan text;\nUPDATE users SET plan = 'free';\nCOMMIT;"));
    }

    #[test]
    fn separate_transactions_are_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE users ADD COLUMN plan text;\nUPDATE users SET plan = 'free';",
        );
    }

    #[test]
    fn quick_follow_up_is_fine() {
        lint_ok(&RULE, "BEGIN;\nALTER TABLE users ADD COLUMN plan text;\nALTER TABLE users ADD COLUMN tier text;\nCOMMIT;");
    }
}
