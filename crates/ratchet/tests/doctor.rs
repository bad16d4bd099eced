//! `ratchet doctor` against real PostgreSQL: the capability table in text and JSON, what a
//! role without privileges is told, and engine commands refusing early with the doctor's
//! reason when a capability is missing.

use std::process::{Command, Output};

use ratchet_scratch::testing::TestDb;

fn ratchet(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `url` with its user replaced by `user`.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.split_once('@').map(|(_, r)| r).unwrap_or(rest);
    format!("{scheme}://{user}@{rest}")
}

#[tokio::test]
async fn doctor_prints_the_capability_table_and_json() {
    let db = TestDb::new().await;
    let o = ratchet(&db.url, &["doctor"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for row in [
        "ok      server",
        "row triggers",
        "advisory locks",
        "transactional DDL",
        "create schemas",
        "lock_timeout = ",
        "max_connections = ",
        "wal_level = ",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    let o = ratchet(&db.url, &["doctor", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("doctor --format json");
    assert_eq!(v["flavour"], "postgresql");
    let num = v["server_version_num"].as_i64().unwrap();
    let views = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "security_invoker views")
        .unwrap();
    // Version-specific: no security_invoker views before PostgreSQL 15.
    assert_eq!(views["verdict"], if num >= 150000 { "ok" } else { "warn" });
    // The doctor writes nothing: no state schema appears.
    let c = db.client().await;
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'ratchet'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_role_without_privileges_is_told_what_is_missing() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let role = format!("doctor_{}", std::process::id());
    c.batch_execute(&format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE TABLE owned_by_someone_else (id int PRIMARY KEY);
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
    ))
    .await
    .unwrap();
    let o = ratchet(&as_user(&db.url, &role), &["doctor"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("MISSING create schemas"), "{out}");
    assert!(out.contains("GRANT CREATE ON DATABASE"), "{out}");
    assert!(out.contains("`owned_by_someone_else`"), "{out}");
    assert!(out.contains("pg_monitor"), "{out}");
}

#[tokio::test]
async fn engine_commands_refuse_early_when_row_triggers_are_impossible() {
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute("DROP EXTENSION plpgsql").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("01_t.yaml");
    std::fs::write(
        &file,
        "operations:\n  - create_table:\n      name: t\n      columns:\n        - name: id\n          type: int\n          pk: true\n",
    )
    .unwrap();
    let o = ratchet(&db.url, &["start", file.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "a refusal: {out}");
    assert!(
        out.contains("row triggers") && out.contains("CREATE EXTENSION plpgsql"),
        "{out}"
    );
    assert!(out.contains("ratchet doctor"), "{out}");
    // Refused before anything was written.
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'ratchet'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}
