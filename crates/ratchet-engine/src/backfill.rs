//! Backfill and validation: fill new physical columns for the rows that existed when the
//! migration started, then check every row.
//!
//! - Keyset batches over the primary key (composite keys too); tables without one are
//!   walked in `ctid` page ranges. Only rows up to the bound captured at start (in the
//!   same transaction that created the dual-write triggers) are visited: later rows are
//!   the triggers' job, so the backfill ends even under a constant insert load.
//! - Each batch updates only rows whose new column is still NULL, and stores the cursor
//!   in the same transaction: after a crash it resumes without redoing finished batches.
//! - The batch size adapts to a target duration: it grows slowly and shrinks at once.
//! - With several workers the remaining range is cut into slices of about the same number
//!   of rows; each worker (its own session) walks one slice at a time, each slice with its
//!   own cursor.
//! - Between batches the [`Throttle`] hook decides to go on, pause or stop; monitors plug
//!   in there.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Serialize;
use serde_json::json;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient};

use crate::config::Config;
use crate::error::{db_message, is_retryable, EngineError};
use crate::plan::{Lock, Statement, ROW_EXCLUSIVE};
use crate::report::{Event, Reporter};
use crate::sql::{ident, literal, qualified};
use crate::state::MigrationRow;
use crate::state::State;

pub use crate::config::BackfillConfig;
pub use crate::plan::BackfillSpec;

/// What a backfill and a validation need from the engine: its session (the first
/// worker's), where to open more, the settings, the state store, and the hooks. Taken
/// instead of the whole `Engine` so that this module does not depend on the executor.
pub(crate) struct Ctx<'a> {
    pub client: &'a mut Client,
    pub url: &'a str,
    pub config: &'a Config,
    pub state: &'a State,
    pub reporter: Arc<dyn Reporter>,
    pub throttle: Arc<dyn Throttle>,
}

impl Ctx<'_> {
    fn report(&self, e: Event) {
        self.reporter.report(&e);
    }

    /// Another session for a backfill worker, set up like the engine's own.
    async fn worker_session(&self) -> Result<Client, EngineError> {
        let client = crate::session::open(self.url).await?;
        crate::session::setup_session(&client, self.config).await?;
        Ok(client)
    }
}

/// Figures of one finished batch, handed to the [`Throttle`] hook.
#[derive(Debug, Clone)]
pub struct BatchStats {
    pub table: String,
    pub rows: u64,
    pub rows_done: u64,
    pub rows_total: Option<u64>,
    pub batch_size: i64,
    pub duration: Duration,
}

/// What to do after a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Continue,
    /// Wait this long, then ask again.
    Pause(Duration),
    /// Stop the backfill cleanly (it can be resumed with `ratchet backfill`).
    Stop(String),
}

/// The hook between backfill batches (monitoring and throttling decide here).
pub trait Throttle: Send + Sync {
    fn after_batch(&self, stats: &BatchStats) -> Decision;
}

/// Never slows down.
pub struct NoThrottle;
impl Throttle for NoThrottle {
    fn after_batch(&self, _: &BatchStats) -> Decision {
        Decision::Continue
    }
}

impl BackfillSpec {
    fn t(&self) -> String {
        qualified(&self.schema, &self.table)
    }

    fn new_col(&self) -> String {
        ident(self.pair.new.as_deref().unwrap_or_default())
    }

