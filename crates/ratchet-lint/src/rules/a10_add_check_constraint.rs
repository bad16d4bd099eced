//! A10 `add-check-constraint`.

use pg_query::protobuf::ConstrType;

use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL, NOT_VALID_HELP};
use crate::{ast, Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD CONSTRAINT … CHECK (…)` without `NOT VALID` on an existing table,
    /// and an inline `CHECK` on `ADD COLUMN`.
    ///
    /// ## Why it is dangerous
    /// The ACCESS EXCLUSIVE lock is held while every row is checked: no reads or writes for
    /// the whole scan. NOT VALID for CHECK constraints exists since PG 9.2.
    ///
    /// ## What to do instead
    /// Add it `NOT VALID` (brief lock, no scan; new rows are checked), then
    /// `VALIDATE CONSTRAINT` in a separate transaction: SHARE UPDATE EXCLUSIVE, reads and
    /// writes continue. The ratchet operation `create_constraint` does this. Autofix: adds
    /// `NOT VALID` and the `VALIDATE` statement (as a comment for a later migration when the
    /// file runs in a transaction).
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0);
    /// -- good
    /// ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;
    /// ALTER TABLE orders VALIDATE CONSTRAINT positive;
    /// ```
    code: "A10",
    name: "add-check-constraint",
    severity: Error,
    summary: "ADD CONSTRAINT … CHECK without NOT VALID scans the table under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::added_constraints(cx, ConstrType::ConstrCheck) {
        let Some(k) = c.constraint() else { continue };
        if k.skip_validation {
            continue;
        }
        let mut d = Diagnostic::new(
            c.stmt.span,
            format!(
                "adding CHECK `{}` validates every row of `{}`{} while holding an {AEL}",
                k.conname,
                c.table,
                cx.size_note(&c.table)
            ),
        )
        .help(NOT_VALID_HELP)
        .maybe_severity(cx.size_severity(&c.table));
        if let Some(fix) = common::not_valid_fix(cx, &c, &k.conname) {
            d = d.fix(fix);
        }
        sink.push(d);
    }
    for c in common::added_columns_with(cx, ConstrType::ConstrCheck) {
        let Some(col) = c.column_def() else { continue };
        if ast::column_default(col).is_none() {
            // All existing rows are NULL in the new column, which satisfies any CHECK that
            // does not test for NULL; PostgreSQL still verifies it, but cheaply.
            continue;
        }
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("ADD COLUMN `{}` with a CHECK and a DEFAULT verifies every row of `{}` while holding an {AEL}", col.colname, c.table),
            )
            .help(format!("add the column first, then the CHECK separately: {NOT_VALID_HELP}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_with_fix() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0);"
        ));
    }

    #[test]
    fn not_valid_is_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;",
        );
    }

    #[test]
    fn new_table_is_fine() {
        lint_ok(&RULE, "CREATE TABLE orders (amount int);\nALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0);");
    }
}
