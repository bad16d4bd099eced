//! The executor: runs a plan's steps against the database, one runner at a time.
//!
//! - One runner per database: a session-level advisory lock, waited for at most
//!   `lock_wait`, so a second `ratchet` process refuses cleanly instead of interleaving.
//! - No waiting on strong locks: every transactional step runs with `SET LOCAL
//!   lock_timeout` and is retried with exponential backoff and jitter on lock timeout and
//!   deadlock, so a DDL statement never sits in the lock queue blocking everyone behind it
//!   for longer than the timeout.
//! - Idempotent, checkpointed steps: a transactional step records its completion in the
//!   same transaction; non-transactional steps check the catalog. A rerun after a crash
//!   skips what is finished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_postgres::Client;

use crate::backfill::{Decision, Throttle};
use crate::error::{EngineError, Refusal};
use crate::plan::{Action, BackfillSpec, Phase, Plan, Statement, Step};
use crate::retry::RetryPolicy;
use crate::state::{MigrationRow, State};
use crate::views;

use crate::config::Config;
use crate::report::{Event, Reporter};
pub(crate) use crate::session::fault_point;
use crate::session::{describe_sessions, open, set_timeout, with_lock_timeout, Scope};

/// A concurrent index build waits for every transaction that might still see the table,
/// and its lock blocks neither reads nor writes: it gets this many lock timeouts.
const CONCURRENT_INDEX_TIMEOUT_FACTOR: u32 = 20;
pub use crate::session::{ddl_transaction_timeout, idle_in_transaction_timeout};

/// A failed statement, with the statement in the context.
fn sql_error(sql: &str, e: tokio_postgres::Error) -> EngineError {
    let short: String = sql.chars().take(200).collect();
    EngineError::db(format!("running `{short}`"), e)
}

/// Who blocks ratchet's own session while a step waits for a lock, sampled from a
/// second session (after the lock timeout the statement is cancelled and nothing waits
/// any more, so asking afterwards would find no one).
pub(crate) struct BlockerWatch {
    client: Client,
    /// ratchet's own backend pid.
    pid: i32,
}

/// Blocking sessions of `pid`: "pid 123 (application psql, idle in transaction,
/// transaction open 12.3 s)".
async fn blockers_of(w: &BlockerWatch) -> Vec<String> {
    describe_sessions(
        &w.client,
        "SELECT b.pid FROM unnest(pg_blocking_pids($1::int)) AS b(pid)",
        &w.pid,
    )
    .await
}

/// A running [`Executor::sample_blockers`].
struct Sampler {
    task: tokio::task::JoinHandle<()>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Sampler {
    fn stop(self) -> Vec<String> {
        self.task.abort();
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.clone()
    }
}

/// The step runner of one engine session, borrowed from [`Engine`] for one phase.
pub(crate) struct Executor<'a> {
    pub(crate) client: &'a mut Client,
    /// Where `client` connected: backfill workers and the lock watch open their own
    /// sessions there.
    pub(crate) url: &'a str,
    pub(crate) config: &'a Config,
    pub(crate) state: &'a State,
    pub(crate) reporter: &'a Arc<dyn Reporter>,
    pub(crate) throttle: &'a Arc<dyn Throttle>,
    /// Opened at the first step; samples who blocks the step's lock waits.
    pub(crate) watch: &'a mut Option<Arc<BlockerWatch>>,
    /// `server_version_num` of the server (routes that depend on the version).
    pub(crate) server_version_num: i32,
}

