//! `ratchet bench throttle`: what the health monitors buy a concurrent workload during a
//! backfill, in one run on the same server: a TPC-B-like workload (pgbench's tables,
//! `--clients` sessions) alone, then the same backfill of `--rows` rows alone and beside
//! the workload, each with the monitors off and on. It prints the workload's throughput
//! and p50/p99 latency and the backfill's rows/s of each phase side by side, the ratios
//! the goals are stated in, and the monitors' own cost: the queries per second they
//! issue (measured on an otherwise idle server from `pg_stat_database`) and their share
//! of the server's CPU time during the throttled backfill (from `/proc`, when the server
//! runs on this machine). The monitors' probe also runs on its own, on the idle server and
//! beside the unmonitored backfill alone: whether the backfill alone leaves the headroom
//! the goal for the monitored backfill alone assumes.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use ratchet_engine::backfill::{BatchStats, Decision, NoThrottle, Throttle, Throttles};
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
    /// How long the workload is measured just before and just after each backfill beside
    /// it (and beside the monitors alone), and the probe alone on the idle server. The
    /// throttled backfill runs longer: windows of about its length compare like with
    /// like (a longer window holds more of the workload's own tail events, e.g.
    /// autovacuum of its tables).
    #[arg(long, default_value = "10s", value_parser = crate::engine_cmd::parse_duration)]
    pub beside: Duration,
    /// Beside the workload, the backfill is paused and resumed in turns of this long
    /// (between batches), and the workload's figures of the windows with it paused are
    /// the baseline measured under the same conditions: the same minutes of autovacuum,
    /// table growth and machine noise. 0s runs it without a break.
    #[arg(long, default_value = "10s", value_parser = crate::engine_cmd::parse_duration)]
    pub interleave: Duration,
    /// The monitors' `ratio_floor_ms` (probe baselines under it count as this long):
    /// about the workload's own p99 alone. Under the workload the probe's baseline is
    /// above it and the ratio rules; on an idle server it keeps the backfill from being
    /// throttled for raising a 0.2 ms probe past 1 ms (at 1.0 ms the backfill alone ran
    /// at 3% of its rate; the default 5 ms lets the workload's p99 triple).
    #[arg(long, default_value_t = 1.5)]
    pub ratio_floor_ms: f64,
    /// How long the monitors run alone to count their queries.
    #[arg(long, default_value = "10s", value_parser = crate::engine_cmd::parse_duration)]
    pub monitors_alone: Duration,
    /// Use this (disposable) database instead of a throwaway cluster.
    #[arg(long, env = "RATCHET_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// The probe the monitors time: a transaction shaped like the workload's, one round trip
/// per statement (as the monitors run it) and committed, so that it feels what slows the
/// workload's transactions: round trips through a busy server, WAL, commits. Its writes
/// go to random accounts (a random key in a subquery, evaluated once: `aid = <volatile
/// expression>` would be checked row by row, a sequential scan) where the workload
/// updates a teller and a branch. (The workload's whole transaction as the probe was
/// tried: it waits on the row locks of the ten branches every transaction updates, its
/// p99 swings from 2 to 50 ms with the workload alone, and the backfill stayed paused at
/// 100-row batches for 20 minutes. A single-row `UPDATE` in one round trip, the probe
/// until runs 1-8 of the docs' table, stayed near its budget while the workload's p99 rose
/// past 1.5x in two of seven runs.)
fn probe_sql(scale: i64) -> String {
    let aid = format!("(SELECT 1 + (random() * {})::int)", scale * 100_000 - 1);
    format!(
        "BEGIN; \
         UPDATE pgbench_accounts SET abalance = abalance WHERE aid = {aid}; \
         SELECT abalance FROM pgbench_accounts WHERE aid = {aid}; \
         UPDATE pgbench_accounts SET abalance = abalance WHERE aid = {aid}; \
         UPDATE pgbench_accounts SET abalance = abalance WHERE aid = {aid}; \
         INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (0, 0, 0, 0, now()); \
         COMMIT"
    )
}

