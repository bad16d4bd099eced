//! The backfill workers: each takes slices and walks them in batches.

use crate::error::{db_message, EngineError, Refusal};
use crate::report::{Event, Reporter};
use crate::sql::{literal, qualified};
use crate::state::MigrationRow;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::*;

/// What the workers of one backfill share.
pub(crate) struct Shared<'a> {
    pub(crate) m: &'a MigrationRow,
    pub(crate) step: usize,
    pub(crate) spec: &'a BackfillSpec,
    pub(crate) cfg: BackfillConfig,
    pub(crate) lock_timeout: Duration,
    /// The retry budget of a batch (attempts and backoff), as for steps.
    pub(crate) retry: crate::retry::RetryPolicy,
    pub(crate) state: crate::state::State,
    pub(crate) reporter: Arc<dyn Reporter>,
    pub(crate) throttle: Arc<dyn Throttle>,
    /// Whether the batches may switch ordinary triggers off (`session_replication_role`).
    pub(crate) replica: bool,
    /// Slices no worker has taken yet.
    pub(crate) queue: Mutex<VecDeque<Slice>>,
    pub(crate) rows_done: AtomicI64,
    pub(crate) rows_total: Option<i64>,
    /// Set when a worker fails or is told to stop: the others stop after their batch.
    pub(crate) stop: AtomicBool,
    pub(crate) started: Instant,
    pub(crate) done_at_start: i64,
    /// The slice each worker walks now, by worker index, with its latest cursor.
    pub(crate) running: Mutex<BTreeMap<usize, Slice>>,
    /// New upper bounds of running slices (cut for a worker that joined), by slice.
    pub(crate) shrunk: Mutex<HashMap<i32, Vec<String>>>,
    /// The indexes of the workers alive.
    pub(crate) alive: Mutex<BTreeSet<usize>>,
    /// For a walk over pages: the live rows a page holds, about (batch sizes are rows).
    pub(crate) rows_per_page: f64,
    /// For a walk over pages: the table's file node when the bound was taken.
    pub(crate) filenode: Option<String>,
    /// Set when a batch found the table rewritten: the walk starts again over the new
    /// file (see [`BackfillSpec::bound_sql`]).
    pub(crate) rewritten: AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared<'_> {
    /// The lowest worker index under `wanted` that no live worker has.
    pub(crate) fn free_index(&self, wanted: usize) -> Option<usize> {
        let alive = lock(&self.alive);
        (0..wanted).find(|i| !alive.contains(i))
    }

    pub(crate) fn enlist(&self, index: usize) {
        lock(&self.alive).insert(index);
    }

    pub(crate) fn discharge(&self, index: usize) {
        lock(&self.alive).remove(&index);
        lock(&self.running).remove(&index);
    }

    /// The slices being walked now.
    pub(crate) fn running_slices(&self) -> Vec<Slice> {
        lock(&self.running).values().cloned().collect()
    }

    /// Tell the worker walking slice `id` that it now ends at `upper` (and the next cut,
    /// which reads the running slices, too: it must not reach past the new end).
    pub(crate) fn shrink(&self, id: i32, upper: Vec<String>) {
        for r in lock(&self.running).values_mut().filter(|r| r.id == id) {
            r.upper = upper.clone();
        }
        lock(&self.shrunk).insert(id, upper);
    }

    pub(crate) fn take(&self) -> Option<Slice> {
        lock(&self.queue).pop_front()
    }

    /// A slice its worker stopped walking (`ratchet set workers` lowered the count): the
    /// next worker that finishes its own slice goes on from its cursor.
    pub(crate) fn give_back(&self, slice: Slice) {
        lock(&self.queue).push_front(slice);
    }

    /// Whether worker `index` is above the workers an operator allows now.
    fn benched(&self, index: usize) -> bool {
        self.throttle
            .overrides()
            .workers
            .is_some_and(|n| index >= n)
    }

    /// Wait while worker `index` is benched; false when there is nothing left for it
    /// (no slice waits, or the backfill stops).
    async fn wait_turn(&self, index: usize) -> bool {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            if !self.benched(index) {
                return true;
            }
            if lock(&self.queue).is_empty() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) fn halt<T>(&self, e: EngineError) -> Result<T, EngineError> {
        self.stop.store(true, Ordering::SeqCst);
        Err(e)
    }
}

