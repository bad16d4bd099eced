//! How the engine commands show their results on stdout: plans, status, validations,
//! completions, the effective settings. Text for people, JSON where `--format json`
//! asks for it.

use ratchet_engine::backfill::Progress as BackfillProgress;
use ratchet_engine::control::{Change, Changed, Setting};
use ratchet_engine::gates::StageState;
use ratchet_engine::lifecycle::ActiveStatus;
use ratchet_engine::state::{Control, EventRow};
use ratchet_engine::{Phase, Plan, StartOutcome, Status};

use super::settings::{Settings, Source};
use crate::output::line;

/// The plan grouped by phase, each statement with the locks it takes.
pub fn print_plan(plan: &Plan) {
    for w in &plan.warnings {
        crate::output::warn(w);
    }
    line(format!(
        "migration {} (schema {}, version schema {})",
        plan.migration, plan.schema, plan.version_schema
    ));
    for r in &plan.routes {
        line(format!("route: {r}"));
    }
    for phase in [Phase::Start, Phase::Complete, Phase::Abort] {
        line(format!("\n{}:", phase.as_str()));
        for (i, step) in plan.steps_of(phase) {
            line(format!("  #{i} {}", step.description));
            for s in step.statements() {
                for (n, l) in s.sql.lines().enumerate() {
                    line(format!("      {}{l}", if n == 0 { "" } else { "  " }));
                }
                if s.locks.is_empty() {
                    line("        lock: none on existing tables");
                }
                for lock in &s.locks {
                    line(format!("        lock: {} on {}", lock.mode, lock.on));
                }
            }
        }
    }
}

/// What `complete` did, or that there was nothing to complete.
pub fn report_complete(out: Option<StartOutcome>) {
    let Some(out) = out else {
        line("no active migration; nothing to complete");
        return;
    };
    line(format!(
        "completed {}; version schema {} is now the only one",
        out.migration, out.version_schema
    ));
    if let Some(old) = &out.dropped_version_schema {
        line(format!(
            "dropped {old}: an application still on it with `search_path = {old}, public` now reads and writes the base tables directly; move every application to {} first",
            out.version_schema
        ));
    }
}

/// The outcome of `start` (without `--complete`'s part).
pub fn report_start(out: &StartOutcome) {
    if out.already_completed {
        line(format!(
            "{} was already applied; nothing to do",
            out.migration
        ));
    } else {
        line(format!("started {}", out.migration));
    }
    if out.backfill_left {
        line(format!(
            "the backfill is left for later: run `ratchet backfill`; it creates the version schema {} when the new columns are filled (deploy the new application after that)",
            out.version_schema
        ));
        return;
    }
    line(format!(
        "applications of the new version use: SET search_path TO {}",
        out.version_schema
    ));
}

/// A validation's counts, samples and notes.
pub fn print_validation(v: &ratchet_engine::validate::Validation) {
    line(format!(
        "checked {} rows: {} mismatch(es), {} repaired — {}",
        v.rows_checked,
        v.mismatches,
        v.repaired,
        if v.passed { "passed" } else { "FAILED" }
    ));
    for s in &v.samples {
        line(format!("  mismatch: {s}"));
    }
    for n in &v.notes {
        line(format!("  note: {n}"));
    }
}

/// `status --format json`: the status with the live backfill progress in
/// `active.backfills`.
pub fn status_json(st: &Status, backfills: &[BackfillProgress]) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(st)?;
    if let Some(active) = v.get_mut("active").and_then(|a| a.as_object_mut()) {
        active.insert("backfills".into(), serde_json::to_value(backfills)?);
    }
    Ok(serde_json::to_string_pretty(&v)?)
}

/// `status` as text: schemas, the active migration, the history.
pub fn print_status(st: &Status, backfills: &[BackfillProgress]) {
    line(format!("schema: {}", st.schema));
    line(format!(
        "version schema: {}",
        st.version_schema
            .as_deref()
            .unwrap_or("(none yet: applications use the tables)")
    ));
    if let Some(p) = &st.pending_version_schema {
        line(format!(
            "pending version schema: {p} (not usable yet: its start has not built the views)"
        ));
    }
    if let Some(f) = &st.freeze {
        line(format!(
            "FROZEN since {} by {}{}: {} (start, migrate and complete refuse until `ratchet unfreeze`)",
            f.set_at,
            f.set_by,
            f.host.as_deref().map(|h| format!(" from {h}")).unwrap_or_default(),
            f.reason
        ));
    }
    match &st.active {
        Some(act) => print_active(act, backfills),
        None => line("active: none"),
    }
    line(format!("history ({}):", st.history.len()));
    for h in &st.history {
        line(format!(
            "  {} {} ({})",
            if h.done { "✓" } else { "…" },
            h.name,
            h.phase
        ));
    }
}

