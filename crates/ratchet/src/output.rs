//! What the user sees: progress lines on stderr, results on stdout, errors with their
//! whole cause chain.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use ratchet_engine::{Event, Reporter};

/// Logs go to stderr; `-v` shows every statement the engine runs with its duration.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "ratchet_engine=info,warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Print an error and its causes once.
pub fn error(e: &anyhow::Error) {
    err_line(format!("error: {e}"));
    let mut previous = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        // An error that already quotes its cause (a failed step names what failed and
        // the next step) would otherwise print the cause, and its advice, twice.
        if !previous.contains(&cause) {
            err_line(format!("  caused by: {cause}"));
        }
        previous = cause;
    }
}

/// A line on stdout. When the reader has gone (`ratchet status | head -1`), exit quietly
/// with 0 as other Unix tools do instead of panicking like `println!` (issue 9): the
/// work is done by the time results are printed, only the rest of the output is lost.
pub fn line(s: impl AsRef<str>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let res = writeln!(out, "{}", s.as_ref()).and_then(|()| out.flush());
    if let Err(e) = res {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// A line on stderr; a closed stderr is ignored (never panic on output).
pub fn err_line(s: impl AsRef<str>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{}", s.as_ref());
}

/// A warning on stderr.
pub fn warn(s: &str) {
    err_line(format!("warning: {s}"));
}

/// Progress of the engine on stderr: a bar for backfills on a terminal, one line per
/// event otherwise.
pub struct Progress {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
    tty: bool,
    last_line: std::sync::Mutex<std::time::Instant>,
}

impl Progress {
    pub fn new() -> Progress {
        use std::io::IsTerminal;
        Progress {
            bar: std::sync::Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
            last_line: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    fn backfill(&self, table: &str, done: u64, total: Option<u64>, rate: f64, batch: i64) {
        if !self.tty {
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= std::time::Duration::from_secs(1) {
                *last = std::time::Instant::now();
                let total = total.map(|t| format!("/~{t}")).unwrap_or_default();
                err_line(format!(
                    "  backfill {table}: {done}{total} rows, {rate:.0} rows/s, batch {batch}"
                ));
            }
            return;
        }
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let b = bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total.unwrap_or(0).max(done));
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "  backfill {prefix} [{bar:30}] {pos}/{len} rows {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(table.to_string());
            b
        });
        if b.length().unwrap_or(0) < done {
            b.set_length(done);
        }
        b.set_position(done);
        b.set_message(format!("{rate:.0} rows/s, batch {batch}"));
    }

    fn end_bar(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Reporter for Progress {
    fn report(&self, event: &Event) {
        if !matches!(event, Event::Backfill { .. }) {
            self.end_bar();
        }
        match event {
            Event::Backfill {
                table,
                rows_done,
                rows_total,
                rows_per_second,
                batch_size,
                ..
            } => self.backfill(
                table,
                *rows_done,
                *rows_total,
                *rows_per_second,
                *batch_size,
            ),
            Event::StepStarted { .. } => {}
            Event::StepDone {
                phase,
                step,
                description,
                duration,
                attempts,
            } => {
                let retries = if *attempts > 1 {
                    format!(", {attempts} attempts")
                } else {
                    String::new()
                };
                err_line(format!(
                    "  ✓ [{} #{step}] {description} ({} ms{retries})",
                    phase.as_str(),
                    duration.as_millis()
                ));
            }
            Event::StepSkipped {
                phase,
                step,
                description,
            } => err_line(format!(
                "  · [{} #{step}] {description} (already done)",
                phase.as_str()
            )),
            Event::Retry {
                description,
                attempt,
                wait,
                sqlstate,
                message,
                blockers,
            } => {
                let by = if blockers.is_empty() {
                    String::new()
                } else {
                    format!("; blocked by {}", blockers.join(", "))
                };
                err_line(format!(
                    "  ↻ {description}: {message} [{sqlstate}]{by}; retry {} in {} ms",
                    attempt + 1,
                    wait.as_millis()
                ))
            }
            Event::Health(h) => {
                if h.state != ratchet_engine::report::HealthState::Ok || !h.reasons.is_empty() {
                    err_line(format!("  health: {:?}: {}", h.state, h.reasons.join("; ")));
                }
            }
            Event::Info(s) => err_line(format!("  {s}")),
        }
    }
}
