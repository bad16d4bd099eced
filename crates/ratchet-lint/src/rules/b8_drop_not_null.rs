//! B8 `drop-not-null`: making a column nullable under readers that assume it is not.

use pg_query::protobuf::AlterTableType;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER COLUMN … DROP NOT NULL` on a table that existed before this migration.
    ///
    /// ## Why it is dangerous
    /// It is instant, but the previous application version (and PL/pgSQL code, views and
    /// reports) was written for a column that is never NULL; once the new version writes
    /// NULLs, the old one crashes on them — typically in code that no test exercises.
    ///
    /// ## What to do instead
    /// Keep NOT NULL and use a marker value, or use ratchet's `alter_column` with
    /// `nullable: true` and a `down` expression (e.g. `COALESCE(col, '')`) so the old
    /// version never sees a NULL.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users ALTER COLUMN phone DROP NOT NULL;
    /// ```
    code: "B8",
    name: "drop-not-null",
    severity: Warning,
    summary: "DROP NOT NULL hands NULLs to readers that do not expect them",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let Some(alter) = ast::alter_table(&stmt.node) else {
            continue;
        };
        let Some(table) = ast::alter_table_name(alter) else {
            continue;
        };
        if cx.is_new_table(&table, stmt) {
            continue;
        }
        for cmd in
            ast::alter_cmds(alter).filter(|c| ast::cmd_type(c) == AlterTableType::AtDropNotNull)
        {
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!(
                        "column `{}` of `{table}` becomes nullable: code written for the NOT NULL column (the previous application version, functions, views) receives NULLs",
                        cmd.name
                    ),
                )
                .help(format!(
                    "keep NOT NULL and use a marker value, or use ratchet's `alter_column` with `nullable: true` and `down: COALESCE({}, <value>)`",
                    cmd.name
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_drop_not_null() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE users ALTER COLUMN phone DROP NOT NULL;"
        ));
    }

    #[test]
    fn ignores_set_not_null() {
        lint_ok(&RULE, "ALTER TABLE users ALTER COLUMN phone SET NOT NULL;");
    }
}
