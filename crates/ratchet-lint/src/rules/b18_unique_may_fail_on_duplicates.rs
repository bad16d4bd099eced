//! B18 `unique-may-fail-on-duplicates`: uniqueness added over data that may already
//! contain duplicates.

use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::NodeEnum;

use crate::ast::{self, QualifiedName};
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// On a table that existed before this file: `CREATE UNIQUE INDEX`, `ADD CONSTRAINT
    /// … UNIQUE/PRIMARY KEY` (not `USING INDEX`, whose index is already unique), and
    /// `ADD COLUMN … UNIQUE/PRIMARY KEY` with a non-NULL `DEFAULT` (every existing row gets
    /// the same value).
    ///
    /// ## Why it is dangerous
    /// It passes on development data and fails mid-deploy when production has
    /// duplicates (23505), possibly after a long index build, and a failed
    /// `CREATE UNIQUE INDEX CONCURRENTLY` leaves an INVALID index behind.
    ///
    /// `info` by default: `CREATE UNIQUE INDEX CONCURRENTLY` is the recommended way to add
    /// uniqueness, and its failure on duplicates changes nothing but the INVALID index
    /// (dropped and rebuilt after deduplicating); no lock is held and no data changes. The
    /// duplicates themselves are not counted (`--database-url` reads only the catalog).
    ///
    /// ## What to do instead
    /// Check first (`SELECT cols, count(*) FROM t GROUP BY cols HAVING count(*) > 1`),
    /// deduplicate, and make writers stop producing duplicates before the constraint
    /// lands. ratchet's `create_constraint` with `type: unique` validates the data
    /// before the switch and reports the offending rows.
    ///
    /// ## Example
    /// ```sql
    /// CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
    /// ```
    code: "B18",
    name: "unique-may-fail-on-duplicates",
    severity: Info,
    summary: "a unique index or constraint over existing data fails if production has duplicates",
    check: check,
}

fn finding(
    cx: &Context<'_>,
    span: crate::Span,
    table: &QualifiedName,
    columns: &[String],
    what: &str,
) -> Diagnostic {
    let cols = if columns.is_empty() {
        "<columns>".to_string()
    } else {
        columns.join(", ")
    };
    Diagnostic::new(
        span,
        format!(
            "{what} on existing table `{table}`{}: the migration fails if production already holds duplicates of ({cols})",
            cx.size_note(table)
        ),
    )
    .help(format!(
        "check first: `SELECT {cols}, count(*) FROM {table} GROUP BY {cols} HAVING count(*) > 1`; deduplicate, then add it (ratchet's `create_constraint` reports offending rows before the switch)"
    ))
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        if let NodeEnum::IndexStmt(index) = &stmt.node {
            let Some(table) = index.relation.as_ref().map(ast::range_var_name) else {
                continue;
            };
            if index.unique && !cx.is_new_table(&table, stmt) {
                let columns = ast::key_names(&index.index_params);
                sink.push(finding(cx, stmt.span, &table, &columns, "a unique index"));
            }
            continue;
        }
        let Some(alter) = ast::alter_table(&stmt.node) else {
            continue;
        };
        let Some(table) = ast::alter_table_name(alter) else {
            continue;
        };
        if cx.is_new_table(&table, stmt) {
            continue;
        }
        for cmd in ast::alter_cmds(alter) {
            match ast::cmd_type(cmd) {
                AlterTableType::AtAddConstraint => {
                    let Some(c) = ast::cmd_constraint(cmd) else {
                        continue;
                    };
                    let what = match ast::constr_type(c) {
                        ConstrType::ConstrUnique => "a UNIQUE constraint",
                        ConstrType::ConstrPrimary => "a PRIMARY KEY",
                        _ => continue,
                    };
                    if c.indexname.is_empty() {
                        sink.push(finding(
                            cx,
                            stmt.span,
                            &table,
                            &ast::key_names(&c.keys),
                            what,
                        ));
                    }
                }
                AlterTableType::AtAddColumn => {
                    let Some(def) = ast::cmd_column_def(cmd) else {
                        continue;
                    };
                    let unique = ast::column_constraints(def).any(|c| {
                        matches!(
                            ast::constr_type(c),
                            ConstrType::ConstrUnique | ConstrType::ConstrPrimary
                        )
                    });
                    let same_value = ast::column_default(def).is_some_and(|d| !is_null(d));
                    if unique && same_value {
                        sink.push(finding(
                            cx,
                            stmt.span,
                            &table,
                            std::slice::from_ref(&def.colname),
                            "a unique column with a DEFAULT (every existing row gets the same value)",
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}

fn is_null(node: &NodeEnum) -> bool {
    matches!(node, NodeEnum::AConst(c) if c.isnull)
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_unique_index() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);"
        ));
    }

    #[test]
    fn fires_on_unique_column_with_default() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE users ADD COLUMN code text UNIQUE DEFAULT 'x';"
        ));
    }

    #[test]
    fn ignores_using_index_and_new_tables() {
        lint_ok(
            &RULE,
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;\n\
             CREATE TABLE t (a int);\nCREATE UNIQUE INDEX t_a ON t (a);\n\
             ALTER TABLE users ADD COLUMN code text UNIQUE;",
        );
    }
}
