//! The monitors' [`Throttle`]: the latest verdict, published on a [`Board`] by the
//! sampling loop, turned into decisions between backfill batches and before DDL
//! attempts.
//!
//! AIMD, as TCP does with its window: on throttle the batch cap is halved (at most once
//! per verdict, however many batches run in between) and the worker sleeps as long as
//! its last batch took; while healthy the cap grows back by a fixed step per batch and
//! is dropped once the adaptive sizing stays below it. On pause the workers wait between
//! batches; paused longer than `max_pause`, the run stops with a clear message (nothing
//! is lost: `ratchet backfill` resumes from the cursors). A verdict older than a few
//! intervals counts as a pause: the monitors themselves may have stalled.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::backfill::{BatchStats, Decision, Throttle};
use crate::report::{HealthReport, HealthState};

/// The latest verdict of the monitors, shared by the sampling loop (which publishes) and
/// the throttle (which reads).
#[derive(Debug, Default)]
pub struct Board {
    inner: Mutex<Latest>,
    stop: Mutex<Option<String>>,
}

#[derive(Debug, Clone, Default)]
struct Latest {
    report: Option<HealthReport>,
    /// Counts the published verdicts (the throttle cuts at most once per verdict).
    tick: u64,
    at: Option<Instant>,
    /// Since when the verdict has been other than ok, and since when pause.
    unhealthy_since: Option<Instant>,
    paused_since: Option<Instant>,
}

/// What the throttle reads from the board.
#[derive(Debug, Clone)]
pub struct View {
    pub state: HealthState,
    pub reasons: Vec<String>,
    pub tick: u64,
    pub unhealthy_for: Duration,
    pub paused_for: Duration,
}

impl Board {
    pub fn new() -> Board {
        Board::default()
    }

    /// Publish a new verdict.
    pub fn publish(&self, report: HealthReport) {
        let now = Instant::now();
        let mut l = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        l.tick += 1;
        l.at = Some(now);
        l.unhealthy_since = match report.state {
            HealthState::Ok => None,
            _ => l.unhealthy_since.or(Some(now)),
        };
        l.paused_since = match report.state {
            HealthState::Pause => l.paused_since.or(Some(now)),
            _ => None,
        };
        l.report = Some(report);
    }

    /// The latest verdict, if any was published.
    pub fn latest(&self) -> Option<HealthReport> {
        let l = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        l.report.clone()
    }

    /// The verdict as the throttle sees it: a missing or older than `stale_after` one is
    /// a pause (since the last one, or since now when none ever came).
    pub fn view(&self, stale_after: Duration) -> View {
        let l = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let now = Instant::now();
        let age = l.at.map(|at| now.saturating_duration_since(at));
        let (Some(report), Some(_)) = (l.report, age.filter(|a| *a <= stale_after)) else {
            let since = age.unwrap_or_default();
            return View {
                state: HealthState::Pause,
                reasons: vec![format!(
                    "the monitors have not reported for {:.1} s (no data is not healthy data)",
                    since.as_secs_f64()
                )],
                tick: l.tick,
                unhealthy_for: since,
                paused_for: since,
            };
        };
        let since = |s: Option<Instant>| s.map(|s| now.saturating_duration_since(s));
        View {
            state: report.state,
            reasons: report.reasons,
            tick: l.tick,
            unhealthy_for: since(l.unhealthy_since).unwrap_or_default(),
            paused_for: since(l.paused_since).unwrap_or_default(),
        }
    }

    /// The throttle asked the run to stop (the sampling loop writes the event row).
    pub fn request_stop(&self, why: &str) {
        let mut s = self.stop.lock().unwrap_or_else(|p| p.into_inner());
        s.get_or_insert_with(|| why.to_string());
    }

