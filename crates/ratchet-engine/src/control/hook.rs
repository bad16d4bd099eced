//! The running process's side of operator control: a snapshot of the controls, kept
//! fresh by a background task on a session of its own, and the [`Throttle`] hook that
//! answers from the snapshot.
//!
//! The hook never queries the database itself: it is called between batches by every
//! worker and must answer at once. The snapshot is re-read every [`POLL`] (a few times
//! per default batch time), so a `ratchet pause` takes effect after at most one batch
//! plus one poll. A failed read keeps the last snapshot (a control the operator set is
//! not forgotten because the network hiccupped) and is reported once until a read
//! succeeds again; a lost session is reopened.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_postgres::Client;

use super::{Setting, PAUSE};
use crate::backfill::{BatchStats, Decision, Overrides, Throttle};
use crate::config::Config;
use crate::error::EngineError;
use crate::report::{Event, Hold, Reporter};
use crate::state::{Control, State};

/// How often the controls are re-read, and how long a paused worker waits before it asks
/// again.
pub const POLL: Duration = Duration::from_millis(200);

/// The operator-control hook of a running process. Created by [`Controls::start`].
pub struct Controls {
    /// The latest controls read, by key.
    snapshot: Mutex<BTreeMap<String, Control>>,
    /// Since when a pause holds this process, and where (set by the first worker that
    /// obeys it).
    paused_since: Mutex<Option<Held>>,
    /// Event rows (kind, detail) for the background task to write: the hook cannot.
    notes: Mutex<Vec<(&'static str, serde_json::Value)>>,
    reporter: Arc<dyn Reporter>,
}

/// A pause holding this process.
struct Held {
    since: Instant,
    /// Where it holds (`during`: a step, or batches on a table at so many rows), for the
    /// event rows.
    during: serde_json::Value,
    /// The background task saw it lifted and wrote the `resumed` row.
    lifted: bool,
}

/// Keeps the background task running; dropping it stops the task. Nothing is left
/// unwritten then: a `paused` row is written while the process waits in the pause, a
/// `resumed` row before the workers see the resume.
pub struct ControlHandle {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A session for the control task, named so that `pg_stat_activity` tells it apart.
async fn session(url: &str) -> Result<Client, EngineError> {
    let client = crate::session::open(url).await?;
    client
        .batch_execute("SET application_name = 'ratchet (control)'")
        .await
        .map_err(|e| EngineError::db("setting up the control session", e))?;
    Ok(client)
}

impl Controls {
    /// Read the controls once (so that a pause set before this process started holds it
    /// from its first batch or DDL attempt), then keep re-reading them from a session of
    /// its own. The state schema must exist (`Engine::connect` makes sure of it).
    pub async fn start(
        url: &str,
        config: &Config,
        reporter: Arc<dyn Reporter>,
    ) -> Result<(ControlHandle, Arc<dyn Throttle>), EngineError> {
        let state = State {
            state_schema: config.state_schema.clone(),
            schema: config.schema.clone(),
        };
        let client = session(url).await?;
        let first = state.controls(&client).await?;
        let me = Arc::new(Controls {
            snapshot: Mutex::new(BTreeMap::new()),
            paused_since: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
            reporter,
        });
        me.apply(first);
        let task = tokio::spawn(refresh(me.clone(), client, url.to_string(), state));
        Ok((ControlHandle { task }, me))
    }

    fn report(&self, s: String) {
        self.reporter.report(&Event::Info(s));
    }

    /// Take a fresh read, and say what changed.
    fn apply(&self, controls: Vec<Control>) {
        let new: BTreeMap<String, Control> =
            controls.into_iter().map(|c| (c.key.clone(), c)).collect();
        let mut snapshot = lock(&self.snapshot);
        for (key, c) in &new {
            let same = snapshot.get(key).is_some_and(|o| o.value == c.value);
            if key != PAUSE && !same {
                self.report(format!(
                    "operator control: {} = {} (set by {})",
                    display_key(key),
                    c.value,
                    who(c)
                ));
            }
        }
        for key in snapshot
            .keys()
            .filter(|k| !new.contains_key(*k) && *k != PAUSE)
        {
            self.report(format!(
                "operator control: {} back to its configured value",
                display_key(key)
            ));
        }
        *snapshot = new;
    }

