//! C2 `uncommitted-transaction`: a BEGIN that the file never commits.

use pg_query::protobuf::TransactionStmtKind as K;
use pg_query::NodeEnum;

use crate::{Context, Diagnostic, Edit, Fix, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// A `BEGIN`/`START TRANSACTION` with no `COMMIT`, `ROLLBACK` or `END` after it in the
    /// file. In a file the runner wraps in a transaction, the runner's own COMMIT ends it
    /// (the `COMMIT; CREATE INDEX CONCURRENTLY …; BEGIN;` idiom), so it is not reported there.
    ///
    /// ## Why it is dangerous
    /// Many runners report success once the last statement ran; the open transaction is
    /// then rolled back when the connection closes, so the migration is recorded as
    /// applied while none of it is (squawk #697 was a production incident).
    ///
    /// ## What to do instead
    /// End the transaction with `COMMIT` (the autofix appends one).
    ///
    /// ## Example
    /// ```sql
    /// BEGIN;
    /// ALTER TABLE users ADD COLUMN nickname text;
    /// -- missing: COMMIT;
    /// ```
    code: "C2",
    name: "uncommitted-transaction",
    severity: Error,
    summary: "BEGIN without COMMIT: the changes roll back when the connection closes",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    // In a wrapped file the runner's COMMIT ends an open BEGIN (the `COMMIT; …; BEGIN;`
    // idiom for statements that must run outside a transaction).
    if cx.wrapped {
        return;
    }
    let mut open = None;
    for stmt in cx.statements() {
        let NodeEnum::TransactionStmt(t) = &stmt.node else {
            continue;
        };
        match K::try_from(t.kind).unwrap_or(K::Undefined) {
            K::TransStmtBegin | K::TransStmtStart => open = open.or(Some(stmt.span)),
            K::TransStmtCommit | K::TransStmtRollback | K::TransStmtPrepare => open = None,
            _ => {}
        }
    }
    let Some(begin) = open else { return };
    let end = cx.source.len();
    let newline = if cx.source.ends_with('\n') { "" } else { "\n" };
    let mut edits = Vec::new();
    // The last statement may lack its `;` (possibly before a trailing comment).
    let after_last = cx.statements().last().map_or(end, |s| s.span.end);
    let terminated = cx
        .source
        .get(after_last..)
        .is_some_and(|rest| rest.trim_start().starts_with(';'));
    if !terminated && after_last < end {
        edits.push(Edit::insert(after_last, ";"));
    }
    let semicolon = if !terminated && after_last >= end {
        ";"
    } else {
        ""
    };
    edits.push(Edit::insert(end, format!("{semicolon}{newline}COMMIT;\n")));
    sink.push(
        Diagnostic::new(begin, "this transaction is never committed: the changes roll back when the connection closes, while the runner may report success")
            .help("end the transaction with COMMIT")
            .fix(Fix::new("append COMMIT", edits)),
    );
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{in_transaction, lint_errors, lint_ok, lint_ok_with};

    // Issue #10: in a wrapped file the runner commits the BEGIN that follows the file's COMMIT.
    #[test]
    fn wrapped_file_reopening_for_the_runner_is_fine() {
        lint_ok_with(
            &RULE,
            "COMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);\nBEGIN;\nSELECT 1;",
            &in_transaction(),
            None,
        );
    }

    #[test]
    fn fires_on_begin_without_commit() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\n"
        ));
    }

    #[test]
    fn ignores_a_committed_transaction() {
        lint_ok(
            &RULE,
            "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;",
        );
    }
}
