//! Dual writes, backfills and validation on real PostgreSQL: concurrent workloads through
//! both versions, endless inserts, tables without a key, composite keys, empty tables,
//! NULLs, an `up` that fails for some rows, and several workers on slices of one table.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ratchet_engine::{Config, EngineError};
use ratchet_scratch::testing::{connect, count_writes_sql, TestDb, WRITES_PER_ROW};

const TYPE_CHANGE: &str = r#"
operations:
  - alter_column:
      table: items
      column: amount
      type: bigint
      up: CAST(amount AS bigint)
      down: CAST(amount AS text)
"#;

async fn items(db: &TestDb, files: &Files, rows: i64) -> ratchet_engine::Engine {
    let mut e = engine(db).await;
    let m = files.migration(
        "01_items.yaml",
        r#"
operations:
  - create_table:
      name: items
      columns:
        - name: id
          type: bigint
          pk: true
          generated:
            identity:
              user_specified_values: BY DEFAULT
        - name: amount
          type: text
          nullable: true
        - name: note
          type: text
          nullable: true
"#,
    );
    e.start(&m).await.unwrap();
    common::complete(&mut e).await.unwrap();
    db.client()
        .await
        .execute(
            "INSERT INTO public.items (amount, note) SELECT g::text, 'n' FROM generate_series(1, $1::bigint) g",
            &[&rows],
        )
        .await
        .unwrap();
    e
}

