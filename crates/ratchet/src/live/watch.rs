//! `ratchet status --watch`: the status block of a migration that another process runs,
//! built from what the state schema holds ([`LiveView`]: the stored progress, the
//! runner's heartbeat with its health, the holder of the migration lock, the operator's
//! controls, the newest events). The rate and the ETA come from the progress between two
//! ticks.

use std::time::{Duration, Instant};

use ratchet_engine::lifecycle::LiveView;
use ratchet_engine::report::{HealthReport, HealthState};

use super::{BackfillNow, Live, StepNow};

/// A heartbeat older than this means its process is gone (the monitors write one about
/// every second).
pub const STALE_HEARTBEAT_S: f64 = 5.0;

/// How many of the newest events the block lists.
pub const EVENTS: i64 = 3;

/// The rows done at the previous tick, per backfill step, for the rate.
#[derive(Debug, Default)]
pub struct Rates {
    last: Vec<(i32, i64, Instant)>,
}

impl Rates {
    /// Rows per second of step `step` since the previous tick (0 at the first one).
    fn rate(&mut self, step: i32, rows: i64) -> f64 {
        let now = Instant::now();
        let prev = self.last.iter_mut().find(|(s, ..)| *s == step);
        let Some((_, prev_rows, at)) = prev else {
            self.last.push((step, rows, now));
            return 0.0;
        };
        let secs = now.duration_since(*at).as_secs_f64().max(0.001);
        let rate = (rows - *prev_rows).max(0) as f64 / secs;
        (*prev_rows, *at) = (rows, now);
        rate
    }
}

/// Whether the migration left the active phase: nothing more to watch.
pub fn finished(view: &LiveView) -> bool {
    view.status.active.is_none()
}

/// The picture of `view`.
pub fn live_of(view: &LiveView, rates: &mut Rates) -> Live {
    let mut live = Live::default();
    let Some(active) = &view.status.active else {
        live.phase = Some("no active migration".into());
        live.runner = Some(runner_text(view));
        live.events = event_lines(view);
        return live;
    };
    live.migration = Some(active.name.clone());
    live.phase = Some(active.phase.as_str().to_string());
    for s in &active.steps {
        let steps = live
            .steps_of
            .entry(s.phase.as_str().to_string())
            .or_default();
        steps.push(s.index);
    }
    live.step = active.steps.iter().find(|s| !s.done).map(|s| StepNow {
        phase: s.phase.as_str().to_string(),
        index: s.index,
        description: s.description.clone(),
    });
    let running = view.backfills.iter().find(|b| !b.done);
    live.backfill = running.or(view.backfills.last()).map(|b| BackfillNow {
        table: b.table.clone(),
        rows_done: b.rows_done.max(0) as u64,
        rows_total: b.rows_total.map(|t| t.max(0) as u64),
        rows_per_second: rates.rate(b.step, b.rows_done),
        batch_size: b.batch_size.map(i64::from),
        batch_duration: None,
    });
    live.workers = running.map(|b| (b.slices - b.slices_done).max(1) as usize);
    live.health = health(view);
    live.paused_by = paused_by(view);
    live.runner = Some(runner_text(view));
    live.events = event_lines(view);
    live
}

/// The runner's latest health report, while its heartbeat is fresh (stale data is never
/// shown as health). The heartbeat holds a `HealthReport` as JSON, at the top or under
/// `health`.
fn health(view: &LiveView) -> Option<HealthReport> {
    let r = view
        .runner
        .as_ref()
        .filter(|r| r.seen_s < STALE_HEARTBEAT_S)?;
    let h = r.health.get("health").unwrap_or(&r.health);
    let state = match h.get("state")?.as_str()? {
        "ok" => HealthState::Ok,
        "throttle" => HealthState::Throttle,
        "pause" => HealthState::Pause,
        _ => return None,
    };
    let reasons = h
        .get("reasons")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let figures = h
        .get("figures")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    Some(HealthReport {
        state,
        reasons,
        figures,
    })
}

/// Who set the `paused` control, when it is set to anything but false.
fn paused_by(view: &LiveView) -> Option<String> {
    let c = view
        .controls
        .iter()
        .find(|c| c.key == "paused" && !matches!(c.value.as_str(), "false" | "0" | ""))?;
    let host = c
        .host
        .as_deref()
        .map(|h| format!("@{h}"))
        .unwrap_or_default();
    Some(format!(
        "{}{host} {} ago",
        c.set_by,
        super::render::human(secs(c.age_s))
    ))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// "pid 4242 (ratchet) on 10.0.0.7 · heartbeat 0.8s ago", or why there is no process.
fn runner_text(view: &LiveView) -> String {
    let fresh = view
        .runner
        .as_ref()
        .filter(|r| r.seen_s < STALE_HEARTBEAT_S);
    let beat = match &view.runner {
        Some(r) => format!("heartbeat {:.1}s ago", r.seen_s),
        None => "no heartbeat".to_string(),
    };
    if let Some(h) = &view.lock_holder {
        let app = h
            .application
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        let host = h
            .host
            .as_deref()
            .map(|a| format!(" on {a}"))
            .unwrap_or_default();
        return format!("pid {}{app}{host} holds the migration lock · {beat}", h.pid);
    }
    match (fresh, &view.runner) {
        (Some(r), _) => format!("pid {} · {beat}", r.pid),
        (None, Some(r)) => format!(
            "no ratchet process is running (the last one, pid {}, was seen {} ago)",
            r.pid,
            super::render::human(secs(r.seen_s))
        ),
        (None, None) => "no ratchet process is running".to_string(),
    }
}

/// "12s ago step by alice: {…}", newest first.
fn event_lines(view: &LiveView) -> Vec<String> {
    view.events
        .iter()
        .map(|e| {
            let detail = e.detail.to_string();
            let detail = match detail.chars().count() > 100 {
                true => format!("{}…", detail.chars().take(100).collect::<String>()),
                false => detail,
            };
            format!(
                "{} ago {} by {}: {detail}",
                super::render::human(secs(e.age_s)),
                e.kind,
                e.who
            )
        })
        .collect()
}
