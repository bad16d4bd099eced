//! Where each operation starts in the file, so later errors can say `file:line:col`.
//!
//! None of the serde crates hands out positions of successfully parsed values (TOML does,
//! through `toml::Spanned`), so YAML is walked with an event parser (which copes with flow
//! style, comments and anchors) and JSON with a small scanner. Both run only on text the
//! serde crate has already accepted, so they never see malformed input.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};

/// A 1-based (line, column) pair; columns count characters.
pub(crate) type LineCol = (usize, usize);

/// Positions of the top-level keys, the `operations` value and each operation entry.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    pub keys: HashMap<String, LineCol>,
    pub operations_value: Option<LineCol>,
    pub operations: Vec<LineCol>,
}

/// 1-based line and column of a byte offset, counted as every ratchet diagnostic counts.
pub(crate) use ratchet_sql::line_col;

// ---- YAML -------------------------------------------------------------------------------

fn yaml_pos(span: &Span) -> LineCol {
    (span.start.line(), span.start.col() + 1)
}

/// Consumes the rest of a node whose first event was `first`.
fn skip_yaml_node(parser: &mut Parser<'_, saphyr_parser::StrInput<'_>>, first: &Event<'_>) {
    if !matches!(first, Event::MappingStart(..) | Event::SequenceStart(..)) {
        return;
    }
    let mut depth = 1usize;
    while depth > 0 {
        match parser.next_event() {
            Some(Ok((Event::MappingStart(..) | Event::SequenceStart(..), _))) => depth += 1,
            Some(Ok((Event::MappingEnd | Event::SequenceEnd, _))) => depth -= 1,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return,
        }
    }
}

/// Walks the YAML events: top-level mapping → `operations` sequence → item starts.
pub(crate) fn yaml(text: &str) -> Layout {
    let mut layout = Layout::default();
    let mut parser = Parser::new_from_str(text);
    // Find the document's root node.
    loop {
        match parser.next_event() {
            Some(Ok((Event::StreamStart | Event::DocumentStart(_), _))) => {}
            Some(Ok((Event::MappingStart(..), _))) => break,
            _ => return layout,
        }
    }
    loop {
        let Some(Ok((key, key_span))) = parser.next_event() else {
            return layout;
        };
        let name = match &key {
            Event::MappingEnd => return layout,
            Event::Scalar(value, ..) => Some(value.to_string()),
            other => {
                skip_yaml_node(&mut parser, other);
                None
            }
        };
        let Some(Ok((value, value_span))) = parser.next_event() else {
            return layout;
        };
        let Some(name) = name else {
            skip_yaml_node(&mut parser, &value);
            continue;
        };
        layout.keys.insert(name.clone(), yaml_pos(&key_span));
        if name == "operations" {
            layout.operations_value = Some(yaml_pos(&value_span));
            if matches!(value, Event::SequenceStart(..)) {
                layout.operations = yaml_items(&mut parser);
                continue;
            }
        }
        skip_yaml_node(&mut parser, &value);
    }
}

/// Start positions of the items of the sequence whose start event was just read.
fn yaml_items(parser: &mut Parser<'_, saphyr_parser::StrInput<'_>>) -> Vec<LineCol> {
    let mut items = Vec::new();
    loop {
        match parser.next_event() {
            Some(Ok((Event::SequenceEnd, _))) | Some(Err(_)) | None => return items,
            Some(Ok((event, span))) => {
                items.push(yaml_pos(&span));
                skip_yaml_node(parser, &event);
            }
        }
    }
}

// ---- JSON -------------------------------------------------------------------------------

/// A cursor over JSON text that tracks line and column.
struct JsonScan<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