fn print_active(act: &ActiveStatus, backfills: &[BackfillProgress]) {
    line(format!("active: {} ({})", act.name, act.phase));
    for w in &act.warnings {
        line(format!("  warning: {w}"));
    }
    for p in backfills {
        print_backfill(p);
    }
    for s in &act.steps {
        line(format!(
            "  [{}] {} #{} {}",
            if s.done { "x" } else { " " },
            s.phase.as_str(),
            s.index,
            s.description
        ));
    }
    line("  sequence:");
    for s in &act.sequence.stages {
        let mark = match s.state {
            StageState::Done => "✓",
            StageState::Pending => "…",
            StageState::Skipped => "-",
        };
        line(format!("    {mark} {:<15} {}", s.name, s.detail));
    }
    line(format!("  next: {}", act.sequence.next));
}

fn print_backfill(p: &BackfillProgress) {
    let total = p
        .rows_total
        .map(|t| format!(" of ~{t}"))
        .unwrap_or_default();
    let slices = if p.slices > 1 {
        format!(", {} slices ({} done)", p.slices, p.slices_done)
    } else {
        String::new()
    };
    line(format!(
        "  backfill {}: {} rows{total}{slices}{}",
        p.table,
        p.rows_done,
        if p.done { ", done" } else { "" }
    ));
}

/// `ratchet config` as text: the file read, then one line per setting with its source.
pub fn print_settings(s: &Settings, gates: &super::gate_settings::Gates) {
    let file = s.file.as_ref().map(|p| p.display().to_string());
    line(format!(
        "config file: {}",
        file.as_deref()
            .unwrap_or("none (no ./ratchet.toml, no --config)")
    ));
    for (key, value, source) in s.rows() {
        let value = value
            .as_str()
            .map(str::to_string)
            .unwrap_or(value.to_string());
        let from = match source {
            Source::Flag => format!("--{}", key.replace('_', "-")),
            Source::File => format!("[engine] in {}", file.as_deref().unwrap_or("")),
            Source::Default => "default".to_string(),
        };
        line(format!("{key:<17} {value:<10} {from}"));
    }
    for (key, value, source) in s.monitor_rows() {
        let value = match value {
            serde_json::Value::Null => "none".to_string(),
            // On one line: a probe of several statements is often written on several.
            v => v
                .as_str()
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or(v.to_string()),
        };
        let from = match source {
            Source::Flag => super::monitor_settings::flag_of(key),
            Source::File => format!("[monitor] in {}", file.as_deref().unwrap_or("")),
            Source::Default => "default".to_string(),
        };
        line(format!("monitor.{key:<21} {value:<10} {from}"));
    }
    for (key, value, source) in gates.rows() {
        let value = value
            .as_str()
            .map(str::to_string)
            .unwrap_or(value.to_string());
        let from = match source {
            Source::Flag => format!("--{}", key.replace('_', "-")),
            Source::File => format!("[gates] in {}", file.as_deref().unwrap_or("")),
            Source::Default => "default".to_string(),
        };
        line(format!("gates.{key:<23} {value:<10} {from}"));
    }
}

/// `ratchet config --format json`: `{"config_file": …, "engine": {key: {value, source}},
/// "monitor": {…}, "gates": {…}}`.
pub fn settings_json(s: &Settings, gates: &super::gate_settings::Gates) -> anyhow::Result<String> {
    let engine: serde_json::Map<String, serde_json::Value> = s
        .rows()
        .into_iter()
        .map(|(key, value, source)| {
            let row = serde_json::json!({"value": value, "source": source.as_str()});
            (key.to_string(), row)
        })
        .collect();
    let monitor: serde_json::Map<String, serde_json::Value> = s
        .monitor_rows()
        .into_iter()
        .map(|(key, value, source)| {
            let row = serde_json::json!({"value": value, "source": source.as_str()});
            (key.to_string(), row)
        })
        .collect();
    let gates: serde_json::Map<String, serde_json::Value> = gates
        .rows()
        .into_iter()
        .map(|(key, value, source)| {
            let row = serde_json::json!({"value": value, "source": source.as_str()});
            (key.to_string(), row)
        })
        .collect();
    let file = s.file.as_ref().map(|p| p.display().to_string());
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "config_file": file, "engine": engine, "monitor": monitor, "gates": gates,
    }))?)
}

/// The doctor's table: one line per capability, then the settings.
pub fn print_doctor(r: &ratchet_engine::doctor::Report) {
    use ratchet_engine::doctor::Verdict;
    line(format!("server: {}", r.version));
    line(format!("role:   {}", r.role));
    line(String::new());
    for c in &r.checks {
        let mark = match c.verdict {
            Verdict::Ok => "ok     ",
            Verdict::Warn => "warn   ",
            Verdict::Missing => "MISSING",
        };
        line(format!("{mark} {:<24} {}", c.name, c.detail));
    }
    line(String::new());
    for (name, value) in &r.settings {
        line(format!("{name} = {value}"));
    }
}

