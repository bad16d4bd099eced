//! The `ratchet` binary end to end against real PostgreSQL: SIGKILL at every step and
//! resume, exit codes, bad files, the pgroll examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ratchet_scratch::testing::TestDb;

fn ratchet(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ratchet"));
    c.args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("RATCHET_FAULT_KILL")
        .args(["--lock-timeout", "200ms"]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo")
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat/pgroll-examples")
}

async fn columns(db: &TestDb, schema: &str, rel: &str) -> Vec<String> {
    let c = db.client().await;
    c.query(
        "SELECT a.attname::text FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = r.relnamespace
          WHERE n.nspname = $1 AND r.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum",
        &[&schema, &rel],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn killed(o: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    o.status.signal() == Some(9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_step_then_rerun_finishes_the_job() {
    let v1 = demo_dir().join("01_create_users.yaml");
    let v2 = demo_dir().join("02_profile.yaml");
    let (v1, v2) = (v1.to_str().unwrap(), v2.to_str().unwrap());
    // The demo's second migration has 4 start steps (#0-#3) and 3 complete steps (#4-#6).
    let points: Vec<String> = (0..4)
        .map(|i| format!("start:{i}"))
        .chain((4..7).map(|i| format!("complete:{i}")))
        .flat_map(|p| [format!("{p}:before-commit"), format!("{p}:after-commit")])
        .collect();
    for point in points {
        let db = TestDb::new().await;
        let o = ratchet(&db, &["start", v1, "--complete"], &[]);
        assert!(o.status.success(), "{}", text(&o));
        let c = db.client().await;
        c.batch_execute("INSERT INTO public.users (name, email) SELECT 'u' || g, 'u' || g FROM generate_series(1, 300) g")
            .await
            .unwrap();
        let phase_cmd: &[&str] = if point.starts_with("start") {
            &["start", v2]
        } else {
            let o = ratchet(&db, &["start", v2], &[]);
            assert!(o.status.success(), "{}", text(&o));
            &["complete"]
        };
        let o = ratchet(&db, phase_cmd, &[("RATCHET_FAULT_KILL", &point)]);
        assert!(killed(&o), "{point}: expected SIGKILL\n{}", text(&o));
        // The same command again finishes the job.
        let o = ratchet(&db, phase_cmd, &[]);
        assert!(o.status.success(), "{point}: rerun\n{}", text(&o));
        if point.starts_with("start") {
            let o = ratchet(&db, &["complete"], &[]);
            assert!(o.status.success(), "{point}: complete\n{}", text(&o));
        }
        assert_eq!(
            columns(&db, "public", "users").await,
            ["id", "full_name", "email", "active"],
            "{point}"
        );
        assert_eq!(
            columns(&db, "public_02_profile", "users").await,
            ["id", "full_name", "email", "active"],
            "{point}"
        );
        assert_eq!(
            columns(&db, "public_02_profile", "sessions").await,
            ["id", "user_id", "started_at"]
        );
        let n: i64 = c
            .query_one("SELECT count(*) FROM public_02_profile.users", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 300, "{point}: no row lost");
        let valid: bool = c
            .query_one("SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.users_email_idx'::regclass", &[])
            .await
            .unwrap()
            .get(0);
        assert!(valid, "{point}");
        // And running it once more changes nothing.
        let o = ratchet(&db, &["complete"], &[]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("nothing to complete"),
            "{}",
            text(&o)
        );
    }
}

#[tokio::test]
async fn exit_codes_and_errors_for_bad_input() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("01_bad.yaml");
    std::fs::write(
        &bad,
        "operations:\n  - create_table:\n      name: t\n      colums: []\n",
    )
    .unwrap();
    let o = ratchet(&db, &["start", bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("01_bad.yaml:4:7"), "{err}");
    assert!(err.contains("hint:"), "{err}");

    let missing = dir.path().join("02_missing.yaml");
    std::fs::write(&missing, "operations:\n  - drop_table:\n      name: nope\n").unwrap();
    let o = ratchet(&db, &["start", missing.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("table `nope` does not exist"));

    let o = ratchet(&db, &["status", "--format", "json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["active"], serde_json::Value::Null);
    assert_eq!(v["history"], serde_json::json!([]));
}

#[tokio::test]
async fn a_second_process_is_refused_while_one_runs() {
    let db = TestDb::new().await;
    let holder = db.client().await;
    holder
        .query("SELECT pg_advisory_lock(hashtext('ratchet:ratchet'))", &[])
        .await
        .unwrap();
    let o = ratchet(&db, &["status"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another ratchet process"));
}

#[tokio::test]
async fn migrate_applies_pgroll_examples_up_to_the_first_unsupported_operation() {
    let db = TestDb::new().await;
    let dir = examples_dir();
    let o = ratchet(&db, &["migrate", dir.to_str().unwrap(), "--complete"], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("03_add_column.yaml:"), "{out}");
    assert!(
        out.contains("not supported yet: add_column with `up`"),
        "{out}"
    );
    let o = ratchet(&db, &["status", "--format", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["history"][0]["name"], "01_create_tables");
    assert_eq!(v["history"][1]["name"], "02_create_another_table");
    assert_eq!(v["history"][1]["done"], true);
    assert_eq!(v["version_schema"], "public_02_create_another_table");
    // Running it again is refused at the same place and changes nothing.
    let o = ratchet(&db, &["migrate", dir.to_str().unwrap(), "--complete"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}