/// One worker (`index` 0 is the engine's own session): takes slices until none is left,
/// and walks each in adaptive batches.
pub(crate) async fn worker(
    client: &mut Client,
    sh: &Shared<'_>,
    index: usize,
) -> Result<(), EngineError> {
    let report = |e: Event| sh.reporter.report(&e);
    'slices: while sh.wait_turn(index).await {
        let Some(mut slice) = sh.take() else {
            break;
        };
        lock(&sh.running).insert(index, slice.clone());
        // The adaptive batch size (before overrides and the throttle's cap).
        let mut next = slice
            .batch
            .map(i64::from)
            .unwrap_or(sh.cfg.initial)
            .clamp(sh.cfg.min, sh.cfg.max);
        // Consecutive lock timeouts / deadlocks of this worker's batches: bounded like a
        // step's (`--max-attempts`, jittered exponential backoff, an event row each).
        let mut attempt = 1;
        // The throttle's cap on the batch size, while it slows the backfill down.
        let mut cap: Option<i64> = None;
        loop {
            if sh.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let overrides = sh.throttle.overrides();
            if let Some(upper) = lock(&sh.shrunk).remove(&slice.id) {
                slice.upper = upper;
            }
            if overrides.workers.is_some_and(|n| index >= n) {
                slice.batch = i32::try_from(next).ok();
                lock(&sh.running).remove(&index);
                sh.give_back(slice);
                continue 'slices;
            }
            let batch = overrides
                .batch_size
                .unwrap_or(next)
                .min(cap.unwrap_or(i64::MAX))
                .max(1);
            let t0 = Instant::now();
            let (updated, finished, cursor) = match one_batch(client, sh, &slice, batch).await {
                Ok(Some(v)) => {
                    attempt = 1;
                    v
                }
                Ok(None) => {
                    // The table was rewritten: every worker stops, the walk starts again.
                    sh.rewritten.store(true, Ordering::SeqCst);
                    sh.stop.store(true, Ordering::SeqCst);
                    return Ok(());
                }
                Err(e) => {
                    if crate::retry::transient(&e).is_none() {
                        // Not transient: name the row that fails, when a row does.
                        if let EngineError::Database { source, .. } = &e {
                            let size = (batch, sh.rows_per_page);
                            let named = name_failing_row(client, sh.spec, &slice, size, source);
                            return sh.halt(named.await);
                        }
                        return sh.halt(e);
                    }
                    let table = qualified(&sh.spec.schema, &sh.spec.table);
                    let blockers = crate::session::write_blockers_of(client, &table).await;
                    let description = format!("backfill batch of {}", sh.spec.table);
                    let retry =
                        match sh
                            .retry
                            .after_failure((&description, true), attempt, e, blockers)
                        {
                            Ok(r) => r,
                            Err(e) => return sh.halt(e),
                        };
                    let detail = json!({"step": sh.step, "backfill": sh.spec.table});
                    retry
                        .record_and_wait(
                            &*client,
                            &sh.state,
                            sh.reporter.as_ref(),
                            &sh.m.name,
                            detail,
                        )
                        .await?;
                    attempt += 1;
                    continue;
                }
            };
            let took = t0.elapsed();
            slice.cursor = cursor;
            if let Some(r) = lock(&sh.running).get_mut(&index) {
                r.cursor = slice.cursor.clone();
            }
            let rows_done = sh.rows_done.fetch_add(updated, Ordering::SeqCst) + updated;
            let rate = (rows_done - sh.done_at_start) as f64
                / sh.started.elapsed().as_secs_f64().max(0.001);
            report(Event::Backfill {
                table: sh.spec.table.clone(),
                rows_done: rows_done as u64,
                rows_total: sh.rows_total.map(|t| t as u64),
                rows_per_second: rate,
                batch_size: batch,
                batch_duration: took,
            });
            if finished {
                lock(&sh.running).remove(&index);
                break;
            }
            let stats = BatchStats {
                seq: BatchStats::next_seq(),
                table: sh.spec.table.clone(),
                rows: updated as u64,
                rows_done: rows_done as u64,
                rows_total: sh.rows_total.map(|t| t as u64),
                batch_size: batch,
                duration: took,
            };
            next = match overrides.batch_size {
                Some(_) => batch,
                None => {
                    let mut cfg = sh.cfg.clone();
                    cfg.target = overrides.target.unwrap_or(cfg.target);
                    next_batch_size(batch, took, &cfg)
                }
            };
            cap = throttle(sh, &stats).await?;
        }
    }
    Ok(())
}

/// Between batches: wait while the throttle says pause; slow down (a cap on the next
/// batches' size, returned, and a wait) when it says throttle; stop all workers when it
/// says stop (nothing is lost: `ratchet backfill` resumes from the cursors).
async fn throttle(sh: &Shared<'_>, stats: &BatchStats) -> Result<Option<i64>, EngineError> {
    loop {
        match sh.throttle.after_batch(stats) {
            Decision::Continue => return Ok(None),
            Decision::Throttle {
                max_batch, wait, ..
            } => {
                tokio::time::sleep(wait).await;
                return Ok(Some(max_batch.max(1)));
            }
            Decision::Pause(d) => tokio::time::sleep(d).await,
            Decision::Stop(why) => {
                return sh.halt(EngineError::refused(
                    Refusal::Stopped,
                    format!(
                        "backfill of {} stopped: {why}; resume with `ratchet backfill`",
                        sh.spec.table
                    ),
                ))
            }
        }
    }
}

