//! The health monitors: while ratchet works they sample the database from connections
//! of their own (never the migration's session) every `interval`, the health policy
//! turns the figures into ok / throttle / pause, and [`MonitorThrottle`] makes the
//! backfill, the validation and the DDL attempts follow it. A migration must never be
//! the cause of an incident: the backfill backs off before users notice.
//!
//! One module per sampler (`locks`, `probe`, `errors`, `load`, `replication`,
//! `maintenance`, `statements`), `policy` for the thresholds, `throttle` for the hook.
//! The sampling loop here publishes each verdict on a [`Board`] the throttle reads,
//! reports every verdict as [`Event::Health`] with its figures (the reporters show the
//! latest and decide what is worth a line), writes an event row for each transition,
//! and the runner's heartbeat with the latest health once per tick. Operators override
//! `max_probe_p99_ms` through the control of that name (`ratchet set max-probe-p99-ms`),
//! read every tick.

mod errors;
mod load;
mod locks;
mod maintenance;
mod policy;
mod probe;
mod replication;
mod statements;
mod throttle;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_postgres::Client;

use crate::backfill::{NoThrottle, Throttle};
use crate::config::{Config, MonitorConfig};
use crate::error::{db_message, EngineError};
use crate::plan::Action;
use crate::report::{Event, HealthReport, HealthState, Reporter};
use crate::state::State;

pub use policy::{latency_budget, Observation, Policy, Thresholds, Verdict};
pub use probe::{quantile, run_once as run_probe};
pub use throttle::{
    Board, MonitorThrottle, Pressure, ThrottleSettings, View, FAST_WINDOW, MAX_PACE,
};

/// Figures by name (see [`HealthReport::figures`]).
pub type Figures = BTreeMap<String, f64>;

/// What a sampler saw in one tick: its figures, and lines worth showing (who ratchet
/// waits on, which vacuum runs, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub figures: Figures,
    pub notes: Vec<String>,
}

impl Sample {
    pub fn set(&mut self, name: &str, value: f64) {
        self.figures.insert(name.to_string(), value);
    }

    /// A sample with these figures.
    pub fn of(figures: &[(&str, f64)]) -> Sample {
        let mut s = Sample::default();
        for (k, v) in figures {
            s.set(k, *v);
        }
        s
    }
}

/// ratchet's own sessions, as a condition on `pg_stat_activity` aliased `r` (the
/// monitors' sessions are left out: they hold no locks).
pub(crate) const OURS: &str = "r.application_name LIKE 'ratchet%' \
                               AND r.application_name NOT LIKE 'ratchet monitor%'";

/// How long one sampler's query may take (the monitors' `statement_timeout`): past it
/// the sampler counts as failed.
pub fn sampler_timeout(m: &MonitorConfig) -> Duration {
    m.interval.max(Duration::from_secs(2))
}

/// A connection of the monitors, named `app` and bounded by `limit`.
async fn connect(url: &str, app: &str, limit: Duration) -> Result<Client, EngineError> {
    let client = crate::session::open(url).await?;
    let ms = limit.as_millis();
    client
        .batch_execute(&format!(
            "SET application_name = {}; SET statement_timeout = '{ms}ms'; \
             SET lock_timeout = '{ms}ms'; SET idle_in_transaction_session_timeout = '{ms}ms'",
            crate::sql::literal(app)
        ))
        .await
        .map_err(|e| EngineError::db("setting up a monitor session", e))?;
    Ok(client)
}

/// The running monitors. Stop them with [`Monitors::stop`] when the command ends
/// (dropping them stops them too, without flushing a last event).
pub struct Monitors {
    board: Arc<Board>,
    shutdown: Arc<tokio::sync::Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
    probe: Option<tokio::task::JoinHandle<()>>,
}

