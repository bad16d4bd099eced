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
        mismatches: None,
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

/// Who set the pause control (`ratchet pause`; its value is the reason, maybe empty).
fn paused_by(view: &LiveView) -> Option<String> {
    let c = view
        .controls
        .iter()
        .find(|c| c.key == ratchet_engine::control::PAUSE)?;
    let host = c
        .host
        .as_deref()
        .map(|h| format!("@{h}"))
        .unwrap_or_default();
    let reason = match c.value.as_str() {
        "" => String::new(),
        r => format!(" ({r})"),
    };
    Some(format!(
        "{}{host} {} ago{reason}",
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

/// "12s ago step by alice: start #1 …", newest first (the summary of `ratchet events`).
fn event_lines(view: &LiveView) -> Vec<String> {
    view.events
        .iter()
        .map(|e| {
            let detail = crate::engine_cmd::render::event_summary(e);
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

#[cfg(test)]
mod tests {
    use ratchet_engine::backfill::Progress;
    use ratchet_engine::lifecycle::{ActiveStatus, LiveView, StepStatus};
    use ratchet_engine::state::{Control, EventRow, LockHolder, MigrationPhase, RunnerRow};
    use ratchet_engine::{Phase, Status};

    use super::{finished, live_of, Rates};
    use crate::live::render::block;

    /// A backfill at 12000 of 40000 rows, run by pid 4242, paused by an operator, with a
    /// heartbeat that carries a throttle verdict.
    fn view(seen_s: f64) -> LiveView {
        let step = |index, done, description: &str| StepStatus {
            index,
            phase: Phase::Start,
            description: description.into(),
            done,
        };
        LiveView {
            status: Status {
                schema: "public".into(),
                version_schema: Some("public_01_items".into()),
                pending_version_schema: Some("public_02_type".into()),
                active: Some(ActiveStatus {
                    name: "02_type".into(),
                    phase: MigrationPhase::Started,
                    version_schema: "public_02_type".into(),
                    steps: vec![
                        step(0, true, "alter column items.amount: add columns"),
                        step(1, false, "backfill items._ratchet_new_amount in batches"),
                        step(
                            2,
                            false,
                            "create the views of version schema public_02_type",
                        ),
                    ],
                    warnings: vec![],
                    sequence: ratchet_engine::gates::Sequence {
                        stages: vec![],
                        next: "ratchet backfill".into(),
                    },
                }),
                history: vec![],
                freeze: None,
            },
            backfills: vec![Progress {
                step: 1,
                table: "items".into(),
                rows_done: 12000,
                rows_total: Some(40000),
                batch_size: Some(500),
                done: false,
                slices: 1,
                slices_done: 0,
            }],
            runner: Some(RunnerRow {
                migration: Some("02_type".into()),
                pid: 4242,
                host: None,
                application: Some("ratchet".into()),
                seen_s,
                health: serde_json::json!({
                    "state": "throttle",
                    "reasons": ["probe p99 84 ms > 50 ms"],
                    "figures": {"probe_p50_ms": 3.0, "probe_p99_ms": 84.0, "lock_waits_caused": 1.0}
                }),
            }),
            lock_holder: Some(LockHolder {
                pid: 4242,
                application: Some("ratchet".into()),
                host: Some("10.0.0.7".into()),
                connected_s: 30.0,
            }),
            controls: vec![Control {
                key: "pause".into(),
                value: "deploy".into(),
                set_by: "alice".into(),
                host: Some("10.0.0.9".into()),
                application: Some("ratchet".into()),
                age_s: 42.0,
            }],
            events: vec![EventRow {
                id: 7,
                at: "2026-12-02T04:00:00.000Z".into(),
                age_s: 3.0,
                migration: Some("02_type".into()),
                kind: "control".into(),
                detail: serde_json::json!({"key": "pause", "new": "", "old": null}),
                who: "alice".into(),
                host: None,
                application: None,
            }],
        }
    }

    #[test]
    fn the_block_of_a_migration_another_process_runs() {
        let v = view(0.5);
        assert!(!finished(&v));
        insta::assert_snapshot!(block(&live_of(&v, &mut Rates::default())).join("\n"), @r#"
        ratchet · 02_type · start step 2/3: backfill items._ratchet_new_amount in batches
          runner   pid 4242 (ratchet) on 10.0.0.7 holds the migration lock · heartbeat 0.5s ago
          backfill items [=========>                    ]  30%  12000/~40000 rows  0 rows/s
          batch    500 rows · workers 1
          health   THROTTLE: probe p99 84 ms > 50 ms · PAUSED by alice@10.0.0.9 42s ago (deploy) (ratchet resume continues)
          locks    1 lock waits caused (max -) · probe p50 3 ms p99 84 ms · replication lag -
          event    3s ago control by alice: pause
        "#);
    }

    #[test]
    fn a_stale_heartbeat_shows_no_health_and_no_process_without_the_lock() {
        let mut v = view(60.0);
        v.lock_holder = None;
        let live = live_of(&v, &mut Rates::default());
        assert_eq!(live.health, None);
        assert_eq!(
            live.runner.as_deref(),
            Some("no ratchet process is running (the last one, pid 4242, was seen 1m00s ago)")
        );
    }

    #[test]
    fn the_rate_comes_from_two_ticks() {
        let mut rates = Rates::default();
        let mut v = view(0.5);
        live_of(&v, &mut rates);
        std::thread::sleep(std::time::Duration::from_millis(50));
        v.backfills[0].rows_done += 1000;
        let live = live_of(&v, &mut rates);
        let rate = live.backfill.unwrap().rows_per_second;
        assert!(rate > 1000.0 && rate < 25_000.0, "{rate}");
    }
}
