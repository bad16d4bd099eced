//! B15 `json-column`: `json` columns, which break equality-based queries.

use crate::ast;
use crate::rules::d1_prefer_bigint::{type_span, type_token, typed_columns};
use crate::{Context, Diagnostic, Edit, Fix, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// Columns of type `json` (CREATE TABLE, ADD COLUMN, ALTER COLUMN … TYPE).
    ///
    /// ## Why it is dangerous
    /// `json` has no equality operator: any existing `SELECT DISTINCT`, `UNION`,
    /// `GROUP BY` or `IN` over a row containing it fails with "could not identify an
    /// equality operator for type json". It also re-parses the text on every access.
    ///
    /// ## What to do instead
    /// Use `jsonb` (the autofix). To convert an existing column, ratchet's `alter_column`
    /// with `type: jsonb` and `up: col::jsonb` avoids the rewrite under lock.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE events ADD COLUMN payload json;   -- becomes jsonb
    /// ```
    code: "B15",
    name: "json-column",
    severity: Warning,
    category: Policy,
    summary: "json has no equality operator; use jsonb",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        for col in typed_columns(&stmt.node) {
            if ast::type_base_name(col.type_name) != "json" {
                continue;
            }
            let at = type_token(cx, stmt, col.type_name).unwrap_or(stmt.span);
            let mut diagnostic = Diagnostic::new(
                at,
                format!(
                    "column `{}` has type json, which has no equality operator: DISTINCT, UNION and GROUP BY over it fail",
                    col.column
                ),
            )
            .help("use jsonb; for an existing column, ratchet's `alter_column` with `type: jsonb` and `up: <col>::jsonb`");
            if let Some(span) = type_span(cx, stmt, col.type_name, &["json"]) {
                diagnostic =
                    diagnostic.fix(Fix::new("use jsonb", vec![Edit::replace(span, "jsonb")]));
            }
            sink.push(diagnostic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_json_column() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE events ADD COLUMN payload json NOT NULL DEFAULT '{}';"
        ));
    }

    #[test]
    fn ignores_jsonb() {
        lint_ok(&RULE, "CREATE TABLE events (payload jsonb, raw text);");
    }

    #[test]
    fn ignores_a_json_cast() {
        lint_ok(&RULE, "SELECT '{}'::json;");
    }
}
