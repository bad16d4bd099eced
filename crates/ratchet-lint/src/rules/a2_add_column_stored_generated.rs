//! A2 `add-column-stored-generated`.

use pg_query::protobuf::ConstrType;

use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD COLUMN … GENERATED ALWAYS AS (…) STORED` on an existing table.
    ///
    /// ## Why it is dangerous
    /// Every row must get its computed value, so the table is rewritten under an ACCESS
    /// EXCLUSIVE lock (no reads or writes). Stored generated columns exist since PG 12.
    /// PG 18 adds VIRTUAL generated columns, which are added without a rewrite.
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

    #[test]
    fn in_create_table_is_fine() {
        lint_ok(&RULE, "CREATE TABLE people (first text, last text, full_name text GENERATED ALWAYS AS (first || last) STORED);");
    }

    #[test]
    fn plain_column_is_fine() {
        lint_ok(&RULE, "ALTER TABLE people ADD COLUMN full_name text;");
    }
}
