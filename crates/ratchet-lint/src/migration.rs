//! Ratchet migration files (YAML, JSON, TOML): the SQL of `sql` operations is linted like
//! any SQL file, and risky operation choices are flagged.
//!
//! Filled in once `ratchet-spec` builds; until then a migration file is reported as an error.

use crate::lint::FileError;
use crate::rule::Diagnostic;

/// The SQL extracted from a migration file, plus findings about its operations.
#[derive(Debug, Default)]
pub struct Extracted {
    pub sql: String,
    pub errors: Vec<FileError>,
    pub findings: Vec<(&'static str, Diagnostic)>,
}

/// Reads a migration file.
pub fn extract(_path: &str, _source: &str) -> Extracted {
    Extracted {
        errors: vec![FileError { line: 1, column: 1, message: "migration files are not supported yet".into() }],
        ..Extracted::default()
    }
}
