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
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// A line on stdout.
pub fn line(s: impl AsRef<str>) {
    println!("{}", s.as_ref());
}

/// Progress of the engine, one line per event on stderr.
pub struct Progress;

impl Reporter for Progress {
    fn report(&self, event: &Event) {
        match event {
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
                eprintln!(
                    "  ✓ [{} #{step}] {description} ({} ms{retries})",
                    phase.as_str(),
                    duration.as_millis()
                );
            }
            Event::StepSkipped {
                phase,
                step,
                description,
            } => eprintln!(
                "  · [{} #{step}] {description} (already done)",
                phase.as_str()
            ),
            Event::Retry {
                description,
                attempt,
                wait,
                sqlstate,
                message,
            } => eprintln!(
                "  ↻ {description}: {message} [{sqlstate}]; retry {} in {} ms",
                attempt + 1,
                wait.as_millis()
            ),
            Event::Info(s) => eprintln!("  {s}"),
        }
    }
}
