//! The `ratchet` binary end to end against real PostgreSQL: SIGKILL at every step and
//! resume, exit codes, bad files, the pgroll examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ratchet_scratch::testing::{count_writes_sql, TestDb, WRITES_PER_ROW};

fn ratchet(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Output {
    if args.first() == Some(&"complete") {
        switch_reads(db);
    }
    run(db, args, env)
}

/// What a team does before `complete`: every read flag of the active migration on
/// (`--force`, so that a test of the validation gate still meets it at `complete`;
/// `tests/flags_cli.rs` tests the flag gates themselves).
fn switch_reads(db: &TestDb) {
    let o = run(db, &["flags", "list", "--format", "json"], &[]);
    let Ok(flags) = serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout) else {
        return;
    };
    for f in flags {
        if f["gates_complete"] == true && f["setting"]["state"] != "on" {
            let name = f["name"].as_str().unwrap_or_default();
            run(db, &["flags", "set", name, "on", "--force"], &[]);
        }
    }
}

fn run(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Output {
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
    // A bad file is a usage error whatever is wrong with it (issue 9: this was 1).
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("table `nope` does not exist"));

    for workers in ["0", "65", "two"] {
        let o = ratchet(&db, &["backfill", "--backfill-workers", workers], &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("--backfill-workers"), "{}", text(&o));
    }

    let o = ratchet(&db, &["status", "--format", "json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["active"], serde_json::Value::Null);
    assert_eq!(v["history"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_waits_then_refuses_while_one_runs() {
    let db = TestDb::new().await;
    let o = ratchet(&db, &["init"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let holder = db.client().await;
    holder
        .query("SELECT pg_advisory_lock(hashtext('ratchet:ratchet'))", &[])
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let o = ratchet(&db, &["init", "--wait", "1s"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("another ratchet process"), "{err}");
    assert!(
        err.contains(
            "`ratchet status` shows what it is doing: let it finish, or wait longer with --wait"
        ),
        "{err}"
    );
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(1),
        "it waited"
    );
    let o = ratchet(&db, &["init", "--wait", "0"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Read-only commands never take the lock: they answer at once.
    let o = ratchet(&db, &["status", "--wait", "0"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("01_t.yaml");
    std::fs::write(
        &f,
        "operations:\n  - create_table:\n      name: t\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n",
    )
    .unwrap();
    let o = ratchet(&db, &["plan", f.to_str().unwrap(), "--wait", "0"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("CREATE TABLE"), "{}", text(&o));
    // Connection options before the subcommand (issue 9).
    let o = ratchet(&db, &["--wait", "0", "init"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // With the default wait, a release while waiting lets the second process through.
    let second = std::thread::scope(|s| {
        let second = s.spawn(|| ratchet(&db, &["init"], &[]));
        std::thread::sleep(std::time::Duration::from_millis(700));
        // The test runs on the runtime's own thread, the connection on its workers.
        let rt = tokio::runtime::Handle::current();
        let holder = &holder;
        s.spawn(move || {
            rt.block_on(holder.query(
                "SELECT pg_advisory_unlock(hashtext('ratchet:ratchet'))",
                &[],
            ))
            .unwrap()
        })
        .join()
        .unwrap();
        second.join().unwrap()
    });
    assert!(second.status.success(), "{}", text(&second));
}

async fn scalar(db: &TestDb, sql: &str) -> String {
    let c = db.client().await;
    c.query_one(&format!("SELECT ({sql})::text"), &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get::<_, Option<String>>(0)
        .unwrap_or_default()
}

#[tokio::test]
async fn migrate_applies_all_56_pgroll_examples_with_the_schema_they_describe() {
    let db = TestDb::new().await;
    let dir = examples_dir();
    let o = ratchet(&db, &["migrate", dir.to_str().unwrap(), "--complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ratchet(&db, &["status", "--format", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["history"].as_array().unwrap().len(), 56);
    assert!(v["history"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["done"] == true));
    assert_eq!(v["version_schema"], "public_with_version_schema");
    assert_eq!(v["active"], serde_json::Value::Null);
    let col = |t: &str, c: &str| {
        format!(
            "SELECT format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END
               FROM pg_attribute WHERE attrelid = 'public.{t}'::regclass AND attname = '{c}' AND NOT attisdropped"
        )
    };
    let has_con = |t: &str, k: &str| {
        format!("SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.{t}'::regclass AND conname = '{k}'")
    };
    // Each fact names the example that establishes it.
    let facts: Vec<(String, &str)> = vec![
        (col("clients", "name"), "character varying(255) not null"), // 01 + 04 rename_table
        (col("users", "description"), "character varying(255)"),      // 06 add_column with up
        (col("fruits", "price"), ""),                                 // 09 drop_column with down
        (col("employees", "job_title"), "character varying(255) not null"), // 13 rename_column
        (col("reviews", "review"), "text not null"),                  // 16 set nullable
        (has_con("reviews", "reviews_review_unique"), "0"),           // 15 then 27 dropped
        (col("reviews", "rating"), "integer not null"),               // 17 + 18 change type
        (has_con("posts", "fk_users_id"), "0"),                       // 21 then 24 dropped
        (has_con("posts", "title_length"), "0"),                      // 22 then 23 dropped
        (col("posts", "title"), "character varying(255)"),            // 31 unset not null
        (has_con("people", "age_check"), "1"),                        // 26
        (col("people", "description"), "character varying(255) not null"), // 30
        (col("people", "birth_date"), "timestamp without time zone"), // 32 onComplete
        (has_con("people", "name_length_check"), "1"),                // 33 rename constraint
        (col("events", "name"), "text not null"),                     // 35
        (has_con("events", "event_name_length"), "1"),                // 35
        (has_con("events", "events_event_name_unique"), "1"),         // 35
        ("SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = 'public.events'::regclass AND a.attname = 'name'".into(), "'unknown event'::text"), // 35
        ("SELECT coalesce(col_description('public.events'::regclass, (SELECT attnum FROM pg_attribute WHERE attrelid = 'public.events'::regclass AND attname = 'name')), 'none')".into(), "none"), // 36
        ("SELECT count(*) FROM pg_index WHERE indexrelid = 'public.idx_fruits_name'::regclass AND indisvalid".into(), "1"), // 38
        (col("fruits", "size"), "fruit_size not null"),                // 40, 41
        (col("fruits", "name"), "character varying(255)"),            // 49 unset not null
        ("SELECT count(*) FROM pg_index WHERE indexrelid = 'public.idx_fruits_unique_name'::regclass AND indisunique".into(), "1"), // 42 kept by 49
        (has_con("tickets", "unique_zip_name"), "1"),                 // 44
        (has_con("tickets", "check_zip_name"), "0"),                  // 45 then 48 dropped
        (has_con("tickets", "fk_sellers"), "1"),                      // 47
        ("SELECT count(*) FROM pg_attrdef WHERE adrelid = 'public.tickets'::regclass".into(), "1"), // 46: only the serial default left
        (has_con("library", "forbid_duplicated_titles"), "1"),        // 52
        (col("library", "value"), "integer not null"),                // 53 volatile default
        (has_con("tasks", "tasks_pkey"), "1"),                        // 55
        ("SELECT relreplident FROM pg_class WHERE oid = 'public.fruits'::regclass".into(), "i"), // 29
        ("SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attname LIKE '\\_ratchet%' AND NOT a.attisdropped".into(), "0"),
        ("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\\_ratchet%'".into(), "0"),
        ("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'public\\_%'".into(), "1"),
    ];
    for (sql, want) in facts {
        assert_eq!(scalar(&db, &sql).await, want, "{sql}");
    }
    // The version schema shows the final tables.
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM public_with_version_schema.products"
        )
        .await,
        "0"
    );
    // Running it again changes nothing.
    let o = ratchet(&db, &["migrate", dir.to_str().unwrap(), "--complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("everything is applied already"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_backfill_then_resume_loses_and_repeats_nothing() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("01_items.yaml");
    std::fs::write(
        &v1,
        "operations:\n  - create_table:\n      name: items\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n        - name: amount\n          type: text\n",
    )
    .unwrap();
    let v2 = dir.path().join("02_type.yaml");
    std::fs::write(
        &v2,
        "operations:\n  - alter_column:\n      table: items\n      column: amount\n      type: bigint\n      up: CAST(amount AS bigint)\n      down: CAST(amount AS text)\n",
    )
    .unwrap();
    let (v1, v2) = (v1.to_str().unwrap(), v2.to_str().unwrap());
    let o = ratchet(&db, &["start", v1, "--complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let c = db.client().await;
    // Count every write of the new column per row, with a trigger of our own.
    // Enough rows that the first run (3 workers) is still backfilling at its kill moment
    // (100-400 ms): 20,000 rows in page batches were sometimes done before it.
    c.batch_execute("INSERT INTO public.items SELECT g, g::text FROM generate_series(1, 60000) g")
        .await
        .unwrap();
    c.batch_execute(&count_writes_sql("items", "_ratchet_new_amount"))
        .await
        .unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut kills = 0;
    let mut last_killed = false;
    // Killed runs with one to four workers: slices cut by one run are walked, and cut
    // again, by the next.
    for workers in ["3", "1", "4", "2"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ratchet"))
            .args(["start", v2, "--batch-max", "100", "--batch-target", "20ms"])
            .args(["--backfill-workers", workers])
            .env("DATABASE_URL", &db.url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = 100 + (seed >> 33) % 300;
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        last_killed = child.try_wait().unwrap().is_none();
        if last_killed {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 1, "the backfill was never interrupted");
    if last_killed {
        // Issue 9: after a kill mid-backfill, status named the new version schema,
        // which did not exist yet.
        let o = ratchet(&db, &["status", "--format", "json"], &[]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["version_schema"], "public_01_items", "{}", text(&o));
        // A kill before the start recorded anything (a slow machine) leaves nothing
        // pending; otherwise the pending schema is named as such.
        if !v["active"].is_null() {
            assert_eq!(
                v["pending_version_schema"],
                "public_02_type",
                "{}",
                text(&o)
            );
        }
    }
    let o = ratchet(&db, &["start", v2, "--backfill-workers", "2"], &[]);
    assert!(o.status.success(), "after {kills} kills: {}", text(&o));
    let o = ratchet(&db, &["validate"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Two chunks of 10,000 keys: neither a row skipped nor one counted twice.
    assert!(text(&o).contains("checked 60000 rows"), "{}", text(&o));
    let (total, most): (i64, i64) = {
        let r = c.query_one(WRITES_PER_ROW, &[]).await.unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(total, 60000, "every row backfilled (after {kills} kills)");
    assert_eq!(most, 1, "no row written twice (after {kills} kills)");
    let slices: i64 = scalar(&db, "SELECT count(*) FROM ratchet.backfill_slices")
        .await
        .parse()
        .unwrap();
    assert!(slices >= 2, "the workers shared slices: {slices}");
    let o = ratchet(&db, &["complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        scalar(&db, "SELECT sum(amount) FROM public.items").await,
        "1800030000"
    );
}

/// `items(id, amount text, note text)` with `rows` rows, and a second migration that
/// changes `amount` to bigint (a backfill) and then indexes `note` concurrently.
async fn items_with_backfill(db: &TestDb, dir: &Path, rows: i64) -> (String, String) {
    let v1 = dir.join("01_items.yaml");
    std::fs::write(
        &v1,
        "operations:\n  - create_table:\n      name: items\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n        - name: amount\n          type: text\n        - name: note\n          type: text\n",
    )
    .unwrap();
    let v2 = dir.join("02_type.yaml");
    std::fs::write(
        &v2,
        "operations:\n  - alter_column:\n      table: items\n      column: amount\n      type: bigint\n      up: CAST(amount AS bigint)\n      down: CAST(amount AS text)\n  - create_index:\n      name: items_note_idx\n      table: items\n      columns:\n        - column: note\n",
    )
    .unwrap();
    let (v1, v2) = (v1.display().to_string(), v2.display().to_string());
    let o = ratchet(db, &["start", &v1, "--complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let c = db.client().await;
    c.batch_execute(&format!(
        "INSERT INTO public.items SELECT g, g::text, 'n' || g FROM generate_series(1, {rows}) g"
    ))
    .await
    .unwrap();
    (v1, v2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_at_once_during_a_backfill_and_a_waiting_start_causes_no_deadlock() {
    // Issue 9: status waited for the migration lock, and any waiter made the running
    // CREATE INDEX CONCURRENTLY deadlock (40P01) over and over.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, v2) = items_with_backfill(&db, dir.path(), 40_000).await;
    let spawn_start = |wait: &str| {
        Command::new(env!("CARGO_BIN_EXE_ratchet"))
            .args(["start", &v2, "--batch-max", "100", "--batch-target", "20ms"])
            .args([
                "--lock-timeout",
                "200ms",
                "--max-attempts",
                "3",
                "--wait",
                wait,
            ])
            .env("DATABASE_URL", &db.url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn_start("10s");
    // status, from another terminal, while the backfill runs: at once, with progress.
    let mut progress = None;
    for _ in 0..100 {
        let t = std::time::Instant::now();
        let o = ratchet(&db, &["status"], &[]);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "{}",
            text(&o)
        );
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let live = out.lines().find(|l| {
            l.contains("backfill items:") && !l.contains(" 0 rows") && !l.contains("done")
        });
        if let Some(l) = live {
            progress = Some((l.to_string(), out.clone()));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (live, out) = progress.expect("status never showed the running backfill");
    assert!(live.contains(" rows"), "{out}");
    assert!(out.contains("active: 02_type (started)"), "{out}");
    // The new version schema is not usable before the views step: reported as pending.
    assert!(out.contains("version schema: public_01_items\n"), "{out}");
    assert!(
        out.contains("pending version schema: public_02_type"),
        "{out}"
    );
    let o = ratchet(&db, &["status", "--format", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version_schema"], "public_01_items", "{}", text(&o));
    assert_eq!(
        v["pending_version_schema"],
        "public_02_type",
        "{}",
        text(&o)
    );
    // The JSON carries the live progress too.
    let backfill = &v["active"]["backfills"][0];
    assert_eq!(backfill["table"], "items", "{v}");
    assert!(backfill["rows_done"].as_i64().unwrap() > 0, "{v}");
    // A second start waits for the lock (polling, no open transaction) through the
    // backfill and the concurrent index build of the first.
    let mut first = first;
    let second = spawn_start("60s");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first start ended too soon"
    );
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(!err.contains('↻') && !err.contains("40P01"), "{err}");
    assert!(err.contains("build index items_note_idx"), "{err}");
    let second = second.wait_with_output().unwrap();
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("resuming the start"),
        "{}",
        text(&second)
    );
    let o = ratchet(&db, &["status", "--format", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version_schema"], "public_02_type", "{}", text(&o));
    assert_eq!(v["pending_version_schema"], serde_json::Value::Null);
}

#[tokio::test]
async fn an_up_syntax_error_points_at_the_fragment_and_exits_2() {
    // Issue 9: the error blamed a `)` the user never wrote, at the operation's position,
    // and exited 1.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    items_with_backfill(&db, dir.path(), 1).await;
    let bad = dir.path().join("02_bad_up.yaml");
    std::fs::write(
        &bad,
        "operations:\n  - alter_column:\n      table: items\n      column: amount\n      type: bigint\n      up: CAST(amount AS bigint) bogus junk\n      down: CAST(amount AS text)\n",
    )
    .unwrap();
    for cmd in ["plan", "start"] {
        let o = ratchet(&db, &[cmd, bad.to_str().unwrap()], &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("02_bad_up.yaml:6:40: up `CAST(amount AS bigint) bogus junk` is not a valid SQL expression: syntax error at or near \"junk\""), "{err}");
        assert!(!err.contains("\")\""), "{err}");
    }
    std::fs::write(
        &bad,
        "operations:\n  - alter_column:\n      table: items\n      column: amount\n      type: bigint\n      up: |\n        CASE WHEN amount = '' THEN 0\n             ELSE CAST(amount AS bigint) +\n        END\n      down: CAST(amount AS text)\n",
    )
    .unwrap();
    let o = ratchet(&db, &["plan", bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("02_bad_up.yaml:9:9: up `CASE"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn a_failed_start_reports_the_old_version_schema_and_takes_the_fixed_file() {
    // Issue 9: status named the new version schema although start never created it, and
    // the fixed file was refused as "immutable" although no step had run.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    items_with_backfill(&db, dir.path(), 10).await;
    let v2 = dir.path().join("02_flag.yaml");
    let write = |ty: &str| {
        std::fs::write(
            &v2,
            format!("operations:\n  - add_column:\n      table: items\n      column:\n        name: flag\n        type: {ty}\n        nullable: true\n"),
        )
        .unwrap()
    };
    write("bgint");
    let v2s = v2.to_str().unwrap();
    let o = ratchet(&db, &["start", v2s], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("type \"bgint\" does not exist"), "{err}");
    assert_eq!(
        err.matches("run the same command again").count(),
        1,
        "{err}"
    );
    let o = ratchet(&db, &["status", "--format", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version_schema"], "public_01_items", "{}", text(&o));
    assert_eq!(
        v["pending_version_schema"],
        "public_02_flag",
        "{}",
        text(&o)
    );
    let o = ratchet(&db, &["status"], &[]);
    assert!(
        text(&o).contains("version schema: public_01_items\n"),
        "{}",
        text(&o)
    );
    write("bigint");
    let o = ratchet(&db, &["start", v2s], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no step of 02_flag ran"), "{}", text(&o));
    let o = ratchet(&db, &["status", "--format", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version_schema"], "public_02_flag", "{}", text(&o));
    assert_eq!(v["pending_version_schema"], serde_json::Value::Null);
    assert_eq!(
        columns(&db, "public_02_flag", "items").await,
        ["id", "amount", "note", "flag"]
    );
    // Once steps have run, a changed file names the way out.
    write("text");
    let o = ratchet(&db, &["start", v2s], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("`ratchet abort` undoes them"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn migrate_ignores_a_comment_added_to_an_applied_file() {
    // Issue 9: the checksum covered the raw bytes, so a comment blocked `migrate`.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("01_t.yaml");
    let body = "operations:\n  - create_table:\n      name: t\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n";
    std::fs::write(&f, body).unwrap();
    let d = dir.path().to_str().unwrap();
    let o = ratchet(&db, &["migrate", d, "--complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(
        &f,
        format!("# creates t\n{}", body.replace("bigint", "'bigint'")),
    )
    .unwrap();
    let o = ratchet(&db, &["migrate", d, "--complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("everything is applied already"),
        "{}",
        text(&o)
    );
    std::fs::write(&f, body.replace("bigint", "int")).unwrap();
    let o = ratchet(&db, &["migrate", d, "--complete"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("applied migrations are immutable"),
        "{}",
        text(&o)
    );
}

/// Runs ratchet with its stdout closed before it prints anything.
fn with_closed_stdout(db: &TestDb, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn a_closed_pipe_ends_the_output_quietly() {
    // Issue 9: `ratchet status | head -3` panicked with "failed printing to stdout".
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, v2) = items_with_backfill(&db, dir.path(), 1).await;
    for args in [
        vec!["status"],
        vec!["status", "--format", "json"],
        vec!["plan", &v2, "--format", "json"],
        vec!["plan", &v2],
        vec!["explain", "A18"],
        vec!["explain", "--list"],
    ] {
        let o = with_closed_stdout(&db, &args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(o.stderr.is_empty(), "{args:?}: {}", text(&o));
    }
}

#[tokio::test]
async fn durations_need_a_unit_and_options_may_precede_the_subcommand() {
    let db = TestDb::new().await;
    let o = ratchet(&db, &["init", "--wait", "1"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    let err = String::from_utf8_lossy(&o.stderr);
    let first = err.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "error: invalid value '1' for '--wait <WAIT>': `1` has no unit: write 1s for seconds or 1ms for milliseconds",
        "{err}"
    );
    // docs/commands.md shows that very line.
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/commands.md"),
    )
    .unwrap();
    assert!(
        doc.contains(first),
        "docs/commands.md is out of date: {first}"
    );
    let o = ratchet(&db, &["--lock-timeout", "1", "status"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = ratchet(
        &db,
        &[
            "--database-url",
            &db.url,
            "--schema=public",
            "--wait",
            "2s",
            "init",
        ],
        &[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("state schema `ratchet` is ready"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn plan_shows_raw_sql_locks_from_the_linters_table() {
    // Issue 9: a NOT VALID foreign key and VALIDATE CONSTRAINT were shown as ACCESS
    // EXCLUSIVE, and the referenced table not at all.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    items_with_backfill(&db, dir.path(), 1).await;
    let f = dir.path().join("02_fk.yaml");
    std::fs::write(
        &f,
        "operations:\n  - sql:\n      up: ALTER TABLE items ADD CONSTRAINT items_fk FOREIGN KEY (id) REFERENCES other (id) NOT VALID; ALTER TABLE items VALIDATE CONSTRAINT items_fk\n",
    )
    .unwrap();
    let o = ratchet(&db, &["plan", f.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let locks: Vec<&str> = out.lines().filter(|l| l.contains("lock:")).collect();
    assert_eq!(
        locks[..3],
        [
            "        lock: SHARE ROW EXCLUSIVE on public.items",
            "        lock: SHARE ROW EXCLUSIVE on public.other",
            "        lock: SHARE UPDATE EXCLUSIVE on public.items",
        ],
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_retries_name_the_blocking_session() {
    // Issue 9: retries said only "retry 2 in 86 ms" and the give-up error sent the user to
    // pg_stat_activity.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    items_with_backfill(&db, dir.path(), 1).await;
    let blocker = db.client().await;
    blocker
        .batch_execute(
            "SET application_name = 'report-job'; BEGIN; SELECT count(*) FROM public.items",
        )
        .await
        .unwrap();
    let pid: i32 = blocker
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let f = dir.path().join("02_flag.yaml");
    std::fs::write(
        &f,
        "operations:\n  - add_column:\n      table: items\n      column:\n        name: flag\n        type: boolean\n        nullable: true\n",
    )
    .unwrap();
    let o = ratchet(
        &db,
        &["start", f.to_str().unwrap(), "--max-attempts", "2"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let who = format!(
        "blocked by pid {pid} (application report-job, idle in transaction, transaction open "
    );
    let retry = err.lines().find(|l| l.contains('↻')).unwrap_or_default();
    assert!(retry.contains(&who), "{err}");
    assert!(retry.contains("retry 2 in"), "{err}");
    let age = |l: &str| {
        let rest = &l[l.find(&who).unwrap() + who.len()..];
        let secs = rest.split(' ').next().unwrap().parse::<f64>();
        assert!(secs.is_ok() && rest.contains(" s)"), "{l}");
    };
    age(retry);
    // The final error names the blocker too, and gives the next step once.
    let last = err
        .lines()
        .find(|l| l.contains("gave up after 2 attempts"))
        .unwrap_or_default();
    assert!(last.contains(&who), "{err}");
    age(last);
    assert_eq!(err.matches("pg_terminate_backend").count(), 1, "{err}");
    assert_eq!(o.stdout, b"", "{err}");
}

fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

// A frozen ratchet (SIGSTOP: a VM pause, a long GC pause, a partition) right after
// `ADD COLUMN`, inside a backfill batch, or after `SET NOT NULL` held its locks for as
// long as it was stopped, and every query behind them waited. The server now ends the
// stalled transaction after ratchet's idle-in-transaction bound (4 × the 200 ms lock
// timeout, at least 1 s); the rerun finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_ratchet_never_holds_its_locks_for_long() {
    let dir = demo_dir();
    let file = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let (v1, v2, v3) = (
        file("01_create_users.yaml"),
        file("02_profile.yaml"),
        file("03_email_required.yaml"),
    );
    for (point, version) in [
        ("start:0:before-commit", "public_02_profile"),
        ("backfill:1:before-commit", "public_02_profile"),
        ("complete:6:before-commit", "public_03_email_required"),
    ] {
        let db = TestDb::new().await;
        for f in [&v1, &v2] {
            let o = ratchet(&db, &["start", f, "--complete"], &[]);
            assert!(o.status.success(), "{}", text(&o));
        }
        let c = db.client().await;
        c.batch_execute(
            "INSERT INTO public.users (full_name, email)
             SELECT 'u' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'u' || g || '@x' END
               FROM generate_series(1, 20000) g",
        )
        .await
        .unwrap();
        let cmd: Vec<&str> = if point.starts_with("complete") {
            for args in [vec!["start", v3.as_str()], vec!["validate"]] {
                let o = ratchet(&db, &args, &[]);
                assert!(o.status.success(), "{}", text(&o));
            }
            vec!["complete"]
        } else {
            vec!["start", &v3]
        };
        if cmd[0] == "complete" {
            switch_reads(&db);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_ratchet"))
            .args(&cmd)
            .args(["--lock-timeout", "200ms"])
            .env("DATABASE_URL", &db.url)
            .env("RATCHET_FAULT_STOP", point)
            .env_remove("RATCHET_FAULT_KILL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let t0 = std::time::Instant::now();
        while !stopped(pid) {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{point}: never stopped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The application keeps reading and writing for 4 s while ratchet is frozen.
        let w = db.client().await;
        w.batch_execute(&format!("SET search_path TO {version}"))
            .await
            .unwrap();
        let mut worst = Duration::ZERO;
        let mut i: i64 = 0;
        let until = std::time::Instant::now() + Duration::from_secs(4);
        while std::time::Instant::now() < until {
            i += 1;
            let t = std::time::Instant::now();
            w.query_one("SELECT count(*) FROM users", &[])
                .await
                .unwrap();
            w.execute(
                "UPDATE users SET full_name = full_name WHERE id = $1",
                &[&((i * 37) % 20000 + 1)],
            )
            .await
            .unwrap();
            worst = worst.max(t.elapsed());
        }
        let _ = Command::new("kill")
            .args(["-CONT", &pid.to_string()])
            .status();
        let _ = child.wait();
        assert!(
            worst < Duration::from_millis(2500),
            "{point}: the workload waited {worst:?} behind a frozen ratchet"
        );
        // The same command again finishes the job.
        let o = ratchet(&db, &cmd, &[]);
        assert!(o.status.success(), "{point}: rerun\n{}", text(&o));
        if cmd[0] == "start" {
            for args in [["validate"], ["complete"]] {
                let o = ratchet(&db, &args, &[]);
                assert!(o.status.success(), "{point}: {args:?}\n{}", text(&o));
            }
        }
        let missing: i64 = c
            .query_one("SELECT count(*) FROM public.users WHERE email IS NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(missing, 0, "{point}");
        assert_eq!(
            columns(&db, "public_03_email_required", "users").await,
            ["id", "full_name", "email", "active"],
            "{point}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_carry_the_tables_comments_and_no_ratchet_marker() {
    // Issue 9: views carried the comment `ratchet:<hash>`, which `inspectdb
    // --include-views` copied into generated models. The table's and the columns' own
    // comments are shown instead; ratchet's bookkeeping stays in its state schema.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("01_items.yaml");
    std::fs::write(
        &v1,
        "operations:\n  - create_table:\n      name: items\n      comment: customer items\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n        - name: note\n          type: text\n          nullable: true\n          comment: free text\n",
    )
    .unwrap();
    let v2 = dir.path().join("02_flag.yaml");
    std::fs::write(
        &v2,
        "operations:\n  - add_column:\n      table: items\n      column:\n        name: flag\n        type: boolean\n        nullable: true\n        comment: set by the new version\n",
    )
    .unwrap();
    let o = ratchet(&db, &["start", v1.to_str().unwrap(), "--complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ratchet(&db, &["start", v2.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Both version schemas exist now, each with its view of items.
    let comments = |schema: &str| {
        format!(
            "SELECT coalesce(obj_description('{schema}.items'::regclass, 'pg_class'), '-') || ' | ' ||
                    string_agg(a.attname || '=' || coalesce(col_description(a.attrelid, a.attnum), '-'), ', ' ORDER BY a.attnum)
               FROM pg_attribute a WHERE a.attrelid = '{schema}.items'::regclass AND a.attnum > 0"
        )
    };
    assert_eq!(
        scalar(&db, &comments("public_01_items")).await,
        "customer items | id=-, note=free text"
    );
    assert_eq!(
        scalar(&db, &comments("public_02_flag")).await,
        "customer items | id=-, note=free text, flag=set by the new version"
    );
    // No view, in any schema, carries a ratchet marker.
    let markers = "SELECT count(*)::text FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
                    WHERE d.classoid = 'pg_class'::regclass AND c.relkind = 'v'
                      AND d.description LIKE 'ratchet:%'";
    assert_eq!(scalar(&db, markers).await, "0");
    // A column comment changed on the table meanwhile reaches the kept view at complete.
    db.client()
        .await
        .batch_execute("COMMENT ON COLUMN public.items.note IS 'notes by staff'")
        .await
        .unwrap();
    let o = ratchet(&db, &["complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        scalar(&db, &comments("public_02_flag")).await,
        "customer items | id=-, note=notes by staff, flag=set by the new version"
    );
    assert_eq!(scalar(&db, markers).await, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_up_names_the_row_and_one_way_out_for_each_cause() {
    // Issue 9: after a runtime `up` failure the error said both "fix that row or the
    // expression, then run ratchet backfill" and "run the same command again", and a
    // fixed expression was never picked up by `ratchet backfill`.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, v2) = items_with_backfill(&db, dir.path(), 50).await;
    let c = db.client().await;
    c.batch_execute("UPDATE public.items SET amount = 'seven' WHERE id = 7")
        .await
        .unwrap();
    let o = ratchet(&db, &["start", &v2], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "", "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`up` of items.amount fails for the row with (id)=(7): invalid input syntax for type bigint: \"seven\""),
        "{err}"
    );
    assert!(
        err.contains(
            "If the row is wrong: fix it, then run the same command again (it resumes here). \
             If `up` is wrong: run `ratchet abort`, fix `up` in the file, then run `ratchet start` again"
        ),
        "{err}"
    );
    assert_eq!(
        err.matches("run the same command again").count(),
        1,
        "{err}"
    );
    assert!(!err.contains("run `ratchet backfill`"), "{err}");
    // status, meanwhile: the old version is the one to use, the backfill unfinished.
    let o = ratchet(&db, &["status", "--format", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version_schema"], "public_01_items", "{}", text(&o));
    assert_eq!(v["pending_version_schema"], "public_02_type");
    assert_eq!(v["active"]["backfills"][0]["table"], "items", "{v}");
    assert_eq!(v["active"]["backfills"][0]["done"], false, "{v}");
    // The row was wrong: fix it and run the same command again.
    c.batch_execute("UPDATE public.items SET amount = '7' WHERE id = 7")
        .await
        .unwrap();
    let o = ratchet(&db, &["start", &v2], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ratchet(&db, &["validate"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ratchet(&db, &["complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        scalar(&db, "SELECT sum(amount) FROM public.items").await,
        "1275"
    );
    // The expression is wrong: abort, fix `up` in the file, start again.
    let v3 = dir.path().join("03_note.yaml");
    let write = |up: &str| {
        std::fs::write(
            &v3,
            format!("operations:\n  - alter_column:\n      table: items\n      column: note\n      type: bigint\n      up: {up}\n      down: CAST(note AS text)\n"),
        )
        .unwrap()
    };
    write("CAST(note AS bigint)");
    let v3s = v3.to_str().unwrap();
    let o = ratchet(&db, &["start", v3s], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("`up` of items.note fails for the row with (id)=(1)"),
        "{}",
        text(&o)
    );
    let o = ratchet(&db, &["abort"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    write("CAST(substr(note, 2) AS bigint)");
    let o = ratchet(&db, &["start", v3s, "--complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        scalar(&db, "SELECT sum(note) FROM public.items").await,
        "1275"
    );
}

/// `ratchet grants` after a GRANT made once the migration had started; `plan` and `start`
/// warn about a NOT NULL column that only `up` fills; `complete` names the version schema
/// it dropped and what happens to applications still on it.
#[tokio::test]
async fn grants_resync_not_null_warning_and_what_complete_dropped() {
    let db = TestDb::new().await;
    let v1 = demo_dir().join("01_create_users.yaml");
    let o = ratchet(&db, &["start", v1.to_str().unwrap(), "--complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("02_handle.yaml");
    std::fs::write(
        &v2,
        "operations:\n  - add_column:\n      table: users\n      up: lower(name)\n      column:\n        name: handle\n        type: text\n",
    )
    .unwrap();
    let v2 = v2.to_str().unwrap();
    let o = ratchet(&db, &["plan", v2], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`users.handle` becomes NOT NULL with no default")
            && err.contains("after `complete` such an insert fails"),
        "{}",
        text(&o)
    );
    let o = ratchet(&db, &["start", v2], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("becomes NOT NULL with no default"),
        "{}",
        text(&o)
    );

    let o = ratchet(&db, &["status"], &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("warning: `users.handle` becomes NOT NULL"),
        "status repeats it while the migration is active: {}",
        text(&o)
    );
    // New-version inserts that leave it out are counted, and status says how many.
    let c = db.client().await;
    c.batch_execute(
        "INSERT INTO public_02_handle.users (name) VALUES ('A'), ('B');
         INSERT INTO public_02_handle.users (name, handle) VALUES ('C', 'c');",
    )
    .await
    .unwrap();
    let o = ratchet(&db, &["status"], &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("2 insert(s) through public_02_handle left out `users.handle`"),
        "{}",
        text(&o)
    );
    let filled: i64 = c
        .query_one(
            "SELECT count(*) FROM public_02_handle.users WHERE name IN ('A', 'B') AND handle = lower(name)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(filled, 2, "up still fills them until complete");

    let app = format!("{}_reader", db.name);
    c.batch_execute(&format!(
        "CREATE ROLE \"{app}\"; GRANT USAGE ON SCHEMA public TO \"{app}\";
         GRANT SELECT ON users TO \"{app}\";"
    ))
    .await
    .unwrap();
    let read = format!(
        "SET ROLE \"{app}\"; SELECT handle FROM public_02_handle.users LIMIT 1; RESET ROLE;"
    );
    assert!(c.batch_execute(&read).await.is_err(), "not synced yet");
    c.batch_execute("RESET ROLE").await.unwrap();
    let o = ratchet(&db, &["grants"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("privileges synced onto public_02_handle"),
        "{out}"
    );
    assert!(
        out.contains("privileges synced onto public_01_create_users"),
        "{out}"
    );
    c.batch_execute(&read).await.unwrap();

    let o = ratchet(&db, &["validate"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ratchet(&db, &["complete"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("dropped public_01_create_users")
            && out.contains("move every application to public_02_handle first"),
        "{out}"
    );
    // The counter is gone with the expand; an insert that leaves the column out now fails.
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_ratchet\\_omitted%'"
        )
        .await,
        "0"
    );
    let err = c
        .batch_execute("INSERT INTO public_02_handle.users (name) VALUES ('D')")
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("null value"), "{err:?}");
}

/// A demo killed with SIGKILL (no destructor runs) leaves no server behind: its
/// throwaway cluster has a watchdog that stops it when the process is gone.
#[test]
fn a_killed_demo_leaves_no_server_behind() {
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ratchet demo starts");
    // Kept open until the demo is dead: a closed pipe would end it cleanly instead.
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let port = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.trim()
                .strip_prefix("listening on 127.0.0.1:")
                .and_then(|p| p.parse::<u16>().ok())
        })
        .expect("the demo prints the port of its cluster");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the demo's server is up on {port}"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server on port {port} still runs 30 s after its demo was killed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(lines);
}
