//! Property test: the linter never panics and never hangs, whatever SQL-like text it gets —
//! statements assembled from migration fragments, truncated at any byte, with random
//! suppressions and comments, and plain random strings.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use ratchet_lint::{fix_sql, Linter, Settings};

const FRAGMENTS: &[&str] = &[
    "CREATE TABLE t (id bigint PRIMARY KEY, a text, b int REFERENCES u (id))",
    "CREATE INDEX i ON t (a)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t USING gin (a)",
    "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()",
    "ALTER TABLE t ADD COLUMN d int NOT NULL",
    "ALTER TABLE t ALTER COLUMN a TYPE varchar(10)",
    "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
    "ALTER TABLE t ADD CONSTRAINT k CHECK (a IS NOT NULL) NOT VALID",
    "ALTER TABLE t VALIDATE CONSTRAINT k",
    "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (b) REFERENCES u (id)",
    "ALTER TABLE t DETACH PARTITION p",
    "ALTER TABLE t ATTACH PARTITION p FOR VALUES IN (1)",
    "DROP INDEX i",
    "DROP TABLE t CASCADE",
    "REINDEX TABLE t",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SET lock_timeout = '1s'",
    "SET LOCAL statement_timeout = 0",
    "UPDATE t SET a = 'x'",
    "VACUUM FULL t",
    "REFRESH MATERIALIZED VIEW m",
    "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'x' || NEW.a; RETURN NEW; END $$",
    "ALTER TYPE e ADD VALUE 'z'",
    "-- ratchet:ignore A18 because",
    "-- ratchet:ignore-file all",
    "/* ratchet:ignore create-index-non-concurrently */",
    "-- ratchet:no-transaction",
    "SELECT 'unterminated",
    "ALTER TABLE",
    "💥 ünïcode ☃",
    "$$ dollar",
];

fn sql_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(FRAGMENTS);
    (
        prop::collection::vec(
            (piece, prop::sample::select(&[";\n", " ", ";", "\n"][..])),
            0..12,
        ),
        any::<usize>(),
    )
        .prop_map(|(parts, cut)| {
            let text: String = parts
                .into_iter()
                .map(|(p, sep)| format!("{p}{sep}"))
                .collect();
            // Truncate at an arbitrary char boundary to produce half statements.
            let mut at = if text.is_empty() {
                0
            } else {
                cut % (text.len() + 1)
            };
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text[..at].to_string()
        })
}

fn lint_quickly(sql: &str, settings: &Settings) {
    let start = Instant::now();
    let linter = Linter::new(settings, None);
    let report = linter.lint_sql("fuzz.sql", sql);
    let _ = ratchet_lint::render::text(&ratchet_lint::Report {
        files: vec![report],
    });
    let _ = fix_sql(&linter, "fuzz.sql", sql);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "linting took {:?} on {sql:?}",
        start.elapsed()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_migration_like_text(sql in sql_text(), wrapped in any::<bool>(), major in 10u32..19) {
        let settings = Settings {
            assume_in_transaction: wrapped,
            pg_version: ratchet_lint::PgVersion::new(major),
            enable: vec!["all".into()],
            ..Settings::default()
        };
        lint_quickly(&sql, &settings);
    }

    #[test]
    fn never_panics_on_random_text(sql in "\\PC{0,200}") {
        lint_quickly(&sql, &Settings::default());
    }
}

/// Regression: libpg_query's PL/pgSQL parser aborted the process (C assertion
/// `proc_source != NULL`) on a PL/pgSQL function without a body.
#[test]
fn plpgsql_function_without_body_does_not_abort() {
    for sql in [
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql;",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql BEGIN ATOMIC SELECT 1; END;",
        "DO LANGUAGE plpgsql $$ BEGIN EXECUTE 'x' || y; END $$;",
    ] {
        lint_quickly(sql, &Settings::default());
    }
}
