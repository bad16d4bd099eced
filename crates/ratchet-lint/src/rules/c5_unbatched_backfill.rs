//! C5 `unbatched-backfill`: a whole-table UPDATE or DELETE in a migration.

use pg_query::NodeEnum;

use crate::ast;
use crate::locks::LockMode;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `UPDATE` or `DELETE` without a `WHERE` clause, or whose only condition is
    /// `col IS NULL` (the classic backfill), on a table that existed before this file.
    ///
    /// ## Why it is dangerous
    /// One statement locks every row it touches until it commits: concurrent writes to
    /// those rows wait, the transaction runs for minutes on a large table, WAL volume and
    /// replica lag spike, and autovacuum cannot clean up behind it. In the same
    /// transaction as DDL it also keeps that DDL's ACCESS EXCLUSIVE lock for the whole
    /// time. With `--database-url` the severity follows the table's size.
    ///
    /// ## What to do instead
    /// Backfill in small batches outside the DDL transaction. ratchet does this for you:
    /// give the expression as `up` of `add_column`/`alter_column`, and the backfill runs in
    /// throttled, resumable batches.
    ///
    /// ## Example
    /// ```sql
    /// UPDATE users SET plan = 'free' WHERE plan IS NULL;
    /// ```
    /// becomes `up: COALESCE(plan, 'free')` on the `alter_column` that makes it NOT NULL.
    code: "C5",
    name: "unbatched-backfill",
    severity: Warning,
    summary: "whole-table UPDATE/DELETE locks every row in one long transaction",
    check: check,
}

fn whole_table(where_clause: Option<&pg_query::Node>) -> bool {
    match where_clause.and_then(ast::inner) {
        None => true,
        Some(NodeEnum::NullTest(_)) => true,
        Some(_) => false,
    }
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let (verb, relation, where_clause) = match &stmt.node {
            NodeEnum::UpdateStmt(u) => ("UPDATE", u.relation.as_ref(), u.where_clause.as_deref()),
            NodeEnum::DeleteStmt(d) => ("DELETE", d.relation.as_ref(), d.where_clause.as_deref()),
            _ => continue,
        };
        let Some(table) = relation.map(ast::range_var_name) else {
            continue;
        };
        if !whole_table(where_clause) || cx.is_new_table(&table, stmt) {
            continue;
        }
        let holds_ael = stmt.tx.in_transaction
            && cx.before(stmt).iter().any(|s| {
                s.tx.id == stmt.tx.id
                    && s.lock
                        .as_ref()
                        .is_some_and(|l| l.mode == LockMode::AccessExclusive)
            });
        let extra = if holds_ael {
            "; it also keeps the ACCESS EXCLUSIVE lock of the DDL earlier in this transaction (blocks reads and writes) until it finishes"
        } else {
            ""
        };
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!(
                    "{verb} over the whole of `{table}`{} locks every row it touches in one long transaction (writes wait, WAL and replica lag spike){extra}",
                    cx.size_note(&table)
                ),
            )
            .help(
                "backfill in small batches outside the DDL transaction; ratchet's `add_column`/`alter_column` take the expression as `up` and backfill in throttled, resumable batches",
            )
            .maybe_severity(cx.size_severity(&table)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{in_transaction, lint_errors, lint_errors_with, lint_ok};

    #[test]
    fn fires_on_a_backfill() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "UPDATE users SET plan = 'free' WHERE plan IS NULL;"
        ));
    }

    #[test]
    fn mentions_the_lock_held_by_earlier_ddl() {
        insta::assert_snapshot!(lint_errors_with(
            &RULE,
            "ALTER TABLE users ADD COLUMN plan text;\nDELETE FROM sessions;",
            &in_transaction(),
            None
        ));
    }

    #[test]
    fn ignores_a_targeted_update() {
        lint_ok(&RULE, "UPDATE users SET plan = 'free' WHERE id = 42;");
    }

    #[test]
    fn ignores_a_table_created_in_the_file() {
        lint_ok(
            &RULE,
            "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\nUPDATE t SET a = 2;",
        );
    }
}
