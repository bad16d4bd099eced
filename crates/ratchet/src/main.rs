//! The `ratchet` binary: arguments, config, output. All the work happens in the library
//! crates; this file parses the command line and hands over.
//!
//! Exit codes: 0 success, 1 refused (a gate, a validation, lint findings), 2 usage,
//! configuration or database errors.

mod bench;
mod demo;
mod engine_cmd;
mod lint_cmd;
mod output;

use clap::{Parser, Subcommand};

/// PostgreSQL schema changes that never need a rollback.
///
/// Expand first (additive changes only, old and new application versions both work),
/// contract later. Exit codes: 0 success, 1 refused (a gate or validation, lint
/// findings), 2 usage, configuration or database error.
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
    /// Run a migration end to end on a throwaway PostgreSQL cluster.
    Demo(demo::DemoArgs),
    /// Benchmarks printed side by side with their baselines (`bench backfill`).
    Bench(bench::BenchArgs),
    /// Check SQL migrations (and ratchet migration files) for unsafe changes.
    Lint(lint_cmd::LintArgs),
    /// Print the documentation of a lint rule.
    Explain(lint_cmd::ExplainArgs),
    /// Turn a plain SQL migration into a ratchet migration file.
    Convert(lint_cmd::ConvertArgs),
}

fn main() {
    let cli = Cli::parse();
    output::init_tracing(cli.verbose);
    let result = match &cli.command {
        Command::Lint(a) => lint_cmd::run_lint(a),
        Command::Explain(a) => lint_cmd::run_explain(a),
        Command::Convert(a) => lint_cmd::run_convert(a),
        other => runtime().and_then(|rt| rt.block_on(run_async(other))),
    };
    match result {
        Ok(code) => std::process::exit(code),
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
        Command::Demo(a) => demo::run(a).await,
        Command::Bench(a) => bench::run(a).await,
        Command::Lint(_) | Command::Explain(_) | Command::Convert(_) => Ok(0),
    }
}
