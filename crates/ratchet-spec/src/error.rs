//! Errors a migration file can produce, each pointing at `file:line:col` with a hint.
//!
//! A user who mistypes a field should learn where, what, and how to fix it from one line,
//! so every variant carries the position, a message and a hint. The serde crates only hand
//! us strings; [`from_serde_message`] turns their well-known shapes ("unknown field …",
//! "invalid type …") into the matching variant.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Format;

/// Where an error is: a file, and the 1-based line and column when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Position {
    pub fn new(path: &Path, line: usize, column: usize) -> Self {
        Position {
            path: path.to_path_buf(),
            line: Some(line),
            column: Some(column),
        }
    }

    /// A position for a whole file (no line known).
    pub fn file(path: &Path) -> Self {
        Position {
            path: path.to_path_buf(),
            line: None,
            column: None,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}:{}", self.column.unwrap_or(1))?;
        }
        Ok(())
    }
}

/// Renders the optional hint line of an error.
fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("\n  hint: {hint}")
    }
}

/// Everything that can be wrong with a migration file or folder.
///
/// The position is boxed to keep `Result<_, SpecError>` small (clippy's `result_large_err`
/// would otherwise fire in every caller that wraps this error). Display: `{path}:{line}:{column}: {message}` and, when there is one, `\n  hint: {hint}`.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum SpecError {
    /// The file or folder could not be read.
    #[error("{at}: {message}{}", hint_suffix(hint))]
    Io {
        at: Box<Position>,
        message: String,
        hint: String,
    },
    /// The extension is not one of `.yaml`, `.yml`, `.json`, `.toml`.
    #[error("{at}: {message}{}", hint_suffix(hint))]
    UnsupportedFormat {
        at: Box<Position>,
        message: String,
        hint: String,
    },
    /// The text is not well-formed YAML/JSON/TOML.
    #[error("{at}: {message}{}", hint_suffix(hint))]
    Syntax {
        at: Box<Position>,
        format: Format,
        message: String,
        hint: String,
    },
    /// A field that does not exist where it was written (usually a typo).
    #[error("{at}: {message}{}", hint_suffix(hint))]
    UnknownField {
        at: Box<Position>,
        field: String,
        expected: Vec<String>,
        message: String,
        hint: String,
    },
    /// An operation key that is not one of the known operations.
    #[error("{at}: {message}{}", hint_suffix(hint))]
    UnknownOperation {
        at: Box<Position>,
        operation: String,
        message: String,
        hint: String,
    },
    /// An operation entry with zero or several keys.
    #[error("{at}: {message}{}", hint_suffix(hint))]
    OperationKeys {
        at: Box<Position>,
        found: Vec<String>,
        message: String,
        hint: String,
    },
    /// A required field is absent.
    #[error("{at}: {message}{}", hint_suffix(hint))]
    MissingField {
        at: Box<Position>,
        field: String,
        message: String,
        hint: String,
    },
    /// A value of the wrong type or outside the allowed values.
    #[error("{at}: {message}{}", hint_suffix(hint))]
    InvalidValue {
        at: Box<Position>,
        message: String,
        hint: String,
    },
    /// The file has no operations (empty file or `operations: []`).
    #[error("{at}: {message}{}", hint_suffix(hint))]
    NoOperations {
        at: Box<Position>,
        message: String,
        hint: String,
    },
    /// Two files in one folder share a name (`01_x.yaml` and `01_x.json`).
    #[error("{at}: {message}{}", hint_suffix(hint))]
    DuplicateMigration {
        at: Box<Position>,
        other: PathBuf,
        message: String,
        hint: String,
    },
    /// A semantic problem found without a database ([`crate::validate_static`]).
    #[error("{at}: {message}{}", hint_suffix(hint))]
    Invalid {
        at: Box<Position>,
        message: String,
        hint: String,
    },
    /// The model could not be written in the requested format.
    #[error("{at}: {message}{}", hint_suffix(hint))]
    Serialize {
        at: Box<Position>,
        message: String,
        hint: String,
    },
}

