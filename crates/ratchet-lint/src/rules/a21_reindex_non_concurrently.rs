//! A21 `reindex-non-concurrently`.

use pg_query::protobuf::ReindexObjectType;
use pg_query::NodeEnum;

use crate::ast;
use crate::rule::{Diagnostic, Edit, Fix, Severity};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `REINDEX INDEX|TABLE|SCHEMA|DATABASE` without `CONCURRENTLY`, including
    /// `REINDEX (CONCURRENTLY false)` (`off`, `0`): option values are read as PostgreSQL
    /// reads them (`true/false/on/off/1/0`, a bare option is true).
    ///
    /// ## Why it is dangerous
    /// REINDEX takes an ACCESS EXCLUSIVE lock on the index (queries that would use it block)
    /// and a SHARE lock on the table (writes block) for the whole rebuild.
    ///
    /// ## What to do instead
    /// `REINDEX … CONCURRENTLY` (PG ≥ 12, outside a transaction). Before PG 12: build a
    /// replacement index concurrently and swap. Autofix (PG ≥ 12, outside a transaction):
    /// adds `CONCURRENTLY`.
    ///
    /// ## Example
    /// ```sql
    /// REINDEX INDEX users_email_idx;               -- reported
    /// REINDEX INDEX CONCURRENTLY users_email_idx;  -- fine
    /// ```
    code: "A21",
    name: "reindex-non-concurrently",
    severity: Error,
    summary: "REINDEX without CONCURRENTLY blocks writes and reads that use the index",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::ReindexStmt(r) = &stmt.node else {
            continue;
        };
        let kind = ReindexObjectType::try_from(r.kind).unwrap_or(ReindexObjectType::Undefined);
        if kind == ReindexObjectType::ReindexObjectSystem || concurrent(r) {
            continue;
        }
        let modern = cx.pg_version().at_least(12);
        let mut d = Diagnostic::new(
            stmt.span,
            "REINDEX holds an ACCESS EXCLUSIVE lock on the index (queries using it block) and a SHARE lock on the table (writes block) for the whole rebuild",
        );
        if modern {
            d = d.help("use REINDEX … CONCURRENTLY (PG ≥ 12), outside a transaction");
            if !stmt.tx.in_transaction {
                let word = match kind {
                    ReindexObjectType::ReindexObjectIndex => "INDEX",
                    ReindexObjectType::ReindexObjectTable => "TABLE",
                    ReindexObjectType::ReindexObjectSchema => "SCHEMA",
                    _ => "DATABASE",
                };
                if let Some(kw) = cx.find_word(stmt.span, word) {
                    d = d.fix(Fix::new(
                        "add CONCURRENTLY",
                        vec![Edit::insert(kw.end, " CONCURRENTLY")],
                    ));
                }
            }
        } else {
            d = d
                .help("PG < 12 has no REINDEX CONCURRENTLY: build a replacement index CONCURRENTLY, then drop the old one")
                .severity(Severity::Warning);
        }
        sink.push(d);
    }
}

fn concurrent(r: &pg_query::protobuf::ReindexStmt) -> bool {
    ast::option_on(&r.params, "concurrently")
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_with_fix() {
        insta::assert_snapshot!(lint_errors(&RULE, "REINDEX INDEX users_email_idx;"));
    }

    #[test]
    fn concurrently_is_fine() {
        lint_ok(&RULE, "REINDEX INDEX CONCURRENTLY users_email_idx;");
    }

    // Issue #10: `(CONCURRENTLY false)` was read as CONCURRENTLY; PostgreSQL reads it as off.
    #[test]
    fn concurrently_option_false_fires() {
        for v in ["false", "FALSE", "off", "0"] {
            lint_errors(&RULE, &format!("REINDEX (CONCURRENTLY {v}) INDEX idx;"));
        }
    }

    #[test]
    fn concurrently_option_true_is_fine() {
        for v in ["", " true", " on", " 1", " TRUE"] {
            lint_ok(&RULE, &format!("REINDEX (CONCURRENTLY{v}) INDEX idx;"));
        }
    }
}