/// How often the probe runs: twenty results a second, so that the slowest of the last
/// second (what the pacer compares with its budget) lies near the workload's tail, and
/// the baseline's p99 is not merely its slowest result. Twenty small transactions a
/// second beside the workload's thousands.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// The smallest ratio floor `--ratio-floor-ms` takes.
const MIN_RATIO_FLOOR_MS: f64 = 0.01;

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
    let first = w.stop().await;
    rows.push(Row {
        phase: "workload alone (baseline)",
        workload: Some(first),
        rows_per_s: None,
    });
    let floor = b.ratio_floor_ms.max(MIN_RATIO_FLOOR_MS);
    // 2. The backfill alone, monitors off and on. Beside the unmonitored one the
    // monitors' probe runs on its own, as on an idle server before and after: whether
    // the backfill alone leaves the probe within the budget the monitors would give it
    // (headroom), or already takes the machine's spare capacity.
    let probe = Workload::probe(&url, probe_sql(b.scale), PROBE_INTERVAL).await?;
    tokio::time::sleep(b.beside).await;
    let idle = probe.take();
    let free = backfill(&c, &url, b, floor, false, None, Some(&probe)).await?;
    probe.stop().await;
    let Some(idle_during) = free.probe else {
        anyhow::bail!("the probe was not measured beside the backfill")
    };
    rows.push(Row {
        phase: "probe alone (idle server)",
        workload: Some(idle),
        rows_per_s: None,
    });
    rows.push(Row {
        phase: "backfill alone, monitors off",
        workload: None,
        rows_per_s: Some(free.rows_per_s),
    });
    rows.push(Row {
        phase: "  its probe beside it",
        workload: Some(idle_during),
        rows_per_s: None,
    });
    let free_on = backfill(&c, &url, b, floor, true, None, None).await?;
    rows.push(Row {
        phase: "backfill alone, monitors on",
        workload: None,
        rows_per_s: Some(free_on.rows_per_s),
    });
    // 3. Both at once, monitors off and on, the workload measured just before and just
    // after each (the lower p99 of the two is its baseline) and, monitors on, beside the
    // monitors alone.
    let mut beside = Vec::new();
    for monitored in [false, true] {
        let w = Workload::start(&url, b.clients, b.scale).await?;
        let mut run = backfill(&c, &url, b, floor, monitored, Some(&w), None).await?;
        w.stop().await;
        let Some(s) = run.beside.take() else {
            anyhow::bail!("the workload was not measured beside the backfill")
        };
        let paused = "  turns with the backfill paused";
        let (before, after, monitors, during) = if monitored {
            (
                "workload just before (monitors on)",
                "workload just after (monitors on)",
                Some("workload + monitors, no backfill yet"),
                "backfill + workload, monitors on",
            )
        } else {
            (
                "workload just before (monitors off)",
                "workload just after (monitors off)",
                None,
                "backfill + workload, monitors off",
            )
        };
        rows.push(Row {
            phase: before,
            workload: Some(s.before),
            rows_per_s: None,
        });
        if let (Some(phase), Some(m)) = (monitors, s.monitors) {
            rows.push(Row {
                phase,
                workload: Some(m),
                rows_per_s: None,
            });
        }
        rows.push(Row {
            phase: during,
            workload: Some(s.during),
            rows_per_s: Some(run.rows_per_s),
        });
        if let Some((p, _)) = s.paused {
            rows.push(Row {
                phase: paused,
                workload: Some(p),
                rows_per_s: None,
            });
        }
        rows.push(Row {
            phase: after,
            workload: Some(s.after),
            rows_per_s: None,
        });
        beside.push((run, s));
    }
    let ((off, off_s), (on, on_s)) = (&beside[0], &beside[1]);
    // 4. The monitors alone: their queries per second.
    let qps = monitors_qps(&c, &url, b).await?;

    line("");
    for (what, run, s) in [("throttled", on, on_s), ("unthrottled", off, off_s)] {
        // The baseline is the stricter of the windows on either side (the workload drifts
        // as its tables grow and autovacuum visits them, and the backfill leaves work
        // behind it: a window that caught either would flatter the ratio).
        let (during, before, after) = (s.during, s.before, s.after);
        let base_side = if before.p99_ms <= after.p99_ms {
            before
        } else {
            after
        };
        // Pooled turns with the backfill paused see the same minutes as the turns with
        // it running: the fairest baseline, when there are any.
        let (base, base_name) = match s.paused {
            Some((p, n)) => (
                p,
                format!(
                    "its baseline (the {n} turns of {:.0} s with the backfill paused, pooled)",
                    b.interleave.as_secs_f64()
                ),
            ),
            None => (
                base_side,
                "its baseline (the lower p99 of just before and just after)".to_string(),
            ),
        };
        line(format!(
            "{what} backfill: workload p99 {:.2}× {base_name} (goal ≤ 1.5×), throughput {:.0}% of it (goal ≥ 80%); against the lower p99 of just before and just after {:.2}× and {:.0}%, just before {:.2}× and {:.0}%, just after {:.2}× and {:.0}%, the first baseline {:.2}× and {:.0}%",
            during.p99_ms / base.p99_ms,
            during.tps / base.tps * 100.0,
            during.p99_ms / base_side.p99_ms,
            during.tps / base_side.tps * 100.0,
            during.p99_ms / before.p99_ms,
            during.tps / before.tps * 100.0,
            during.p99_ms / after.p99_ms,
            during.tps / after.tps * 100.0,
            during.p99_ms / first.p99_ms,
            during.tps / first.tps * 100.0
        ));
        if let Some(bt) = &run.batches {
            line(format!("  {what}: {bt}"));
        }
    }
    if let Some(m) = on_s.monitors {
        line(format!(
            "monitors alone beside the workload: p99 {:.2}× and throughput {:.0}% of just before",
            m.p99_ms / on_s.before.p99_ms,
            m.tps / on_s.before.tps * 100.0
        ));
    }
    line(format!(
        "backfill rows/s: with the monitors and no workload {:.0}% of the unmonitored rate (goal ≥ 50% with headroom); beside the workload {:.0}% throttled, {:.0}% unthrottled",
        free_on.rows_per_s / free.rows_per_s * 100.0,
        on.rows_per_s / free.rows_per_s * 100.0,
        off.rows_per_s / free.rows_per_s * 100.0,
    ));
    line(headroom(idle, idle_during, floor, b.max_probe_ratio));
    let share = match on.monitor_cpu_share {
        Some(s) => format!(
            "{:.2}% of the server's CPU time (the samplers {:.2}%, the probe {:.2}%)",
            (s.samplers + s.probe) * 100.0,
            s.samplers * 100.0,
            s.probe * 100.0
        ),
        None => "CPU share not measured (the server is not on this machine)".into(),
    };
    line(format!(
        "monitors' verdicts (one per sample): beside the workload {} ({}); alone {} ({})",
        or_none(&on.verdicts),
        or_none(&on.reasons),
        or_none(&free_on.verdicts),
        or_none(&free_on.reasons)
    ));
    line(format!(
        "monitors' cost: {qps:.1} queries/s; during the throttled backfill {share} (goal under 2%)"
    ));
    line(format!(
        "probe threshold: {}× its baseline, baselines under {floor:.2} ms counting as {floor:.2} ms (ratio_floor_ms)",
        b.max_probe_ratio
    ));
    Ok(0)
}

