//! B16 `enum-add-value`: adding an enum value without saying where it goes, or where the
//! server cannot run it.

use pg_query::protobuf::AlterEnumStmt;
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Severity, Sink, Statement};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TYPE … ADD VALUE` without `BEFORE`/`AFTER` (`info`), any `ADD VALUE`
    /// inside a transaction when targeting PostgreSQL < 12 (`error`), and on 12+ a later
    /// statement of the same transaction that uses the new value (`error`).
    ///
    /// ## Why it is dangerous
    /// Enum order is part of the type: `ORDER BY`, `<` and `>` over the enum follow it, so
    /// a value appended at the end by accident changes query results. Old application
    /// versions also meet a value they do not know. Before PostgreSQL 12, `ADD VALUE`
    /// cannot run inside a transaction block at all (error 25001), so a wrapped migration
    /// fails; on 12+ the new value cannot be used until the transaction commits: a later
    /// statement of the same transaction that writes or compares it fails with
    /// `unsafe use of new value` (55P04) and the whole migration rolls back.
    ///
    /// ## What to do instead
    /// Say where the value goes (`ADD VALUE 'x' AFTER 'y'`), update the clients that
    /// switch over the enum first, and on PG < 12 run it outside a transaction. Use the
    /// new value in a later migration (or after a `COMMIT`).
    ///
    /// ## Example
    /// ```sql
    /// ALTER TYPE order_status ADD VALUE 'returned';
    /// -- instead
    /// ALTER TYPE order_status ADD VALUE 'returned' AFTER 'shipped';
    /// ```
    code: "B16",
    name: "enum-add-value",
    severity: Info,
    summary: "ADD VALUE without BEFORE/AFTER, or inside a transaction on PG < 12",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let statements = cx.statements();
    for (i, stmt) in statements.iter().enumerate() {
        let NodeEnum::AlterEnumStmt(e) = &stmt.node else {
            continue;
        };
        if !e.old_val.is_empty() {
            continue; // RENAME VALUE: rule B7.
        }
        let type_name = ast::string_list(&e.type_name).join(".");
        if stmt.tx.in_transaction && !cx.pg_version().at_least(12) {
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!(
                        "adding value '{}' to enum `{type_name}` inside a transaction fails on PostgreSQL {} (ALTER TYPE … ADD VALUE cannot run inside a transaction block before 12)",
                        e.new_val,
                        cx.pg_version()
                    ),
                )
                .help("run it in its own migration without a transaction (`-- ratchet:no-transaction`)")
                .severity(Severity::Error),
            );
        } else if e.new_val_neighbor.is_empty() {
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!(
                        "value '{}' is appended at the end of enum `{type_name}`: ORDER BY and comparisons over the enum follow its order",
                        e.new_val
                    ),
                )
                .help("say where it goes with BEFORE or AFTER, and update clients that switch over the enum before they can meet it"),
            );
        }
        if stmt.tx.in_transaction && cx.pg_version().at_least(12) {
            used_before_commit(stmt, &statements[i + 1..], e, &type_name, sink);
        }
    }
}

/// On PostgreSQL 12+, a value added in a transaction and used by a later statement of the
/// same transaction (before 12 the `ADD VALUE` itself fails, reported above).
fn used_before_commit(
    add: &Statement,
    later: &[Statement],
    e: &AlterEnumStmt,
    type_name: &str,
    sink: &mut Sink,
) {
    let user = later
        .iter()
        .take_while(|s| s.tx.in_transaction && s.tx.id == add.tx.id)
        .find(|s| ast::contains(&s.node, |n| is_string(n, &e.new_val)));
    if let Some(user) = user {
        sink.push(
            Diagnostic::new(
                user.span,
                format!(
                    "uses value '{}' of enum `{type_name}`, added earlier in the same transaction: PostgreSQL refuses it until that transaction commits (unsafe use of new value)",
                    e.new_val
                ),
            )
            .help("commit between the two: add the value in one migration and use it in the next (or in a file without a transaction)")
            .severity(Severity::Error),
        );
    }
}

fn is_string(n: &pg_query::NodeRef<'_>, value: &str) -> bool {
    match n {
        pg_query::NodeRef::AConst(c) => matches!(
            &c.val,
            Some(pg_query::protobuf::a_const::Val::Sval(s)) if s.sval == value
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_errors_with, lint_ok, pg};
    use crate::Settings;

    #[test]
    fn fires_without_position() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TYPE order_status ADD VALUE 'returned';"
        ));
    }

    #[test]
    fn is_an_error_in_a_transaction_on_pg11() {
        let settings = Settings {
            assume_in_transaction: true,
            ..pg(11)
        };
        insta::assert_snapshot!(lint_errors_with(
            &RULE,
            "ALTER TYPE order_status ADD VALUE 'returned' AFTER 'shipped';",
            &settings,
            None
        ));
    }

    #[test]
    fn fires_on_a_use_in_the_same_transaction() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "BEGIN;\nALTER TYPE order_status ADD VALUE 'returned' AFTER 'shipped';\nUPDATE orders SET status = 'returned' WHERE refunded;\nCOMMIT;"
        ));
    }

    #[test]
    fn ignores_a_use_after_commit() {
        lint_ok(
            &RULE,
            "BEGIN;\nALTER TYPE order_status ADD VALUE 'returned' AFTER 'shipped';\nCOMMIT;\nUPDATE orders SET status = 'returned' WHERE refunded;",
        );
    }

    #[test]
    fn ignores_a_positioned_value() {
        lint_ok(
            &RULE,
            "ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'returned' AFTER 'shipped';",
        );
    }
}
