//! Writing a [`MigrationFile`] back out in any format (`ratchet convert`).
//!
//! The output must parse back to the same model, so TOML's missing null is handled here:
//! an `alter_column` `default: null` / `comment: null` is written as `{}` there, which
//! [`crate::double_option`] reads back as null.

use std::path::Path;

use crate::error::{Position, SpecError};
use crate::{Format, MigrationFile};

/// Serializes `file` as YAML, JSON (pretty) or TOML.
pub fn to_string(file: &MigrationFile, format: Format) -> Result<String, SpecError> {
    let result = match format {
        Format::Yaml => serde_norway::to_string(file).map_err(|e| e.to_string()),
        Format::Json => serde_json::to_string_pretty(file)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| e.to_string()),
        Format::Toml => to_toml(file),
    };
    result.map_err(|message| SpecError::Serialize {
        at: Box::new(Position::file(Path::new("<output>"))),
        message: format!("cannot write the migration as {format}: {message}"),
        hint: "write it as YAML or JSON instead".to_string(),
    })
}

fn to_toml(file: &MigrationFile) -> Result<String, String> {
    let mut value = serde_json::to_value(file).map_err(|e| e.to_string())?;
    nulls_to_empty_tables(&mut value);
    let text = toml::to_string(&value).map_err(|e| e.to_string())?;
    // The rewrite below is textual, so keep it only if it provably reads back the same.
    let inlined = inline_empty_tables(&text);
    match toml::from_str::<MigrationFile>(&inlined) {
        Ok(back) if back == *file => Ok(inlined),
        _ => Ok(text),
    }
}

/// The toml writer puts an empty table under its own header (`[operations.alter_column.default]`),
/// which hides what it means; move it into its parent table as `default = {}`.
fn inline_empty_tables(text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut i = 0;
    while i < lines.len() {
        let Some((parent, key)) = empty_table_header(&lines, i) else {
            i += 1;
            continue;
        };
        let parent_header = format!("[{parent}]");
        let Some(p) = lines[..i].iter().rposition(|l| *l == parent_header) else {
            i += 1;
            continue;
        };
        lines.remove(i);
        if lines.get(i).is_some_and(|l| l.is_empty())
            && lines.get(i.wrapping_sub(1)).is_some_and(|l| l.is_empty())
        {
            lines.remove(i);
        }
        lines.insert(p + 1, format!("{key} = {{}}"));
        i += 1;
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `Some((parent, key))` when line `i` is the header of a table with no keys, for the two
/// double-option fields only.
fn empty_table_header(lines: &[String], i: usize) -> Option<(String, String)> {
    let inner = lines[i].strip_prefix('[')?.strip_suffix(']')?;
    if inner.starts_with('[') {
        return None;
    }
    let (parent, key) = inner.rsplit_once('.')?;
    if key != "default" && key != "comment" {
        return None;
    }
    let next = lines.get(i + 1).map(String::as_str);
    let empty = matches!(next, None | Some("")) || next.is_some_and(|l| l.starts_with('['));
    empty.then(|| (parent.to_string(), key.to_string()))
}

/// The model only produces null for the double-option fields; TOML spells those `{}`.
fn nulls_to_empty_tables(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Null => *value = serde_json::Value::Object(serde_json::Map::new()),
        serde_json::Value::Array(items) => items.iter_mut().for_each(nulls_to_empty_tables),
        serde_json::Value::Object(map) => map.values_mut().for_each(nulls_to_empty_tables),
        _ => {}
    }
}
