//! A40 `index-build-corruption-pg14`.

use pg_query::NodeEnum;

use crate::ast;
use crate::rule::{Diagnostic, Severity};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `CREATE INDEX CONCURRENTLY` or `REINDEX … CONCURRENTLY` when the target server is
    /// PostgreSQL 14.0–14.3 (error), or 14 with an unknown minor version (warning: pass
    /// `--pg-version 14.x` or `--database-url`).
    ///
    /// ## Why it is dangerous
    /// PostgreSQL 14.0–14.3 had a bug that could silently corrupt indexes built or rebuilt
    /// concurrently (missing entries for rows changed during the build), fixed in 14.4.
    ///
    /// ## What to do instead
    /// Upgrade to 14.4 or later first (and `REINDEX` indexes built concurrently on 14.0–14.3).
    ///
    /// ## Example
    /// ```sql
    /// -- with --pg-version 14.2
    /// CREATE INDEX CONCURRENTLY users_email_idx ON users (email);
    /// ```
    code: "A40",
    name: "index-build-corruption-pg14",
    severity: Error,
    summary: "concurrent index builds on PostgreSQL 14.0–14.3 can silently corrupt the index",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let v = cx.pg_version();
    if v.major != 14 || v.minor.is_some_and(|m| m >= 4) {
        return;
    }
    for stmt in cx.statements() {
        let concurrent = match &stmt.node {
            NodeEnum::IndexStmt(i) => i.concurrent,
            NodeEnum::ReindexStmt(r) => ast::option_on(&r.params, "concurrently"),
            _ => false,
        };
        if !concurrent {
            continue;
        }
        let d = match v.minor {
            Some(m) => Diagnostic::new(stmt.span, format!("concurrent index builds on PostgreSQL 14.{m} can silently corrupt the index (fixed in 14.4)")),
            None => Diagnostic::new(stmt.span, "concurrent index builds on PostgreSQL 14.0–14.3 can silently corrupt the index (fixed in 14.4); the minor version is unknown")
                .severity(Severity::Warning),
        };
        sink.push(d.help("upgrade to 14.4 or later first; pass --pg-version 14.x or --database-url to state the exact version"));
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;
    use crate::{PgVersion, Settings};

    #[test]
    fn fires_on_14_2() {
        let s = Settings {
            pg_version: PgVersion {
                major: 14,
                minor: Some(2),
            },
            ..Settings::default()
        };
        insta::assert_snapshot!(lint_errors_with(
            &RULE,
            "CREATE INDEX CONCURRENTLY i ON users (email);",
            &s,
            None
        ));
    }

    #[test]
    fn fixed_minor_is_fine() {
        let s = Settings {
            pg_version: PgVersion {
                major: 14,
                minor: Some(4),
            },
            ..Settings::default()
        };
        lint_ok_with(
            &RULE,
            "CREATE INDEX CONCURRENTLY i ON users (email);",
            &s,
            None,
        );
        lint_ok(&RULE, "CREATE INDEX CONCURRENTLY i ON users (email);");
    }
}
