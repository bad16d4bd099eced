//! Backfill and validation: fill new physical columns for the rows that existed when the
//! migration started, then check every row.
//!
//! - Batches over `ctid` page ranges, in the heap's order: no end-key lookup per batch,
//!   each page read once. Only the pages up to the bound captured at start (in the same
//!   transaction that created the dual-write triggers) are visited: rows written later,
//!   wherever they land, are the triggers' job, so the backfill ends even under a
//!   constant insert load. A batch size is a number of rows, turned into pages by the
//!   rows a page holds. A rewrite of the table (`VACUUM FULL`, `CLUSTER`) moves its rows:
//!   the batches see the file node change and the walk starts again over the new file.
//!   Plans made before page walks go on with keyset batches over the primary key.
//! - Each batch updates only rows whose new column is still NULL, and stores the cursor
//!   in the same transaction: after a crash it resumes without redoing finished batches.
//! - The batch size adapts to a target duration: it grows slowly and shrinks at once.
//! - With several workers the remaining range is cut into slices of about the same number
//!   of rows; each worker (its own session) walks one slice at a time, each slice with its
//!   own cursor.
//! - Between batches the [`Throttle`] hook decides to go on, pause or stop; monitors plug
//!   in there.

mod crew;
mod sizing;
mod slices;
mod sql;
mod worker;

use crate::config::Config;
use crate::error::EngineError;
use crate::report::{Event, Reporter};
use crate::state::MigrationRow;
use crate::state::State;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

pub use crate::config::BackfillConfig;
pub use crate::plan::BackfillSpec;
use sizing::*;
use slices::*;
use sql::*;
use worker::*;

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
    pub(crate) fn report(&self, e: Event) {
        self.reporter.report(&e);
    }

    /// Another session for a backfill worker, set up like the engine's own.
    pub(crate) async fn worker_session(&self) -> Result<Client, EngineError> {
        let client = crate::session::open(self.url).await?;
        crate::session::setup_session(&client, self.config).await?;
        Ok(client)
    }
}

/// Figures of one finished batch, handed to the [`Throttle`] hook.
#[derive(Debug, Clone)]
pub struct BatchStats {
    /// Numbers the batches of the process ([`BatchStats::next_seq`]): while a hook holds
    /// the backfill, the workers ask again with the same figures (and the same number)
    /// until it lets them go on, and a hook that adapts to the batches must not count
    /// those as batches.
    pub seq: u64,
    pub table: String,
    pub rows: u64,
    pub rows_done: u64,
    pub rows_total: Option<u64>,
    pub batch_size: i64,
    pub duration: Duration,
}

impl BatchStats {
    /// A new batch number, unique in the process (batches of every table and worker, and
    /// the chunks of a validation).
    pub fn next_seq() -> u64 {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// What to do after a batch (or before a DDL attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Continue,
    /// Slow down: the next batches have at most `max_batch` rows, and start after
    /// `wait` (before a DDL attempt only the wait applies).
    Throttle {
        max_batch: i64,
        wait: Duration,
        reason: String,
    },
    /// Wait this long, then ask again.
    Pause(Duration),
    /// Stop the backfill cleanly (it can be resumed with `ratchet backfill`).
    Stop(String),
}

/// Settings an operator changed while ratchet runs (`ratchet set …`), applied from the
/// next batch on; `None` keeps the configured value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// A fixed batch size (the adaptive sizing is off while it is set).
    pub batch_size: Option<i64>,
    /// The batch duration the adaptive sizing aims at.
    pub target: Option<Duration>,
    /// How many workers walk slices: those above it stop after their batch and hand
    /// their slice back to the others; up to the number the backfill started with come
    /// back when it rises. A backfill that starts while it is set starts that many.
    pub workers: Option<usize>,
}

/// The hook between backfill batches and before each DDL attempt: monitors and operator
/// controls decide here.
pub trait Throttle: Send + Sync {
    fn after_batch(&self, stats: &BatchStats) -> Decision;

    /// Before an attempt at a step's lock (a transaction, an index build): no new
    /// attempt while the database is unhealthy.
    fn before_attempt(&self) -> Decision {
        Decision::Continue
    }

    /// Settings changed while running, read before each batch.
    fn overrides(&self) -> Overrides {
        Overrides::default()
    }
}

/// Never slows down.
pub struct NoThrottle;
impl Throttle for NoThrottle {
    fn after_batch(&self, _: &BatchStats) -> Decision {
        Decision::Continue
    }
}

/// Several hooks at once (monitors and operator controls): the most restrictive decision
/// wins (stop, then the longest pause, then the smallest throttle), and the first hook
/// that overrides a setting sets it.
pub struct Throttles(pub Vec<Arc<dyn Throttle>>);

impl Throttles {
    fn combine(decisions: impl Iterator<Item = Decision>) -> Decision {
        let mut out = Decision::Continue;
        for d in decisions {
            out = match (out, d) {
                (Decision::Stop(a), _) => Decision::Stop(a),
                (_, Decision::Stop(b)) => Decision::Stop(b),
                (Decision::Pause(a), Decision::Pause(b)) => Decision::Pause(a.max(b)),
                (Decision::Pause(a), _) | (_, Decision::Pause(a)) => Decision::Pause(a),
                (
                    Decision::Throttle {
                        max_batch: a,
                        wait: wa,
                        reason: ra,
                    },
                    Decision::Throttle {
                        max_batch: b,
                        wait: wb,
                        reason: rb,
                    },
                ) => Decision::Throttle {
                    max_batch: a.min(b),
                    wait: wa.max(wb),
                    reason: format!("{ra}; {rb}"),
                },
                (t @ Decision::Throttle { .. }, Decision::Continue)
                | (Decision::Continue, t @ Decision::Throttle { .. }) => t,
                (Decision::Continue, Decision::Continue) => Decision::Continue,
            };
        }
        out
    }
}

