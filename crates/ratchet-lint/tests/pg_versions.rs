//! Version gates over the supported targets, PostgreSQL 14 to 18 (issue #10): each case
//! names the versions on which its rule must fire; on the others it must not.

use ratchet_lint::{Linter, PgVersion, Settings};

struct Case {
    sql: &'static str,
    rule: &'static str,
    fires_on: &'static [u32],
}

const ALL: &[u32] = &[14, 15, 16, 17, 18];

const CASES: &[Case] = &[
    // PG 18 syntax parses on every target; before 18 the statement fails to run.
    Case {
        sql: "ALTER TABLE people ADD COLUMN full_name text GENERATED ALWAYS AS (first || last) VIRTUAL;",
        rule: "add-column-stored-generated",
        fires_on: &[14, 15, 16, 17],
    },
    Case {
        sql: "ALTER TABLE people ADD COLUMN full_name text GENERATED ALWAYS AS (first || last) STORED;",
        rule: "add-column-stored-generated",
        fires_on: ALL,
    },
    // 14.0–14.3 corrupt concurrent builds; the minor is unknown with `--pg-version 14`.
    Case {
        sql: "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
        rule: "index-build-corruption-pg14",
        fires_on: &[14],
    },
    // DETACH PARTITION CONCURRENTLY exists since 14.
    Case {
        sql: "ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;",
        rule: "detach-partition-non-concurrently",
        fires_on: &[],
    },
    Case {
        sql: "ALTER TABLE events DETACH PARTITION events_2020;",
        rule: "detach-partition-non-concurrently",
        fires_on: ALL,
    },
    // REINDEX CONCURRENTLY exists since 12; `(CONCURRENTLY false)` is not concurrent.
    Case {
        sql: "REINDEX (CONCURRENTLY false) INDEX users_email_idx;",
        rule: "reindex-non-concurrently",
        fires_on: ALL,
    },
    Case {
        sql: "REINDEX INDEX CONCURRENTLY users_email_idx;",
        rule: "reindex-non-concurrently",
        fires_on: &[],
    },
    // A validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan since 12.
    Case {
        sql: "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\nCOMMIT;\nALTER TABLE users VALIDATE CONSTRAINT email_nn;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        rule: "set-not-null",
        fires_on: &[],
    },
    // PG 18: a NOT NULL constraint can be added NOT VALID.
    Case {
        sql: "ALTER TABLE users ADD CONSTRAINT email_nn NOT NULL email NOT VALID;",
        rule: "set-not-null",
        fires_on: &[],
    },
];

#[test]
fn version_gates_from_14_to_18() {
    let mut failures = Vec::new();
    for case in CASES {
        for &major in ALL {
            let settings = Settings {
                pg_version: PgVersion::new(major),
                ..Settings::default()
            };
            let report = Linter::new(&settings, None).lint_sql("m.sql", case.sql);
            assert!(
                report.errors.is_empty(),
                "PG {major}: {:?}\n{}",
                report.errors,
                case.sql
            );
            let fired = report.findings.iter().any(|f| f.rule.name == case.rule);
            if fired != case.fires_on.contains(&major) {
                failures.push(format!(
                    "PG {major}: {} fired={fired} on {}",
                    case.rule, case.sql
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
