//! Declarative partitioned tables on real PostgreSQL (issue 14), each test on a fresh
//! database with a table of at least 8 partitions: indexes built partition by partition and
//! attached, the partitioned `DROP INDEX`, dual writes and backfills across partitions (one
//! backfill, bound and cursor per partition) under the workload of `workload_matrix.rs`,
//! and foreign keys the way the server's version allows (asserted per version: run with
//! `RATCHET_PG_BIN` pointing at another server, see `scripts/pg-versions.sh`).

mod common;
#[path = "common/workload.rs"]
mod workload;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ratchet_engine::plan::{Action, Phase, Plan};
use ratchet_engine::report::{Event, Reporter};
use ratchet_engine::{Config, Engine, EngineError};
use ratchet_scratch::testing::{connect, TestDb};

/// `events`, hash-partitioned by id into 8 partitions `events_p0` … `events_p7`, 4000 rows;
/// `accounts` for its foreign keys.
const EVENTS: &str = "
CREATE TABLE public.accounts (id int PRIMARY KEY);
INSERT INTO public.accounts SELECT generate_series(1, 4);
CREATE TABLE public.events (
    id bigint NOT NULL,
    kind text NOT NULL,
    note text,
    account_id int,
    PRIMARY KEY (id)
) PARTITION BY HASH (id);
DO $$ BEGIN
  FOR i IN 0..7 LOOP
    EXECUTE format('CREATE TABLE public.events_p%s PARTITION OF public.events
                    FOR VALUES WITH (MODULUS 8, REMAINDER %s)', i, i);
  END LOOP;
END $$;
INSERT INTO public.events
SELECT g, 'k' || (g % 13), CASE WHEN g % 5 = 0 THEN NULL ELSE 'n' || g END, g % 4 + 1
  FROM generate_series(1, 4000) g;
ANALYZE public.events;
";

/// `logs`, range-partitioned by id: seven plain partitions and an eighth that is itself
/// list-partitioned by kind into two.
const LOGS: &str = "
CREATE TABLE public.logs (id bigint NOT NULL, kind text NOT NULL, body text) PARTITION BY RANGE (id);
DO $$ BEGIN
  FOR i IN 0..6 LOOP
    EXECUTE format('CREATE TABLE public.logs_p%s PARTITION OF public.logs
                    FOR VALUES FROM (%s) TO (%s)', i, i * 1000, (i + 1) * 1000);
  END LOOP;
END $$;
CREATE TABLE public.logs_p7 PARTITION OF public.logs FOR VALUES FROM (7000) TO (MAXVALUE)
    PARTITION BY LIST (kind);
CREATE TABLE public.logs_p7_a PARTITION OF public.logs_p7 FOR VALUES IN ('a');
CREATE TABLE public.logs_p7_b PARTITION OF public.logs_p7 DEFAULT;
INSERT INTO public.logs SELECT g, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, 'b' || g
  FROM generate_series(0, 8999) g;
";

const KIND_INDEX: &str = r#"
operations:
  - create_index:
      name: events_kind_idx
      table: events
      columns:
        - column: kind
"#;

async fn with(db: &TestDb, sql: &str) -> Engine {
    db.client().await.batch_execute(sql).await.unwrap();
    engine(db).await
}

/// Every index named like `pattern`: (index, table, valid, the index it is attached to).
async fn indexes(
    c: &tokio_postgres::Client,
    pattern: &str,
) -> Vec<(String, String, bool, Option<String>)> {
    c.query(
        "SELECT i.relname::text, t.relname::text, x.indisvalid,
                (SELECT p.relname::text FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent
                  WHERE h.inhrelid = i.oid)
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_class t ON t.oid = x.indrelid
          WHERE i.relname LIKE $1 ORDER BY 1",
        &[&pattern],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

fn count_steps(plan: &Plan, phase: Phase, f: impl Fn(&Action, &str) -> bool) -> usize {
    plan.steps_of(phase)
        .filter(|(_, s)| f(&s.action, &s.description))
        .count()
}

/// Writes to every partition of `events` through the base table while a phase runs:
/// inserts, updates of every column (the key too, which moves rows between partitions),
/// deletes. Every statement must succeed.
struct Writer {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(url: &str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let url = url.to_string();
        let (s, o, e) = (stop.clone(), ok.clone(), errors.clone());
        let task = tokio::spawn(async move {
            let c = connect(&url).await.unwrap();
            let statements = [
                "INSERT INTO events (id, kind, note, account_id) VALUES (100000 + $1::bigint, 'w', 'w', 1)",
                "UPDATE events SET kind = 'u', note = 'u' || $1::bigint, account_id = 2 WHERE id = $1::bigint % 4000 + 1",
                "UPDATE events SET id = 200000 + $1::bigint WHERE id = ($1::bigint * 7) % 4000 + 1",
                "DELETE FROM events WHERE id = ($1::bigint * 13) % 4000 + 1",
            ];
            let mut i: i64 = 0;
            // The first failure ends the workload (and fails the test): a test that panics
            // drops its database under it, and every later statement would fail too.
            'run: while !s.load(Ordering::Relaxed) {
                i += 1;
                for sql in statements {
                    if let Err(err) = c.execute(sql, &[&i]).await {
                        e.lock().unwrap().push(format!("`{sql}`: {err:?}"));
                        break 'run;
                    }
                    o.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Writer {
            stop,
            ok,
            errors,
            task,
        }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let errors = self.errors.lock().unwrap();
        assert!(
            errors.is_empty(),
            "{} failed writes: {errors:?}",
            errors.len()
        );
        self.ok.load(Ordering::Relaxed)
    }
}

/// Collects what the engine reports (for the retries and the INVALID-index cleanup).
#[derive(Default)]
struct Collect(Mutex<Vec<String>>);

impl Reporter for Collect {
    fn report(&self, e: &Event) {
        let line = match e {
            Event::Info(s) => s.clone(),
            Event::Retry { description, .. } => format!("retry: {description}"),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_index_builds_each_partition_concurrently_and_attaches_it() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = with(&db, EVENTS).await;
    let m = files.migration("02_kind_idx.yaml", KIND_INDEX);
    let plan = e.plan(&m).await.unwrap();
    let on_only = plan
        .steps_of(Phase::Start)
        .flat_map(|(_, s)| s.statements())
        .filter(|s| s.sql.contains(" ON ONLY "))
        .count();
    assert_eq!(on_only, 1, "the parent's index, ON ONLY");
    let builds = count_steps(&plan, Phase::Start, |a, _| {
        matches!(a, Action::CreateIndexConcurrently { .. })
    });
    assert_eq!(builds, 8, "one concurrent build per partition");
    let attaches = count_steps(&plan, Phase::Start, |_, d| d.starts_with("attach index"));
    assert_eq!(attaches, 8, "one attach per partition");

    let writer = Writer::start(&db.url);
    tokio::time::sleep(Duration::from_millis(200)).await;
    e.start(&m).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(writer.finish().await > 10, "the workload ran");

    let c = db.client().await;
    let all = indexes(&c, "events%kind_idx").await;
    assert_eq!(all.len(), 9, "{all:?}");
    let parent = all.iter().find(|i| i.0 == "events_kind_idx").unwrap();
    assert_eq!(
        (parent.1.as_str(), parent.2),
        ("events", true),
        "{parent:?}"
    );
    for i in 0..8 {
        let name = format!("events_p{i}_kind_idx");
        let leaf = all.iter().find(|x| x.0 == name).unwrap();
        assert_eq!(
            leaf,
            &(
                name,
                format!("events_p{i}"),
                true,
                Some("events_kind_idx".to_string())
            )
        );
    }
    common::complete(&mut e).await.unwrap();

    // drop_index: DROP INDEX CONCURRENTLY refuses a partitioned index; DROP INDEX of the
    // parent takes ACCESS EXCLUSIVE on the table and every partition, and says so.
    let m = files.migration(
        "03_drop_kind_idx.yaml",
        "operations:\n  - drop_index:\n      name: events_kind_idx\n",
    );
    let plan = e.plan(&m).await.unwrap();
    let (_, drop) = plan
        .steps_of(Phase::Complete)
        .find(|(_, s)| s.description.starts_with("drop partitioned index"))
        .unwrap();
    assert!(
        drop.description
            .contains("ACCESS EXCLUSIVE on the table and every partition"),
        "{}",
        drop.description
    );
    let statements = drop.statements();
    assert_eq!(
        statements[0].sql,
        "DROP INDEX IF EXISTS \"public\".\"events_kind_idx\""
    );
    assert_eq!(statements[0].locks.len(), 9, "{:?}", statements[0].locks);
    assert!(statements[0]
        .locks
        .iter()
        .all(|l| l.mode.name() == "ACCESS EXCLUSIVE"));
    e.start(&m).await.unwrap();
    common::complete(&mut e).await.unwrap();
    assert!(indexes(&c, "events%kind_idx").await.is_empty());
}

/// PostgreSQL names the partitions' indexes of `CREATE INDEX other ON events (kind)`
/// `events_p<n>_kind_idx`, the names ratchet derives for `events_kind_idx`: a build then
/// failed on "relation already exists". Taken names get a suffix.
#[tokio::test]
async fn partition_index_names_postgresql_gave_to_another_index_are_not_reused() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = with(
        &db,
        &format!("{EVENTS}\nCREATE INDEX events_other ON public.events (kind);"),
    )
    .await;
    let m = files.migration("02_kind_idx.yaml", KIND_INDEX);
    e.start(&m).await.unwrap();
    let c = db.client().await;
    let ours: Vec<(String, bool, Option<String>)> = indexes(&c, "events%kind_idx%")
        .await
        .into_iter()
        .filter(|i| i.3.as_deref() == Some("events_kind_idx"))
        .map(|i| (i.0, i.2, i.3))
        .collect();
    assert_eq!(ours.len(), 8, "{ours:?}");
    assert!(ours
        .iter()
        .all(|(name, valid, _)| name.ends_with("_kind_idx_1") && *valid));
}

#[tokio::test]
async fn a_unique_index_on_a_partitioned_table_must_contain_the_partition_key() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = with(&db, EVENTS).await;
    let m = files.migration(
        "02_unique.yaml",
        "operations:\n  - create_index:\n      name: events_kind_key\n      table: events\n      unique: true\n      columns:\n        - column: kind\n",
    );
    let err = e.plan(&m).await.unwrap_err().to_string();
    for part in ["`events_kind_key`", "`events`", "`HASH (id)`", "add `id`"] {
        assert!(err.contains(part), "{part} in: {err}");
    }
    let m = files.migration(
        "02_unique.yaml",
        "operations:\n  - create_index:\n      name: events_kind_key\n      table: events\n      unique: true\n      columns:\n        - column: kind\n        - column: id\n",
    );
    e.start(&m).await.unwrap();
    let c = db.client().await;
    let unique: Vec<(String, bool, bool)> = c
        .query(
            "SELECT i.relname::text, x.indisunique, x.indisvalid FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid WHERE i.relname LIKE 'events%kind_key'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(unique.len(), 9, "{unique:?}");
    assert!(unique.iter().all(|(_, u, v)| *u && *v), "{unique:?}");
    common::complete(&mut e).await.unwrap();
}

#[tokio::test]
async fn a_sub_partitioned_table_gets_its_index_level_by_level() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = with(&db, LOGS).await;
    // The sub-partitioned level has a key of its own, which a unique index must contain too.
    let m = files.migration(
        "02_logs_id.yaml",
        "operations:\n  - create_index:\n      name: logs_id_key\n      table: logs\n      unique: true\n      columns:\n        - column: id\n",
    );
    let err = e.plan(&m).await.unwrap_err().to_string();
    for part in [
        "partition `logs_p7` of `logs`",
        "`LIST (kind)`",
        "add `kind`",
    ] {
        assert!(err.contains(part), "{part} in: {err}");
    }
    let m = files.migration(
        "02_logs_body.yaml",
        "operations:\n  - create_index:\n      name: logs_body_idx\n      table: logs\n      columns:\n        - column: body\n",
    );
    let plan = e.plan(&m).await.unwrap();
    let builds = count_steps(&plan, Phase::Start, |a, _| {
        matches!(a, Action::CreateIndexConcurrently { .. })
    });
    assert_eq!(builds, 9, "seven plain partitions and two sub-partitions");
    let attaches: Vec<String> = plan
        .steps_of(Phase::Start)
        .filter(|(_, s)| s.description.starts_with("attach index"))
        .map(|(_, s)| s.statements()[0].sql.clone())
        .collect();
    assert_eq!(attaches.len(), 10, "{attaches:#?}");
    // Bottom-up: the sub-partitions' indexes go to logs_p7's first.
    assert!(attaches[0].starts_with("ALTER INDEX \"public\".\"logs_p7_body_idx\" ATTACH"));
    assert!(attaches[1].starts_with("ALTER INDEX \"public\".\"logs_p7_body_idx\" ATTACH"));
    assert!(attaches[2..]
        .iter()
        .all(|a| a.starts_with("ALTER INDEX \"public\".\"logs_body_idx\" ATTACH")));
    e.start(&m).await.unwrap();
    let c = db.client().await;
    let all = indexes(&c, "logs%body_idx").await;
    assert_eq!(all.len(), 11, "{all:?}");
    assert!(all.iter().all(|i| i.2), "all valid: {all:?}");
    let sub = all.iter().find(|i| i.0 == "logs_p7_body_idx").unwrap();
    assert_eq!(sub.3.as_deref(), Some("logs_body_idx"));
    let leaf = all.iter().find(|i| i.0 == "logs_p7_a_body_idx").unwrap();
    assert_eq!(leaf.3.as_deref(), Some("logs_p7_body_idx"));
    // Abort after a complete start drops them all (the parent's DROP INDEX takes the
    // attached ones with it).
    e.abort().await.unwrap();
    assert!(indexes(&c, "logs%body_idx").await.is_empty());
}

/// A partition's build that failed half-way leaves an INVALID index; the retry drops it
/// concurrently and builds it again, as the route for a plain table does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_partition_build_leaves_an_invalid_index_that_the_retry_replaces() {
    let db = TestDb::new().await;
    let files = Files::new();
    with(&db, EVENTS).await;
    let collect = Arc::new(Collect::default());
    let config = Config {
        lock_timeout: Duration::from_millis(100),
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..config()
    };
    let mut e = Engine::connect(&db.url, config, collect.clone())
        .await
        .unwrap();
    // An open transaction holding a snapshot (and no lock on `events`): a concurrent build
    // waits for it once the index is built, past its lock timeout, and fails with the
    // index left INVALID. The transaction ends a while later.
    let blocker = db.client().await;
    blocker
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM accounts")
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(4)).await;
        blocker.batch_execute("COMMIT").await.unwrap();
    });
    let m = files.migration("02_kind_idx.yaml", KIND_INDEX);
    e.start(&m).await.unwrap();
    release.await.unwrap();
    let seen = collect.0.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|s| s.starts_with("dropping INVALID index events_p")),
        "{seen:#?}"
    );
    assert!(seen
        .iter()
        .any(|s| s.starts_with("retry: build index events_p")));
    let c = db.client().await;
    let all = indexes(&c, "events%kind_idx").await;
    assert_eq!(all.len(), 9, "{all:?}");
    assert!(all.iter().all(|i| i.2), "all valid: {all:?}");
}

/// Abort after a start that stopped half-way (one partition's build could not get its
/// lock): the parent's index and the partitions' indexes built so far are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_after_a_partial_start_drops_the_parent_and_partition_indexes() {
    let db = TestDb::new().await;
    let files = Files::new();
    with(&db, EVENTS).await;
    let config = Config {
        lock_timeout: Duration::from_millis(100),
        max_attempts: 1,
        ..config()
    };
    let mut e = Engine::connect(&db.url, config, Arc::new(ratchet_engine::Silent))
        .await
        .unwrap();
    let blocker = db.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE public.events_p5 IN SHARE MODE")
        .await
        .unwrap();
    let m = files.migration("02_kind_idx.yaml", KIND_INDEX);
    let err = e.start(&m).await.unwrap_err();
    assert!(
        err.to_string().contains("events_p5_kind_idx"),
        "the build on events_p5 failed: {err}"
    );
    let c = db.client().await;
    let built: Vec<String> = indexes(&c, "events%kind_idx")
        .await
        .into_iter()
        .map(|i| i.0)
        .collect();
    assert_eq!(
        built,
        [
            "events_kind_idx",
            "events_p0_kind_idx",
            "events_p1_kind_idx",
            "events_p2_kind_idx",
            "events_p3_kind_idx",
            "events_p4_kind_idx"
        ]
    );
    blocker.batch_execute("COMMIT").await.unwrap();
    e.abort().await.unwrap();
    assert!(indexes(&c, "events%kind_idx").await.is_empty());
}

