//! What the commands that run steps and backfills (start, migrate, backfill, validate,
//! complete) show while they work: the live status (`--progress`, `--status-interval`)
//! and the Prometheus endpoint (`--metrics-addr`). Both receive every engine event.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ratchet_engine::{Engine, Reporter, Status};

use super::args::parse_duration;
use crate::live::reporter::{LiveReporter, ProgressMode, Tee};
use crate::metrics::Metrics;
use crate::output::err_line;

/// Progress and metrics options of the commands that run steps.
#[derive(clap::Args, Debug, Clone)]
pub struct ObserveArgs {
    /// Serve Prometheus metrics (text format, any path) at this address while the command
    /// runs, e.g. 127.0.0.1:9187. See docs/monitoring.md for the metrics.
    #[arg(long, value_name = "ADDR", env = "RATCHET_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// How progress is shown on stderr: the status block on a terminal and plain lines
    /// otherwise (auto), always the block, always plain lines, or one JSON object per
    /// event.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Time between two status lines when the progress is plain lines, or two `status`
    /// objects when it is JSON (0: none).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub status_interval: Duration,
}

/// The reporters of one command.
pub struct Observe {
    pub live: Arc<LiveReporter>,
    metrics: Option<Arc<Metrics>>,
}

impl Observe {
    /// The output reporter, and the metrics endpoint when asked for (bound now: a port in
    /// use fails the command before it starts anything).
    pub async fn start(a: &ObserveArgs, workers: usize) -> anyhow::Result<Observe> {
        let live = LiveReporter::new(a.progress, a.status_interval);
        live.hint_workers(workers);
        let Some(addr) = a.metrics_addr else {
            return Ok(Observe {
                live,
                metrics: None,
            });
        };
        let metrics = Arc::new(Metrics::new());
        metrics.set_workers(workers);
        let bound = crate::metrics::serve(addr, metrics.clone())
            .await
            .with_context(|| format!("serving metrics at {addr} (--metrics-addr)"))?;
        err_line(format!("  metrics: http://{bound}/metrics"));
        Ok(Observe {
            live,
            metrics: Some(metrics),
        })
    }

    /// What the engine reports to.
    pub fn reporter(&self) -> Arc<dyn Reporter> {
        match &self.metrics {
            None => self.live.clone(),
            Some(m) => Arc::new(Tee(vec![self.live.clone(), m.clone()])),
        }
    }

    /// "step 3/5": the steps of the active migration (or of `plan`, a migration about to
    /// start).
    pub fn hint_status(&self, st: &Status) {
        let Some(active) = &st.active else {
            return;
        };
        self.live.hint_migration(&active.name);
        for phase in ["start", "complete", "abort"] {
            let steps = active.steps.iter().filter(|s| s.phase.as_str() == phase);
            self.live
                .hint_steps(phase, steps.map(|s| s.index).collect());
        }
    }

    /// The same for a plan (a `start` that is not resumed).
    pub fn hint_plan(&self, plan: &ratchet_engine::Plan) {
        self.live.hint_plan_of(plan);
    }

    /// Hints from the engine: the active migration's steps.
    pub async fn hint_engine(&self, engine: &Engine) {
        if let Ok(st) = engine.status().await {
            self.hint_status(&st);
        }
    }

    /// Count a failure in the metrics and take the block off the screen before the
    /// error is printed.
    pub fn finish<T>(&self, r: anyhow::Result<T>) -> anyhow::Result<T> {
        if r.is_err() {
            if let Some(m) = &self.metrics {
                m.fatal();
            }
        }
        self.live.end();
        r
    }
}