/// What `ratchet pause`, `resume` and `set` did.
pub fn report_change(change: &Change, c: &Changed) {
    let running = match &c.migration {
        Some(m) => format!("the process running {m} applies it"),
        None => "no migration is active; the next one that runs applies it".to_string(),
    };
    let text = match change {
        Change::Pause { .. } if !c.changed => "already paused; `ratchet resume` continues".into(),
        Change::Pause { .. } => format!(
            "paused: {running} between two batches or before its next DDL attempt; \
             `ratchet resume` continues"
        ),
        Change::Resume if !c.changed => "not paused; nothing to resume".into(),
        Change::Resume => format!("resumed: {running} within a moment"),
        Change::Set(s, v) if !c.changed => format!("{s} is {v} already"),
        Change::Set(s, v) => format!(
            "{s}: {} -> {v}; {running} from its next batch",
            c.old.as_deref().unwrap_or("configured value")
        ),
        Change::Reset(s) if !c.changed => format!("{s} is not set; nothing to clear"),
        Change::Reset(s) => format!(
            "{s}: {} -> configured value; {running} from its next batch",
            c.old.as_deref().unwrap_or_default()
        ),
    };
    line(text);
}

/// `ratchet set` without arguments: the controls set now.
pub fn print_controls(controls: &[Control]) {
    if controls.is_empty() {
        line("no control is set; every setting has its configured value");
    }
    for c in controls {
        let name = Setting::ALL
            .into_iter()
            .find(|s| s.key() == c.key)
            .map_or(c.key.as_str(), |s| s.name());
        let value = match (c.key.as_str(), c.value.as_str()) {
            (ratchet_engine::control::PAUSE, "") => "set".to_string(),
            (ratchet_engine::control::PAUSE, reason) => format!("set ({reason})"),
            (_, v) => v.to_string(),
        };
        line(format!(
            "{name} = {value}  (set by {}, {:.0} s ago)",
            who(&c.set_by, c.host.as_deref(), c.application.as_deref()),
            c.age_s
        ));
    }
}

/// "postgres@127.0.0.1 (ratchet)": role, client address, application_name.
fn who(role: &str, host: Option<&str>, application: Option<&str>) -> String {
    let mut s = role.to_string();
    if let Some(h) = host {
        s.push('@');
        s.push_str(h);
    }
    if let Some(a) = application.filter(|a| !a.is_empty()) {
        s.push_str(&format!(" ({a})"));
    }
    s
}

/// One event of `ratchet events`: when, which migration, what, who, and its detail.
pub fn event_line(e: &EventRow) -> String {
    format!(
        "{}  {:<16} {:<10} {:<32} {}",
        e.at,
        e.migration.as_deref().unwrap_or("-"),
        e.kind,
        who(&e.who, e.host.as_deref(), e.application.as_deref()),
        event_summary(e)
    )
    .trim_end()
    .to_string()
}