/// One batch of `slice` and its cursor, in one transaction. Returns (rows updated,
/// slice finished, cursor); nothing (and nothing written) when a walk over pages finds
/// the table rewritten since its bound was taken.
pub(crate) async fn one_batch(
    client: &mut Client,
    sh: &Shared<'_>,
    slice: &Slice,
    batch: i64,
) -> Result<Option<(i64, bool, Option<Vec<String>>)>, EngineError> {
    let spec = sh.spec;
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
        "{replica_sql}SET LOCAL ratchet.backfill = {}; {}",
        literal(&spec.pair.name),
        crate::session::with_lock_timeout(sh.lock_timeout, crate::session::Scope::Transaction)
    ))
    .await
    .map_err(|e| EngineError::db("preparing a backfill batch", e))?;
    let bound = &slice.upper;
    let (updated, finished, cursor) = if spec.walks_pages() {
        let (from, last) = (page(slice.cursor.as_ref()), page(Some(bound)));
        let to = (from + pages_for(batch, sh.rows_per_page)).min(last);
        let r = tx
            .query_one(&spec.ctid_batch_sql()?, &[&PageStart(from), &PageStart(to)])
            .await
            .map_err(|e| EngineError::db("running a backfill batch", e))?;
        if let Some(node) = &sh.filenode {
            if r.get::<_, Option<String>>(1).as_ref() != Some(node) {
                return Ok(None);
            }
        }
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
    sh.state
        .record_batch(
            &tx,
            sh.m.id,
            sh.step,
            &crate::state::BatchRecord {
                slice: slice.id,
                cursor: cursor.as_ref(),
                rows: updated,
                batch_size: batch as i32,
                finished,
            },
        )
        .await?;
    crate::session::fault_point("backfill", sh.step, "before-commit");
    tx.commit()
        .await
        .map_err(|e| EngineError::db("committing a backfill batch", e))?;
    Ok(Some((updated, finished, cursor)))
}

/// The pages a batch of about `rows` rows spans (at least one).
pub(crate) fn pages_for(rows: i64, rows_per_page: f64) -> i64 {
    ((rows as f64 / rows_per_page.max(0.01)).ceil() as i64).max(1)
}

/// After a batch failed on the data (`up` raised for some row), find the row and say so.
pub(crate) async fn name_failing_row(
    client: &Client,
    spec: &BackfillSpec,
    slice: &Slice,
    (batch, rows_per_page): (i64, f64),
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
    let Ok(up) = spec.up("r.") else {
        return generic;
    };
    // The rows of the batch that `up` had to fill, in key order (in the heap's order
    // without a key), each named by its key (its ctid).
    let keyed = !spec.key.is_empty();
    let name = if keyed {
        format!("ARRAY[{}]", spec.keys_text(""))
    } else {
        "ARRAY[ctid::text]".to_string()
    };
    let order = if keyed { spec.keys("") } else { "ctid".into() };
    let new = spec.new_col();
    let keys = if spec.walks_pages() {
        let from = page(slice.cursor.as_ref());
        let to = (from + pages_for(batch, rows_per_page)).min(page(Some(&slice.upper)));
        let sql = format!(
            "SELECT {name} FROM {} WHERE ctid >= $1 AND ctid < $2 AND {new} IS NULL \
             ORDER BY {order}",
            spec.t(),
        );
        client
            .query(&sql, &[&PageStart(from), &PageStart(to)])
            .await
    } else {
        let sql = format!(
            "SELECT {name} FROM {} WHERE {} AND {new} IS NULL ORDER BY {order} LIMIT {batch}",
            spec.t(),
            spec.range_cond("", slice.cursor.is_some()),
        );
        client
            .query(&sql, &range_params(&slice.upper, slice.cursor.as_ref()))
            .await
    };
    let Ok(keys) = keys else {
        return generic;
    };
    let probe = if keyed {
        format!(
            "SELECT {up} FROM {} AS r WHERE ({}) = {}",
            spec.t(),
            spec.keys("r."),
            spec.key_params(1)
        )
    } else {
        format!(
            "SELECT {up} FROM {} AS r WHERE r.ctid = $1::text::tid",
            spec.t()
        )
    };
    let names: Vec<&str> = if keyed {
        spec.key.iter().map(|(k, _)| k.as_str()).collect()
    } else {
        vec!["ctid"]
    };
    for k in keys {
        let key: Vec<String> = k.get(0);
        let refs: Vec<&(dyn ToSql + Sync)> = key.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        if let Err(e) = client.query(&probe, &refs).await {
            // The column as the user wrote it, not ratchet's physical duplicate.
            let new = spec.pair.new.as_deref().unwrap_or_default();
            let column = spec
                .pair
                .new_names
                .iter()
                .find(|(_, p)| p == new)
                .map_or(new, |(l, _)| l.as_str());
            return EngineError::refused(
                Refusal::RowFails,
                format!(
                "`up` of {}.{} fails for the row with ({})=({}): {}\n  nothing of its batch was \
                 written. If the row is wrong: fix it, then run the same command again (it \
                 resumes here). If `up` is wrong: run `ratchet abort`, fix `up` in the file, \
                 then run `ratchet start` again",
                spec.table,
                column,
                names.join(", "),
                key.join(", "),
                db_message(&e)
            ),
            );
        }
    }
    generic
}