    fn number(&self, s: Setting) -> Option<i64> {
        let snapshot = lock(&self.snapshot);
        let value = snapshot.get(s.key())?.value.parse::<i64>().ok()?;
        // Stored by `ratchet set`, which checks the range; written by hand, it might not be.
        s.range().contains(&value).then_some(value)
    }

    fn pause(&self) -> Option<Control> {
        lock(&self.snapshot).get(PAUSE).cloned()
    }

    /// Pause while the operator says so; note when the pause starts and ends holding this
    /// process. `during` says where it holds (for the event log and the output).
    fn decide(&self, during: serde_json::Value, place: String) -> Decision {
        let pause = self.pause();
        let mut since = lock(&self.paused_since);
        // A pause lifted and set again before any worker noticed counts as a new one.
        let held = since.as_ref().is_some_and(|h| !h.lifted);
        match (pause, held) {
            (Some(c), false) => {
                *since = Some(Held {
                    since: Instant::now(),
                    during: during.clone(),
                    lifted: false,
                });
                let reason = (!c.value.is_empty()).then_some(c.value.clone());
                self.reporter.report(&Event::Held(Some(Hold {
                    by: format!(
                        "{}{}",
                        who(&c),
                        reason
                            .as_ref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ),
                    place,
                })));
                let mut detail = json!({"reason": reason, "set_by": c.set_by});
                merge(&mut detail, during);
                lock(&self.notes).push(("paused", detail));
                Decision::Pause(POLL)
            }
            (Some(_), true) => Decision::Pause(POLL),
            (None, _) => {
                // The background task wrote the `resumed` row before it let us see the
                // resume.
                if let Some(held) = since.take() {
                    let secs = held.since.elapsed().as_secs_f64();
                    self.report(format!("resumed after {secs:.1} s paused"));
                    self.reporter.report(&Event::Held(None));
                }
                Decision::Continue
            }
        }
    }

    /// When a fresh read lifts the pause that holds this process: the `resumed` event row,
    /// to be written before the workers see it (so it comes before what they do next).
    fn resuming(&self, fresh: &[Control]) -> Option<serde_json::Value> {
        if fresh.iter().any(|c| c.key == PAUSE) {
            return None;
        }
        let mut since = lock(&self.paused_since);
        let held = since.as_mut().filter(|h| !h.lifted)?;
        held.lifted = true;
        let secs = held.since.elapsed().as_secs_f64();
        let mut detail = json!({"paused_s": (secs * 10.0).round() / 10.0});
        merge(&mut detail, held.during.clone());
        Some(detail)
    }

    fn take_notes(&self) -> Vec<(&'static str, serde_json::Value)> {
        std::mem::take(&mut *lock(&self.notes))
    }

    fn put_back(&self, mut notes: Vec<(&'static str, serde_json::Value)>) {
        let mut held = lock(&self.notes);
        notes.append(&mut held);
        *held = notes;
    }
}

impl Throttle for Controls {
    fn after_batch(&self, stats: &BatchStats) -> Decision {
        let during =
            json!({"during": "batches", "table": stats.table, "rows_done": stats.rows_done});
        self.decide(
            during,
            format!(
                "between two batches on {} ({} rows done)",
                stats.table, stats.rows_done
            ),
        )
    }

    fn before_attempt(&self) -> Decision {
        self.decide(
            json!({"during": "step"}),
            "before the next attempt of a step".into(),
        )
    }

