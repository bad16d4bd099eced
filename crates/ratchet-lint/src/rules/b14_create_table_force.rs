//! B14 `create-table-force`: DROP TABLE followed by CREATE TABLE of the same name.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::ast;
use crate::context::created_table;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `DROP TABLE [IF EXISTS] t` followed later in the file by `CREATE TABLE t` — the SQL
    /// that Rails' `create_table … force: true` (and "recreate" scripts) produce — when
    /// `t` was not created earlier in the same file.
    ///
    /// ## Why it is dangerous
    /// If the table exists in production, its data is destroyed and replaced by an empty
    /// table; the migration passes in development, where the table is empty anyway.
    ///
    /// ## What to do instead
    /// Create the table only if it is new (`CREATE TABLE` without the drop), or drop it
    /// explicitly in a contract migration after checking it is unused.
    ///
    /// ## Example
    /// ```sql
    /// DROP TABLE IF EXISTS settings;
    /// CREATE TABLE settings (key text PRIMARY KEY, value text);
    /// ```
    code: "B14",
    name: "create-table-force",
    severity: Error,
    summary: "DROP TABLE then CREATE TABLE of the same name destroys existing data",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::DropStmt(drop) = &stmt.node else {
            continue;
        };
        if ast::object_type(drop.remove_type) != ObjectType::ObjectTable {
            continue;
        }
        for table in ast::drop_objects(drop) {
            if cx.is_new_table(&table, stmt) {
                continue;
            }
            let recreated = cx
                .after(stmt)
                .iter()
                .any(|s| created_table(&s.node).is_some_and(|t| t.same_as(&table)));
            if !recreated {
                continue;
            }
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!(
                        "`{table}` is dropped and created again: if it exists in production, its data is destroyed"
                    ),
                )
                .help("create the table only when it is new, or drop it explicitly in a contract migration after checking it is unused"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_drop_then_create() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "DROP TABLE IF EXISTS settings;\nCREATE TABLE settings (key text PRIMARY KEY, value text);"
        ));
    }

    #[test]
    fn ignores_dropping_another_table() {
        lint_ok(
            &RULE,
            "DROP TABLE old_settings;\nCREATE TABLE settings (key text PRIMARY KEY, value text);",
        );
    }
}
