//! B5 `rename-column`: renaming a column under running application instances.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … RENAME COLUMN` on a table that existed before this migration.
    ///
    /// ## Why it is dangerous
    /// The rename is instant (a brief ACCESS EXCLUSIVE lock), and that is the problem: the
    /// moment it commits, every running application instance that names the old column
    /// fails. There is no window in which old and new code both work.
    ///
    /// ## What to do instead
    /// Use ratchet's `rename_column` operation: the old version keeps seeing the old name
    /// through its versioned view while the new version sees the new one, and the
    /// physical rename happens at `complete`. Without ratchet: add a new column, dual
    /// write, backfill, switch reads, drop the old column — or rename only in the ORM
    /// mapping.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users RENAME COLUMN email TO email_address;
    /// ```
    /// becomes `- rename_column: { table: users, from: email, to: email_address }`.
    code: "B5",
    name: "rename-column",
    severity: Error,
    summary: "RENAME COLUMN breaks every running instance that uses the old name",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::RenameStmt(r) = &stmt.node else {
            continue;
        };
        if ast::object_type(r.rename_type) != ObjectType::ObjectColumn
            || ast::object_type(r.relation_type) != ObjectType::ObjectTable
        {
            continue;
        }
        let Some(table) = r.relation.as_ref().map(ast::range_var_name) else {
            continue;
        };
        if cx.is_new_table(&table, stmt) {
            continue;
        }
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!(
                    "renaming column `{}` of `{table}` to `{}` breaks every running application instance that uses the old name",
                    r.subname, r.newname
                ),
            )
            .help(format!(
                "use ratchet's `rename_column` (table: {}, from: {}, to: {}): each application version sees its own name through its view",
                table.name, r.subname, r.newname
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_rename_column() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE users RENAME COLUMN email TO email_address;"
        ));
    }

    #[test]
    fn ignores_a_table_created_in_the_same_file() {
        lint_ok(
            &RULE,
            "CREATE TABLE t (a int);\nALTER TABLE t RENAME COLUMN a TO b;",
        );
    }

    #[test]
    fn ignores_a_view_column_rename() {
        lint_ok(&RULE, "ALTER VIEW v RENAME COLUMN a TO b;");
    }
}
