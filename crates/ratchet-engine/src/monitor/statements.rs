//! Statements: with `pg_stat_statements` installed (and loaded), the mean execution time
//! of the top statements that touch the migrated tables, as a delta over the window
//! (calls and time between its oldest sample and now), so that a regression shows at
//! once instead of being averaged into the statement's whole history.
//!
//! Statements are matched by the table's name in their text, ratchet's own (which name
//! its `ratchet` schema or settings) left out. Without the extension the monitor is off:
//! it says so once, and never counts as a failure.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Error};

use super::Sample;

/// Statements shown and averaged.
const TOP: usize = 5;

/// Per statement: (calls, total execution time in ms, the start of its text).
type Counters = HashMap<i64, (f64, f64, String)>;

pub(super) struct Statements {
    available: Option<bool>,
    window: Duration,
    history: VecDeque<(Instant, Counters)>,
    info: Option<String>,
    /// The mean time of the top statements over their whole history, when the first
    /// sample with migrated tables was taken (before the migration's work, mostly).
    baseline_ms: Option<f64>,
}

impl Statements {
    pub(super) fn new(window: Duration) -> Statements {
        Statements {
            available: None,
            window,
            history: VecDeque::new(),
            info: None,
            baseline_ms: None,
        }
    }

    /// A line to report once (the extension is missing).
    pub(super) fn take_info(&mut self) -> Option<String> {
        self.info.take()
    }

    fn off(&mut self, why: &str) -> Option<Sample> {
        self.available = Some(false);
        self.info = Some(format!("statements monitor off: {why}"));
        None
    }

    /// `None` when the extension is not there (the monitor is off).
    pub(super) async fn sample(
        &mut self,
        c: &Client,
        tables: &[String],
    ) -> Result<Option<Sample>, Error> {
        if self.available == Some(false) {
            return Ok(None);
        }
        if self.available.is_none() {
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'",
                    &[],
                )
                .await?
                .get(0);
            if n == 0 {
                return Ok(self.off("pg_stat_statements is not installed in this database"));
            }
            self.available = Some(true);
        }
        let patterns: Vec<String> = tables
            .iter()
            .map(|t| format!("%{}%", t.rsplit('.').next().unwrap_or(t).trim_matches('"')))
            .collect();
        let rows = match c
            .query(
                "SELECT queryid, calls::float8, total_exec_time::float8, left(query, 80)
                   FROM pg_stat_statements
                  WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND queryid IS NOT NULL AND query ILIKE ANY ($1::text[])
                    AND query NOT ILIKE '%ratchet%'",
                &[&patterns],
            )
            .await
        {
            Ok(rows) => rows,
            // Installed but not in shared_preload_libraries.
            Err(e) if e.code() == Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE) => {
                return Ok(self.off("pg_stat_statements is not in shared_preload_libraries"));
            }
            Err(e) => return Err(e),
        };
        let now: Counters = rows
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
            .collect();
        if self.baseline_ms.is_none() && !tables.is_empty() {
            self.baseline_ms = Some(baseline(&now));
        }
        Ok(Some(self.window_sample(now)))
    }

    fn window_sample(&mut self, now: Counters) -> Sample {
        let at = Instant::now();
        while self
            .history
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > self.window)
        {
            self.history.pop_front();
        }
        let mut deltas: Vec<(f64, f64, &str)> = match self.history.front() {
            Some((_, old)) => now
                .iter()
                .map(|(id, (calls, time, q))| {
                    let (c0, t0) = old.get(id).map_or((0.0, 0.0), |o| (o.0, o.1));
                    (calls - c0, time - t0, q.as_str())
                })
                .filter(|(calls, _, _)| *calls > 0.0)
                .collect(),
            None => vec![],
        };
        deltas.sort_by(|a, b| b.1.total_cmp(&a.1));
        deltas.truncate(TOP);
        let mut s = Sample::default();
        let calls: f64 = deltas.iter().map(|d| d.0).sum();
        let time: f64 = deltas.iter().map(|d| d.1).sum();
        s.set("statements_calls", calls);
        if calls > 0.0 {
            s.set("statements_mean_ms", time / calls);
        }
        if let Some(b) = self.baseline_ms.filter(|b| *b > 0.0) {
            s.set("statements_baseline_mean_ms", b);
        }
        s.notes = deltas
            .iter()
            .map(|(c, t, q)| format!("{:.2} ms mean over {c:.0} calls: {q}", t / c))
            .collect();
        self.history.push_back((at, now));
        s
    }
}

/// The mean time per call of the top statements (by total time) over their history.
fn baseline(counters: &Counters) -> f64 {
    let mut all: Vec<&(f64, f64, String)> = counters.values().collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all.truncate(TOP);
    let calls: f64 = all.iter().map(|c| c.0).sum();
    let time: f64 = all.iter().map(|c| c.1).sum();
    if calls > 0.0 {
        time / calls
    } else {
        0.0
    }
}
