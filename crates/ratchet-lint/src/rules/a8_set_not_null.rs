//! A8 `set-not-null`.

use pg_query::protobuf::{AlterTableType, ConstrType};

use crate::ast;

use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER COLUMN … SET NOT NULL` on an existing table, unless (PG ≥ 12) a validated
    /// `CHECK (col IS NOT NULL)` already exists — added valid or `VALIDATE`d earlier in the
    /// file or in an earlier file of the same run, or present in the catalog. Also PG 18's
    /// `ADD CONSTRAINT c NOT NULL col` without `NOT VALID`, which scans the same way.
    ///
    /// ## Why it is dangerous
    /// PostgreSQL scans the whole table to prove there are no NULLs while holding an ACCESS
    /// EXCLUSIVE lock (no reads or writes); it fails if a NULL exists. Since PG 12 the scan
    /// is skipped when a validated CHECK proves the column is not null. (PG 18 can add NOT
    /// NULL as NOT VALID directly.)
    ///
    /// ## What to do instead
    /// On PG ≥ 18: `ADD CONSTRAINT c NOT NULL col NOT VALID` (no scan), then
    /// `VALIDATE CONSTRAINT c` in a later transaction (SHARE UPDATE EXCLUSIVE). Before:
    /// `ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID`; backfill; `VALIDATE CONSTRAINT c`
    /// in a later transaction (SHARE UPDATE EXCLUSIVE); `SET NOT NULL` (no scan on PG ≥ 12);
    /// drop the CHECK. The ratchet operation `alter_column` with `nullable: false` does this.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;
    /// -- later migration:
    /// ALTER TABLE users VALIDATE CONSTRAINT email_nn;
    /// ALTER TABLE users ALTER COLUMN email SET NOT NULL;  -- no scan, not reported
    /// ```
    code: "A8",
    name: "set-not-null",
    severity: Error,
    summary: "SET NOT NULL scans the table under ACCESS EXCLUSIVE unless a validated CHECK (col IS NOT NULL) exists (PG ≥ 12)",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::added_constraints(cx, ConstrType::ConstrNotnull) {
        let Some(k) = c.constraint() else { continue };
        if k.skip_validation {
            continue;
        }
        let column = ast::key_names(&k.keys).join(", ");
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!(
                    "ADD CONSTRAINT … NOT NULL on `{}.{column}` scans the whole table{} under an {AEL}",
                    c.table,
                    cx.size_note(&c.table)
                ),
            )
            .help("add it NOT VALID (no scan), then VALIDATE CONSTRAINT in a later transaction (SHARE UPDATE EXCLUSIVE: reads and writes continue)")
            .maybe_severity(cx.size_severity(&c.table)),
        );
    }
    for c in common::cmds_of(cx, AlterTableType::AtSetNotNull) {
        let column = &c.cmd.name;
        if cx.pg_version().at_least(12) && cx.has_validated_not_null_check(&c.table, column, c.stmt)
        {
            continue;
        }
        if cx
            .table_info(&c.table)
            .and_then(|t| t.column(column))
            .is_some_and(|col| col.not_null)
        {
            continue;
        }
        let help = if cx.pg_version().at_least(12) {
            "ADD CONSTRAINT … CHECK (col IS NOT NULL) NOT VALID, backfill, VALIDATE CONSTRAINT in a later transaction, then \
             SET NOT NULL (no scan) and drop the CHECK. ratchet operation: `alter_column` with `nullable: false`"
        } else {
            "before PG 12 SET NOT NULL always scans; use a validated CHECK (col IS NOT NULL) NOT VALID instead, or upgrade. \
             ratchet operation: `alter_column` with `nullable: false`"
        };
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!(
                    "SET NOT NULL on `{}.{column}` scans the whole table{} under an {AEL}",
                    c.table,
                    cx.size_note(&c.table)
                ),
            )
            .help(help)
            .maybe_severity(cx.size_severity(&c.table)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;
    use crate::{Input, Linter, Settings};

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"
        ));
    }

    // PostgreSQL 18: a NOT NULL constraint added NOT VALID, validated later.
    #[test]
    fn pg18_not_null_constraint_needs_not_valid() {
        let out = lint_errors_with(
            &RULE,
            "ALTER TABLE users ADD CONSTRAINT email_nn NOT NULL email;",
            &pg(18),
            None,
        );
        assert!(out.contains("`users.email` scans the whole table"), "{out}");
        lint_ok_with(
            &RULE,
            "ALTER TABLE users ADD CONSTRAINT email_nn NOT NULL email NOT VALID;",
            &pg(18),
            None,
        );
    }

    #[test]
    fn validated_check_in_earlier_transaction_is_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        );
    }

    #[test]
    fn not_valid_check_alone_is_not_enough() {
        lint_errors(&RULE, "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;");
    }

    #[test]
    fn validate_in_earlier_file_is_fine() {
        let settings = Settings::default();
        let report = Linter::single(&RULE, &settings, None).lint_inputs(vec![
            Input::sql(
                "001.sql",
                "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;",
            ),
            Input::sql("002.sql", "ALTER TABLE users VALIDATE CONSTRAINT email_nn;"),
            Input::sql(
                "003.sql",
                "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            ),
        ]);
        assert_eq!(report.findings().count(), 0);
    }

    #[test]
    fn pg11_always_scans() {
        lint_errors_with(
            &RULE,
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL);\nALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            &pg(11),
            None,
        );
    }
}