impl Monitors {
    /// Start the monitors on `url` (unless `config.monitor.enabled` is off): the probe's
    /// baseline is measured first, then the first verdict, so the hook returned has one
    /// before the migration's work begins. Install the hook with `Engine::set_throttle`
    /// (inside a `Throttles` beside other hooks).
    pub async fn start(
        url: &str,
        config: &Config,
        reporter: Arc<dyn Reporter>,
        state: State,
    ) -> Result<(Monitors, Arc<dyn Throttle>), EngineError> {
        let board = Arc::new(Board::new());
        let mut monitors = Monitors {
            board: board.clone(),
            shutdown: Arc::new(tokio::sync::Notify::new()),
            task: None,
            probe: None,
        };
        let m = &config.monitor;
        if !m.enabled {
            return Ok((monitors, Arc::new(NoThrottle)));
        }
        let client = connect(url, "ratchet monitor", sampler_timeout(m)).await?;
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(|e| EngineError::db("reading the server version", e))?
            .get(0);
        let window = match &m.probe_sql {
            Some(sql) => Some(monitors.start_probe(url, sql, m, reporter.as_ref()).await?),
            None => None,
        };
        let mut lp = Loop::new(client, config, reporter, state, board.clone(), window);
        lp.locks = locks::Locks::new(version);
        lp.tick().await;
        let shutdown = monitors.shutdown.clone();
        monitors.task = Some(tokio::spawn(lp.run(url.to_string(), shutdown)));
        let hook = MonitorThrottle::new(board, ThrottleSettings::from_config(config));
        Ok((monitors, Arc::new(hook)))
    }

    /// Start the probe task and measure its baseline over `probe_baseline`. A probe that
    /// failed every time over it (a typo, a table that does not exist, no privilege) is
    /// an error of the command, before any work: counted as a pause it would hold the
    /// migration for `max_pause` and then stop it.
    async fn start_probe(
        &mut self,
        url: &str,
        sql: &str,
        m: &MonitorConfig,
        reporter: &dyn Reporter,
    ) -> Result<Arc<Mutex<probe::Window>>, EngineError> {
        let window = Arc::new(Mutex::new(probe::Window::default()));
        let limit = m.probe_window.max(Duration::from_secs(5));
        self.probe = Some(tokio::spawn(probe::run(
            url.to_string(),
            sql.to_string(),
            m.probe_interval,
            limit,
            window.clone(),
            self.board.clone(),
        )));
        tokio::time::sleep(m.probe_baseline).await;
        let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = w.never_measured() {
            let e = e.to_string();
            drop(w);
            if let Some(t) = self.probe.take() {
                t.abort();
            }
            return Err(EngineError::Invalid {
                location:
                    "the probe query (--probe-sql, or probe_sql in [monitor] of ratchet.toml)"
                        .into(),
                message: format!(
                    "it failed on every run for {:.1} s before the work began: {e}",
                    m.probe_baseline.as_secs_f64()
                ),
                hint: "run it in psql as the same role to see what is wrong, fix it, and run \
                       the command again; nothing was changed"
                    .into(),
            });
        }
        w.set_baseline(m.probe_baseline.max(m.probe_window));
        if let Ok(s) = w.sample(m.probe_window) {
            reporter.report(&Event::Info(format!(
                "monitors: probe baseline p99 {:.1} ms",
                s.figures
                    .get("probe_baseline_p99_ms")
                    .copied()
                    .unwrap_or(0.0)
            )));
        }
        drop(w);
        Ok(window)
    }

    /// The latest verdict.
    pub fn health(&self) -> Option<HealthReport> {
        self.board.latest()
    }

    /// Where the verdicts are published.
    pub fn board(&self) -> Arc<Board> {
        self.board.clone()
    }

    /// Stop sampling (after writing the event row of a stop the hook decided, if any).
    pub async fn stop(mut self) {
        self.shutdown.notify_one();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        if let Some(p) = self.probe.take() {
            p.abort();
        }
    }
}

impl Drop for Monitors {
    fn drop(&mut self) {
        for t in [self.task.take(), self.probe.take()].into_iter().flatten() {
            t.abort();
        }
    }
}

/// The sampling loop and what it keeps between ticks.
struct Loop {
    client: Option<Client>,
    cfg: MonitorConfig,
    state: State,
    reporter: Arc<dyn Reporter>,
    board: Arc<Board>,
    policy: Policy,
    locks: locks::Locks,
    errors: errors::Errors,
    load: load::Load,
    replication: replication::Replication,
    maintenance: maintenance::Maintenance,
    statements: statements::Statements,
    probe: Option<Arc<Mutex<probe::Window>>>,
    /// The active migration and the tables it backfills (refreshed every few ticks).
    migration: Option<String>,
    tables: Vec<String>,
    ticks: u64,
    last_state: HealthState,
    last_blockers: Vec<String>,
}

