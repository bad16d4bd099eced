//! `ratchet-lint`: static checks of PostgreSQL migrations (plain SQL files and the `sql`
//! operations of ratchet migration files), parsed with the real PostgreSQL parser.
//!
//! Pipeline: [`source`] scans and parses each file once → [`context`] annotates the
//! statements (transaction, timeouts, lock, what the file already did) → every enabled
//! [`Rule`] of the registry ([`rules::ALL`]) walks them → [`lint`] applies suppressions and
//! config → [`render`] formats. The crate never prints.

pub mod catalog;
pub mod config;
pub mod context;
pub mod docs;
pub mod lint;
pub mod migration;
pub mod render;
pub mod rule;
pub mod rules;
pub mod settings;
pub mod source;
pub mod suppress;
#[doc(hidden)]
pub mod testing;

/// The parse-tree accessors and the statement → lock table live in `ratchet-sql`, shared
/// with the engine (what `ratchet plan` shows for raw SQL names the same lock).
pub use ratchet_sql::{ast, locks};

pub use catalog::Catalog;
pub use context::{Context, Statement, Tx};
pub use lint::{
    apply_fixes, collect_inputs, fix_sql, sources, unreadable, FileError, FileReport, Finding,
    Input, InputKind, Linter, Report, Source,
};
pub use render::{Format, Renderer, Totals};
pub use rule::{Category, Diagnostic, Edit, Fix, Rule, Severity, Sink, Span};
pub use settings::{PgVersion, Settings};

/// Failures a caller can act on. Syntax errors are not here: they are part of the report.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Config { path: String, message: String },
    #[error("while reading the catalog: {message}")]
    Database { message: String },
    #[error(
        "unknown rule `{0}`{hint} (`ratchet explain --list` lists every rule)",
        hint = rules::did_you_mean(.0)
    )]
    UnknownRule(String),
}
