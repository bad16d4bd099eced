//! How the live picture is written: the status block (several lines, redrawn in place on
//! a terminal), the plain status line (one every `--status-interval` when the output is
//! a file or a pipe), the lines of single events, and JSON objects for `--progress json`
//! and `status --watch --format json`. Pure functions of a [`Live`], so that they are
//! tested from synthetic events.

use std::time::Duration;

use ratchet_engine::report::HealthState;
use ratchet_engine::Event;
use serde_json::json;

use super::{BackfillNow, Live};

/// Width of the progress bar, in characters.
const BAR: usize = 30;

/// The status block, one string per line (no trailing newline).
pub fn block(live: &Live) -> Vec<String> {
    let mut out = vec![headline(live)];
    if let Some(runner) = &live.runner {
        out.push(format!("  runner   {runner}"));
    }
    if let Some(b) = &live.backfill {
        out.push(format!("  {}", bar_line(b, live.paused_by.is_some())));
        out.push(format!("  {}", batch_line(b, live.workers)));
    }
    out.push(format!("  health   {}", health_text(live)));
    out.push(format!("  {}", figures_line(live)));
    if let Some(r) = &live.retry {
        out.push(format!("  retry    {r}"));
    }
    for e in &live.events {
        out.push(format!("  event    {e}"));
    }
    out
}

/// "ratchet · 02_type · start step 3/5: backfill items" (or what stands for it).
fn headline(live: &Live) -> String {
    let mut parts = vec!["ratchet".to_string()];
    parts.extend(live.migration.clone());
    match (&live.step, &live.phase) {
        (Some(step), _) => parts.push(format!(
            "{} step {}: {}",
            step.phase,
            live.step_position(step),
            step.description
        )),
        (None, Some(phase)) => parts.push(phase.clone()),
        (None, None) => parts.push("waiting for the first step".into()),
    }
    parts.join(" · ")
}

/// "[=========>          ]  41%  410000/~1000000 rows  52000 rows/s  ETA 11s" (no ETA
/// while an operator holds the work).
fn bar_line(b: &BackfillNow, held: bool) -> String {
    let (bar, pct) = match b.fraction() {
        Some(f) => {
            let filled = (f * BAR as f64).round() as usize;
            let head = if filled < BAR { ">" } else { "" };
            let bar = format!(
                "{}{head}{}",
                "=".repeat(filled),
                " ".repeat(BAR.saturating_sub(filled + head.len()))
            );
            (bar, format!("{:>3.0}%", f * 100.0))
        }
        None => (" ".repeat(BAR), "  ?%".to_string()),
    };
    let total = b.rows_total.map(|t| format!("/~{t}")).unwrap_or_default();
    let eta = b
        .eta()
        .filter(|_| !held)
        .map(|d| format!("  ETA {}", human(d)))
        .unwrap_or_default();
    let mismatches = b
        .mismatches
        .map(|n| format!("  {n} mismatches"))
        .unwrap_or_default();
    format!(
        "{} {} [{bar}] {pct}  {}{total} rows  {:.0} rows/s{eta}{mismatches}",
        b.verb(),
        b.table,
        b.rows_done,
        b.rows_per_second
    )
}

/// "batch 5000 rows in 180 ms · workers 2".
fn batch_line(b: &BackfillNow, workers: Option<usize>) -> String {
    let size = b
        .batch_size
        .map(|s| format!("{s} rows"))
        .unwrap_or_else(|| "?".into());
    let took = b
        .batch_duration
        .map(|d| format!(" in {} ms", d.as_millis()))
        .unwrap_or_default();
    let workers = workers.map(|w| w.to_string()).unwrap_or_else(|| "?".into());
    format!("batch    {size}{took} · workers {workers}")
}

/// "ok", "THROTTLE: probe p99 84 ms > 50 ms", "PAUSED by alice (ratchet pause)".
fn health_text(live: &Live) -> String {
    let mut text = match &live.health {
        None => "no monitor report yet".to_string(),
        Some(h) => {
            let state = match h.state {
                HealthState::Ok => "ok",
                HealthState::Throttle => "THROTTLE",
                HealthState::Pause => "PAUSE",
            };
            match h.reasons.is_empty() {
                true => state.to_string(),
                false => format!("{state}: {}", h.reasons.join("; ")),
            }
        }
    };
    if let Some(who) = &live.paused_by {
        text.push_str(&format!(" · PAUSED by {who} (ratchet resume continues)"));
    }
    text
}

