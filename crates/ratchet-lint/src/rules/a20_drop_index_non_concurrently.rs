//! A20 `drop-index-non-concurrently`.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::ast;
use crate::rule::{Diagnostic, Edit, Fix};
use crate::rules::common::AEL;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `DROP INDEX` without `CONCURRENTLY` (an index created earlier in the same file is
    /// exempt).
    ///
    /// ## Why it is dangerous
    /// It takes an ACCESS EXCLUSIVE lock on the index's table: short, but it queues behind any
    /// long transaction and blocks every later query on the table while it waits.
    ///
    /// ## What to do instead
    /// `DROP INDEX CONCURRENTLY` (PG ≥ 9.2; one index per statement, no CASCADE, outside a
    /// transaction; not for indexes backing a constraint). ratchet operation: `drop_index`.
    /// Autofix: adds `CONCURRENTLY` when that is allowed.
    ///
    /// ## Example
    /// ```sql
    /// DROP INDEX users_email_idx;               -- reported
    /// DROP INDEX CONCURRENTLY users_email_idx;  -- fine
    /// ```
    code: "A20",
    name: "drop-index-non-concurrently",
    severity: Warning,
    summary: "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::DropStmt(d) = &stmt.node else {
            continue;
        };
        if ast::object_type(d.remove_type) != ObjectType::ObjectIndex || d.concurrent {
            continue;
        }
        let names = ast::drop_objects(d);
        let created_here = names.iter().all(|n| {
            cx.before(stmt)
                .iter()
                .any(|s| matches!(&s.node, NodeEnum::IndexStmt(i) if i.idxname == n.name))
        });
        if created_here {
            continue;
        }
        let shown: Vec<String> = names.iter().map(ToString::to_string).collect();
        let mut diag = Diagnostic::new(
            stmt.span,
            format!("DROP INDEX {} takes an {AEL} on its table and queues behind long transactions", shown.join(", ")),
        )
        .help("use DROP INDEX CONCURRENTLY, one index per statement, outside a transaction. ratchet operation: `drop_index`");
        let cascade = d.behavior == 2;
        if !stmt.tx.in_transaction && names.len() == 1 && !cascade {
            if let Some(kw) = cx.find_word(stmt.span, "INDEX") {
                diag = diag.fix(Fix::new(
                    "add CONCURRENTLY",
                    vec![Edit::insert(kw.end, " CONCURRENTLY")],
                ));
            }
        }
        sink.push(diag);
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_with_fix() {
        insta::assert_snapshot!(lint_errors(&RULE, "DROP INDEX IF EXISTS users_email_idx;"));
    }

    #[test]
    fn concurrently_is_fine() {
        lint_ok(&RULE, "DROP INDEX CONCURRENTLY users_email_idx;");
    }

    #[test]
    fn drop_table_is_not_this_rule() {
        lint_ok(&RULE, "DROP TABLE users_email_idx;");
    }
}
