//! D7 `duplicate-column-assignment`: the same column defined or assigned twice in one
//! statement.

use std::collections::HashSet;

use pg_query::protobuf::ResTarget;
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// A column named twice in `CREATE TABLE` (or in the `ADD COLUMN`s of one `ALTER
    /// TABLE`), in an `INSERT` column list, in `UPDATE … SET`, in a `MERGE` action, or in a
    /// view's column list. Assignments to different fields or elements of one column
    /// (`SET a[1] = …, a[2] = …`) are fine.
    ///
    /// ## Why it is dangerous
    /// It parses, so it survives review, and then fails when it runs (42701 "column
    /// specified more than once", 42701 "multiple assignments to same column"), leaving
    /// a migration half applied when the file is not transactional.
    ///
    /// ## What to do instead
    /// Remove the duplicate.
    ///
    /// ## Example
    /// ```sql
    /// UPDATE users SET plan = 'free', plan = 'trial' WHERE id = 1;
    /// ```
    code: "D7",
    name: "duplicate-column-assignment",
    severity: Error,
    summary: "a column defined or assigned twice fails at run time",
    check: check,
}

/// Plain targets (no subscript or field) of a SET / INSERT / MERGE list.
fn target_names(targets: &[pg_query::Node]) -> Vec<String> {
    targets
        .iter()
        .filter_map(|t| match ast::inner(t)? {
            NodeEnum::ResTarget(r) if r.indirection.is_empty() => Some(name(r)),
            _ => None,
        })
        .collect()
}

fn name(r: &ResTarget) -> String {
    r.name.clone()
}

fn names_in(node: &NodeEnum) -> Vec<Vec<String>> {
    match node {
        NodeEnum::CreateStmt(c) => vec![c
            .table_elts
            .iter()
            .filter_map(|e| match ast::inner(e)? {
                NodeEnum::ColumnDef(d) => Some(d.colname.clone()),
                _ => None,
            })
            .collect()],
        NodeEnum::AlterTableStmt(_) => {
            let Some(a) = ast::alter_table(node) else {
                return Vec::new();
            };
            vec![ast::alter_cmds(a)
                .filter_map(|c| ast::cmd_column_def(c).map(|d| d.colname.clone()))
                .filter(|n| !n.is_empty())
                .collect()]
        }
        NodeEnum::InsertStmt(i) => vec![target_names(&i.cols)],
        NodeEnum::UpdateStmt(u) => vec![target_names(&u.target_list)],
        NodeEnum::MergeStmt(m) => m
            .merge_when_clauses
            .iter()
            .filter_map(|w| match ast::inner(w)? {
                NodeEnum::MergeWhenClause(c) => Some(target_names(&c.target_list)),
                _ => None,
            })
            .collect(),
        NodeEnum::ViewStmt(v) => vec![ast::string_list(&v.aliases)],
        _ => Vec::new(),
    }
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        for list in names_in(&stmt.node) {
            let mut seen = HashSet::new();
            let mut reported = HashSet::new();
            for column in list {
                if !seen.insert(column.clone()) && reported.insert(column.clone()) {
                    sink.push(
                        Diagnostic::new(
                            stmt.span,
                            format!("column `{column}` appears twice: the statement fails when it runs (42701)"),
                        )
                        .help("remove the duplicate"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_a_duplicate_update_target() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "UPDATE users SET plan = 'free', plan = 'trial' WHERE id = 1;"
        ));
    }

    #[test]
    fn fires_on_a_duplicate_table_column() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE TABLE t (a int, b text, a bigint);"
        ));
    }

    #[test]
    fn ignores_distinct_columns_and_subscripts() {
        lint_ok(
            &RULE,
            "UPDATE users SET plan = 'free', tier = 1 WHERE id = 1;\nUPDATE t SET a[1] = 1, a[2] = 2;\nINSERT INTO t (a, b) VALUES (1, 2);",
        );
    }
}