impl JsonScan<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) -> Option<char> {
        while let Some(&c) = self.chars.peek() {
            if !c.is_whitespace() {
                return Some(c);
            }
            self.bump();
        }
        None
    }

    fn pos(&self) -> LineCol {
        (self.line, self.column)
    }

    /// Reads a string whose opening quote is next.
    fn string(&mut self) -> String {
        let mut out = String::new();
        self.bump();
        while let Some(c) = self.bump() {
            match c {
                '"' => break,
                '\\' => {
                    // Escapes only matter for comparing keys with "operations"; keep them raw.
                    out.push('\\');
                    if let Some(e) = self.bump() {
                        out.push(e);
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    /// Skips one value (object, array, string or literal).
    fn skip_value(&mut self) {
        let Some(first) = self.skip_ws() else { return };
        match first {
            '"' => {
                self.string();
            }
            '{' | '[' => {
                let mut depth = 0usize;
                while let Some(&c) = self.chars.peek() {
                    match c {
                        '"' => {
                            self.string();
                            continue;
                        }
                        '{' | '[' => depth += 1,
                        '}' | ']' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    self.bump();
                    if depth == 0 {
                        return;
                    }
                }
            }
            _ => {
                while let Some(&c) = self.chars.peek() {
                    if c == ',' || c == '}' || c == ']' || c.is_whitespace() {
                        return;
                    }
                    self.bump();
                }
            }
        }
    }
}

/// Scans `{ "operations": [ {…}, {…} ] }` for the start of each element.
pub(crate) fn json(text: &str) -> Layout {
    let mut layout = Layout::default();
    let mut s = JsonScan {
        chars: text.chars().peekable(),
        line: 1,
        column: 1,
    };
    if s.skip_ws() != Some('{') {
        return layout;
    }
    s.bump();
    loop {
        match s.skip_ws() {
            Some(',') => {
                s.bump();
                continue;
            }
            Some('"') => {}
            _ => return layout,
        }
        let key_pos = s.pos();
        let key = s.string();
        if s.skip_ws() != Some(':') {
            return layout;
        }
        s.bump();
        let value_char = s.skip_ws();
        layout.keys.insert(key.clone(), key_pos);
        if key == "operations" {
            layout.operations_value = Some(s.pos());
            if value_char == Some('[') {
                s.bump();
                layout.operations = json_items(&mut s);
                continue;
            }
        }
        s.skip_value();
    }
}

/// Start positions of the elements of the array whose `[` was just read (consumes the `]`).
fn json_items(s: &mut JsonScan<'_>) -> Vec<LineCol> {
    let mut items = Vec::new();
    loop {
        match s.skip_ws() {
            Some(']') | None => {
                s.bump();
                return items;
            }
            Some(',') => {
                s.bump();
            }
            Some(_) => {
                items.push(s.pos());
                s.skip_value();
            }
        }
    }
}

// ---- TOML -------------------------------------------------------------------------------

/// Only the spans; every other key is ignored here (the model parse checks them).
#[derive(serde::Deserialize)]
struct TomlSpans {
    #[serde(default)]
    operations: Option<toml::Spanned<Vec<toml::Spanned<serde::de::IgnoredAny>>>>,
    #[serde(default)]
    name: Option<toml::Spanned<serde::de::IgnoredAny>>,
    #[serde(default)]
    version_schema: Option<toml::Spanned<serde::de::IgnoredAny>>,
}

/// Uses `toml::Spanned`: for a `[[operations]]` entry the span starts at its header.
pub(crate) fn toml(text: &str) -> Layout {
    let mut layout = Layout::default();
    let Ok(spans) = toml::from_str::<TomlSpans>(text) else {
        return layout;
    };
    if let Some(ops) = spans.operations {
        layout.operations_value = Some(line_col(text, ops.span().start));
        layout.operations = ops
            .get_ref()
            .iter()
            .map(|op| line_col(text, op.span().start))
            .collect();
    }
    for (key, span) in [
        ("name", spans.name),
        ("version_schema", spans.version_schema),
    ] {
        if let Some(span) = span {
            layout
                .keys
                .insert(key.to_string(), line_col(text, span.span().start));
        }
    }
    layout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn yaml_block_and_flow() {
        let text = "# c\noperations:\n  - sql:\n      up: x\n  - drop_table: {name: t}\n";
        assert_eq!(yaml(text).operations, vec![(3, 5), (5, 5)]);
        let flow = "operations: [{sql: {up: x}}, {drop_table: {name: t}}]";
        assert_eq!(yaml(flow).operations, vec![(1, 14), (1, 30)]);
    }

    #[test]
    fn json_items_positions() {
        let text = "{\n  \"x\\\"\": [1, {\"a\": \"]\"}],\n  \"operations\": [\n    {\"sql\": {\"up\": \"x\"}},\n    {\"drop_table\": {\"name\": \"t\"}}\n  ]\n}";
        assert_eq!(json(text).operations, vec![(4, 5), (5, 5)]);
    }
}
