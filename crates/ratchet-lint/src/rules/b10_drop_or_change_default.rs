//! B10 `drop-or-change-default`: changing what inserts that omit a column get.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::ast::{self, QualifiedName};
use crate::context::Statement;
use crate::{Context, Diagnostic, Severity, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER COLUMN … DROP DEFAULT` (`warning`) and `ALTER COLUMN … SET DEFAULT` (`info`)
    /// on a column that existed before this migration (a column added or a table created
    /// earlier in the file is exempt: setting the default after adding the column is the
    /// safe pattern of rule A1).
    ///
    /// ## Why it is dangerous
    /// Inserts of the previous application version that omit the column now get NULL (and
    /// fail on a NOT NULL column) or a different value. With Rails partial inserts off,
    /// the stale default cached by the old version is written instead.
    ///
    /// ## What to do instead
    /// Set defaults before the application relies on them, and have the application send
    /// explicit values before a default is dropped. ratchet's `alter_column` with
    /// `default:` changes it for the new version only.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users ALTER COLUMN status DROP DEFAULT;
    /// ```
    code: "B10",
    name: "drop-or-change-default",
    severity: Warning,
    summary: "DROP/SET DEFAULT changes what inserts that omit the column get",
    check: check,
}

fn column_added_before(
    cx: &Context<'_>,
    table: &QualifiedName,
    column: &str,
    stmt: &Statement,
) -> bool {
    cx.before(stmt).iter().any(|s| {
        let NodeEnum::AlterTableStmt(_) = &s.node else {
            return false;
        };
        let Some(alter) = ast::alter_table(&s.node) else {
            return false;
        };
        ast::alter_table_name(alter).is_some_and(|t| t.same_as(table))
            && ast::alter_cmds(alter).any(|c| {
                ast::cmd_type(c) == AlterTableType::AtAddColumn
                    && ast::cmd_column_def(c).is_some_and(|d| d.colname == column)
            })
    })
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
            ast::alter_cmds(alter).filter(|c| ast::cmd_type(c) == AlterTableType::AtColumnDefault)
        {
            if column_added_before(cx, &table, &cmd.name, stmt) {
                continue;
            }
            let diagnostic = if cmd.def.is_none() {
                Diagnostic::new(
                    stmt.span,
                    format!(
                        "dropping the default of `{table}.{}`: inserts that omit the column (the previous application version) now get NULL, or fail if it is NOT NULL",
                        cmd.name
                    ),
                )
                .help("make every writer send an explicit value first; ratchet's `alter_column` with `default: null` changes it for the new version only")
            } else {
                Diagnostic::new(
                    stmt.span,
                    format!(
                        "changing the default of `{table}.{}`: inserts that omit the column get a different value than the previous application version expects",
                        cmd.name
                    ),
                )
                .help("check that no writer relies on the old default; ratchet's `alter_column` with `default:` changes it for the new version only")
                .severity(Severity::Info)
            };
            sink.push(diagnostic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn drop_default_is_a_warning() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE users ALTER COLUMN status DROP DEFAULT;"
        ));
    }

    #[test]
    fn set_default_is_info() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE users ALTER COLUMN status SET DEFAULT 'new';"
        ));
    }

    #[test]
    fn ignores_set_default_after_adding_the_column() {
        lint_ok(&RULE, "ALTER TABLE users ADD COLUMN score bigint;\nALTER TABLE users ALTER COLUMN score SET DEFAULT 0;");
    }
}
