//! A35 `missing-lock-timeout`.

use crate::rule::{Diagnostic, Edit, Fix};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// A statement that takes a write-blocking lock (ACCESS EXCLUSIVE, EXCLUSIVE, SHARE ROW
    /// EXCLUSIVE or SHARE — see `locks.rs` for the statement → lock table) on an existing
    /// table with no `lock_timeout` in effect (`SET lock_timeout`, or `SET LOCAL` in the same
    /// transaction, non-zero and not reset since). Statements that take only SHARE UPDATE
    /// EXCLUSIVE (`CREATE INDEX CONCURRENTLY`, `VALIDATE CONSTRAINT`) are not reported, nor is
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY` (its EXCLUSIVE lock does not conflict with
    /// readers, and a materialized view has no writers).
    ///
    /// A policy rule (the remedy is a session setting, not a change to the DDL), `warning`
    /// by default: a careful team wants CI to fail on it, because an ACCESS EXCLUSIVE request
    /// queued behind one long transaction stops all traffic on the table — the most common
    /// migration outage — and the fix (`SET lock_timeout`, retry) costs nothing.
    ///
    /// ## Why it is dangerous
    /// The statement may be instant, but acquiring the lock waits behind any long-running
    /// transaction on the table; while it waits, every later query on the table queues behind
    /// it (the lock queue). A metadata-only `ALTER TABLE` can so take the application down.
    ///
    /// ## What to do instead
    /// `SET lock_timeout = '1s'` (or `SET LOCAL` inside a transaction) before it and retry
    /// with backoff on SQLSTATE 55P03. ratchet runs every DDL statement this way. Autofix:
    /// inserts `SET lock_timeout = '1s';` before the first such statement.
    ///
    /// ## Example
    /// ```sql
    /// SET lock_timeout = '1s';
    /// ALTER TABLE users ADD COLUMN plan text;
    /// ```
    code: "A35",
    name: "missing-lock-timeout",
    severity: Warning,
    category: Policy,
    summary: "a write-blocking lock is requested with no lock_timeout: the lock queue can stall all traffic",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let mut fixed = false;
    for stmt in cx.statements() {
        let Some(lock) = &stmt.lock else { continue };
        // REFRESH … CONCURRENTLY takes EXCLUSIVE, which readers' ACCESS SHARE does not
        // conflict with, and a materialized view has no writers: nothing queues behind it.
        if matches!(&stmt.node, pg_query::NodeEnum::RefreshMatViewStmt(r) if r.concurrent) {
            continue;
        }
        if stmt.lock_timeout || !lock.mode.blocks_writes() || cx.is_new_table(&lock.table, stmt) {
            continue;
        }
        // Locks are held until COMMIT: a later statement of the same transaction on a table
        // already locked at least as strongly does not wait.
        let already_held = cx.before(stmt).iter().any(|s| {
            s.tx.in_transaction
                && s.tx.id == stmt.tx.id
                && s.lock
                    .as_ref()
                    .is_some_and(|l| l.table.same_as(&lock.table) && l.mode >= lock.mode)
        });
        if already_held {
            continue;
        }
        let mut d = Diagnostic::new(
            stmt.span,
            format!(
                "this statement requests the {} on `{}` with no lock_timeout: while it waits behind a long transaction, every later query on `{}` queues behind it",
                lock.mode.describe(),
                lock.table,
                lock.table
            ),
        )
        .help("SET lock_timeout = '1s' (SET LOCAL inside a transaction) before it and retry on timeout; ratchet does this for every step");
        if !fixed {
            d = d.fix(Fix::new(
                "insert SET lock_timeout = '1s'",
                vec![Edit::insert(stmt.span.start, "SET lock_timeout = '1s';\n")],
            ));
            fixed = true;
        }
        sink.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_with_fix() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE users ADD COLUMN plan text;"
        ));
    }

    #[test]
    fn with_timeout_is_fine() {
        lint_ok(
            &RULE,
            "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN plan text;",
        );
    }

    #[test]
    fn set_local_expires_at_commit() {
        lint_errors(&RULE, "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE a ADD COLUMN x int;\nCOMMIT;\nALTER TABLE b ADD COLUMN y int;");
    }

    #[test]
    fn concurrent_index_is_fine() {
        lint_ok(&RULE, "CREATE INDEX CONCURRENTLY i ON users (email);\nALTER TABLE users VALIDATE CONSTRAINT c;");
    }

    #[test]
    fn lock_already_held_in_transaction_is_not_reported_again() {
        let out = lint_errors(
            &RULE,
            "BEGIN;\nALTER TABLE a ADD COLUMN x int;\nALTER TABLE a ADD COLUMN y int;\nCOMMIT;",
        );
        assert_eq!(out.matches("missing-lock-timeout").count(), 1, "{out}");
    }

    #[test]
    fn zero_timeout_does_not_count() {
        lint_errors(
            &RULE,
            "SET lock_timeout = 0;\nALTER TABLE users ADD COLUMN plan text;",
        );
    }
}
