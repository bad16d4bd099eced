//! `ratchet bench throttle`: what the health monitors buy a concurrent workload during a
//! backfill, in one run on the same server: a TPC-B-like workload (pgbench's tables,
//! `--clients` sessions) alone, then the same backfill of `--rows` rows alone and beside
//! the workload, each with the monitors off and on. It prints the workload's throughput
//! and p50/p99 latency and the backfill's rows/s of each phase side by side, the ratios
//! the goals are stated in, and the monitors' own cost: the queries per second they
//! issue (measured on an otherwise idle server from `pg_stat_database`) and their share
//! of the server's CPU time during the throttled backfill (from `/proc`, when the server
//! runs on this machine).
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use ratchet_engine::monitor::Monitors;
use ratchet_engine::state::State;
use ratchet_engine::{Config, Engine, Event, Reporter};
use ratchet_scratch::connect;
use tokio_postgres::Client;

use crate::bench::StepClock;
use crate::output::line;

#[derive(clap::Args, Debug)]
pub struct ThrottleBench {
    /// Rows of the backfilled table.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: i64,
    /// Sessions of the TPC-B-like workload.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// pgbench scale of the workload's tables (100,000 accounts each).
    #[arg(long, default_value_t = 10)]
    pub scale: i64,
    /// How long the workload runs alone for its baseline.
    #[arg(long, default_value = "10s", value_parser = crate::engine_cmd::parse_duration)]
    pub baseline: Duration,
    /// The monitors' threshold on the probe's p99 against its baseline (the goal of the
    /// workload's p99 during a throttled backfill is 1.5× its baseline).
    #[arg(long, default_value_t = 1.5)]
    pub max_probe_ratio: f64,
    /// How long the monitors run alone to count their queries.
    #[arg(long, default_value = "10s", value_parser = crate::engine_cmd::parse_duration)]
    pub monitors_alone: Duration,
    /// Use this (disposable) database instead of a throwaway cluster.
    #[arg(long, env = "RATCHET_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// The probe the monitors time: one account written by its key and committed, as the
/// workload writes it (a read would not feel what slows writers: WAL, commits). The
/// random key is in a subquery, evaluated once: `aid = <volatile expression>` would be
/// checked row by row, a sequential scan.
fn probe_sql(scale: i64) -> String {
    format!(
        "UPDATE pgbench_accounts SET abalance = abalance WHERE aid = (SELECT 1 + (random() * {})::int)",
        scale * 100_000 - 1
    )
}

/// The workload's p99 is under a millisecond: the ratios' floor (1 ms by default, where a
/// ratio against a few microseconds is noise) would make 1.5× mean 1.5 ms.
const RATIO_FLOOR_MS: f64 = 0.1;

/// The phases' rows, each printed as it is added.
struct Rows(Vec<Row>);

impl Rows {
    fn push(&mut self, r: Row) {
        let (tps, p50, p99) = match r.workload {
            Some(w) => (
                format!("{:.0}", w.tps),
                format!("{:.2}", w.p50_ms),
                format!("{:.2}", w.p99_ms),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let rps = r.rows_per_s.map_or("-".into(), |v| format!("{v:.0}"));
        line(format!(
            "{:<38} {tps:>12} {p50:>9} {p99:>9} {rps:>16}",
            r.phase
        ));
        self.0.push(r);
    }
}

/// One phase's figures.
struct Row {
    phase: &'static str,
    workload: Option<WorkloadFigures>,
    rows_per_s: Option<f64>,
}

#[derive(Clone, Copy)]
struct WorkloadFigures {
    tps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

pub async fn run(b: &ThrottleBench) -> anyhow::Result<i32> {
    let (cluster, url) = crate::bench::server(b.database_url.as_deref()).await?;
    let bin = match &cluster {
        Some(c) => c.bin_dir().to_path_buf(),
        None => ratchet_scratch::find_bin_dir().ok_or_else(|| {
            anyhow::anyhow!("pgbench not found: set RATCHET_PG_BIN to the server binaries")
        })?,
    };
    let c = connect(&url).await?;
    line(format!(
        "pgbench tables at scale {} ({} accounts), {} workload sessions, {} rows backfilled",
        b.scale,
        b.scale * 100_000,
        b.clients,
        b.rows
    ));
    let init = std::process::Command::new(bin.join("pgbench"))
        .args(["-i", "-q", "-s", &b.scale.to_string()])
        .arg(&url)
        .output()?;
    anyhow::ensure!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );

    // Each phase's row as it ends (a phase under a throttled backfill may take a while).
    line(format!(
        "\n{:<38} {:>12} {:>9} {:>9} {:>16}",
        "phase", "workload tps", "p50 ms", "p99 ms", "backfill rows/s"
    ));
    let mut rows = Rows(Vec::new());
    // 1. The workload alone.
    let w = Workload::start(&url, b.clients, b.scale).await?;
    tokio::time::sleep(b.baseline).await;
    let base = w.stop().await;
    rows.push(Row {
        phase: "workload alone (baseline)",
        workload: Some(base),
        rows_per_s: None,
    });
    // 2. The backfill alone, monitors off and on.
    let free = backfill(&c, &url, b, false, None).await?;
    rows.push(Row {
        phase: "backfill alone, monitors off",
        workload: None,
        rows_per_s: Some(free.rows_per_s),
    });
    let free_on = backfill(&c, &url, b, true, None).await?;
    rows.push(Row {
        phase: "backfill alone, monitors on",
        workload: None,
        rows_per_s: Some(free_on.rows_per_s),
    });
    // 3. Both at once, monitors off and on, each after the workload just before it.
    let w = Workload::start(&url, b.clients, b.scale).await?;
    let off = backfill(&c, &url, b, false, Some(&w)).await?;
    let during_off = w.stop().await;
    let before_off = off.before.unwrap_or(base);
    rows.push(Row {
        phase: "workload just before (monitors off)",
        workload: Some(before_off),
        rows_per_s: None,
    });
    rows.push(Row {
        phase: "backfill + workload, monitors off",
        workload: Some(during_off),
        rows_per_s: Some(off.rows_per_s),
    });
    let w = Workload::start(&url, b.clients, b.scale).await?;
    let on = backfill(&c, &url, b, true, Some(&w)).await?;
    let during_on = w.stop().await;
    let before_on = on.before.unwrap_or(base);
    rows.push(Row {
        phase: "workload just before (monitors on)",
        workload: Some(before_on),
        rows_per_s: None,
    });
    rows.push(Row {
        phase: "backfill + workload, monitors on",
        workload: Some(during_on),
        rows_per_s: Some(on.rows_per_s),
    });
    // 4. The monitors alone: their queries per second.
    let qps = monitors_qps(&c, &url, b).await?;

    line("");
    line(format!(
        "throttled backfill: workload p99 {:.2}× its p99 just before (goal ≤ 1.5×), throughput {:.0}% of just before (goal ≥ 80%); against the first baseline {:.2}× and {:.0}%",
        during_on.p99_ms / before_on.p99_ms,
        during_on.tps / before_on.tps * 100.0,
        during_on.p99_ms / base.p99_ms,
        during_on.tps / base.tps * 100.0
    ));
    line(format!(
        "unthrottled backfill: workload p99 {:.2}× its p99 just before, throughput {:.0}% of just before; against the first baseline {:.2}× and {:.0}%",
        during_off.p99_ms / before_off.p99_ms,
        during_off.tps / before_off.tps * 100.0,
        during_off.p99_ms / base.p99_ms,
        during_off.tps / base.tps * 100.0
    ));
    line(format!(
        "backfill rows/s: with the monitors and no workload {:.0}% of the unmonitored rate (goal ≥ 50% with headroom); beside the workload {:.0}% throttled, {:.0}% unthrottled",
        free_on.rows_per_s / free.rows_per_s * 100.0,
        on.rows_per_s / free.rows_per_s * 100.0,
        off.rows_per_s / free.rows_per_s * 100.0,
    ));
    let share = match on.monitor_cpu_share {
        Some(s) => format!("{:.2}% of the server's CPU time", s * 100.0),
        None => "CPU share not measured (the server is not on this machine)".into(),
    };
    line(format!(
        "monitors' health reports: beside the workload {}; alone {}",
        or_none(&on.verdicts),
        or_none(&free_on.verdicts)
    ));
    line(format!(
        "monitors' cost: {qps:.1} queries/s; during the throttled backfill {share} (goal under 2%)"
    ));
    Ok(0)
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "none"
    } else {
        s
    }
}

/// What one backfill phase measured.
struct Backfilled {
    rows_per_s: f64,
    /// The monitors' verdicts while it ran, e.g. `ok 3, throttle 12, pause 2`.
    verdicts: String,
    /// The monitors' sessions' share of the CPU time of every server process that lived
    /// through the phase.
    monitor_cpu_share: Option<f64>,
    /// The workload's figures over [`BEFORE`] just before the backfill began.
    before: Option<WorkloadFigures>,
}

/// How long the workload is measured just before a backfill beside it.
const BEFORE: Duration = Duration::from_secs(5);

/// Records how long the backfill step took ([`StepClock`]) and counts the monitors'
/// health reports by state.
#[derive(Default)]
struct Clock {
    step: StepClock,
    health: Mutex<HashMap<String, u64>>,
}

impl Reporter for Clock {
    fn report(&self, e: &Event) {
        self.step.report(e);
        if let Event::Health(h) = e {
            *self
                .health
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(format!("{:?}", h.state).to_lowercase())
                .or_default() += 1;
        }
    }
}

/// A fresh table of `b.rows` rows, the `add_column` with `up` started (its backfill
/// timed), then aborted.
async fn backfill(
    c: &Client,
    url: &str,
    b: &ThrottleBench,
    monitored: bool,
    workload: Option<&Workload>,
) -> anyhow::Result<Backfilled> {
    crate::bench::fresh_table(c, "bench_throttle", b.rows).await?;
    // (`fresh_table` vacuums and checkpoints it: neither lands in the middle of a phase.)
    let (_dir, m) = crate::bench::add_column_migration("bench_throttle")?;
    // The workload on the same server just before, with the table in place.
    let before = match workload {
        Some(w) => {
            w.reset();
            tokio::time::sleep(BEFORE).await;
            Some(w.snapshot())
        }
        None => None,
    };
    let mut config = Config::default();
    config.monitor.enabled = monitored;
    config.monitor.probe_sql = Some(probe_sql(b.scale));
    config.monitor.max_probe_ratio = b.max_probe_ratio;
    config.monitor.ratio_floor_ms = RATIO_FLOOR_MS;
    let clock = Arc::new(Clock::default());
    let mut engine = Engine::connect(url, config.clone(), clock.clone()).await?;
    let (monitors, hook) = Monitors::start(
        url,
        &config,
        clock.clone(),
        State {
            state_schema: config.state_schema.clone(),
            schema: config.schema.clone(),
        },
    )
    .await?;
    engine.set_throttle(hook);
    if let Some(w) = workload {
        w.reset();
    }
    let cpu_before = cpu_times(c).await;
    engine.start(&m).await?;
    let cpu_after = cpu_times(c).await;
    monitors.stop().await;
    engine.abort().await?;
    let seconds = clock.step.seconds();
    let monitor_cpu_share = match (monitored, cpu_before, cpu_after) {
        (true, Some(before), Some(after)) => Some(monitor_share(&before, &after)),
        _ => None,
    };
    let mut verdicts: Vec<(String, u64)> = clock
        .health
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    verdicts.sort();
    let verdicts = verdicts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Backfilled {
        rows_per_s: b.rows as f64 / seconds,
        verdicts,
        monitor_cpu_share,
        before,
    })
}

/// CPU ticks (user + system) of each server process by pid, with whether it is one of
/// the monitors' sessions; `None` when `/proc` does not show them (a remote server).
async fn cpu_times(c: &Client) -> Option<HashMap<i32, (u64, bool)>> {
    let rows = c
        .query(
            "SELECT pid, coalesce(application_name, '') LIKE 'ratchet monitor%' FROM pg_stat_activity",
            &[],
        )
        .await
        .ok()?;
    let mut out = HashMap::new();
    for r in rows {
        let pid: i32 = r.get(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command name (which may hold spaces) in parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        out.insert(pid, (ticks, r.get(1)));
    }
    Some(out)
}

fn monitor_share(before: &HashMap<i32, (u64, bool)>, after: &HashMap<i32, (u64, bool)>) -> f64 {
    let (mut ours, mut all) = (0u64, 0u64);
    for (pid, (t, monitor)) in after {
        let t0 = before.get(pid).map_or(0, |b| b.0);
        let d = t.saturating_sub(t0);
        all += d;
        if *monitor {
            ours += d;
        }
    }
    if all == 0 {
        0.0
    } else {
        ours as f64 / all as f64
    }
}

/// The monitors alone on an idle server for `b.monitors_alone`: the transactions the
/// database counts per second, less the two statements of the measurement itself.
async fn monitors_qps(c: &Client, url: &str, b: &ThrottleBench) -> anyhow::Result<f64> {
    let count = async || -> anyhow::Result<i64> {
        Ok(c.query_one(
            "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await?
        .get(0))
    };
    let mut config = Config::default();
    config.monitor.probe_sql = Some(probe_sql(b.scale));
    let (monitors, _hook) = Monitors::start(
        url,
        &config,
        Arc::new(ratchet_engine::Silent),
        State {
            state_schema: config.state_schema.clone(),
            schema: config.schema.clone(),
        },
    )
    .await?;
    // Statistics are flushed by each session at most once a second (15+) or on idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.batch_execute("SELECT pg_stat_clear_snapshot()").await?;
    let before = count().await?;
    let t = Instant::now();
    tokio::time::sleep(b.monitors_alone).await;
    c.batch_execute("SELECT pg_stat_clear_snapshot()").await?;
    let after = count().await?;
    let secs = t.elapsed().as_secs_f64();
    monitors.stop().await;
    Ok(((after - before) as f64 - 2.0).max(0.0) / secs)
}

/// The TPC-B-like workload: `clients` sessions, each running pgbench's default
/// transaction back to back with prepared statements, every latency kept.
struct Workload {
    stop: Arc<AtomicBool>,
    latencies: Arc<Mutex<Vec<u32>>>,
    since: Arc<Mutex<Instant>>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Workload {
    async fn start(url: &str, clients: usize, scale: i64) -> anyhow::Result<Workload> {
        let stop = Arc::new(AtomicBool::new(false));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let mut c = connect(url).await?;
            let (stop, latencies) = (stop.clone(), latencies.clone());
            tasks.push(tokio::spawn(async move {
                let acc = c
                    .prepare("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2")
                    .await?;
                let sel = c
                    .prepare("SELECT abalance FROM pgbench_accounts WHERE aid = $1")
                    .await?;
                let tel = c
                    .prepare("UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2")
                    .await?;
                let bra = c
                    .prepare("UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2")
                    .await?;
                let his = c
                    .prepare("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)")
                    .await?;
                while !stop.load(Ordering::Relaxed) {
                    let (aid, tid, bid, delta) = {
                        let mut r = rand::rng();
                        (
                            r.random_range(1..=scale as i32 * 100_000),
                            r.random_range(1..=scale as i32 * 10),
                            r.random_range(1..=scale as i32),
                            r.random_range(-5000..=5000i32),
                        )
                    };
                    let t = Instant::now();
                    let tx = c.transaction().await?;
                    tx.execute(&acc, &[&delta, &aid]).await?;
                    tx.query_one(&sel, &[&aid]).await?;
                    tx.execute(&tel, &[&delta, &tid]).await?;
                    tx.execute(&bra, &[&delta, &bid]).await?;
                    tx.execute(&his, &[&tid, &bid, &aid, &delta]).await?;
                    tx.commit().await?;
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    latencies.lock().unwrap_or_else(|p| p.into_inner()).push(us);
                }
                Ok(())
            }));
        }
        Ok(Workload {
            stop,
            latencies,
            since: Arc::new(Mutex::new(Instant::now())),
            tasks,
        })
    }

    /// Forget what was measured so far (the figures cover what follows).
    fn reset(&self) {
        self.latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        *self.since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// The figures since the last reset, while it goes on running.
    fn snapshot(&self) -> WorkloadFigures {
        let secs = self
            .since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            .as_secs_f64();
        let l = self
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        figures(l, secs)
    }

    async fn stop(self) -> WorkloadFigures {
        self.stop.store(true, Ordering::Relaxed);
        let secs = self
            .since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            .as_secs_f64();
        for t in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => line(format!("workload session failed: {e}")),
                Err(e) => line(format!("workload session panicked: {e}")),
            }
        }
        let l = std::mem::take(&mut *self.latencies.lock().unwrap_or_else(|p| p.into_inner()));
        figures(l, secs)
    }
}

/// Throughput and quantiles of `secs` seconds of latencies (µs).
fn figures(mut l: Vec<u32>, secs: f64) -> WorkloadFigures {
    l.sort_unstable();
    let q = |p: f64| -> f64 {
        if l.is_empty() {
            return f64::NAN;
        }
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l[i] as f64 / 1000.0
    };
    WorkloadFigures {
        tps: l.len() as f64 / secs,
        p50_ms: q(0.50),
        p99_ms: q(0.99),
    }
}
