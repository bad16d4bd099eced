//! B17 `create-enum`: enum types, whose values cannot be removed or reordered later.

use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `CREATE TYPE … AS ENUM`.
    ///
    /// ## Why it is dangerous
    /// A matter of design rather than an immediate hazard, hence `info`: values can be
    /// added but never removed or reordered without recreating the type and rewriting
    /// every column that uses it, and no data (labels, flags, sort keys) can be attached
    /// to a value.
    ///
    /// ## What to do instead
    /// A lookup table with a foreign key (or a `text` column with a CHECK constraint),
    /// which can change with ordinary, non-blocking migrations.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
    /// -- instead
    /// CREATE TABLE order_statuses (name text PRIMARY KEY);
    /// ```
    code: "B17",
    name: "create-enum",
    severity: Info,
    category: Policy,
    summary: "enum values cannot be removed or reordered without a rewrite",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::CreateEnumStmt(e) = &stmt.node else {
            continue;
        };
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!(
                    "enum `{}`: its values cannot be removed or reordered later without recreating the type and rewriting every column that uses it",
                    ast::string_list(&e.type_name).join(".")
                ),
            )
            .help("consider a lookup table with a foreign key, or text with a CHECK constraint"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_create_enum() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');"
        ));
    }

    #[test]
    fn ignores_a_composite_type() {
        lint_ok(
            &RULE,
            "CREATE TYPE money_amount AS (amount numeric, currency text);",
        );
    }
}