/// Whether the backfill alone left the probe within the budget the monitors give it on
/// the idle server (their baseline under the floor counts as the floor): the condition of
/// the goal for the monitored backfill alone.
fn headroom(idle: WorkloadFigures, beside: WorkloadFigures, floor_ms: f64, ratio: f64) -> String {
    let budget = idle.p99_ms.max(floor_ms) * ratio;
    let head = format!(
        "headroom: the probe's p99 {:.2} ms alone, {:.2} ms beside the unmonitored backfill alone, against a budget of {budget:.2} ms",
        idle.p99_ms, beside.p99_ms
    );
    if beside.p99_ms <= budget {
        format!("{head}: the backfill alone leaves headroom (the goal of ≥ 50% applies)")
    } else {
        format!(
            "{head}: the backfill alone already takes the spare capacity (the monitors hold it to the budget, as they should; the goal of ≥ 50% applies with headroom)"
        )
    }
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
    /// Their reasons by monitor, e.g. `probe p99 12`.
    reasons: String,
    batches: Option<Batches>,
    /// The monitors' sessions' share of the CPU time of every server process that lived
    /// through the phase.
    monitor_cpu_share: Option<CpuShare>,
    /// The workload beside it, when there was one.
    beside: Option<Beside>,
    /// The probe's figures beside it, when it ran on its own.
    probe: Option<WorkloadFigures>,
}