/// The detail of an event in a few words where its kind is known, as JSON otherwise
/// (`ratchet events`, and the recent events of `ratchet status --watch`).
pub fn event_summary(e: &EventRow) -> String {
    let d = &e.detail;
    let s = |k: &str| match &d[k] {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        v => Some(v.to_string()),
    };
    match e.kind.as_str() {
        "control" => {
            let key = s("key").unwrap_or_default();
            let name = Setting::ALL
                .into_iter()
                .find(|x| x.key() == key)
                .map_or(key.clone(), |x| x.name().to_string());
            let reason = s("reason").map(|r| format!(" ({r})")).unwrap_or_default();
            match (key.as_str(), s("new")) {
                (ratchet_engine::control::PAUSE, Some(_)) => format!("pause{reason}"),
                (ratchet_engine::control::PAUSE, None) => "resume".into(),
                (_, new) => format!(
                    "{name}: {} -> {}",
                    s("old").unwrap_or_else(|| "default".into()),
                    new.unwrap_or_else(|| "default".into())
                ),
            }
        }
        "paused" | "resumed" => {
            let place = match s("during").as_deref() {
                Some("batches") => format!(
                    "between batches on {} at {} rows",
                    s("table").unwrap_or_default(),
                    s("rows_done").unwrap_or_default()
                ),
                _ => "before a step".into(),
            };
            let more = match (s("reason"), s("paused_s")) {
                (_, Some(secs)) => format!(" after {secs} s"),
                (Some(r), _) => format!(" ({r})"),
                _ => String::new(),
            };
            format!("{place}{more}")
        }
        "retry" => format!(
            "attempt {} failed: {} {}; next in {} ms",
            s("attempt").unwrap_or_default(),
            s("sqlstate").unwrap_or_default(),
            s("message").unwrap_or_default(),
            s("wait_ms").unwrap_or_default()
        ),
        "start" => format!(
            "checksum {}",
            s("checksum")
                .unwrap_or_default()
                .get(..12)
                .unwrap_or_default()
        ),
        "step" => format!(
            "{} #{} {} ({} ms, {} attempt(s))",
            s("phase").unwrap_or_default(),
            s("step").unwrap_or_default(),
            s("description").unwrap_or_default(),
            s("duration_ms").unwrap_or_default(),
            s("attempts").unwrap_or_default()
        ),
        // The monitors' verdict changed (`resume` is their way back to ok).
        "throttle" | "pause" | "resume" if d.get("state").is_some() => {
            let reasons: Vec<String> = d["reasons"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let was = s("previous")
                .map(|p| format!(" (was {p})"))
                .unwrap_or_default();
            match reasons.is_empty() {
                true => format!("health {}{was}", s("state").unwrap_or_default()),
                false => format!("{}{was}", reasons.join("; ")),
            }
        }
        "stop" => s("reason").unwrap_or_default(),
        "started" => format!("version schema {}", s("version_schema").unwrap_or_default()),
        "flag_created" | "flag_deleted" | "flag" => {
            let flag = s("flag").unwrap_or_default();
            let forced = s("forced")
                .map(|r| format!(" (forced past: {r})"))
                .unwrap_or_default();
            match (e.kind.as_str(), s("old"), s("new")) {
                ("flag_created", ..) => {
                    format!("{flag}: created {}", s("state").unwrap_or_default())
                }
                ("flag_deleted", old, _) => {
                    format!("{flag}: deleted (was {})", old.unwrap_or_default())
                }
                (_, old, new) => format!(
                    "{flag}: {} -> {}{forced}",
                    old.unwrap_or_default(),
                    new.unwrap_or_default()
                ),
            }
        }
        "freeze" => format!("schema frozen: {}", s("reason").unwrap_or_default()),
        "validate" => format!(
            "{}: {} rows checked, {} mismatches, {} repaired",
            match d["passed"].as_bool() {
                Some(true) => "passed",
                _ => "FAILED",
            },
            s("rows_checked").unwrap_or_default(),
            s("mismatches").unwrap_or_default(),
            s("repaired").unwrap_or_default()
        ),
        "validation_skipped" | "gates_forced" => s("warning").unwrap_or_default(),
        _ if d.as_object().is_some_and(|o| o.is_empty()) => String::new(),
        _ => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use ratchet_engine::state::EventRow;
    use serde_json::json;

    use super::event_summary;

    fn row(kind: &str, detail: serde_json::Value) -> EventRow {
        EventRow {
            id: 1,
            at: "2026-12-04T19:58:52.995Z".into(),
            age_s: 1.0,
            migration: Some("m1".into()),
            kind: kind.into(),
            detail,
            who: "postgres".into(),
            host: None,
            application: Some("ratchet monitor".into()),
        }
    }

    /// Each kind ratchet writes reads as words, not as its JSON.
    #[test]
    fn events_read_as_words() {
        let cases = [
            (
                row(
                    "throttle",
                    json!({"state": "throttle", "previous": "ok",
                           "reasons": ["probe p99 109.2 ms > 100 ms"], "figures": {"x": 1.0}}),
                ),
                "probe p99 109.2 ms > 100 ms (was ok)",
            ),
            (
                row(
                    "resume",
                    json!({"state": "ok", "previous": "pause", "reasons": [], "figures": {}}),
                ),
                "health ok (was pause)",
            ),
            (
                row(
                    "flag_created",
                    json!({"flag": "m1.read_new", "state": "off"}),
                ),
                "m1.read_new: created off",
            ),
            (
                row(
                    "flag",
                    json!({"flag": "m1.read_new", "old": "off", "new": "10%", "forced": "not validated"}),
                ),
                "m1.read_new: off -> 10% (forced past: not validated)",
            ),
            (
                row(
                    "validate",
                    json!({"rows_checked": 400000, "mismatches": 0, "repaired": 0, "passed": true}),
                ),
                "passed: 400000 rows checked, 0 mismatches, 0 repaired",
            ),
            (
                row("stop", json!({"reason": "paused for 60 s"})),
                "paused for 60 s",
            ),
            (
                row("started", json!({"version_schema": "public_m1"})),
                "version schema public_m1",
            ),
            (row("completed", json!({})), ""),
            (row("unknown_kind", json!({"a": 1})), r#"{"a":1}"#),
        ];
        for (e, want) in cases {
            assert_eq!(event_summary(&e), want, "{}", e.kind);
        }
    }
}
