//! A38 `fk-without-index`.

use pg_query::protobuf::{AlterTableType, ConstrType, Constraint};
use pg_query::NodeEnum;

use crate::ast::{self, QualifiedName};
use crate::context::Statement;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// A foreign key whose referencing columns are not the leading columns of a complete
    /// (non-partial) index. The indexes are known for a table created in the same file (its
    /// PRIMARY KEY/UNIQUE constraints and the `CREATE INDEX` statements of the file) and,
    /// with `--database-url`, for existing tables from the catalog. Without the catalog, a
    /// foreign key on an existing table is not judged (its indexes are unknown).
    ///
    /// ## Why it is dangerous
    /// Every `DELETE` or key `UPDATE` on the referenced table must find referencing rows: with
    /// no index that is a sequential scan of the referencing table, per row, while holding
    /// row locks — slow deletes and lock pile-ups.
    ///
    /// On a table created in the same file the finding is `info`: the new table is empty and
    /// nothing is locked for long, so the missing index is a performance note for later, not
    /// a hazard of this migration. On an existing table it is a `warning`.
    ///
    /// ## What to do instead
    /// `CREATE INDEX CONCURRENTLY` on the referencing columns (ratchet operation
    /// `create_index`).
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id));
    /// CREATE INDEX orders_user_id_idx ON orders (user_id);  -- without it: reported
    /// ```
    code: "A38",
    name: "fk-without-index",
    severity: Warning,
    summary: "a foreign key without an index on its referencing columns makes deletes on the parent scan",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        for (table, columns) in foreign_keys(&stmt.node) {
            let new = created_here(cx, &table, stmt);
            if !new && cx.table_info(&table).is_none() {
                continue;
            }
            if columns.is_empty() || indexed(cx, &table, &columns, new) {
                continue;
            }
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!("foreign key on `{table}` ({}) has no index: deletes and key updates on the referenced table scan `{table}`", columns.join(", ")),
                )
                .help(format!("CREATE INDEX CONCURRENTLY ON {table} ({}). ratchet operation: `create_index`", columns.join(", ")))
                .maybe_severity(new.then_some(crate::Severity::Info)),
            );
        }
    }
}

fn created_here(cx: &Context<'_>, table: &QualifiedName, stmt: &Statement) -> bool {
    cx.is_new_table(table, stmt)
        || matches!(&stmt.node, NodeEnum::CreateStmt(c) if c.relation.as_ref().is_some_and(|r| ast::range_var_name(r).same_as(table)))
}

/// `(referencing table, referencing columns)` of each FK a statement adds.
fn foreign_keys(node: &NodeEnum) -> Vec<(QualifiedName, Vec<String>)> {
    let mut out = Vec::new();
    let fk_cols = |k: &Constraint, column: Option<&str>| -> Vec<String> {
        let cols = ast::key_names(&k.fk_attrs);
        if cols.is_empty() {
            column.map(|c| vec![c.to_string()]).unwrap_or_default()
        } else {
            cols
        }
    };
    match node {
        NodeEnum::CreateStmt(c) => {
            let Some(table) = c.relation.as_ref().map(ast::range_var_name) else {
                return out;
            };
            for e in c.table_elts.iter().filter_map(ast::inner) {
                match e {
                    NodeEnum::ColumnDef(d) => {
                        for k in ast::column_constraints(d)
                            .filter(|k| ast::constr_type(k) == ConstrType::ConstrForeign)
                        {
                            out.push((table.clone(), fk_cols(k, Some(&d.colname))));
                        }
                    }
                    NodeEnum::Constraint(k) if ast::constr_type(k) == ConstrType::ConstrForeign => {
                        out.push((table.clone(), fk_cols(k, None)))
                    }
                    _ => {}
                }
            }
        }
        node => {
            let Some(a) = ast::alter_table(node) else {
                return out;
            };
            let Some(table) = ast::alter_table_name(a) else {
                return out;
            };
            for cmd in ast::alter_cmds(a) {
                match ast::cmd_type(cmd) {
                    AlterTableType::AtAddConstraint => {
                        if let Some(k) = ast::cmd_constraint(cmd)
                            .filter(|k| ast::constr_type(k) == ConstrType::ConstrForeign)
                        {
                            out.push((table.clone(), fk_cols(k, None)));
                        }
                    }
                    AlterTableType::AtAddColumn => {
                        let Some(d) = ast::cmd_column_def(cmd) else {
                            continue;
                        };
                        for k in ast::column_constraints(d)
                            .filter(|k| ast::constr_type(k) == ConstrType::ConstrForeign)
                        {
                            out.push((table.clone(), fk_cols(k, Some(&d.colname))));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

fn indexed(cx: &Context<'_>, table: &QualifiedName, columns: &[String], new: bool) -> bool {
    let covers = |idx: &[String]| {
        idx.len() >= columns.len() && columns.iter().all(|c| idx[..columns.len()].contains(c))
    };
    let in_catalog = !new
        && cx
            .table_info(table)
            .is_some_and(|t| t.indexes.iter().any(|i| !i.partial && covers(&i.columns)));
    in_catalog
        || cx.statements().iter().any(|s| match &s.node {
            NodeEnum::IndexStmt(i) => {
                i.where_clause.is_none()
                    && i.relation
                        .as_ref()
                        .is_some_and(|r| ast::range_var_name(r).same_as(table))
                    && covers(&ast::key_names(&i.index_params))
            }
            NodeEnum::CreateStmt(c)
                if c.relation
                    .as_ref()
                    .is_some_and(|r| ast::range_var_name(r).same_as(table)) =>
            {
                c.table_elts.iter().filter_map(ast::inner).any(|e| match e {
                    NodeEnum::Constraint(k) => is_indexing(k) && covers(&ast::key_names(&k.keys)),
                    NodeEnum::ColumnDef(d) => {
                        columns.len() == 1
                            && d.colname == columns[0]
                            && ast::column_constraints(d).any(is_indexing)
                    }
                    _ => false,
                })
            }
            _ => false,
        })
}

fn is_indexing(k: &Constraint) -> bool {
    matches!(
        ast::constr_type(k),
        ConstrType::ConstrPrimary | ConstrType::ConstrUnique
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_on_new_table_without_index() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id));"
        ));
    }

    #[test]
    fn indexed_fk_is_fine() {
        lint_ok(
            &RULE,
            "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id));\nCREATE INDEX orders_user_id_idx ON orders (user_id, id);",
        );
    }

    #[test]
    fn existing_table_without_catalog_is_not_judged() {
        lint_ok(&RULE, "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;");
    }
}
