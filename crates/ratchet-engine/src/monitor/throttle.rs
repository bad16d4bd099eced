//! The monitors' [`Throttle`]: the latest verdict, published on a [`Board`] by the
//! sampling loop, turned into decisions between backfill batches and before DDL
//! attempts.
//!
//! AIMD, as TCP does with its window, on two levers: the batch size and a pause after
//! each batch (a multiple of the batch's own time). On a throttle verdict the cap on the
//! batch size is halved (at most once per verdict, however many batches run in
//! between, and not below the growth step: smaller batches spend more on their commit
//! than on rows) and the pause doubles (at least one batch time, at most [`MAX_PACE`]).
//! While healthy the pause eases off by one batch time per second (additively: halving it
//! would bring the backfill back in bursts), then the cap grows back by a fixed step per
//! batch and is dropped once the adaptive sizing stays below it. Only batches that ran
//! count: while the backfill is held (a pause verdict, an operator's `ratchet pause`,
//! another hook) nothing eases off or grows, so it comes back as slow as it left. On pause the
//! workers wait between batches; paused longer than `max_pause`, the run stops with a
//! clear message (nothing is lost: `ratchet backfill` resumes from the cursors). A
//! verdict older than a few intervals counts as a pause: the monitors themselves may
//! have stalled.
//!
//! Between the verdicts (one per `interval`) the probe steers too, aiming at its latency
//! budget (its baseline times `max_probe_ratio`, at most `max_probe_p99_ms`): the probe
//! task hands every result to the [`Board`], and after each batch the slowest of the
//! last second's results is compared with the budget. Each new result over it counts
//! as a throttle verdict. So the backfill's share of the server follows what the
//! application feels within a probe interval or two.

use std::collections::VecDeque;
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
    latency: Mutex<Latency>,
}

/// The probe's latest results and the budget the pacer aims at.
#[derive(Debug, Default)]
struct Latency {
    budget_ms: Option<f64>,
    /// (finished at, took ms), oldest first, at most [`FAST_WINDOW`] old.
    recent: VecDeque<(Instant, f64)>,
}

/// How far back the pacer looks at the probe's results.
pub const FAST_WINDOW: Duration = Duration::from_secs(1);

/// The longest pause after a batch, as a multiple of the batch's time: at 32 the backfill
/// runs a thirty-third of the time.
pub const MAX_PACE: f64 = 32.0;

/// The probe's pressure on its budget: the slowest recent result over the budget (above
/// 1.0 is over), with the figures for the reason.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub ratio: f64,
    pub slowest_ms: f64,
    pub budget_ms: f64,
    /// Counts the probe results that were over the budget when they came (the pacer cuts
    /// once per such result, not again for faster ones while a slow one is recent).
    pub results: u64,
}

#[derive(Debug, Clone, Default)]
struct Latest {
    report: Option<HealthReport>,
    /// Counts the published verdicts (the throttle cuts at most once per verdict).
    tick: u64,
    at: Option<Instant>,
    /// Since when the verdict has been other than ok, and since its first pause (throttle
    /// verdicts in between do not end it, an ok one does).
    unhealthy_since: Option<Instant>,
    paused_since: Option<Instant>,
    /// The probe results over the budget so far.
    probe_results: u64,
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
        // Only a healthy verdict ends a pause: a database that swings between pause and
        // throttle never lets the backfill go on, and must stop it after `max_pause`
        // as one that stays paused does (the backfill would crawl at its smallest
        // batches for ever).
        l.paused_since = match report.state {
            HealthState::Pause => l.paused_since.or(Some(now)),
            HealthState::Throttle => l.paused_since,
            HealthState::Ok => None,
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

    /// The latency budget the pacer aims at (none: no probe, or no limit set).
    pub fn set_latency_budget(&self, budget_ms: Option<f64>) {
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        l.budget_ms = budget_ms.filter(|b| *b > 0.0 && b.is_finite());
    }

    /// One probe result, in ms.
    pub fn probe_result(&self, ms: f64) {
        let now = Instant::now();
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        l.recent.push_back((now, ms));
        while l
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > FAST_WINDOW)
        {
            l.recent.pop_front();
        }
        let over = l.budget_ms.is_some_and(|b| ms > b);
        drop(l);
        if over {
            let mut i = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            i.probe_results += 1;
        }
    }

