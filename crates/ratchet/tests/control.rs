//! Operator control end to end against real PostgreSQL: `ratchet pause`, `resume`, `set`
//! and `events` from a second process steer a migration another process runs.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ratchet_scratch::testing::TestDb;
use serde_json::Value;

fn ratchet(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("RATCHET_FAULT_KILL")
        .output()
        .unwrap()
}

/// `ratchet ARGS` in the background, its output piped.
fn spawn(db: &TestDb, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("RATCHET_FAULT_KILL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
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

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `items(id, amount text, note text)` with `rows` rows; the second file changes
/// `amount` to bigint (a backfill), then indexes `note` concurrently.
async fn items(db: &TestDb, dir: &Path, rows: i64) -> String {
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
    ok(ratchet(db, &["start", v1.to_str().unwrap(), "--complete"]));
    // A batch is whole pages: a tenth of each page filled makes small batches (20 rows
    // here) take about as many rows as they ask for, so the backfill runs long enough to
    // be steered.
    db.client()
        .await
        .batch_execute(&format!(
            "ALTER TABLE public.items SET (fillfactor = 10);
             INSERT INTO public.items SELECT g, g::text, 'n' || g FROM generate_series(1, {rows}) g"
        ))
        .await
        .unwrap();
    v2.display().to_string()
}

/// The first backfill of `ratchet status --format json`, once there is one.
fn backfill(db: &TestDb) -> Option<Value> {
    let o = ratchet(db, &["status", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).ok()?;
    let b = v["active"]["backfills"].get(0)?.clone();
    Some(b)
}

fn rows_done(db: &TestDb) -> i64 {
    backfill(db).map_or(0, |b| b["rows_done"].as_i64().unwrap_or(0))
}

/// Poll `cond` every 50 ms for at most `secs` seconds.
fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not within {secs} s: {what}");
}

fn events_json(db: &TestDb) -> Vec<Value> {
    ok(ratchet(db, &["events", "--format", "json"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_set_batch_size_steer_a_running_backfill() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = items(&db, dir.path(), 40_000).await;
    // Set before the process starts: it applies from the first batch.
    let out = ok(ratchet(&db, &["set", "batch-size", "20"]));
    assert!(out.contains("no migration is active"), "{out}");
    let run = spawn(
        &db,
        &[
            "start",
            &v2,
            "--batch-target",
            "20ms",
            "--batch-max",
            "2000",
        ],
    );
    eventually(20, "the backfill runs with 20-row batches", || {
        backfill(&db).is_some_and(|b| b["rows_done"].as_i64() > Some(0) && b["batch_size"] == 20)
    });
    // Changed while it runs: the next batch has the new size.
    let out = ok(ratchet(&db, &["set", "batch-size", "30"]));
    assert!(out.contains("batch-size: 20 -> 30"), "{out}");
    eventually(3, "the next batches have 30 rows", || {
        backfill(&db).is_some_and(|b| b["batch_size"] == 30)
    });

    // Paused from this second process: the backfill stops within one batch time (plus
    // the 200 ms the running process takes to see it), and stays stopped.
    let out = ok(ratchet(&db, &["pause", "--reason", "load test"]));
    assert!(out.contains("paused"), "{out}");
    std::thread::sleep(Duration::from_millis(600));
    let stopped_at = rows_done(&db);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rows_done(&db), stopped_at, "rows_done moved while paused");
    assert!(
        stopped_at < 40_000,
        "the backfill finished before the pause"
    );
    let mut run = run;
    assert!(run.try_wait().unwrap().is_none(), "it must wait, not end");
    // A third terminal's `status --watch` says who paused it, and why.
    let mut watch = spawn(&db, &["status", "--watch", "--format", "json"]);
    let mut first = String::new();
    std::io::BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    watch.kill().unwrap();
    watch.wait().unwrap();
    let tick: Value = serde_json::from_str(&first).unwrap();
    let by = tick["paused_by"].as_str().unwrap_or_default();
    assert!(
        by.starts_with("postgres") && by.ends_with("(load test)"),
        "{first}"
    );
    // The running process said where it stopped, in the event log.
    let events = events_json(&db);
    let paused = of_kind(&events, "paused");
    assert_eq!(paused.len(), 1, "{events:?}");
    assert_eq!(paused[0]["detail"]["during"], "batches");
    assert_eq!(paused[0]["detail"]["reason"], "load test");
    assert_eq!(paused[0]["migration"], "02_type");

    let out = ok(ratchet(&db, &["resume"]));
    assert!(out.contains("resumed"), "{out}");
    eventually(5, "the backfill moves again", || {
        rows_done(&db) > stopped_at
    });
    // Back to the adaptive batch size, so that it finishes soon.
    let out = ok(ratchet(&db, &["set", "batch-size", "default"]));
    assert!(out.contains("configured value"), "{out}");
    let run = run.wait_with_output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("paused by postgres"), "{err}");
    assert!(err.contains("(load test)"), "{err}");
    assert!(err.contains("resumed after"), "{err}");
    assert!(err.contains("operator control: batch-size = 30"), "{err}");

    // The right data, every row once.
    let c = db.client().await;
    let r = c
        .query_one(
            "SELECT count(*), sum(amount)::bigint FROM public_02_type.items",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, i64>(0), r.get::<_, i64>(1)),
        (40_000, 800_020_000)
    );
    ok(ratchet(&db, &["validate"]));

    // All of it in the event log, with who, from where, through what.
    let events = events_json(&db);
    let controls = of_kind(&events, "control");
    let changes: Vec<(String, Value, Value)> = controls
        .iter()
        .map(|e| {
            let d = &e["detail"];
            (
                d["key"].as_str().unwrap().to_string(),
                d["old"].clone(),
                d["new"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("batch_size".into(), Value::Null, "20".into()),
            ("batch_size".into(), "20".into(), "30".into()),
            ("pause".into(), Value::Null, "load test".into()),
            ("pause".into(), "load test".into(), Value::Null),
            ("batch_size".into(), "30".into(), Value::Null),
        ]
    );
    for e in &controls {
        assert_eq!(e["who"], "postgres", "{e}");
        assert_eq!(e["host"], "127.0.0.1", "{e}");
        assert_eq!(e["application"], "ratchet", "{e}");
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    assert_eq!(controls[0]["migration"], Value::Null);
    assert_eq!(controls[1]["migration"], "02_type");
    let resumed = of_kind(&events, "resumed");
    assert_eq!(resumed.len(), 1, "{events:?}");
    assert_eq!(resumed[0]["application"], "ratchet (control)");
    assert!(!of_kind(&events, "step").is_empty());
    let out = ok(ratchet(&db, &["events"]));
    for want in [
        "batch-size: default -> 20",
        "batch-size: 20 -> 30",
        "pause (load test)",
        "resume",
        "between batches on items at",
        "postgres@127.0.0.1 (ratchet)",
        "start #",
    ] {
        assert!(out.contains(want), "{want}:\n{out}");
    }
    // --limit keeps the latest; --migration only that migration's.
    let out = ok(ratchet(&db, &["events", "--limit", "1"]));
    assert_eq!(out.lines().count(), 1, "{out}");
    let out = ok(ratchet(&db, &["events", "--migration", "01_items"]));
    assert!(out.lines().all(|l| l.contains("01_items")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_ddl_step_waits_and_continues_on_resume_and_follow_shows_it() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    ok(ratchet(&db, &["init"]));
    let mut follow = spawn(&db, &["events", "--follow", "--format", "json"]);
    let lines = follow.stdout.take().unwrap();
    let (tx, seen) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(lines).lines() {
            let Ok(l) = l else { return };
            if tx.send(serde_json::from_str(&l).unwrap()).is_err() {
                return;
            }
        }
    });
    let f = dir.path().join("01_t.yaml");
    std::fs::write(
        &f,
        "operations:\n  - create_table:\n      name: t\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n",
    )
    .unwrap();
    ok(ratchet(&db, &["pause"]));
    let out = ok(ratchet(&db, &["pause"]));
    assert!(out.contains("already paused"), "{out}");
    let mut run = spawn(&db, &["start", f.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(run.try_wait().unwrap().is_none(), "the step must wait");
    let c = db.client().await;
    let created: bool = c
        .query_one("SELECT to_regclass('public.t') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!created, "the table was created while paused");
    ok(ratchet(&db, &["resume"]));
    let run = run.wait_with_output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let created: bool = c
        .query_one("SELECT to_regclass('public.t') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(created);
    // `--follow` printed each of them as it was written.
    let mut kinds = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) && !kinds.contains(&"started".to_string()) {
        if let Ok(e) = seen.recv_timeout(Duration::from_millis(200)) {
            kinds.push(e["kind"].as_str().unwrap().to_string());
            if e["kind"] == "paused" {
                assert_eq!(e["detail"]["during"], "step", "{e}");
            }
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    let at = |k: &str| kinds.iter().position(|x| x == k);
    assert!(at("control").is_some(), "{kinds:?}");
    assert!(at("control") < at("paused"), "{kinds:?}");
    assert!(
        at("paused").is_some() && at("paused") < at("resumed"),
        "{kinds:?}"
    );
    assert!(at("resumed") < at("step"), "{kinds:?}");
}

#[tokio::test]
async fn bad_settings_exit_2_name_what_is_accepted_and_change_nothing() {
    let db = TestDb::new().await;
    ok(ratchet(&db, &["init"]));
    for (args, want) in [
        (
            &["set", "batch-size", "-3"][..],
            "batch-size takes a whole number from 1 to",
        ),
        (&["set", "batch-size", "0"][..], "from 1 to"),
        (&["set", "workers", "100"][..], "from 1 to 64"),
        (
            &["set", "target-batch-ms", "fast"][..],
            "`fast` is not accepted",
        ),
        (
            &["set", "nosuch", "1"][..],
            "batch-size, target-batch-ms, workers, max-probe-p99-ms",
        ),
        (&["set", "batch-size"][..], "needs a value"),
    ] {
        let o = ratchet(&db, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let out = ok(ratchet(&db, &["set"]));
    assert!(out.contains("no control is set"), "{out}");
    assert!(of_kind(&events_json(&db), "control").is_empty());
    // Good values are listed with who set them; resume without a pause changes nothing.
    ok(ratchet(&db, &["set", "max-probe-p99-ms", "50"]));
    let out = ok(ratchet(&db, &["set"]));
    assert!(
        out.contains("max-probe-p99-ms = 50  (set by postgres@127.0.0.1"),
        "{out}"
    );
    let out = ok(ratchet(&db, &["resume"]));
    assert!(out.contains("not paused"), "{out}");
    assert_eq!(of_kind(&events_json(&db), "control").len(), 1);
}

/// rows_done of each slice of the running backfill, by slice.
async fn slices(db: &TestDb) -> Vec<i64> {
    slice_states(db).await.into_iter().map(|(n, _)| n).collect()
}

/// (rows_done, done) of each slice of the running backfill, by slice.
async fn slice_states(db: &TestDb) -> Vec<(i64, bool)> {
    db.client()
        .await
        .query(
            "SELECT rows_done, done FROM ratchet.backfill_slices ORDER BY slice",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// How many slices that are still open moved in one second: a worker that finished its
/// slice in that second and took a handed-back one counts once.
async fn moving(db: &TestDb) -> usize {
    let before = slice_states(db).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = slice_states(db).await;
    before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.0 != b.0 && !b.1)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_workers_benches_workers_and_brings_them_back() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    // Enough rows that no slice ends while the worker count changes, on a loaded machine.
    let v2 = items(&db, dir.path(), 180_000).await;
    ok(ratchet(&db, &["set", "batch-size", "20"]));
    let run = spawn(
        &db,
        &[
            "start",
            &v2,
            "--backfill-workers",
            "3",
            "--batch-target",
            "20ms",
        ],
    );
    let t = Instant::now();
    while slices(&db).await.iter().filter(|n| **n > 0).count() < 3 {
        assert!(t.elapsed() < Duration::from_secs(20), "3 workers never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One worker left: the two others stop after their batch and hand their slice back.
    ok(ratchet(&db, &["set", "workers", "1"]));
    // Within one batch time each, on a quiet machine; a loaded one gets a few seconds.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut n = moving(&db).await;
    for _ in 0..4 {
        if n == 1 {
            break;
        }
        n = moving(&db).await;
    }
    assert_eq!(n, 1, "{:?}", slices(&db).await);
    // Three again: the benched workers take the slices they handed back.
    ok(ratchet(&db, &["set", "workers", "3"]));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(moving(&db).await >= 2, "{:?}", slices(&db).await);
    ok(ratchet(&db, &["set", "batch-size", "default"]));
    let run = run.wait_with_output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let c = db.client().await;
    let r = c
        .query_one(
            "SELECT count(*), sum(amount)::bigint FROM public_02_type.items",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, i64>(0), r.get::<_, i64>(1)),
        (180_000, 16_200_090_000)
    );
    assert_eq!(slices(&db).await.iter().sum::<i64>(), 180_000);
    ok(ratchet(&db, &["validate"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_workers_above_the_starting_count_adds_workers_while_it_runs() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = items(&db, dir.path(), 120_000).await;
    ok(ratchet(&db, &["set", "batch-size", "20"]));
    let run = spawn(&db, &["start", &v2, "--batch-target", "20ms"]);
    let t = Instant::now();
    while slices(&db).await.iter().sum::<i64>() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the backfill never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(slices(&db).await.len(), 1, "one worker, one slice");
    // Three: the running slice is cut for each worker that joins.
    ok(ratchet(&db, &["set", "workers", "3"]));
    let t = Instant::now();
    while slices(&db).await.len() < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no worker joined: {:?}",
            slices(&db).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut n = moving(&db).await;
    for _ in 0..4 {
        if n >= 3 {
            break;
        }
        n = moving(&db).await;
    }
    assert!(n >= 3, "three slices move at once: {:?}", slices(&db).await);
    ok(ratchet(&db, &["set", "batch-size", "default"]));
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("worker 2 joins"), "{err}");
    assert!(err.contains("worker 3 joins"), "{err}");
    let c = db.client().await;
    let r = c
        .query_one(
            "SELECT count(*), sum(amount)::bigint, count(*) FILTER (WHERE amount IS NULL)
               FROM public_02_type.items",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2)),
        (120_000, 7_200_060_000, 0)
    );
    // Every row counted once, whatever was cut while it ran; each cut-off half was left
    // to the worker that took it (a cut that reached past the end of the slice it cut,
    // into another's, left slices that others had filled already).
    let done = slices(&db).await;
    assert_eq!(done.iter().sum::<i64>(), 120_000);
    assert!(done.iter().all(|n| *n > 0), "{done:?}");
    ok(ratchet(&db, &["validate"]));
    ok(ratchet(&db, &["set", "workers", "default"]));
}

// Validation chunks consult the hook like backfill batches do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_validation_waits_between_chunks_and_continues_on_resume() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = items(&db, dir.path(), 40_000).await;
    ok(ratchet(&db, &["start", &v2]));
    ok(ratchet(&db, &["pause", "--reason", "validation"]));
    let mut run = spawn(&db, &["validate"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(run.try_wait().unwrap().is_none(), "validation must wait");
    let paused = of_kind(&events_json(&db), "paused")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert_eq!(paused[0]["detail"]["table"], "items");
    ok(ratchet(&db, &["resume"]));
    let run = run.wait_with_output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("checked 40000 rows"));
    assert_eq!(of_kind(&events_json(&db), "resumed").len(), 1);
}
