//! Two builds of one application during a migration: version N (`public_01_setup`,
//! `status` text) and version N+1 (`public_02_status`, `status` smallint), each selecting
//! its version through the client (startup `options`, or `SET LOCAL` per transaction) and
//! writing its own shape with prepared statements, with zero errors.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratchet_client::{Error, Versioned};
use ratchet_engine::backfill::{BackfillConfig, BatchStats, Decision, Throttle};
use ratchet_engine::gates::ClientVersion;
use ratchet_scratch::testing::{connect, TestDb};

use crate::common::*;

/// What one build of the application writes: every statement takes the iteration
/// number or a row id as `$1`.
struct Shape {
    insert: &'static str,
    /// Every column of a row it inserted.
    update: &'static str,
    /// A row that existed before the migration (`$1` = its id).
    touch: &'static str,
    select: &'static str,
    /// Reads the `status` of a selected row in this version's type.
    status: fn(&tokio_postgres::Row) -> Result<String, tokio_postgres::Error>,
}

const OLD: Shape = Shape {
    insert: "INSERT INTO payments (ref, status, amount_cents) VALUES ('o' || $1::bigint, 'pending', ($1::bigint % 500)::int) RETURNING id",
    update: "UPDATE payments SET ref = ref || '+', status = 'paid', amount_cents = amount_cents + 1 WHERE id = $1",
    touch: "UPDATE payments SET status = CASE status WHEN 'paid' THEN 'refunded' ELSE 'paid' END, amount_cents = amount_cents + 1 WHERE id = $1",
    select: "SELECT id, ref, status, amount_cents FROM payments WHERE id = $1",
    status: |r| r.try_get::<_, String>("status"),
};

const NEW: Shape = Shape {
    insert: "INSERT INTO payments (ref, status, amount_cents) VALUES ('n' || $1::bigint, 0, ($1::bigint % 500)::int) RETURNING id",
    update: "UPDATE payments SET ref = ref || '+', status = 1, amount_cents = amount_cents + 1 WHERE id = $1",
    touch: "UPDATE payments SET status = CASE status WHEN 1 THEN 2 ELSE 1 END, amount_cents = amount_cents + 1 WHERE id = $1",
    select: "SELECT id, ref, status, amount_cents FROM payments WHERE id = $1",
    status: |r| r.try_get::<_, i16>("status").map(|s| s.to_string()),
};

const ROWS: i64 = 6000;

/// How a worker selects its version.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `options=-c search_path=…` in the startup packet (`Versioned::configure`).
    Startup,
    /// `BEGIN; SET LOCAL search_path …` per transaction (`Versioned::transaction`).
    PerTransaction,
}

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    /// `verify` said the version schema is not there yet.
    missing: AtomicU64,
    errors: Mutex<Vec<String>>,
}

