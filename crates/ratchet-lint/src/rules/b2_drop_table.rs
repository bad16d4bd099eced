//! B2 `drop-table`: dropping a table that running application versions still use.

use pg_query::protobuf::{DropStmt, ObjectType};
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `DROP TABLE` of a table that was not created earlier in the same file.
    ///
    /// ## Why it is dangerous
    /// The data is gone, and every client that still queries the table fails at once.
    /// During a rolling deploy the previous application version is still running; a
    /// rollback of the application cannot bring the table back.
    ///
    /// ## What to do instead
    /// Drop tables in the contract phase, after reads and writes have stopped and a
    /// backup (or a check that the table is empty) exists. ratchet's `drop_table`
    /// operation hides the table from the new version at `start` and drops it only at
    /// `complete`, when no client uses the old version any more.
    ///
    /// ## Example
    /// ```sql
    /// DROP TABLE legacy_sessions;
    /// ```
    /// becomes `- drop_table: { name: legacy_sessions }`.
    code: "B2",
    name: "drop-table",
    severity: Warning,
    summary: "DROP TABLE loses data and breaks clients that still use the table",
    check: check,
}

pub(crate) fn drop_stmt<'n>(node: &'n NodeEnum, kinds: &[ObjectType]) -> Option<&'n DropStmt> {
    match node {
        NodeEnum::DropStmt(d) if kinds.contains(&ast::object_type(d.remove_type)) => Some(d),
        _ => None,
    }
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let Some(drop) = drop_stmt(&stmt.node, &[ObjectType::ObjectTable]) else {
            continue;
        };
        for table in ast::drop_objects(drop) {
            if cx.is_new_table(&table, stmt) {
                continue;
            }
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!("dropping table `{table}` loses its data and breaks every client that still queries it"),
                )
                .help(
                    "drop it in a contract step once nothing reads or writes it (keep a backup, or check that it is empty); \
                     ratchet's `drop_table` hides it from the new version at `start` and drops it at `complete`",
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
    fn fires_on_drop_table() {
        insta::assert_snapshot!(lint_errors(&RULE, "DROP TABLE IF EXISTS legacy_sessions;"));
    }

    #[test]
    fn ignores_a_table_created_in_the_same_file() {
        lint_ok(
            &RULE,
            "CREATE TABLE tmp_import (id bigint);\nDROP TABLE tmp_import;",
        );
    }

    #[test]
    fn ignores_drop_view() {
        lint_ok(&RULE, "DROP VIEW legacy_sessions;");
    }
}