/// add_column with `up` on a partitioned table: the backfill walks the partitions one by one, each with its own bound
/// (the partition's greatest key when the triggers were created) and cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backfill_walks_the_partitions_one_by_one_with_their_own_bounds() {
    let db = TestDb::new().await;
    let files = Files::new();
    with(&db, EVENTS).await;
    let config = Config {
        backfill: ratchet_engine::backfill::BackfillConfig {
            initial: 100,
            min: 50,
            max: 100,
            ..Default::default()
        },
        ..config()
    };
    let mut e = Engine::connect(&db.url, config, Arc::new(ratchet_engine::Silent))
        .await
        .unwrap();
    let m = files.migration(
        "02_note_length.yaml",
        "operations:\n  - add_column:\n      table: events\n      up: length(coalesce(note, ''))\n      column:\n        name: note_length\n        type: integer\n        nullable: false\n",
    );
    let plan = e.plan(&m).await.unwrap();
    let tables: Vec<(String, Option<String>)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Backfill(b) => Some((b.table.clone(), b.parent.clone())),
            _ => None,
        })
        .collect();
    let expected: Vec<(String, Option<String>)> = (0..8)
        .map(|i| (format!("events_p{i}"), Some("events".to_string())))
        .collect();
    assert_eq!(tables, expected);
    let c = db.client().await;
    // A partition's bound: its page count (and file node) when the triggers came.
    let at_start: Vec<String> = c
        .query(
            "SELECT (pg_relation_size(p.oid) / current_setting('block_size')::int + 1)::text
                    || ' ' || pg_relation_filenode(p.oid)
               FROM pg_class p WHERE p.relname LIKE 'events\\_p_' ORDER BY p.relname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();

    // No concurrent writes here, so that the bounds are known (the workload tests below
    // write through every phase).
    e.start(&m).await.unwrap();
    let bounds: Vec<(String, i64)> = c
        .query(
            "SELECT (b.upper_bound ->> 0) || ' ' || (b.upper_bound ->> 1), count(s.slice)
               FROM ratchet.backfills b
               LEFT JOIN ratchet.backfill_slices s USING (migration_id, step)
              GROUP BY b.step, b.upper_bound ORDER BY b.step",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(bounds.len(), 8, "{bounds:?}");
    for ((bound, slices), at_start) in bounds.iter().zip(&at_start) {
        assert_eq!(bound, at_start, "each partition's own bound");
        assert_eq!(*slices, 1, "each partition's own cursor");
    }
    let progress = e.backfill_progress().await.unwrap();
    let walked: Vec<String> = progress.iter().map(|p| p.table.clone()).collect();
    assert_eq!(
        walked,
        expected.iter().map(|t| t.0.clone()).collect::<Vec<_>>()
    );
    assert!(progress.iter().all(|p| p.done && p.rows_done > 0));
    let v = e.validate(false).await.unwrap().unwrap();
    assert!(v.passed, "{v:?}");
    let rows: i64 = c
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert!(v.rows_checked >= rows, "{v:?} of {rows}");
    common::complete(&mut e).await.unwrap();
    let bad: i64 = c
        .query_one(
            "SELECT count(*) FROM events WHERE note_length IS DISTINCT FROM length(coalesce(note, ''))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bad, 0);
}

/// A backfill batch that waits for a row which an application's UPDATE of the partition
/// key then moves to another partition fails with 40001 ("already moved to another
/// partition due to concurrent update"), under READ COMMITTED too. It is retried (it once
/// failed the whole backfill), and the moved row was filled by the dual-write trigger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_batch_racing_a_row_moved_to_another_partition_is_retried() {
    let db = TestDb::new().await;
    let files = Files::new();
    with(&db, EVENTS).await;
    let collect = Arc::new(Collect::default());
    let config = Config {
        run_backfill: false,
        lock_timeout: Duration::from_secs(3),
        ..config()
    };
    let mut e = Engine::connect(&db.url, config, collect.clone())
        .await
        .unwrap();
    let m = files.migration(
        "02_note_length.yaml",
        "operations:\n  - add_column:\n      table: events\n      up: length(coalesce(note, ''))\n      column:\n        name: note_length\n        type: integer\n        nullable: true\n",
    );
    assert!(e.start(&m).await.unwrap().backfill_left);
    let c = db.client().await;
    // The first row of the first partition the backfill walks, and a key of another one.
    let row = c
        .query_one(
            "SELECT min(id), (SELECT min(g) FROM generate_series(1000000::bigint, 1000100) g
                               WHERE NOT satisfies_hash_partition('public.events'::regclass, 8, 0, g))
               FROM public.events_p0",
            &[],
        )
        .await
        .unwrap();
    let (first, elsewhere): (i64, i64) = (row.get(0), row.get(1));
    let mover = db.client().await;
    mover
        .batch_execute(&format!(
            "BEGIN; UPDATE events SET id = {elsewhere} WHERE id = {first}"
        ))
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        mover.batch_execute("COMMIT").await.unwrap();
    });
    e.config.run_backfill = true;
    e.backfill().await.unwrap();
    release.await.unwrap();
    let seen = collect.0.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|s| s == "retry: backfill batch of events_p0"),
        "{seen:#?}"
    );
    let moved: (String, Option<i32>) = c
        .query_one(
            &format!(
                "SELECT tableoid::regclass::text, note_length FROM events WHERE id = {elsewhere}"
            ),
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_ne!(moved.0, "events_p0");
    assert!(moved.1.is_some(), "the trigger filled the moved row");
    let v = e.validate(false).await.unwrap().unwrap();
    assert!(v.passed, "{v:?}");
}