/// "lock waits caused 0 (max 0 ms) · probe p50 3.1 ms p99 84.0 ms · replication lag 0.4 s".
fn figures_line(live: &Live) -> String {
    let fig = |name: &str, unit: &str| match live.figure(name) {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}{unit}"),
        Some(v) => format!("{v:.1}{unit}"),
        None => "-".to_string(),
    };
    format!(
        "locks    {} lock waits caused (max {}) · probe p50 {} p99 {} · replication lag {}",
        fig("lock_waits_caused", ""),
        fig("lock_wait_max_ms", " ms"),
        fig("probe_p50_ms", " ms"),
        fig("probe_p99_ms", " ms"),
        fig("replication_lag_s", " s"),
    )
}

/// The plain status line: "status: start step 3/5 backfill items: 410000/~1000000 rows
/// (41%), 52000 rows/s, ETA 11s, batch 5000, workers 2, health ok".
pub fn plain_line(live: &Live) -> String {
    let mut parts = Vec::new();
    if let Some(step) = &live.step {
        parts.push(format!(
            "{} step {} {}",
            step.phase,
            live.step_position(step),
            step.description
        ));
    }
    if let Some(b) = &live.backfill {
        let total = b.rows_total.map(|t| format!("/~{t}")).unwrap_or_default();
        let pct = b
            .fraction()
            .map(|f| format!(" ({:.0}%)", f * 100.0))
            .unwrap_or_default();
        let mut s = format!(
            "{} {}: {}{total} rows{pct}, {:.0} rows/s",
            b.verb(),
            b.table,
            b.rows_done,
            b.rows_per_second
        );
        if let Some(eta) = b.eta().filter(|_| live.paused_by.is_none()) {
            s.push_str(&format!(", ETA {}", human(eta)));
        }
        if let Some(n) = b.mismatches {
            s.push_str(&format!(", {n} mismatches"));
        }
        if let Some(size) = b.batch_size {
            s.push_str(&format!(", batch {size}"));
        }
        if let Some(w) = live.workers {
            s.push_str(&format!(", workers {w}"));
        }
        parts.push(s);
    }
    parts.push(format!("health {}", health_text(live)));
    format!("  status: {}", parts.join(", "))
}

/// The line of a retry: "create index: canceling statement due to lock timeout [55P03];
/// blocked by pid 42 (psql); retry 2 in 150 ms".
pub fn retry_line(event: &Event) -> String {
    let Event::Retry {
        description,
        attempt,
        wait,
        sqlstate,
        message,
        blockers,
    } = event
    else {
        return String::new();
    };
    let by = match blockers.is_empty() {
        true => String::new(),
        false => format!("; blocked by {}", blockers.join(", ")),
    };
    format!(
        "{description}: {message} [{sqlstate}]{by}; retry {} in {} ms",
        attempt + 1,
        wait.as_millis()
    )
}

/// The line an event gets of its own (on stderr, above the block on a terminal), if any.
pub fn event_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::StepStarted { .. } | Event::Backfill { .. } | Event::Validate { .. } => return None,
        Event::StepDone {
            phase,
            step,
            description,
            duration,
            attempts,
        } => {
            let retries = match *attempts > 1 {
                true => format!(", {attempts} attempts"),
                false => String::new(),
            };
            format!(
                "  ✓ [{} #{step}] {description} ({} ms{retries})",
                phase.as_str(),
                duration.as_millis()
            )
        }
        Event::StepSkipped {
            phase,
            step,
            description,
        } => format!(
            "  · [{} #{step}] {description} (already done)",
            phase.as_str()
        ),
        Event::Retry { .. } => format!("  ↻ {}", retry_line(event)),
        Event::Health(h) => {
            let state = serde_json::to_value(h.state).unwrap_or_default();
            let state = state.as_str().unwrap_or("?").to_string();
            match h.reasons.is_empty() {
                true => format!("  health: {state}"),
                false => format!("  health: {state}: {}", h.reasons.join("; ")),
            }
        }
        Event::Held(Some(h)) => format!(
            "  paused by {} {}; `ratchet resume` continues",
            h.by, h.place
        ),
        Event::Held(None) => return None,
        Event::Info(s) => format!("  {s}"),
    })
}

