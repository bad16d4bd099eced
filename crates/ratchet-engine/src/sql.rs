//! Quoting. Every identifier the engine writes into SQL goes through [`ident`], every
//! string through [`literal`]: names from migration files are data, never SQL. The
//! functions live in `ratchet-sql`, shared with the linter and `ratchet convert`; the
//! engine always quotes, so a name is never case-folded or read as a keyword.

pub use ratchet_sql::{ident, ident_list, literal, qualified};
