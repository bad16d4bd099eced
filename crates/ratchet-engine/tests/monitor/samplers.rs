//! The samplers on real PostgreSQL: lock waits ratchet causes and the sessions it waits
//! on, the operator's `max_probe_p99_ms` control, the heartbeat, and validation chunks
//! that follow the hook.

use std::sync::Arc;
use std::time::Duration;

use ratchet_engine::backfill::{BatchStats, Decision, Throttle};
use ratchet_engine::error::Refusal;
use ratchet_engine::EngineError;
use ratchet_scratch::testing::TestDb;

use super::*;

async fn session(db: &TestDb, app: &str) -> Client {
    let c = db.client().await;
    c.batch_execute(&format!("SET application_name = '{app}'"))
        .await
        .unwrap();
    c
}

/// Wait until figure `name` of the latest verdict satisfies `f`.
async fn figure(m: &Monitors, name: &str, f: impl Fn(f64) -> bool) -> bool {
    eventually(Duration::from_secs(10), || {
        m.health()
            .and_then(|h| h.figures.get(name).copied())
            .is_some_and(&f)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_waits_caused_by_ratchet_and_the_sessions_ratchet_waits_on() {
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE public.t (id int)")
        .await
        .unwrap();
    let _engine = Engine::connect(&db.url, common::config(), Arc::new(ratchet_engine::Silent))
        .await
        .unwrap();
    let mut m = fast_monitors();
    m.max_lock_wait_ms = 300;
    let config = config_with(m);
    let (monitors, _) = Monitors::start(&db.url, &config, Arc::new(Collect::default()), state())
        .await
        .unwrap();
    assert_eq!(monitors.health().unwrap().state, HealthState::Ok);
    // A server on this machine: the load monitor reads its CPUs from /proc.
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let local = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim() == "postgres");
    if local {
        assert!(figure(&monitors, "server_cpus", |n| n >= 1.0).await);
        assert!(
            figure(&monitors, "server_cpu_busy_pct", |p| (0.0..=100.0)
                .contains(&p))
            .await
        );
    }

    // A ratchet session holds a lock an application's query waits for.
    let ours = session(&db, "ratchet").await;
    ours.batch_execute("BEGIN; LOCK TABLE public.t")
        .await
        .unwrap();
    let app = session(&db, "app").await;
    let waiting = tokio::spawn(async move { app.query("SELECT * FROM public.t", &[]).await });
    assert!(figure(&monitors, "lock_waits_caused", |n| n == 1.0).await);
    assert!(figure(&monitors, "lock_wait_max_ms", |ms| ms > 300.0).await);
    let h = monitors.health().unwrap();
    assert_ne!(h.state, HealthState::Ok);
    assert!(
        h.reasons[0].contains("wait on a lock ratchet holds"),
        "{h:?}"
    );
    ours.batch_execute("COMMIT").await.unwrap();
    waiting.await.unwrap().unwrap();
    assert!(figure(&monitors, "lock_waits_caused", |n| n == 0.0).await);

    // An application's session holds a lock a ratchet session waits for: named.
    let psql = session(&db, "psql").await;
    psql.batch_execute("BEGIN; LOCK TABLE public.t")
        .await
        .unwrap();
    let ours = session(&db, "ratchet").await;
    let blocked = tokio::spawn(async move { ours.query("SELECT * FROM public.t", &[]).await });
    assert!(figure(&monitors, "ratchet_waits_on", |n| n == 1.0).await);
    assert_eq!(
        monitors.health().unwrap().state,
        HealthState::Ok,
        "ratchet waiting is no harm"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let runner = state().runner(&c).await.unwrap().unwrap();
    let notes = runner.health["notes"]["locks"].to_string();
    assert!(
        notes.contains("application psql, idle in transaction"),
        "{notes}"
    );
    assert_eq!(runner.health["monitors"]["locks"], "ok");
    psql.batch_execute("COMMIT").await.unwrap();
    blocked.await.unwrap().unwrap();
    monitors.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_max_probe_p99_ms_wins_while_it_is_set() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let _engine = Engine::connect(&db.url, common::config(), Arc::new(ratchet_engine::Silent))
        .await
        .unwrap();
    let mut m = fast_monitors();
    m.probe_sql = Some("SELECT pg_sleep(0.02)".into());
    m.max_probe_p99_ms = 1000;
    m.max_probe_ratio = 0.0;
    let config = config_with(m);
    let (monitors, _) = Monitors::start(&db.url, &config, Arc::new(Collect::default()), state())
        .await
        .unwrap();
    assert_eq!(monitors.health().unwrap().state, HealthState::Ok);
    state()
        .set_control(&c, "max_probe_p99_ms", Some("5"))
        .await
        .unwrap();
    let throttled = eventually(Duration::from_secs(10), || {
        monitors.health().is_some_and(|h| {
            h.state != HealthState::Ok && h.reasons.iter().any(|r| r.contains("> 5 ms"))
        })
    })
    .await;
    assert!(throttled, "{:?}", monitors.health());
    state()
        .set_control(&c, "max_probe_p99_ms", None)
        .await
        .unwrap();
    let ok = ok_again(&monitors, Duration::from_secs(10)).await;
    assert!(ok, "{:?}", monitors.health());
    // The runner's row follows at its next write (the monitors store their report
    // every sampling round, after the verdict in memory).
    let t = std::time::Instant::now();
    let runner = loop {
        let runner = state().runner(&c).await.unwrap().unwrap();
        if runner.health["state"] == "ok" || t.elapsed() > Duration::from_secs(10) {
            break runner;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(runner.health["state"], "ok");
    assert!(runner.health["figures"]["probe_p99_ms"].as_f64().unwrap() >= 20.0);
    monitors.stop().await;
}

/// Stops at the first chunk it is asked about.
struct StopNow;
impl Throttle for StopNow {
    fn after_batch(&self, _: &BatchStats) -> Decision {
        Decision::Stop("the test says stop".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_chunks_follow_the_hook() {
    let db = TestDb::new().await;
    let files = common::Files::new();
    let config = config_with(MonitorConfig {
        enabled: false,
        ..fast_monitors()
    });
    let mut e = items_started(&db.url, &files, 25_000, &config).await;
    e.backfill().await.unwrap();
    e.set_throttle(Arc::new(StopNow));
    let err = e.validate(false).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Refused {
                kind: Refusal::Stopped,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("validation of items stopped: the test says stop"),
        "{err}"
    );
    // A pace caps the chunks; validation still checks every row.
    e.set_throttle(Arc::new(Pace {
        rows: 4000,
        wait: Duration::ZERO,
    }));
    let v = e.validate(false).await.unwrap().unwrap();
    assert_eq!((v.rows_checked, v.mismatches, v.passed), (25_000, 0, true));
}

/// Wait until the verdict is ok again.
async fn ok_again(m: &Monitors, limit: Duration) -> bool {
    eventually(limit, || {
        m.health().is_some_and(|h| h.state == HealthState::Ok)
    })
    .await
}

/// The verdict's reasons once one contains `what`.
async fn reason(m: &Monitors, what: &str) -> Option<String> {
    let found = eventually(Duration::from_secs(10), || {
        m.health()
            .is_some_and(|h| h.reasons.iter().any(|r| r.contains(what)))
    })
    .await;
    found.then(|| m.health().unwrap().reasons.join("; "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_build_of_another_session_on_a_migrated_table_throttles() {
    let db = TestDb::new().await;
    let files = common::Files::new();
    let config = config_with(fast_monitors());
    let _e = items_started(&db.url, &files, 1000, &config).await;
    let (monitors, _) = Monitors::start(&db.url, &config, Arc::new(Collect::default()), state())
        .await
        .unwrap();
    assert!(figure(&monitors, "foreign_rewrites", |n| n == 0.0).await);
    assert_eq!(monitors.health().unwrap().state, HealthState::Ok);
    // An application's open write keeps another session's CREATE INDEX CONCURRENTLY
    // waiting in its first phase, in pg_stat_progress_create_index all along.
    let writer = session(&db, "app").await;
    writer
        .batch_execute("BEGIN; INSERT INTO public.items (amount) VALUES ('7')")
        .await
        .unwrap();
    let builder = session(&db, "psql").await;
    let build = tokio::spawn(async move {
        builder
            .batch_execute("CREATE INDEX CONCURRENTLY items_amount_idx ON public.items (amount)")
            .await
    });
    assert!(figure(&monitors, "foreign_rewrites", |n| n == 1.0).await);
    let why = reason(&monitors, "index build(s) or rewrite(s)").await;
    assert!(why.is_some(), "{:?}", monitors.health());
    assert_eq!(monitors.health().unwrap().state, HealthState::Throttle);
    let runner = state().runner(&db.client().await).await.unwrap().unwrap();
    let notes = runner.health["notes"]["maintenance"].to_string();
    assert!(
        notes.contains("create index concurrently on items by pid"),
        "{notes}"
    );
    writer.batch_execute("COMMIT").await.unwrap();
    build.await.unwrap().unwrap();
    assert!(figure(&monitors, "foreign_rewrites", |n| n == 0.0).await);
    assert!(ok_again(&monitors, Duration::from_secs(10)).await);
    monitors.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replication_slot_that_retains_wal_throttles_until_it_is_dropped() {
    // A cluster of its own: a slot retains WAL for the whole server.
    let cluster = tokio::task::spawn_blocking(ratchet_scratch::Cluster::start)
        .await
        .unwrap()
        .unwrap();
    let url = cluster.url("postgres");
    let files = common::Files::new();
    let mut m = fast_monitors();
    m.max_slot_wal_mb = 4;
    m.pause_factor = 1000.0;
    m.max_throttle = Duration::from_secs(60);
    let config = config_with(m);
    let _e = items_started(&url, &files, 1000, &config).await;
    let c = ratchet_scratch::connect(&url).await.unwrap();
    c.batch_execute("SELECT pg_create_physical_replication_slot('lagging', true)")
        .await
        .unwrap();
    let (monitors, _) = Monitors::start(&url, &config, Arc::new(Collect::default()), state())
        .await
        .unwrap();
    assert_eq!(monitors.health().unwrap().state, HealthState::Ok);
    // Nobody reads the slot: the WAL of these rows stays.
    c.batch_execute(
        "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 60000) g",
    )
    .await
    .unwrap();
    assert!(
        figure(&monitors, "slot_wal_retained_bytes", |b| b > 4.0
            * 1048576.0)
        .await
    );
    let why = reason(&monitors, "replication slots retain").await;
    assert!(why.is_some_and(|w| w.contains("MB of WAL > 4 MB")));
    assert_eq!(monitors.health().unwrap().state, HealthState::Throttle);
    c.batch_execute("SELECT pg_drop_replication_slot('lagging')")
        .await
        .unwrap();
    assert!(figure(&monitors, "slot_wal_retained_bytes", |b| b == 0.0).await);
    assert!(ok_again(&monitors, Duration::from_secs(10)).await);
    monitors.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_on_the_migrated_table_that_slow_down_throttle() {
    // pg_stat_statements must be preloaded: a cluster of its own.
    let cluster = tokio::task::spawn_blocking(|| {
        ratchet_scratch::Cluster::start_with(&[("shared_preload_libraries", "pg_stat_statements")])
    })
    .await
    .unwrap()
    .unwrap();
    let url = cluster.url("postgres");
    let c = ratchet_scratch::connect(&url).await.unwrap();
    c.batch_execute("CREATE EXTENSION pg_stat_statements")
        .await
        .unwrap();
    let files = common::Files::new();
    let mut m = fast_monitors();
    m.max_statements_ratio = 4.0;
    m.pause_factor = 1000.0;
    m.max_throttle = Duration::from_secs(60);
    let config = config_with(m);
    let _e = items_started(&url, &files, 1000, &config).await;
    // The application's statement before: fast.
    let app = ratchet_scratch::connect(&url).await.unwrap();
    let fast = app
        .prepare("SELECT amount FROM public.items WHERE id = $1")
        .await
        .unwrap();
    for id in 1..=200i64 {
        app.query(&fast, &[&id]).await.unwrap();
    }
    let (monitors, _) = Monitors::start(&url, &config, Arc::new(Collect::default()), state())
        .await
        .unwrap();
    assert!(figure(&monitors, "statements_baseline_mean_ms", |ms| ms < 1.0).await);
    assert_eq!(monitors.health().unwrap().state, HealthState::Ok);
    // Now a statement on the same table takes 20 ms a call.
    let slow = app
        .prepare("SELECT amount, pg_sleep(0.02) FROM public.items WHERE id = $1")
        .await
        .unwrap();
    let load = tokio::spawn(async move {
        for id in 1..=100i64 {
            app.query(&slow, &[&id]).await.unwrap();
        }
    });
    assert!(figure(&monitors, "statements_mean_ms", |ms| ms > 10.0).await);
    let why = reason(&monitors, "the top statements on the migrated tables take").await;
    assert!(why.is_some(), "{:?}", monitors.health());
    assert_eq!(monitors.health().unwrap().state, HealthState::Throttle);
    load.await.unwrap();
    // The slow calls leave the window: healthy again.
    assert!(ok_again(&monitors, Duration::from_secs(15)).await);
    monitors.stop().await;
}

/// A probe of several statements runs them one round trip each (the server sees one
/// statement at a time, as from an application), and a failed statement inside its
/// transaction does not leave the session aborted: once the cause is gone the probe
/// measures again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_of_several_statements_runs_them_one_round_trip_each() {
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE public.flag (broken boolean); INSERT INTO public.flag VALUES (false)",
    )
    .await
    .unwrap();
    let _engine = Engine::connect(&db.url, common::config(), Arc::new(ratchet_engine::Silent))
        .await
        .unwrap();
    let mut m = fast_monitors();
    m.probe_sql = Some(
        "BEGIN; SELECT pg_sleep(0.05); \
         SELECT 1 / (SELECT CASE WHEN broken THEN 0 ELSE 1 END FROM public.flag); COMMIT"
            .into(),
    );
    m.max_probe_ratio = 0.0;
    let config = config_with(m);
    let (monitors, _) = Monitors::start(&db.url, &config, Arc::new(Collect::default()), state())
        .await
        .unwrap();
    assert_eq!(monitors.health().unwrap().state, HealthState::Ok);
    // The server sees the sleep on its own, not the whole string.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..100 {
        for r in c
            .query(
                "SELECT query FROM pg_stat_activity \
                 WHERE application_name = 'ratchet monitor (probe)' AND state = 'active'",
                &[],
            )
            .await
            .unwrap()
        {
            seen.insert(r.get::<_, String>(0));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen.iter().any(|q| q.trim() == "SELECT pg_sleep(0.05)"),
        "{seen:?}"
    );
    assert!(seen.iter().all(|q| !q.contains("COMMIT")), "{seen:?}");
    // Broken inside the transaction: the probe fails, the verdict pauses.
    c.execute("UPDATE public.flag SET broken = true", &[])
        .await
        .unwrap();
    let why = reason(&monitors, "division by zero").await;
    assert!(why.is_some(), "{:?}", monitors.health());
    assert_eq!(monitors.health().unwrap().state, HealthState::Pause);
    // Fixed: the next runs begin a fresh transaction (a ROLLBACK followed the failure).
    c.execute("UPDATE public.flag SET broken = false", &[])
        .await
        .unwrap();
    let back = ok_again(&monitors, Duration::from_secs(10)).await;
    assert!(back, "{:?}", monitors.health());
    monitors.stop().await;
}