/// The active migration is looked up every this many ticks.
const REFRESH_EVERY: u64 = 5;

impl Loop {
    fn new(
        client: Client,
        config: &Config,
        reporter: Arc<dyn Reporter>,
        state: State,
        board: Arc<Board>,
        probe: Option<Arc<Mutex<probe::Window>>>,
    ) -> Loop {
        let cfg = config.monitor.clone();
        Loop {
            client: Some(client),
            policy: Policy::new(Thresholds::from_config(&cfg)),
            statements: statements::Statements::new(cfg.probe_window.max(cfg.interval * 10)),
            cfg,
            state,
            reporter,
            board,
            locks: locks::Locks::new(0),
            errors: errors::Errors::default(),
            load: load::Load::default(),
            replication: replication::Replication::default(),
            maintenance: maintenance::Maintenance,
            probe,
            migration: None,
            tables: vec![],
            ticks: 0,
            last_state: HealthState::Ok,
            last_blockers: vec![],
        }
    }

    async fn run(mut self, url: String, shutdown: Arc<tokio::sync::Notify>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.interval) => {}
                _ = shutdown.notified() => break,
            }
            if self.client.as_ref().is_none_or(|c| c.is_closed()) {
                self.client = connect(&url, "ratchet monitor", sampler_timeout(&self.cfg))
                    .await
                    .ok();
            }
            self.tick().await;
        }
        self.flush_stop().await;
    }

    /// One round: read the context, sample, judge, publish, tell.
    async fn tick(&mut self) {
        if self.ticks.is_multiple_of(REFRESH_EVERY) {
            self.refresh().await;
        }
        self.ticks += 1;
        self.read_controls().await;
        let observed = self.observe().await;
        let (verdicts, report) = self.policy.judge(&observed, Instant::now());
        self.board.publish(report.clone());
        self.tell(&report).await;
        self.note_blockers(&observed);
        self.flush_stop().await;
        self.heartbeat(&report, &verdicts, &observed).await;
    }

    /// The active migration's name and backfilled tables.
    async fn refresh(&mut self) {
        let Some(c) = &self.client else { return };
        let Ok(active) = self.state.active(c).await else {
            return;
        };
        self.migration = active.as_ref().map(|m| m.name.clone());
        self.tables = active
            .iter()
            .flat_map(|m| m.plan.steps.iter())
            .filter_map(|s| match &s.action {
                Action::Backfill(b) => Some(crate::sql::qualified(&b.schema, &b.table)),
                _ => None,
            })
            .collect();
    }

    /// The operator's `max_probe_p99_ms` wins over the configured one while it is set.
    async fn read_controls(&mut self) {
        let Some(c) = &self.client else { return };
        let configured = self.cfg.max_probe_p99_ms as f64;
        let set = match self.state.controls(c).await {
            Ok(controls) => controls
                .iter()
                .find(|k| k.key == "max_probe_p99_ms")
                .and_then(|k| k.value.trim().parse::<f64>().ok()),
            Err(e) => {
                tracing::warn!("monitors: reading the controls: {e}");
                None
            }
        };
        self.policy.thresholds.max_probe_p99_ms = set.unwrap_or(configured);
        let baseline = self
            .probe
            .as_ref()
            .and_then(|w| w.lock().unwrap_or_else(|p| p.into_inner()).baseline());
        self.board
            .set_latency_budget(policy::latency_budget(&self.policy.thresholds, baseline));
    }

    /// Every sampler once, at the same time, each bounded by the sampler timeout.
    async fn observe(&mut self) -> Vec<Observation> {
        let limit = sampler_timeout(&self.cfg) + Duration::from_millis(500);
        let mut out: Vec<Observation> = Vec::new();
        if let Some(c) = self.client.as_ref().filter(|c| !c.is_closed()) {
            let tables = &self.tables;
            let (locks, errors, load, replication, maintenance, statements) = tokio::join!(
                timed(limit, self.locks.sample(c)),
                timed(limit, self.errors.sample(c)),
                timed(limit, self.load.sample(c)),
                timed(limit, self.replication.sample(c)),
                timed(limit, self.maintenance.sample(c, tables)),
                timed(limit, self.statements.sample(c, tables)),
            );
            out.extend([
                ("locks", locks),
                ("errors", errors),
                ("load", load),
                ("replication", replication),
                ("maintenance", maintenance),
            ]);
            match statements {
                Ok(Some(s)) => out.push(("statements", Ok(s))),
                Ok(None) => {}
                Err(e) => out.push(("statements", Err(e))),
            }
        } else {
            let lost = || Err("no connection to the database".to_string());
            for name in ["locks", "errors", "load", "replication", "maintenance"] {
                out.push((name, lost()));
            }
        }
        if let Some(info) = self.statements.take_info() {
            self.reporter
                .report(&Event::Info(format!("monitors: {info}")));
        }
        if let Some(w) = &self.probe {
            let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
            out.push(("probe", w.sample(self.cfg.probe_window)));
        }
        out
    }

    /// Report every verdict with its figures (the status block, the status lines and the
    /// metrics show the latest; the reporters decide what is worth a line), and write an
    /// event row when the verdict changed.
    async fn tell(&mut self, report: &HealthReport) {
        let changed = report.state != self.last_state;
        self.reporter.report(&Event::Health(report.clone()));
        if !changed {
            return;
        }
        let kind = match report.state {
            HealthState::Ok => "resume",
            HealthState::Throttle => "throttle",
            HealthState::Pause => "pause",
        };
        let detail = json!({
            "state": report.state,
            "previous": self.last_state,
            "reasons": report.reasons,
            "figures": report.figures,
        });
        self.last_state = report.state;
        self.event(kind, detail).await;
    }

    async fn event(&self, kind: &str, detail: serde_json::Value) {
        let Some(c) = &self.client else { return };
        if let Err(e) = self
            .state
            .event(c, self.migration.as_deref(), kind, detail)
            .await
        {
            tracing::debug!("monitors: writing the {kind} event: {e}");
        }
    }

    /// The event row of a stop the hook decided.
    async fn flush_stop(&self) {
        if let Some(why) = self.board.take_stop() {
            self.reporter
                .report(&Event::Info(format!("monitors: stopping: {why}")));
            self.event("stop", json!({ "reason": why })).await;
        }
    }

    /// Say who ratchet waits on, when that changes.
    fn note_blockers(&mut self, observed: &[Observation]) {
        let Some((_, Ok(s))) = observed.iter().find(|(n, _)| *n == "locks") else {
            return;
        };
        let pids: Vec<String> = s
            .notes
            .iter()
            .map(|n| n.split(" (").next().unwrap_or(n).to_string())
            .collect();
        if pids != self.last_blockers && !s.notes.is_empty() {
            for n in &s.notes {
                self.reporter.report(&Event::Info(format!("monitors: {n}")));
            }
        }
        self.last_blockers = pids;
    }

    /// The runner's heartbeat: the report, each monitor's state, and their notes.
    async fn heartbeat(
        &self,
        report: &HealthReport,
        verdicts: &[Verdict],
        observed: &[Observation],
    ) {
        let Some(c) = &self.client else { return };
        let mut health = serde_json::to_value(report).unwrap_or_default();
        let monitors: serde_json::Map<String, serde_json::Value> = verdicts
            .iter()
            .map(|v| (v.monitor.to_string(), json!(v.state)))
            .collect();
        let notes: serde_json::Map<String, serde_json::Value> = observed
            .iter()
            .filter_map(|(n, s)| s.as_ref().ok().map(|s| (n.to_string(), json!(s.notes))))
            .filter(|(_, v)| v.as_array().is_some_and(|a| !a.is_empty()))
            .collect();
        health["monitors"] = monitors.into();
        health["notes"] = notes.into();
        if let Err(e) = self
            .state
            .heartbeat(c, self.migration.as_deref(), &health)
            .await
        {
            tracing::warn!("monitors: writing the heartbeat: {e}");
        }
    }
}

/// A sampler's result within `limit`; a failure or a timeout becomes its message.
async fn timed<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(db_message(&e)),
        Err(_) => Err(format!("no answer within {:.1} s", limit.as_secs_f64())),
    }
}
