//! A25 `detach-partition-non-concurrently`.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::ast;
use crate::rule::{Diagnostic, Edit, Fix, Severity};
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE parent DETACH PARTITION part` without `CONCURRENTLY`.
    ///
    /// ## Why it is dangerous
    /// It takes an ACCESS EXCLUSIVE lock on the parent and the partition: every query on the
    /// partitioned table waits.
    ///
    /// ## What to do instead
    /// `DETACH PARTITION … CONCURRENTLY` (PG ≥ 14; outside a transaction; if interrupted,
    /// finish with `DETACH PARTITION … FINALIZE`). Before PG 14 there is no online way: a
    /// warning. Autofix (PG ≥ 14, outside a transaction): appends `CONCURRENTLY`.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE measurement DETACH PARTITION measurement_2020;               -- reported
    /// ALTER TABLE measurement DETACH PARTITION measurement_2020 CONCURRENTLY;  -- fine
    /// ```
    code: "A25",
    name: "detach-partition-non-concurrently",
    severity: Error,
    summary: "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::cmds_of(cx, AlterTableType::AtDetachPartition) {
        let Some(NodeEnum::PartitionCmd(p)) = c.cmd.def.as_deref().and_then(ast::inner) else {
            continue;
        };
        if p.concurrent {
            continue;
        }
        let part = p
            .name
            .as_ref()
            .map(ast::range_var_name)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let mut d = Diagnostic::new(
            c.stmt.span,
            format!(
                "DETACH PARTITION `{part}` takes an {AEL} on `{}` and the partition",
                c.table
            ),
        );
        if cx.pg_version().at_least(14) {
            d = d.help("use DETACH PARTITION … CONCURRENTLY (PG ≥ 14) outside a transaction; finish an interrupted one with FINALIZE");
            if !c.stmt.tx.in_transaction && c.siblings == 1 {
                d = d.fix(Fix::new(
                    "add CONCURRENTLY",
                    vec![Edit::insert(c.stmt.span.end, " CONCURRENTLY")],
                ));
            }
        } else {
            d = d.help("PG < 14 cannot detach concurrently: schedule it for a quiet moment with a lock_timeout").severity(Severity::Warning);
        }
        sink.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_with_fix() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE measurement DETACH PARTITION measurement_2020;"
        ));
    }

    #[test]
    fn concurrently_is_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE measurement DETACH PARTITION measurement_2020 CONCURRENTLY;",
        );
    }
}
