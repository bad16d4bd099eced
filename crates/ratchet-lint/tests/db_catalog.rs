//! Catalog-backed linting against a real PostgreSQL: `DATABASE_URL` when set, otherwise a
//! throwaway cluster started here from the installed server binaries (initdb + pg_ctl on a
//! free port, socket in a temp dir; as root, run as the `postgres` user).

use std::path::{Path, PathBuf};
use std::process::Command;

use ratchet_lint::{Catalog, Linter, Settings, Severity};

struct Server {
    conn: String,
    cluster: Option<(PathBuf, tempfile::TempDir)>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((bin, dir)) = &self.cluster {
            let _ = as_postgres(
                &bin.join("pg_ctl"),
                &[
                    "-D",
                    &dir.path().join("data").display().to_string(),
                    "-m",
                    "immediate",
                    "stop",
                ],
            );
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).output().expect("run a PostgreSQL binary")
}

fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL installed")
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn server() -> Server {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Server {
            conn: url,
            cluster: None,
        };
    }
    let bin = pg_bin();
    let dir = tempfile::Builder::new()
        .prefix("ratchet-lint-pg")
        .tempdir()
        .expect("tempdir");
    if is_root() {
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
    }
    let data = dir.path().join("data").display().to_string();
    let init = as_postgres(
        &bin.join("initdb"),
        &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
    );
    assert!(
        init.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let port = free_port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses='' -c fsync=off",
        dir.path().display()
    );
    let log = dir.path().join("log").display().to_string();
    let start = as_postgres(
        &bin.join("pg_ctl"),
        &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
    );
    assert!(
        start.status.success(),
        "pg_ctl start: {}",
        String::from_utf8_lossy(&start.stderr)
    );
    let conn = format!(
        "host={} port={port} user=postgres dbname=postgres",
        dir.path().display()
    );
    Server {
        conn,
        cluster: Some((bin, dir)),
    }
}

/// A fresh database per test run, dropped afterwards.
fn with_database(setup: &str, test: impl FnOnce(&Catalog)) {
    let server = server();
    let mut admin = postgres::Client::connect(&server.conn, postgres::NoTls).expect("connect");
    let db = format!("ratchet_test_lint_{}", std::process::id());
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .expect("drop stale database");
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .expect("create database");
    let url = if server.conn.contains("dbname=") {
        server
            .conn
            .replace("dbname=postgres", &format!("dbname={db}"))
    } else {
        let (base, _) = server.conn.rsplit_once('/').expect("url with a database");
        format!("{base}/{db}")
    };
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect test db");
    client.batch_execute(setup).expect("setup");
    drop(client);
    let catalog = Catalog::load(&url).expect("catalog loads");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&catalog)));
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn severities(catalog: &Catalog, settings: &Settings, sql: &str, rule: &str) -> Vec<Severity> {
    let report = Linter::new(settings, Some(catalog)).lint_sql("m.sql", sql);
    report
        .findings
        .iter()
        .filter(|f| f.rule.name == rule)
        .map(|f| f.severity)
        .collect()
}

