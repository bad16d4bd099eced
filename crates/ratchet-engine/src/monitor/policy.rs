//! The health policy: the samplers' figures against the thresholds, one answer per
//! monitor (ok / throttle / pause, with a reason), and the overall verdict (the worst).
//!
//! - Over its threshold a monitor asks for a throttle; `pause_factor` times over it, or
//!   over it for longer than `max_throttle` (throttling did not bring it back), for a
//!   pause.
//! - A sampler whose query failed or timed out asks for a pause: stale data is never
//!   healthy.
//! - The policy keeps no clock of its own: each call is given `now`, so that it can be
//!   tested without waiting.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::config::MonitorConfig;
use crate::report::{HealthReport, HealthState};

use super::{Figures, Sample};

/// Share of `max_connections` in use above which the load monitor throttles, and above
/// which it pauses.
pub const CONNECTIONS_THROTTLE: f64 = 0.90;
pub const CONNECTIONS_PAUSE: f64 = 0.97;

/// The thresholds of the policy (from [`MonitorConfig`]; `max_probe_p99_ms` may be
/// overridden while running by the operator control of that name).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub max_lock_wait_ms: f64,
    pub max_probe_p99_ms: f64,
    pub max_probe_ratio: f64,
    /// Baselines below this are compared as if they were this long: a ratio against a
    /// query of a few microseconds is noise, not a signal.
    pub ratio_floor_ms: f64,
    pub max_statements_ratio: f64,
    pub max_replication_lag_s: f64,
    pub max_slot_wal_bytes: f64,
    pub max_archiver_backlog: f64,
    pub max_active_sessions: f64,
    pub max_server_cpu_pct: f64,
    pub max_rollback_rate: f64,
    pub pause_factor: f64,
    pub max_throttle: Duration,
}

impl Thresholds {
    pub fn from_config(c: &MonitorConfig) -> Thresholds {
        Thresholds {
            max_lock_wait_ms: c.max_lock_wait_ms as f64,
            max_probe_p99_ms: c.max_probe_p99_ms as f64,
            max_probe_ratio: c.max_probe_ratio,
            ratio_floor_ms: c.ratio_floor_ms,
            max_statements_ratio: c.max_statements_ratio,
            max_replication_lag_s: c.max_replication_lag_s,
            max_slot_wal_bytes: c.max_slot_wal_mb as f64 * 1024.0 * 1024.0,
            max_archiver_backlog: c.max_archiver_backlog as f64,
            max_active_sessions: f64::from(c.max_active_sessions),
            max_server_cpu_pct: c.max_server_cpu_pct,
            max_rollback_rate: c.max_rollback_rate,
            pause_factor: c.pause_factor.max(1.0),
            max_throttle: c.max_throttle,
        }
    }
}

/// One monitor's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub monitor: &'static str,
    pub state: HealthState,
    pub reason: Option<String>,
}