/// The workload's figures around and during one backfill.
struct Beside {
    /// Over `--beside` just before the backfill (and the monitors) began.
    before: WorkloadFigures,
    /// Over `--beside` with the monitors running, before the backfill began.
    monitors: Option<WorkloadFigures>,
    /// With the backfill running (its turns on, when `--interleave` pauses it in turns).
    during: WorkloadFigures,
    /// The turns with the backfill paused, pooled, and how many there were.
    paused: Option<(WorkloadFigures, u32)>,
    /// Over `--beside` just after the backfill step ended.
    after: WorkloadFigures,
}

/// The backfill's batches in one phase.
#[derive(Clone, Copy)]
struct Batches {
    count: u64,
    mean_ms: f64,
    mean_rows: f64,
    /// The share of the phase a batch was running (one worker): the backfill's duty.
    busy_share: f64,
}

impl std::fmt::Display for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} batches of {:.0} rows in {:.0} ms on average, running {:.0}% of the time",
            self.count,
            self.mean_rows,
            self.mean_ms,
            self.busy_share * 100.0
        )
    }
}

/// Records how long the backfill step took ([`StepClock`]), counts the monitors' health
/// reports by state and their reasons by monitor, and sums the batches' times.
#[derive(Default)]
struct Clock {
    step: StepClock,
    health: Mutex<HashMap<String, u64>>,
    reasons: Mutex<HashMap<String, u64>>,
    batches: Mutex<(u64, Duration, i64)>,
}

impl Reporter for Clock {
    fn report(&self, e: &Event) {
        self.step.report(e);
        match e {
            Event::Health(h) => {
                *self
                    .health
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(format!("{:?}", h.state).to_lowercase())
                    .or_default() += 1;
                let mut r = self.reasons.lock().unwrap_or_else(|p| p.into_inner());
                for why in &h.reasons {
                    // The words before the first figure: "probe p99", "lock waits".
                    let head = why
                        .split_whitespace()
                        .take_while(|w| !w.starts_with(|c: char| c.is_ascii_digit()))
                        .collect::<Vec<_>>()
                        .join(" ");
                    *r.entry(head).or_default() += 1;
                }
            }
            Event::Backfill {
                batch_size,
                batch_duration,
                ..
            } => {
                let mut b = self.batches.lock().unwrap_or_else(|p| p.into_inner());
                b.0 += 1;
                b.1 += *batch_duration;
                b.2 += *batch_size;
            }
            _ => {}
        }
    }
}