    /// How the probe's last second compares with the budget, when there are both.
    pub fn pressure(&self) -> Option<Pressure> {
        let now = Instant::now();
        let l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let budget_ms = l.budget_ms?;
        let slowest_ms = l
            .recent
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= FAST_WINDOW)
            .map(|(_, ms)| *ms)
            .reduce(f64::max)?;
        drop(l);
        let results = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .probe_results;
        Some(Pressure {
            ratio: slowest_ms / budget_ms,
            slowest_ms,
            budget_ms,
            results,
        })
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
    /// How fast the pause after each batch eases off while healthy, in batch times per
    /// second ([`PACE_EASE_PER_S`]).
    pub ease_per_s: f64,
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
            ease_per_s: PACE_EASE_PER_S,
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
    /// The pause after a batch, as a multiple of the batch's time.
    pace: f64,
    /// The probe result the pacer last raised the pause for.
    paced_at_result: u64,
    /// When the pause last changed (it eases off with time, not per batch).
    paced_at: Option<Instant>,
    /// The batch last steered for, when the hook was last asked, and the wait it gave.
    seen: Option<(u64, Instant, Duration)>,
}

/// How fast the pause eases off once nothing is over its limit any more, in batch times
/// per second: additively, so that it settles where the application stops noticing
/// (halving it would bring the backfill back in bursts, each one a latency spike).
pub const PACE_EASE_PER_S: f64 = 1.0;

/// What a gap between two batches may take beyond the batch and its wait before the rest
/// counts as held (see [`Aimd::skip_held`]).
const HELD_SLACK: Duration = Duration::from_millis(100);

/// The longest single wait after a batch.
const MAX_WAIT: Duration = Duration::from_secs(5);

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

    /// The pause after each batch, as a multiple of the batch's time.
    pub fn pace(&self) -> f64 {
        self.aimd.lock().unwrap_or_else(|p| p.into_inner()).pace
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

    /// The smallest cap: batches far below the growth step spend more on their commit
    /// than on rows, and the pause is what lowers the load.
    fn floor(&self) -> i64 {
        self.s.min_batch.max(self.s.step)
    }

    /// Between batches while the verdict is throttle or ok: the cap and the pause.
    fn steer(&self, v: &View, stats: &BatchStats) -> Decision {
        let mut a = self.aimd.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let throttled = v.state == HealthState::Throttle;
        let fresh = a.skip_held(stats, now);
        let mut raised = false;
        // A new throttle verdict: halve the cap, double the pause.
        if fresh && throttled && (a.cut_at_tick != v.tick || a.cap.is_none()) {
            a.cut(stats.batch_size, self.floor());
            a.cut_at_tick = v.tick;
            a.raise(now);
            raised = true;
        }
        // A new probe result over the budget: the same, between the verdicts.
        let pressure = self.board.pressure();
        let over = pressure.filter(|p| p.ratio > 1.0);
        if let Some(p) = over.filter(|_| fresh) {
            if p.results != a.paced_at_result {
                a.paced_at_result = p.results;
                if !raised {
                    a.cut(stats.batch_size, self.floor());
                    a.raise(now);
                }
            }
        }
        let easy = !throttled && over.is_none();
        if fresh && easy {
            a.ease(now, self.s.ease_per_s);
            // The batches grow back once the pause is gone: one lever at a time.
            if let Some(cap) = a.cap.filter(|_| a.pace == 0.0) {
                // The adaptive sizing asked for less than the cap: it no longer binds.
                a.cap = (stats.batch_size >= cap).then_some(cap + self.s.step);
            }
        }
        let wait = stats.duration.mul_f64(a.pace).min(MAX_WAIT);
        if let Some((_, _, w)) = a.seen.as_mut() {
            *w = wait;
        }
        if a.cap.is_none() && wait.is_zero() {
            return Decision::Continue;
        }
        let reason = match (throttled, over, a.cap) {
            (true, _, _) => v.reasons.join("; "),
            (false, Some(p), _) => format!(
                "probe {:.2} ms over its budget {:.2} ms: pausing {:.1}x the batch time",
                p.slowest_ms, p.budget_ms, a.pace
            ),
            (false, None, Some(cap)) => format!("recovering: batches capped at {cap} rows"),
            (false, None, None) => format!(
                "recovering: pausing {:.1}x the batch time after each batch",
                a.pace
            ),
        };
        Decision::Throttle {
            max_batch: a.cap.unwrap_or(i64::MAX),
            wait,
            reason,
        }
    }
}

