//! A3 `add-column-serial`.

use pg_query::protobuf::AlterTableType;

use crate::ast;
use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD COLUMN … serial` (also `bigserial`, `smallserial`, `serial2/4/8`)
    /// on an existing table.
    ///
    /// ## Why it is dangerous
    /// A serial column's default is `nextval(…)`, which is volatile: every existing row gets
    /// its own value, so the table is rewritten under an ACCESS EXCLUSIVE lock (no reads or
    /// writes) on every PostgreSQL version.
    ///
    /// ## What to do instead
    /// Add a nullable `bigint`, create the sequence and `SET DEFAULT nextval(…)` for new
    /// rows, then backfill existing rows in batches (ratchet operation `add_column` with
    /// `up`), or build a new table and copy.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE events ADD COLUMN seq bigserial;
    /// ```
    code: "A3",
    name: "add-column-serial",
    severity: Error,
    summary: "ADD COLUMN of a serial type rewrites the table under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::cmds_of(cx, AlterTableType::AtAddColumn) {
        let Some(col) = c.column_def() else { continue };
        let Some(ty) = col.type_name.as_ref().map(ast::type_base_name) else {
            continue;
        };
        if !matches!(
            ty.as_str(),
            "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
        ) {
            continue;
        }
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!(
                    "adding `{}` as {ty} fills every row from nextval(), rewriting table `{}`{} under an {AEL}",
                    col.colname,
                    c.table,
                    cx.size_note(&c.table)
                ),
            )
            .help("add a nullable bigint, SET DEFAULT nextval(…) for new rows, backfill in batches. ratchet operation: `add_column` with `up`")
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
            "ALTER TABLE events ADD COLUMN seq bigserial;"
        ));
    }

    #[test]
    fn bigint_is_fine() {
        lint_ok(&RULE, "ALTER TABLE events ADD COLUMN seq bigint;");
    }

    #[test]
    fn serial_in_create_table_is_fine() {
        lint_ok(&RULE, "CREATE TABLE events (id bigserial PRIMARY KEY);");
    }
}
