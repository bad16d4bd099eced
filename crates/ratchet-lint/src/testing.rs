//! Helpers for rule tests: run one rule over SQL and render its findings exactly as
//! `ratchet lint` prints them, for `insta` snapshots.
//!
//! ```ignore
//! insta::assert_snapshot!(lint_errors(&RULE, "CREATE INDEX i ON t (a);"));
//! lint_ok(&RULE, "CREATE INDEX CONCURRENTLY i ON t (a);");
//! ```
#![allow(clippy::panic)]

use crate::catalog::Catalog;
use crate::lint::{FileReport, Linter};
use crate::render;
use crate::rule::Rule;
use crate::settings::Settings;
use crate::source::LineIndex;

/// The file name shown in rendered test diagnostics.
pub const TEST_PATH: &str = "migration.sql";

/// Runs only `rule` (enabled even if opt-in) over `sql`.
pub fn check(
    rule: &'static Rule,
    sql: &str,
    settings: &Settings,
    catalog: Option<&Catalog>,
) -> FileReport {
    Linter::single(rule, settings, catalog).lint_sql(TEST_PATH, sql)
}

/// Renders every finding (and syntax error) of a report.
pub fn render_report(report: &FileReport) -> String {
    let lines = LineIndex::new(&report.source);
    let mut out = String::new();
    for e in &report.errors {
        out.push_str(&format!(
            "error: {} at {}:{}\n",
            e.message, e.line, e.column
        ));
    }
    for f in &report.findings {
        out.push_str(&render::finding_text(report, &lines, f));
    }
    out
}

/// Asserts that `rule` fires on `sql` (default settings) and returns the rendered findings.
#[track_caller]
pub fn lint_errors(rule: &'static Rule, sql: &str) -> String {
    lint_errors_with(rule, sql, &Settings::default(), None)
}

/// [`lint_errors`] with explicit settings and catalog.
#[track_caller]
pub fn lint_errors_with(
    rule: &'static Rule,
    sql: &str,
    settings: &Settings,
    catalog: Option<&Catalog>,
) -> String {
    let report = check(rule, sql, settings, catalog);
    assert!(
        report.errors.is_empty(),
        "SQL does not parse: {:?}",
        report.errors
    );
    assert!(
        !report.findings.is_empty(),
        "expected `{}` to fire on:\n{sql}",
        rule.name
    );
    render_report(&report)
}

/// Asserts that `rule` does not fire on `sql` (default settings).
#[track_caller]
pub fn lint_ok(rule: &'static Rule, sql: &str) {
    lint_ok_with(rule, sql, &Settings::default(), None);
}

/// [`lint_ok`] with explicit settings and catalog.
#[track_caller]
pub fn lint_ok_with(
    rule: &'static Rule,
    sql: &str,
    settings: &Settings,
    catalog: Option<&Catalog>,
) {
    let report = check(rule, sql, settings, catalog);
    assert!(
        report.errors.is_empty(),
        "SQL does not parse: {:?}",
        report.errors
    );
    assert!(
        report.findings.is_empty(),
        "expected `{}` not to fire, got:\n{}",
        rule.name,
        render_report(&report)
    );
}

/// Settings with `assume_in_transaction` on.
pub fn in_transaction() -> Settings {
    Settings {
        assume_in_transaction: true,
        ..Settings::default()
    }
}

/// Settings targeting another major version.
pub fn pg(major: u32) -> Settings {
    Settings {
        pg_version: crate::settings::PgVersion::new(major),
        ..Settings::default()
    }
}
