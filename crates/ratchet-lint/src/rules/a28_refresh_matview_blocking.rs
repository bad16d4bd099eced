//! A28 `refresh-matview-blocking`.

use pg_query::NodeEnum;

use crate::ast;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` on a view not created in the same
    /// file. (No other linter has this rule.)
    ///
    /// ## Why it is dangerous
    /// A plain refresh holds an ACCESS EXCLUSIVE lock on the materialized view: every read of
    /// it blocks until the query behind it has run in full.
    ///
    /// ## What to do instead
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY` (PG ≥ 9.4) takes an EXCLUSIVE lock, so reads
    /// continue; it needs a unique index on the view (create one first, concurrently).
    ///
    /// ## Example
    /// ```sql
    /// REFRESH MATERIALIZED VIEW daily_totals;               -- reported
    /// REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals;  -- fine
    /// ```
    code: "A28",
    name: "refresh-matview-blocking",
    severity: Warning,
    summary: "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks every read of the view",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::RefreshMatViewStmt(r) = &stmt.node else {
            continue;
        };
        let Some(view) = r.relation.as_ref().map(ast::range_var_name) else {
            continue;
        };
        if r.concurrent || r.skip_data || cx.is_new_table(&view, stmt) {
            continue;
        }
        sink.push(
            Diagnostic::new(stmt.span, format!("REFRESH MATERIALIZED VIEW `{view}` holds an ACCESS EXCLUSIVE lock: every read of it blocks until the refresh ends"))
                .help("use REFRESH MATERIALIZED VIEW CONCURRENTLY (reads continue); it needs a unique index on the view"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "REFRESH MATERIALIZED VIEW daily_totals;"
        ));
    }

    #[test]
    fn concurrently_is_fine() {
        lint_ok(
            &RULE,
            "REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals;",
        );
    }

    #[test]
    fn view_created_in_file_is_fine() {
        lint_ok(&RULE, "CREATE MATERIALIZED VIEW d AS SELECT 1 AS x WITH NO DATA;\nREFRESH MATERIALIZED VIEW d;");
    }
}
