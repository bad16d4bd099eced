//! Reading migration files and folders into [`Migration`]s, with located errors.
//!
//! Each format crate reports errors differently (serde_norway: a location plus a message
//! with the position baked in; serde_json: line/column; toml: a byte span). This module
//! brings them to one shape: a [`SpecError`] at a 1-based line and column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{from_serde_message, Position, SpecError};
use crate::locate::{self, Layout, LineCol};
use crate::{Format, Located, Migration, MigrationFile};

/// Parses one migration from text. `name` is the migration name (the file stem), `path`
/// is only used in positions.
pub fn parse_str(
    name: &str,
    path: &Path,
    format: Format,
    text: &str,
) -> Result<Migration, SpecError> {
    let raw_checksum = hex::encode(Sha256::digest(text.as_bytes()));
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    if is_blank(body, format) {
        return Err(SpecError::no_operations(Position::new(path, 1, 1)));
    }
    let file = deserialize(path, format, body)?;
    let layout = match format {
        Format::Yaml => locate::yaml(body),
        Format::Json => locate::json(body),
        Format::Toml => locate::toml(body),
    };
    let list_pos = layout.operations_value.unwrap_or((1, 1));
    if file.operations.is_empty() {
        return Err(SpecError::no_operations(Position::new(
            path, list_pos.0, list_pos.1,
        )));
    }
    let normalized = serde_json::to_string(&file).unwrap_or_default();
    let checksum = hex::encode(Sha256::digest(normalized.as_bytes()));
    Ok(Migration {
        name: name.to_string(),
        path: path.to_path_buf(),
        format,
        checksum,
        raw_checksum,
        source: body.to_string(),
        version_schema: file.version_schema,
        declared_name: file.name.map(|n| located(n, key_pos(&layout, "name"))),
        operations: file
            .operations
            .into_iter()
            .enumerate()
            .map(|(i, op)| located(op, layout.operations.get(i).copied().unwrap_or(list_pos)))
            .collect(),
        flags: file.flags,
    })
}

fn located<T>(value: T, (line, column): LineCol) -> Located<T> {
    Located {
        value,
        line,
        column,
    }
}

fn key_pos(layout: &Layout, key: &str) -> LineCol {
    layout.keys.get(key).copied().unwrap_or((1, 1))
}

/// An empty file, or one with only comments, has no operations (rather than a syntax error).
fn is_blank(text: &str, format: Format) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty()
            || (format != Format::Json && line.starts_with('#'))
            || (format == Format::Yaml && (line == "---" || line == "..."))
    })
}

fn deserialize(path: &Path, format: Format, text: &str) -> Result<MigrationFile, SpecError> {
    match format {
        Format::Yaml => serde_norway::from_str(text).map_err(|e| yaml_error(path, &e)),
        Format::Json => serde_json::from_str(text).map_err(|e| json_error(path, &e)),
        Format::Toml => toml::from_str(text).map_err(|e| toml_error(path, text, &e)),
    }
}

fn yaml_error(path: &Path, err: &serde_norway::Error) -> SpecError {
    let at = match err.location() {
        Some(loc) => Position::new(path, loc.line(), loc.column().max(1)),
        None => Position::file(path),
    };
    let message = strip_serde_path(&strip_positions(&err.to_string()));
    from_serde_message(at, Format::Yaml, &message)
}

fn json_error(path: &Path, err: &serde_json::Error) -> SpecError {
    let at = Position::new(path, err.line().max(1), err.column().max(1));
    let message = strip_positions(&err.to_string());
    if err.is_data() {
        return from_serde_message(at, Format::Json, &message);
    }
    SpecError::Syntax {
        at: Box::new(at),
        format: Format::Json,
        hint: "fix the JSON syntax at this position".to_string(),
        message,
    }
}

fn toml_error(path: &Path, text: &str, err: &toml::de::Error) -> SpecError {
    let at = match err.span() {
        Some(span) => {
            let (line, column) = locate::line_col(text, span.start);
            Position::new(path, line, column)
        }
        None => Position::file(path),
    };
    let message = err.message().trim().replace('\n', "; ");
    from_serde_message(at, Format::Toml, &message)
}

