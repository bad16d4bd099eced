//! A36 `missing-statement-timeout`.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::ast;
use crate::context::Statement;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// The first slow statement of a file (an `UPDATE`/`DELETE`, a plain `CREATE INDEX`, a
    /// scanning or rewriting `ALTER TABLE`) with no `statement_timeout` in effect. Reported
    /// once per file, and only as `info`.
    ///
    /// ## Why it is dangerous
    /// A runaway migration holds its locks and load indefinitely. But this advice can hurt:
    /// a `statement_timeout` that fires during `CREATE INDEX CONCURRENTLY` aborts the build and
    /// leaves an INVALID index behind, so concurrent builds are never reported and the finding
    /// stays `info`.
    ///
    /// ## What to do instead
    /// `SET statement_timeout` generous enough for the expected duration, before blocking
    /// statements (not before concurrent index builds).
    ///
    /// ## Example
    /// ```sql
    /// SET statement_timeout = '5min';
    /// UPDATE users SET plan = 'free' WHERE plan IS NULL;
    /// ```
    code: "A36",
    name: "missing-statement-timeout",
    severity: Info,
    category: Policy,
    summary: "slow statements with no statement_timeout (info only: a timeout can hurt concurrent builds)",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let Some(stmt) = cx
        .statements()
        .iter()
        .find(|s| !s.statement_timeout && slow(cx, s))
    else {
        return;
    };
    sink.push(
        Diagnostic::new(stmt.span, "no statement_timeout is set before this slow statement: a runaway migration holds locks and load indefinitely")
            .help("SET statement_timeout to a generous bound for blocking statements; never before CREATE INDEX CONCURRENTLY (a timeout leaves an INVALID index)"),
    );
}

fn slow(cx: &Context<'_>, s: &Statement) -> bool {
    match &s.node {
        NodeEnum::UpdateStmt(_) | NodeEnum::DeleteStmt(_) => true,
        NodeEnum::IndexStmt(i) => {
            !i.concurrent
                && i.relation
                    .as_ref()
                    .is_some_and(|r| !cx.is_new_table(&ast::range_var_name(r), s))
        }
        node => {
            let Some(a) = ast::alter_table(node) else {
                return false;
            };
            if ast::alter_table_name(a).is_some_and(|t| cx.is_new_table(&t, s)) {
                return false;
            }
            ast::alter_cmds(a).any(|c| {
                matches!(
                    ast::cmd_type(c),
                    AlterTableType::AtSetNotNull | AlterTableType::AtAlterColumnType
                ) || (ast::cmd_type(c) == AlterTableType::AtAddConstraint
                    && ast::cmd_constraint(c).is_some_and(|k| !k.skip_validation))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_once_as_info() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "UPDATE users SET plan = 'free';\nDELETE FROM sessions;"
        ));
    }

    #[test]
    fn concurrent_index_build_is_never_reported() {
        lint_ok(&RULE, "CREATE INDEX CONCURRENTLY i ON users (email);");
    }

    #[test]
    fn with_timeout_is_fine() {
        lint_ok(
            &RULE,
            "SET statement_timeout = '5min';\nUPDATE users SET plan = 'free';",
        );
    }
}
