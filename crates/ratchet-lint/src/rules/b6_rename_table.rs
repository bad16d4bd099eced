//! B6 `rename-table`: renaming a table under running application instances.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … RENAME TO` on a table that existed before this migration, unless a
    /// later statement of the file creates a view under the old name (a compatibility
    /// view, as Atlas also accepts).
    ///
    /// ## Why it is dangerous
    /// Instant, and every running instance that queries the old name fails at once.
    ///
    /// ## What to do instead
    /// Use ratchet's `rename_table` operation: each application version sees its own name
    /// through its versioned view. Without ratchet, leave a view under the old name
    /// during the transition.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users RENAME TO customers;
    /// -- or, with a compatibility view:
    /// ALTER TABLE users RENAME TO customers;
    /// CREATE VIEW users AS SELECT * FROM customers;
    /// ```
    code: "B6",
    name: "rename-table",
    severity: Error,
    summary: "RENAME TO breaks every running instance that uses the old table name",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::RenameStmt(r) = &stmt.node else {
            continue;
        };
        if ast::object_type(r.rename_type) != ObjectType::ObjectTable {
            continue;
        }
        let Some(table) = r.relation.as_ref().map(ast::range_var_name) else {
            continue;
        };
        if cx.is_new_table(&table, stmt) {
            continue;
        }
        let compat_view = cx.after(stmt).iter().any(|s| match &s.node {
            NodeEnum::ViewStmt(v) => v
                .view
                .as_ref()
                .is_some_and(|rv| ast::range_var_name(rv).same_as(&table)),
            _ => false,
        });
        if compat_view {
            continue;
        }
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!(
                    "renaming table `{table}` to `{}` breaks every running application instance that uses the old name",
                    r.newname
                ),
            )
            .help(format!(
                "use ratchet's `rename_table` (from: {}, to: {}), or create a view named `{}` over the renamed table for the transition",
                table.name, r.newname, table.name
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_rename_table() {
        insta::assert_snapshot!(lint_errors(&RULE, "ALTER TABLE users RENAME TO customers;"));
    }

    #[test]
    fn ignores_a_rename_with_a_compatibility_view() {
        lint_ok(
            &RULE,
            "ALTER TABLE users RENAME TO customers;\nCREATE VIEW users AS SELECT * FROM customers;",
        );
    }

    #[test]
    fn ignores_rename_column() {
        lint_ok(&RULE, "ALTER TABLE users RENAME COLUMN a TO b;");
    }
}
