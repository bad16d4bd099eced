//! A2 `add-column-stored-generated`.

use pg_query::protobuf::ConstrType;

use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD COLUMN … GENERATED ALWAYS AS (…) STORED` on an existing table,
    /// and a `VIRTUAL` generated column (PG 18's default when neither keyword is given) when
    /// the target is older than PostgreSQL 18, where the statement fails.
    ///
    /// ## Why it is dangerous
    /// Every row must get its computed value, so the table is rewritten under an ACCESS
    /// EXCLUSIVE lock (no reads or writes). Stored generated columns exist since PG 12.
    /// PG 18 adds VIRTUAL generated columns, computed when read: adding one does not rewrite
    /// the table, so on PG ≥ 18 it is not reported.
    ///
    /// ## What to do instead
    /// Add a nullable column, fill it from a trigger, backfill in batches — the ratchet
    /// operation `add_column` with `up` set to the expression does this. On PG ≥ 18 use
    /// `VIRTUAL` if the value need not be stored.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE people ADD COLUMN full_name text GENERATED ALWAYS AS (first || ' ' || last) STORED;
    /// ```
    code: "A2",
    name: "add-column-stored-generated",
    severity: Error,
    summary: "ADD COLUMN … GENERATED ALWAYS AS (…) STORED rewrites the table under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::added_columns_with(cx, ConstrType::ConstrGenerated) {
        let Some(col) = c.column_def() else { continue };
        if is_virtual(col) {
            if !cx.pg_version().at_least(18) {
                sink.push(
                    Diagnostic::new(
                        c.stmt.span,
                        format!("VIRTUAL generated column `{}` needs PostgreSQL 18; on PostgreSQL {} the statement fails", col.colname, cx.pg_version()),
                    )
                    .help("on PostgreSQL < 18 add a nullable column kept up to date by a trigger and backfill it in batches. ratchet operation: `add_column` with `up`"),
                );
            }
            continue;
        }
        let virtual_ok = if cx.pg_version().at_least(18) {
            " On PG ≥ 18 a VIRTUAL column avoids the rewrite."
        } else {
            ""
        };
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("adding stored generated column `{}` rewrites table `{}`{} under an {AEL}", col.colname, c.table, cx.size_note(&c.table)),
            )
            .help(format!(
                "add a nullable column kept up to date by a trigger and backfill it in batches. ratchet operation: `add_column` with `up`.{virtual_ok}"
            ))
            .maybe_severity(cx.size_severity(&c.table)),
        );
    }
}

/// A generated column that is VIRTUAL (`generated_kind` `v`; PG 18's default).
fn is_virtual(col: &pg_query::protobuf::ColumnDef) -> bool {
    crate::ast::column_constraints(col).any(|k| {
        crate::ast::constr_type(k) == ConstrType::ConstrGenerated && k.generated_kind == "v"
    })
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE people ADD COLUMN full_name text GENERATED ALWAYS AS (first || ' ' || last) STORED;"
        ));
    }

    // Issue #10: PostgreSQL 18 syntax parses; a VIRTUAL column does not rewrite.
    #[test]
    fn virtual_on_pg18_is_fine() {
        let pg18 = pg(18);
        for sql in [
            "ALTER TABLE people ADD COLUMN full_name text GENERATED ALWAYS AS (first || ' ' || last) VIRTUAL;",
            "ALTER TABLE people ADD COLUMN full_name text GENERATED ALWAYS AS (first || ' ' || last);",
        ] {
            lint_ok_with(&RULE, sql, &pg18, None);
        }
    }

    #[test]
    fn virtual_before_pg18_fails_to_run() {
        for major in [14, 15, 16, 17] {
            let out = lint_errors_with(
                &RULE,
                "ALTER TABLE people ADD COLUMN full_name text GENERATED ALWAYS AS (first || last) VIRTUAL;",
                &pg(major),
                None,
            );
            assert!(out.contains(&format!("on PostgreSQL {major} the statement fails")), "{out}");
        }
    }

    #[test]
    fn stored_fires_on_every_version() {
        for major in 14..=18 {
            lint_errors_with(
                &RULE,
                "ALTER TABLE people ADD COLUMN full_name text GENERATED ALWAYS AS (first || last) STORED;",
                &pg(major),
                None,
            );
        }
    }

    #[test]
    fn in_create_table_is_fine() {
        lint_ok(&RULE, "CREATE TABLE people (first text, last text, full_name text GENERATED ALWAYS AS (first || last) STORED);");
    }

    #[test]
    fn plain_column_is_fine() {
        lint_ok(&RULE, "ALTER TABLE people ADD COLUMN full_name text;");
    }
}
