//! A31 `create-trigger-existing-table`.

use pg_query::NodeEnum;

use crate::ast;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `CREATE TRIGGER` on a table that existed before this file, when no `lock_timeout` is in
    /// effect.
    ///
    /// ## Why it is dangerous
    /// CREATE TRIGGER takes a SHARE ROW EXCLUSIVE lock (blocks writes). The statement itself is
    /// instant, but the lock queues behind any long transaction on the table, and every
    /// later write queues behind it. `info` by default: the missing lock_timeout (A35) is the
    /// actionable part.
    ///
    /// ## What to do instead
    /// `SET lock_timeout` before it and retry on timeout (ratchet does both for the triggers it
    /// creates).
    ///
    /// ## Example
    /// ```sql
    /// SET lock_timeout = '1s';
    /// CREATE TRIGGER audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit();
    /// ```
    code: "A31",
    name: "create-trigger-existing-table",
    severity: Info,
    summary: "CREATE TRIGGER takes SHARE ROW EXCLUSIVE (blocks writes) on a populated table",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::CreateTrigStmt(t) = &stmt.node else {
            continue;
        };
        let Some(table) = t.relation.as_ref().map(ast::range_var_name) else {
            continue;
        };
        if stmt.lock_timeout || cx.is_new_table(&table, stmt) {
            continue;
        }
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!("CREATE TRIGGER `{}` takes a SHARE ROW EXCLUSIVE lock on `{table}` (blocks writes) and can queue behind long transactions", t.trigname),
            )
            .help("SET lock_timeout before it and retry on timeout"),
        );
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
            "CREATE TRIGGER audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit();"
        ));
    }

    #[test]
    fn with_lock_timeout_is_fine() {
        lint_ok(&RULE, "SET lock_timeout = '1s';\nCREATE TRIGGER audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit();");
    }
}
