//! The `ratchet` binary: arguments, config, output. All the work happens in the library
//! crates; this file parses the command line and hands over.
//!
//! Exit codes: 0 success, 1 refused (a gate, a validation, another runner holds the
//! migration lock, lint findings), 2 usage, a bad migration file, configuration or
//! database errors.

mod bench;
mod bench_flags;
mod bench_throttle;
mod config_file;
mod demo;
mod engine_cmd;
mod lint_cmd;
mod live;
mod metrics;
mod output;

use clap::{Parser, Subcommand};

/// PostgreSQL schema changes that never need a rollback.
///
/// Expand first (additive changes only, old and new application versions both work),
/// contract later. Exit codes: 0 success, 1 refused (a gate or validation, another
/// ratchet process holds the migration lock, lint findings), 2 usage, configuration or
/// database error (a bad migration file included).
///
/// Durations take a unit: 500ms, 2s, 1m (a bare number is refused; 0 needs none).
///
/// Connection options (--database-url, --config, --schema, --state-schema,
/// --lock-timeout, --max-attempts, --wait) may stand before or after the subcommand.
///
/// The engine settings (schema, state schema, lock timeout, attempts, wait, backfill
/// batches and workers) can also come from the `[engine]` table of ./ratchet.toml (or
/// --config FILE); a flag overrides it. `ratchet config` shows what applies and why.
#[derive(Parser, Debug)]
#[command(name = "ratchet", version, about, long_about)]
struct Cli {
    /// More log output on stderr (-v: statements, -vv: debug). RUST_LOG is honoured too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or upgrade ratchet's state schema (idempotent; every command does it too).
    Init(engine_cmd::ConnArgs),
    /// Print every statement `start` and `complete` would run, with the lock each takes.
    Plan(engine_cmd::PlanArgs),
    /// Expand phase: apply the additive part of a migration; prints the version schema.
    Start(engine_cmd::StartArgs),
    /// Contract phase of the active migration: drop what the old version needed.
    Complete(engine_cmd::CompleteArgs),
    /// Run or resume the backfills of the active migration.
    Backfill(engine_cmd::BackfillCmdArgs),
    /// Check every backfilled row (new = up(old)); --repair fixes mismatches.
    Validate(engine_cmd::ValidateArgs),
    /// Undo an expand that has not been completed (drops only what start added).
    Abort(engine_cmd::ConnArgs),
    /// Give the live version schemas and views the base schema's and tables' privileges
    /// again (after a GRANT made once the migration had started); never revokes.
    Grants(engine_cmd::ConnArgs),
    /// Apply every migration of a folder not applied yet, in name order.
    Migrate(engine_cmd::MigrateArgs),
    /// Show the active migration, the version schema to use, and the history.
    Status(engine_cmd::StatusArgs),
    /// Probe the server and the role: version and flavour, security_invoker views, row
    /// triggers, advisory locks, privileges, monitoring rights, settings, extensions.
    /// Exit 1 when something a migration needs is missing.
    Doctor(engine_cmd::DoctorArgs),
    /// Stop the running migration between two backfill batches (and before its next DDL
    /// attempt) until `ratchet resume`; works from any machine that reaches the database.
    Pause(engine_cmd::PauseArgs),
    /// Let a paused migration continue.
    Resume(engine_cmd::ConnArgs),
    /// Change a setting of the running migration from its next batch: batch-size,
    /// target-batch-ms, workers, max-probe-p99-ms (VALUE `default` clears it).
    Set(engine_cmd::SetArgs),
    /// The event log: every step, retry, pause, resume and setting change, with who and
    /// when (--follow keeps printing new ones).
    Events(engine_cmd::EventsArgs),
    /// Feature flags for schema usage: list, get, set (on, off, a percentage of keys),
    /// history. Applications read them with `SELECT ratchet.flag(name, key)`.
    Flags(engine_cmd::FlagsArgs),
    /// Stop all changes (start, migrate, complete refuse for everyone) until `ratchet
    /// unfreeze`: stabilize, then fix forward.
    Freeze(engine_cmd::FreezeArgs),
    /// Lift the freeze.
    Unfreeze(engine_cmd::ConnArgs),
    /// The application instances (from their heartbeats) and the versions they use; the
    /// sessions using each version schema right now.
    Clients(engine_cmd::ClientsArgs),
    /// Print a connection string that selects a version's schema
    /// (`options=-c search_path=…`), for applications in any language.
    Url(engine_cmd::UrlArgs),
    /// Print the engine settings in effect (flags, the `[engine]` table of ratchet.toml,
    /// defaults) and where each comes from.
    Config(engine_cmd::ConfigArgs),
    /// Run a migration end to end on a throwaway PostgreSQL cluster.
    Demo(demo::DemoArgs),
    /// Benchmarks printed side by side with their baselines (`bench backfill`, `bench flags`).
    Bench(bench::BenchArgs),
    /// Check SQL migrations (and ratchet migration files) for unsafe changes.
    Lint(lint_cmd::LintArgs),
    /// Print the documentation of a lint rule.
    Explain(lint_cmd::ExplainArgs),
    /// Turn a plain SQL migration into a ratchet migration file.
    Convert(lint_cmd::ConvertArgs),
}