/// Removes the " at line N column M" / " at position N" that the crates put in messages;
/// the position is shown in front of the message instead.
fn strip_positions(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(" at ") {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let tail = &after[4..];
        match position_len(tail) {
            Some(len) => rest = &tail[len..],
            None => {
                out.push_str(" at ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Length of "line N column M" or "position N" at the start of `s`, if it is one.
fn position_len(s: &str) -> Option<usize> {
    let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
    if let Some(t) = s.strip_prefix("line ") {
        let n = digits(t);
        let t2 = t[n..].strip_prefix(" column ")?;
        let m = digits(t2);
        return (n > 0 && m > 0).then_some(5 + n + 8 + m);
    }
    let t = s.strip_prefix("position ")?;
    let n = digits(t);
    (n > 0).then_some(9 + n)
}

/// serde_norway prefixes messages with the value's path (`operations[0].create_table: `);
/// the position already says where, and JSON/TOML have no such prefix, so drop it.
fn strip_serde_path(message: &str) -> String {
    if let Some((prefix, rest)) = message.split_once(": ") {
        let is_path =
            !prefix.is_empty() && !prefix.contains(char::is_whitespace) && !prefix.contains('`');
        if is_path {
            return rest.to_string();
        }
    }
    message.to_string()
}

/// Reads one migration file; the format comes from the extension.
pub fn load_file(path: &Path) -> Result<Migration, SpecError> {
    let Some(format) = Format::from_path(path) else {
        return Err(SpecError::UnsupportedFormat {
            at: Box::new(Position::file(path)),
            message: "not a migration file: unknown extension".to_string(),
            hint: "migration files end in .yaml, .yml, .json or .toml".to_string(),
        });
    };
    let bytes = std::fs::read(path).map_err(|e| SpecError::io(path, &e))?;
    let text = String::from_utf8(bytes).map_err(|e| SpecError::Syntax {
        at: Box::new(Position::file(path)),
        format,
        message: format!("file is not valid UTF-8: {e}"),
        hint: "save the file as UTF-8".to_string(),
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_str(&name, path, format, &text)
}

/// Reads every migration file of a folder (`.yaml`, `.yml`, `.json`, `.toml`), sorted by
/// file name. Other files (README, LICENSE) and hidden files are ignored; two files with
/// the same name stem are an error, since the stem is the migration's name.
pub fn load_dir(dir: &Path) -> Result<Vec<Migration>, SpecError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SpecError::io(dir, &e))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| SpecError::io(dir, &e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && path.is_file() && Format::from_path(&path).is_some() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    check_unique_stems(&files)?;
    files.iter().map(|p| load_file(p)).collect()
}

fn check_unique_stems(files: &[PathBuf]) -> Result<(), SpecError> {
    let mut seen: HashMap<&std::ffi::OsStr, &PathBuf> = HashMap::new();
    for path in files {
        let Some(stem) = path.file_stem() else {
            continue;
        };
        if let Some(other) = seen.insert(stem, path) {
            return Err(SpecError::DuplicateMigration {
                at: Box::new(Position::file(path)),
                other: other.clone(),
                message: format!(
                    "two migrations named `{}` (also {})",
                    stem.to_string_lossy(),
                    other.display()
                ),
                hint: "a migration's name is its file name without extension; keep one of the two files or rename one".to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_positions_and_paths() {
        assert_eq!(
            strip_positions("unknown field `x`, expected `y` at line 3 column 5"),
            "unknown field `x`, expected `y`"
        );
        assert_eq!(
            strip_positions(
                "did not find key at line 2 column 1, while parsing at line 1 column 1"
            ),
            "did not find key, while parsing"
        );
        assert_eq!(strip_positions("look at this"), "look at this");
        assert_eq!(
            strip_serde_path("operations[0].create_table: missing field `name`"),
            "missing field `name`"
        );
        assert_eq!(strip_serde_path("invalid type: map"), "invalid type: map");
    }
}