impl Throttle for Throttles {
    fn after_batch(&self, stats: &BatchStats) -> Decision {
        Self::combine(self.0.iter().map(|t| t.after_batch(stats)))
    }

    fn before_attempt(&self) -> Decision {
        Self::combine(self.0.iter().map(|t| t.before_attempt()))
    }

    fn overrides(&self) -> Overrides {
        let mut out = Overrides::default();
        for t in &self.0 {
            let o = t.overrides();
            out.batch_size = out.batch_size.or(o.batch_size);
            out.target = out.target.or(o.target);
            out.workers = out.workers.or(o.workers);
        }
        out
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

/// Run (or resume) the backfill step `step` of `m`: its slices are shared among
/// `workers` sessions (the engine's own and `workers - 1` more), each walking one slice
/// at a time in batches. A walk over pages that finds the table rewritten (its rows
/// moved) starts again over the new file.
pub(crate) async fn run(
    cx: &mut Ctx<'_>,
    m: &MigrationRow,
    step: usize,
    spec: &BackfillSpec,
) -> Result<(), EngineError> {
    loop {
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
        // A rewrite while no ratchet ran is found by the first batch, as one during the
        // walk is.
        let filenode = bound.get(1).filter(|_| spec.walks_pages()).cloned();
        if !walk(cx, m, step, spec, &row, &bound, filenode).await? {
            return finish(cx, m, step).await;
        }
        cx.report(Event::Info(format!(
            "{} was rewritten (VACUUM FULL, CLUSTER, pg_repack?) while it was backfilled: \
             its rows moved, so the backfill walks the new file again (the rows filled so \
             far are skipped)",
            spec.table
        )));
        cx.state
            .rewalk_backfill(cx.client, m.id, step, &spec.bound_sql())
            .await?;
    }
}

/// Walk the backfill's slices with its workers. True when the walk stopped because the
/// table was rewritten.
async fn walk(
    cx: &mut Ctx<'_>,
    m: &MigrationRow,
    step: usize,
    spec: &BackfillSpec,
    row: &Row,
    bound: &[String],
    filenode: Option<String>,
) -> Result<bool, EngineError> {
    // An operator's `ratchet set workers N` made before this backfill began counts too.
    let wanted = cx.throttle.overrides().workers;
    let wanted = wanted.unwrap_or(cx.config.backfill.workers).max(1);
    let rows_per_page = if spec.walks_pages() {
        rows_per_page(&*cx.client, spec).await
    } else {
        1.0
    };
    let cut = (wanted, rows_per_page);
    let slices = prepare_slices(cx, m, step, spec, row, bound, cut).await?;
    let workers = wanted.clamp(1, slices.len().max(1));
    let mut sessions = Vec::new();
    for _ in 1..workers {
        sessions.push(cx.worker_session().await?);
    }
    let shared = Shared {
        m,
        step,
        spec,
        cfg: cx.config.backfill.clone(),
        lock_timeout: cx.config.lock_timeout,
        retry: crate::retry::RetryPolicy::new(cx.config),
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
        running: Mutex::new(Default::default()),
        shrunk: Mutex::new(Default::default()),
        alive: Mutex::new((0..workers).collect()),
        rows_per_page,
        filenode,
        rewritten: AtomicBool::new(false),
    };
    let sh = &shared;
    let mut walkers: Vec<crew::Walker<'_>> = Vec::new();
    let own = &mut *cx.client;
    walkers.push(Box::pin(async move {
        let r = worker(own, sh, 0).await;
        sh.discharge(0);
        r
    }));
    for (i, mut c) in sessions.into_iter().enumerate() {
        walkers.push(Box::pin(async move {
            let r = worker(&mut c, sh, i + 1).await;
            sh.discharge(i + 1);
            r
        }));
    }
    crew::run(sh, cx.url, cx.config, walkers).await?;
    Ok(shared.rewritten.load(Ordering::SeqCst))
}

/// Whether this role may set `session_replication_role` (superusers, or a role granted
/// `SET` on it, PostgreSQL 15+). Without it the backfill still works, through the
/// triggers' `WHEN` clause, only slower.
///
/// Not while another dual write on the table is active: its trigger must fill its own
/// new column in the rows this backfill writes (replica mode would silence it, and that
/// column's NOT NULL check would then reject the batch).
pub(crate) async fn may_skip_triggers(cx: &Ctx<'_>, spec: &BackfillSpec) -> bool {
    let sql = "SELECT (current_setting('is_superuser') = 'on'
                  OR (current_setting('server_version_num')::int >= 150000
                      AND has_parameter_privilege('session_replication_role', 'SET')))
               AND NOT EXISTS (SELECT 1 FROM pg_trigger
                                WHERE tgrelid = $1::text::regclass AND NOT tgisinternal
                                  AND tgname LIKE '\\_ratchet\\_dw\\_%' AND tgname NOT LIKE $2 || '%')";
    let own = spec.pair.name.replace('_', "\\_");
    match cx
        .client
        .query_one(sql, &[&spec.trigger_table(), &own])
        .await
    {
        Ok(r) => r.get(0),
        Err(_) => false,
    }
}

pub(crate) async fn finish(cx: &Ctx<'_>, m: &MigrationRow, step: usize) -> Result<(), EngineError> {
    cx.state.finish_backfill(&*cx.client, m.id, step).await
}