struct Worker {
    v: Versioned,
    url: String,
    mode: Mode,
    shape: &'static Shape,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

struct Prepared {
    insert: tokio_postgres::Statement,
    update: tokio_postgres::Statement,
    touch: tokio_postgres::Statement,
    select: tokio_postgres::Statement,
    delete: tokio_postgres::Statement,
}

impl Worker {
    async fn client(&self) -> tokio_postgres::Client {
        let mut config: tokio_postgres::Config = self.url.parse().unwrap();
        if let Mode::Startup = self.mode {
            self.v.configure(&mut config);
        }
        let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    /// Wait until the version schema is published and selected (what an application
    /// deployed too early sees: `VersionSchemaMissing`, never the base tables).
    async fn wait_for_version(&self, c: &mut tokio_postgres::Client) -> Result<(), String> {
        while !self.stop.load(Ordering::Relaxed) {
            let res = match self.mode {
                Mode::Startup => self.v.verify(&*c).await,
                Mode::PerTransaction => {
                    let tx = self.v.transaction(c).await.map_err(|e| e.to_string())?;
                    let r = self.v.verify(&tx).await;
                    tx.commit().await.map_err(|e| e.to_string())?;
                    r
                }
            };
            match res {
                Ok(()) => return Ok(()),
                Err(Error::VersionSchemaMissing(_)) => {
                    self.counters.missing.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(format!("verify: {e}")),
            }
        }
        Ok(())
    }

    async fn prepare(&self, c: &impl tokio_postgres::GenericClient) -> Prepared {
        Prepared {
            insert: c.prepare(self.shape.insert).await.unwrap(),
            update: c.prepare(self.shape.update).await.unwrap(),
            touch: c.prepare(self.shape.touch).await.unwrap(),
            select: c.prepare(self.shape.select).await.unwrap(),
            delete: c
                .prepare("DELETE FROM payments WHERE id = $1")
                .await
                .unwrap(),
        }
    }

    /// One unit of work: insert, update every column, update an old row, read both back
    /// in this version's types, delete what it inserted every other time.
    async fn iteration(
        &self,
        c: &impl tokio_postgres::GenericClient,
        p: &Prepared,
        i: i64,
    ) -> Result<(), String> {
        let e = |what: &str, e: tokio_postgres::Error| format!("{:?} {what}: {e:?}", self.mode);
        let id: i64 = c
            .query_one(&p.insert, &[&i])
            .await
            .map_err(|x| e("insert", x))?
            .get(0);
        c.execute(&p.update, &[&id])
            .await
            .map_err(|x| e("update", x))?;
        let old_id = i % ROWS + 1;
        c.execute(&p.touch, &[&old_id])
            .await
            .map_err(|x| e("update of an old row", x))?;
        for row in c
            .query(&p.select, &[&id])
            .await
            .map_err(|x| e("select", x))?
        {
            (self.shape.status)(&row).map_err(|x| e("status of the new row", x))?;
        }
        for row in c
            .query(&p.select, &[&old_id])
            .await
            .map_err(|x| e("select of an old row", x))?
        {
            (self.shape.status)(&row).map_err(|x| e("status of an old row", x))?;
        }
        if i % 2 == 0 {
            c.execute(&p.delete, &[&id])
                .await
                .map_err(|x| e("delete", x))?;
        }
        Ok(())
    }

    async fn run(self, base: i64) {
        let mut c = self.client().await;
        if let Err(e) = self.wait_for_version(&mut c).await {
            self.counters.errors.lock().unwrap().push(e);
            return;
        }
        // Prepared once, reused through every phase; in per-transaction mode inside a
        // transaction, so the names resolve in the version selected there.
        let prepared = match self.mode {
            Mode::Startup => self.prepare(&c).await,
            Mode::PerTransaction => {
                let tx = self.v.transaction(&mut c).await.unwrap();
                let p = self.prepare(&tx).await;
                tx.commit().await.unwrap();
                p
            }
        };
        let mut i = base;
        while !self.stop.load(Ordering::Relaxed) {
            i += 1;
            let res = match self.mode {
                Mode::Startup => self.iteration(&c, &prepared, i).await,
                Mode::PerTransaction => match self.v.transaction(&mut c).await {
                    Ok(tx) => match self.iteration(&tx, &prepared, i).await {
                        Ok(()) => tx.commit().await.map_err(|e| format!("commit: {e:?}")),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(format!("begin: {e}")),
                },
            };
            match res {
                Ok(()) => {
                    self.counters.ops.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.counters.errors.lock().unwrap().push(e),
            }
        }
    }
}

/// Slows the backfill down (so the applications write while it runs) and counts the old
/// version's work done meanwhile.
struct Slow {
    old: Arc<Counters>,
    first: AtomicU64,
    last: AtomicU64,
    batches: AtomicU64,
}

impl Throttle for Slow {
    fn after_batch(&self, _: &BatchStats) -> Decision {
        let ops = self.old.ops.load(Ordering::Relaxed);
        if self.batches.fetch_add(1, Ordering::SeqCst) == 0 {
            self.first.store(ops, Ordering::SeqCst);
        }
        self.last.store(ops, Ordering::SeqCst);
        Decision::Throttle {
            max_batch: 200,
            wait: Duration::from_millis(15),
            reason: "test: slow backfill".into(),
        }
    }
}

fn app(version: Option<&str>, instance: &str) -> Versioned {
    let b = Versioned::builder("shop").instance(instance);
    match version {
        Some(vs) => b.version_schema(vs),
        None => b.base_tables(),
    }
    .build()
    .unwrap()
}

/// Version N and version N+1 of one application run side by side while `start` expands
/// and backfills `payments.status` text → smallint, and while `validate` runs: N from
/// the start, N+1 from the moment its version schema is published (until then
/// `verify` says it is missing instead of letting it use the base tables). Each writes
/// and reads its own shape (insert, update of every column, updates of old rows, reads
/// in its own types, deletes) through prepared statements, in both ways of selecting
/// the version, with zero errors; both heartbeat, and `ratchet clients` judges N old and
/// N+1 current. Afterwards every row reads the same in both versions (`up`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[allow(clippy::print_stderr)] // the work done, for whoever reads the test log
async fn two_application_versions_read_and_write_their_own_shape_side_by_side_during_a_migration() {
    let db = TestDb::new().await;
    let roles = roles(&db).await;
    setup(&roles, ROWS).await;
    let config = ratchet_engine::Config {
        backfill: BackfillConfig {
            initial: 100,
            min: 50,
            max: 200,
            target: Duration::from_millis(20),
            ..BackfillConfig::default()
        },
        ..config()
    };
    let mut e = engine(&roles.owner_url, config).await;
    let m = migration("02_status.yaml", STATUS_TO_SMALLINT);
    let vs = ratchet_engine::planner::version_schema_name(&m, "public").unwrap();
    assert_eq!(vs, "public_02_status");

    let stop = Arc::new(AtomicBool::new(false));
    let old = Arc::new(Counters::default());
    let new = Arc::new(Counters::default());
    let old_v = app(Some("public_01_setup"), "old-1");
    let new_v = app(Some(&vs), "new-1");
    let mut tasks = Vec::new();
    for (n, (v, shape, counters)) in [(&old_v, &OLD, &old), (&new_v, &NEW, &new)]
        .into_iter()
        .enumerate()
    {
        for (k, mode) in [Mode::Startup, Mode::PerTransaction]
            .into_iter()
            .enumerate()
        {
            let w = Worker {
                v: v.clone(),
                url: roles.app_url.clone(),
                mode,
                shape,
                stop: stop.clone(),
                counters: counters.clone(),
            };
            tasks.push(tokio::spawn(
                w.run(1_000_000 * (1 + 2 * n as i64 + k as i64)),
            ));
        }
    }
    let interval = Duration::from_millis(200);
    let old_beat = old_v.heartbeat_url(&roles.app_url, interval).unwrap();
    let new_beat = new_v.heartbeat_url(&roles.app_url, interval).unwrap();

    // Expand and backfill while the old version writes.
    let slow = Arc::new(Slow {
        old: old.clone(),
        first: AtomicU64::new(0),
        last: AtomicU64::new(0),
        batches: AtomicU64::new(0),
    });
    e.set_throttle(slow.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = e.start(&m).await.unwrap();
    assert_eq!(out.version_schema, vs);
    let (first, last) = (
        slow.first.load(Ordering::SeqCst),
        slow.last.load(Ordering::SeqCst),
    );
    assert!(
        slow.batches.load(Ordering::SeqCst) >= 10,
        "the backfill ran in batches"
    );
    assert!(
        last > first,
        "the old version wrote while the backfill ran ({first} → {last} units)"
    );

    // The new version joins once published; both write through the validation.
    let published = std::time::Instant::now();
    while new.ops.load(Ordering::Relaxed) < 20 {
        assert!(
            published.elapsed() < Duration::from_secs(20),
            "the new version never got going: {:?}",
            new.errors.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let validation = e.validate(false).await.unwrap().expect("a validation");
    assert!(validation.passed, "{validation:?}");
    let before = (
        old.ops.load(Ordering::Relaxed),
        new.ops.load(Ordering::Relaxed),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let clients = e.clients().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    drop((old_beat, new_beat));

    for (name, c) in [("old", &old), ("new", &new)] {
        let errors = c.errors.lock().unwrap();
        assert!(
            errors.is_empty(),
            "{name} version: {} errors, first: {:?}",
            errors.len(),
            &errors[..errors.len().min(3)]
        );
    }
    let after = (
        old.ops.load(Ordering::Relaxed),
        new.ops.load(Ordering::Relaxed),
    );
    eprintln!(
        "units of work without an error: old {} ({} during the backfill's {} batches), new {} \
         (after {} `verify` calls that found its schema missing)",
        after.0,
        last - first,
        slow.batches.load(Ordering::SeqCst),
        after.1,
        new.missing.load(Ordering::Relaxed)
    );
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "both versions kept writing side by side: {before:?} → {after:?}"
    );
    assert!(
        new.missing.load(Ordering::Relaxed) > 0,
        "the new version was told its schema was missing before `start` published it"
    );

    // Heartbeats: N is old for this migration, N+1 current.
    let judged = |instance: &str| {
        clients
            .instances
            .iter()
            .find(|i| i.row.instance == instance)
            .map(|i| (i.row.version.clone(), i.judged))
    };
    assert_eq!(
        judged("old-1"),
        Some(("public_01_setup".to_string(), ClientVersion::Old))
    );
    assert_eq!(judged("new-1"), Some((vs.clone(), ClientVersion::Current)));

    // Every row reads the same in both versions.
    let owner = connect(&roles.owner_url).await.unwrap();
    let differing: i64 = owner
        .query_one(
            &format!(
                "SELECT count(*) FROM public_01_setup.payments o FULL JOIN {vs}.payments n ON n.id = o.id
                  WHERE o.id IS NULL OR n.id IS NULL
                     OR n.status IS DISTINCT FROM (CASE o.status WHEN 'pending' THEN 0 WHEN 'paid' THEN 1
                                                   WHEN 'refunded' THEN 2 ELSE 9 END)
                     OR n.ref IS DISTINCT FROM o.ref OR n.amount_cents IS DISTINCT FROM o.amount_cents"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        differing, 0,
        "rows that read differently in the two versions"
    );
}

/// `verify` tells a session that does not use the version it should apart: one whose
/// startup packet lost the `options` (as behind a pooler that ignores them) and one
/// built for a version schema that is not there; base-table mode passes on `public`.
#[tokio::test]
async fn verify_refuses_a_missing_version_schema_and_an_unselected_search_path() {
    let db = TestDb::new().await;
    let roles = roles(&db).await;
    setup(&roles, 10).await;
    let plain = connect(&roles.app_url).await.unwrap();
    let v = app(Some("public_01_setup"), "i");
    match v.verify(&plain).await {
        Err(Error::SearchPathNotApplied { expected, found }) => {
            assert_eq!(expected, ["public_01_setup", "public"]);
            assert_eq!(found, ["public"]);
        }
        other => panic!("{other:?}"),
    }
    // Set per session, it is applied.
    v.set_session(&plain).await.unwrap();
    v.verify(&plain).await.unwrap();
    let n: i64 = plain
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 10);

    let missing = app(Some("public_09_later"), "i");
    assert!(matches!(
        missing.verify(&plain).await,
        Err(Error::VersionSchemaMissing(s)) if s == "public_09_later"
    ));
    // The version schema alone.
    let alone = Versioned::builder("shop")
        .version_schema("public_01_setup")
        .version_schema_only()
        .build()
        .unwrap();
    alone.set_session(&plain).await.unwrap();
    alone.verify(&plain).await.unwrap();
    assert!(v.verify(&plain).await.is_err(), "public is not on the path");
    let base = app(None, "i");
    let fresh = connect(&roles.app_url).await.unwrap();
    base.verify(&fresh).await.unwrap();
}
