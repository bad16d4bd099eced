//! B1 `drop-column`: dropping a column that running application versions still use.

use pg_query::protobuf::AlterTableType;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … DROP COLUMN` on a table that existed before this migration.
    ///
    /// ## Why it is dangerous
    /// The drop itself is quick (a brief ACCESS EXCLUSIVE lock, no rewrite), but every
    /// application instance still running the previous version breaks as soon as it reads
    /// or writes the column: ORMs such as Rails and Django cache the column list and name
    /// every column in their INSERTs and SELECTs. A rollback of the application cannot
    /// bring the column back, and its data is gone.
    ///
    /// ## What to do instead
    /// Stop using the column first (Rails `ignored_columns`, remove it from the model),
    /// deploy, and drop it in a later contract step. ratchet's `drop_column` operation does
    /// exactly that: the column disappears from the new version's view at `start` and is
    /// physically dropped only at `complete`, once no client uses the old version.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users DROP COLUMN legacy_flag;
    /// ```
    /// becomes
    /// ```yaml
    /// operations:
    ///   - drop_column: { table: users, column: legacy_flag }
    /// ```
    code: "B1",
    name: "drop-column",
    severity: Warning,
    summary: "DROP COLUMN breaks running application versions and loses data",
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
        for cmd in ast::alter_cmds(alter) {
            if ast::cmd_type(cmd) != AlterTableType::AtDropColumn {
                continue;
            }
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!(
                        "dropping column `{}` of `{table}` breaks application instances that still read or write it, and its data is lost",
                        cmd.name
                    ),
                )
                .help(
                    "stop using the column, deploy, then drop it in a later migration; ratchet's `drop_column` \
                     hides it from the new version at `start` and drops it only at `complete`",
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_drop_column() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE users DROP COLUMN legacy_flag;"
        ));
    }

    #[test]
    fn ignores_a_table_created_in_the_same_file() {
        lint_ok(
            &RULE,
            "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;",
        );
    }

    #[test]
    fn ignores_drop_constraint() {
        lint_ok(
            &RULE,
            "ALTER TABLE users DROP CONSTRAINT users_legacy_check;",
        );
    }
}
