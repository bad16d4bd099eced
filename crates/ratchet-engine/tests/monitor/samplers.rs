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
    let ok = eventually(Duration::from_secs(10), || {
        monitors
            .health()
            .is_some_and(|h| h.state == HealthState::Ok)
    })
    .await;
    assert!(ok, "{:?}", monitors.health());
    let runner = state().runner(&c).await.unwrap().unwrap();
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
