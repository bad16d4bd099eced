//! D3 `prefer-timestamptz`: `timestamp without time zone` columns.

use crate::ast;
use crate::rules::d1_prefer_bigint::{type_span, type_token, typed_columns};
use crate::{Context, Diagnostic, Edit, Fix, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// Columns of type `timestamp` / `timestamp without time zone` (CREATE TABLE, ADD
    /// COLUMN, ALTER COLUMN … TYPE).
    ///
    /// ## Why it is dangerous
    /// The value carries no offset: what it means depends on the `TimeZone` of whoever
    /// wrote it, so clients in different zones (or a server moved to another zone)
    /// silently read wrong instants, and daylight-saving transitions produce duplicates.
    /// Converting later is a type change that rewrites the table unless the session
    /// runs in UTC (rule A5).
    ///
    /// ## What to do instead
    /// `timestamptz` (the autofix); it stores an instant and takes no more space. For an
    /// existing column, ratchet's `alter_column` with `type: timestamptz` and
    /// `up: col AT TIME ZONE 'UTC'` converts it without a rewrite under lock.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN shipped_at timestamp;   -- becomes timestamptz
    /// ```
    code: "D3",
    name: "prefer-timestamptz",
    severity: Warning,
    category: Policy,
    summary: "timestamp without time zone loses the UTC offset; use timestamptz",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        for col in typed_columns(&stmt.node) {
            if ast::type_base_name(col.type_name) != "timestamp" {
                continue;
            }
            let mut diagnostic = Diagnostic::new(
                type_token(cx, stmt, col.type_name).unwrap_or(stmt.span),
                format!(
                    "column `{}` is timestamp without time zone: its values carry no offset, so readers in another TimeZone see wrong instants",
                    col.column
                ),
            )
            .help("use timestamptz; for an existing column, ratchet's `alter_column` with `type: timestamptz` and `up: <col> AT TIME ZONE 'UTC'`");
            if let Some(span) = type_span(cx, stmt, col.type_name, &["timestamp"]) {
                let precision = ast::type_mods(col.type_name);
                let replacement = match precision.first() {
                    Some(p) => format!("timestamptz({p})"),
                    None => "timestamptz".to_string(),
                };
                diagnostic = diagnostic.fix(Fix::new(
                    "use timestamptz",
                    vec![Edit::replace(span, replacement)],
                ));
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
    fn fires_on_timestamp() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE TABLE orders (created_at timestamp(3) without time zone NOT NULL, shipped_at timestamp);"
        ));
    }

    #[test]
    fn ignores_timestamptz() {
        lint_ok(
            &RULE,
            "CREATE TABLE orders (created_at timestamptz, at timestamp with time zone, d date);",
        );
    }
}
