//! `ratchet-sql`: the PostgreSQL knowledge that more than one of ratchet's crates needs,
//! written once so that the linter, the engine and `ratchet convert` cannot drift apart.
//!
//! - [`ident`]: identifier quoting and literals, and PostgreSQL's identifier length limit
//!   ([`MAX_IDENT`]).
//! - [`LockMode`] and, with the `parser` feature, the statement → lock table
//!   ([`locks`]) that `ratchet lint` reports and `ratchet plan` shows for raw SQL.
//! - [`columns`] (`parser`): the column references of an expression or a statement,
//!   found in the parse tree rather than in the text.
//! - [`sqlstate`]: which database errors are worth a retry.
//! - [`position`]: byte offsets → `line:column`, as every diagnostic prints them.
//! - [`DEFAULT_LOCK_TIMEOUT`]: the `lock_timeout` ratchet recommends and uses.
//!
//! Nothing here talks to a database or prints.

use std::time::Duration;

#[cfg(feature = "parser")]
pub mod ast;
#[cfg(feature = "parser")]
pub mod columns;
pub mod ident;
pub mod lock_mode;
#[cfg(feature = "parser")]
pub mod locks;
pub mod position;
pub mod sqlstate;

#[cfg(feature = "parser")]
pub use ident::ident_if_needed;
pub use ident::{
    ident, ident_list, ident_too_long, ident_unless_lowercase, literal, qualified, MAX_IDENT,
};
pub use lock_mode::{LockMode, UnknownLockMode};
pub use position::{line_col, LineIndex};
pub use sqlstate::SqlStateClass;

/// The `lock_timeout` ratchet recommends for DDL, and the one the engine uses unless told
/// otherwise. A DDL statement waiting for its lock blocks every query queued behind it, so
/// the wait must be short: 500 ms is below what most applications notice as a stall, and
/// long enough to get past ordinary short transactions. A timeout is retried, not failed.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_millis(500);

/// Why SQL could not be read.
#[cfg(feature = "parser")]
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The PostgreSQL parser or scanner rejected the text (its own message).
    #[error(transparent)]
    Parse(#[from] pg_query::Error),
    /// The parse tree could not be serialized for walking (not expected to happen).
    #[error(transparent)]
    Tree(#[from] serde_json::Error),
}