#[test]
fn catalog_facts_drive_severity_types_and_indexes() {
    let setup = "
        CREATE TABLE tiny (id int PRIMARY KEY, code varchar(20));
        INSERT INTO tiny SELECT g, g::text FROM generate_series(1, 50) g;
        CREATE TABLE big (id int PRIMARY KEY, note varchar(20), owner_id int);
        INSERT INTO big SELECT g, g::text, g FROM generate_series(1, 20000) g;
        ANALYZE;
    ";
    with_database(setup, |catalog| {
        let v = catalog.server_version.expect("server version read");
        assert!(v.major >= 12, "{v}");
        // Thresholds scaled down so the test stays fast: tiny < 100 rows <= … < 10000 <= big.
        let settings = Settings {
            small_table_rows: 100.0,
            large_table_rows: 10_000.0,
            ..Settings::default()
        };
        let rule = "create-index-non-concurrently";
        assert_eq!(
            severities(catalog, &settings, "CREATE INDEX ON tiny (code);", rule),
            [Severity::Info]
        );
        assert_eq!(
            severities(catalog, &settings, "CREATE INDEX ON big (note);", rule),
            [Severity::Error]
        );
        // varchar widening is known to be catalog-only; int → bigint rewrites.
        let rule = "alter-column-type-rewrite";
        assert!(severities(
            catalog,
            &settings,
            "ALTER TABLE big ALTER COLUMN note TYPE text;",
            rule
        )
        .is_empty());
        assert!(severities(
            catalog,
            &settings,
            "ALTER TABLE big ALTER COLUMN note TYPE varchar(40);",
            rule
        )
        .is_empty());
        assert_eq!(
            severities(
                catalog,
                &settings,
                "ALTER TABLE big ALTER COLUMN id TYPE bigint;",
                rule
            ),
            [Severity::Error]
        );
        // An FK on an existing table without an index is judged from the catalog.
        let fk = "ALTER TABLE big ADD CONSTRAINT big_owner_fk FOREIGN KEY (owner_id) REFERENCES tiny (id) NOT VALID;";
        assert_eq!(
            severities(catalog, &settings, fk, "fk-without-index"),
            [Severity::Warning]
        );
        assert!(severities(
            catalog,
            &settings,
            "ALTER TABLE big ADD CONSTRAINT f FOREIGN KEY (id) REFERENCES tiny (id) NOT VALID;",
            "fk-without-index"
        )
        .is_empty());
    });
}

// Issue #10: `ADD PRIMARY KEY USING INDEX` on an index built by an earlier migration was
// not checked; with the catalog, nullable columns are reported at the table's size
// severity and NOT NULL ones are fine.
#[test]
fn pk_using_index_reads_nullability_from_the_catalog() {
    let setup = "
        CREATE TABLE nullable_t (id int);
        INSERT INTO nullable_t SELECT g FROM generate_series(1, 2000) g;
        CREATE UNIQUE INDEX nullable_idx ON nullable_t (id);
        CREATE TABLE notnull_t (id int NOT NULL);
        INSERT INTO notnull_t SELECT g FROM generate_series(1, 2000) g;
        CREATE UNIQUE INDEX notnull_idx ON notnull_t (id);
        ANALYZE;
    ";
    with_database(setup, |catalog| {
        // 2000 rows is "large" with these thresholds, so a scan is an error.
        let settings = Settings {
            small_table_rows: 100.0,
            large_table_rows: 1000.0,
            ..Settings::default()
        };
        let rule = "pk-using-index-on-nullable";
        let sql = "ALTER TABLE nullable_t ADD CONSTRAINT nullable_pk PRIMARY KEY USING INDEX nullable_idx;";
        assert_eq!(severities(catalog, &settings, sql, rule), [Severity::Error]);
        let sql =
            "ALTER TABLE notnull_t ADD CONSTRAINT notnull_pk PRIMARY KEY USING INDEX notnull_idx;";
        assert_eq!(severities(catalog, &settings, sql, rule), []);
    });
}

// Issue #10: with a database, the target version is the server's unless --pg-version says
// otherwise; version-gated rules follow it (VIRTUAL generated columns need PG 18).
#[test]
fn target_version_defaults_to_the_server() {
    with_database("CREATE TABLE people (first text, last text);", |catalog| {
        let server = catalog.server_version.expect("server version read");
        let mut settings = Settings::default();
        settings.target_server(catalog.server_version, false);
        assert_eq!(settings.pg_version, server);
        let sql = "ALTER TABLE people ADD COLUMN full_name text GENERATED ALWAYS AS (first || last) VIRTUAL;";
        let rule = "add-column-stored-generated";
        let got = severities(catalog, &settings, sql, rule);
        assert_eq!(got.is_empty(), server.at_least(18), "{server}: {got:?}");
        // An explicit --pg-version wins over the server.
        let mut explicit = Settings {
            pg_version: ratchet_lint::PgVersion::new(18),
            ..Settings::default()
        };
        explicit.target_server(catalog.server_version, true);
        assert_eq!(explicit.pg_version, ratchet_lint::PgVersion::new(18));
        assert!(severities(catalog, &explicit, sql, rule).is_empty());
    });
}
