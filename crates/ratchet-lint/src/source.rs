//! Turning file text into statements: one scan (for comments and keyword positions) and
//! one parse with the real PostgreSQL parser, with byte spans for every statement.
//!
//! `pg_query` reports a parse error without a position, so when a file does not parse we
//! split it with the scanner, parse each piece on its own (the good pieces are still linted)
//! and find the failing token by bisecting over token prefixes.

use pg_query::NodeEnum;

use crate::rule::Span;

/// Byte offset → `line:column`, shared with `ratchet convert` and migration files.
pub use ratchet_sql::LineIndex;

/// `pg_query::protobuf::Token::SqlComment` / `CComment`.
const SQL_COMMENT: i32 = 275;
const C_COMMENT: i32 = 276;
/// `pg_query::protobuf::Token::Ascii59` (`;`).
const SEMICOLON: i32 = 59;

/// One lexical token (comments included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub span: Span,
    /// `pg_query::protobuf::Token` as an integer.
    pub kind: i32,
}

impl Token {
    pub fn is_comment(&self) -> bool {
        self.kind == SQL_COMMENT || self.kind == C_COMMENT
    }
}

/// A parsed top-level statement.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    pub node: NodeEnum,
    /// From the first to the last token of the statement, without the `;`.
    pub span: Span,
}

/// A syntax error at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// Everything the linter needs from the text of one file.
#[derive(Debug, Clone, Default)]
pub struct ParsedSource {
    pub statements: Vec<ParsedStatement>,
    pub tokens: Vec<Token>,
    pub errors: Vec<SyntaxError>,
}

impl ParsedSource {
    /// The comment tokens.
    pub fn comments(&self) -> impl Iterator<Item = &Token> {
        self.tokens.iter().filter(|t| t.is_comment())
    }
}

/// Scans and parses `text`. Never panics; problems become [`SyntaxError`]s.
pub fn parse_source(text: &str) -> ParsedSource {
    if text.contains('\0') {
        let offset = text.find('\0').unwrap_or(0);
        return ParsedSource {
            errors: vec![SyntaxError {
                offset,
                message: "NUL byte in SQL text".into(),
            }],
            ..ParsedSource::default()
        };
    }
    let tokens = match scan(text) {
        Ok(tokens) => tokens,
        Err(message) => {
            return ParsedSource {
                errors: vec![SyntaxError {
                    offset: locate_scan_error(text),
                    message,
                }],
                ..ParsedSource::default()
            }
        }
    };
    match pg_query::parse(text, pg_query::ParserOptions::DEFAULT) {
        Ok(parsed) => {
            let statements = parsed
                .protobuf
                .stmts
                .into_iter()
                .filter_map(|raw| {
                    let node = raw.stmt?.node?;
                    let start = usize::try_from(raw.stmt_location).ok()?;
                    let len = usize::try_from(raw.stmt_len).ok()?;
                    let end = if len == 0 {
                        text.len()
                    } else {
                        (start + len).min(text.len())
                    };
                    Some(ParsedStatement {
                        node,
                        span: trim_span(&tokens, Span::new(start, end)),
                    })
                })
                .collect();
            ParsedSource {
                statements,
                tokens,
                errors: Vec::new(),
            }
        }
        Err(_) => parse_piecewise(text, tokens),
    }
}

fn scan(text: &str) -> Result<Vec<Token>, String> {
    let scanned = pg_query::scan(text).map_err(|e| clean_message(&e.to_string()))?;
    Ok(scanned
        .tokens
        .iter()
        .filter_map(|t| {
            let start = usize::try_from(t.start).ok()?;
            let end = usize::try_from(t.end).ok()?;
            (end <= text.len()).then_some(Token {
                span: Span::new(start, end),
                kind: t.token,
            })
        })
        .collect())
}

/// Shrinks a statement's raw range (which starts right after the previous `;`, so it
/// includes whitespace and comments) to its first and last real token.
fn trim_span(tokens: &[Token], raw: Span) -> Span {
    let first = tokens.partition_point(|t| t.span.start < raw.start);
    let inside = tokens[first..].iter().take_while(|t| t.span.end <= raw.end);
    let mut span: Option<Span> = None;
    for t in inside.filter(|t| !t.is_comment() && t.kind != SEMICOLON) {
        span = Some(match span {
            None => t.span,
            Some(s) => Span::new(s.start, t.span.end),
        });
    }
    span.unwrap_or(raw)
}

fn parse_piecewise(text: &str, tokens: Vec<Token>) -> ParsedSource {
    let mut out = ParsedSource {
        tokens,
        ..ParsedSource::default()
    };
    for piece in split_pieces(&out.tokens) {
        let piece_text = &text[piece.start..piece.end];
        match pg_query::parse(piece_text, pg_query::ParserOptions::DEFAULT) {
            Ok(parsed) => {
                for raw in parsed.protobuf.stmts {
                    let Some(node) = raw.stmt.and_then(|s| s.node) else {
                        continue;
                    };
                    out.statements.push(ParsedStatement { node, span: piece });
                }
            }
            Err(e) => {
                let offset = piece.start + locate_parse_error(piece_text);
                out.errors.push(SyntaxError {
                    offset,
                    message: clean_message(&e.to_string()),
                });
            }
        }
    }
    out
}

/// Top-level statements by `;` tokens (the scanner keeps `$$ … $$` bodies whole).
fn split_pieces(tokens: &[Token]) -> Vec<Span> {
    let mut pieces = Vec::new();
    let mut current: Option<Span> = None;
    let mut depth = 0i32;
    for t in tokens.iter().filter(|t| !t.is_comment()) {
        match t.kind {
            40 => depth += 1,
            41 => depth -= 1,
            _ => {}
        }
        if t.kind == SEMICOLON && depth <= 0 {
            pieces.extend(current.take());
            depth = 0;
            continue;
        }
        current = Some(match current {
            None => t.span,
            Some(s) => Span::new(s.start, t.span.end),
        });
    }
    pieces.extend(current);
    pieces
}

/// The offset of the token where the parser gives up: the shortest token prefix whose
/// error is not "at end of input".
fn locate_parse_error(piece: &str) -> usize {
    let Ok(tokens) = scan(piece) else { return 0 };
    let ends: Vec<&Token> = tokens.iter().filter(|t| !t.is_comment()).collect();
    let is_hard = |k: usize| -> bool {
        let end = ends[k].span.end;
        match pg_query::parse(&piece[..end], pg_query::ParserOptions::DEFAULT) {
            Ok(_) => false,
            Err(e) => !e.to_string().contains("at end of input"),
        }
    };
    let (mut lo, mut hi) = (0usize, ends.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if is_hard(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    ends.get(lo)
        .map_or(piece.trim_end().len(), |t| t.span.start)
}

/// The start of the first line whose prefix no longer scans (an unterminated quote or
/// comment begins on it).
fn locate_scan_error(text: &str) -> usize {
    let line_ends: Vec<usize> = text
        .match_indices('\n')
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let first_bad = line_ends.partition_point(|&end| pg_query::scan(&text[..end]).is_ok());
    let Some(&end) = line_ends.get(first_bad) else {
        return 0;
    };
    text[..end].rfind('\n').map_or(0, |i| i + 1)
}

fn clean_message(message: &str) -> String {
    let m = message
        .strip_prefix("Invalid statement: ")
        .unwrap_or(message);
    m.strip_prefix("Error scanning: ").unwrap_or(m).to_string()
}
