//! A load spike: pgbench (shipped with the server binaries), 8 clients whose
//! transactions hold row locks of a hot table for 50 ms, raises the probe's p99 past
//! its threshold. The backfill throttles, then (throttling does not help) pauses, the
//! events say why; when the load stops it resumes by itself and finishes with the
//! right data.

use std::sync::Arc;
use std::time::Duration;

use ratchet_scratch::testing::TestDb;

use super::*;

/// pgbench's transaction: a hot row locked for 50 ms.
const SCRIPT: &str = "\\set id random(1, 10)
BEGIN;
UPDATE public.hot SET n = n + 1 WHERE id = :id;
SELECT pg_sleep(0.05);
END;
";

/// The probe: one of the hot rows, as the application would update it.
const PROBE: &str = "UPDATE public.hot SET n = n WHERE id = 1 + (random() * 9)::int";

/// pgbench of `clients` for `seconds` against `url`, in a thread of its own.
fn pgbench(
    url: &str,
    script: &std::path::Path,
    clients: u32,
    seconds: u32,
) -> std::thread::JoinHandle<String> {
    let bin = ratchet_scratch::find_bin_dir()
        .expect("PostgreSQL binaries")
        .join("pgbench");
    let (url, script) = (url.to_string(), script.to_path_buf());
    std::thread::spawn(move || {
        let out = std::process::Command::new(bin)
            .args([
                "-n",
                "-j",
                "2",
                "-c",
                &clients.to_string(),
                "-T",
                &seconds.to_string(),
                "-f",
            ])
            .arg(&script)
            .arg(&url)
            .output()
            .expect("run pgbench");
        assert!(
            out.status.success(),
            "pgbench: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_spike_throttles_then_pauses_and_the_backfill_resumes_when_it_ends() {
    let db = TestDb::new().await;
    let files = common::Files::new();
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE public.hot (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
         INSERT INTO public.hot (id) SELECT generate_series(1, 10)",
    )
    .await
    .unwrap();
    let script = files.write("spike.sql", SCRIPT);
    let mut m = fast_monitors();
    m.probe_sql = Some(PROBE.into());
    m.max_probe_p99_ms = 20;
    // Only the p99 threshold here; escalation to a pause by max_throttle alone.
    m.max_probe_ratio = 0.0;
    m.pause_factor = 1000.0;
    let config = config_with(m);
    let rows = 30_000;
    let mut e = items_started(&db.url, &files, rows, &config).await;
    let reporter = Arc::new(Collect::default());
    let pace = Pace {
        rows: 200,
        wait: Duration::from_millis(20),
    };
    let (monitors, rec) = install(&mut e, &db.url, &config, reporter.clone(), pace).await;
    let load = pgbench(&db.url, &script, 8, 6);
    let task = tokio::spawn(async move { e.backfill().await });
    // While the load lasts the backfill is held.
    let paused = eventually(Duration::from_secs(20), || rec.kinds().contains(&"pause")).await;
    assert!(paused, "{:?} {:?}", rec.kinds(), monitors.health());
    let held = filled(&c).await.1;
    tokio::time::sleep(Duration::from_millis(500)).await;
    if !load.is_finished() {
        assert_eq!(filled(&c).await.1, held, "no batch while paused");
    }
    let out = load.join().unwrap();
    assert!(
        out.contains("number of transactions actually processed"),
        "{out}"
    );
    tokio::time::timeout(Duration::from_secs(90), task)
        .await
        .expect("the backfill finishes once the load is gone")
        .unwrap()
        .unwrap();
    monitors.stop().await;
    let kinds = rec.kinds();
    let at = |k: &str| kinds.iter().position(|x| *x == k);
    assert!(
        at("throttle").is_some() && at("throttle") < at("pause"),
        "throttle, then pause: {kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"continue"), "{kinds:?}");
    let events = monitor_events(&c).await;
    let ev = |kind: &str| {
        events
            .iter()
            .position(|(k, why)| k == kind && (kind == "resume" || why.contains("probe p99")))
    };
    assert!(
        ev("throttle").is_some() && ev("throttle") < ev("pause"),
        "{events:?}"
    );
    assert!(
        ev("pause").is_some() && ev("pause") < ev("resume"),
        "{events:?}"
    );
    let (total, done, sum, want) = filled(&c).await;
    assert_eq!((total, done), (rows, rows));
    assert_eq!(sum, want);
}
