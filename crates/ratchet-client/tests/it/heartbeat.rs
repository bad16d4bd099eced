//! The heartbeat task: rows in `<state>.clients` with the right version, one at once and
//! one per interval, none after the handle is dropped, and a lost connection survived.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratchet_client::Versioned;
use ratchet_scratch::testing::{connect, TestDb};

use crate::common::*;

/// `(version, role, last_seen in ms since the epoch, first_seen)` of one instance.
async fn row(c: &tokio_postgres::Client, instance: &str) -> Option<(String, String, f64, f64)> {
    c.query_opt(
        "SELECT version, role, extract(epoch FROM last_seen)::float8 * 1000,
                extract(epoch FROM first_seen)::float8 * 1000
           FROM ratchet.clients WHERE app = 'shop' AND instance = $1",
        &[&instance],
    )
    .await
    .unwrap()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
}

/// Every distinct `last_seen` of `instance` while polling for `span`.
async fn beats(c: &tokio_postgres::Client, instance: &str, span: Duration) -> Vec<f64> {
    let mut seen: Vec<f64> = Vec::new();
    let until = Instant::now() + span;
    while Instant::now() < until {
        if let Some((_, _, last, _)) = row(c, instance).await {
            if seen.last() != Some(&last) {
                seen.push(last);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen
}

/// A heartbeat over a shared client, as the DML-only application role, every 200 ms:
/// its row appears at once (the first heartbeat is sent at start) with the version
/// schema as the version and the application's role; `last_seen` then moves once per
/// interval; after the handle is dropped it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_record_the_version_at_the_interval_and_stop_when_dropped() {
    let db = TestDb::new().await;
    let roles = roles(&db).await;
    drop(setup(&roles, 10).await);
    let owner = connect(&roles.owner_url).await.unwrap();
    let v = Versioned::builder("shop")
        .version_schema("public_01_setup")
        .instance("web-1")
        .build()
        .unwrap();
    let interval = Duration::from_millis(200);
    let client = Arc::new(connect(&roles.app_url).await.unwrap());
    let started = Instant::now();
    let hb = v.heartbeat_every(client, interval);
    let (version, role, ..) = loop {
        if let Some(r) = row(&owner, "web-1").await {
            break r;
        }
        assert!(started.elapsed() < interval, "no heartbeat at start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(version, "public_01_setup");
    assert_eq!(role, roles.app);

    // `last_seen` is the server's time when a beat ran: on a loaded machine one beat
    // that ran late makes the gap before it longer and the one after it shorter, so the
    // gaps are checked against half to twice the interval (no beat skipped, none doubled).
    let seen = beats(&owner, "web-1", Duration::from_millis(1300)).await;
    assert!(
        (4..=9).contains(&seen.len()),
        "{} heartbeats in 1.3 s at 200 ms: {seen:?}",
        seen.len()
    );
    let gaps: Vec<f64> = seen.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| (100.0..=400.0).contains(g)),
        "intervals between heartbeats (ms): {gaps:?}"
    );
    assert!(hb.sent() >= 5 && hb.failed() == 0, "{hb:?}");
    let (.., first_seen) = row(&owner, "web-1").await.unwrap();

    drop(hb);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, _, last, first) = row(&owner, "web-1").await.unwrap();
    tokio::time::sleep(interval * 3).await;
    let (_, _, still, _) = row(&owner, "web-1").await.unwrap();
    assert_eq!(still, last, "no heartbeat after the handle was dropped");
    assert_eq!(first, first_seen, "one row per instance, first_seen kept");
}

/// A heartbeat on a connection of its own (`heartbeat_url`) survives losing it: the
/// failed heartbeat is counted and logged, never a panic, and the next one reconnects.
/// In base-table mode the version reported is the schema's own name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_with_its_own_connection_reconnects_after_losing_it() {
    let db = TestDb::new().await;
    let roles = roles(&db).await;
    drop(setup(&roles, 10).await);
    let owner = connect(&roles.owner_url).await.unwrap();
    let v = Versioned::builder("shop")
        .base_tables()
        .instance("worker-1")
        .build()
        .unwrap();
    let interval = Duration::from_millis(100);
    let hb = v.heartbeat_url(&roles.app_url, interval).unwrap();
    let started = Instant::now();
    while hb.sent() < 2 {
        assert!(started.elapsed() < Duration::from_secs(5), "{hb:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (version, ..) = row(&owner, "worker-1").await.unwrap();
    assert_eq!(version, "public");

    let admin = db.client().await;
    let ended: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE application_name = 'shop' AND usename = $1",
            &[&roles.app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        ended, 1,
        "the heartbeat's own session, named after the application"
    );
    let sent = hb.sent();
    let (_, _, before, _) = row(&owner, "worker-1").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while hb.sent() < sent + 2 {
        assert!(
            Instant::now() < deadline,
            "no heartbeat after the connection was lost: {hb:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, _, after, _) = row(&owner, "worker-1").await.unwrap();
    assert!(after > before);
    assert!(hb.failed() <= 1, "{hb:?}");
}
