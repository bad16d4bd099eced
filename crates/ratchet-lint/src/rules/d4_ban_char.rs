//! D4 `ban-char`: blank-padded `char(n)` columns.

use crate::ast;
use crate::rules::d1_prefer_bigint::{type_token, typed_columns};
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// Columns of type `char(n)` / `character(n)` (PostgreSQL's `bpchar`). The internal
    /// one-byte type `"char"` is not reported.
    ///
    /// ## Why it is dangerous
    /// Values are blank-padded to `n`: trailing spaces are ignored in comparisons but
    /// kept in some functions and client drivers, `LIKE` and concatenation behave
    /// surprisingly, and there is no storage or speed advantage over `text` in
    /// PostgreSQL. Changing `n` later rewrites the table (rule A5).
    ///
    /// ## What to do instead
    /// `text` (optionally with `CHECK (length(col) = n)`) or `varchar(n)`.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE countries (code char(2) PRIMARY KEY);
    /// -- instead
    /// CREATE TABLE countries (code text PRIMARY KEY CHECK (length(code) = 2));
    /// ```
    code: "D4",
    name: "ban-char",
    severity: Warning,
    category: Policy,
    summary: "char(n) pads with blanks; use text or varchar",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        for col in typed_columns(&stmt.node) {
            let names = ast::string_list(&col.type_name.names);
            // `char(n)` parses as pg_catalog.bpchar; a bare "char" is the internal type.
            if ast::type_base_name(col.type_name) != "bpchar"
                || names.len() == 1 && names[0] == "char"
            {
                continue;
            }
            sink.push(
                Diagnostic::new(
                    type_token(cx, stmt, col.type_name).unwrap_or(stmt.span),
                    format!(
                        "column `{}` is char(n): values are blank-padded, which comparisons, LIKE and client drivers treat inconsistently, for no storage gain",
                        col.column
                    ),
                )
                .help("use text (with CHECK (length(col) = n) if the length matters) or varchar(n)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_char() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE TABLE countries (code char(2) PRIMARY KEY, name character(40));"
        ));
    }

    #[test]
    fn ignores_varchar_and_internal_char() {
        lint_ok(
            &RULE,
            "CREATE TABLE countries (code varchar(2), flag \"char\", name text);",
        );
    }
}