impl SpecError {
    /// The position the error points at.
    pub fn position(&self) -> &Position {
        match self {
            SpecError::Io { at, .. }
            | SpecError::UnsupportedFormat { at, .. }
            | SpecError::Syntax { at, .. }
            | SpecError::UnknownField { at, .. }
            | SpecError::UnknownOperation { at, .. }
            | SpecError::OperationKeys { at, .. }
            | SpecError::MissingField { at, .. }
            | SpecError::InvalidValue { at, .. }
            | SpecError::NoOperations { at, .. }
            | SpecError::DuplicateMigration { at, .. }
            | SpecError::Invalid { at, .. }
            | SpecError::Serialize { at, .. } => at,
        }
    }

    /// The file the error is in.
    pub fn path(&self) -> &Path {
        &self.position().path
    }

    /// 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.position().line
    }

    /// 1-based column, when known.
    pub fn column(&self) -> Option<usize> {
        self.position().column
    }

    /// What is wrong, without the position.
    pub fn message(&self) -> &str {
        match self {
            SpecError::Io { message, .. }
            | SpecError::UnsupportedFormat { message, .. }
            | SpecError::Syntax { message, .. }
            | SpecError::UnknownField { message, .. }
            | SpecError::UnknownOperation { message, .. }
            | SpecError::OperationKeys { message, .. }
            | SpecError::MissingField { message, .. }
            | SpecError::InvalidValue { message, .. }
            | SpecError::NoOperations { message, .. }
            | SpecError::DuplicateMigration { message, .. }
            | SpecError::Invalid { message, .. }
            | SpecError::Serialize { message, .. } => message,
        }
    }

    /// What to do about it (empty when there is nothing useful to say).
    pub fn hint(&self) -> &str {
        match self {
            SpecError::Io { hint, .. }
            | SpecError::UnsupportedFormat { hint, .. }
            | SpecError::Syntax { hint, .. }
            | SpecError::UnknownField { hint, .. }
            | SpecError::UnknownOperation { hint, .. }
            | SpecError::OperationKeys { hint, .. }
            | SpecError::MissingField { hint, .. }
            | SpecError::InvalidValue { hint, .. }
            | SpecError::NoOperations { hint, .. }
            | SpecError::DuplicateMigration { hint, .. }
            | SpecError::Invalid { hint, .. }
            | SpecError::Serialize { hint, .. } => hint,
        }
    }

    pub(crate) fn io(path: &Path, err: &std::io::Error) -> Self {
        SpecError::Io {
            at: Box::new(Position::file(path)),
            message: format!("cannot read: {err}"),
            hint: "check that the path exists and is readable".to_string(),
        }
    }

    pub(crate) fn invalid(at: Position, message: String, hint: String) -> Self {
        SpecError::Invalid {
            at: Box::new(at),
            message,
            hint,
        }
    }

    pub(crate) fn no_operations(at: Position) -> Self {
        SpecError::NoOperations {
            at: Box::new(at),
            message: "migration has no operations".to_string(),
            hint: "add at least one operation to the `operations` list, e.g. `- drop_table: {name: old_table}`".to_string(),
        }
    }
}

/// Marker the operation deserializer puts in front of its own messages so that they can be
/// told apart from serde's after they have travelled through a format crate as a string.
pub(crate) const OPERATION_KEYS_PREFIX: &str = "an operation must have exactly one key";

/// Turns a bare serde message (position already removed) into the matching variant.
pub(crate) fn from_serde_message(at: Position, format: Format, raw: &str) -> SpecError {
    let message = humanize(raw);
    if let Some(rest) = message.strip_prefix("unknown field `") {
        return unknown_field(at, rest, &message);
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        return unknown_variant(at, rest, &message);
    }
    if message.starts_with(OPERATION_KEYS_PREFIX) {
        return operation_keys(at, &message);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        return missing_field(at, rest, &message);
    }
    if message.starts_with("invalid type")
        || message.starts_with("invalid value")
        || message.starts_with("invalid length")
        || message.starts_with("duplicate field")
    {
        let hint = value_hint(&message);
        return SpecError::InvalidValue {
            at: Box::new(at),
            message,
            hint,
        };
    }
    SpecError::Syntax {
        at: Box::new(at),
        format,
        hint: format!("fix the {format} syntax at this position"),
        message,
    }
}

/// Replaces Rust type names in serde's messages with words a user knows.
fn humanize(raw: &str) -> String {
    let mut out = raw.to_string();
    for (from, to) in [
        (
            "struct MigrationFile",
            "a migration: a map with an `operations` list",
        ),
        ("struct ", "a map of fields for "),
        ("a sequence", "a list"),
        ("enum ConstraintType", "a constraint type"),
    ] {
        out = out.replace(from, to);
    }
    out
}