/// What one sampler gave in a tick: its figures, or why it failed.
pub type Observation = (&'static str, Result<Sample, String>);

/// A figure over its limit: how many times over (above 1.0), and how to say it.
struct Over {
    ratio: f64,
    reason: String,
}

/// Over by an amount that throttles but never pauses at once (a deadlock, an index build
/// of another session): only `max_throttle` escalates it.
const JUST_OVER: f64 = 1.000_001;

/// The thresholds, and since when each monitor has been over one.
#[derive(Debug, Clone)]
pub struct Policy {
    pub thresholds: Thresholds,
    over_since: HashMap<&'static str, Instant>,
}

impl Policy {
    pub fn new(thresholds: Thresholds) -> Policy {
        Policy {
            thresholds,
            over_since: HashMap::new(),
        }
    }

    /// Judge one tick's observations: every monitor's verdict, and the report (the worst
    /// state, the reasons of the monitors that are not ok, all figures).
    pub fn judge(
        &mut self,
        observed: &[Observation],
        now: Instant,
    ) -> (Vec<Verdict>, HealthReport) {
        let verdicts: Vec<Verdict> = observed
            .iter()
            .map(|(monitor, sample)| self.judge_one(monitor, sample, now))
            .collect();
        let mut figures = BTreeMap::new();
        for (_, sample) in observed {
            if let Ok(s) = sample {
                figures.extend(s.figures.iter().map(|(k, v)| (k.clone(), *v)));
            }
        }
        let report = HealthReport {
            state: verdicts
                .iter()
                .map(|v| v.state)
                .max()
                .unwrap_or(HealthState::Ok),
            reasons: verdicts.iter().filter_map(|v| v.reason.clone()).collect(),
            figures,
        };
        (verdicts, report)
    }

    fn judge_one(
        &mut self,
        monitor: &'static str,
        sample: &Result<Sample, String>,
        now: Instant,
    ) -> Verdict {
        let verdict = |state, reason| Verdict {
            monitor,
            state,
            reason,
        };
        let figures = match sample {
            Ok(s) => &s.figures,
            Err(e) => {
                self.over_since.remove(monitor);
                let why = format!("{monitor} monitor failed: {e} (no data is not healthy data)");
                return verdict(HealthState::Pause, Some(why));
            }
        };
        let overs = rule(monitor, figures, &self.thresholds);
        // The worst figure of the monitor decides.
        let Some(worst) = overs.into_iter().max_by(|a, b| a.ratio.total_cmp(&b.ratio)) else {
            self.over_since.remove(monitor);
            return verdict(HealthState::Ok, None);
        };
        let since = *self.over_since.entry(monitor).or_insert(now);
        let t = &self.thresholds;
        if worst.ratio > t.pause_factor {
            return verdict(HealthState::Pause, Some(worst.reason));
        }
        let over_for = now.saturating_duration_since(since);
        if over_for > t.max_throttle {
            let why = format!(
                "{} for {:.1} s, throttling did not help (max_throttle {:.1} s)",
                worst.reason,
                over_for.as_secs_f64(),
                t.max_throttle.as_secs_f64()
            );
            return verdict(HealthState::Pause, Some(why));
        }
        verdict(HealthState::Throttle, Some(worst.reason))
    }
}

/// `value` over `limit` (a limit of 0 is off), said by `say`.
fn over(value: Option<f64>, limit: f64, say: impl Fn(f64) -> String) -> Option<Over> {
    value.filter(|v| limit > 0.0 && *v > limit).map(|v| Over {
        ratio: v / limit,
        reason: say(v),
    })
}

/// Over at all, by [`JUST_OVER`].
fn any(value: Option<f64>, say: impl Fn(f64) -> String) -> Option<Over> {
    value.filter(|v| *v > 0.0).map(|v| Over {
        ratio: JUST_OVER,
        reason: say(v),
    })
}

/// The figures of `monitor` that are over their thresholds.
fn rule(monitor: &str, f: &Figures, t: &Thresholds) -> Vec<Over> {
    let get = |k: &str| f.get(k).copied();
    let out: Vec<Option<Over>> = match monitor {
        "locks" => vec![over(get("lock_wait_max_ms"), t.max_lock_wait_ms, |v| {
            let n = get("lock_waits_caused").unwrap_or(0.0);
            format!(
                "{n:.0} session(s) wait on a lock ratchet holds, the longest {v:.0} ms > {:.0} ms",
                t.max_lock_wait_ms
            )
        })],
        "probe" => probe_rule(f, t),
        "errors" => vec![
            over(get("rollbacks_per_s"), t.max_rollback_rate, |v| {
                format!("{v:.1} rollbacks/s > {:.1}/s", t.max_rollback_rate)
            }),
            any(get("deadlocks_per_s"), |v| format!("{v:.2} deadlocks/s")),
        ],
        "load" => load_rule(f, t),
        "replication" => vec![
            over(get("replication_lag_s"), t.max_replication_lag_s, |v| {
                format!(
                    "replication lag {v:.1} s > {:.1} s",
                    t.max_replication_lag_s
                )
            }),
            over(get("slot_wal_retained_bytes"), t.max_slot_wal_bytes, |v| {
                format!(
                    "replication slots retain {:.0} MB of WAL > {:.0} MB",
                    v / 1048576.0,
                    t.max_slot_wal_bytes / 1048576.0
                )
            }),
            over(
                get("archiver_backlog_segments"),
                t.max_archiver_backlog,
                |v| {
                    format!(
                        "{v:.0} WAL segments wait for the archiver > {:.0}",
                        t.max_archiver_backlog
                    )
                },
            ),
            any(get("archiver_failing"), |_| {
                "the WAL archiver's last attempt failed (pg_stat_archiver)".to_string()
            }),
        ],
        "statements" => statements_rule(f, t),
        "maintenance" => vec![any(get("foreign_rewrites"), |v| {
            format!("{v:.0} index build(s) or rewrite(s) of another session on a migrated table")
        })],
        _ => vec![],
    };
    out.into_iter().flatten().collect()
}

/// The probe latency the pacer aims under: the baseline p99 (at least
/// `ratio_floor_ms`) times `max_probe_ratio`, at most `max_probe_p99_ms` (a limit of 0
/// is off); none when neither applies.
pub fn latency_budget(t: &Thresholds, baseline_p99_ms: Option<f64>) -> Option<f64> {
    let relative = baseline_p99_ms
        .filter(|_| t.max_probe_ratio > 0.0)
        .map(|b| b.max(t.ratio_floor_ms) * t.max_probe_ratio);
    let absolute = (t.max_probe_p99_ms > 0.0).then_some(t.max_probe_p99_ms);
    match (relative, absolute) {
        (Some(r), Some(a)) => Some(r.min(a)),
        (r, a) => r.or(a),
    }
}

fn probe_rule(f: &Figures, t: &Thresholds) -> Vec<Option<Over>> {
    let p99 = f.get("probe_p99_ms").copied();
    let baseline = f.get("probe_baseline_p99_ms").copied();
    // Against the baseline: the p99 of as many latest results as the baseline had.
    let recent = f.get("probe_recent_p99_ms").copied().or(p99);
    let ratio = recent
        .zip(baseline)
        .map(|(p, b)| p / b.max(t.ratio_floor_ms));
    vec![
        over(p99, t.max_probe_p99_ms, |v| {
            format!("probe p99 {v:.1} ms > {:.0} ms", t.max_probe_p99_ms)
        }),
        over(ratio, t.max_probe_ratio, |v| {
            format!(
                "probe p99 {:.1} ms is {v:.1}x its baseline {:.1} ms (> {:.1}x)",
                recent.unwrap_or_default(),
                baseline.unwrap_or_default(),
                t.max_probe_ratio
            )
        }),
    ]
}

fn statements_rule(f: &Figures, t: &Thresholds) -> Vec<Option<Over>> {
    let mean = f.get("statements_mean_ms").copied();
    let baseline = f.get("statements_baseline_mean_ms").copied();
    let ratio = mean.zip(baseline).map(|(m, b)| m / b.max(t.ratio_floor_ms));
    vec![over(ratio, t.max_statements_ratio, |v| {
        format!(
            "the top statements on the migrated tables take {:.2} ms on average, {v:.1}x \
             their {:.2} ms before (> {:.1}x)",
            mean.unwrap_or_default(),
            baseline.unwrap_or_default(),
            t.max_statements_ratio
        )
    })]
}

fn load_rule(f: &Figures, t: &Thresholds) -> Vec<Option<Over>> {
    let used = f.get("connections_used").copied().unwrap_or(0.0);
    let max = f.get("max_connections").copied().unwrap_or(0.0);
    let share = (max > 0.0).then(|| used / max);
    let conns = share.filter(|s| *s > CONNECTIONS_THROTTLE).map(|s| Over {
        // At 97 % it pauses at once, whatever the pause factor.
        ratio: if s >= CONNECTIONS_PAUSE {
            t.pause_factor * 2.0
        } else {
            JUST_OVER
        },
        reason: format!(
            "{used:.0} of {max:.0} connections in use ({:.0} %)",
            s * 100.0
        ),
    });
    vec![
        over(
            f.get("active_sessions").copied(),
            t.max_active_sessions,
            |v| format!("{v:.0} active sessions > {:.0}", t.max_active_sessions),
        ),
        conns,
        over(
            f.get("server_cpu_busy_pct").copied(),
            t.max_server_cpu_pct,
            |v| {
                format!(
                    "the server's CPUs are {v:.0}% busy > {:.0}%",
                    t.max_server_cpu_pct
                )
            },
        ),
    ]
}
