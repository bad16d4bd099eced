//! Ratchet migration files (YAML, JSON, TOML): the SQL of `sql` operations (`up` and
//! `down`) is linted like any SQL file, and risky operation choices are flagged.
//!
//! The file is turned into one virtual SQL text: each `sql` operation's statements, and a
//! marker comment for every other operation. Segments remember which operation each part of
//! the text came from, so findings point at the operation's `line:col` in the file.
//! ratchet runs every statement with `SET LOCAL lock_timeout` (DESIGN.md), so the virtual
//! text starts with a `SET lock_timeout`: A35 does not fire on what ratchet protects itself.

use std::path::Path;

use ratchet_spec::{Column, ConstraintType, Format, Operation};

use crate::lint::FileError;
use crate::rule::{Diagnostic, Span};

/// Part of the virtual SQL text that came from one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub span: Span,
    pub line: usize,
    pub column: usize,
}

/// The SQL extracted from a migration file, plus findings about its operations.
#[derive(Debug, Default)]
pub struct Extracted {
    pub sql: String,
    pub errors: Vec<FileError>,
    /// `(rule name, diagnostic)`; spans point into `sql`.
    pub findings: Vec<(&'static str, Diagnostic)>,
    pub segments: Vec<Segment>,
    /// The `down` SQL of `sql` operations, as its own text (reverse operation order, as an
    /// abort runs them): it never runs with the `up` SQL, so rules that compare statements
    /// (issue #10: `multiple-alter-same-table` between one operation's `up` and `down`)
    /// must not see them together.
    pub down: Option<Box<Extracted>>,
}

impl Extracted {
    /// The operation position of a virtual-text offset.
    pub fn locate(&self, offset: usize) -> Option<(usize, usize)> {
        self.segments
            .iter()
            .rev()
            .find(|s| s.span.start <= offset)
            .map(|s| (s.line, s.column))
    }