/// alter_column of an indexed column on a partitioned table: the index is re-created over
/// the duplicate partition by partition (the parent's `ON ONLY`, each partition's built
/// concurrently, attached), and at complete every index takes the name its original had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_over_a_replaced_column_is_rebuilt_per_partition_and_keeps_its_names() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = with(
        &db,
        &format!("{EVENTS}\nCREATE INDEX events_kind_idx ON public.events (kind);"),
    )
    .await;
    let c = db.client().await;
    let before = indexes(&c, "events%kind%").await;
    assert_eq!(before.len(), 9, "{before:?}");
    let m = files.migration(
        "02_kind_varchar.yaml",
        "operations:\n  - alter_column:\n      table: events\n      column: kind\n      type: varchar(20)\n      up: CAST(kind AS varchar(20))\n      down: kind\n",
    );
    let plan = e.plan(&m).await.unwrap();
    let builds = count_steps(&plan, Phase::Start, |a, _| {
        matches!(a, Action::CreateIndexConcurrently { .. })
    });
    assert_eq!(builds, 8);
    let writer = Writer::start(&db.url);
    tokio::time::sleep(Duration::from_millis(200)).await;
    e.start(&m).await.unwrap();
    assert!(writer.finish().await > 10);
    e.validate_and_complete().await.unwrap();
    let after = indexes(&c, "events%kind%").await;
    assert_eq!(after.len(), 9, "{after:?}");
    let names = |v: &[(String, String, bool, Option<String>)]| {
        v.iter()
            .map(|i| (i.0.clone(), i.1.clone(), i.3.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&after), names(&before));
    assert!(after.iter().all(|i| i.2), "valid: {after:?}");
    let def: String = c
        .query_one(
            "SELECT pg_get_indexdef('public.events_p3_kind_idx'::regclass)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(def.ends_with("(kind)"), "{def}");
}

/// The setup of `workload_matrix.rs` with `payments` hash-partitioned by id into 8.
fn partitioned_setup() -> String {
    let partitions: String = (0..8)
        .map(|i| {
            format!(
                "CREATE TABLE payments_p{i} PARTITION OF payments FOR VALUES WITH (MODULUS 8, REMAINDER {i});\n"
            )
        })
        .collect();
    workload::SETUP
        .replace(
            "id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,",
            "id bigint GENERATED BY DEFAULT AS IDENTITY,",
        )
        .replace(
            "    touched int NOT NULL DEFAULT 0\n);",
            &format!("    touched int NOT NULL DEFAULT 0,\n    PRIMARY KEY (id)\n) PARTITION BY HASH (id);\n{partitions}"),
        )
}

#[test]
fn the_partitioned_setup_partitions_payments() {
    let s = partitioned_setup();
    assert!(s.contains(") PARTITION BY HASH (id);"), "{s}");
    assert_eq!(s.matches("PARTITION OF payments").count(), 8);
}

/// The cases of `workload_matrix.rs` over the partitioned `payments`: old and new versions
/// (base tables, version schemas) write every way applications do, rows move between
/// partitions (the key is updated), while start, a half-done backfill, the backfill, the
/// validation and complete run. Every statement must succeed.
macro_rules! partitioned_matrix {
    ($($test:ident => $i:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $test() {
            let case = &workload::cases()[$i];
            workload::run_case(case, &partitioned_setup()).await;
        }
    )*};
}

partitioned_matrix! {
    partitioned_alter_column_type_under_every_kind_of_write => 0,
    partitioned_alter_column_not_null_under_every_kind_of_write => 1,
    partitioned_alter_column_check_under_every_kind_of_write => 2,
    partitioned_alter_column_references_under_every_kind_of_write => 4,
    partitioned_rename_with_a_simple_case_under_every_kind_of_write => 5,
    partitioned_add_column_with_up_under_every_kind_of_write => 6,
    partitioned_drop_column_with_down_under_every_kind_of_write => 7,
    partitioned_create_constraint_check_under_every_kind_of_write => 8,
    partitioned_two_columns_in_one_migration_under_every_kind_of_write => 9,
}

/// The matrix case left out above (a unique constraint) is refused on a partitioned table,
/// with the way that works.
#[tokio::test]
async fn a_unique_constraint_on_a_partitioned_table_is_refused_with_the_way_that_works() {
    let db = TestDb::new().await;
    let files = Files::new();
    let e = with(&db, &partitioned_setup()).await;
    let case = &workload::cases()[3];
    assert_eq!(case.name, "alter_column unique");
    let m = files.migration("02_unique.yaml", case.migration);
    let err = e.plan(&m).await.unwrap_err();
    assert!(matches!(err, EngineError::Unsupported { .. }), "{err:?}");
    let err = err.to_string();
    for part in [
        "partitioned table `payments`",
        "HASH (id)",
        "create_index with `unique: true`",
    ] {
        assert!(err.contains(part), "{part} in: {err}");
    }
}

/// (table, validated, attached to a parent constraint) of every constraint `name`.
async fn constraints(c: &tokio_postgres::Client, name: &str) -> Vec<(String, bool, bool)> {
    c.query(
        "SELECT conrelid::regclass::text, convalidated, conparentid <> 0 FROM pg_constraint
          WHERE conname = $1 ORDER BY 1",
        &[&name],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Foreign keys and checks `NOT VALID` on a partitioned table, on this server's version:
/// PostgreSQL 18 adds a `NOT VALID` foreign key to a partitioned table (and validates it
/// partition by partition when asked); before 18 it refuses, and ratchet adds the key `NOT
/// VALID` to each partition, validates each, and adds it to the parent, which adopts them.
/// The server's own behaviour is asserted first, so a run on another version checks that
/// version's route, never skipping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_and_checks_on_a_partitioned_table_take_the_route_the_version_allows() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = with(&db, EVENTS).await;
    let c = db.client().await;
    let version = server_version(&c).await;
    let direct = c
        .batch_execute(
            "BEGIN; ALTER TABLE events ADD CONSTRAINT probe_fk FOREIGN KEY (account_id)
                    REFERENCES accounts NOT VALID",
        )
        .await;
    c.batch_execute("ROLLBACK").await.unwrap();
    if version >= 180000 {
        direct.unwrap_or_else(|e| panic!("PostgreSQL {version} adds it NOT VALID: {e:?}"));
    } else {
        let err = format!("{:?}", direct.unwrap_err());
        assert!(
            err.contains("cannot add NOT VALID foreign key on partitioned table"),
            "PostgreSQL {version}: {err}"
        );
    }
    let m = files.migration(
        "02_fk.yaml",
        r#"
operations:
  - alter_column:
      table: events
      column: account_id
      references:
        name: events_account_fk
        table: accounts
        column: id
  - add_column:
      table: events
      column:
        name: owner_id
        type: int
        nullable: true
        references:
          name: events_owner_fk
          table: accounts
          column: id
        check:
          name: events_owner_positive
          constraint: owner_id > 0
"#,
    );
    let plan = e.plan(&m).await.unwrap();
    let adds: Vec<String> = plan
        .steps_of(Phase::Start)
        .flat_map(|(_, s)| s.statements())
        .map(|s| s.sql)
        .filter(|s| s.contains("ADD CONSTRAINT \"events_account_fk\""))
        .collect();
    if version >= 180000 {
        assert_eq!(adds.len(), 1, "{adds:#?}");
        assert!(adds[0].starts_with("ALTER TABLE \"public\".\"events\" ADD"));
        assert!(adds[0].ends_with("NOT VALID"));
    } else {
        // Each partition NOT VALID, then the parent (no NOT VALID: it adopts them).
        assert_eq!(adds.len(), 9, "{adds:#?}");
        assert!(adds[..8].iter().all(
            |a| a.starts_with("ALTER TABLE \"public\".\"events_p") && a.ends_with("NOT VALID")
        ));
        assert!(adds[8].starts_with("ALTER TABLE \"public\".\"events\" ADD"));
        assert!(!adds[8].contains("NOT VALID"));
        let validations = count_steps(&plan, Phase::Start, |_, d| {
            d.starts_with("validate foreign key events_account_fk on partition events_p")
        });
        assert_eq!(validations, 8);
    }

    let writer = Writer::start(&db.url);
    tokio::time::sleep(Duration::from_millis(200)).await;
    e.start(&m).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(writer.finish().await > 10);

    for name in [
        "events_account_fk",
        "events_owner_fk",
        "events_owner_positive",
    ] {
        let all = constraints(&c, name).await;
        assert_eq!(all.len(), 9, "{name}: {all:?}");
        assert!(all.iter().all(|(_, valid, _)| *valid), "{name}: {all:?}");
        assert!(
            all.iter()
                .all(|(t, _, attached)| t == "events" || *attached || name.ends_with("positive")),
            "{name}: the partitions' keys belong to the parent's: {all:?}"
        );
    }
    let err = c
        .batch_execute("INSERT INTO events (id, kind, account_id) VALUES (500000, 'x', 99)")
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("events_account_fk"), "{err:?}");
    let err = c
        .batch_execute("INSERT INTO events (id, kind, owner_id) VALUES (500001, 'x', 0)")
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("events_owner_positive"),
        "{err:?}"
    );

    // Abort drops the keys from the parent and every partition.
    e.abort().await.unwrap();
    for name in [
        "events_account_fk",
        "events_owner_fk",
        "events_owner_positive",
    ] {
        assert!(constraints(&c, name).await.is_empty(), "{name}");
    }
}

