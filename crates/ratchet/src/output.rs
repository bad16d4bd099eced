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

/// Progress of the engine on stderr: the status block on a terminal, plain lines
/// otherwise (a status line every 10 s); see `live::reporter` for the options the
/// commands that run steps have.
pub struct Progress(std::sync::Arc<crate::live::reporter::LiveReporter>);

impl Progress {
    pub fn new() -> Progress {
        Progress(crate::live::reporter::LiveReporter::new(
            crate::live::reporter::ProgressMode::Auto,
            std::time::Duration::from_secs(10),
        ))
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Reporter for Progress {
    fn report(&self, event: &Event) {
        self.0.report(event);
    }
}