impl Aimd {
    /// Whether `stats` is a new batch; and the time the backfill did not run since the
    /// hook was last asked (held by a pause verdict, an operator's pause, another hook)
    /// is left out of the easing. While held, the workers ask again with the same batch:
    /// those calls change nothing (the cap grew by a step per call, and was dropped, and
    /// the pause eased off to nothing, so the backfill came back from every hold with
    /// full batches and no pause, the burst the pacer had stopped). A new batch after a
    /// gap longer than a batch and its wait (twice over, with some slack: the cursor's
    /// write, the other workers) was held for the rest of the gap too.
    fn skip_held(&mut self, stats: &BatchStats, now: Instant) -> bool {
        let fresh = self.seen.is_none_or(|(seq, _, _)| seq != stats.seq);
        if let Some((_, last, waited)) = self.seen {
            let gap = now.saturating_duration_since(last);
            let held = if fresh {
                gap.saturating_sub((stats.duration + waited) * 2 + HELD_SLACK)
            } else {
                gap
            };
            if let Some(at) = self.paced_at.as_mut() {
                *at = (*at + held).min(now);
            }
        }
        let waited = self.seen.map(|(_, _, w)| w).unwrap_or_default();
        self.seen = Some((stats.seq, now, waited));
        fresh
    }

    /// Halve the cap (from the batch just run when it is lower), not below `floor`.
    fn cut(&mut self, batch_size: i64, floor: i64) {
        let current = self.cap.unwrap_or(batch_size).min(batch_size);
        self.cap = Some((current / 2).max(floor));
    }

    /// Double the pause (at least one batch time, at most [`MAX_PACE`]).
    fn raise(&mut self, now: Instant) {
        self.pace = (self.pace * 2.0).clamp(1.0, MAX_PACE);
        self.paced_at = Some(now);
    }

    /// Let the pause ease off by `per_s` batch times per second.
    fn ease(&mut self, now: Instant, per_s: f64) {
        let Some(at) = self.paced_at else {
            return;
        };
        let secs = now.saturating_duration_since(at).as_secs_f64();
        self.pace -= secs * per_s;
        self.paced_at = Some(now);
        if self.pace <= 0.0 {
            self.pace = 0.0;
            self.paced_at = None;
        }
    }
}

impl Throttle for MonitorThrottle {
    fn after_batch(&self, stats: &BatchStats) -> Decision {
        let v = self.board.view(self.s.stale_after);
        match v.state {
            HealthState::Pause if v.paused_for > self.s.max_pause => self.stop(
                "paused (with no healthy verdict since)",
                v.paused_for,
                &v.reasons,
            ),
            HealthState::Pause => {
                // Paused time is not healthy time: the pace does not ease off meanwhile.
                let mut a = self.aimd.lock().unwrap_or_else(|p| p.into_inner());
                a.skip_held(stats, Instant::now());
                Decision::Pause(self.s.poll)
            }
            HealthState::Throttle | HealthState::Ok => self.steer(&v, stats),
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
