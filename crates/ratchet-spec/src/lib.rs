//! ratchet's migration files: the model, strict parsing of YAML, JSON and TOML, and the
//! checks that need no database.
//!
//! This is the first stage of the pipeline (file → spec → plan → executor): everything
//! later works on [`Migration`] values and can point back at `file:line:col` through
//! [`Migration::location`]. Parsing is strict on purpose — an unknown field or a wrong
//! shape is an error with a hint, never silently ignored.

use std::fmt;
use std::path::{Path, PathBuf};

pub mod double_option;
mod error;
mod locate;
pub mod model;
mod operation_serde;
mod parse;
mod validate;
mod write;

pub use error::{Position, SpecError};
pub use model::*;
pub use operation_serde::OPERATION_NAMES;
pub use parse::{load_dir, load_file, parse_str};
pub use validate::validate_static;
pub use write::to_string;

/// The syntax a migration file is written in, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Yaml,
    Json,
    Toml,
}

impl Format {
    /// `.yaml`/`.yml` → YAML, `.json` → JSON, `.toml` → TOML (case-insensitive).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    /// The extension written for this format (`yaml`, `json`, `toml`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Toml => "toml",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Toml => "TOML",
        })
    }
}

/// A value and the 1-based position where it starts in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub line: usize,
    pub column: usize,
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

/// A parsed migration file: the model plus where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// File name without extension (`03_add_column`).
    pub name: String,
    pub path: PathBuf,
    pub format: Format,
    /// sha256 (hex) of the raw file bytes; the engine refuses a file that changed after it ran.
    pub checksum: String,
    pub version_schema: Option<String>,
    /// The `name:` written in the file, if any (pgroll writes one; it must equal `name`).
    pub declared_name: Option<Located<String>>,
    pub operations: Vec<Located<Operation>>,
}

impl Migration {
    /// The plain model, without positions.
    pub fn file(&self) -> MigrationFile {
        MigrationFile {
            version_schema: self.version_schema.clone(),
            name: self.declared_name.as_ref().map(|n| n.value.clone()),
            operations: self.operations.iter().map(|o| o.value.clone()).collect(),
        }
    }

    /// `path:line:col` of operation `op_index` (just the path when out of range).
    pub fn location(&self, op_index: usize) -> String {
        self.position(op_index).to_string()
    }

    /// [`Position`] of operation `op_index`, for building [`SpecError`]s.
    pub fn position(&self, op_index: usize) -> Position {
        match self.operations.get(op_index) {
            Some(op) => Position::new(&self.path, op.line, op.column),
            None => Position::file(&self.path),
        }
    }
}
