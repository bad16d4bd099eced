//! D6 `require-schema-qualified`: DDL whose target depends on the search_path.

use pg_query::protobuf::{ObjectType, RangeVar};
use pg_query::NodeEnum;

use crate::ast;
use crate::context::Statement;
use crate::{Context, Diagnostic, Edit, Fix, Sink, Span};

crate::declare_rule! {
    /// ## What it detects
    /// Opt-in (enable `require-schema-qualified`): tables named without a schema in
    /// `CREATE TABLE`, `ALTER TABLE`, `CREATE INDEX … ON`, `DROP TABLE` and renames.
    /// Temporary tables are exempt.
    ///
    /// ## Why it is dangerous
    /// A matter of policy (`info`): the table an unqualified name means depends on the
    /// session's `search_path`, which differs between the migration runner, poolers and
    /// developers' shells; the same file can change a different table.
    ///
    /// ## What to do instead
    /// Qualify the name (the autofix adds `public.`, or the schema set with
    /// `[lint.rules.require-schema-qualified] schema = "app"`).
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN note text;
    /// -- instead
    /// ALTER TABLE public.orders ADD COLUMN note text;
    /// ```
    code: "D6",
    name: "require-schema-qualified",
    severity: Info,
    category: Policy,
    enabled_by_default: false,
    summary: "unqualified table names in DDL depend on the search_path",
    check: check,
}

fn relations(node: &NodeEnum) -> Vec<&RangeVar> {
    match node {
        NodeEnum::CreateStmt(c) => c.relation.iter().collect(),
        NodeEnum::AlterTableStmt(a) if ast::object_type(a.objtype) == ObjectType::ObjectTable => {
            a.relation.iter().collect()
        }
        NodeEnum::IndexStmt(i) => i.relation.iter().collect(),
        NodeEnum::RenameStmt(r) => r.relation.iter().collect(),
        _ => Vec::new(),
    }
}

fn qualify_edit(cx: &Context<'_>, stmt: &Statement, rv: &RangeVar, schema: &str) -> Option<Edit> {
    let at = usize::try_from(rv.location).ok()?;
    let token = cx.tokens_in(Span::new(at, stmt.span.end)).next()?;
    let text = cx.text(token.span).trim_matches('"');
    (token.span.start == at && text.eq_ignore_ascii_case(&rv.relname))
        .then(|| Edit::insert(at, format!("{schema}.")))
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let schema = cx
        .settings
        .rule_option(&RULE, "schema")
        .and_then(|v| v.as_str())
        .unwrap_or("public")
        .to_string();
    for stmt in cx.statements() {
        let mut names: Vec<(String, Option<Edit>)> = relations(&stmt.node)
            .into_iter()
            .filter(|rv| rv.schemaname.is_empty() && rv.relpersistence != "t")
            .map(|rv| (rv.relname.clone(), qualify_edit(cx, stmt, rv, &schema)))
            .collect();
        if let NodeEnum::DropStmt(d) = &stmt.node {
            if ast::object_type(d.remove_type) == ObjectType::ObjectTable {
                names.extend(
                    ast::drop_objects(d)
                        .into_iter()
                        .filter(|q| q.schema.is_none())
                        .map(|q| (q.name, None)),
                );
            }
        }
        for (name, edit) in names {
            let mut diagnostic = Diagnostic::new(
                stmt.span,
                format!("table `{name}` is not schema-qualified: which table this changes depends on the session's search_path"),
            )
            .help(format!("write `{schema}.{name}`"));
            if let Some(edit) = edit {
                diagnostic =
                    diagnostic.fix(Fix::new(format!("qualify with {schema}."), vec![edit]));
            }
            sink.push(diagnostic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_an_unqualified_table() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders ADD COLUMN note text;"
        ));
    }

    #[test]
    fn ignores_qualified_and_temporary_tables() {
        lint_ok(&RULE, "ALTER TABLE public.orders ADD COLUMN note text;\nCREATE TEMP TABLE scratch (a int);\nSELECT * FROM orders;");
    }
}
