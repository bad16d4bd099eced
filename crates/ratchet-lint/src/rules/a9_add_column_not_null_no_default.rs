//! A9 `add-column-not-null-no-default`.

use pg_query::protobuf::{AlterTableType, ConstrType};

use crate::ast;
use crate::rule::Diagnostic;
use crate::rules::common;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD COLUMN … NOT NULL` without a `DEFAULT` on an existing table
    /// (identity, serial and generated columns fill themselves and are other rules' concern).
    ///
    /// ## Why it is dangerous
    /// On any non-empty table the statement fails with 23502 (not_null_violation): the
    /// deploy breaks. If it succeeds (empty table), old application versions that insert
    /// without the column start failing.
    ///
    /// ## What to do instead
    /// Add the column nullable (or NOT NULL with a constant DEFAULT, metadata-only on
    /// PG ≥ 11), backfill, then SET NOT NULL via a validated CHECK (A8). ratchet operation:
    /// `add_column` with `up` (and `nullable: false`).
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;
    /// -- good (PG ≥ 11)
    /// ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL DEFAULT 0;
    /// ```
    code: "A9",
    name: "add-column-not-null-no-default",
    severity: Error,
    summary: "ADD COLUMN … NOT NULL without DEFAULT fails on a non-empty table and breaks old inserts",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::cmds_of(cx, AlterTableType::AtAddColumn) {
        let Some(col) = c.column_def() else { continue };
        let kinds: Vec<ConstrType> = ast::column_constraints(col).map(ast::constr_type).collect();
        let not_null = col.is_not_null
            || kinds.contains(&ConstrType::ConstrNotnull)
            || kinds.contains(&ConstrType::ConstrPrimary);
        let fills = ast::column_default(col).is_some()
            || kinds
                .iter()
                .any(|k| matches!(k, ConstrType::ConstrIdentity | ConstrType::ConstrGenerated))
            || col
                .type_name
                .as_ref()
                .is_some_and(|t| ast::type_base_name(t).contains("serial"));
        if !not_null || fills {
            continue;
        }
        if cx.table_info(&c.table).is_some_and(|t| t.rows == 0.0) {
            continue;
        }
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!(
                    "ADD COLUMN `{}` NOT NULL without DEFAULT fails (23502) if `{}` has rows, and old inserts that omit it fail",
                    col.colname, c.table
                ),
            )
            .help(
                "add it nullable (or NOT NULL with a constant DEFAULT on PG ≥ 11), backfill, then SET NOT NULL via a validated \
                 CHECK. ratchet operation: `add_column` with `up`",
            ),
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
            "ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;"
        ));
    }

    #[test]
    fn with_default_is_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL DEFAULT 0;",
        );
    }

    #[test]
    fn nullable_is_fine() {
        lint_ok(&RULE, "ALTER TABLE users ADD COLUMN tenant_id bigint;");
    }
}
