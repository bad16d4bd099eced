//! The safety promises under load: zero errors for a workload through the old and the
//! new version while each phase runs, and lock-timeout retries that never make other
//! sessions wait behind ratchet.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ratchet_engine::{Engine, Event, Reporter};
use ratchet_scratch::testing::{connect, TestDb};

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    errors: Mutex<Vec<String>>,
}

/// Keep reading and writing through `version` (a version schema) until `stop`.
fn workload(
    url: String,
    version: &'static str,
    name_col: &'static str,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let c = connect(&url).await.unwrap();
        c.batch_execute(&format!("SET search_path TO {version}"))
            .await
            .unwrap();
        let mut i: i64 = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let id = (i * 7919) % 500 + 1;
            let res = async {
                c.execute(
                    &format!("INSERT INTO users ({name_col}) VALUES ($1)"),
                    &[&format!("w{i}")],
                )
                .await?;
                c.query(
                    &format!("SELECT {name_col} FROM users WHERE id = $1"),
                    &[&id],
                )
                .await?;
                c.execute(
                    &format!("UPDATE users SET {name_col} = {name_col} || '.' WHERE id = $1"),
                    &[&id],
                )
                .await?;
                c.execute("DELETE FROM users WHERE id = $1", &[&(id + 100_000)])
                    .await?;
                Ok::<_, tokio_postgres::Error>(())
            }
            .await;
            match res {
                Ok(()) => counters.ok.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    counters
                        .errors
                        .lock()
                        .unwrap()
                        .push(format!("{version}: {e:?}"));
                    0
                }
            };
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workloads_through_both_versions_see_zero_errors() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 500).await;
    let m = files.migration("02_rename.yaml", RENAME);

    let old_stop = Arc::new(AtomicBool::new(false));
    let old = Arc::new(Counters::default());
    let olds: Vec<_> = (0..3)
        .map(|_| {
            workload(
                db.url.clone(),
                "public_01_users",
                "name",
                old_stop.clone(),
                old.clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    e.start(&m).await.unwrap();

    let new_stop = Arc::new(AtomicBool::new(false));
    let new = Arc::new(Counters::default());
    let news: Vec<_> = (0..3)
        .map(|_| {
            workload(
                db.url.clone(),
                "public_02_rename",
                "full_name",
                new_stop.clone(),
                new.clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The old application is retired before contract; the new one keeps running through it.
    old_stop.store(true, Ordering::Relaxed);
    for h in olds {
        h.await.unwrap();
    }
    common::complete(&mut e).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    new_stop.store(true, Ordering::Relaxed);
    for h in news {
        h.await.unwrap();
    }
    assert_eq!(old.errors.lock().unwrap().clone(), Vec::<String>::new());
    assert_eq!(new.errors.lock().unwrap().clone(), Vec::<String>::new());
    assert!(old.ok.load(Ordering::Relaxed) > 10, "the old workload ran");
    assert!(new.ok.load(Ordering::Relaxed) > 10, "the new workload ran");
}

#[derive(Default)]
struct Retries(Mutex<Vec<String>>);
impl Reporter for Retries {
    fn report(&self, e: &Event) {
        if let Event::Retry { sqlstate, .. } = e {
            self.0.lock().unwrap().push(sqlstate.clone());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_timeouts_are_retried_without_blocking_other_sessions() {
    let db = TestDb::new().await;
    let files = Files::new();
    drop(setup_users(&db, &files, 100).await);
    // A long transaction holds a lock that conflicts with ALTER TABLE's ACCESS EXCLUSIVE.
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE public.users IN ACCESS SHARE MODE")
        .await
        .unwrap();
    // From here: connecting below may take a while on a loaded machine.
    let t = Instant::now();
    let hold = Duration::from_secs(3);
    let release = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        holder.batch_execute("COMMIT").await.unwrap();
        holder
    });
    // Other sessions keep reading; none may wait long behind ratchet's queued lock.
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicU64::new(0));
    let reader = {
        let (url, stop, worst) = (db.url.clone(), stop.clone(), worst.clone());
        tokio::spawn(async move {
            let c = connect(&url).await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                c.query("SELECT count(*) FROM public.users", &[])
                    .await
                    .unwrap();
                worst.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let retries = Arc::new(Retries::default());
    let mut e = Engine::connect(&db.url, config(), retries.clone())
        .await
        .unwrap();
    let m = files.migration("02_rename.yaml", RENAME);
    e.start(&m).await.unwrap();
    assert!(t.elapsed() >= hold, "start had to wait for the holder");
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    release.await.unwrap();
    let seen = retries.0.lock().unwrap().clone();
    assert!(!seen.is_empty(), "lock timeouts were retried");
    assert!(seen.iter().all(|s| s == "55P03"), "{seen:?}");
    // Readers queued behind the ALTER wait at most about one lock_timeout (200 ms), never
    // for the whole 3 s the holder keeps its lock.
    let worst = worst.load(Ordering::Relaxed);
    assert!(worst < 1500, "a reader waited {worst} ms behind ratchet");
    // Retries are in the event log.
    let c = db.client().await;
    let logged: i64 = c
        .query_one(
            "SELECT count(*) FROM ratchet.events WHERE kind = 'retry'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(logged >= 1);
}
