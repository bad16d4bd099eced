//! B11 `generated-expression-change`: changing what a generated column computes.

use pg_query::protobuf::AlterTableType;

use crate::ast;
use crate::{Context, Diagnostic, Severity, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER COLUMN … DROP EXPRESSION` (`warning`) and `ALTER COLUMN … SET EXPRESSION AS
    /// (…)` (PostgreSQL 17+, `error`) on an existing table.
    ///
    /// ## Why it is dangerous
    /// The column's meaning changes under the running application: after `DROP
    /// EXPRESSION` it is a plain column that nobody writes any more (new rows get NULL or
    /// the default); `SET EXPRESSION` recomputes every row, rewriting the table under an
    /// ACCESS EXCLUSIVE lock (blocks reads and writes).
    ///
    /// ## What to do instead
    /// Add a new column (ratchet's `add_column` with `up` computing the new expression),
    /// move readers to it, and drop the old one in a contract step.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ALTER COLUMN total_cents SET EXPRESSION AS (total * 100);
    /// ```
    code: "B11",
    name: "generated-expression-change",
    severity: Warning,
    summary: "DROP/SET EXPRESSION changes a generated column's meaning (SET also rewrites)",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let Some(alter) = ast::alter_table(&stmt.node) else {
            continue;
        };
        let Some(table) = ast::alter_table_name(alter) else {
            continue;
        };
        if cx.is_new_table(&table, stmt) {
            continue;
        }
        for cmd in ast::alter_cmds(alter) {
            let diagnostic = match ast::cmd_type(cmd) {
                AlterTableType::AtDropExpression => Diagnostic::new(
                    stmt.span,
                    format!(
                        "`{table}.{}` stops being generated: new rows no longer get a computed value, and readers that rely on it see NULLs",
                        cmd.name
                    ),
                ),
                AlterTableType::AtSetExpression => Diagnostic::new(
                    stmt.span,
                    format!(
                        "changing the expression of `{table}.{}` recomputes every row: a table rewrite under an ACCESS EXCLUSIVE lock (blocks reads and writes), and the column's meaning changes under running clients",
                        cmd.name
                    ),
                )
                .severity(Severity::Error),
                _ => continue,
            };
            sink.push(diagnostic.help(
                "add a new column instead (ratchet's `add_column` with `up` computing the new value), move readers, drop the old column later",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_drop_expression() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders ALTER COLUMN total_cents DROP EXPRESSION;"
        ));
    }

    #[test]
    fn set_expression_is_an_error() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders ALTER COLUMN total_cents SET EXPRESSION AS (total * 100);"
        ));
    }

    #[test]
    fn ignores_drop_default() {
        lint_ok(
            &RULE,
            "ALTER TABLE orders ALTER COLUMN total_cents DROP DEFAULT;",
        );
    }
}