    fn keys(&self, prefix: &str) -> String {
        self.key
            .iter()
            .map(|(k, _)| format!("{prefix}{}", ident(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn keys_text(&self, prefix: &str) -> String {
        self.key
            .iter()
            .map(|(k, _)| format!("{prefix}{}::text", ident(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn keys_desc(&self, prefix: &str) -> String {
        self.key
            .iter()
            .map(|(k, _)| format!("{prefix}{} DESC", ident(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `($1::text::type, $2::text::type)` starting at parameter `first`.
    fn key_params(&self, first: usize) -> String {
        let p = self
            .key
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| format!("${}::text::{ty}", first + i))
            .collect::<Vec<_>>()
            .join(", ");
        format!("({p})")
    }

    fn up(&self, prefix: &str) -> Result<String, EngineError> {
        self.pair
            .up_sql(prefix)
            .map_err(|e| EngineError::Sql {
                context: "rewriting `up`".into(),
                message: e,
            })?
            .ok_or_else(|| EngineError::State("a backfill without `up`".into()))
    }

    /// The statement, run in the same transaction as the triggers' creation, that records
    /// which rows existed at start.
    pub fn capture_sql(&self, state_schema: &str, step: usize) -> Statement {
        let bound = if self.key.is_empty() {
            format!(
                "to_jsonb(ARRAY[(pg_relation_size({lit}::regclass) / current_setting('block_size')::int + 1)::text])",
                lit = literal(&self.t())
            )
        } else {
            format!(
                "(SELECT to_jsonb(ARRAY[{}]) FROM {} ORDER BY {} LIMIT 1)",
                self.keys_text(""),
                self.t(),
                self.keys_desc("")
            )
        };
        Statement::new(
            format!(
                "INSERT INTO {}.backfills (migration_id, step, upper_bound, rows_total)
SELECT current_setting('ratchet.migration_id')::bigint, {step}, {bound},
       (SELECT CASE WHEN reltuples > 0 THEN reltuples::bigint END
          FROM pg_class WHERE oid = {}::regclass)
ON CONFLICT DO NOTHING",
                ident(state_schema),
                literal(&self.t())
            ),
            vec![],
        )
    }

    /// What `ratchet plan` shows: one representative batch.
    pub fn preview(&self) -> Vec<Statement> {
        let up = self.up("r.").unwrap_or_else(|e| format!("/* {e} */"));
        let range = if self.key.is_empty() {
            "r.ctid >= '(<from page>,0)' AND r.ctid < '(<to page>,0)'".to_string()
        } else {
            format!(
                "({k}) > (<cursor>) AND ({k}) <= (<bound captured at start>)",
                k = self.keys("r.")
            )
        };
        vec![Statement::new(
            format!(
                "UPDATE {} AS r SET {} = {up} WHERE {range} AND r.{} IS NULL  -- in batches, resumable",
                self.t(),
                self.new_col(),
                self.new_col()
            ),
            vec![Lock::new(ROW_EXCLUSIVE, format!("{}.{}", self.schema, self.table))],
        )]
    }

    /// The keys up to the bound (`$1…`) and, when `has_cursor`, after the cursor (the
    /// parameters after the bound's): the parameters [`range_params`] lists.
    fn range_cond(&self, prefix: &str, has_cursor: bool) -> String {
        let keys = self.keys(prefix);
        let mut cond = format!("({keys}) <= {}", self.key_params(1));
        if has_cursor {
            cond += &format!(" AND ({keys}) > {}", self.key_params(self.key.len() + 1));
        }
        cond
    }

    /// The end key of the next batch: the `limit`-th key after the cursor (an index-only
    /// scan), or nothing when fewer rows are left before the bound.
    /// Parameters: bound keys, then cursor keys (when `has_cursor`), then the limit.
    fn batch_end_sql(&self, has_cursor: bool) -> String {
        let n = self.key.len();
        let limit = if has_cursor { 2 * n + 1 } else { n + 1 };
        // The text array is built above the OFFSET: built in the scan, it would be computed
        // for every skipped key too (about half the query's time).
        format!(
            "SELECT ARRAY[{kt}] FROM (SELECT {keys} FROM {t} WHERE {cond} ORDER BY {keys} \
             OFFSET ${limit}::bigint - 1 LIMIT 1) AS e",
            kt = self.keys_text("e."),
            t = self.t(),
            cond = self.range_cond("", has_cursor),
            keys = self.keys(""),
        )
    }

    /// One keyset batch: a range UPDATE between the cursor and the batch's end key, of
    /// the rows not filled yet. Parameters: end keys, then cursor keys (when `has_cursor`).
    fn keyed_batch_sql(&self, has_cursor: bool) -> Result<String, EngineError> {
        Ok(format!(
            "UPDATE {t} AS r SET {new} = {up} WHERE {cond} AND r.{new} IS NULL",
            t = self.t(),
            new = self.new_col(),
            up = self.up("r.")?,
            cond = self.range_cond("r.", has_cursor),
        ))
    }

    fn ctid_batch_sql(&self) -> Result<String, EngineError> {
        Ok(format!(
            "WITH u AS (UPDATE {t} AS r SET {new} = {up}
   WHERE r.ctid >= format('(%s,0)', $1::bigint)::tid AND r.ctid < format('(%s,0)', $2::bigint)::tid
     AND r.{new} IS NULL RETURNING 1)
SELECT count(*) FROM u",
            t = self.t(),
            new = self.new_col(),
            up = self.up("r.")?,
        ))
    }
}

/// A stored backfill's progress.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub step: i32,
    pub table: String,
    pub rows_done: i64,
    pub rows_total: Option<i64>,
    pub batch_size: Option<i32>,
    pub done: bool,
    /// Slices of the key range (one per worker), and how many of them are finished.
    pub slices: i64,
    pub slices_done: i64,
}

struct Row {
    /// The single cursor kept by ratchet before backfills were cut into slices.
    cursor: Option<Vec<String>>,
    bound: Option<Vec<String>>,
    rows_done: i64,
    rows_total: Option<i64>,
    batch: Option<i32>,
    done: bool,
}

fn keys_of(v: Option<serde_json::Value>) -> Option<Vec<String>> {
    v.and_then(|v| serde_json::from_value(v).ok())
}

/// The parameters of [`BackfillSpec::range_cond`]: the bound's keys, then the cursor's.
fn range_params<'a>(
    bound: &'a [String],
    cursor: Option<&'a Vec<String>>,
) -> Vec<&'a (dyn ToSql + Sync)> {
    bound
        .iter()
        .chain(cursor.into_iter().flatten())
        .map(|v| v as &(dyn ToSql + Sync))
        .collect()
}

/// The page number a cursor or bound of a table without a key holds (0: the start).
fn page(v: Option<&Vec<String>>) -> i64 {
    v.and_then(|c| c.first())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

async fn load_row(cx: &Ctx<'_>, m: &MigrationRow, step: usize) -> Result<Option<Row>, EngineError> {
    let s = ident(&cx.config.state_schema);
    let row = cx
        .client
        .query_opt(
            &format!(
                "SELECT cursor, upper_bound, rows_done, rows_total, batch_size, done
                   FROM {s}.backfills WHERE migration_id = $1 AND step = $2"
            ),
            &[&m.id, &(step as i32)],
        )
        .await
        .map_err(|e| EngineError::db("reading the backfill cursor", e))?;
    Ok(row.map(|r| Row {
        cursor: keys_of(r.get(0)),
        bound: keys_of(r.get(1)),
        rows_done: r.get(2),
        rows_total: r.get(3),
        batch: r.get(4),
        done: r.get(5),
    }))
}

/// A part of a backfill's range, walked by one worker at a time: the keys after `cursor`
/// (from the first key when `None`) up to and including `upper`; for a table without a
/// key, the pages from `cursor` up to, not including, `upper`.
#[derive(Debug, Clone)]
struct Slice {
    id: i32,
    cursor: Option<Vec<String>>,
    upper: Vec<String>,
    batch: Option<i32>,
    done: bool,
}

async fn load_slices(
    client: &Client,
    s: &str,
    m: &MigrationRow,
    step: usize,
) -> Result<Vec<Slice>, EngineError> {
    let rows = client
        .query(
            &format!(
                "SELECT slice, cursor, upper_bound, batch_size, done FROM {s}.backfill_slices
                  WHERE migration_id = $1 AND step = $2 ORDER BY slice"
            ),
            &[&m.id, &(step as i32)],
        )
        .await
        .map_err(|e| EngineError::db("reading the backfill slices", e))?;
    Ok(rows
        .iter()
        .map(|r| Slice {
            id: r.get(0),
            cursor: keys_of(r.get(1)),
            upper: keys_of(r.get(2)).unwrap_or_default(),
            batch: r.get(3),
            done: r.get(4),
        })
        .collect())
}

async fn insert_slice(
    client: &impl GenericClient,
    s: &str,
    m: &MigrationRow,
    step: usize,
    slice: &Slice,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            &format!(
                "INSERT INTO {s}.backfill_slices
                   (migration_id, step, slice, cursor, upper_bound, batch_size)
                 VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            &[
                &m.id,
                &(step as i32),
                &slice.id,
                &slice.cursor.as_ref().map(|c| json!(c)),
                &json!(slice.upper),
                &slice.batch,
            ],
        )
        .await
}

/// Slices smaller than this are not cut further: a worker would spend more on starting
/// than on updating.
const MIN_SLICE_ROWS: i64 = 1000;

/// The unfinished slices of a backfill, cut so that `workers` workers each have one where
/// the rows allow it. The first run makes one slice of the whole range; a resumed run
/// with more workers than unfinished slices cuts them again. Runs before any worker
/// starts, under the migration lock.
async fn prepare_slices(
    cx: &mut Ctx<'_>,
    m: &MigrationRow,
    step: usize,
    spec: &BackfillSpec,
    row: &Row,
    bound: &[String],
) -> Result<Vec<Slice>, EngineError> {
    let s = ident(&cx.config.state_schema);
    let workers = cx.config.backfill.workers.max(1);
    let mut all = load_slices(&*cx.client, &s, m, step).await?;
    if all.is_empty() {
        // A cursor in `backfills` was left by a ratchet from before slices: go on from it.
        let whole = Slice {
            id: 0,
            cursor: row.cursor.clone(),
            upper: bound.to_vec(),
            batch: row.batch,
            done: false,
        };
        insert_slice(&*cx.client, &s, m, step, &whole)
            .await
            .map_err(|e| EngineError::db("recording the backfill's range", e))?;
        all = vec![whole];
    }
    let open: Vec<Slice> = all.iter().filter(|x| !x.done).cloned().collect();
    let parts = workers.div_ceil(open.len().max(1));
    if parts < 2 {
        return Ok(open);
    }
    // Counting and walking the key index takes a while on a big table: say so first.
    cx.report(Event::Info(format!(
        "cutting the rest of the backfill of {} into slices for {workers} workers",
        spec.table
    )));
    let mut next_id = all.iter().map(|x| x.id).max().unwrap_or(0) + 1;
    let mut out = Vec::new();
    for slice in open {
        let points = split_points(&*cx.client, spec, &slice, parts).await?;
        let Some(first) = points.first() else {
            out.push(slice);
            continue;
        };
        let tx = cx
            .client
            .transaction()
            .await
            .map_err(|e| EngineError::db("cutting the backfill into slices", e))?;
        let store = |e| EngineError::db("cutting the backfill into slices", e);
        tx.execute(
            &format!(
                "UPDATE {s}.backfill_slices SET upper_bound = $4
                  WHERE migration_id = $1 AND step = $2 AND slice = $3"
            ),
            &[&m.id, &(step as i32), &slice.id, &json!(first)],
        )
        .await
        .map_err(store)?;
        let mut cursor = first.clone();
        for upper in points[1..].iter().chain([&slice.upper]) {
            let part = Slice {
                id: next_id,
                cursor: Some(cursor),
                upper: upper.clone(),
                batch: slice.batch,
                done: false,
            };
            insert_slice(&tx, &s, m, step, &part).await.map_err(store)?;
            out.push(part);
            cursor = upper.clone();
            next_id += 1;
        }
        tx.commit().await.map_err(store)?;
        out.push(Slice {
            upper: first.clone(),
            ..slice
        });
    }
    out.sort_by_key(|x| x.id);
    cx.report(Event::Info(format!(
        "backfill of {}: {} slices to walk",
        spec.table,
        out.len()
    )));
    Ok(out)
}

/// Where to cut `slice` into `parts` slices of about the same number of rows (pages for
/// a table without a key): the inner boundaries, none when it is too small to cut.
async fn split_points(
    client: &Client,
    spec: &BackfillSpec,
    slice: &Slice,
    parts: usize,
) -> Result<Vec<Vec<String>>, EngineError> {
    let parts = parts as i64;
    if spec.key.is_empty() {
        let (from, to) = (page(slice.cursor.as_ref()), page(Some(&slice.upper)));
        let each = (to - from) / parts;
        if each < 1 {
            return Ok(vec![]);
        }
        return Ok((1..parts)
            .map(|i| vec![(from + each * i).to_string()])
            .collect());
    }
    let rows: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE {}",
                spec.t(),
                spec.range_cond("", slice.cursor.is_some())
            ),
            &range_params(&slice.upper, slice.cursor.as_ref()),
        )
        .await
        .map_err(|e| EngineError::db("counting the rows to backfill", e))?
        .get(0);
    let parts = parts.min(rows / MIN_SLICE_ROWS);
    if parts < 2 {
        return Ok(vec![]);
    }
    let each = rows / parts;
    let mut points: Vec<Vec<String>> = Vec::new();
    for _ in 1..parts {
        let cursor = points.last().or(slice.cursor.as_ref());
        let mut params = range_params(&slice.upper, cursor);
        params.push(&each);
        let point: Option<Vec<String>> = client
            .query_opt(&spec.batch_end_sql(cursor.is_some()), &params)
            .await
            .map_err(|e| EngineError::db("cutting the backfill into slices", e))?
            .map(|r| r.get(0));
        match point {
            Some(p) if p != slice.upper => points.push(p),
            _ => break,
        }
    }
    Ok(points)
}

fn next_batch_size(current: i64, took: Duration, cfg: &BackfillConfig) -> i64 {
    let target = cfg.target.as_secs_f64();
    let took = took.as_secs_f64().max(0.0001);
    let next = if took > target {
        // Too slow: shrink at once, in proportion.
        (current as f64 * target / took * 0.9) as i64
    } else if took < target * 0.25 {
        // Far below the target (the first batches): double.
        current * 2
    } else if took < target * 0.7 {
        // Comfortably fast: grow slowly.
        (current as f64 * 1.25).ceil() as i64
    } else {
        current
    };
    next.clamp(cfg.min, cfg.max)
}

/// What the workers of one backfill share.
struct Shared<'a> {
    m: &'a MigrationRow,
    step: usize,
    spec: &'a BackfillSpec,
    /// The state schema, quoted.
    s: String,
    cfg: BackfillConfig,
    lock_timeout: Duration,
    /// The retry budget of a batch (attempts and backoff), as for steps.
    retry: crate::config::Config,
    state: crate::state::State,
    reporter: Arc<dyn Reporter>,
    throttle: Arc<dyn Throttle>,
    /// Whether the batches may switch ordinary triggers off (`session_replication_role`).
    replica: bool,
    /// Slices no worker has taken yet.
    queue: Mutex<VecDeque<Slice>>,
    rows_done: AtomicI64,
    rows_total: Option<i64>,
    /// Set when a worker fails or is told to stop: the others stop after their batch.
    stop: AtomicBool,
    started: Instant,
    done_at_start: i64,
}

impl Shared<'_> {
    fn take(&self) -> Option<Slice> {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    fn halt(&self, e: EngineError) -> Result<(), EngineError> {
        self.stop.store(true, Ordering::SeqCst);
        Err(e)
    }
}

/// Run (or resume) the backfill step `step` of `m`: its slices are shared among
/// `workers` sessions (the engine's own and `workers - 1` more), each walking one slice
/// at a time in batches.
pub(crate) async fn run(
    cx: &mut Ctx<'_>,
    m: &MigrationRow,
    step: usize,
    spec: &BackfillSpec,
) -> Result<(), EngineError> {
    let Some(row) = load_row(cx, m, step).await? else {
        return Err(EngineError::State(format!(
            "the backfill of {} has no captured bound; run `ratchet abort` and start again",
            spec.table
        )));
    };
    if row.done {
        return Ok(());
    }
    let Some(bound) = row.bound.clone() else {
        // The table was empty at start: nothing to do.
        return finish(cx, m, step).await;
    };
    let slices = prepare_slices(cx, m, step, spec, &row, &bound).await?;
    let workers = cx.config.backfill.workers.clamp(1, slices.len().max(1));
    let mut sessions = Vec::new();
    for _ in 1..workers {
        sessions.push(cx.worker_session().await?);
    }
    let shared = Shared {
        m,
        step,
        spec,
        s: ident(&cx.config.state_schema),
        cfg: cx.config.backfill.clone(),
        lock_timeout: cx.config.lock_timeout,
        retry: cx.config.clone(),
        state: cx.state.clone(),
        reporter: cx.reporter.clone(),
        throttle: cx.throttle.clone(),
        replica: may_skip_triggers(cx, spec).await,
        queue: Mutex::new(slices.into()),
        rows_done: AtomicI64::new(row.rows_done),
        rows_total: row.rows_total,
        stop: AtomicBool::new(false),
        started: Instant::now(),
        done_at_start: row.rows_done,
    };
    let mut clients: Vec<&mut Client> = vec![&mut *cx.client];
    clients.extend(sessions.iter_mut());
    let results = join_all(clients.into_iter().map(|c| worker(c, &shared))).await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    finish(cx, m, step).await
}

/// One worker: takes slices until none is left, and walks each in adaptive batches.
async fn worker(client: &mut Client, sh: &Shared<'_>) -> Result<(), EngineError> {
    let report = |e: Event| sh.reporter.report(&e);
    while let Some(mut slice) = sh.take() {
        let mut batch = slice
            .batch
            .map(i64::from)
            .unwrap_or(sh.cfg.initial)
            .clamp(sh.cfg.min, sh.cfg.max);
        // Consecutive lock timeouts / deadlocks of this worker's batches: bounded like a
        // step's (`--max-attempts`, jittered exponential backoff, an event row each).
        let mut attempt = 1;
        loop {
            if sh.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let t0 = Instant::now();
            let (updated, finished, cursor) = match one_batch(client, sh, &slice, batch).await {
                Ok(v) => {
                    attempt = 1;
                    v
                }
                Err(e) => {
                    if let EngineError::Database { source, .. } = &e {
                        if is_retryable(source) {
                            let code = crate::error::sqlstate(source);
                            let message = db_message(source);
                            let blockers = crate::session::write_blockers_of(
                                client,
                                &qualified(&sh.spec.schema, &sh.spec.table),
                            )
                            .await;
                            let by = crate::session::blocked_by(&blockers);
                            if attempt >= sh.retry.max_attempts {
                                return sh.halt(EngineError::RetriesExhausted {
                                    attempts: attempt,
                                    message: format!(
                                        "backfill batch of {}: [{code}] {message}",
                                        sh.spec.table
                                    ),
                                    blockers: by,
                                });
                            }
                            let wait = crate::session::backoff(&sh.retry, attempt);
                            report(Event::Info(format!(
                                "backfill batch of {} hit {message}{by}; retry {} in {} ms",
                                sh.spec.table,
                                attempt + 1,
                                wait.as_millis()
                            )));
                            sh.state
                                .event(
                                    &*client,
                                    Some(&sh.m.name),
                                    "retry",
                                    json!({"step": sh.step, "backfill": sh.spec.table,
                                        "attempt": attempt, "sqlstate": code, "message": message,
                                        "blockers": blockers,
                                        "wait_ms": wait.as_millis() as u64}),
                                )
                                .await?;
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            continue;
                        }
                        let named = name_failing_row(client, sh.spec, &slice, batch, source);
                        return sh.halt(named.await);
                    }
                    return sh.halt(e);
                }
            };
            let took = t0.elapsed();
            slice.cursor = cursor;
            let rows_done = sh.rows_done.fetch_add(updated, Ordering::SeqCst) + updated;
            let rate = (rows_done - sh.done_at_start) as f64
                / sh.started.elapsed().as_secs_f64().max(0.001);
            report(Event::Backfill {
                table: sh.spec.table.clone(),
                rows_done: rows_done as u64,
                rows_total: sh.rows_total.map(|t| t as u64),
                rows_per_second: rate,
                batch_size: batch,
            });
            if finished {
                break;
            }
            let stats = BatchStats {
                table: sh.spec.table.clone(),
                rows: updated as u64,
                rows_done: rows_done as u64,
                rows_total: sh.rows_total.map(|t| t as u64),
                batch_size: batch,
                duration: took,
            };
            batch = next_batch_size(batch, took, &sh.cfg);
            loop {
                match sh.throttle.after_batch(&stats) {
                    Decision::Continue => break,
                    Decision::Pause(d) => tokio::time::sleep(d).await,
                    Decision::Stop(why) => {
                        return sh.halt(EngineError::Refused(format!(
                            "backfill of {} stopped: {why}; resume with `ratchet backfill`",
                            sh.spec.table
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether this role may set `session_replication_role` (superusers, or a role granted
/// `SET` on it, PostgreSQL 15+). Without it the backfill still works, through the
/// triggers' `WHEN` clause, only slower.
///
/// Not while another dual write on the table is active: its trigger must fill its own
/// new column in the rows this backfill writes (replica mode would silence it, and that
/// column's NOT NULL check would then reject the batch).
async fn may_skip_triggers(cx: &Ctx<'_>, spec: &BackfillSpec) -> bool {
    let sql = "SELECT (current_setting('is_superuser') = 'on'
                  OR (current_setting('server_version_num')::int >= 150000
                      AND has_parameter_privilege('session_replication_role', 'SET')))
               AND NOT EXISTS (SELECT 1 FROM pg_trigger
                                WHERE tgrelid = $1::text::regclass AND NOT tgisinternal
                                  AND tgname LIKE '\\_ratchet\\_dw\\_%' AND tgname NOT LIKE $2 || '%')";
    let own = spec.pair.name.replace('_', "\\_");
    match cx.client.query_one(sql, &[&spec.t(), &own]).await {
        Ok(r) => r.get(0),
        Err(_) => false,
    }
}

async fn finish(cx: &Ctx<'_>, m: &MigrationRow, step: usize) -> Result<(), EngineError> {
    let s = ident(&cx.config.state_schema);
    cx.client
        .execute(
            &format!(
                "UPDATE {s}.backfills SET done = true, updated_at = clock_timestamp()
                  WHERE migration_id = $1 AND step = $2"
            ),
            &[&m.id, &(step as i32)],
        )
        .await
        .map_err(|e| EngineError::db("recording the end of the backfill", e))?;
    Ok(())
}

/// One batch of `slice` and its cursor, in one transaction. Returns (rows updated,
/// slice finished, cursor).
async fn one_batch(
    client: &mut Client,
    sh: &Shared<'_>,
    slice: &Slice,
    batch: i64,
) -> Result<(i64, bool, Option<Vec<String>>), EngineError> {
    let spec = sh.spec;
    let lock_ms = sh.lock_timeout.as_millis();
    // Any BEFORE UPDATE row trigger makes PostgreSQL lock (and WAL-log the lock of) every
    // row before the update, even when its WHEN clause then skips it. In replica mode the
    // ordinary triggers do not fire at all: the dual-write triggers have nothing to do for
    // the backfill's own writes, and constraints are validated before complete anyway.
    let replica_sql = if sh.replica {
        "SET LOCAL session_replication_role = replica; "
    } else {
        ""
    };
    let tx = client
        .transaction()
        .await
        .map_err(|e| EngineError::db("beginning a backfill batch", e))?;
    tx.batch_execute(&format!(
        "{replica_sql}SET LOCAL ratchet.backfill = {}; SET LOCAL lock_timeout = '{lock_ms}ms'",
        literal(&spec.pair.name)
    ))
    .await
    .map_err(|e| EngineError::db("preparing a backfill batch", e))?;
    let bound = &slice.upper;
    let (updated, finished, cursor) = if spec.key.is_empty() {
        let (from, last) = (page(slice.cursor.as_ref()), page(Some(bound)));
        let to = (from + batch).min(last);
        let r = tx
            .query_one(&spec.ctid_batch_sql()?, &[&from, &to])
            .await
            .map_err(|e| EngineError::db("running a backfill batch", e))?;
        (r.get::<_, i64>(0), to >= last, Some(vec![to.to_string()]))
    } else {
        let mut params = range_params(bound, slice.cursor.as_ref());
        params.push(&batch);
        let end: Option<Vec<String>> = tx
            .query_opt(&spec.batch_end_sql(slice.cursor.is_some()), &params)
            .await
            .map_err(|e| EngineError::db("finding the end of a backfill batch", e))?
            .map(|r| r.get(0));
        let finished = end.is_none();
        let end = end.unwrap_or_else(|| bound.to_vec());
        let updated = tx
            .execute(
                &spec.keyed_batch_sql(slice.cursor.is_some())?,
                &range_params(&end, slice.cursor.as_ref()),
            )
            .await
            .map_err(|e| EngineError::db("running a backfill batch", e))?;
        (updated as i64, finished, Some(end))
    };
    // The slice's cursor, and the backfill's totals that `ratchet status` shows.
    tx.execute(
        &format!(
            "WITH slice AS (
               UPDATE {s}.backfill_slices SET cursor = $4, rows_done = rows_done + $5,
                      batch_size = $6, done = $7, updated_at = clock_timestamp()
                WHERE migration_id = $1 AND step = $2 AND slice = $3)
             UPDATE {s}.backfills SET rows_done = rows_done + $5, batch_size = $6,
                    updated_at = clock_timestamp()
              WHERE migration_id = $1 AND step = $2",
            s = sh.s
        ),
        &[
            &sh.m.id,
            &(sh.step as i32),
            &slice.id,
            &cursor.as_ref().map(|c| json!(c)),
            &updated,
            &(batch as i32),
            &finished,
        ],
    )
    .await
    .map_err(|e| EngineError::db("storing the backfill cursor", e))?;
    crate::session::fault_point("backfill", sh.step, "before-commit");
    tx.commit()
        .await
        .map_err(|e| EngineError::db("committing a backfill batch", e))?;
    Ok((updated, finished, cursor))
}

/// After a batch failed on the data (`up` raised for some row), find the row and say so.
async fn name_failing_row(
    client: &Client,
    spec: &BackfillSpec,
    slice: &Slice,
    batch: i64,
    source: &tokio_postgres::Error,
) -> EngineError {
    let message = db_message(source);
    let generic = EngineError::Sql {
        context: format!(
            "backfill of {}.{} failed; the batch was rolled back, earlier batches are kept",
            spec.table,
            spec.pair.new.as_deref().unwrap_or_default()
        ),
        message: message.clone(),
    };
    if spec.key.is_empty() {
        return generic;
    }
    let Ok(up) = spec.up("r.") else {
        return generic;
    };
    let sql = format!(
        "SELECT ARRAY[{}] FROM {} WHERE {} ORDER BY {} LIMIT {batch}",
        spec.keys_text(""),
        spec.t(),
        spec.range_cond("", slice.cursor.is_some()),
        spec.keys("")
    );
    let params = range_params(&slice.upper, slice.cursor.as_ref());
    let Ok(keys) = client.query(&sql, &params).await else {
        return generic;
    };
    let probe = format!(
        "SELECT {up} FROM {} AS r WHERE ({}) = {}",
        spec.t(),
        spec.keys("r."),
        spec.key_params(1)
    );
    for k in keys {
        let key: Vec<String> = k.get(0);
        let refs: Vec<&(dyn ToSql + Sync)> = key.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        if let Err(e) = client.query(&probe, &refs).await {
            let names: Vec<&str> = spec.key.iter().map(|(k, _)| k.as_str()).collect();
            // The column as the user wrote it, not ratchet's physical duplicate.
            let new = spec.pair.new.as_deref().unwrap_or_default();
            let column = spec
                .pair
                .new_names
                .iter()
                .find(|(_, p)| p == new)
                .map_or(new, |(l, _)| l.as_str());
            return EngineError::Refused(format!(
                "`up` of {}.{} fails for the row with ({})=({}): {}\n  nothing of its batch was \
                 written. If the row is wrong: fix it, then run the same command again (it \
                 resumes here). If `up` is wrong: run `ratchet abort`, fix `up` in the file, \
                 then run `ratchet start` again",
                spec.table,
                column,
                names.join(", "),
                key.join(", "),
                db_message(&e)
            ));
        }
    }
    generic
}

/// The result of `ratchet validate`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Validation {
    pub rows_checked: i64,
    pub mismatches: i64,
    pub repaired: i64,
    pub passed: bool,
    /// The first few mismatches: table, key, old value, new value.
    pub samples: Vec<serde_json::Value>,
    /// Checks that could not compare values (a volatile `up`), said plainly.
    pub notes: Vec<String>,
}

/// The per-row condition that the pair is consistent, over alias `r`, and a note when
/// the check is weaker than an equality.
fn consistency(
    spec: &BackfillSpec,
    volatile: &std::collections::BTreeSet<String>,
) -> Result<(String, Option<String>), EngineError> {
    let p = &spec.pair;
    let new = format!("r.{}", spec.new_col());
    let up = spec.up("r.")?;
    let what = format!("{}.{}", spec.table, p.new.as_deref().unwrap_or_default());
    let up_volatile =
        p.up.as_deref()
            .is_some_and(|u| crate::fragment::is_volatile(u, volatile));
    if up_volatile {
        return Ok((
            format!("{new} IS NOT NULL OR {up} IS NULL"),
            Some(format!(
                "`up` of {what} is volatile: rows were checked to be filled, not compared"
            )),
        ));
    }
    let down = match (&p.old, &p.down) {
        (Some(old), Some(d)) => {
            let resolves = crate::fragment::column_refs(d)
                .unwrap_or_default()
                .iter()
                .all(|(n, _, _)| p.new_names.iter().any(|(l, _)| l == n));
            let d_volatile = crate::fragment::is_volatile(d, volatile);
            match (resolves, d_volatile) {
                (true, false) => p
                    .down_sql("r.")
                    .map_err(|e| EngineError::Sql {
                        context: "rewriting `down`".into(),
                        message: e,
                    })?
                    .map(|d| format!("r.{} IS NOT DISTINCT FROM {d}", ident(old))),
                _ => None,
            }
        }
        _ => None,
    };
    match down {
        Some(d) => Ok((format!("{new} IS NOT DISTINCT FROM {up} OR {d}"), None)),
        // No way back (a new column, or an unusable `down`): rows written through the new
        // version may differ from `up` on purpose, so only completeness is checked.
        None => Ok((
            format!("{new} IS NOT NULL OR {up} IS NULL"),
            Some(format!(
                "{what} has no usable `down`: rows were checked to be filled, not compared"
            )),
        )),
    }
}

pub(crate) async fn validate_one(
    cx: &mut Ctx<'_>,
    spec: &BackfillSpec,
    repair: bool,
    out: &mut Validation,
) -> Result<(), EngineError> {
    let cat = crate::catalog::load(&*cx.client, &cx.config.schema).await?;
    let (ok, note) = consistency(spec, &cat.volatile_functions)?;
    if let Some(n) = note {
        out.notes.push(n);
    }
    let old = spec
        .pair
        .old
        .as_ref()
        .map(|o| format!("r.{}::text", ident(o)))
        .unwrap_or_else(|| "NULL::text".into());
    let key_text = if spec.key.is_empty() {
        "ARRAY[r.ctid::text]".to_string()
    } else {
        format!("ARRAY[{}]", spec.keys_text("r."))
    };
    let chunk: i64 = 10_000;
    let mut cursor: Option<Vec<String>> = None;
    loop {
        // Key-range chunks keep each read short; a table without a key is read at once.
        let (range, order, params): (String, String, Vec<String>) = if spec.key.is_empty() {
            ("true".into(), "r.ctid".into(), vec![])
        } else {
            let r = match &cursor {
                Some(_) => format!("({}) > {}", spec.keys("r."), spec.key_params(1)),
                None => "true".into(),
            };
            (r, spec.keys("r."), cursor.clone().unwrap_or_default())
        };
        let limit = if spec.key.is_empty() {
            String::new()
        } else {
            format!("LIMIT {chunk}")
        };
        // The chunk's last key, in the key's own order (text order may differ), is the
        // next cursor; the key columns are carried as `_k0, _k1, …` for that.
        let carried: Vec<String> = (0..spec.key.len()).map(|i| format!("_k{i}")).collect();
        let (carry, last) = if spec.key.is_empty() {
            (String::new(), "NULL::text[]".to_string())
        } else {
            let cols: Vec<String> = spec
                .key
                .iter()
                .zip(&carried)
                .map(|((k, _), c)| format!(", r.{} AS {c}", ident(k)))
                .collect();
            let text: Vec<String> = carried.iter().map(|c| format!("{c}::text")).collect();
            let desc: Vec<String> = carried.iter().map(|c| format!("{c} DESC")).collect();
            (
                cols.concat(),
                format!(
                    "(SELECT ARRAY[{}] FROM b ORDER BY {} LIMIT 1)",
                    text.join(", "),
                    desc.join(", ")
                ),
            )
        };
        let sql = format!(
            "WITH b AS (SELECT {key_text} AS k, ({ok}) AS ok, {old} AS o, r.{new}::text AS n{carry}
                          FROM {t} AS r WHERE {range} ORDER BY {order} {limit})
             SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM b WHERE NOT ok),
                    {last},
                    (SELECT coalesce(json_agg(json_build_array(k, o, n)), '[]') FROM (SELECT * FROM b WHERE NOT ok LIMIT 5) x),
                    (SELECT coalesce(json_agg(k), '[]') FROM b WHERE NOT ok)",
            new = spec.new_col(),
            t = spec.t(),
        );
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let r = cx
            .client
            .query_one(&sql, &refs)
            .await
            .map_err(|e| EngineError::db(format!("validating {}", spec.table), e))?;
        let checked: i64 = r.get(0);
        let bad: i64 = r.get(1);
        out.rows_checked += checked;
        out.mismatches += bad;
        if out.samples.len() < 5 {
            let samples: serde_json::Value = r.get(3);
            if let Some(arr) = samples.as_array() {
                for s in arr.iter().take(5 - out.samples.len()) {
                    out.samples
                        .push(json!({"table": spec.table, "key": s[0], "old": s[1], "new": s[2]}));
                }
            }
        }
        if repair && bad > 0 && !spec.key.is_empty() {
            let keys: Vec<Vec<String>> =
                serde_json::from_value(r.get::<_, serde_json::Value>(4)).unwrap_or_default();
            out.repaired += repair_rows(cx, spec, &keys).await?;
        }
        if spec.key.is_empty() || checked < chunk {
            break;
        }
        cursor = r.get(2);
    }
    Ok(())
}

async fn repair_rows(
    cx: &mut Ctx<'_>,
    spec: &BackfillSpec,
    keys: &[Vec<String>],
) -> Result<i64, EngineError> {
    let sql = format!(
        "UPDATE {t} AS r SET {new} = {up} WHERE ({k}) = {p}",
        t = spec.t(),
        new = spec.new_col(),
        up = spec.up("r.")?,
        k = spec.keys("r."),
        p = spec.key_params(1)
    );
    let tx = cx
        .client
        .transaction()
        .await
        .map_err(|e| EngineError::db("beginning a repair", e))?;
    tx.batch_execute(&format!(
        "SET LOCAL ratchet.backfill = {}",
        literal(&spec.pair.name)
    ))
    .await
    .map_err(|e| EngineError::db("preparing a repair", e))?;
    let mut n = 0;
    for key in keys {
        let refs: Vec<&(dyn ToSql + Sync)> = key.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        n += tx
            .execute(&sql, &refs)
            .await
            .map_err(|e| EngineError::db("repairing a row", e))? as i64;
    }
    tx.commit()
        .await
        .map_err(|e| EngineError::db("committing a repair", e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_shrinks_at_once_and_grows_slowly() {
        let cfg = BackfillConfig::default();
        assert!(next_batch_size(1000, Duration::from_millis(800), &cfg) < 300);
        assert_eq!(next_batch_size(1000, Duration::from_millis(40), &cfg), 2000);
        assert_eq!(
            next_batch_size(1000, Duration::from_millis(100), &cfg),
            1250
        );
        assert_eq!(
            next_batch_size(1000, Duration::from_millis(180), &cfg),
            1000
        );
        assert_eq!(next_batch_size(10, Duration::from_secs(5), &cfg), cfg.min);
    }
}
