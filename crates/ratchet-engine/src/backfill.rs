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
//! - Between batches the [`Throttle`] hook decides to go on, pause or stop; monitors plug
//!   in there.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::types::ToSql;

use crate::dualwrite::Pair;
use crate::error::{db_message, is_retryable, EngineError};
use crate::executor::{Engine, Event};
use crate::plan::{Action, Lock, Statement, ROW_EXCLUSIVE};
use crate::sql::{ident, literal, qualified};
use crate::state::MigrationRow;

/// What to backfill: the new column of one dual-write pair, for every pre-existing row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillSpec {
    pub schema: String,
    /// Physical table name.
    pub table: String,
    /// Physical key columns with their types; empty means batches over `ctid` ranges.
    pub key: Vec<(String, String)>,
    pub pair: Pair,
}

/// Batch sizing of backfills.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// The duration a batch should take (default 200 ms).
    pub target: Duration,
    /// First batch size in rows (pages for tables without a key).
    pub initial: i64,
    pub min: i64,
    pub max: i64,
}

impl Default for BackfillConfig {
    fn default() -> BackfillConfig {
        BackfillConfig {
            target: Duration::from_millis(200),
            initial: 1000,
            min: 10,
            max: 100_000,
        }
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
       (SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = {}::regclass)
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

    /// The end key of the next batch: the `limit`-th key after the cursor (an index-only
    /// scan), or nothing when fewer rows are left before the bound.
    /// Parameters: bound keys, then cursor keys (when `has_cursor`), then the limit.
    fn batch_end_sql(&self, has_cursor: bool) -> String {
        let n = self.key.len();
        let mut cond = vec![format!("({}) <= {}", self.keys(""), self.key_params(1))];
        if has_cursor {
            cond.push(format!("({}) > {}", self.keys(""), self.key_params(n + 1)));
        }
        let limit = if has_cursor { 2 * n + 1 } else { n + 1 };
        // The text array is built above the OFFSET: built in the scan, it would be computed
        // for every skipped key too (about half the query's time).
        format!(
            "SELECT ARRAY[{kt}] FROM (SELECT {keys} FROM {t} WHERE {cond} ORDER BY {keys} \
             OFFSET ${limit}::bigint - 1 LIMIT 1) AS e",
            kt = self.keys_text("e."),
            t = self.t(),
            cond = cond.join(" AND "),
            keys = self.keys(""),
        )
    }

    /// One keyset batch: a range UPDATE between the cursor and the batch's end key, of
    /// the rows not filled yet. Parameters: end keys, then cursor keys (when `has_cursor`).
    fn keyed_batch_sql(&self, has_cursor: bool) -> Result<String, EngineError> {
        let n = self.key.len();
        let mut cond = vec![format!("({}) <= {}", self.keys("r."), self.key_params(1))];
        if has_cursor {
            cond.push(format!(
                "({}) > {}",
                self.keys("r."),
                self.key_params(n + 1)
            ));
        }
        Ok(format!(
            "UPDATE {t} AS r SET {new} = {up} WHERE {cond} AND r.{new} IS NULL",
            t = self.t(),
            new = self.new_col(),
            up = self.up("r.")?,
            cond = cond.join(" AND "),
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
}

struct Row {
    cursor: Option<Vec<String>>,
    bound: Option<Vec<String>>,
    rows_done: i64,
    rows_total: Option<i64>,
    batch: Option<i32>,
    done: bool,
}

async fn load_row(
    engine: &Engine,
    m: &MigrationRow,
    step: usize,
) -> Result<Option<Row>, EngineError> {
    let s = ident(&engine.config.state_schema);
    let row = engine
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
    let parse = |v: Option<serde_json::Value>| -> Option<Vec<String>> {
        v.and_then(|v| serde_json::from_value(v).ok())
    };
    Ok(row.map(|r| Row {
        cursor: parse(r.get(0)),
        bound: parse(r.get(1)),
        rows_done: r.get(2),
        rows_total: r.get(3),
        batch: r.get(4),
        done: r.get(5),
    }))
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

/// Run (or resume) the backfill step `step` of `m`.
pub(crate) async fn run(
    engine: &mut Engine,
    m: &MigrationRow,
    step: usize,
    spec: &BackfillSpec,
) -> Result<(), EngineError> {
    let Some(mut row) = load_row(engine, m, step).await? else {
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
        return finish(engine, m, step).await;
    };
    let cfg = engine.config.backfill.clone();
    let replica = may_skip_triggers(engine).await;
    let mut batch = row.batch.map(i64::from).unwrap_or(cfg.initial);
    let started = Instant::now();
    let done_at_start = row.rows_done;
    let s = ident(&engine.config.state_schema);
    loop {
        let t0 = Instant::now();
        let res = one_batch(engine, m, step, spec, &row, &bound, (batch, replica), &s).await;
        let (updated, finished, cursor) = match res {
            Ok(v) => v,
            Err(e) => {
                if let EngineError::Database { source, .. } = &e {
                    if is_retryable(source) {
                        engine.report(Event::Info(format!(
                            "backfill batch of {} hit {}; retrying",
                            spec.table,
                            db_message(source)
                        )));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    return Err(name_failing_row(engine, spec, &row, &bound, batch, source).await);
                }
                return Err(e);
            }
        };
        let took = t0.elapsed();
        row.rows_done += updated;
        row.cursor = cursor;
        let stats = BatchStats {
            table: spec.table.clone(),
            rows: updated as u64,
            rows_done: row.rows_done as u64,
            rows_total: row.rows_total.map(|t| t as u64),
            batch_size: batch,
            duration: took,
        };
        let rate =
            (row.rows_done - done_at_start) as f64 / started.elapsed().as_secs_f64().max(0.001);
        engine.report(Event::Backfill {
            table: spec.table.clone(),
            rows_done: row.rows_done as u64,
            rows_total: row.rows_total.map(|t| t as u64),
            rows_per_second: rate,
            batch_size: batch,
        });
        if finished {
            break;
        }
        batch = next_batch_size(batch, took, &cfg);
        loop {
            match engine.throttle.after_batch(&stats) {
                Decision::Continue => break,
                Decision::Pause(d) => tokio::time::sleep(d).await,
                Decision::Stop(why) => {
                    return Err(EngineError::Refused(format!(
                        "backfill of {} stopped: {why}; resume with `ratchet backfill`",
                        spec.table
                    )))
                }
            }
        }
    }
    finish(engine, m, step).await
}

/// Whether this role may set `session_replication_role` (superusers, or a role granted
/// `SET` on it, PostgreSQL 15+). Without it the backfill still works, through the
/// triggers' `WHEN` clause, only slower.
async fn may_skip_triggers(engine: &Engine) -> bool {
    let sql = "SELECT current_setting('is_superuser') = 'on'
                  OR (current_setting('server_version_num')::int >= 150000
                      AND has_parameter_privilege('session_replication_role', 'SET'))";
    match engine.client.query_one(sql, &[]).await {
        Ok(r) => r.get(0),
        Err(_) => false,
    }
}

async fn finish(engine: &Engine, m: &MigrationRow, step: usize) -> Result<(), EngineError> {
    let s = ident(&engine.config.state_schema);
    engine
        .client
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

/// One batch and its cursor, in one transaction. Returns (rows updated, finished, cursor).
#[allow(clippy::too_many_arguments)]
async fn one_batch(
    engine: &mut Engine,
    m: &MigrationRow,
    step: usize,
    spec: &BackfillSpec,
    row: &Row,
    bound: &[String],
    (batch, replica): (i64, bool),
    s: &str,
) -> Result<(i64, bool, Option<Vec<String>>), EngineError> {
    let lock_ms = engine.config.lock_timeout.as_millis();
    // Any BEFORE UPDATE row trigger makes PostgreSQL lock (and WAL-log the lock of) every
    // row before the update, even when its WHEN clause then skips it. In replica mode the
    // ordinary triggers do not fire at all: the dual-write triggers have nothing to do for
    // the backfill's own writes, and constraints are validated before complete anyway.
    let replica_sql = if replica {
        "SET LOCAL session_replication_role = replica; "
    } else {
        ""
    };
    let tx = engine
        .client
        .transaction()
        .await
        .map_err(|e| EngineError::db("beginning a backfill batch", e))?;
    tx.batch_execute(&format!(
        "{replica_sql}SET LOCAL ratchet.backfill = 'on'; SET LOCAL lock_timeout = '{lock_ms}ms'"
    ))
    .await
    .map_err(|e| EngineError::db("preparing a backfill batch", e))?;
    let (updated, finished, cursor) = if spec.key.is_empty() {
        let from: i64 = row
            .cursor
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let last: i64 = bound.first().and_then(|v| v.parse().ok()).unwrap_or(0);
        let to = (from + batch).min(last);
        let r = tx
            .query_one(&spec.ctid_batch_sql()?, &[&from, &to])
            .await
            .map_err(|e| EngineError::db("running a backfill batch", e))?;
        (r.get::<_, i64>(0), to >= last, Some(vec![to.to_string()]))
    } else {
        let mut params: Vec<&(dyn ToSql + Sync)> =
            bound.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        if let Some(c) = &row.cursor {
            params.extend(c.iter().map(|v| v as &(dyn ToSql + Sync)));
        }
        params.push(&batch);
        let end: Option<Vec<String>> = tx
            .query_opt(&spec.batch_end_sql(row.cursor.is_some()), &params)
            .await
            .map_err(|e| EngineError::db("finding the end of a backfill batch", e))?
            .map(|r| r.get(0));
        let finished = end.is_none();
        let end = end.unwrap_or_else(|| bound.to_vec());
        let mut params: Vec<&(dyn ToSql + Sync)> =
            end.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        if let Some(c) = &row.cursor {
            params.extend(c.iter().map(|v| v as &(dyn ToSql + Sync)));
        }
        let updated = tx
            .execute(&spec.keyed_batch_sql(row.cursor.is_some())?, &params)
            .await
            .map_err(|e| EngineError::db("running a backfill batch", e))?;
        (updated as i64, finished, Some(end))
    };
    let cursor_json = cursor.as_ref().map(|c| json!(c));
    tx.execute(
        &format!(
            "UPDATE {s}.backfills SET cursor = $3, rows_done = rows_done + $4, batch_size = $5,
                    done = $6, updated_at = clock_timestamp()
              WHERE migration_id = $1 AND step = $2"
        ),
        &[
            &m.id,
            &(step as i32),
            &cursor_json,
            &updated,
            &(batch as i32),
            &finished,
        ],
    )
    .await
    .map_err(|e| EngineError::db("storing the backfill cursor", e))?;
    tx.commit()
        .await
        .map_err(|e| EngineError::db("committing a backfill batch", e))?;
    Ok((updated, finished, cursor))
}

/// After a batch failed on the data (`up` raised for some row), find the row and say so.
async fn name_failing_row(
    engine: &Engine,
    spec: &BackfillSpec,
    row: &Row,
    bound: &[String],
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
    let n = spec.key.len();
    let mut cond = vec![format!("({}) <= {}", spec.keys(""), spec.key_params(1))];
    let mut params: Vec<String> = bound.to_vec();
    if let Some(c) = &row.cursor {
        cond.push(format!("({}) > {}", spec.keys(""), spec.key_params(n + 1)));
        params.extend(c.iter().cloned());
    }
    let sql = format!(
        "SELECT ARRAY[{}] FROM {} WHERE {} ORDER BY {} LIMIT {batch}",
        spec.keys_text(""),
        spec.t(),
        cond.join(" AND "),
        spec.keys("")
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let Ok(keys) = engine.client.query(&sql, &refs).await else {
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
        if let Err(e) = engine.client.query(&probe, &refs).await {
            let names: Vec<&str> = spec.key.iter().map(|(k, _)| k.as_str()).collect();
            return EngineError::Refused(format!(
                "`up` of {}.{} fails for the row with ({})=({}): {}\n  nothing of its batch was \
                 written; fix that row or the expression, then run `ratchet backfill` (or `ratchet abort`)",
                spec.table,
                spec.pair.new.as_deref().unwrap_or_default(),
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

impl Engine {
    /// Progress of the active migration's backfills.
    pub async fn backfill_progress(&self) -> Result<Vec<Progress>, EngineError> {
        let Some(active) = self.state.active(&self.client).await? else {
            return Ok(vec![]);
        };
        let s = ident(&self.config.state_schema);
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT step, rows_done, rows_total, batch_size, done FROM {s}.backfills
                      WHERE migration_id = $1 ORDER BY step"
                ),
                &[&active.id],
            )
            .await
            .map_err(|e| EngineError::db("reading backfill progress", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let step: i32 = r.get(0);
                let table = match active.plan.steps.get(step as usize).map(|s| &s.action) {
                    Some(Action::Backfill(b)) => b.table.clone(),
                    _ => String::new(),
                };
                Progress {
                    step,
                    table,
                    rows_done: r.get(1),
                    rows_total: r.get(2),
                    batch_size: r.get(3),
                    done: r.get(4),
                }
            })
            .collect())
    }

    /// Run or resume every unfinished backfill of the active migration.
    pub async fn backfill(&mut self) -> Result<Option<String>, EngineError> {
        let Some(active) = self.state.active(&self.client).await? else {
            return Ok(None);
        };
        if active.phase != "started" {
            return Err(EngineError::Refused(format!(
                "migration `{}` is {}; there is nothing to backfill",
                active.name, active.phase
            )));
        }
        self.run_phase(&active, crate::plan::Phase::Start).await?;
        Ok(Some(active.name))
    }

    /// Check every row of every backfilled column: the new column equals `up(old)`, or the
    /// old equals `down(new)` for rows written through the new version. With `repair`,
    /// recompute the mismatching rows. The result is stored and gates `complete`.
    pub async fn validate(&mut self, repair: bool) -> Result<Option<Validation>, EngineError> {
        let Some(active) = self.state.active(&self.client).await? else {
            return Ok(None);
        };
        if !active
            .plan
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Backfill(_)))
        {
            return Ok(None);
        }
        let progress = self.backfill_progress().await?;
        if let Some(p) = progress.iter().find(|p| !p.done) {
            return Err(EngineError::Refused(format!(
                "the backfill of {} is not finished ({} rows done); run `ratchet backfill` first",
                p.table, p.rows_done
            )));
        }
        let mut out = Validation::default();
        for step in &active.plan.steps {
            let Action::Backfill(spec) = &step.action else {
                continue;
            };
            validate_one(self, spec, repair, &mut out).await?;
        }
        out.passed = out.mismatches == out.repaired;
        let s = ident(&self.config.state_schema);
        self.client
            .execute(
                &format!(
                    "INSERT INTO {s}.validations (migration_id, rows_checked, mismatches, repaired, passed, detail)
                     VALUES ($1, $2, $3, $4, $5, $6)"
                ),
                &[
                    &active.id,
                    &out.rows_checked,
                    &out.mismatches,
                    &out.repaired,
                    &out.passed,
                    &json!({"samples": out.samples, "notes": out.notes}),
                ],
            )
            .await
            .map_err(|e| EngineError::db("storing the validation result", e))?;
        self.state
            .event(
                &self.client,
                Some(&active.name),
                "validate",
                json!({"rows_checked": out.rows_checked, "mismatches": out.mismatches,
                       "repaired": out.repaired, "passed": out.passed}),
            )
            .await?;
        Ok(Some(out))
    }
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

async fn validate_one(
    engine: &mut Engine,
    spec: &BackfillSpec,
    repair: bool,
    out: &mut Validation,
) -> Result<(), EngineError> {
    let cat = crate::catalog::load(&engine.client, &engine.config.schema).await?;
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
        let sql = format!(
            "WITH b AS (SELECT {key_text} AS k, ({ok}) AS ok, {old} AS o, r.{new}::text AS n
                          FROM {t} AS r WHERE {range} ORDER BY {order} {limit})
             SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM b WHERE NOT ok),
                    (SELECT k FROM b ORDER BY k DESC LIMIT 1),
                    (SELECT coalesce(json_agg(json_build_array(k, o, n)), '[]') FROM (SELECT * FROM b WHERE NOT ok LIMIT 5) x),
                    (SELECT coalesce(json_agg(k), '[]') FROM b WHERE NOT ok)",
            new = spec.new_col(),
            t = spec.t(),
        );
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let r = engine
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
            out.repaired += repair_rows(engine, spec, &keys).await?;
        }
        // Rows compared with a chunked key: order by text key may differ from key order
        // for non-text keys, so the cursor comes from the real key order instead.
        if spec.key.is_empty() || checked < chunk {
            break;
        }
        let last_sql = format!(
            "SELECT ARRAY[{}] FROM (SELECT {} FROM {} AS r WHERE {range} ORDER BY {order} LIMIT {chunk}) r ORDER BY {} LIMIT 1",
            spec.keys_text("r."),
            spec.keys("r."),
            spec.t(),
            spec.keys_desc("r.")
        );
        let last = engine
            .client
            .query_one(&last_sql, &refs)
            .await
            .map_err(|e| EngineError::db(format!("validating {}", spec.table), e))?;
        cursor = Some(last.get(0));
    }
    Ok(())
}

async fn repair_rows(
    engine: &mut Engine,
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
    let tx = engine
        .client
        .transaction()
        .await
        .map_err(|e| EngineError::db("beginning a repair", e))?;
    tx.batch_execute("SET LOCAL ratchet.backfill = 'on'")
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
