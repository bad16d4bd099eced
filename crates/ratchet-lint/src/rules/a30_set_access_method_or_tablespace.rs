//! A30 `set-access-method-or-tablespace`.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::ast;
use crate::rule::Diagnostic;
use crate::rules::common::AEL;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE|INDEX|MATERIALIZED VIEW … SET TABLESPACE` and `ALTER TABLE … SET ACCESS
    /// METHOD` (PG ≥ 15) on existing relations.
    ///
    /// ## Why it is dangerous
    /// The relation is copied (tablespace) or rewritten (access method) while an ACCESS
    /// EXCLUSIVE lock blocks all reads and writes.
    ///
    /// ## What to do instead
    /// Create a new table in the target tablespace/access method and move the data online
    /// (dual writes and a batched backfill), or use pg_repack's `--tablespace`.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE events SET TABLESPACE fast_ssd;
    /// ```
    code: "A30",
    name: "set-access-method-or-tablespace",
    severity: Error,
    summary: "SET TABLESPACE / SET ACCESS METHOD copies or rewrites under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::AlterTableStmt(a) = &stmt.node else {
            continue;
        };
        let Some(table) = ast::alter_table_name(a) else {
            continue;
        };
        if cx.is_new_table(&table, stmt) {
            continue;
        }
        for cmd in ast::alter_cmds(a) {
            let what = match ast::cmd_type(cmd) {
                AlterTableType::AtSetTableSpace => "SET TABLESPACE copies",
                AlterTableType::AtSetAccessMethod => "SET ACCESS METHOD rewrites",
                _ => continue,
            };
            sink.push(
                Diagnostic::new(stmt.span, format!("{what} `{table}`{} under an {AEL}", cx.size_note(&table)))
                    .help("create a new relation with the target tablespace/access method and move the data online, or use pg_repack")
                    .maybe_severity(cx.size_severity(&table)),
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
            "ALTER TABLE events SET TABLESPACE fast_ssd;"
        ));
    }

    #[test]
    fn set_storage_params_is_not_this_rule() {
        lint_ok(&RULE, "ALTER TABLE events SET (fillfactor = 90);");
    }
}