/// `ok 3, throttle 12` from counts by name, sorted.
fn counts(m: &Mutex<HashMap<String, u64>>) -> String {
    let mut v: Vec<(String, u64)> = m
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    v.sort();
    v.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fresh table of `b.rows` rows, the `add_column` with `up` started (its backfill
/// timed), then aborted.
async fn backfill(
    c: &Client,
    url: &str,
    b: &ThrottleBench,
    floor_ms: f64,
    monitored: bool,
    workload: Option<&Workload>,
    probe: Option<&Workload>,
) -> anyhow::Result<Backfilled> {
    crate::bench::fresh_table(c, "bench_throttle", b.rows).await?;
    // (`fresh_table` vacuums and checkpoints it: neither lands in the middle of a phase.)
    let (_dir, m) = crate::bench::add_column_migration("bench_throttle")?;
    // The workload on the same server just before, with the table in place.
    let before = match workload {
        Some(w) => {
            w.reset();
            tokio::time::sleep(b.beside).await;
            Some(w.take())
        }
        None => None,
    };
    let mut config = Config::default();
    config.monitor.enabled = monitored;
    config.monitor.probe_sql = Some(probe_sql(b.scale));
    config.monitor.probe_interval = PROBE_INTERVAL;
    // The baseline over as long as the windows beside: a p99 of the 15 results of the
    // default 3 s is their slowest, and one hiccup of the workload's own in them
    // loosens the budget by half (the same settings throttled to a 5% duty in one run
    // and a 21% one in the next).
    config.monitor.probe_baseline = b.beside.max(config.monitor.probe_baseline);
    config.monitor.max_probe_ratio = b.max_probe_ratio;
    config.monitor.ratio_floor_ms = floor_ms;
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
    let with_monitors = match workload {
        Some(w) if monitored => {
            w.reset();
            tokio::time::sleep(b.beside).await;
            Some(w.take())
        }
        _ => None,
    };
    if let Some(w) = workload {
        w.reset();
    }
    if let Some(p) = probe {
        p.reset();
    }
    let cpu_before = cpu_times(c).await;
    let mut turns = Turns::default();
    let gate = Arc::new(Gate::default());
    match workload.filter(|_| !b.interleave.is_zero()) {
        Some(w) => {
            engine.set_throttle(Arc::new(Throttles(vec![
                hook,
                gate.clone() as Arc<dyn Throttle>,
            ])));
            let run = engine.start(&m);
            tokio::pin!(run);
            {
                let taking = turns.take(w, &gate, b.interleave);
                tokio::pin!(taking);
                tokio::select! {
                    r = &mut run => { r?; }
                    never = &mut taking => match never {},
                }
            }
            turns.finish(w);
        }
        None => {
            engine.set_throttle(hook);
            engine.start(&m).await?;
        }
    }
    let cpu_after = cpu_times(c).await;
    let probed = probe.map(Workload::take);
    let during = workload.map(|w| match turns.on.take() {
        Some((l, secs)) => figures(l, secs),
        None => w.take(),
    });
    monitors.stop().await;
    // The abort's DDL must not wait for verdicts that no longer come.
    engine.set_throttle(Arc::new(NoThrottle));
    let after = match workload {
        Some(w) => {
            tokio::time::sleep(b.beside).await;
            Some(w.take())
        }
        None => None,
    };
    engine.abort().await?;
    let beside = match (before, during, after) {
        (Some(before), Some(during), Some(after)) => Some(Beside {
            before,
            monitors: with_monitors,
            during,
            paused: turns
                .off
                .take()
                .filter(|_| turns.off_windows > 0)
                .map(|(l, secs)| (figures(l, secs), turns.off_windows)),
            after,
        }),
        _ => None,
    };
    // The backfill's own rate and duty leave out the time it was held paused.
    let seconds = clock.step.seconds() - gate.held().as_secs_f64();
    let monitor_cpu_share = match (monitored, cpu_before, cpu_after) {
        (true, Some(before), Some(after)) => Some(monitor_share(&before, &after)),
        _ => None,
    };
    let (n, busy, rows) = *clock.batches.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Backfilled {
        rows_per_s: b.rows as f64 / seconds,
        verdicts: counts(&clock.health),
        reasons: counts(&clock.reasons),
        batches: (n > 0).then(|| Batches {
            count: n,
            mean_ms: busy.as_secs_f64() * 1000.0 / n as f64,
            mean_rows: rows as f64 / n as f64,
            busy_share: busy.as_secs_f64() / seconds,
        }),
        monitor_cpu_share,
        beside,
        probe: probed,
    })
}

/// Holds the backfill between batches while `off` is set, and counts how long it held
/// it (only the backfill step's own time: the turns begin with the migration's first
/// step).
#[derive(Default)]
struct Gate {
    off: AtomicBool,
    /// Since when it holds the backfill now, and how long it held it before.
    held: Mutex<(Option<Instant>, Duration)>,
}

impl Gate {
    fn held(&self) -> Duration {
        let h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        h.1 + h.0.map(|t| t.elapsed()).unwrap_or_default()
    }
}

impl Throttle for Gate {
    fn after_batch(&self, _: &BatchStats) -> Decision {
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if self.off.load(Ordering::Relaxed) {
            h.0.get_or_insert_with(Instant::now);
            Decision::Pause(Duration::from_millis(10))
        } else {
            if let Some(t) = h.0.take() {
                h.1 += t.elapsed();
            }
            Decision::Continue
        }
    }
}

/// After the backfill is told to pause, the workload's figures of this long are left out:
/// the batch in flight ends (batches aim at a fraction of a second).
const SETTLE: Duration = Duration::from_millis(500);

/// The workload's latencies in the turns with the backfill running and paused.
#[derive(Default)]
struct Turns {
    /// (latencies µs, seconds) of the turns with the backfill running, pooled.
    on: Option<(Vec<u32>, f64)>,
    /// The same with it paused (past [`SETTLE`]).
    off: Option<(Vec<u32>, f64)>,
    off_windows: u32,
    /// What the figures now coming count towards: on, off, or nothing (settling).
    now: Option<bool>,
}

impl Turns {
    fn add(&mut self, (l, secs): (Vec<u32>, f64), on: bool) {
        let pool = if on { &mut self.on } else { &mut self.off };
        let p = pool.get_or_insert_with(Default::default);
        p.0.extend(l);
        p.1 += secs;
    }

    /// Turns of `every` with the backfill running, then paused, until dropped (when the
    /// backfill step ends).
    async fn take(
        &mut self,
        w: &Workload,
        gate: &Gate,
        every: Duration,
    ) -> std::convert::Infallible {
        w.reset();
        loop {
            self.now = Some(true);
            tokio::time::sleep(every).await;
            self.add(w.take_raw(), true);
            gate.off.store(true, Ordering::Relaxed);
            self.now = None;
            tokio::time::sleep(SETTLE).await;
            w.take_raw();
            self.now = Some(false);
            tokio::time::sleep(every).await;
            self.add(w.take_raw(), false);
            self.off_windows += 1;
            gate.off.store(false, Ordering::Relaxed);
        }
    }

    /// The figures of the turn the backfill step ended in.
    fn finish(&mut self, w: &Workload) {
        let rest = w.take_raw();
        if let Some(on) = self.now {
            self.add(rest, on);
        }
    }
}

/// The monitors' sessions' share of the server's CPU time: the samplers' session and the
/// probe's (whose cost is that of the statements the user gives it).
#[derive(Clone, Copy)]
struct CpuShare {
    samplers: f64,
    probe: f64,
}

/// Whose a server process is.
#[derive(Clone, Copy, PartialEq)]
enum Session {
    Other,
    Samplers,
    Probe,
}

/// CPU ticks (user + system) of each server process by pid, with whose it is; `None` when
/// `/proc` does not show them (a remote server).
async fn cpu_times(c: &Client) -> Option<HashMap<i32, (u64, Session)>> {
    let rows = c
        .query(
            "SELECT pid, coalesce(application_name, '') FROM pg_stat_activity",
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
        let name: String = r.get(1);
        let whose = if name == "ratchet monitor (probe)" {
            Session::Probe
        } else if name.starts_with("ratchet monitor") {
            Session::Samplers
        } else {
            Session::Other
        };
        out.insert(pid, (ticks, whose));
    }
    Some(out)
}

fn monitor_share(
    before: &HashMap<i32, (u64, Session)>,
    after: &HashMap<i32, (u64, Session)>,
) -> CpuShare {
    let (mut samplers, mut probe, mut all) = (0u64, 0u64, 0u64);
    for (pid, (t, whose)) in after {
        let t0 = before.get(pid).map_or(0, |b| b.0);
        let d = t.saturating_sub(t0);
        all += d;
        match whose {
            Session::Samplers => samplers += d,
            Session::Probe => probe += d,
            Session::Other => {}
        }
    }
    let share = |n: u64| if all == 0 { 0.0 } else { n as f64 / all as f64 };
    CpuShare {
        samplers: share(samplers),
        probe: share(probe),
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

    /// The monitors' probe on its own session every `every`, as the monitors run it (its
    /// statements one simple query each), every latency kept.
    async fn probe(url: &str, sql: String, every: Duration) -> anyhow::Result<Workload> {
        let statements = ratchet_engine::fragment::split_statements(&sql)
            .map_err(|e| anyhow::anyhow!("the bench's probe does not parse: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let c = connect(url).await?;
        let task = {
            let (stop, latencies) = (stop.clone(), latencies.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let t = Instant::now();
                    ratchet_engine::monitor::run_probe(&c, &statements).await?;
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    latencies.lock().unwrap_or_else(|p| p.into_inner()).push(us);
                }
                Ok(())
            })
        };
        Ok(Workload {
            stop,
            latencies,
            since: Arc::new(Mutex::new(Instant::now())),
            tasks: vec![task],
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

    /// The figures since the last reset, while it goes on running; resets.
    fn take(&self) -> WorkloadFigures {
        let (latencies, secs) = self.take_raw();
        figures(latencies, secs)
    }

    /// The latencies (µs) since the last reset and the seconds they cover; resets.
    fn take_raw(&self) -> (Vec<u32>, f64) {
        let mut since = self.since.lock().unwrap_or_else(|p| p.into_inner());
        let secs = since.elapsed().as_secs_f64();
        *since = Instant::now();
        let latencies =
            std::mem::take(&mut *self.latencies.lock().unwrap_or_else(|p| p.into_inner()));
        (latencies, secs)
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
