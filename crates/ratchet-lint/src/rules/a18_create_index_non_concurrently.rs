//! A18 `create-index-non-concurrently`.

use pg_query::NodeEnum;

use crate::ast;
use crate::rule::{Diagnostic, Edit, Fix};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `CREATE [UNIQUE] INDEX` without `CONCURRENTLY` on a table that already exists.
    /// A table created earlier in the same file is exempt: it is empty and no session uses it.
    ///
    /// ## Why it is dangerous
    /// A plain `CREATE INDEX` holds a SHARE lock on the table for the whole build: reads
    /// continue, but every `INSERT`, `UPDATE` and `DELETE` waits until the index is built —
    /// minutes to hours on a large table. All PostgreSQL versions.
    ///
    /// With `--database-url`, the finding is `info` on a tiny table and `error` on a large one.
    ///
    /// ## What to do instead
    /// `CREATE INDEX CONCURRENTLY` takes SHARE UPDATE EXCLUSIVE (reads and writes continue).
    /// It cannot run inside a transaction block, so put it in its own migration run without a
    /// transaction. If it fails it leaves an INVALID index: drop it and retry. The ratchet
    /// operation `create_index` does all of this. Autofix: adds `CONCURRENTLY` when the
    /// statement is not inside a transaction.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE INDEX users_email_idx ON users (email);
    /// -- good
    /// CREATE INDEX CONCURRENTLY users_email_idx ON users (email);
    /// ```
    code: "A18",
    name: "create-index-non-concurrently",
    severity: Error,
    summary: "CREATE INDEX without CONCURRENTLY on an existing table blocks writes for the whole build",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::IndexStmt(index) = &stmt.node else {
            continue;
        };
        let Some(rel) = &index.relation else { continue };
        let table = ast::range_var_name(rel);
        if index.concurrent || cx.is_new_table(&table, stmt) {
            continue;
        }
        // Partitioned parents cannot be indexed concurrently: A19 has the right advice.
        if cx.table_info(&table).is_some_and(|t| t.partitioned) || !rel.inh {
            continue;
        }
        let mut d = Diagnostic::new(
            stmt.span,
            format!(
                "CREATE INDEX on existing table `{table}`{} takes a SHARE lock (blocks writes; reads continue) for the whole index build",
                cx.size_note(&table)
            ),
        )
        .help(
            "use CREATE INDEX CONCURRENTLY (reads and writes continue) in a migration that runs outside a transaction; \
             if it fails, drop the INVALID index and retry. ratchet operation: `create_index` (builds concurrently)",
        )
        .maybe_severity(cx.size_severity(&table));
        if !stmt.tx.in_transaction {
            if let Some(kw) = cx.find_word(stmt.span, "INDEX") {
                d = d.fix(Fix::new(
                    "add CONCURRENTLY",
                    vec![Edit::insert(kw.end, " CONCURRENTLY")],
                ));
            }
        }
        sink.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_on_existing_table() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE INDEX users_email_idx ON users (email);"
        ));
    }

    #[test]
    fn fires_on_unique_index_inside_begin_without_fix() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "BEGIN;\nCREATE UNIQUE INDEX u ON users (email);\nCOMMIT;"
        ));
    }

    #[test]
    fn concurrently_is_fine() {
        lint_ok(
            &RULE,
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
        );
    }

    #[test]
    fn table_created_earlier_in_file_is_fine() {
        lint_ok(&RULE, "CREATE TABLE users (id bigint, email text);\nCREATE INDEX users_email_idx ON users (email);");
    }

    #[test]
    fn on_only_parent_is_not_this_rule() {
        lint_ok(
            &RULE,
            "CREATE INDEX measurement_idx ON ONLY measurement (logdate);",
        );
    }
}