/// A foreign key over a duplicate column (alter_column with `up`/`down`) on a partitioned
/// table: on the duplicate's leaves under a temporary name before PostgreSQL 18, validated
/// at complete, renamed and adopted by the parent's key once the old column is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_over_a_duplicate_column_ends_up_on_the_parent_and_every_partition() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = with(&db, EVENTS).await;
    let m = files.migration(
        "02_fk_dup.yaml",
        r#"
operations:
  - alter_column:
      table: events
      column: account_id
      type: bigint
      up: CAST(account_id AS bigint)
      down: CAST(account_id AS integer)
      references:
        name: events_account_fk
        table: accounts
        column: id
"#,
    );
    let writer = Writer::start(&db.url);
    tokio::time::sleep(Duration::from_millis(200)).await;
    e.start(&m).await.unwrap();
    let v = e.validate(false).await.unwrap().unwrap();
    assert!(v.passed, "{v:?}");
    // The writer is the old version on the base table: it is gone before complete.
    assert!(writer.finish().await > 10);
    common::complete(&mut e).await.unwrap();
    let c = db.client().await;
    let all = constraints(&c, "events_account_fk").await;
    assert_eq!(all.len(), 9, "{all:?}");
    assert!(all
        .iter()
        .all(|(t, valid, attached)| *valid && (t == "events" || *attached)));
    assert_eq!(
        columns(&c, "public", "events").await,
        ["id", "kind", "note", "account_id"]
    );
    let ty: String = c
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
              WHERE attrelid = 'public.events_p3'::regclass AND attname = 'account_id'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ty, "bigint");
}