    /// The stop the throttle asked for, if any (taken once).
    pub fn take_stop(&self) -> Option<String> {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// How the throttle reacts.
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    /// Paused (before DDL: unhealthy) longer than this stops the run.
    pub max_pause: Duration,
    /// How long a paused worker waits before asking again.
    pub poll: Duration,
    /// A verdict older than this counts as a pause.
    pub stale_after: Duration,
    /// The cap never goes below this (the backfill's `min` batch).
    pub min_batch: i64,
    /// What the cap grows by per healthy batch.
    pub step: i64,
}

impl ThrottleSettings {
    /// From the engine's settings.
    pub fn from_config(c: &crate::config::Config) -> ThrottleSettings {
        let m = &c.monitor;
        ThrottleSettings {
            max_pause: m.max_pause,
            poll: (m.interval / 4).clamp(Duration::from_millis(20), Duration::from_secs(1)),
            stale_after: m.interval * 3 + super::sampler_timeout(m) * 2,
            min_batch: c.backfill.min.max(1),
            step: (c.backfill.initial / 10).max(c.backfill.min).max(1),
        }
    }
}

/// The monitors' hook (see the module comment).
#[derive(Debug)]
pub struct MonitorThrottle {
    board: std::sync::Arc<Board>,
    s: ThrottleSettings,
    aimd: Mutex<Aimd>,
}

#[derive(Debug, Default)]
struct Aimd {
    cap: Option<i64>,
    /// The verdict the cap was last cut for.
    cut_at_tick: u64,
}

impl MonitorThrottle {
    pub fn new(board: std::sync::Arc<Board>, s: ThrottleSettings) -> MonitorThrottle {
        MonitorThrottle {
            board,
            s,
            aimd: Mutex::new(Aimd::default()),
        }
    }

    /// The current cap on the batch size, if the throttle keeps one.
    pub fn cap(&self) -> Option<i64> {
        self.aimd.lock().unwrap_or_else(|p| p.into_inner()).cap
    }

    fn stop(&self, what: &str, for_: Duration, reasons: &[String]) -> Decision {
        let why = format!(
            "the database has been {what} for {:.1} s, longer than max_pause ({:.1} s): {}. \
             Nothing is lost",
            for_.as_secs_f64(),
            self.s.max_pause.as_secs_f64(),
            reasons.join("; ")
        );
        self.board.request_stop(&why);
        Decision::Stop(why)
    }

    fn throttled(&self, v: &View, stats: &BatchStats) -> Decision {
        let mut a = self.aimd.lock().unwrap_or_else(|p| p.into_inner());
        if a.cut_at_tick != v.tick || a.cap.is_none() {
            let current = a.cap.unwrap_or(stats.batch_size).min(stats.batch_size);
            a.cap = Some((current / 2).max(self.s.min_batch));
            a.cut_at_tick = v.tick;
        }
        Decision::Throttle {
            max_batch: a.cap.unwrap_or(self.s.min_batch),
            wait: stats
                .duration
                .clamp(Duration::from_millis(10), Duration::from_secs(2)),
            reason: v.reasons.join("; "),
        }
    }

    fn healthy(&self, stats: &BatchStats) -> Decision {
        let mut a = self.aimd.lock().unwrap_or_else(|p| p.into_inner());
        let Some(cap) = a.cap else {
            return Decision::Continue;
        };
        // The adaptive sizing asked for less than the cap: it no longer binds.
        if stats.batch_size < cap {
            a.cap = None;
            return Decision::Continue;
        }
        let cap = cap + self.s.step;
        a.cap = Some(cap);
        Decision::Throttle {
            max_batch: cap,
            wait: Duration::ZERO,
            reason: format!("recovering: batches capped at {cap} rows"),
        }
    }
}

impl Throttle for MonitorThrottle {
    fn after_batch(&self, stats: &BatchStats) -> Decision {
        let v = self.board.view(self.s.stale_after);
        match v.state {
            HealthState::Pause if v.paused_for > self.s.max_pause => {
                self.stop("paused", v.paused_for, &v.reasons)
            }
            HealthState::Pause => Decision::Pause(self.s.poll),
            HealthState::Throttle => self.throttled(&v, stats),
            HealthState::Ok => self.healthy(stats),
        }
    }

    /// No new attempt at a lock while the database is unhealthy at all.
    fn before_attempt(&self) -> Decision {
        let v = self.board.view(self.s.stale_after);
        match v.state {
            HealthState::Ok => Decision::Continue,
            _ if v.unhealthy_for > self.s.max_pause => {
                self.stop("unhealthy", v.unhealthy_for, &v.reasons)
            }
            _ => Decision::Pause(self.s.poll),
        }
    }
}
