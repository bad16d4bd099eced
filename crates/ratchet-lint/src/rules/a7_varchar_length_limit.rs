//! A7 `varchar-length-limit`.

use pg_query::protobuf::{AlterTableType, ColumnDef};
use pg_query::NodeEnum;

use crate::ast;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// New columns of type `varchar(n)` (in CREATE TABLE, ADD COLUMN, ALTER COLUMN TYPE).
    ///
    /// ## Why it is dangerous
    /// A matter of taste, hence `info`: changing `n` later is a migration of its own. An
    /// increase is catalog-only since PG 9.2 (a brief ACCESS EXCLUSIVE lock); a decrease needs
    /// a scan or rewrite under ACCESS EXCLUSIVE.
    ///
    /// ## What to do instead
    /// `text` plus `CHECK (length(col) <= n)` — a CHECK can be replaced online
    /// (`NOT VALID` + `VALIDATE`).
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE users (name varchar(100));              -- info
    /// CREATE TABLE users (name text CHECK (length(name) <= 100));
    /// ```
    code: "A7",
    name: "varchar-length-limit",
    severity: Info,
    category: Policy,
    summary: "varchar(n) columns: prefer text with a CHECK, whose limit can change online",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let mut cols: Vec<&ColumnDef> = Vec::new();
        match &stmt.node {
            NodeEnum::CreateStmt(c) => {
                cols.extend(c.table_elts.iter().filter_map(|e| match ast::inner(e)? {
                    NodeEnum::ColumnDef(d) => Some(&**d),
                    _ => None,
                }))
            }
            node => {
                let Some(a) = ast::alter_table(node) else {
                    continue;
                };
                cols.extend(
                    ast::alter_cmds(a)
                        .filter(|c| {
                            matches!(
                                ast::cmd_type(c),
                                AlterTableType::AtAddColumn | AlterTableType::AtAlterColumnType
                            )
                        })
                        .filter_map(ast::cmd_column_def),
                );
            }
        }
        for col in cols {
            let Some(t) = &col.type_name else { continue };
            if ast::type_base_name(t) != "varchar" || ast::type_mods(t).is_empty() {
                continue;
            }
            let name = if col.colname.is_empty() {
                "the column".to_string()
            } else {
                format!("`{}`", col.colname)
            };
            sink.push(
                Diagnostic::new(stmt.span, format!("{name} is {}: changing the limit later needs its own migration", ast::type_display(t)))
                    .help("use text with CHECK (length(col) <= n); a CHECK can be replaced online with NOT VALID + VALIDATE"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE TABLE users (id bigint, name varchar(100));"
        ));
    }

    #[test]
    fn text_and_unbounded_varchar_are_fine() {
        lint_ok(
            &RULE,
            "CREATE TABLE users (id bigint, name text, nick varchar);",
        );
    }
}