/// Splits serde's "expected one of `a`, `b`" / "expected `a`" tail into names.
fn expected_names(tail: &str) -> Vec<String> {
    tail.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

fn unknown_field(at: Position, rest: &str, message: &str) -> SpecError {
    let (field, tail) = rest.split_once('`').unwrap_or((rest, ""));
    let expected = expected_names(tail);
    let hint = names_hint(field, &expected, "valid fields here");
    SpecError::UnknownField {
        at: Box::new(at),
        field: field.to_string(),
        expected,
        message: format!("unknown field `{field}`"),
        hint: if hint.is_empty() {
            message.to_string()
        } else {
            hint
        },
    }
}

fn unknown_variant(at: Position, rest: &str, message: &str) -> SpecError {
    let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
    let expected = expected_names(tail);
    if expected.iter().any(|e| e == "create_table") {
        return SpecError::UnknownOperation {
            at: Box::new(at),
            operation: name.to_string(),
            message: format!("unknown operation `{name}`"),
            hint: names_hint(name, &expected, "valid operations"),
        };
    }
    let what = if expected.iter().any(|e| e == "primary_key") {
        "constraint type"
    } else {
        "value"
    };
    SpecError::InvalidValue {
        at: Box::new(at),
        message: format!("unknown {what} `{name}`"),
        hint: if expected.is_empty() {
            message.to_string()
        } else {
            names_hint(name, &expected, "valid values")
        },
    }
}

fn operation_keys(at: Position, message: &str) -> SpecError {
    let found = message
        .split_once(": ")
        .map(|(_, list)| list.split(", ").map(str::to_string).collect())
        .unwrap_or_default();
    SpecError::OperationKeys {
        at: Box::new(at),
        found,
        message: message.to_string(),
        hint: "write each operation as its own list entry (`- create_table: …` and `- drop_table: …` on separate `-` lines)".to_string(),
    }
}

fn missing_field(at: Position, rest: &str, message: &str) -> SpecError {
    let field = rest.split('`').next().unwrap_or(rest).to_string();
    let hint = if field == "operations" {
        "a migration file is a map with an `operations` list, e.g. `operations:` followed by `- drop_table: {name: old_table}`".to_string()
    } else {
        format!("add the required field `{field}`")
    };
    SpecError::MissingField {
        at: Box::new(at),
        field,
        message: message.to_string(),
        hint,
    }
}

fn value_hint(message: &str) -> String {
    if let Some((_, expected)) = message.rsplit_once(", expected ") {
        return format!("the value here must be {expected}");
    }
    if message.starts_with("duplicate field") {
        return "remove one of the two entries".to_string();
    }
    String::new()
}

/// "did you mean `x`? valid …: `a`, `b`" — the suggestion only when one name is close.
pub(crate) fn names_hint(given: &str, valid: &[String], what: &str) -> String {
    let list = valid
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match closest(given, valid) {
        Some(best) => format!("did you mean `{best}`? {what}: {list}"),
        None if list.is_empty() => String::new(),
        None => format!("{what}: {list}"),
    }
}

/// The closest valid name, if it is close enough to be an obvious typo (for "did you
/// mean" hints; case is ignored).
pub fn closest<'a>(given: &str, valid: &'a [String]) -> Option<&'a str> {
    let given_lower = given.to_lowercase();
    valid
        .iter()
        .map(|v| (osa_distance(&given_lower, &v.to_lowercase()), v))
        .filter(|(d, v)| *d <= 1.max(v.chars().count() / 3) && *d < given.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v.as_str())
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so that
/// `create_tabel` is one edit away from `create_table`.
fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn typo_suggestions() {
        let ops = names(&["create_table", "drop_table", "sql"]);
        assert_eq!(closest("create_tabel", &ops), Some("create_table"));
        assert_eq!(closest("frobnicate", &ops), None);
        let fields = names(&["name", "type", "nullable"]);
        assert_eq!(closest("nulable", &fields), Some("nullable"));
    }

    #[test]
    fn osa_counts_transposition_as_one() {
        assert_eq!(osa_distance("ab", "ba"), 1);
        assert_eq!(osa_distance("", "abc"), 3);
        assert_eq!(osa_distance("kitten", "sitting"), 3);
    }
}
