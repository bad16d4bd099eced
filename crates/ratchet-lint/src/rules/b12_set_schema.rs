//! B12 `set-schema`: moving an object to another schema, off the clients' search_path.

use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE/VIEW/TYPE/FUNCTION/SEQUENCE … SET SCHEMA` of an object that was not
    /// created earlier in the same file.
    ///
    /// ## Why it is dangerous
    /// Clients find objects through their `search_path`; once the object moves, every
    /// unqualified reference (queries, functions, views created from text) fails or,
    /// worse, resolves to another object of the same name.
    ///
    /// ## What to do instead
    /// Create the object in the new schema and keep the old name working (a view, a
    /// wrapper function) until every client has moved; drop the old one in a contract
    /// migration.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders SET SCHEMA archive;
    /// ```
    code: "B12",
    name: "set-schema",
    severity: Warning,
    summary: "SET SCHEMA moves an object off the clients' search_path",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::AlterObjectSchemaStmt(s) = &stmt.node else {
            continue;
        };
        let name = match s.relation.as_ref().map(ast::range_var_name) {
            Some(table) => {
                if cx.is_new_table(&table, stmt) {
                    continue;
                }
                table.to_string()
            }
            None => "the object".to_string(),
        };
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!(
                    "moving {} to schema `{}` takes it off the clients' search_path: unqualified references fail",
                    if name == "the object" { name.clone() } else { format!("`{name}`") },
                    s.newschema
                ),
            )
            .help("create it in the new schema and keep the old name working (a view or wrapper) until every client has moved"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_set_schema() {
        insta::assert_snapshot!(lint_errors(&RULE, "ALTER TABLE orders SET SCHEMA archive;"));
    }

    #[test]
    fn ignores_set_tablespace() {
        lint_ok(&RULE, "ALTER TABLE orders SET TABLESPACE fast;");
    }
}