    fn overrides(&self) -> Overrides {
        Overrides {
            batch_size: self.number(Setting::BatchSize),
            target: self
                .number(Setting::TargetBatchMs)
                .map(|ms| Duration::from_millis(ms as u64)),
            workers: self.number(Setting::Workers).map(|n| n as usize),
        }
    }
}

/// The background task: re-read the controls every [`POLL`] and write the hook's notes.
async fn refresh(me: Arc<Controls>, client: Client, url: String, state: State) {
    let mut client = Some(client);
    let mut failing = false;
    loop {
        tokio::time::sleep(POLL).await;
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = session(&url).await.ok();
        }
        let read = match &client {
            Some(c) => state.controls(c).await,
            None => Err(EngineError::State("no session for the controls".into())),
        };
        match read {
            Ok(controls) => {
                failing = false;
                if let (Some(detail), Some(c)) = (me.resuming(&controls), &client) {
                    lock(&me.notes).push(("resumed", detail));
                    write_notes(&me, c, &state).await;
                }
                me.apply(controls);
            }
            Err(e) if !failing => {
                failing = true;
                me.report(format!(
                    "warning: could not read the operator controls ({e}); keeping the last \
                     ones read until a read succeeds"
                ));
            }
            Err(_) => {}
        }
        if let Some(c) = &client {
            write_notes(&me, c, &state).await;
        }
    }
}

/// The pauses and resumes the hook noted, as event rows; kept for the next round when
/// the write fails.
async fn write_notes(me: &Controls, c: &Client, state: &State) {
    let notes = me.take_notes();
    if notes.is_empty() {
        return;
    }
    let migration = state.active(c).await.ok().flatten().map(|m| m.name);
    for (i, (kind, detail)) in notes.iter().enumerate() {
        if state
            .event(c, migration.as_deref(), kind, detail.clone())
            .await
            .is_err()
        {
            me.put_back(notes[i..].to_vec());
            return;
        }
    }
}

fn merge(into: &mut serde_json::Value, more: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), more) {
        a.extend(b);
    }
}

/// The name an operator typed for a control key.
fn display_key(key: &str) -> String {
    Setting::ALL
        .into_iter()
        .find(|s| s.key() == key)
        .map_or_else(|| key.to_string(), |s| s.name().to_string())
}

/// "alice from 10.0.0.7" — who set a control.
fn who(c: &Control) -> String {
    match &c.host {
        Some(h) => format!("{} from {}", c.set_by, h.trim_end_matches("/32")),
        None => c.set_by.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Controls {
        Controls {
            snapshot: Mutex::new(BTreeMap::new()),
            paused_since: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
            reporter: Arc::new(crate::report::Silent),
        }
    }

    fn control(key: &str, value: &str) -> Control {
        Control {
            key: key.into(),
            value: value.into(),
            set_by: "alice".into(),
            host: Some("10.0.0.7/32".into()),
            application: Some("ratchet".into()),
            age_s: 0.0,
        }
    }

    fn stats() -> BatchStats {
        BatchStats {
            seq: BatchStats::next_seq(),
            table: "items".into(),
            rows: 10,
            rows_done: 100,
            rows_total: Some(1000),
            batch_size: 10,
            duration: Duration::from_millis(5),
        }
    }

    #[test]
    fn no_control_changes_nothing() {
        let h = hook();
        h.apply(vec![]);
        assert_eq!(h.after_batch(&stats()), Decision::Continue);
        assert_eq!(h.before_attempt(), Decision::Continue);
        assert_eq!(h.overrides(), Overrides::default());
        assert!(h.take_notes().is_empty());
    }

    #[test]
    fn settings_become_overrides_and_bad_values_are_ignored() {
        let h = hook();
        h.apply(vec![
            control("batch_size", "500"),
            control("target_batch_ms", "50"),
            control("workers", "0"),
        ]);
        let o = h.overrides();
        assert_eq!(o.batch_size, Some(500));
        assert_eq!(o.target, Some(Duration::from_millis(50)));
        assert_eq!(o.workers, None, "0 workers is out of range");
    }

    #[test]
    fn a_pause_holds_until_lifted_with_one_row_each_way() {
        let h = hook();
        h.apply(vec![control(PAUSE, "deploy")]);
        assert_eq!(h.after_batch(&stats()), Decision::Pause(POLL));
        assert_eq!(h.after_batch(&stats()), Decision::Pause(POLL));
        let notes = h.take_notes();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].0, "paused");
        assert_eq!(notes[0].1["reason"], "deploy");
        assert_eq!(notes[0].1["rows_done"], 100);
        // The background task sees it lifted once, before the workers do.
        assert!(h.resuming(&[]).is_some());
        assert!(h.resuming(&[]).is_none());
        h.apply(vec![]);
        assert_eq!(h.after_batch(&stats()), Decision::Continue);
        assert_eq!(h.before_attempt(), Decision::Continue);
        assert!(h.take_notes().is_empty());
        // Before a DDL attempt too, noted as such.
        h.apply(vec![control(PAUSE, "")]);
        assert_eq!(h.before_attempt(), Decision::Pause(POLL));
        assert_eq!(h.take_notes()[0].1["during"], "step");
    }
}
