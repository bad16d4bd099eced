//! C6 `too-many-index-columns`: wide non-unique indexes.

use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

/// More key columns than this in a non-unique index is reported.
const MAX_COLUMNS: usize = 3;

crate::declare_rule! {
    /// ## What it detects
    /// A non-unique index with more than three key columns (`INCLUDE` columns do not
    /// count; unique indexes are exempt, since their width is dictated by the key).
    ///
    /// ## Why it is dangerous
    /// A best-practice note (`info`): queries rarely use more than the first few columns,
    /// while every extra column makes the index bigger and every write to the table
    /// slower, and the index takes longer to build.
    ///
    /// ## What to do instead
    /// A narrower index, most selective column first; move columns only needed for
    /// index-only scans into `INCLUDE (…)`. ratchet's `create_index` builds it
    /// concurrently.
    ///
    /// ## Example
    /// ```sql
    /// CREATE INDEX orders_search ON orders (tenant_id, status, created_at, user_id);
    /// ```
    code: "C6",
    name: "too-many-index-columns",
    severity: Info,
    category: Policy,
    summary: "non-unique index with more than three columns",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::IndexStmt(index) = &stmt.node else {
            continue;
        };
        let count = index.index_params.len();
        if index.unique || count <= MAX_COLUMNS {
            continue;
        }
        let table = index
            .relation
            .as_ref()
            .map(ast::range_var_name)
            .map(|t| t.to_string())
            .unwrap_or_default();
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!("index on `{table}` has {count} key columns: every write pays for them, queries rarely use more than the first few"),
            )
            .help("use a narrower index (most selective column first) and move columns needed only for index-only scans into INCLUDE (…)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_a_wide_index() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE INDEX CONCURRENTLY orders_search ON orders (tenant_id, status, created_at, user_id);"
        ));
    }

    #[test]
    fn ignores_unique_and_narrow_indexes() {
        lint_ok(
            &RULE,
            "CREATE UNIQUE INDEX CONCURRENTLY k ON orders (tenant_id, a, b, c);\nCREATE INDEX CONCURRENTLY i ON orders (tenant_id, status, created_at) INCLUDE (user_id);",
        );
    }
}
