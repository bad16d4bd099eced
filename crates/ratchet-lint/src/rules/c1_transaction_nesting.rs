//! C1 `transaction-nesting`: BEGIN/COMMIT that fight the runner's transaction or each other.

use pg_query::protobuf::TransactionStmtKind as K;
use pg_query::NodeEnum;

use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `BEGIN`/`START TRANSACTION` in a file the runner already wraps in a transaction
    /// (`--assume-in-transaction` or `-- ratchet:transaction`), a second `BEGIN` while one
    /// is open, and `COMMIT`/`ROLLBACK` without a `BEGIN` of the file's own. A `BEGIN` after
    /// the file's COMMIT has ended the runner's transaction reopens one for the runner's own
    /// COMMIT, and is not reported; nor is a COMMIT that comes before any statement of the
    /// file (only `SET`s), which ends the runner's still-empty transaction so that what
    /// follows (`CREATE INDEX CONCURRENTLY`) runs outside one — the `COMMIT; …; BEGIN;` idiom.
    ///
    /// ## Why it is dangerous
    /// PostgreSQL only warns ("there is already a transaction in progress", "there is no
    /// transaction in progress"), but the runner's transaction is split: the statements
    /// before the inner `COMMIT` are committed on their own, so a later failure leaves the
    /// migration half applied and the runner's bookkeeping wrong. Atlas reports it as
    /// `pq: unexpected transaction status idle`.
    ///
    /// ## What to do instead
    /// Let the runner own transactions: remove BEGIN/COMMIT from wrapped files, or mark
    /// the file `-- ratchet:no-transaction` and manage them yourself. ratchet runs each
    /// phase of a migration in transactions of its own.
    ///
    /// ## Example
    /// ```sql
    /// -- ratchet:transaction
    /// BEGIN;
    /// ALTER TABLE users ADD COLUMN nickname text;
    /// COMMIT;
    /// ```
    code: "C1",
    name: "transaction-nesting",
    severity: Error,
    summary: "BEGIN/COMMIT inside the runner's transaction, nested BEGIN, or COMMIT without BEGIN",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let mut open = false;
    // A BEGIN after the file's COMMIT ended the runner's transaction reopens one for the
    // runner's own COMMIT: not nesting.
    let mut runner_open = cx.wrapped;
    for stmt in cx.statements() {
        let NodeEnum::TransactionStmt(t) = &stmt.node else {
            continue;
        };
        let message = match K::try_from(t.kind).unwrap_or(K::Undefined) {
            K::TransStmtBegin | K::TransStmtStart => {
                let was_open = std::mem::replace(&mut open, true);
                if was_open {
                    "BEGIN while a transaction is already open: PostgreSQL ignores it, and the later COMMIT ends the outer transaction early"
                } else if runner_open {
                    "BEGIN in a file the runner already wraps in a transaction: the COMMIT that follows commits the runner's transaction early, so a later failure leaves the migration half applied"
                } else {
                    continue;
                }
            }
            K::TransStmtCommit | K::TransStmtRollback => {
                let ended_runner = std::mem::replace(&mut runner_open, false);
                if std::mem::replace(&mut open, false) {
                    continue;
                }
                // The `COMMIT; …; BEGIN;` idiom: a COMMIT before any statement of the file
                // ends an empty runner transaction, so that what follows runs outside one.
                let first = cx
                    .before(stmt)
                    .iter()
                    .all(|s| matches!(s.node, NodeEnum::VariableSetStmt(_)));
                if ended_runner && first {
                    continue;
                }
                if ended_runner {
                    "COMMIT/ROLLBACK without BEGIN ends the runner's transaction early: the statements after it run outside any transaction"
                } else {
                    "COMMIT/ROLLBACK without BEGIN: there is no transaction to end, so the statements before it were not atomic"
                }
            }
            _ => continue,
        };
        sink.push(Diagnostic::new(stmt.span, message).help(
            "let the runner own transactions (remove BEGIN/COMMIT), or mark the file `-- ratchet:no-transaction` and manage them yourself",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{in_transaction, lint_errors, lint_errors_with, lint_ok, lint_ok_with};

    #[test]
    fn fires_on_begin_in_a_wrapped_file() {
        insta::assert_snapshot!(lint_errors_with(
            &RULE,
            "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;",
            &in_transaction(),
            None
        ));
    }

    #[test]
    fn fires_on_nested_begin() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "BEGIN;\nSELECT 1;\nBEGIN;\nSELECT 2;\nCOMMIT;"
        ));
    }

    // Issue #10: `COMMIT; CREATE INDEX CONCURRENTLY …; BEGIN;` in a wrapped file ends the
    // runner's (still empty) transaction on purpose, and the BEGIN reopens one for the
    // runner's own COMMIT: neither is reported.
    #[test]
    fn commit_first_idiom_in_a_wrapped_file_is_fine() {
        lint_ok_with(
            &RULE,
            "COMMIT;\nCREATE UNIQUE INDEX CONCURRENTLY i ON t (a);\nBEGIN;\nSELECT 1;",
            &in_transaction(),
            None,
        );
    }

    // A COMMIT after statements of the file still splits the runner's transaction.
    #[test]
    fn commit_after_statements_in_a_wrapped_file_fires() {
        let out = lint_errors_with(
            &RULE,
            "ALTER TABLE t ADD COLUMN a int;\nCOMMIT;\nCREATE UNIQUE INDEX CONCURRENTLY i ON t (a);\nBEGIN;\nSELECT 1;",
            &in_transaction(),
            None,
        );
        assert_eq!(out.matches("error[transaction-nesting]").count(), 1, "{out}");
        assert!(out.contains("COMMIT/ROLLBACK without BEGIN"), "{out}");
    }

    #[test]
    fn ignores_begin_commit_in_an_unwrapped_file() {
        lint_ok(&RULE, "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;\nBEGIN;\nSELECT 1;\nCOMMIT;");
    }
}