    /// The position in the migration file itself: the line of the file (at or after the
    /// operation) that holds the same SQL text, else the operation's position.
    pub fn locate_in_file(&self, sql: &str, file: &str, offset: usize) -> Option<(usize, usize)> {
        let (op_line, op_col) = self.locate(offset)?;
        let offset = offset.min(sql.len());
        let line_start = sql[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = sql[offset..].find('\n').map_or(sql.len(), |i| offset + i);
        // `close()` may have added the `;`.
        let text = sql[line_start..line_end]
            .trim()
            .trim_end_matches(';')
            .trim_end();
        let within = sql
            .get(line_start..offset)
            .map_or(0, |p| p.trim_start().chars().count());
        if text.is_empty() {
            return Some((op_line, op_col));
        }
        let found = file
            .lines()
            .enumerate()
            .skip(op_line.saturating_sub(1))
            .find_map(|(i, l)| {
                let at = l.find(text)?;
                Some((i + 1, l[..at].chars().count() + 1 + within))
            });
        found.or(Some((op_line, op_col)))
    }
}

/// The `SET lock_timeout` the virtual text starts with: the timeout ratchet itself sets.
fn prelude() -> String {
    let ms = ratchet_sql::DEFAULT_LOCK_TIMEOUT.as_millis();
    format!("SET lock_timeout = '{ms}ms';\n")
}

/// Reads a migration file.
pub fn extract(path: &str, source: &str) -> Extracted {
    let p = Path::new(path);
    let format = Format::from_path(p).unwrap_or(Format::Yaml);
    let name = p
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("migration");
    let migration = match ratchet_spec::parse_str(name, p, format, source) {
        Ok(m) => m,
        Err(e) => {
            let error = FileError {
                line: e.line().unwrap_or(1),
                column: e.column().unwrap_or(1),
                message: e.message().to_string(),
            };
            return Extracted {
                errors: vec![error],
                ..Extracted::default()
            };
        }
    };
    let mut out = Extracted {
        sql: prelude(),
        ..Extracted::default()
    };
    let mut down = Extracted {
        sql: prelude(),
        ..Extracted::default()
    };
    for (i, op) in migration.operations.iter().enumerate() {
        let start = out.sql.len();
        match &op.value {
            Operation::Sql(s) => {
                out.sql.push_str(&format!(
                    "-- operation {} (sql)\n{}",
                    i + 1,
                    s.up.trim_end()
                ));
                close(&mut out.sql);
                if let Some(text) = s.down.as_deref().filter(|d| !d.trim().is_empty()) {
                    down_segment(&mut down, i, text, op.line, op.column);
                }
            }
            other => {
                out.sql
                    .push_str(&format!("-- operation {} ({})\n", i + 1, other.kind()));
                flag(
                    other,
                    Span::new(start, out.sql.len() - 1),
                    &mut out.findings,
                );
            }
        }
        out.segments.push(Segment {
            span: Span::new(start, out.sql.len()),
            line: op.line,
            column: op.column,
        });
    }
    if !down.segments.is_empty() {
        out.down = Some(Box::new(down));
    }
    out
}

/// Prepends operation `i`'s `down` SQL to the down text, so the text runs last operation
/// first. Segment offsets are rebuilt from the end.
fn down_segment(down: &mut Extracted, i: usize, text: &str, line: usize, column: usize) {
    let mut part = format!("-- operation {} (sql down)\n{}", i + 1, text.trim_end());
    close(&mut part);
    let at = prelude().len();
    down.sql.insert_str(at, &part);
    for s in &mut down.segments {
        s.span = Span::new(s.span.start + part.len(), s.span.end + part.len());
    }
    down.segments.insert(
        0,
        Segment {
            span: Span::new(at, at + part.len()),
            line,
            column,
        },
    );
}

fn close(sql: &mut String) {
    if !sql.trim_end().ends_with(';') {
        sql.push(';');
    }
    sql.push('\n');
}

/// Risky choices in non-SQL operations.
fn flag(op: &Operation, span: Span, out: &mut Vec<(&'static str, Diagnostic)>) {
    let mut columns: Vec<(&str, &Column)> = Vec::new();
    match op {
        Operation::CreateTable(t) => columns.extend(t.columns.iter().map(|c| (t.name.as_str(), c))),
        Operation::AddColumn(a) => {
            columns.push((a.table.as_str(), &a.column));
            let c = &a.column;
            if !c.nullable && c.default.is_none() && a.up.is_none() && c.generated.is_none() && !c.pk {
                out.push((
                    "add-column-not-null-no-default",
                    Diagnostic::new(span, format!("add_column `{}.{}` is NOT NULL (pgroll's default) with neither `default` nor `up`: existing rows have no value", a.table, c.name))
                        .help("give an `up` expression that computes the value for existing rows, a `default`, or `nullable: true`"),
                ));
            }
        }
        Operation::AlterColumn(a) => {
            if let Some(t) = &a.type_ {
                json_or_varchar(&a.table, &a.column, t, span, out);
            }
        }
        Operation::CreateConstraint(c) if c.type_ == ConstraintType::Exclude => out.push((
            "add-exclusion-constraint",
            Diagnostic::new(span, format!("create_constraint `{}` of type exclude on `{}` builds and checks under ACCESS EXCLUSIVE: EXCLUDE cannot be added NOT VALID", c.name, c.table))
                .help("create a new table with the constraint and move the data, or schedule a maintenance window"),
        )),
        Operation::SetReplicaIdentity(r) => out.push((
            "replica-identity-change",
            Diagnostic::new(span, format!("set_replica_identity on `{}` changes the row images logical-replication consumers receive", r.table))
                .help("coordinate with replication/CDC consumers first"),
        )),
        _ => {}
    }
    for (table, c) in columns {
        json_or_varchar(table, &c.name, &c.type_, span, out);
    }
}

fn json_or_varchar(
    table: &str,
    column: &str,
    ty: &str,
    span: Span,
    out: &mut Vec<(&'static str, Diagnostic)>,
) {
    let t = ty.trim().to_ascii_lowercase();
    if t == "json" {
        out.push((
            "json-column",
            Diagnostic::new(span, format!("`{table}.{column}` is json: it has no equality operator, so DISTINCT/UNION/GROUP BY queries fail"))
                .help("use jsonb"),
        ));
    } else if (t.starts_with("varchar(") || t.starts_with("character varying(")) && t.ends_with(')')
    {
        out.push((
            "varchar-length-limit",
            Diagnostic::new(
                span,
                format!(
                    "`{table}.{column}` is {ty}: changing the limit later needs its own migration"
                ),
            )
            .help("use text with CHECK (length(col) <= n); a CHECK can be replaced online"),
        ));
    }
}
