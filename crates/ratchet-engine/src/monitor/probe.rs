//! The probe: the user's query (`--probe-sql`), run on its own connection every
//! `probe_interval`, timed; p50 / p99 / max over a sliding window. A probe still running
//! counts with the time it has taken so far, so that a probe stuck behind a lock shows
//! at once. Its p99 over the first `probe_baseline` (before the migration's work
//! begins) is the baseline `max_probe_ratio` compares with, against the p99 of as many
//! of the latest results (`probe_recent_p99_ms`): the p99 of a longer window would pick
//! a higher tail from the same distribution and look like a regression.
//!
//! Several statements (`BEGIN; SELECT …; UPDATE …; ROLLBACK`) run one round trip each
//! and are timed together, as an application's transaction is: each round trip waits
//! for the server again, and on a busy server that is where the latency grows. A failed
//! statement is followed by a `ROLLBACK`, so that an open transaction does not fail
//! every later run.
//!
//! A failing probe fails the monitor (a pause): an application's query that errors is
//! not a healthy sign, and a probe that cannot run says nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::Sample;

/// What the probe task shares with the sampling loop.
#[derive(Debug, Default)]
pub(super) struct Window {
    /// (finished at, took ms), oldest first.
    samples: VecDeque<(Instant, f64)>,
    running_since: Option<Instant>,
    /// The last run's error, cleared by the next success.
    error: Option<String>,
    baseline_p99: Option<f64>,
    /// How many results the baseline's p99 was taken over: the ratio compares it with
    /// the p99 of as many recent results (a p99 over more results picks a higher tail).
    baseline_count: usize,
}

/// The nearest-rank quantile `q` of sorted `v`.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Window {
    fn prune(&mut self, window: Duration, now: Instant) {
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > window)
        {
            self.samples.pop_front();
        }
    }

    /// The window's times (and the running probe's so far), sorted.
    fn sorted(&mut self, window: Duration) -> Vec<f64> {
        let now = Instant::now();
        self.prune(window, now);
        let mut v: Vec<f64> = self.samples.iter().map(|(_, ms)| *ms).collect();
        if let Some(t) = self.running_since {
            let so_far = now.duration_since(t).as_secs_f64() * 1000.0;
            // Only once it is slower than what finished: a fast probe in flight is noise.
            if v.iter().all(|ms| so_far > *ms) {
                v.push(so_far);
            }
        }
        v.sort_by(f64::total_cmp);
        v
    }

    /// The probe's figures, or why it failed.
    pub(super) fn sample(&mut self, window: Duration) -> Result<Sample, String> {
        if let Some(e) = &self.error {
            return Err(format!("the probe query failed: {e}"));
        }
        let v = self.sorted(window);
        if v.is_empty() {
            return Err(format!(
                "no probe result in the last {:.1} s",
                window.as_secs_f64()
            ));
        }
        let mut s = Sample::default();
        s.set("probe_p50_ms", quantile(&v, 0.5));
        s.set("probe_p99_ms", quantile(&v, 0.99));
        s.set("probe_max_ms", v[v.len() - 1]);
        s.set("probe_samples", v.len() as f64);
        if let Some(b) = self.baseline_p99 {
            s.set("probe_baseline_p99_ms", b);
            let n = self.baseline_count.max(1);
            let mut recent: Vec<f64> = self
                .samples
                .iter()
                .rev()
                .take(n)
                .map(|(_, ms)| *ms)
                .collect();
            // The running probe, when it is the slowest, as in the window.
            if v.last().is_some_and(|ms| recent.iter().all(|r| ms > r)) {
                recent.push(v[v.len() - 1]);
            }
            recent.sort_by(f64::total_cmp);
            s.set("probe_recent_p99_ms", quantile(&recent, 0.99));
        }
        Ok(s)
    }

    /// Why the probe could not measure anything at all: every run failed (the error of
    /// the last one), none came back. A query that is wrong in itself shows here at
    /// once, before any work begins.
    pub(super) fn never_measured(&self) -> Option<&str> {
        self.error.as_deref().filter(|_| self.samples.is_empty())
    }

    /// The baseline p99, once fixed.
    pub(super) fn baseline(&self) -> Option<f64> {
        self.baseline_p99
    }

    /// Fix the baseline: the p99 of what the window holds now.
    pub(super) fn set_baseline(&mut self, window: Duration) {
        let v = self.sorted(window);
        if !v.is_empty() && self.error.is_none() {
            self.baseline_p99 = Some(quantile(&v, 0.99));
            self.baseline_count = v.len();
        }
    }
}

fn lock(w: &Mutex<Window>) -> std::sync::MutexGuard<'_, Window> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

/// The probe's loop: run, time, record, sleep, until the task is aborted. Reconnects
/// (through `open`) when its connection is lost.
pub(super) async fn run(
    url: String,
    sql: String,
    every: Duration,
    limit: Duration,
    w: Arc<Mutex<Window>>,
    board: Arc<super::Board>,
) {
    // One round trip per statement; as written when it does not parse (its run fails
    // with the server's error, which the baseline check reports).
    let statements = match crate::fragment::split_statements(&sql) {
        Ok(v) if !v.is_empty() => v,
        _ => vec![sql],
    };
    let mut client: Option<Client> = None;
    loop {
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            match super::connect(&url, "ratchet monitor (probe)", limit).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    lock(&w).error = Some(format!("cannot connect: {e}"));
                    tokio::time::sleep(every.max(Duration::from_millis(500))).await;
                    continue;
                }
            }
        }
        let Some(c) = &client else { continue };
        let t0 = Instant::now();
        lock(&w).running_since = Some(t0);
        let r = run_once(c, &statements).await;
        let took = t0.elapsed();
        {
            let mut g = lock(&w);
            g.running_since = None;
            match r {
                Ok(_) => {
                    let ms = took.as_secs_f64() * 1000.0;
                    g.error = None;
                    g.samples.push_back((Instant::now(), ms));
                    board.probe_result(ms);
                }
                Err(e) => g.error = Some(crate::error::db_message(&e)),
            }
        }
        tokio::time::sleep(every.saturating_sub(took)).await;
    }
}

/// The statements in turn, each its own round trip; after a failure, a `ROLLBACK` (a
/// warning only when no transaction is open) when there were several. This is one run of
/// the probe, as the monitors time it (`ratchet bench throttle` times its own the same way).
pub async fn run_once(c: &Client, statements: &[String]) -> Result<(), tokio_postgres::Error> {
    for s in statements {
        if let Err(e) = c.simple_query(s).await {
            if statements.len() > 1 {
                let _ = c.simple_query("ROLLBACK").await;
            }
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
