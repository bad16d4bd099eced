//! Suppressions written in the SQL itself:
//!
//! - `-- ratchet:ignore <rule>[,<rule>…] <reason>` silences those rules on the statement the
//!   comment sits on, precedes, or trails on the same line;
//! - `-- ratchet:ignore-file <rule>[,<rule>…] <reason>` silences them for the whole file.
//!
//! A suppression that silences nothing is itself reported (`unused-ignore`, D12), so stale
//! ones do not hide future problems.

use crate::context::Context;
use crate::rule::Span;

/// One parsed suppression comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The comment.
    pub span: Span,
    /// Rule codes or names as written.
    pub rules: Vec<String>,
    pub reason: String,
    pub file_level: bool,
    /// The statement it applies to (`None` for file-level ones or when no statement follows).
    pub statement: Option<usize>,
}

/// Finds every suppression comment in the file.
pub fn collect(cx: &Context<'_>) -> Vec<Suppression> {
    let mut out = Vec::new();
    for t in cx.tokens().iter().filter(|t| t.is_comment()) {
        let text = cx.text(t.span);
        let body = text
            .strip_prefix("--")
            .or_else(|| text.strip_prefix("/*").map(|b| b.trim_end_matches("*/")));
        let Some(body) = body.map(str::trim) else {
            continue;
        };
        let (file_level, rest) = if let Some(r) = body.strip_prefix("ratchet:ignore-file") {
            (true, r)
        } else if let Some(r) = body.strip_prefix("ratchet:ignore") {
            (false, r)
        } else {
            continue;
        };
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let rest = rest.trim();
        let (list, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let rules = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let statement = if file_level {
            None
        } else {
            target_statement(cx, t.span)
        };
        out.push(Suppression {
            span: t.span,
            rules,
            reason: reason.trim().to_string(),
            file_level,
            statement,
        });
    }
    out
}

/// The statement a comment belongs to: the one containing it, the one it trails on the
/// same line, or the next one.
fn target_statement(cx: &Context<'_>, comment: Span) -> Option<usize> {
    let stmts = cx.statements();
    if let Some(s) = stmts
        .iter()
        .find(|s| s.span.start <= comment.start && comment.start < s.span.end)
    {
        return Some(s.index);
    }
    let next = stmts.partition_point(|s| s.span.end <= comment.start);
    if next > 0 {
        let prev = &stmts[next - 1];
        let between = cx.text(Span::new(prev.span.end, comment.start));
        if !between.contains('\n') {
            return Some(prev.index);
        }
    }
    stmts.get(next).map(|s| s.index)
}

/// The index of the statement whose span contains `offset` (or the nearest before it).
pub fn statement_at(cx: &Context<'_>, offset: usize) -> Option<usize> {
    let stmts = cx.statements();
    let i = stmts.partition_point(|s| s.span.start <= offset);
    (i > 0).then(|| stmts[i - 1].index)
}
