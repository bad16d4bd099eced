//! A11 `add-foreign-key`.

use pg_query::protobuf::ConstrType;

use crate::ast;
use crate::rule::{Diagnostic, Severity};
use crate::rules::common::{self, NOT_VALID_HELP};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD [CONSTRAINT …] FOREIGN KEY` without `NOT VALID` on an existing
    /// table (error), and `ADD COLUMN … REFERENCES` (warning: the new column is all NULL, so
    /// the check is quick, but both tables are still locked against writes).
    ///
    /// ## Why it is dangerous
    /// A SHARE ROW EXCLUSIVE lock is taken on **both** tables while every row is checked:
    /// writes to the table and to the referenced table are blocked for the whole scan.
    /// NOT VALID foreign keys exist since PG 9.1.
    ///
    /// ## What to do instead
    /// `NOT VALID`, then `VALIDATE CONSTRAINT` in a later transaction (SHARE UPDATE EXCLUSIVE
    /// on the table, ROW SHARE on the referenced one). ratchet operation: `create_constraint`
    /// with `type: foreign_key`. Autofix as for CHECK (A10).
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
    /// -- good
    /// ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
    /// ```
    code: "A11",
    name: "add-foreign-key",
    severity: Error,
    summary: "ADD FOREIGN KEY without NOT VALID blocks writes on both tables during the validating scan",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::added_constraints(cx, ConstrType::ConstrForeign) {
        let Some(k) = c.constraint() else { continue };
        if k.skip_validation {
            continue;
        }
        let referenced = k
            .pktable
            .as_ref()
            .map(ast::range_var_name)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut d = Diagnostic::new(
            c.stmt.span,
            format!(
                "adding FOREIGN KEY `{}` checks every row of `{}`{} while holding SHARE ROW EXCLUSIVE locks on `{}` and `{referenced}` (blocks writes to both)",
                k.conname, c.table, cx.size_note(&c.table), c.table
            ),
        )
        .help(NOT_VALID_HELP)
        .maybe_severity(cx.size_severity(&c.table));
        if let Some(fix) = common::not_valid_fix(cx, &c, &k.conname) {
            d = d.fix(fix);
        }
        sink.push(d);
    }
    for c in common::added_columns_with(cx, ConstrType::ConstrForeign) {
        let Some(col) = c.column_def() else { continue };
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("ADD COLUMN `{}` … REFERENCES locks `{}` and the referenced table against writes while the key is checked", col.colname, c.table),
            )
            .help(format!("add the column, then the foreign key separately: {NOT_VALID_HELP}"))
            .severity(Severity::Warning),
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
            "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);"
        ));
    }

    #[test]
    fn not_valid_is_fine() {
        lint_ok(&RULE, "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;");
    }

    #[test]
    fn create_table_with_fk_is_fine() {
        lint_ok(
            &RULE,
            "CREATE TABLE orders (id bigint, user_id bigint REFERENCES users (id));",
        );
    }
}
