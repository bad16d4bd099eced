//! `ratchet convert`: turn a plain SQL migration into a ratchet migration file.
//!
//! Teams arrive with folders of hand-written (or ORM-generated) SQL. Rewriting each
//! change as expand/contract operations by hand is tedious and error-prone, so this
//! module reads the SQL with the real PostgreSQL parser (`pg_query`) and maps every
//! statement it recognises onto the equivalent ratchet operation, filling `up`/`down`
//! where the SQL determines them (a type change is a cast and back, a new NOT NULL is an
//! identity that fails on NULLs exactly as the SQL would). Everything else is kept, in
//! order, as a `sql` operation whose text starts with a comment saying why.
//!
//! Sub-expressions (types, defaults, check expressions, predicates) are rendered with
//! pg_query's deparser, never by pattern matching on the text: the node is placed into a
//! statement that the real parser produced (`SELECT 1`, `SELECT NULL::int`) and that
//! statement is deparsed. Building protobuf trees from scratch is avoided on purpose —
//! libpg_query asserts on enum fields left at their protobuf default.
//!
//! One module per statement kind (`create_table`, `alter_table`, `index`, `constraint`,
//! `rename`, `drop`) extends the `Converter`, which walks the statements in order and
//! keeps what earlier ones established (`known`). Quoting, column references and
//! positions come from `ratchet-sql`, shared with the linter and the engine.

use std::fmt;

use ratchet_spec::model::MigrationFile;

use crate::converter::Converter;
use crate::errors::syntax_error;

mod alter_table;
mod constraint;
mod converter;
mod create_table;
mod deparse;
mod drop;
mod errors;
mod index;
mod known;
mod names;
mod rename;

pub use errors::ConvertError;

/// The prefix of the comment put in front of statements kept as raw SQL.
pub const RAW_SQL_COMMENT: &str = "-- ratchet convert: kept as raw SQL:";

/// The result of converting one SQL file.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The migration file, ready for [`ratchet_spec::to_string`].
    pub file: MigrationFile,
    /// What the user should review: statements kept as SQL or dropped, guards lost,
    /// `up`/`down` expressions that could not be derived.
    pub notes: Vec<Note>,
}

/// How a note relates to the statement it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteKind {
    /// The statement has no ratchet operation and was kept as a `sql` operation.
    KeptAsSql,
    /// The statement was left out because ratchet does that job itself (BEGIN, COMMIT,
    /// `SET lock_timeout`, `VALIDATE CONSTRAINT` of a constraint this file adds).
    Dropped,
    /// The statement was converted, but something in the result deserves a look.
    Review,
}

impl fmt::Display for NoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoteKind::KeptAsSql => "kept as sql",
            NoteKind::Dropped => "dropped",
            NoteKind::Review => "review",
        })
    }
}

/// One remark about one statement of the input, at the statement's first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub file: String,
    /// 1-based line of the statement.
    pub line: usize,
    /// 1-based column (in characters) of the statement.
    pub column: usize,
    pub kind: NoteKind,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.kind, self.message
        )
    }
}

/// Converts the SQL text of `file_name` into a ratchet migration file.
///
/// Statements are converted in order; a statement ratchet has no operation for becomes
/// a `sql` operation (with a leading comment giving the reason) so the result does
/// everything the input did. Returns an error only when the SQL does not parse or
/// contains no statement.
pub fn convert(sql: &str, file_name: &str) -> Result<Conversion, ConvertError> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)
        .map_err(|e| syntax_error(sql, file_name, &e))?;
    let mut converter = Converter::new(sql, file_name);
    for raw in &parsed.protobuf.stmts {
        converter.statement(raw);
    }
    if converter.ops.is_empty() && converter.notes.is_empty() {
        return Err(ConvertError::Empty {
            file: file_name.to_string(),
        });
    }
    Ok(Conversion {
        file: MigrationFile {
            version_schema: None,
            name: None,
            operations: converter.ops,
            flags: Vec::new(),
        },
        notes: converter.notes,
    })
}
