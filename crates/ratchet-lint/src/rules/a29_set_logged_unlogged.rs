//! A29 `set-logged-unlogged`.

use pg_query::protobuf::AlterTableType;

use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … SET LOGGED` and `SET UNLOGGED` on an existing table.
    ///
    /// ## Why it is dangerous
    /// The table is rewritten under an ACCESS EXCLUSIVE lock (no reads or writes);
    /// `SET LOGGED` also writes the whole table to WAL, a burst that lags replicas. An
    /// unlogged table is emptied after a crash and is not replicated.
    ///
    /// ## What to do instead
    /// Avoid switching; decide at CREATE TABLE time, or copy into a new table online.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE staging SET LOGGED;
    /// ```
    code: "A29",
    name: "set-logged-unlogged",
    severity: Error,
    summary: "SET LOGGED/UNLOGGED rewrites the table under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let cmds = common::existing_cmds(cx);
    for c in cmds.iter().filter(|c| {
        matches!(
            c.kind(),
            AlterTableType::AtSetLogged | AlterTableType::AtSetUnLogged
        )
    }) {
        let which = if c.kind() == AlterTableType::AtSetLogged {
            "SET LOGGED"
        } else {
            "SET UNLOGGED"
        };
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!(
                    "{which} rewrites `{}`{} under an {AEL}",
                    c.table,
                    cx.size_note(&c.table)
                ),
            )
            .help("choose LOGGED/UNLOGGED when creating the table, or copy into a new table online")
            .maybe_severity(cx.size_severity(&c.table)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(&RULE, "ALTER TABLE staging SET LOGGED;"));
    }

    #[test]
    fn unlogged_create_is_fine() {
        lint_ok(
            &RULE,
            "CREATE UNLOGGED TABLE staging (id int);\nALTER TABLE staging SET LOGGED;",
        );
    }
}
