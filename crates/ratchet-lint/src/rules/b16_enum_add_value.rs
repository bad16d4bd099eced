//! B16 `enum-add-value`: adding an enum value without saying where it goes, or where the
//! server cannot run it.

use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Severity, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TYPE … ADD VALUE` without `BEFORE`/`AFTER` (`info`), and any `ADD VALUE`
    /// inside a transaction when targeting PostgreSQL < 12 (`error`).
    ///
    /// ## Why it is dangerous
    /// Enum order is part of the type: `ORDER BY`, `<` and `>` over the enum follow it, so
    /// a value appended at the end by accident changes query results. Old application
    /// versions also meet a value they do not know. Before PostgreSQL 12, `ADD VALUE`
    /// cannot run inside a transaction block at all (error 25001), so a wrapped migration
    /// fails; on 12+ the new value cannot be used until the transaction commits.
    ///
    /// ## What to do instead
    /// Say where the value goes (`ADD VALUE 'x' AFTER 'y'`), update the clients that
    /// switch over the enum first, and on PG < 12 run it outside a transaction.
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
    for stmt in cx.statements() {
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
    fn ignores_a_positioned_value() {
        lint_ok(
            &RULE,
            "ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'returned' AFTER 'shipped';",
        );
    }
}