/// One event as a JSON object (`--progress json`), with an `event` tag.
pub fn event_json(event: &Event) -> serde_json::Value {
    match event {
        Event::StepStarted {
            phase,
            step,
            description,
        } => json!({"event": "step_started", "phase": phase.as_str(), "step": step,
                    "description": description}),
        Event::StepDone {
            phase,
            step,
            description,
            duration,
            attempts,
        } => json!({"event": "step_done", "phase": phase.as_str(), "step": step,
                    "description": description, "duration_ms": duration.as_millis() as u64,
                    "attempts": attempts}),
        Event::StepSkipped {
            phase,
            step,
            description,
        } => json!({"event": "step_skipped", "phase": phase.as_str(), "step": step,
                    "description": description}),
        Event::Retry {
            description,
            attempt,
            wait,
            sqlstate,
            message,
            blockers,
        } => json!({"event": "retry", "description": description, "attempt": attempt,
                    "wait_ms": wait.as_millis() as u64, "sqlstate": sqlstate,
                    "message": message, "blockers": blockers}),
        Event::Backfill {
            table,
            rows_done,
            rows_total,
            rows_per_second,
            batch_size,
            batch_duration,
        } => json!({"event": "backfill", "table": table, "rows_done": rows_done,
                    "rows_total": rows_total, "rows_per_second": rows_per_second,
                    "batch_size": batch_size,
                    "batch_duration_ms": batch_duration.as_secs_f64() * 1000.0}),
        Event::Validate {
            table,
            rows_checked,
            rows_total,
            mismatches,
            rows_per_second,
            chunk_size,
            chunk_duration,
        } => json!({"event": "validate", "table": table, "rows_checked": rows_checked,
                    "rows_total": rows_total, "mismatches": mismatches,
                    "rows_per_second": rows_per_second, "chunk_size": chunk_size,
                    "chunk_duration_ms": chunk_duration.as_secs_f64() * 1000.0}),
        Event::Health(h) => json!({"event": "health", "state": h.state, "reasons": h.reasons,
                                   "figures": h.figures}),
        Event::Held(Some(h)) => json!({"event": "held", "by": h.by, "place": h.place}),
        Event::Held(None) => json!({"event": "held", "by": null}),
        Event::Info(s) => json!({"event": "info", "message": s}),
    }
}

/// The picture as one JSON object (`status --watch --format json`, one per tick).
pub fn live_json(live: &Live) -> serde_json::Value {
    let step = live.step.as_ref().map(|s| {
        json!({"phase": s.phase, "index": s.index, "position": live.step_position(s),
               "description": s.description})
    });
    let backfill = live.backfill.as_ref().map(|b| {
        json!({"table": b.table, "rows_done": b.rows_done, "rows_total": b.rows_total,
               "fraction": b.fraction(), "rows_per_second": b.rows_per_second,
               "eta_s": b.eta().map(|d| d.as_secs_f64()), "batch_size": b.batch_size,
               "mismatches": b.mismatches})
    });
    json!({
        "migration": live.migration,
        "phase": live.phase,
        "step": step,
        "backfill": backfill,
        "workers": live.workers,
        "health": live.health,
        "paused_by": live.paused_by,
        "runner": live.runner,
        "retry": live.retry,
        "events": live.events,
    })
}

/// The periodic status object of `--progress json`: [`live_json`] as an event.
pub fn status_json(live: &Live) -> serde_json::Value {
    let mut v = live_json(live);
    if let Some(o) = v.as_object_mut() {
        o.insert("event".into(), json!("status"));
    }
    v
}

