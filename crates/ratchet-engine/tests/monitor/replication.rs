//! Replication lag from a real standby: the test's own cluster and a streaming standby
//! of it (`pg_basebackup -R`, another port). With the standby's replay paused the lag
//! grows with every WAL record the backfill writes: the backfill pauses; after
//! `pg_wal_replay_resume()` the standby catches up and the backfill finishes.

use std::sync::Arc;
use std::time::Duration;

use ratchet_scratch::{connect, Cluster};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_that_stops_replaying_pauses_the_backfill_until_it_catches_up() {
    // A cluster of its own: the lag of a paused standby is server-wide.
    let primary = tokio::task::spawn_blocking(Cluster::start)
        .await
        .unwrap()
        .unwrap();
    let url = primary.url("postgres");
    let files = common::Files::new();
    let mut m = fast_monitors();
    m.max_replication_lag_s = 1.0;
    m.pause_factor = 2.0;
    let mut config = config_with(m);
    // Two workers: the pause holds both.
    config.backfill.workers = 2;
    let rows = 40_000;
    let mut e = items_started(&url, &files, rows, &config).await;
    let standby = {
        let p = &primary;
        std::thread::scope(|s| s.spawn(|| p.start_standby()).join().unwrap()).unwrap()
    };
    let sc = connect(&standby.url("postgres")).await.unwrap();
    let c = connect(&url).await.unwrap();
    let streaming = async {
        for _ in 0..200 {
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if n == 1 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(streaming.await, "the standby streams");
    let reporter = Arc::new(Collect::default());
    let pace = Pace {
        rows: 200,
        wait: Duration::from_millis(20),
    };
    let (monitors, rec) = install(&mut e, &url, &config, reporter.clone(), pace).await;
    assert_eq!(monitors.health().unwrap().figures["standbys"], 1.0);
    sc.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let task = tokio::spawn(async move { e.backfill().await });
    let paused = eventually(Duration::from_secs(30), || rec.kinds().contains(&"pause")).await;
    assert!(paused, "{:?} {:?}", rec.kinds(), monitors.health());
    // A batch that began before the pause decision still commits: let it land (a batch
    // takes far less than this) before taking the count that must then stay put.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = filled(&c).await.1;
    assert!(held < rows, "paused before the end");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(filled(&c).await.1, held, "no batch while the standby lags");
    let lag = monitors.health().unwrap().figures["replication_lag_s"];
    assert!(lag > 1.0, "{lag}");
    sc.batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(90), task)
        .await
        .expect("the backfill finishes once the standby caught up")
        .unwrap()
        .unwrap();
    monitors.stop().await;
    let events = monitor_events(&c).await;
    let pause = events
        .iter()
        .position(|(k, why)| k == "pause" && why.contains("replication lag"));
    let resume = events.iter().rposition(|(k, _)| k == "resume");
    assert!(pause.is_some() && pause < resume, "{events:?}");
    let (total, done, sum, want) = filled(&c).await;
    assert_eq!((total, done), (rows, rows));
    assert_eq!(sum, want);
    // The standby replays the same data.
    let mut on_standby = 0;
    for _ in 0..100 {
        on_standby = sc
            .query_one("SELECT count(_ratchet_new_amount) FROM public.items", &[])
            .await
            .unwrap()
            .get::<_, i64>(0);
        if on_standby == rows {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(on_standby, rows);
}
