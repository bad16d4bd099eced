//! The walk over a file's statements: each becomes operations, is dropped (ratchet does
//! its job itself), or is kept as a `sql` operation with the reason in front of it.

use pg_query::protobuf::{self, node::Node as N};
use ratchet_spec::model::{Operation, Sql};

use crate::known::Known;
use crate::{Note, NoteKind, RAW_SQL_COMMENT};

/// A statement the converter cannot express as an operation, and why.
#[derive(Debug)]
pub(crate) struct Unsupported(pub(crate) String);

pub(crate) type Conv<T> = Result<T, Unsupported>;

pub(crate) fn unsupported<T>(reason: impl Into<String>) -> Conv<T> {
    Err(Unsupported(reason.into()))
}

/// What one statement turns into.
pub(crate) enum Outcome {
    Ops(Vec<Operation>),
    /// Left out on purpose, with the reason.
    Drop(String),
}

pub(crate) struct Converter<'a> {
    pub(crate) sql: &'a str,
    pub(crate) file: &'a str,
    pub(crate) known: Known,
    pub(crate) ops: Vec<Operation>,
    pub(crate) notes: Vec<Note>,
    /// Review notes of the statement being converted; kept only if it converts.
    pub(crate) pending: Vec<String>,
}

impl<'a> Converter<'a> {
    pub(crate) fn new(sql: &'a str, file: &'a str) -> Self {
        Converter {
            sql,
            file,
            known: Known::default(),
            ops: Vec::new(),
            notes: Vec::new(),
            pending: Vec::new(),
        }
    }

    pub(crate) fn statement(&mut self, raw: &protobuf::RawStmt) {
        let (start, text) = statement_text(self.sql, raw);
        let (line, column) = ratchet_sql::line_col(self.sql, start);
        let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            return;
        };
        self.pending.clear();
        let outcome = self.translate(node);
        let mut note = |kind, message| {
            self.notes.push(Note {
                file: self.file.to_string(),
                line,
                column,
                kind,
                message,
            })
        };
        match outcome {
            Ok(Outcome::Ops(ops)) => {
                // A statement whose every part ratchet does by itself (a VALIDATE of a
                // constraint added above) turns into nothing.
                let kind = if ops.is_empty() {
                    NoteKind::Dropped
                } else {
                    NoteKind::Review
                };
                for message in std::mem::take(&mut self.pending) {
                    note(kind, message);
                }
                self.learn(&ops);
                self.ops.extend(ops);
            }
            Ok(Outcome::Drop(reason)) => note(NoteKind::Dropped, reason),
            Err(Unsupported(reason)) => {
                note(NoteKind::KeptAsSql, reason.clone());
                self.ops.push(Operation::Sql(Sql {
                    up: format!("{RAW_SQL_COMMENT} {reason}\n{text}"),
                    down: None,
                    on_complete: false,
                }));
            }
        }
    }

    pub(crate) fn review(&mut self, message: impl Into<String>) {
        self.pending.push(message.into());
    }

    pub(crate) fn translate(&mut self, node: &N) -> Conv<Outcome> {
        let ops = match node {
            N::RenameStmt(s) => self.rename(s)?,
            N::AlterTableStmt(s) => self.alter_table(s)?,
            N::IndexStmt(s) => vec![self.create_index(s)?],
            N::DropStmt(s) => self.drop(s)?,
            N::CreateStmt(s) => vec![self.create_table(s)?],
            N::TransactionStmt(s) => return transaction(s),
            N::VariableSetStmt(s) => return set_variable(s),
            other => return unsupported(no_operation(other)),
        };
        Ok(Outcome::Ops(ops))
    }
}

