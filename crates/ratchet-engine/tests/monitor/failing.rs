//! A monitor whose query fails pauses the backfill with the reason, stops it after
//! `max_pause` (nothing lost), and a rerun resumes where it stopped.

use std::sync::Arc;
use std::time::Duration;

use ratchet_engine::error::Refusal;
use ratchet_engine::EngineError;
use ratchet_scratch::testing::TestDb;

use super::*;

/// Fails with a division by zero once `flag.broken` is set.
const PROBE: &str = "SELECT 1 / (SELECT CASE WHEN broken THEN 0 ELSE 1 END FROM public.flag)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_probe_pauses_then_stops_and_a_rerun_resumes() {
    let db = TestDb::new().await;
    let files = common::Files::new();
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE public.flag (broken boolean); INSERT INTO public.flag VALUES (false)",
    )
    .await
    .unwrap();
    let mut m = fast_monitors();
    m.probe_sql = Some(PROBE.into());
    m.max_pause = Duration::from_secs(1);
    let config = config_with(m);
    let rows = 20_000;
    let mut e = items_started(&db.url, &files, rows, &config).await;
    let reporter = Arc::new(Collect::default());
    let pace = Pace {
        rows: 100,
        wait: Duration::from_millis(20),
    };
    let (monitors, rec) = install(&mut e, &db.url, &config, reporter.clone(), pace).await;
    let task = tokio::spawn(async move {
        let r = e.backfill().await;
        (e, r)
    });
    let running = eventually(Duration::from_secs(20), || {
        rec.seen.lock().unwrap().len() >= 3
    })
    .await;
    assert!(running, "{:?}", monitors.health());
    c.execute("UPDATE public.flag SET broken = true", &[])
        .await
        .unwrap();
    let (mut e, r) = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the backfill stops within max_pause")
        .unwrap();
    let err = r.expect_err("stopped");
    let msg = err.to_string();
    let EngineError::Step { source, .. } = &err else {
        panic!("{msg}")
    };
    assert!(
        matches!(
            **source,
            EngineError::Refused {
                kind: Refusal::Stopped,
                ..
            }
        ),
        "{msg}"
    );
    for part in [
        "probe monitor failed",
        "division by zero",
        "max_pause",
        "ratchet backfill",
    ] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
    let kinds = rec.kinds();
    assert_eq!(kinds[kinds.len() - 2..], ["pause", "stop"], "{kinds:?}");
    monitors.stop().await;
    let (total, done, _, _) = filled(&c).await;
    assert_eq!(total, rows);
    assert!(done > 0 && done < rows, "stopped half-way: {done}");
    let events = monitor_events(&c).await;
    let pause = events
        .iter()
        .position(|(k, why)| k == "pause" && why.contains("division by zero"));
    let stop = events
        .iter()
        .position(|(k, why)| k == "stop" && why.contains("max_pause"));
    assert!(pause.is_some() && stop > pause, "{events:?}");
    assert!(reporter.health_states().contains(&HealthState::Pause));

    // Fixed: a rerun resumes from the cursor and finishes.
    c.execute("UPDATE public.flag SET broken = false", &[])
        .await
        .unwrap();
    let pace = Pace {
        rows: 5000,
        wait: Duration::ZERO,
    };
    let (monitors, _) = install(&mut e, &db.url, &config, reporter, pace).await;
    e.backfill().await.unwrap();
    monitors.stop().await;
    let (total, done, sum, want) = filled(&c).await;
    assert_eq!((total, done), (rows, rows));
    assert_eq!(sum, want);
}
