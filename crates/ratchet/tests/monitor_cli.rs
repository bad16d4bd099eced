//! The `[monitor]` table and the monitor flags end to end: `ratchet config` shows each
//! value and its source, a bad key fails naming file, line and key, and a backfill whose
//! probe fails on every run is refused before any work (exit 2, the probe's error said,
//! nothing changed) and runs with a good one. (A probe that starts failing mid-way
//! pauses, then stops the backfill: the engine's `monitor` tests.)

use std::path::Path;
use std::process::{Command, Output};

use ratchet_scratch::testing::TestDb;

fn ratchet_in(dir: &Path, db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .current_dir(dir)
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("RATCHET_FAULT_KILL")
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

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn ratchet_config_shows_the_monitor_settings_and_their_sources() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = ok(ratchet_in(d, &db, &["config", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["monitor"]["enabled"]["value"], true);
    assert_eq!(v["monitor"]["interval"]["value"], "1s");
    assert_eq!(v["monitor"]["probe_sql"]["value"], serde_json::Value::Null);
    assert_eq!(v["monitor"]["max_pause"]["value"], "5m");
    assert_eq!(v["monitor"]["max_probe_p99_ms"]["source"], "default");

    write(
        d,
        "ratchet.toml",
        "[monitor]\nmax_probe_p99_ms = 30\nprobe_sql = \"\"\"\nBEGIN;\nSELECT 1;\nROLLBACK;\n\"\"\"\n\
         interval = \"500ms\"\n",
    );
    let o = ok(ratchet_in(
        d,
        &db,
        &["config", "--max-probe-p99-ms", "80", "--no-monitor"],
    ));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("monitor.{key} ")))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert_eq!(
        line("max_probe_p99_ms"),
        "monitor.max_probe_p99_ms 80 --max-probe-p99-ms"
    );
    assert_eq!(
        line("probe_sql"),
        "monitor.probe_sql BEGIN; SELECT 1; ROLLBACK; [monitor] in ratchet.toml"
    );
    assert_eq!(
        line("interval"),
        "monitor.interval 500ms [monitor] in ratchet.toml"
    );
    assert_eq!(line("enabled"), "monitor.enabled false --no-monitor");
    assert_eq!(
        line("max_replication_lag_s"),
        "monitor.max_replication_lag_s 10.0 default"
    );
    // The [engine] rows are as they were.
    assert!(out.lines().any(|l| l.starts_with("lock_timeout ")), "{out}");

    write(
        d,
        "ratchet.toml",
        "[monitor]\nmax_probe_p99_ms = 30\nmax_pase = \"1m\"\n",
    );
    for args in [&["config"][..], &["backfill"][..]] {
        let o = ratchet_in(d, &db, args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("invalid config ratchet.toml:3: [monitor] max_pase = \"1m\": unknown key (did you mean `max_pause`?)"),
            "{err}"
        );
    }
}

const ITEMS: &str = r#"
operations:
  - create_table:
      name: items
      columns:
        - name: id
          type: bigint
          pk: true
        - name: amount
          type: text
"#;

const TYPE_CHANGE: &str = r#"
operations:
  - alter_column:
      table: items
      column: amount
      type: bigint
      up: CAST(amount AS bigint)
      down: CAST(amount AS text)
"#;

#[tokio::test]
async fn a_probe_that_always_fails_is_refused_before_any_work_and_a_good_one_runs() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = write(d, "01_items.yaml", ITEMS);
    let v2 = write(d, "02_type.yaml", TYPE_CHANGE);
    ok(ratchet_in(d, &db, &["start", &v1, "--complete"]));
    db.client()
        .await
        .execute(
            "INSERT INTO public.items SELECT g, g::text FROM generate_series(1, 2000) g",
            &[],
        )
        .await
        .unwrap();
    ok(ratchet_in(d, &db, &["start", &v2, "--no-backfill"]));
    let fast = [
        "--monitor-interval",
        "200ms",
        "--probe-interval",
        "50ms",
        "--probe-window",
        "1s",
        "--probe-baseline",
        "200ms",
    ];
    let mut args = vec!["backfill", "--probe-sql", "SELECT 1/0", "--max-pause", "5m"];
    args.extend(fast);
    let t0 = std::time::Instant::now();
    let o = ratchet_in(d, &db, &args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for part in [
        "the probe query (--probe-sql",
        "failed on every run",
        "division by zero",
        "nothing was changed",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    // Refused after the baseline, not held for max_pause.
    assert!(t0.elapsed() < std::time::Duration::from_secs(20), "{err}");
    let untouched: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM public.items WHERE _ratchet_new_amount IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(untouched, 0, "a refused backfill wrote rows");
    let mut args = vec!["backfill", "--probe-sql", "SELECT 1"];
    args.extend(fast);
    let o = ok(ratchet_in(d, &db, &args));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("backfills of 02_type are done"),
        "{}",
        text(&o)
    );
    let n: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM public.items WHERE _ratchet_new_amount = CAST(amount AS bigint)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2000);
}
