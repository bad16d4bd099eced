//! The autofixes of the B/C/D rules on the shapes that are easy to get wrong (guards
//! inserted at the right token, a COMMIT after a statement without `;`, multi-word
//! types): each fix applies, the SQL still parses, and its finding is gone.

use ratchet_lint::{apply_fixes, Linter, Settings};

const SAMPLES: &[(&str, &str)] = &[
    ("non-idempotent-ddl", "CREATE TABLE t (a int);"),
    ("non-idempotent-ddl", "CREATE UNIQUE INDEX i ON t (a);"),
    ("non-idempotent-ddl", "DROP INDEX CONCURRENTLY i;"),
    ("non-idempotent-ddl", "DROP MATERIALIZED VIEW v;"),
    (
        "non-idempotent-ddl",
        "ALTER TABLE t ADD COLUMN \"Note\" text, ADD COLUMN b int;",
    ),
    ("non-idempotent-ddl", "ALTER TABLE t DROP COLUMN b;"),
    ("non-idempotent-ddl", "ALTER TABLE t DROP b;"),
    (
        "non-idempotent-ddl",
        "ALTER TABLE t DROP CONSTRAINT t_b_check;",
    ),
    (
        "non-idempotent-ddl",
        "CREATE SCHEMA app; CREATE SEQUENCE s; CREATE EXTENSION pg_trgm;",
    ),
    (
        "uncommitted-transaction",
        "BEGIN;\nALTER TABLE t ADD COLUMN b int",
    ),
    (
        "uncommitted-transaction",
        "BEGIN;\nALTER TABLE t ADD COLUMN b int -- trailing comment",
    ),
    (
        "uncommitted-transaction",
        "BEGIN;\nALTER TABLE t ADD COLUMN b int;\n-- done\n",
    ),
    (
        "json-column",
        "ALTER TABLE t ALTER COLUMN payload TYPE json USING payload::json;",
    ),
    (
        "prefer-timestamptz",
        "CREATE TABLE t (a timestamp(3) without time zone, b TIMESTAMP WITHOUT TIME ZONE);",
    ),
    (
        "prefer-bigint",
        "CREATE TABLE t (a integer, b smallint, c int4, d smallserial);",
    ),
    (
        "prefer-identity",
        "CREATE TABLE t (id serial8 PRIMARY KEY);",
    ),
    (
        "require-schema-qualified",
        "CREATE INDEX CONCURRENTLY i ON orders (a);\nALTER TABLE \"Orders\" ADD COLUMN b int;",
    ),
];

#[test]
fn bcd_fixes_reparse_and_silence_their_finding() {
    let settings = Settings {
        enable: vec!["all".into()],
        ..Settings::default()
    };
    let linter = Linter::new(&settings, None);
    for (rule, sql) in SAMPLES {
        let report = linter.lint_sql("m.sql", sql);
        assert!(report.errors.is_empty(), "{sql}: {:?}", report.errors);
        let fixable: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.rule.name == *rule && f.fix.is_some())
            .collect();
        assert!(!fixable.is_empty(), "{rule} offers no fix on:\n{sql}");
        for finding in fixable {
            let (fixed, applied) = apply_fixes(sql, std::slice::from_ref(finding));
            assert_eq!(applied, 1, "{rule}: fix did not apply on:\n{sql}");
            let after = linter.lint_sql("m.sql", &fixed);
            assert!(
                after.errors.is_empty(),
                "{rule}: fix broke the SQL:\n{fixed}\n{:?}",
                after.errors
            );
            let count = |r: &ratchet_lint::FileReport| {
                r.findings.iter().filter(|f| f.rule.name == *rule).count()
            };
            assert!(
                count(&after) < count(&report),
                "{rule}: fix did not silence it:\n{fixed}"
            );
        }
    }
}