/// 42s, 3m05s, 1h02m.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use ratchet_engine::report::{HealthReport, HealthState};
    use ratchet_engine::{Event, Phase};

    use super::{block, event_json, event_line, plain_line};
    use crate::live::Live;

    /// A backfill at 41% while the probe monitor throttles it.
    fn throttled() -> Live {
        let mut live = Live {
            migration: Some("02_type".into()),
            workers: Some(2),
            ..Live::default()
        };
        live.steps_of.insert("start".into(), vec![0, 1, 2, 3, 4]);
        let figures: BTreeMap<String, f64> = [
            ("lock_waits_caused", 0.0),
            ("lock_wait_max_ms", 0.0),
            ("probe_p50_ms", 3.1),
            ("probe_p99_ms", 84.0),
            ("replication_lag_s", 0.4),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for e in [
            Event::StepStarted {
                phase: Phase::Start,
                step: 2,
                description: "backfill items.amount".into(),
            },
            Event::Backfill {
                table: "items".into(),
                rows_done: 410_000,
                rows_total: Some(1_000_000),
                rows_per_second: 52_000.0,
                batch_size: 5000,
                batch_duration: Duration::from_millis(180),
            },
            Event::Health(HealthReport {
                state: HealthState::Throttle,
                reasons: vec!["probe p99 84 ms > 50 ms".into()],
                figures,
            }),
        ] {
            live.apply(&e);
        }
        live
    }

    #[test]
    fn block_of_a_throttled_backfill() {
        insta::assert_snapshot!(block(&throttled()).join("\n"), @r"
        ratchet · 02_type · start step 3/5: backfill items.amount
          backfill items [============>                 ]  41%  410000/~1000000 rows  52000 rows/s  ETA 11s
          batch    5000 rows in 180 ms · workers 2
          health   THROTTLE: probe p99 84 ms > 50 ms
          locks    0 lock waits caused (max 0 ms) · probe p50 3.1 ms p99 84 ms · replication lag 0.4 s
        ");
    }

    #[test]
    fn block_before_any_monitor_report_and_with_a_retry() {
        let mut live = Live::default();
        live.apply(&Event::StepStarted {
            phase: Phase::Complete,
            step: 7,
            description: "set NOT NULL on users.email".into(),
        });
        live.apply(&Event::Retry {
            description: "set NOT NULL on users.email".into(),
            attempt: 1,
            wait: Duration::from_millis(150),
            sqlstate: "55P03".into(),
            message: "canceling statement due to lock timeout".into(),
            blockers: vec!["pid 4242 (psql, idle in transaction)".into()],
        });
        insta::assert_snapshot!(block(&live).join("\n"), @r"
        ratchet · complete step #7: set NOT NULL on users.email
          health   no monitor report yet
          locks    - lock waits caused (max -) · probe p50 - p99 - · replication lag -
          retry    set NOT NULL on users.email: canceling statement due to lock timeout [55P03]; blocked by pid 4242 (psql, idle in transaction); retry 2 in 150 ms
        ");
    }

    #[test]
    fn plain_line_of_a_throttled_backfill() {
        insta::assert_snapshot!(plain_line(&throttled()), @"  status: start step 3/5 backfill items.amount, backfill items: 410000/~1000000 rows (41%), 52000 rows/s, ETA 11s, batch 5000, workers 2, health THROTTLE: probe p99 84 ms > 50 ms");
    }

    #[test]
    fn a_held_backfill_says_who_holds_it_and_gives_no_eta() {
        let mut live = throttled();
        let hold = ratchet_engine::report::Hold {
            by: "alice from 10.0.0.7 (deploy)".into(),
            place: "between two batches on items (410000 rows done)".into(),
        };
        assert!(live.apply(&Event::Held(Some(hold.clone()))));
        insta::assert_snapshot!(event_line(&Event::Held(Some(hold))).unwrap(), @"  paused by alice from 10.0.0.7 (deploy) between two batches on items (410000 rows done); `ratchet resume` continues");
        insta::assert_snapshot!(plain_line(&live), @"  status: start step 3/5 backfill items.amount, backfill items: 410000/~1000000 rows (41%), 52000 rows/s, batch 5000, workers 2, health THROTTLE: probe p99 84 ms > 50 ms · PAUSED by alice from 10.0.0.7 (deploy) (ratchet resume continues)");
        assert!(!block(&live).join("\n").contains("ETA"));
        // Let go: no line of its own (the "resumed after" line says it), the ETA is back.
        assert!(!live.apply(&Event::Held(None)));
        assert_eq!(event_line(&Event::Held(None)), None);
        assert!(plain_line(&live).contains("ETA 11s"));
    }

    #[test]
    fn a_health_change_is_worth_a_line_the_same_verdict_again_is_not() {
        let mut live = throttled();
        let h = live.health.clone().unwrap();
        assert!(!live.apply(&Event::Health(h.clone())));
        let ok = HealthReport {
            state: HealthState::Ok,
            reasons: vec![],
            ..h
        };
        assert!(live.apply(&Event::Health(ok)));
    }

    #[test]
    fn events_as_json_lines() {
        let e = Event::Backfill {
            table: "items".into(),
            rows_done: 10,
            rows_total: None,
            rows_per_second: 5.0,
            batch_size: 10,
            batch_duration: Duration::from_millis(2),
        };
        insta::assert_snapshot!(event_json(&e).to_string(), @r#"{"event":"backfill","table":"items","rows_done":10,"rows_total":null,"rows_per_second":5.0,"batch_size":10,"batch_duration_ms":2.0}"#);
    }

    #[test]
    fn a_validation_shows_rows_checked_and_mismatches() {
        let mut live = Live::default();
        live.steps_of.insert("validate".into(), vec![]);
        let e = Event::Validate {
            table: "items".into(),
            rows_checked: 250_000,
            rows_total: Some(1_000_000),
            mismatches: 2,
            rows_per_second: 125_000.0,
            chunk_size: 10_000,
            chunk_duration: Duration::from_millis(80),
        };
        live.apply(&e);
        insta::assert_snapshot!(super::bar_line(live.backfill.as_ref().unwrap(), false), @"validate items [========>                     ]  25%  250000/~1000000 rows  125000 rows/s  ETA 6s  2 mismatches");
        insta::assert_snapshot!(plain_line(&live), @"  status: validate items: 250000/~1000000 rows (25%), 125000 rows/s, ETA 6s, 2 mismatches, batch 10000, health no monitor report yet");
        insta::assert_snapshot!(event_json(&e).to_string(), @r#"{"event":"validate","table":"items","rows_checked":250000,"rows_total":1000000,"mismatches":2,"rows_per_second":125000.0,"chunk_size":10000,"chunk_duration_ms":80.0}"#);
    }
}
