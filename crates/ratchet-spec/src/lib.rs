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

pub use error::{closest, Position, SpecError};
pub use model::*;
pub use operation_serde::OPERATION_NAMES;
pub use parse::{load_dir, load_file, parse_str};
pub use validate::{valid_flag_name, validate_static, MAX_FLAG_NAME};
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
    /// sha256 (hex) of the parsed operations, normalized (the model as JSON): the engine
    /// refuses a file whose operations changed after it ran, while a comment, a blank
    /// line, quoting or key order change nothing (issue 9).
    pub checksum: String,
    /// sha256 (hex) of the raw file bytes: information only (the event log keeps it).
    pub raw_checksum: String,
    /// The file's text, to point at a position inside an operation (an `up` fragment).
    pub source: String,
    pub version_schema: Option<String>,
    /// The `name:` written in the file, if any (pgroll writes one; it must equal `name`).
    pub declared_name: Option<Located<String>>,
    pub operations: Vec<Located<Operation>>,
    /// The flags the file declares (`flags:`), beside the automatic `read_new` one.
    pub flags: Vec<FlagDecl>,
}

/// Byte offset of a 1-based line and character column in `text`.
fn byte_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &text[line_start.min(text.len())..];
    line_start
        + rest
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i)
}

impl Migration {
    /// The plain model, without positions.
    pub fn file(&self) -> MigrationFile {
        MigrationFile {
            version_schema: self.version_schema.clone(),
            name: self.declared_name.as_ref().map(|n| n.value.clone()),
            operations: self.operations.iter().map(|o| o.value.clone()).collect(),
            flags: self.flags.clone(),
        }
    }

    /// `path:line:col` of operation `op_index` (just the path when out of range).
    pub fn location(&self, op_index: usize) -> String {
        self.position(op_index).to_string()
    }

    /// `path:line:col` of byte `offset` inside `fragment`, a SQL fragment of operation
    /// `op_index` (its `up`, `check`, …), found in the file's text after the operation's
    /// start; the operation's own position when the fragment cannot be found verbatim
    /// (escapes inside a quoted string).
    pub fn fragment_location(&self, op_index: usize, fragment: &str, offset: usize) -> String {
        let Some(op) = self.operations.get(op_index) else {
            return self.location(op_index);
        };
        let from = byte_of(&self.source, op.line, op.column);
        let before = fragment.get(..offset).unwrap_or(fragment);
        let line_no = before.matches('\n').count();
        let col_bytes = before.len() - before.rfind('\n').map_or(0, |i| i + 1);
        let Some(first) = fragment.lines().next().filter(|l| !l.trim().is_empty()) else {
            return self.location(op_index);
        };
        let Some(start) = self.source[from..].find(first).map(|i| i + from) else {
            return self.location(op_index);
        };
        let target_line = fragment.lines().nth(line_no).unwrap_or(first);
        let line_start = if line_no == 0 {
            Some(start)
        } else {
            self.source[start..].find(target_line).map(|i| i + start)
        };
        let Some(line_start) = line_start else {
            return self.location(op_index);
        };
        let at = (line_start + col_bytes).min(self.source.len());
        let (line, column) = locate::line_col(&self.source, at);
        Position::new(&self.path, line, column).to_string()
    }

    /// [`Position`] of operation `op_index`, for building [`SpecError`]s.
    pub fn position(&self, op_index: usize) -> Position {
        match self.operations.get(op_index) {
            Some(op) => Position::new(&self.path, op.line, op.column),
            None => Position::file(&self.path),
        }
    }
}
