//! A27 `vacuum-full-or-cluster`.

use pg_query::NodeEnum;

use crate::ast;
use crate::rule::Diagnostic;
use crate::rules::common::AEL;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `VACUUM FULL` and `CLUSTER` in a migration. `VACUUM (FULL false)` (`off`, `0`) is a
    /// plain VACUUM and is not reported.
    ///
    /// ## Why it is dangerous
    /// Both rewrite the table (and rebuild its indexes) under an ACCESS EXCLUSIVE lock: no
    /// reads or writes until done, and they need disk space for a full copy.
    ///
    /// ## What to do instead
    /// `REPACK (CONCURRENTLY)` where the server has it (PG ≥ 19); before that the pg_repack or
    /// pg_squeeze extensions, which rewrite online.
    ///
    /// ## Example
    /// ```sql
    /// VACUUM FULL events;   -- reported
    /// VACUUM (ANALYZE) events;  -- fine
    /// ```
    code: "A27",
    name: "vacuum-full-or-cluster",
    severity: Error,
    summary: "VACUUM FULL and CLUSTER rewrite the table under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let what = match &stmt.node {
            NodeEnum::ClusterStmt(_) => "CLUSTER",
            NodeEnum::VacuumStmt(v)
                if v.is_vacuumcmd
                    && ast::option_on(&v.options, "full") =>
            {
                "VACUUM FULL"
            }
            _ => continue,
        };
        let on = stmt
            .lock
            .as_ref()
            .map(|l| format!(" `{}`", l.table))
            .unwrap_or_else(|| " every table it touches".into());
        let alt = if cx.pg_version().at_least(19) {
            "REPACK (CONCURRENTLY)"
        } else {
            "pg_repack or pg_squeeze (online rewrites)"
        };
        sink.push(
            Diagnostic::new(stmt.span, format!("{what} rewrites{on} under an {AEL}"))
                .help(format!("use {alt}; plain VACUUM needs no strong lock")),
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
            "VACUUM FULL events;\nCLUSTER events USING events_pkey;"
        ));
    }

    // Issue #10: `(FULL false)` was reported as a rewrite that PostgreSQL does not do.
    #[test]
    fn full_option_false_is_fine() {
        for v in ["false", "FALSE", "off", "0"] {
            lint_ok(&RULE, &format!("VACUUM (FULL {v}) foo;"));
        }
    }

    #[test]
    fn last_full_option_wins() {
        lint_ok(&RULE, "VACUUM (FULL, FULL false) foo;");
        lint_errors(&RULE, "VACUUM (FULL off, FULL) foo;");
    }

    #[test]
    fn full_option_true_fires() {
        for v in ["", " true", " on", " 1"] {
            lint_errors(&RULE, &format!("VACUUM (FULL{v}, ANALYZE) foo;"));
        }
    }

    #[test]
    fn plain_vacuum_is_fine() {
        lint_ok(&RULE, "VACUUM (ANALYZE) events;");
    }
}
