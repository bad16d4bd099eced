//! B3 `drop-schema-or-database`: dropping a whole schema or database.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `DROP SCHEMA` (of a schema not created earlier in the file) and `DROP DATABASE`.
    ///
    /// ## Why it is dangerous
    /// Every table, view, function and type inside goes at once — mass data loss — and
    /// with `CASCADE` so does everything elsewhere that depends on them. No migration
    /// should need this against a database that serves traffic.
    ///
    /// ## What to do instead
    /// Drop the individual objects in contract migrations (ratchet's `drop_table`), after
    /// a backup, or do it by hand outside the migration history.
    ///
    /// ## Example
    /// ```sql
    /// DROP SCHEMA reporting CASCADE;
    /// ```
    code: "B3",
    name: "drop-schema-or-database",
    severity: Error,
    summary: "DROP SCHEMA / DROP DATABASE loses everything inside",
    check: check,
}

fn created_schema(node: &NodeEnum) -> Option<&str> {
    match node {
        NodeEnum::CreateSchemaStmt(s) => Some(&s.schemaname),
        _ => None,
    }
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        match &stmt.node {
            NodeEnum::DropdbStmt(d) => sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!(
                        "dropping database `{}` loses every object and row in it",
                        d.dbname
                    ),
                )
                .help("a migration must never drop a database; do it by hand, after a backup"),
            ),
            NodeEnum::DropStmt(d)
                if ast::object_type(d.remove_type) == ObjectType::ObjectSchema =>
            {
                for name in d.objects.iter().filter_map(ast::node_string) {
                    let new = cx
                        .before(stmt)
                        .iter()
                        .any(|s| created_schema(&s.node) == Some(name));
                    if new {
                        continue;
                    }
                    sink.push(
                        Diagnostic::new(
                            stmt.span,
                            format!("dropping schema `{name}` loses every table, view and function in it"),
                        )
                        .help(
                            "drop the objects one by one in contract migrations (ratchet's `drop_table`) after a backup",
                        ),
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_drop_schema() {
        insta::assert_snapshot!(lint_errors(&RULE, "DROP SCHEMA reporting CASCADE;"));
    }

    #[test]
    fn fires_on_drop_database() {
        insta::assert_snapshot!(lint_errors(&RULE, "DROP DATABASE app;"));
    }

    #[test]
    fn ignores_a_schema_created_in_the_same_file() {
        lint_ok(&RULE, "CREATE SCHEMA scratch;\nDROP SCHEMA scratch;");
    }
}
