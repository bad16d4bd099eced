//! The live picture of a running migration, the same whether it is folded from the
//! engine's events in the process that runs it or read from the state schema by `ratchet
//! status --watch` in another terminal; and the three ways it is shown (`render`): the
//! block redrawn in place on a terminal, one plain line every few seconds otherwise, and
//! JSON lines for machines. `reporter` is the CLI's [`ratchet_engine::Reporter`].

pub mod render;
pub mod reporter;
pub mod watch;

use std::collections::BTreeMap;
use std::time::Duration;

use ratchet_engine::report::HealthReport;
use ratchet_engine::Event;

/// What the status block shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    pub migration: Option<String>,
    /// `start`, `complete`, `abort`, or the migration's phase as stored (`started`, …).
    pub phase: Option<String>,
    pub step: Option<StepNow>,
    pub backfill: Option<BackfillNow>,
    pub workers: Option<usize>,
    pub health: Option<HealthReport>,
    /// The latest retry, as one line, while its step runs.
    pub retry: Option<String>,
    /// An operator paused the migration (`paused` control): by whom.
    pub paused_by: Option<String>,
    /// Who runs the migration (`status --watch` only): "pid 4242 on host", or why none.
    pub runner: Option<String>,
    /// The newest events, one line each (`status --watch` only).
    pub events: Vec<String>,
    /// The plan's step indexes by phase, to show "step 3/5" (hinted by the command).
    pub steps_of: BTreeMap<String, Vec<usize>>,
}

/// The step that runs now.
#[derive(Debug, Clone, PartialEq)]
pub struct StepNow {
    pub phase: String,
    /// Its index in the plan.
    pub index: usize,
    pub description: String,
}

/// The backfill that runs now (or ran last, until the next step starts).
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillNow {
    pub table: String,
    pub rows_done: u64,
    pub rows_total: Option<u64>,
    pub rows_per_second: f64,
    pub batch_size: Option<i64>,
    pub batch_duration: Option<Duration>,
    /// A validation (rows checked, not filled): the mismatches found so far.
    pub mismatches: Option<u64>,
}

impl BackfillNow {
    /// What the rows go through: "backfill", or "validate" for a validation.
    pub fn verb(&self) -> &'static str {
        match self.mismatches {
            Some(_) => "validate",
            None => "backfill",
        }
    }

    /// Done as a fraction of the estimated total (the estimate may be exceeded).
    pub fn fraction(&self) -> Option<f64> {
        let total = self.rows_total.filter(|t| *t > 0)?;
        Some((self.rows_done as f64 / total as f64).min(1.0))
    }

    /// Time left at the current rate, when both are known.
    pub fn eta(&self) -> Option<Duration> {
        let total = self.rows_total?;
        if self.rows_per_second <= 0.0 {
            return None;
        }
        let left = total.saturating_sub(self.rows_done) as f64;
        Some(Duration::from_secs_f64(left / self.rows_per_second))
    }
}

impl Live {
    /// Fold one engine event into the picture. Returns whether it is worth a line of its
    /// own in the plain form (a step, a retry, a change of health).
    pub fn apply(&mut self, event: &Event) -> bool {
        match event {
            Event::StepStarted {
                phase,
                step,
                description,
            } => {
                self.phase = Some(phase.as_str().to_string());
                self.step = Some(StepNow {
                    phase: phase.as_str().to_string(),
                    index: *step,
                    description: description.clone(),
                });
                self.backfill = None;
                self.retry = None;
                false
            }
            Event::StepDone { .. } => {
                self.step = None;
                self.retry = None;
                true
            }
            Event::StepSkipped { .. } | Event::Info(_) => true,
            // Held: a line; let go: the "resumed after" line says it.
            Event::Held(hold) => {
                self.paused_by = hold.as_ref().map(|h| h.by.clone());
                hold.is_some()
            }
            Event::Retry { .. } => {
                self.retry = Some(render::retry_line(event));
                true
            }
            Event::Backfill {
                table,
                rows_done,
                rows_total,
                rows_per_second,
                batch_size,
                batch_duration,
            } => {
                self.backfill = Some(BackfillNow {
                    table: table.clone(),
                    rows_done: *rows_done,
                    rows_total: *rows_total,
                    rows_per_second: *rows_per_second,
                    batch_size: Some(*batch_size),
                    batch_duration: Some(*batch_duration),
                    mismatches: None,
                });
                false
            }
            Event::Validate {
                table,
                rows_checked,
                rows_total,
                mismatches,
                rows_per_second,
                chunk_size,
                chunk_duration,
            } => {
                self.backfill = Some(BackfillNow {
                    table: table.clone(),
                    rows_done: *rows_checked,
                    rows_total: *rows_total,
                    rows_per_second: *rows_per_second,
                    batch_size: Some(*chunk_size),
                    batch_duration: Some(*chunk_duration),
                    mismatches: Some(*mismatches),
                });
                false
            }
            Event::Health(h) => {
                let changed = self
                    .health
                    .as_ref()
                    .is_none_or(|old| old.state != h.state || old.reasons != h.reasons);
                self.health = Some(h.clone());
                changed
            }
        }
    }

    /// "3/5" when the plan's steps are known, else "#3".
    pub fn step_position(&self, step: &StepNow) -> String {
        let Some(steps) = self.steps_of.get(&step.phase) else {
            return format!("#{}", step.index);
        };
        match steps.iter().position(|i| *i == step.index) {
            Some(n) => format!("{}/{}", n + 1, steps.len()),
            None => format!("#{}", step.index),
        }
    }

    /// A figure of the latest health report.
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.health.as_ref()?.figures.get(name).copied()
    }
}
