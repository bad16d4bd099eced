//! Why a file could not be converted, and where: a syntax error is located at the
//! offending token, since `pg_query` reports a parse error without a position.

use pg_query::protobuf;

/// Why a file could not be converted at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The SQL does not parse; nothing is converted rather than half of it.
    #[error("{file}:{line}:{column}: syntax error: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file holds no statement, so there is no operation to write.
    #[error("{file}: no SQL statements to convert")]
    Empty { file: String },
}

/// A syntax error located at the offending token: the statement that fails to parse on
/// its own is found by splitting on `;` tokens, then the token the message names.
pub(crate) fn syntax_error(sql: &str, file: &str, error: &pg_query::Error) -> ConvertError {
    let message = match error {
        pg_query::Error::Parse(m) => m.clone(),
        other => other.to_string(),
    };
    let offset = error_offset(sql, &message).unwrap_or(0);
    let (line, column) = ratchet_sql::line_col(sql, offset);
    ConvertError::Syntax {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

pub(crate) fn error_offset(sql: &str, message: &str) -> Option<usize> {
    let tokens = pg_query::scan(sql).ok()?.tokens;
    let mut start = 0usize;
    let mut statements = Vec::new();
    for t in &tokens {
        if t.token() == protobuf::Token::Ascii59 {
            let end = usize::try_from(t.end).ok()?;
            statements.push((start, end));
            start = end;
        }
    }
    statements.push((start, sql.len()));
    let (from, to) = statements.into_iter().find(|(a, b)| {
        sql.get(*a..*b)
            .is_some_and(|s| pg_query::parse(s, pg_query::ParserOptions::DEFAULT).is_err())
    })?;
    let near = message
        .split_once("at or near \"")
        .and_then(|(_, rest)| rest.rsplit_once('"'))
        .map(|(token, _)| token);
    let in_statement =
        |t: &&protobuf::ScanToken| usize::try_from(t.start).is_ok_and(|s| s >= from && s < to);
    let token = match near {
        Some(near) => tokens
            .iter()
            .filter(in_statement)
            .find(|t| token_text(sql, t) == Some(near)),
        // "at end of input": just after the last token of the statement.
        None => {
            let last = tokens.iter().rev().find(in_statement)?;
            return usize::try_from(last.end).ok();
        }
    };
    let first = tokens.iter().find(in_statement);
    token.or(first).and_then(|t| usize::try_from(t.start).ok())
}

pub(crate) fn token_text<'s>(sql: &'s str, t: &protobuf::ScanToken) -> Option<&'s str> {
    sql.get(usize::try_from(t.start).ok()?..usize::try_from(t.end).ok()?)
}
