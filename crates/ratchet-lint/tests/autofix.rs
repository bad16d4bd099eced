//! Every autofix, checked centrally: apply it, re-parse, re-lint — the finding it fixes
//! must be gone and the text must still parse.

use std::path::Path;

use ratchet_lint::{apply_fixes, Linter, Settings};

/// SQL that triggers fixable findings, beside every `tests/data/err` fixture.
const SAMPLES: &[&str] = &[
    "CREATE INDEX users_email_idx ON users (email);",
    "CREATE UNIQUE INDEX users_email_key ON users USING btree (lower(email)) WHERE deleted_at IS NULL;",
    "DROP INDEX users_email_idx;",
    "REINDEX TABLE users;",
    "ALTER TABLE measurement DETACH PARTITION measurement_2020",
    "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0);",
    "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0)",
    "BEGIN;\nALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);\nCOMMIT;",
    "ALTER TABLE orders ADD CONSTRAINT \"Orders_FK\" FOREIGN KEY (user_id) REFERENCES users (id); -- trailing",
    "ALTER TABLE users ADD COLUMN plan text;\nALTER TABLE users ADD COLUMN tier text;",
    "-- ratchet:ignore A18 not needed any more\nSELECT 1;",
    "CREATE TABLE t (id int, payload json, created timestamp, n serial);",
    "CREATE TABLE IF NOT EXISTS t (id bigint);\nCREATE INDEX CONCURRENTLY t_idx ON t (id);",
    "BEGIN;\nALTER TABLE a ADD COLUMN b int;",
];

fn inputs() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = SAMPLES
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("sample{i}.sql"), s.to_string()))
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/err");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for p in files {
        if let Ok(text) = std::fs::read_to_string(&p) {
            out.push((p.display().to_string(), text));
        }
    }
    out
}

#[test]
fn every_fix_reparses_and_silences_its_finding() {
    let settings = Settings {
        enable: vec!["all".into()],
        ..Settings::default()
    };
    let linter = Linter::new(&settings, None);
    let mut checked = std::collections::BTreeSet::new();
    for (path, sql) in inputs() {
        let report = linter.lint_sql(&path, &sql);
        if !report.errors.is_empty() {
            continue;
        }
        for finding in report.findings.iter().filter(|f| f.fix.is_some()) {
            let (fixed, applied) = apply_fixes(&sql, std::slice::from_ref(finding));
            assert_eq!(
                applied, 1,
                "{path}: fix of {} did not apply",
                finding.rule.name
            );
            let after = linter.lint_sql(&path, &fixed);
            assert!(
                after.errors.is_empty(),
                "{path}: fix of {} broke the SQL:\n{fixed}\n{:?}",
                finding.rule.name,
                after.errors
            );
            let before_n = report
                .findings
                .iter()
                .filter(|f| f.rule.name == finding.rule.name)
                .count();
            let after_n = after
                .findings
                .iter()
                .filter(|f| f.rule.name == finding.rule.name)
                .count();
            assert!(
                after_n < before_n,
                "{path}: fix of {} did not silence it:\n{fixed}",
                finding.rule.name
            );
            checked.insert(finding.rule.name);
        }
    }
    for rule in [
        "create-index-non-concurrently",
        "drop-index-non-concurrently",
        "reindex-non-concurrently",
        "detach-partition-non-concurrently",
        "add-check-constraint",
        "add-foreign-key",
        "missing-lock-timeout",
        "unused-ignore",
        "non-idempotent-ddl",
        "uncommitted-transaction",
        "json-column",
        "prefer-timestamptz",
        "prefer-bigint",
    ] {
        assert!(
            checked.contains(rule),
            "no sample exercises the fix of {rule}; checked: {checked:?}"
        );
    }
}

#[test]
fn fix_sql_converges() {
    let settings = Settings::default();
    let linter = Linter::new(&settings, None);
    let (fixed, n) = ratchet_lint::fix_sql(
        &linter,
        "m.sql",
        "CREATE INDEX i ON users (email);\nDROP INDEX j;\n",
    );
    assert!(n >= 2, "{fixed}");
    let after = linter.lint_sql("m.sql", &fixed);
    assert!(after.findings.iter().all(|f| f.fix.is_none()), "{fixed}");
}
