//! A32 `disable-trigger`.

use pg_query::protobuf::AlterTableType;

use crate::rule::Diagnostic;
use crate::rules::common;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … DISABLE TRIGGER name|ALL|USER` that is not re-enabled later in the same
    /// file.
    ///
    /// ## Why it is dangerous
    /// Takes a SHARE ROW EXCLUSIVE lock (blocks writes), and silently turns off audit, sync
    /// or (with ALL) foreign-key triggers: writes made meanwhile skip them for good.
    ///
    /// ## What to do instead
    /// Avoid it; if it is needed for a bulk load, `ENABLE TRIGGER` again within the same
    /// migration.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders DISABLE TRIGGER audit;
    /// ```
    code: "A32",
    name: "disable-trigger",
    severity: Warning,
    summary: "DISABLE TRIGGER silently turns off audit, sync or FK triggers",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    use AlterTableType as T;
    let cmds = common::existing_cmds(cx);
    for c in cmds.iter().filter(|c| {
        matches!(
            c.kind(),
            T::AtDisableTrig | T::AtDisableTrigAll | T::AtDisableTrigUser
        )
    }) {
        let reenabled = cmds.iter().any(|e| {
            e.stmt.index > c.stmt.index
                && e.table.same_as(&c.table)
                && matches!(
                    e.kind(),
                    T::AtEnableTrig
                        | T::AtEnableTrigAll
                        | T::AtEnableTrigUser
                        | T::AtEnableAlwaysTrig
                        | T::AtEnableReplicaTrig
                )
                && (e.cmd.name == c.cmd.name || e.kind() != T::AtEnableTrig)
        });
        if reenabled {
            continue;
        }
        let which = if c.cmd.name.is_empty() {
            "all triggers".to_string()
        } else {
            format!("trigger `{}`", c.cmd.name)
        };
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!(
                    "disabling {which} on `{}` silently skips it for every write until re-enabled",
                    c.table
                ),
            )
            .help("avoid it, or ENABLE TRIGGER again in the same migration"),
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
            "ALTER TABLE orders DISABLE TRIGGER audit;"
        ));
    }

    #[test]
    fn reenabled_is_fine() {
        lint_ok(&RULE, "ALTER TABLE orders DISABLE TRIGGER audit;\nUPDATE orders SET x = 1;\nALTER TABLE orders ENABLE TRIGGER audit;");
    }
}