impl Executor<'_> {
    fn report(&self, e: Event) {
        self.reporter.report(&e);
    }

    /// The narrow view of the engine a backfill or validation works with.
    pub(crate) fn backfill_ctx(&mut self) -> crate::backfill::Ctx<'_> {
        crate::backfill::Ctx {
            client: &mut *self.client,
            url: self.url,
            config: self.config,
            state: self.state,
            reporter: self.reporter.clone(),
            throttle: self.throttle.clone(),
        }
    }

    /// Run every step of `phase` that is not done yet.
    pub(crate) async fn run_phase(
        &mut self,
        m: &MigrationRow,
        phase: Phase,
    ) -> Result<(), EngineError> {
        let done = self.state.done_steps(&*self.client, m.id).await?;
        for (i, step) in m.plan.steps_of(phase) {
            if done.contains(&(i as i32)) {
                self.report(Event::StepSkipped {
                    phase,
                    step: i,
                    description: step.description.clone(),
                });
                continue;
            }
            if matches!(step.action, Action::Backfill(_)) && !self.config.run_backfill {
                // The new version's views come after the backfills: published before its
                // columns are filled, the new version would read NULL and an update
                // computed from such a NULL would be lost.
                self.report(Event::Info(format!(
                    "left for later: {} and the start steps after it; `ratchet backfill` runs them and creates the version schema",
                    step.description
                )));
                break;
            }
            self.report(Event::StepStarted {
                phase,
                step: i,
                description: step.description.clone(),
            });
            let started = Instant::now();
            let attempts = self
                .run_step(m, i, step)
                .await
                .map_err(|e| EngineError::Step {
                    migration: m.name.clone(),
                    step: i,
                    description: step.description.clone(),
                    source: Box::new(e),
                })?;
            fault_point(phase.as_str(), i, "after-commit");
            let duration = started.elapsed();
            self.state
                .event(
                    &*self.client,
                    Some(&m.name),
                    "step",
                    json!({"phase": phase.as_str(), "step": i, "description": step.description,
                           "duration_ms": duration.as_millis() as u64, "attempts": attempts}),
                )
                .await?;
            self.report(Event::StepDone {
                phase,
                step: i,
                description: step.description.clone(),
                duration,
                attempts,
            });
        }
        Ok(())
    }

    /// Run one step to completion, retrying transient failures. Returns the attempts used.
    async fn run_step(
        &mut self,
        m: &MigrationRow,
        index: usize,
        step: &Step,
    ) -> Result<u32, EngineError> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            self.wait_until_healthy(step).await?;
            let sampler = self.sample_blockers().await;
            let res = match &step.action {
                Action::Transaction {
                    statements,
                    backfill_bounds,
                } => {
                    let bounds = backfill_specs(&m.plan, backfill_bounds)?;
                    let work = TxWork::Statements(statements.as_slice(), &bounds);
                    self.try_transaction(m, index, step, work, attempt, started)
                        .await
                }
                Action::SyncViews {
                    version_schema,
                    mapping,
                    ..
                } => {
                    let work = TxWork::Views(version_schema, mapping);
                    self.try_transaction(m, index, step, work, attempt, started)
                        .await
                }
                Action::CreateIndexConcurrently {
                    schema,
                    index: name,
                    statement,
                } => self.try_create_index(schema, name, statement).await,
                Action::DropIndexConcurrently { statement }
                | Action::NoTransaction { statement } => {
                    self.try_outside_transaction(statement).await
                }
                Action::Backfill(spec) => {
                    crate::backfill::run(&mut self.backfill_ctx(), m, index, spec).await
                }
            };
            let blockers = sampler.map(Sampler::stop).unwrap_or_default();
            let Err(e) = res else { break };
            RetryPolicy::new(self.config)
                .after_failure((&step.description, false), attempt, e, blockers)?
                .record_and_wait(
                    &*self.client,
                    self.state,
                    self.reporter.as_ref(),
                    &m.name,
                    json!({ "step": index }),
                )
                .await?;
            attempt += 1;
        }
        if !matches!(
            step.action,
            Action::Transaction { .. } | Action::SyncViews { .. }
        ) {
            fault_point(step.phase.as_str(), index, "before-commit");
            self.state
                .mark_step(
                    &*self.client,
                    m.id,
                    index,
                    step.phase.as_str(),
                    &step.description,
                    attempt,
                    started.elapsed().as_millis() as i64,
                )
                .await?;
        }
        Ok(attempt)
    }

    /// No new attempt at a step's lock while the throttle hook (the monitors, an operator's
    /// `ratchet pause`) says to wait; a stop ends the run cleanly, resumable.
    async fn wait_until_healthy(&self, step: &Step) -> Result<(), EngineError> {
        loop {
            match self.throttle.before_attempt() {
                Decision::Continue => return Ok(()),
                Decision::Throttle { wait, .. } => {
                    tokio::time::sleep(wait).await;
                    return Ok(());
                }
                Decision::Pause(d) => tokio::time::sleep(d).await,
                Decision::Stop(why) => {
                    return Err(EngineError::refused(
                        Refusal::Stopped,
                        format!(
                            "`{}` stopped before its next attempt: {why}; run the command again to resume",
                            step.description
                        ),
                    ))
                }
            }
        }
    }

    /// Sample, from the watch session, who blocks this session while an attempt runs:
    /// every quarter of the lock timeout (a lock wait ends at 100 %, and a statement
    /// after the first of a transaction starts waiting later), keeping the last
    /// non-empty sample. Stopped when the attempt ends.
    async fn sample_blockers(&mut self) -> Option<Sampler> {
        if self.watch.is_none() {
            let pid: i32 = self
                .client
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .ok()?
                .get(0);
            let client = open(self.url).await.ok()?;
            client
                .batch_execute("SET application_name = 'ratchet (lock watch)'")
                .await
                .ok()?;
            *self.watch = Some(Arc::new(BlockerWatch { client, pid }));
        }
        let watch = self.watch.clone()?;
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let timeout = self.config.lock_timeout;
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                let pause = (timeout / 4).max(Duration::from_millis(20));
                loop {
                    tokio::time::sleep(pause).await;
                    let b = blockers_of(&watch).await;
                    if !b.is_empty() {
                        *seen.lock().unwrap_or_else(|e| e.into_inner()) = b;
                    }
                }
            }
        });
        Some(Sampler { task, seen })
    }

    /// One attempt of a transactional step: the statements (or the view sync) and the
    /// step's completion marker commit together.
    async fn try_transaction(
        &mut self,
        m: &MigrationRow,
        index: usize,
        step: &Step,
        work: TxWork<'_>,
        attempt: u32,
        started: Instant,
    ) -> Result<(), EngineError> {
        let state = self.state.clone();
        let schema = self.config.schema.clone();
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| EngineError::db("beginning a transaction", e))?;
        let tx_timeout = if self.server_version_num >= 170000 {
            format!(
                "; {}",
                set_timeout(
                    "transaction_timeout",
                    ddl_transaction_timeout(self.config),
                    Scope::Transaction
                )
            )
        } else {
            String::new()
        };
        tx.batch_execute(&format!(
            "{}; SET LOCAL ratchet.migration_id = '{}'{tx_timeout}",
            with_lock_timeout(self.config.lock_timeout, Scope::Transaction),
            m.id
        ))
        .await
        .map_err(|e| EngineError::db("setting lock_timeout", e))?;
        match work {
            TxWork::Statements(statements, bounds) => {
                for s in statements {
                    tracing::debug!(sql = %s.sql, "running");
                    let t = Instant::now();
                    tx.batch_execute(&s.sql)
                        .await
                        .map_err(|e| sql_error(&s.sql, e))?;
                    tracing::info!(sql = %s.sql, ms = t.elapsed().as_millis() as u64, "ran");
                }
                for (backfill, spec) in bounds {
                    state
                        .record_backfill_bound(&tx, m.id, *backfill, &spec.bound_sql(), &spec.t())
                        .await?;
                }
            }
            TxWork::Views(vs, mapping) => {
                let catalog = crate::catalog::load(&tx, &schema).await?;
                let desired = views::desired_views(&catalog, mapping, vs);
                views::sync(&tx, &catalog, vs, &desired).await?;
            }
        }
        state
            .mark_step(
                &tx,
                m.id,
                index,
                step.phase.as_str(),
                &step.description,
                attempt,
                started.elapsed().as_millis() as i64,
            )
            .await?;
        fault_point(step.phase.as_str(), index, "before-commit");
        tx.commit()
            .await
            .map_err(|e| EngineError::db("committing the step", e))
    }

    async fn try_outside_transaction(&self, statement: &Statement) -> Result<(), EngineError> {
        self.client
            .batch_execute(&statement.sql)
            .await
            .map_err(|e| sql_error(&statement.sql, e))
    }

    /// `CREATE INDEX CONCURRENTLY`, idempotently: done if a valid index of that name
    /// exists; an INVALID leftover of a failed build is dropped first.
    async fn try_create_index(
        &self,
        schema: &str,
        index: &str,
        statement: &Statement,
    ) -> Result<(), EngineError> {
        self.create_index_inner(schema, index, statement)
            .await
            .map_err(|e| sql_error(&statement.sql, e))
    }

    async fn create_index_inner(
        &self,
        schema: &str,
        index: &str,
        statement: &Statement,
    ) -> Result<(), tokio_postgres::Error> {
        let row = self
            .client
            .query_opt(
                "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema, &index],
            )
            .await?;
        match row.map(|r| r.get::<_, bool>(0)) {
            Some(true) => return Ok(()),
            Some(false) => {
                self.report(Event::Info(format!(
                    "dropping INVALID index {index} left by a failed build, then building it again"
                )));
                self.client
                    .batch_execute(&format!(
                        "DROP INDEX CONCURRENTLY IF EXISTS {}",
                        crate::sql::qualified(schema, index)
                    ))
                    .await?;
            }
            None => {}
        }
        // A concurrent build waits for every transaction that might still see the table, and
        // its lock does not block reads or writes: give it a longer timeout than plain DDL.
        let long = self.config.lock_timeout * CONCURRENT_INDEX_TIMEOUT_FACTOR;
        self.client
            .batch_execute(&with_lock_timeout(long, Scope::Session))
            .await?;
        let res = self.client.batch_execute(&statement.sql).await;
        self.client
            .batch_execute(&with_lock_timeout(self.config.lock_timeout, Scope::Session))
            .await?;
        res
    }
}

/// What one transactional step runs before its completion marker.
enum TxWork<'a> {
    /// Statements, then the bounds of the backfills that follow (step index, spec).
    Statements(&'a [Statement], &'a [(usize, &'a BackfillSpec)]),
    /// A view sync of a version schema.
    Views(&'a String, &'a views::Mapping),
}

/// The backfill steps a transaction records the bounds of, looked up in the plan.
fn backfill_specs<'p>(
    plan: &'p Plan,
    steps: &[usize],
) -> Result<Vec<(usize, &'p BackfillSpec)>, EngineError> {
    steps
        .iter()
        .map(|&i| match plan.steps.get(i).map(|s| &s.action) {
            Some(Action::Backfill(spec)) => Ok((i, &**spec)),
            _ => Err(EngineError::State(format!(
                "plan step {i} should be a backfill (its bound is recorded by an earlier step)"
            ))),
        })
        .collect()
}
