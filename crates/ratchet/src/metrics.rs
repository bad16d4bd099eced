//! `--metrics-addr`: Prometheus metrics of the running migration, kept up to date from
//! the engine's events (a [`Reporter`] beside the output one) and served over HTTP while
//! ratchet runs. prometheus-client (the official Rust client) keeps the registry and
//! writes the text format; hyper serves it, every path answering the same page.
//!
//! The names, types and labels are listed in docs/monitoring.md; the Grafana dashboard
//! in docs/grafana/ uses them.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use ratchet_engine::report::{HealthReport, HealthState};
use ratchet_engine::{Event, Reporter};

type GaugeF = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MonitorLabel {
    monitor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SqlstateLabel {
    sqlstate: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabel {
    quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FigureLabel {
    name: String,
}

/// The registry and the metrics the events move.
pub struct Metrics {
    registry: Registry,
    rows_backfilled: Family<TableLabel, Counter>,
    rows_done: Family<TableLabel, Gauge>,
    rows_expected: Family<TableLabel, Gauge>,
    rows_per_second: Family<TableLabel, GaugeF>,
    rows_validated: Family<TableLabel, Gauge>,
    validation_mismatches: Family<TableLabel, Gauge>,
    batch_duration: Histogram,
    batch_size: Family<TableLabel, Gauge>,
    workers: Gauge,
    health: Family<MonitorLabel, Gauge>,
    lock_waits_caused: Gauge,
    lock_wait_max: GaugeF,
    probe_latency: Family<QuantileLabel, GaugeF>,
    replication_lag: GaugeF,
    figures: Family<FigureLabel, GaugeF>,
    retries: Family<SqlstateLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    steps_done: Family<PhaseLabel, Counter>,
    step_running: Gauge,
    /// The highest `rows_done` seen per table: events of several workers may come out
    /// of order, and a counter only goes up.
    seen: Mutex<Vec<(String, u64)>>,
    /// Monitors named in a reason earlier: set back to ok when no reason names them.
    monitors: Mutex<BTreeSet<String>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ratchet");
        let m = Metrics {
            rows_backfilled: Family::default(),
            rows_done: Family::default(),
            rows_expected: Family::default(),
            rows_per_second: Family::default(),
            rows_validated: Family::default(),
            validation_mismatches: Family::default(),
            // 1 ms to 16 s: a batch aims at --batch-target (200 ms by default).
            batch_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            batch_size: Family::default(),
            workers: Gauge::default(),
            health: Family::default(),
            lock_waits_caused: Gauge::default(),
            lock_wait_max: GaugeF::default(),
            probe_latency: Family::default(),
            replication_lag: GaugeF::default(),
            figures: Family::default(),
            retries: Family::default(),
            errors: Family::default(),
            steps_done: Family::default(),
            step_running: Gauge::default(),
            seen: Mutex::new(Vec::new()),
            monitors: Mutex::new(BTreeSet::new()),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "rows_backfilled",
            "Rows the backfill wrote since this process started",
            m.rows_backfilled.clone(),
        );
        r.register(
            "validation_rows_checked",
            "Rows the running validation of the table has checked",
            m.rows_validated.clone(),
        );
        r.register(
            "validation_mismatches",
            "Rows the running validation of the table found inconsistent",
            m.validation_mismatches.clone(),
        );
        r.register(
            "backfill_rows_done",
            "Rows of the backfill done, this run and earlier ones",
            m.rows_done.clone(),
        );
        r.register(
            "backfill_rows_expected",
            "Rows the backfill is expected to write in all (an estimate taken at its start)",
            m.rows_expected.clone(),
        );
        r.register(
            "backfill_rows_per_second",
            "Backfill rate since this process started it",
            m.rows_per_second.clone(),
        );
        r.register(
            "backfill_batch_duration_seconds",
            "How long each backfill batch took",
            m.batch_duration.clone(),
        );
        r.register(
            "backfill_batch_size",
            "Rows in the latest backfill batch",
            m.batch_size.clone(),
        );
        r.register(
            "backfill_workers",
            "Backfill workers configured",
            m.workers.clone(),
        );
        r.register(
            "health_state",
            "Health verdict: 0 ok, 1 throttle, 2 pause; monitor=\"overall\" is the policy's",
            m.health.clone(),
        );
        r.register(
            "lock_waits_caused",
            "Sessions waiting on a lock a ratchet session holds",
            m.lock_waits_caused.clone(),
        );
        r.register(
            "lock_wait_max_seconds",
            "Longest wait of a session on a lock ratchet holds",
            m.lock_wait_max.clone(),
        );
        r.register(
            "probe_latency_seconds",
            "Latency of the probe query over the monitors' window, by quantile",
            m.probe_latency.clone(),
        );
        r.register(
            "replication_lag_seconds",
            "Replay lag of the slowest standby",
            m.replication_lag.clone(),
        );
        r.register(
            "health_figure",
            "Every figure of the latest health report, by name (as the monitors name it)",
            m.figures.clone(),
        );
        r.register(
            "retries",
            "Statements retried after a transient error, by SQLSTATE",
            m.retries.clone(),
        );
        r.register(
            "errors",
            "Errors: retryable ones (retried) and fatal ones (the command failed)",
            m.errors.clone(),
        );
        r.register(
            "steps_done",
            "Steps finished, by phase",
            m.steps_done.clone(),
        );
        r.register(
            "step_running",
            "The index of the step that runs now, -1 between steps",
            m.step_running.clone(),
        );
        m.step_running.set(-1);
        m.health
            .get_or_create(&MonitorLabel {
                monitor: "overall".into(),
            })
            .set(0);
        Metrics { registry, ..m }
    }

    /// The metrics in the text exposition format (OpenMetrics, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The command failed: counted before the process ends.
    pub fn fatal(&self) {
        self.errors
            .get_or_create(&KindLabel {
                kind: "fatal".into(),
            })
            .inc();
    }

    pub fn set_workers(&self, workers: usize) {
        self.workers.set(workers as i64);
    }

    fn backfill(&self, table: &str, rows_done: u64, batch_size: i64) {
        let label = TableLabel {
            table: table.to_string(),
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let delta = match seen.iter_mut().find(|(t, _)| t == table) {
            Some((_, max)) => {
                let d = rows_done.saturating_sub(*max);
                *max = (*max).max(rows_done);
                d
            }
            None => {
                seen.push((table.to_string(), rows_done));
                // The first batch of this process: its rows, not those of earlier runs.
                rows_done.min(batch_size.max(0) as u64)
            }
        };
        self.rows_backfilled.get_or_create(&label).inc_by(delta);
    }

    fn health(&self, h: &HealthReport) {
        let level = |s: HealthState| match s {
            HealthState::Ok => 0,
            HealthState::Throttle => 1,
            HealthState::Pause => 2,
        };
        let set = |monitor: &str, v: i64| {
            self.health
                .get_or_create(&MonitorLabel {
                    monitor: monitor.to_string(),
                })
                .set(v);
        };
        set("overall", level(h.state));
        let mut known = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        let named: BTreeSet<String> = h.reasons.iter().map(|r| monitor_of(r)).collect();
        for m in known.iter().filter(|m| !named.contains(*m)) {
            set(m, 0);
        }
        for m in &named {
            set(m, level(h.state));
        }
        known.extend(named);
        self.figures(h);
    }

    fn figures(&self, h: &HealthReport) {
        for (name, v) in &h.figures {
            self.figures
                .get_or_create(&FigureLabel { name: name.clone() })
                .set(*v);
        }
        let fig = |n: &str| h.figures.get(n).copied();
        if let Some(v) = fig("lock_waits_caused") {
            self.lock_waits_caused.set(v as i64);
        }
        if let Some(v) = fig("lock_wait_max_ms") {
            self.lock_wait_max.set(v / 1000.0);
        }
        for (q, name) in [("0.5", "probe_p50_ms"), ("0.99", "probe_p99_ms")] {
            if let Some(v) = fig(name) {
                self.probe_latency
                    .get_or_create(&QuantileLabel { quantile: q.into() })
                    .set(v / 1000.0);
            }
        }
        if let Some(v) = fig("replication_lag_s") {
            self.replication_lag.set(v);
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The monitor a reason comes from: its first word ("probe p99 84 ms > 50 ms" → probe),
/// or what stands before a colon ("locks: 3 sessions wait" → locks).
fn monitor_of(reason: &str) -> String {
    let head = reason.split([':', ' ']).next().unwrap_or_default();
    let name: String = head
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    match name.is_empty() {
        true => "other".into(),
        false => name,
    }
}

impl Reporter for Metrics {
    fn report(&self, event: &Event) {
        match event {
            Event::StepStarted { step, .. } => {
                self.step_running.set(*step as i64);
            }
            Event::StepDone { phase, .. } => {
                self.step_running.set(-1);
                self.steps_done
                    .get_or_create(&PhaseLabel {
                        phase: phase.as_str().into(),
                    })
                    .inc();
            }
            Event::Retry { sqlstate, .. } => {
                self.retries
                    .get_or_create(&SqlstateLabel {
                        sqlstate: sqlstate.clone(),
                    })
                    .inc();
                self.errors
                    .get_or_create(&KindLabel {
                        kind: "retryable".into(),
                    })
                    .inc();
            }
            Event::Backfill {
                table,
                rows_done,
                rows_total,
                rows_per_second,
                batch_size,
                batch_duration,
            } => {
                self.backfill(table, *rows_done, *batch_size);
                let label = TableLabel {
                    table: table.clone(),
                };
                self.rows_done.get_or_create(&label).set(*rows_done as i64);
                if let Some(t) = rows_total {
                    self.rows_expected.get_or_create(&label).set(*t as i64);
                }
                self.rows_per_second
                    .get_or_create(&label)
                    .set(*rows_per_second);
                self.batch_size.get_or_create(&label).set(*batch_size);
                self.batch_duration.observe(batch_duration.as_secs_f64());
            }
            Event::Validate {
                table,
                rows_checked,
                mismatches,
                ..
            } => {
                let label = TableLabel {
                    table: table.clone(),
                };
                self.rows_validated
                    .get_or_create(&label)
                    .set(*rows_checked as i64);
                self.validation_mismatches
                    .get_or_create(&label)
                    .set(*mismatches as i64);
            }
            Event::Health(h) => self.health(h),
            Event::StepSkipped { .. } | Event::Held(_) | Event::Info(_) => {}
        }
    }
}

/// Serve `metrics` at `addr` (every path) until the process ends. Binds before it
/// returns, so that a port in use fails the command at once; returns the bound address.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let body = metrics.encode();
                    async move { answer(body) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn answer(
    body: String,
) -> Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>, std::convert::Infallible> {
    let mut res = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(body)));
    res.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ratchet_engine::report::{HealthReport, HealthState};
    use ratchet_engine::{Event, Phase, Reporter};

    use super::{monitor_of, Metrics};

    fn batch(rows_done: u64) -> Event {
        Event::Backfill {
            table: "items".into(),
            rows_done,
            rows_total: Some(1000),
            rows_per_second: 100.0,
            batch_size: 100,
            batch_duration: Duration::from_millis(30),
        }
    }

    #[test]
    fn events_move_the_metrics() {
        let m = Metrics::new();
        // A resumed backfill: 500 rows were done by an earlier run.
        for e in [
            Event::StepStarted {
                phase: Phase::Start,
                step: 1,
                description: "backfill".into(),
            },
            batch(600),
            batch(700),
            Event::Retry {
                description: "d".into(),
                attempt: 1,
                wait: Duration::ZERO,
                sqlstate: "55P03".into(),
                message: "m".into(),
                blockers: vec![],
            },
            Event::Health(HealthReport {
                state: HealthState::Throttle,
                reasons: vec!["probe p99 84 ms > 50 ms".into()],
                figures: [("probe_p99_ms".to_string(), 84.0)].into_iter().collect(),
            }),
            Event::StepDone {
                phase: Phase::Start,
                step: 1,
                description: "backfill".into(),
                duration: Duration::from_secs(1),
                attempts: 1,
            },
        ] {
            m.report(&e);
        }
        let text = m.encode();
        for line in [
            "ratchet_rows_backfilled_total{table=\"items\"} 200",
            "ratchet_backfill_rows_done{table=\"items\"} 700",
            "ratchet_backfill_rows_expected{table=\"items\"} 1000",
            "ratchet_backfill_batch_duration_seconds_count 2",
            "ratchet_retries_total{sqlstate=\"55P03\"} 1",
            "ratchet_health_state{monitor=\"overall\"} 1",
            "ratchet_health_state{monitor=\"probe\"} 1",
            "ratchet_probe_latency_seconds{quantile=\"0.99\"} 0.084",
            "ratchet_steps_done_total{phase=\"start\"} 1",
            "ratchet_step_running -1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // Back to healthy: the probe monitor is ok again.
        m.report(&Event::Health(HealthReport {
            state: HealthState::Ok,
            reasons: vec![],
            figures: Default::default(),
        }));
        assert!(m
            .encode()
            .contains("ratchet_health_state{monitor=\"probe\"} 0"));
    }

    #[test]
    fn monitors_are_named_by_the_reasons_first_word() {
        assert_eq!(monitor_of("probe p99 84 ms > 50 ms"), "probe");
        assert_eq!(monitor_of("Replication: lag 12 s"), "replication");
        assert_eq!(monitor_of(""), "other");
    }
}