/// Inserts, updates of the changed and of an unrelated column, deletes, through one version.
fn workload(
    url: String,
    version: &'static str,
    new: bool,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let c = connect(&url).await.unwrap();
        c.batch_execute(&format!("SET search_path TO {version}, public"))
            .await
            .unwrap();
        let mut i: i64 = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let id = (i * 7919) % 2000 + 1;
            let res = async {
                if new {
                    c.execute(
                        "INSERT INTO items (amount, note) VALUES ($1, 'new')",
                        &[&(i + 1_000_000)],
                    )
                    .await?;
                    c.execute("UPDATE items SET amount = amount + 1 WHERE id = $1", &[&id])
                        .await?;
                } else {
                    c.execute(
                        "INSERT INTO items (amount, note) VALUES ($1, 'old')",
                        &[&(i + 2_000_000).to_string()],
                    )
                    .await?;
                    c.execute(
                        "UPDATE items SET amount = (amount::bigint + 1)::text WHERE id = $1",
                        &[&id],
                    )
                    .await?;
                }
                c.execute(
                    "UPDATE items SET note = note || '.' WHERE id = $1",
                    &[&(id + 1)],
                )
                .await?;
                c.execute("DELETE FROM items WHERE id = $1", &[&(id + 3000)])
                    .await?;
                Ok::<_, tokio_postgres::Error>(())
            }
            .await;
            match res {
                Ok(()) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => errors.lock().unwrap().push(format!("{version}: {e:?}")),
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn type_change_under_load_through_both_versions_has_zero_errors_and_consistent_rows() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = items(&db, &files, 5000).await;
    e.config.backfill.initial = 100;
    e.config.backfill.max = 200;
    e.config.backfill.workers = 2;
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (old_ok, new_ok) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let old_stop = Arc::new(AtomicBool::new(false));
    let olds: Vec<_> = (0..2)
        .map(|_| {
            workload(
                db.url.clone(),
                "public_01_items",
                false,
                old_stop.clone(),
                old_ok.clone(),
                errors.clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = files.migration("02_type.yaml", TYPE_CHANGE);
    e.start(&m).await.unwrap();
    let new_stop = Arc::new(AtomicBool::new(false));
    let news: Vec<_> = (0..2)
        .map(|_| {
            workload(
                db.url.clone(),
                "public_02_type",
                true,
                new_stop.clone(),
                new_ok.clone(),
                errors.clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    old_stop.store(true, Ordering::Relaxed);
    for h in olds {
        h.await.unwrap();
    }
    // Both directions are consistent for every row, whoever wrote it.
    let c = db.client().await;
    let bad: i64 = c
        .query_one(
            "SELECT count(*) FROM public.items WHERE _ratchet_new_amount IS DISTINCT FROM CAST(amount AS bigint)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bad, 0, "rows where new <> up(old)");
    let v = e.validate(false).await.unwrap().unwrap();
    assert!(v.passed, "{v:?}");
    assert!(v.rows_checked >= 5000);
    common::complete(&mut e).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    new_stop.store(true, Ordering::Relaxed);
    for h in news {
        h.await.unwrap();
    }
    assert_eq!(errors.lock().unwrap().clone(), Vec::<String>::new());
    assert!(old_ok.load(Ordering::Relaxed) > 5 && new_ok.load(Ordering::Relaxed) > 5);
    assert_eq!(
        columns(&c, "public", "items").await,
        ["id", "note", "amount"]
    );
    let ty: String = c
        .query_one("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'amount'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ty, "bigint");
    assert_eq!(
        columns(&c, "public_02_type", "items").await,
        ["id", "amount", "note"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_ends_under_an_insert_load_that_never_stops() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = items(&db, &files, 3000).await;
    e.config.backfill.initial = 50;
    e.config.backfill.max = 50;
    e.config.backfill.workers = 3;
    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicU64::new(0));
    let inserter = {
        let (url, stop, inserted) = (db.url.clone(), stop.clone(), inserted.clone());
        tokio::spawn(async move {
            let c = connect(&url).await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                c.execute("INSERT INTO public.items (amount) SELECT g::text FROM generate_series(1, 20) g", &[])
                    .await
                    .unwrap();
                inserted.fetch_add(20, Ordering::Relaxed);
            }
        })
    };
    while inserted.load(Ordering::Relaxed) < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = inserted.load(Ordering::Relaxed);
    let m = files.migration("02_type.yaml", TYPE_CHANGE);
    tokio::time::timeout(Duration::from_secs(120), e.start(&m))
        .await
        .expect("the backfill must end while inserts continue")
        .unwrap();
    let during = inserted.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    inserter.await.unwrap();
    assert!(during > 0, "inserts kept coming while the backfill ran");
    let v = e.validate(false).await.unwrap().unwrap();
    assert!(v.passed, "{v:?}");
}

#[tokio::test]
async fn table_without_a_key_composite_key_empty_table_and_nulls() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = engine(&db).await;
    let c = db.client().await;
    nokey_and_pair(&c, 3000).await;
    c.batch_execute("CREATE TABLE public.empty (id int PRIMARY KEY, v text)")
        .await
        .unwrap();
    e.config.backfill.initial = 10;
    let m = files.migration(
        "01_all.yaml",
        r#"
operations:
  - alter_column:
      table: nokey
      column: a
      type: int
      up: CAST(a AS int)
      down: CAST(a AS text)
  - alter_column:
      table: pair
      column: v
      type: int
      nullable: false
      up: COALESCE(CAST(v AS int), 0)
      down: CAST(v AS text)
  - alter_column:
      table: empty
      column: v
      type: int
      up: CAST(v AS int)
      down: CAST(v AS text)
"#,
    );
    e.start(&m).await.unwrap();
    let nulls: i64 = c
        .query_one(
            "SELECT count(*) FROM public.nokey WHERE _ratchet_new_a IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nulls, 300, "NULL stays NULL");
    let v = e.validate(false).await.unwrap().unwrap();
    assert!(v.passed, "{v:?}");
    assert_eq!(v.rows_checked, 6000);
    common::complete(&mut e).await.unwrap();
    let sum: i64 = c
        .query_one(
            "SELECT sum(a)::bigint + (SELECT sum(v) FROM public.pair) FROM public.nokey",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let expect: i64 = (1..=3000i64).filter(|g| g % 10 != 0).sum::<i64>()
        + (1..=3000i64).map(|g| g * 2).sum::<i64>();
    assert_eq!(sum, expect);
}

#[tokio::test]
async fn an_up_that_fails_names_the_row_and_leaves_nothing_half_done() {
    up_fails_for_one_row(1).await;
}

#[tokio::test]
async fn an_up_that_fails_in_one_of_three_workers_stops_them_all_and_resumes() {
    up_fails_for_one_row(3).await;
}

async fn up_fails_for_one_row(workers: usize) {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = items(&db, &files, 5000).await;
    e.config.backfill.workers = workers;
    let c = db.client().await;
    c.batch_execute("UPDATE public.items SET amount = 'oops' WHERE id = 4321")
        .await
        .unwrap();
    // The rows that share the page of the failing row: its batch (whole pages) has them.
    let neighbours: Vec<i64> = c
        .query(
            "SELECT id FROM public.items
              WHERE (ctid::text::point)[0] = (SELECT (ctid::text::point)[0] FROM public.items WHERE id = 4321)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(neighbours.len() > 1, "{neighbours:?}");
    let m = files.migration("02_type.yaml", TYPE_CHANGE);
    let err = e.start(&m).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("(id)=(4321)"), "{text}");
    assert!(text.contains("invalid input syntax"), "{text}");
    assert!(err.is_refusal());
    // The failed batch wrote nothing; the gate refuses complete.
    let in_batch: i64 = c
        .query_one(
            "SELECT count(*) FROM public.items WHERE id = ANY($1) AND _ratchet_new_amount IS NOT NULL",
            &[&neighbours],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_batch, 0);
    let refusal = common::complete(&mut e).await.unwrap_err();
    assert!(
        matches!(
            refusal,
            EngineError::Refused {
                kind: ratchet_engine::error::Refusal::StartUnfinished,
                ..
            }
        ),
        "{refusal:?}"
    );
    // Fix the row, resume: done and valid.
    c.batch_execute("UPDATE public.items SET amount = '4321' WHERE id = 4321")
        .await
        .unwrap();
    e.backfill().await.unwrap();
    let progress = e.backfill_progress().await.unwrap();
    // The fix itself went through the dual-write trigger: 4,999 rows were left.
    assert_eq!(progress[0].rows_done, 4999, "{progress:?}");
    assert!(e.validate(false).await.unwrap().unwrap().passed);
    common::complete(&mut e).await.unwrap();
}

/// A table without a key (`nokey`, every tenth `a` NULL) and one with a composite key
/// (`pair`, 3,000 rows).
async fn nokey_and_pair(c: &tokio_postgres::Client, nokey_rows: i64) {
    c.batch_execute(&format!(
        "CREATE TABLE public.nokey (a text, b int);
         INSERT INTO public.nokey SELECT CASE WHEN g % 10 = 0 THEN NULL ELSE g::text END, g FROM generate_series(1, {nokey_rows}) g;
         CREATE TABLE public.pair (x int, y text, v text, PRIMARY KEY (x, y));
         INSERT INTO public.pair SELECT g % 7, g::text, (g * 2)::text FROM generate_series(1, 3000) g;"
    ))
    .await
    .unwrap();
}

/// An `alter_column` changing `column` of `table` from text to `ty`.
fn to_number(table: &str, column: &str, ty: &str) -> String {
    format!(
        "  - alter_column:\n      table: {table}\n      column: {column}\n      type: {ty}\n      \
         up: CAST({column} AS {ty})\n      down: CAST({column} AS text)\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_workers_fill_disjoint_slices_and_a_resume_with_more_workers_cuts_them_again() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = items(&db, &files, 6000).await;
    let c = db.client().await;
    c.batch_execute(&count_writes_sql("items", "_ratchet_new_amount"))
        .await
        .unwrap();
    nokey_and_pair(&c, 9000).await;
    let per_page = rows_per_page(&c, "items").await;
    let m = files.migration(
        "02_three.yaml",
        &format!(
            "operations:\n{}{}{}",
            to_number("items", "amount", "bigint"),
            to_number("pair", "v", "int"),
            to_number("nokey", "a", "int")
        ),
    );
    // One worker, stopped by the throttle after five batches of 100 rows of `items`.
    e.config.backfill.initial = 100;
    e.config.backfill.max = 100;
    e.set_throttle(Arc::new(StopAfter(Default::default(), 6)));
    let err = e.start(&m).await.unwrap_err();
    assert!(err.to_string().contains("replication lag"), "{err}");
    // Five batches of whole pages, each of at least 100 rows.
    let done = e.backfill_progress().await.unwrap()[0].rows_done;
    assert_eq!(done, filled(&c, "items").await);
    assert!((500..500 + 5 * per_page).contains(&done), "{done}");
    // Resumed with four workers: the rest of `items` is cut in four, `pair` in three
    // (1,000 rows at least each), `nokey` in four page ranges.
    e.set_throttle(Arc::new(ratchet_engine::backfill::NoThrottle));
    e.config.backfill.workers = 4;
    e.config.backfill.max = 500;
    e.backfill().await.unwrap();
    let slices: Vec<(i32, i64, i64, bool)> = c
        .query(
            "SELECT step, count(*), sum(rows_done)::bigint, bool_and(done)
               FROM ratchet.backfill_slices GROUP BY step ORDER BY step",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    // A table without a key is walked by pages: a row whose `up` is NULL stays "to do"
    // and is filled (with NULL again) once more if its new version lands in a page not
    // walked yet; rows with a value are never written twice.
    let nokey_done = slices[2].2;
    assert!((9000..=9900).contains(&nokey_done), "{slices:?}");
    let counts: Vec<(i64, i64, bool)> = slices.iter().map(|s| (s.1, s.2, s.3)).collect();
    assert_eq!(
        counts,
        [(4, 6000, true), (3, 3000, true), (4, nokey_done, true)],
        "{slices:?}"
    );
    let progress = e.backfill_progress().await.unwrap();
    let done: Vec<(i64, bool)> = progress.iter().map(|p| (p.rows_done, p.done)).collect();
    assert_eq!(done, [(6000, true), (3000, true), (nokey_done, true)]);
    // Every row of `items` written exactly once.
    let r = c.query_one(WRITES_PER_ROW, &[]).await.unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (6000, 1));
    let v = e.validate(false).await.unwrap().unwrap();
    assert!(v.passed, "{v:?}");
    common::complete(&mut e).await.unwrap();
    let sum: i64 = c
        .query_one(
            "SELECT (SELECT sum(amount) FROM public.items)::bigint
                  + (SELECT sum(v) FROM public.pair) + (SELECT sum(a) FROM public.nokey)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let expect: i64 = (1..=6000i64).sum::<i64>()
        + (1..=3000i64).map(|g| g * 2).sum::<i64>()
        + (1..=9000i64).filter(|g| g % 10 != 0).sum::<i64>();
    assert_eq!(sum, expect);
}

#[tokio::test]
async fn validation_finds_and_repairs_mismatches_and_gates_complete() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = items(&db, &files, 100).await;
    let m = files.migration("02_type.yaml", TYPE_CHANGE);
    e.start(&m).await.unwrap();
    assert!(e
        .complete()
        .await
        .unwrap_err()
        .to_string()
        .contains("validated: not validated; next: ratchet validate"));
    let c = db.client().await;
    // Corrupt two rows behind the triggers' back.
    c.batch_execute("SET ratchet.backfill = 'on'; UPDATE public.items SET _ratchet_new_amount = -1 WHERE id IN (5, 6)")
        .await
        .unwrap();
    let v = e.validate(false).await.unwrap().unwrap();
    assert!(!v.passed);
    assert_eq!(v.mismatches, 2);
    assert_eq!(v.samples.len(), 2);
    assert!(e
        .complete()
        .await
        .unwrap_err()
        .to_string()
        .contains("failed"));
    let v = e.validate(true).await.unwrap().unwrap();
    assert_eq!(v.repaired, 2);
    assert!(e.validate(false).await.unwrap().unwrap().passed);
    common::complete(&mut e).await.unwrap();
}

#[tokio::test]
async fn add_column_with_up_and_drop_column_with_down_fill_both_ways() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = items(&db, &files, 50).await;
    let m = files.migration(
        "02_cols.yaml",
        r#"
operations:
  - add_column:
      table: items
      up: "'#' || amount"
      column:
        name: label
        type: text
  - drop_column:
      table: items
      column: note
      down: "'from new'"
"#,
    );
    e.start(&m).await.unwrap();
    let c = db.client().await;
    c.batch_execute("INSERT INTO public_01_items.items (amount, note) VALUES ('77', 'x')")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO public_02_cols.items (amount, label) VALUES ('88', 'mine')")
        .await
        .unwrap();
    let row = c
        .query_one(
            "SELECT label FROM public_02_cols.items WHERE amount = '77'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "#77",
        "old-version insert computed with up"
    );
    let row = c
        .query_one("SELECT note FROM public.items WHERE amount = '88'", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "from new",
        "new-version insert computed with down"
    );
    let row = c
        .query_one("SELECT label FROM public_02_cols.items WHERE id = 3", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "#3", "backfilled");
    // With the search_path of a pooler that also lists public, the direction is the same.
    c.batch_execute(
        "SET search_path TO public_01_items, public; UPDATE items SET amount = '99' WHERE id = 4",
    )
    .await
    .unwrap();
    let row = c
        .query_one("SELECT label FROM public_02_cols.items WHERE id = 4", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "#99");
    assert!(e.validate(false).await.unwrap().unwrap().passed);
    common::complete(&mut e).await.unwrap();
    assert_eq!(
        columns(&c, "public", "items").await,
        ["id", "amount", "label"]
    );
}

/// The rows of `table` whose new `amount` is filled.
async fn filled(c: &tokio_postgres::Client, table: &str) -> i64 {
    c.query_one(
        &format!("SELECT count(*) FROM public.{table} WHERE _ratchet_new_amount IS NOT NULL"),
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// The rows the first page of `table` holds.
async fn rows_per_page(c: &tokio_postgres::Client, table: &str) -> i64 {
    c.query_one(
        &format!("SELECT count(*) FROM public.{table} WHERE ctid < '(1,0)'"),
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Stops the backfill after a number of batches, like a monitor seeing trouble.
struct StopAfter(std::sync::atomic::AtomicU32, u32);
impl ratchet_engine::backfill::Throttle for StopAfter {
    fn after_batch(
        &self,
        stats: &ratchet_engine::backfill::BatchStats,
    ) -> ratchet_engine::backfill::Decision {
        assert!(stats.rows > 0 && stats.batch_size > 0);
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 {
            return ratchet_engine::backfill::Decision::Pause(Duration::from_millis(20));
        }
        if n >= self.1 {
            return ratchet_engine::backfill::Decision::Stop("replication lag too high".into());
        }
        ratchet_engine::backfill::Decision::Continue
    }
}

#[tokio::test]
async fn the_throttle_hook_pauses_and_stops_between_batches_and_the_backfill_resumes() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = items(&db, &files, 2000).await;
    let c = db.client().await;
    let per_page = rows_per_page(&c, "items").await;
    e.config.backfill.initial = 100;
    e.config.backfill.max = 100;
    e.set_throttle(Arc::new(StopAfter(Default::default(), 4)));
    let m = files.migration("02_type.yaml", TYPE_CHANGE);
    let err = e.start(&m).await.unwrap_err();
    assert!(
        err.to_string().contains("replication lag too high"),
        "{err}"
    );
    // Asked after batch 1 (pause), again after the pause (go on), after batch 2 (go on),
    // after batch 3 (stop): three batches of about 100 rows (whole pages) are done and
    // stored.
    let progress = e.backfill_progress().await.unwrap();
    assert_eq!(progress[0].rows_done, filled(&c, "items").await);
    assert!(
        (300..300 + 3 * per_page).contains(&progress[0].rows_done),
        "{progress:?}"
    );
    assert!(!progress[0].done);
    e.set_throttle(Arc::new(ratchet_engine::backfill::NoThrottle));
    e.backfill().await.unwrap();
    let progress = e.backfill_progress().await.unwrap();
    assert_eq!(progress[0].rows_done, 2000);
    assert!(progress[0].done);
    assert!(e.validate(false).await.unwrap().unwrap().passed);
    common::complete(&mut e).await.unwrap();
}

/// `url` with the user (and password) replaced.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("{scheme}://{user}:{password}@{host}")
}

#[tokio::test]
async fn everything_works_without_superuser() {
    let db = TestDb::new().await;
    let files = Files::new();
    let admin = db.client().await;
    let role = format!("app_{}", db.name);
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role};
             CREATE ROLE {role} LOGIN PASSWORD 'ratchet' NOSUPERUSER NOCREATEDB NOCREATEROLE;
             GRANT CREATE ON DATABASE \"{}\" TO {role};
             ALTER SCHEMA public OWNER TO {role};",
            db.name
        ))
        .await
        .unwrap();
    let url = as_user(&db.url, &role, "ratchet");
    let mut e = ratchet_engine::Engine::connect(&url, config(), Arc::new(ratchet_engine::Silent))
        .await
        .unwrap();
    let m = files.migration(
        "01_t.yaml",
        "operations:\n  - create_table:\n      name: t\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n        - name: v\n          type: text\n",
    );
    e.start(&m).await.unwrap();
    common::complete(&mut e).await.unwrap();
    let app = connect(&url).await.unwrap();
    app.batch_execute("INSERT INTO public.t SELECT g, g::text FROM generate_series(1, 1000) g")
        .await
        .unwrap();
    let m = files.migration(
        "02_v.yaml",
        "operations:\n  - alter_column:\n      table: t\n      column: v\n      type: int\n      up: CAST(v AS int)\n      down: CAST(v AS text)\n",
    );
    e.start(&m).await.unwrap();
    app.batch_execute("INSERT INTO public_01_t.t VALUES (5000, '5000')")
        .await
        .unwrap();
    assert!(e.validate(false).await.unwrap().unwrap().passed);
    common::complete(&mut e).await.unwrap();
    let sum: i64 = app
        .query_one("SELECT sum(v)::bigint FROM public_02_v.t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 500_500 + 5000);
    drop(e);
    drop(app);
    admin
        .batch_execute(&format!(
            "REASSIGN OWNED BY {role} TO postgres; DROP OWNED BY {role}; DROP ROLE {role}"
        ))
        .await
        .unwrap();
}

/// `--schema app`: the managed schema is not `public`, ratchet runs as a role without
/// superuser that owns it, and the application is a second role with DML rights only,
/// writing through the old version schema, the new one alone, and the new one with `app`
/// after it (a prepared statement reused across the phases) while the migration runs.
#[tokio::test]
async fn a_non_public_schema_owned_by_a_plain_role_with_a_dml_only_application() {
    let db = TestDb::new().await;
    let files = Files::new();
    let admin = db.client().await;
    let (owner, app_role) = (format!("own_{}", db.name), format!("dml_{}", db.name));
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {owner}; DROP ROLE IF EXISTS {app_role};
             CREATE ROLE {owner} LOGIN PASSWORD 'ratchet' NOSUPERUSER NOCREATEDB NOCREATEROLE;
             CREATE ROLE {app_role} LOGIN PASSWORD 'ratchet' NOSUPERUSER NOCREATEDB NOCREATEROLE;
             GRANT CREATE ON DATABASE \"{}\" TO {owner};
             CREATE SCHEMA app AUTHORIZATION {owner};
             REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
            db.name
        ))
        .await
        .unwrap();
    let cfg = Config {
        schema: "app".into(),
        ..config()
    };
    let mut e = ratchet_engine::Engine::connect(
        &as_user(&db.url, &owner, "ratchet"),
        cfg,
        Arc::new(ratchet_engine::Silent),
    )
    .await
    .unwrap();
    let m = files.migration(
        "01_t.yaml",
        "operations:\n  - create_table:\n      name: t\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n        - name: v\n          type: text\n        - name: n\n          type: int\n          nullable: true\n",
    );
    e.start(&m).await.unwrap();
    common::complete(&mut e).await.unwrap();
    let as_owner = connect(&as_user(&db.url, &owner, "ratchet")).await.unwrap();
    as_owner
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA app TO {app_role};
             GRANT SELECT, INSERT, UPDATE, DELETE ON app.t TO {app_role};
             INSERT INTO app.t SELECT g, g::text, 0 FROM generate_series(1, 1000) g;"
        ))
        .await
        .unwrap();
    // Grants given after a start reach the version schema's views with `ratchet grants`.
    e.sync_grants().await.unwrap();
    let app_url = as_user(&db.url, &app_role, "ratchet");
    let old = connect(&app_url).await.unwrap();
    old.batch_execute("SET search_path = app_01_t")
        .await
        .unwrap();
    let m = files.migration(
        "02_v.yaml",
        "operations:\n  - alter_column:\n      table: t\n      column: v\n      type: int\n      up: CAST(v AS int)\n      down: CAST(v AS text)\n",
    );
    e.start(&m).await.unwrap();
    // The application cannot touch the state schema beyond its two functions.
    let err = old
        .batch_execute("UPDATE ratchet.flags SET state = 'on'")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{err}"
    );
    let new_alone = connect(&app_url).await.unwrap();
    new_alone
        .batch_execute("SET search_path = app_02_v")
        .await
        .unwrap();
    let new_then_app = connect(&app_url).await.unwrap();
    new_then_app
        .batch_execute("SET search_path = app_02_v, app")
        .await
        .unwrap();
    let bump = new_then_app
        .prepare("UPDATE t SET n = n + 1 WHERE id = $1")
        .await
        .unwrap();
    let write = |round: i64| {
        let (old, new_alone, new_then_app, bump) = (&old, &new_alone, &new_then_app, &bump);
        async move {
            let k = 10_000 + round * 10;
            old.execute(
                "INSERT INTO t (id, v, n) VALUES ($1, $2, 0)",
                &[&k, &k.to_string()],
            )
            .await
            .unwrap();
            old.execute("UPDATE t SET n = n + 1 WHERE id = $1", &[&(round + 1)])
                .await
                .unwrap();
            new_alone
                .execute(
                    "INSERT INTO t (id, v, n) VALUES ($1, $2, 0) ON CONFLICT (id) DO UPDATE SET n = t.n",
                    &[&(k + 1), &((k + 1) as i32)],
                )
                .await
                .unwrap();
            new_alone
                .execute("UPDATE t SET v = v WHERE id = $1", &[&(round + 100)])
                .await
                .unwrap();
            new_then_app.execute(bump, &[&(round + 200)]).await.unwrap();
            old.execute("DELETE FROM t WHERE id = $1", &[&(round + 500)])
                .await
                .unwrap();
        }
    };
    write(1).await;
    assert!(e.validate(false).await.unwrap().unwrap().passed);
    write(2).await;
    common::complete(&mut e).await.unwrap();
    new_alone
        .batch_execute("SET search_path = app_02_v")
        .await
        .unwrap();
    new_then_app.execute(&bump, &[&300i64]).await.unwrap();
    let (rows, sum_v, sum_n): (i64, i64, i64) = {
        let r = new_alone
            .query_one(
                "SELECT count(*), sum(v)::bigint, sum(n)::bigint FROM t",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    // 1000 rows + 4 inserted - 2 deleted; v: 1..1000 without 501, 502, plus the inserts.
    assert_eq!(rows, 1002);
    assert_eq!(
        sum_v,
        500_500 - 501 - 502 + 10_010 + 10_011 + 10_020 + 10_021
    );
    assert_eq!(sum_n, 2 + 2 + 1);
    let ty: String = as_owner
        .query_one(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 't' AND column_name = 'v'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ty, "integer");
    drop((e, old, new_alone, new_then_app, as_owner));
    admin
        .batch_execute(&format!(
            "DROP SCHEMA app CASCADE; DROP SCHEMA IF EXISTS ratchet CASCADE;
             REASSIGN OWNED BY {owner} TO postgres; DROP OWNED BY {owner}; DROP ROLE {owner};
             DROP OWNED BY {app_role}; DROP ROLE {app_role};"
        ))
        .await
        .unwrap();
}

/// Holds the backfill between batches while `hold` is set (`VACUUM FULL` then runs),
/// and stops it after batch `stop_at` once.
struct HoldWhile {
    hold: Arc<AtomicBool>,
    batches: AtomicU64,
    stop_at: u64,
}
impl ratchet_engine::backfill::Throttle for HoldWhile {
    fn after_batch(
        &self,
        _: &ratchet_engine::backfill::BatchStats,
    ) -> ratchet_engine::backfill::Decision {
        if self.hold.load(Ordering::SeqCst) {
            return ratchet_engine::backfill::Decision::Pause(Duration::from_millis(20));
        }
        if self.batches.fetch_add(1, Ordering::SeqCst) + 1 == self.stop_at {
            return ratchet_engine::backfill::Decision::Stop("stopped by the test".into());
        }
        ratchet_engine::backfill::Decision::Continue
    }
}

/// A rewrite of the table moves its rows to other pages: a walk over pages that went on
/// from its cursor would miss the rows moved below it. Rewritten while ratchet was away
/// (then resumed) and while a worker waits between batches, the backfill walks the new
/// file again and misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_rewritten_during_the_backfill_is_walked_again() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = items(&db, &files, 20_000).await;
    let c = db.client().await;
    e.config.backfill.initial = 500;
    e.config.backfill.max = 500;
    let hold = Arc::new(AtomicBool::new(false));
    e.set_throttle(Arc::new(HoldWhile {
        hold: hold.clone(),
        batches: AtomicU64::new(0),
        stop_at: 3,
    }));
    let m = files.migration("02_type.yaml", TYPE_CHANGE);
    let err = e.start(&m).await.unwrap_err();
    assert!(err.to_string().contains("stopped by the test"), "{err}");
    let filenode = || async {
        c.query_one("SELECT pg_relation_filenode('public.items')", &[])
            .await
            .unwrap()
            .get::<_, u32>(0)
    };
    let before = filenode().await;
    // Rewritten while no ratchet runs: the filled rows' new versions, at the end of the
    // file, come last; the rows still to fill move down below the cursor.
    c.batch_execute("VACUUM FULL public.items").await.unwrap();
    assert_ne!(filenode().await, before);
    // Resumed, and rewritten again while the backfill is held after its first batch.
    let done_so_far = e.backfill_progress().await.unwrap()[0].rows_done;
    hold.store(true, Ordering::SeqCst);
    let rewrite = async {
        let other = db.client().await;
        loop {
            let done: i64 = other
                .query_one("SELECT rows_done FROM ratchet.backfills", &[])
                .await
                .unwrap()
                .get(0);
            if done > done_so_far {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        other
            .batch_execute("VACUUM FULL public.items")
            .await
            .unwrap();
        hold.store(false, Ordering::SeqCst);
    };
    let (resumed, ()) = tokio::join!(e.backfill(), rewrite);
    resumed.unwrap();
    let missed: i64 = c
        .query_one(
            "SELECT count(*) FROM public.items WHERE _ratchet_new_amount IS DISTINCT FROM amount::bigint",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(missed, 0);
    let v = e.validate(false).await.unwrap().unwrap();
    assert!(v.passed, "{v:?}");
    common::complete(&mut e).await.unwrap();
}

/// A migration planned by a ratchet from before page walks (its plan has no `pages`,
/// its bound is the greatest key) goes on walking key ranges, with several workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_from_before_page_walks_goes_on_by_key() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = items(&db, &files, 5000).await;
    let c = db.client().await;
    c.batch_execute(&count_writes_sql("items", "_ratchet_new_amount"))
        .await
        .unwrap();
    e.config.run_backfill = false;
    let m = files.migration("02_type.yaml", TYPE_CHANGE);
    e.start(&m).await.unwrap();
    c.batch_execute(
        "UPDATE ratchet.migrations SET plan = replace(plan::text, '\"pages\": true', '\"pages\": false')::jsonb;
         UPDATE ratchet.backfills SET upper_bound = (SELECT to_jsonb(ARRAY[max(id)::text]) FROM public.items);",
    )
    .await
    .unwrap();
    let plan: String = c
        .query_one(
            "SELECT plan::text FROM ratchet.migrations WHERE name = '02_type'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(plan.contains("\"pages\": false"), "{plan}");
    e.config.run_backfill = true;
    e.config.backfill.workers = 3;
    e.config.backfill.initial = 100;
    e.config.backfill.max = 300;
    e.backfill().await.unwrap();
    // Cut by key into three slices; each row written once.
    let cursors: Vec<String> = c
        .query(
            "SELECT upper_bound ->> 0 FROM ratchet.backfill_slices ORDER BY slice",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(cursors.len(), 3, "{cursors:?}");
    assert_eq!(
        cursors.last().map(String::as_str),
        Some("5000"),
        "{cursors:?}"
    );
    let r = c.query_one(WRITES_PER_ROW, &[]).await.unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (5000, 1));
    assert!(e.validate(false).await.unwrap().unwrap().passed);
    common::complete(&mut e).await.unwrap();
}