/// The options of [`engine_cmd::ConnArgs`]; all take a value.
const CONNECTION_OPTIONS: &[&str] = &[
    "--database-url",
    "--config",
    "--schema",
    "--state-schema",
    "--lock-timeout",
    "--max-attempts",
    "--wait",
];

/// Move connection options written before the subcommand (`ratchet --database-url X
/// start f.yaml`) behind it, where clap expects them. They cannot simply be clap
/// `global` options: `demo` and `bench` have a `--database-url` of their own, read from
/// another environment variable so that they never touch `DATABASE_URL`'s database.
fn hoist_connection_options(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut before = Vec::new();
    let mut moved = Vec::new();
    let mut it = args.into_iter();
    before.extend(it.next());
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().into_owned();
        let name = text.split('=').next().unwrap_or_default();
        if CONNECTION_OPTIONS.contains(&name) {
            let has_value = text.contains('=');
            moved.push(arg);
            if !has_value {
                moved.extend(it.next());
            }
            continue;
        }
        let is_subcommand = !text.starts_with('-');
        before.push(arg);
        if is_subcommand {
            break;
        }
    }
    before.extend(moved);
    before.extend(it);
    before
}

/// Whether the failure is only a closed stdout (`ratchet explain x | head -1`).
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() {
    let cli = Cli::parse_from(hoist_connection_options(std::env::args_os().collect()));
    output::init_tracing(cli.verbose);
    let result = match &cli.command {
        Command::Lint(a) => lint_cmd::run_lint(a),
        Command::Explain(a) => lint_cmd::run_explain(a),
        Command::Convert(a) => lint_cmd::run_convert(a),
        Command::Config(a) => engine_cmd::show_config(a),
        other => runtime().and_then(|rt| rt.block_on(run_async(other))),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) if broken_pipe(&e) => std::process::exit(0),
        Err(e) => {
            output::error(&e);
            std::process::exit(engine_cmd::exit_code(&e));
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

async fn run_async(command: &Command) -> anyhow::Result<i32> {
    match command {
        Command::Init(a) => engine_cmd::init(a).await,
        Command::Plan(a) => engine_cmd::plan(a).await,
        Command::Start(a) => engine_cmd::start(a).await,
        Command::Complete(a) => engine_cmd::complete(a).await,
        Command::Backfill(a) => engine_cmd::backfill(a).await,
        Command::Validate(a) => engine_cmd::validate(a).await,
        Command::Abort(a) => engine_cmd::abort(a).await,
        Command::Grants(a) => engine_cmd::grants(a).await,
        Command::Migrate(a) => engine_cmd::migrate(a).await,
        Command::Status(a) => engine_cmd::status(a).await,
        Command::Doctor(a) => engine_cmd::doctor(a).await,
        Command::Pause(a) => engine_cmd::pause(a).await,
        Command::Resume(a) => engine_cmd::resume(a).await,
        Command::Set(a) => engine_cmd::set(a).await,
        Command::Events(a) => engine_cmd::events(a).await,
        Command::Flags(a) => engine_cmd::flags(a).await,
        Command::Freeze(a) => engine_cmd::freeze(a).await,
        Command::Unfreeze(a) => engine_cmd::unfreeze(a).await,
        Command::Clients(a) => engine_cmd::clients(a).await,
        Command::Url(a) => engine_cmd::print_url(a).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Bench(a) => bench::run(a).await,
        Command::Lint(_) | Command::Explain(_) | Command::Convert(_) | Command::Config(_) => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::hoist_connection_options;

    fn hoist(args: &[&str]) -> Vec<String> {
        hoist_connection_options(args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn connection_options_before_the_subcommand_move_behind_it() {
        assert_eq!(
            hoist(&[
                "ratchet",
                "--database-url",
                "X",
                "-v",
                "--wait=2s",
                "start",
                "f.yaml"
            ]),
            [
                "ratchet",
                "-v",
                "start",
                "--database-url",
                "X",
                "--wait=2s",
                "f.yaml"
            ]
        );
        assert_eq!(
            hoist(&["ratchet", "status", "--schema", "app"]),
            ["ratchet", "status", "--schema", "app"]
        );
    }
}
