//! The CLI's reporter: the engine's events become the status block on a terminal, plain
//! lines otherwise, or JSON lines; [`Tee`] hands every event to several reporters (the
//! output and the metrics).
#![allow(clippy::print_stderr)]

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ratchet_engine::{Event, Reporter};

use super::{render, Live};
use crate::output::err_line;

/// How progress is shown (`--progress`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// The status block on a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// The status block, redrawn in place (needs a terminal on stderr).
    Block,
    /// One line per step, retry and health change, and a status line every
    /// `--status-interval`.
    Plain,
    /// One JSON object per event, one per line.
    Json,
}

/// The status block, plain lines or JSON lines on stderr.
pub struct LiveReporter {
    live: Arc<Mutex<Live>>,
    mode: ProgressMode,
    /// The block, while a step runs (terminal only).
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl LiveReporter {
    /// `mode` as asked (`Auto` resolved against stderr); plain lines every `interval`.
    pub fn new(mode: ProgressMode, interval: Duration) -> Arc<LiveReporter> {
        use std::io::IsTerminal;
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Block,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        };
        let r = Arc::new(LiveReporter {
            live: Arc::new(Mutex::new(Live::default())),
            mode,
            bar: Mutex::new(None),
        });
        if matches!(mode, ProgressMode::Plain | ProgressMode::Json) && !interval.is_zero() {
            spawn_ticker(Arc::downgrade(&r.live), interval, mode);
        }
        r
    }

    /// The picture so far.
    pub fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plan's steps of `phase`, to show "step 3/5".
    pub fn hint_steps(&self, phase: &str, steps: Vec<usize>) {
        self.live().steps_of.insert(phase.to_string(), steps);
    }

    pub fn hint_workers(&self, workers: usize) {
        self.live().workers = Some(workers);
    }

    pub fn hint_migration(&self, name: &str) {
        self.live().migration = Some(name.to_string());
    }

    /// The migration and the steps of each phase of `plan` (a migration about to start).
    pub fn hint_plan_of(&self, plan: &ratchet_engine::Plan) {
        self.hint_migration(&plan.migration);
        for phase in [
            ratchet_engine::Phase::Start,
            ratchet_engine::Phase::Complete,
            ratchet_engine::Phase::Abort,
        ] {
            let steps = plan.steps_of(phase).map(|(i, _)| i).collect();
            self.hint_steps(phase.as_str(), steps);
        }
    }

    fn bar(&self) -> MutexGuard<'_, Option<indicatif::ProgressBar>> {
        self.bar.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A line above the block (or alone when there is none).
    fn println(&self, s: &str) {
        match self.bar().as_ref() {
            Some(b) => b.println(s),
            None => err_line(s),
        }
    }

    fn block(&self, event: &Event, worth_a_line: bool) {
        if let Some(l) = render::event_line(event).filter(|_| worth_a_line) {
            if matches!(event, Event::StepDone { .. }) {
                self.end();
                self.summary();
            }
            self.println(&l);
        }
        if self.live().step.is_none() {
            return;
        }
        // A line wider than the terminal would wrap and break the redraw in place.
        let width = console::Term::stderr()
            .size_checked()
            .map_or(usize::MAX, |(_, w)| usize::from(w).saturating_sub(1));
        let lines = render::block(&self.live());
        let text = lines
            .iter()
            .map(|l| l.chars().take(width).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n");
        let mut bar = self.bar();
        let b = bar.get_or_insert_with(new_block);
        b.set_message(text);
    }

    /// A finished backfill's last figures, kept on screen once the block is gone.
    fn summary(&self) {
        let Some(b) = self.live().backfill.clone() else {
            return;
        };
        err_line(format!(
            "  backfill {}: {} rows, {:.0} rows/s",
            b.table, b.rows_done, b.rows_per_second
        ));
    }

    /// Take the block off the screen (before an error is printed, at the end).
    pub fn end(&self) {
        if let Some(b) = self.bar().take() {
            b.finish_and_clear();
        }
    }
}

/// The block: the rendered lines as its message, with the step's elapsed time ticking.
fn new_block() -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new_spinner();
    b.set_style(
        indicatif::ProgressStyle::with_template("{msg}\n  elapsed  {elapsed_precise} {spinner}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    b.enable_steady_tick(Duration::from_millis(250));
    b
}

/// Print the status every `interval` while a step runs, until the reporter is gone: the
/// plain line, or in JSON mode the whole picture as one `{"event": "status", …}` object.
fn spawn_ticker(live: std::sync::Weak<Mutex<Live>>, interval: Duration, mode: ProgressMode) {
    std::thread::spawn(move || loop {
        std::thread::sleep(interval);
        let Some(live) = live.upgrade() else {
            return;
        };
        let live = live.lock().unwrap_or_else(|e| e.into_inner());
        if live.step.is_none() {
            continue;
        }
        match mode {
            ProgressMode::Json => err_line(render::status_json(&live).to_string()),
            _ => err_line(render::plain_line(&live)),
        }
    });
}

impl Reporter for LiveReporter {
    fn report(&self, event: &Event) {
        let worth_a_line = self.live().apply(event);
        match self.mode {
            // A verdict comes every monitor interval: a line when it changed (the
            // `status` objects carry the latest figures).
            ProgressMode::Json if matches!(event, Event::Health(_)) && !worth_a_line => {}
            ProgressMode::Json => err_line(render::event_json(event).to_string()),
            ProgressMode::Block | ProgressMode::Auto => self.block(event, worth_a_line),
            ProgressMode::Plain => {
                if let Some(l) = render::event_line(event).filter(|_| worth_a_line) {
                    err_line(l);
                }
            }
        }
    }
}

impl Drop for LiveReporter {
    fn drop(&mut self) {
        self.end();
    }
}

/// Every event to each reporter, in order.
pub struct Tee(pub Vec<Arc<dyn Reporter>>);

impl Reporter for Tee {
    fn report(&self, event: &Event) {
        for r in &self.0 {
            r.report(event);
        }
    }
}