/// The statement's text, trimmed and without its `;`, and the byte offset where it
/// starts (after leading whitespace; leading comments stay with the statement).
fn statement_text<'s>(sql: &'s str, raw: &protobuf::RawStmt) -> (usize, &'s str) {
    let start = usize::try_from(raw.stmt_location).unwrap_or(0);
    let end = match usize::try_from(raw.stmt_len) {
        Ok(0) | Err(_) => sql.len(),
        Ok(len) => start.saturating_add(len).min(sql.len()),
    };
    let text = sql.get(start..end).unwrap_or("");
    let trimmed = text.trim_start();
    let start = start + (text.len() - trimmed.len()) + leading_comments_len(trimmed);
    let trimmed = trimmed.trim_end().trim_end_matches(';').trim_end();
    (start, trimmed)
}

/// Bytes of comments and whitespace at the start of `text`, so a note points at the
/// statement's first keyword rather than at the comment above it.
fn leading_comments_len(text: &str) -> usize {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        let skipped = if trimmed.starts_with("--") {
            trimmed.find('\n').map_or(trimmed.len(), |i| i + 1)
        } else if let Some(body) = trimmed.strip_prefix("/*") {
            body.find("*/").map_or(trimmed.len(), |i| i + 4)
        } else {
            return text.len() - trimmed.len();
        };
        rest = &trimmed[skipped..];
    }
}

fn transaction(s: &protobuf::TransactionStmt) -> Conv<Outcome> {
    use protobuf::TransactionStmtKind as K;
    match s.kind() {
        K::TransStmtBegin | K::TransStmtStart | K::TransStmtCommit => Ok(Outcome::Drop(
            "transaction control: ratchet runs each phase of a migration in transactions of its own".into(),
        )),
        _ => unsupported("this transaction statement has no ratchet equivalent"),
    }
}

fn set_variable(s: &protobuf::VariableSetStmt) -> Conv<Outcome> {
    match s.name.as_str() {
        "lock_timeout" | "statement_timeout" => Ok(Outcome::Drop(format!(
            "`SET {}`: ratchet sets lock_timeout on every DDL statement and retries on timeout by itself",
            s.name
        ))),
        _ => unsupported("a session setting has no ratchet operation"),
    }
}

/// The reason a statement of this kind is kept as SQL.
fn no_operation(node: &N) -> String {
    let what = match node {
        N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_) => {
            return "a data change; for a backfill of a new or changed column, put the expression in \
                    the operation's `up` instead"
                .into()
        }
        N::SelectStmt(_) => "SELECT",
        N::CreateFunctionStmt(_) => "CREATE FUNCTION",
        N::DoStmt(_) => "DO",
        N::CreateEnumStmt(_) => "CREATE TYPE … AS ENUM",
        N::AlterEnumStmt(_) => "ALTER TYPE … ADD VALUE",
        N::CompositeTypeStmt(_) => "CREATE TYPE",
        N::CreateExtensionStmt(_) => "CREATE EXTENSION",
        N::ViewStmt(_) => "CREATE VIEW",
        N::CreateTrigStmt(_) => "CREATE TRIGGER",
        N::CreateSeqStmt(_) => "CREATE SEQUENCE",
        N::AlterSeqStmt(_) => "ALTER SEQUENCE",
        N::CreateSchemaStmt(_) => "CREATE SCHEMA",
        N::CommentStmt(_) => "COMMENT",
        N::GrantStmt(_) => "GRANT/REVOKE",
        N::TruncateStmt(_) => "TRUNCATE",
        N::CreateDomainStmt(_) => "CREATE DOMAIN",
        N::CreatePolicyStmt(_) => "CREATE POLICY",
        N::CreateTableAsStmt(_) => "CREATE TABLE AS / CREATE MATERIALIZED VIEW",
        N::RefreshMatViewStmt(_) => "REFRESH MATERIALIZED VIEW",
        N::ReindexStmt(_) => "REINDEX",
        N::VacuumStmt(_) => "VACUUM/ANALYZE",
        N::ClusterStmt(_) => "CLUSTER",
        _ => "this statement",
    };
    format!("{what} has no ratchet operation")
}
