//! The `ratchet` binary: arguments, config, output. All the work happens in the library crates.

mod lint_cmd;

use clap::{Parser, Subcommand};

/// PostgreSQL schema changes that never need a rollback.
#[derive(Parser, Debug)]
#[command(name = "ratchet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check SQL migrations (and ratchet migration files) for unsafe changes.
    Lint(lint_cmd::LintArgs),
    /// Print the documentation of a lint rule.
    Explain(lint_cmd::ExplainArgs),
    /// Turn a plain SQL migration into a ratchet migration file.
    Convert(lint_cmd::ConvertArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Lint(a) => lint_cmd::run_lint(a),
        Command::Explain(a) => lint_cmd::run_explain(a),
        Command::Convert(a) => lint_cmd::run_convert(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e:#}");
            }
            std::process::exit(2);
        }
    }
}
