//! The driver: collect inputs, parse each file once, run the enabled rules over the
//! pre-extracted statements (files in parallel), apply suppressions and config, and
//! optionally apply autofixes.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::catalog::Catalog;
use crate::context::{Context, PriorFacts};
use crate::rule::{Diagnostic, Fix, Rule, Severity, Sink, Span};
use crate::settings::Settings;
use crate::source::{self, ParsedSource};
use crate::{rules, suppress, LintError};

/// One finding, located and with its final severity.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static Rule,
    pub severity: Severity,
    pub span: Span,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    pub help: String,
    pub fix: Option<Fix>,
}

/// A problem that stopped (part of) a file from being checked: a syntax error, an
/// unreadable file, an invalid migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The result for one input.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// As given (or `-` for stdin).
    pub path: String,
    /// The text that was linted (for snippets in text output).
    pub source: String,
    pub findings: Vec<Finding>,
    pub errors: Vec<FileError>,
}

/// The result of a run, files in input order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
}

impl Report {
    pub fn findings(&self) -> impl Iterator<Item = (&FileReport, &Finding)> {
        self.files
            .iter()
            .flat_map(|f| f.findings.iter().map(move |x| (f, x)))
    }
    pub fn error_count(&self) -> usize {
        self.files.iter().map(|f| f.errors.len()).sum()
    }
    pub fn count(&self, severity: Severity) -> usize {
        self.findings()
            .filter(|(_, f)| f.severity == severity)
            .count()
    }
    /// 2 when any file had an error, 1 when a finding is at or above `fail_on`, else 0.
    pub fn exit_code(&self, fail_on: Severity) -> i32 {
        if self.error_count() > 0 {
            2
        } else if self.findings().any(|(_, f)| f.severity >= fail_on) {
            1
        } else {
            0
        }
    }
}

/// What kind of file an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Sql,
    /// A ratchet migration file (YAML, JSON or TOML).
    Migration,
}

/// One thing to lint.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: String,
    pub source: String,
    pub kind: InputKind,
}

impl Input {
    pub fn sql(path: impl Into<String>, source: impl Into<String>) -> Input {
        Input {
            path: path.into(),
            source: source.into(),
            kind: InputKind::Sql,
        }
    }
}

/// Runs the enabled rules with fixed settings and an optional catalog.
#[derive(Debug)]
pub struct Linter<'a> {
    settings: &'a Settings,
    catalog: Option<&'a Catalog>,
    rules: Vec<(&'static Rule, Option<Severity>)>,
}

impl<'a> Linter<'a> {
    /// All rules enabled by `settings`.
    pub fn new(settings: &'a Settings, catalog: Option<&'a Catalog>) -> Linter<'a> {
        let rules = rules::ALL
            .iter()
            .copied()
            .filter(|r| settings.is_enabled(r))
            .map(|r| (r, settings.severity_override(r)))
            .collect();
        Linter {
            settings,
            catalog,
            rules,
        }
    }

    /// Only `rule` (used by rule tests).
    pub fn single(
        rule: &'static Rule,
        settings: &'a Settings,
        catalog: Option<&'a Catalog>,
    ) -> Linter<'a> {
        Linter {
            settings,
            catalog,
            rules: vec![(rule, settings.severity_override(rule))],
        }
    }

    /// Lints many inputs: parse in parallel, gather cross-file facts in order, then check
    /// in parallel. Keeps every report; [`Linter::lint_stream`] does not.
    pub fn lint_inputs(&self, inputs: Vec<Input>) -> Report {
        self.lint_sources(inputs.into_iter().map(Ok))
    }

    /// [`Linter::lint_stream`] into a [`Report`] that keeps every file.
    pub fn lint_sources(&self, sources: impl IntoIterator<Item = Source>) -> Report {
        let mut files = Vec::new();
        let pushed: Result<(), std::convert::Infallible> = self.lint_stream(sources, |f| {
            files.push(f);
            Ok(())
        });
        let Ok(()) = pushed;
        Report { files }
    }

    /// Lints `sources` in order, [`STREAM_CHUNK`] files at a time (parsed and checked in
    /// parallel), handing each file's report to `emit` as soon as its chunk is done. A
    /// source that is already a report (a path that could not be read) is passed through.
    /// Memory holds one chunk of files and reports, plus the cross-file facts, which grow
    /// with the schema objects the files declare (a few hundred bytes each), not with the
    /// files' text or findings.
    pub fn lint_stream<E>(
        &self,
        sources: impl IntoIterator<Item = Source>,
        mut emit: impl FnMut(FileReport) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut prior = PriorFacts::default();
        let mut sources = sources.into_iter();
        let mut base = 0;
        loop {
            let chunk: Vec<Source> = sources.by_ref().take(STREAM_CHUNK).collect();
            if chunk.is_empty() {
                return Ok(());
            }
            let prepared: Vec<Result<Prepared, FileReport>> =
                chunk.into_par_iter().map(|s| s.map(prepare)).collect();
            for (k, p) in prepared.iter().enumerate() {
                if let Ok(Prepared {
                    parsed: Some(parsed),
                    ..
                }) = p
                {
                    prior.absorb(base + k, parsed.statements.iter().map(|s| &s.node));
                }
            }
            let reports: Vec<FileReport> = prepared
                .into_par_iter()
                .enumerate()
                .map(|(k, p)| match p {
                    Ok(p) => self.check_prepared(p, &prior, base + k),
                    Err(report) => report,
                })
                .collect();
            base += reports.len();
            for r in reports {
                emit(r)?;
            }
        }
    }

    /// Lints one SQL text on its own.
    pub fn lint_sql(&self, path: &str, sql: &str) -> FileReport {
        let prior = PriorFacts::default();
        self.check_prepared(prepare(Input::sql(path, sql)), &prior, 0)
    }

    fn check_prepared(&self, p: Prepared, prior: &PriorFacts, index: usize) -> FileReport {
        let Prepared {
            input,
            sql,
            parsed,
            mut errors,
            extra,
            segments,
            down,
        } = p;
        let mut findings = Vec::new();
        if let Some(parsed) = parsed {
            let part = Part {
                sql: &sql,
                segments: segments.as_ref(),
            };
            findings = self.check_text(&input, part, parsed, prior, index, &mut errors);
        }
        if let Some((down_sql, down_parsed, down_segments)) = down {
            let part = Part {
                sql: &down_sql,
                segments: Some(&down_segments),
            };
            let more = self.check_text(&input, part, down_parsed, prior, index, &mut errors);
            findings.extend(more);
        }
        let mut extra: Vec<Finding> = extra
            .into_iter()
            .filter_map(|(name, d)| self.located(&sql, name, d))
            .collect();
        if let Some(m) = &segments {
            relocate(&mut extra, m, &sql, &input.source);
        }
        findings.extend(extra);
        if segments.is_some() {
            findings.sort_by_key(|f| (f.line, f.column, f.rule.code));
        }
        FileReport {
            path: input.path,
            source: input.source,
            findings,
            errors,
        }
    }

    /// Runs the rules over one parsed text (a SQL file, or the `up` or `down` text of a
    /// migration file); syntax errors go to `errors`.
    fn check_text(
        &self,
        input: &Input,
        part: Part<'_>,
        parsed: ParsedSource,
        prior: &PriorFacts,
        index: usize,
        errors: &mut Vec<FileError>,
    ) -> Vec<Finding> {
        let sql = part.sql;
        let lines = source::LineIndex::new(sql);
        for e in &parsed.errors {
            let (mut line, mut column) = lines.line_col(sql, e.offset);
            if let Some((l, c)) = part
                .segments
                .and_then(|m| m.locate_in_file(sql, &input.source, e.offset))
            {
                (line, column) = (l, c);
            }
            errors.push(FileError {
                line,
                column,
                message: format!("syntax error: {}", e.message),
            });
        }
        let cx = Context::new(
            &input.path,
            sql,
            parsed,
            self.settings,
            self.catalog,
            prior,
            index,
        );
        let mut findings = self.run_rules(&cx);
        findings.sort_by(|a, b| (a.span.start, a.rule.code).cmp(&(b.span.start, b.rule.code)));
        if let Some(m) = part.segments {
            relocate(&mut findings, m, sql, &input.source);
        }
        findings
    }

    fn located(&self, sql: &str, rule_name: &'static str, d: Diagnostic) -> Option<Finding> {
        let (rule, over) = self.rules.iter().find(|(r, _)| r.name == rule_name)?;
        let lines = source::LineIndex::new(sql);
        let (line, column) = lines.line_col(sql, d.span.start);
        let severity = over.or(d.severity).unwrap_or(rule.severity);
        Some(Finding {
            rule,
            severity,
            span: d.span,
            line,
            column,
            message: d.message,
            help: d.help,
            fix: d.fix,
        })
    }

    fn run_rules(&self, cx: &Context<'_>) -> Vec<Finding> {
        let suppressions = suppress::collect(cx);
        let mut used = vec![false; suppressions.len()];
        let mut out = Vec::new();
        for (rule, over) in &self.rules {
            let mut sink = Sink::default();
            (rule.check)(cx, &mut sink);
            for d in sink.diagnostics {
                let stmt = suppress::statement_at(cx, d.span.start);
                let hit = suppressions.iter().position(|s| {
                    s.rules.iter().any(|r| rule.matches(r))
                        && (s.file_level || (s.statement.is_some() && s.statement == stmt))
                });
                if let Some(i) = hit {
                    used[i] = true;
                    continue;
                }
                let (line, column) = cx.line_col(d.span.start);
                let severity = over.or(d.severity).unwrap_or(rule.severity);
                out.push(Finding {
                    rule,
                    severity,
                    span: d.span,
                    line,
                    column,
                    message: d.message,
                    help: d.help,
                    fix: d.fix,
                });
            }
        }
        self.unused_ignores(cx, &suppressions, &used, &mut out);
        out
    }

    fn unused_ignores(
        &self,
        cx: &Context<'_>,
        sups: &[suppress::Suppression],
        used: &[bool],
        out: &mut Vec<Finding>,
    ) {
        let Some((rule, over)) = self
            .rules
            .iter()
            .find(|(r, _)| r.name == rules::UNUSED_IGNORE)
        else {
            return;
        };
        for (s, _) in sups.iter().zip(used).filter(|(_, u)| !**u) {
            let known: Vec<&&Rule> = rules::ALL
                .iter()
                .filter(|r| s.rules.iter().any(|n| r.matches(n)))
                .collect();
            let message = if s.rules.is_empty() {
                "`ratchet:ignore` names no rule".to_string()
            } else if known.len() < s.rules.len() {
                let hint = s
                    .rules
                    .iter()
                    .find(|n| rules::find(n).is_none())
                    .map(|n| rules::did_you_mean(n))
                    .unwrap_or_default();
                format!(
                    "`ratchet:ignore` names an unknown rule: {}{hint}",
                    s.rules.join(",")
                )
            } else if known
                .iter()
                .any(|r| !self.rules.iter().any(|(e, _)| e.name == r.name))
            {
                // Suppressing a rule that is disabled is harmless, and may be deliberate.
                continue;
            } else {
                format!(
                    "this `ratchet:ignore {}` suppresses nothing",
                    s.rules.join(",")
                )
            };
            let (line, column) = cx.line_col(s.span.start);
            let fix = Fix::new(
                "remove the comment",
                vec![crate::rule::Edit::replace(s.span, "")],
            );
            out.push(Finding {
                rule,
                severity: over.unwrap_or(rule.severity),
                span: s.span,
                line,
                column,
                message,
                help: "Remove the stale suppression so that it cannot hide a future problem."
                    .into(),
                fix: Some(fix),
            });
        }
    }
}

/// One text to check, with where its parts came from (migration files).
#[derive(Clone, Copy)]
struct Part<'s> {
    sql: &'s str,
    segments: Option<&'s crate::migration::Extracted>,
}

/// Findings of a migration file's virtual text point at the operation in the file; fixes
/// would edit the virtual text, so they are dropped.
fn relocate(findings: &mut [Finding], m: &crate::migration::Extracted, sql: &str, file: &str) {
    for f in findings {
        f.fix = None;
        if let Some((line, column)) = m.locate_in_file(sql, file, f.span.start) {
            (f.line, f.column) = (line, column);
        }
        f.span = Span::new(0, 0);
    }
}

/// An input after reading and parsing, before the rules run.
#[derive(Debug)]
struct Prepared {
    input: Input,
    /// The SQL that was parsed (the input itself, or the SQL extracted from a migration file).
    sql: String,
    parsed: Option<ParsedSource>,
    errors: Vec<FileError>,
    /// Findings produced before the rules run (risky migration operations).
    extra: Vec<(&'static str, Diagnostic)>,
    /// For migration files: where each part of `sql` came from.
    segments: Option<crate::migration::Extracted>,
    /// For migration files: the `down` text, parsed, and its segments.
    down: Option<(String, ParsedSource, crate::migration::Extracted)>,
}

fn prepare(input: Input) -> Prepared {
    match input.kind {
        InputKind::Sql => {
            let parsed = source::parse_source(&input.source);
            Prepared {
                sql: input.source.clone(),
                input,
                parsed: Some(parsed),
                errors: Vec::new(),
                extra: Vec::new(),
                segments: None,
                down: None,
            }
        }
        InputKind::Migration => {
            let mut m = crate::migration::extract(&input.path, &input.source);
            let parsed = m.errors.is_empty().then(|| source::parse_source(&m.sql));
            let down = m.down.take().map(|mut d| {
                let sql = std::mem::take(&mut d.sql);
                let parsed = source::parse_source(&sql);
                (sql, parsed, *d)
            });
            let (sql, errors, extra) = (
                std::mem::take(&mut m.sql),
                std::mem::take(&mut m.errors),
                std::mem::take(&mut m.findings),
            );
            Prepared {
                sql,
                input,
                parsed,
                errors,
                extra,
                segments: Some(m),
                down,
            }
        }
    }
}

/// Applies every non-overlapping fix in `findings` to `source`; returns the new text and
/// how many fixes were applied.
pub fn apply_fixes(source: &str, findings: &[Finding]) -> (String, usize) {
    let mut fixes: Vec<&Fix> = findings.iter().filter_map(|f| f.fix.as_ref()).collect();
    fixes.sort_by_key(|f| f.edits.iter().map(|e| e.span.start).min().unwrap_or(0));
    let mut taken: Vec<&crate::rule::Edit> = Vec::new();
    let mut applied = 0;
    for fix in fixes {
        let overlaps = fix.edits.iter().any(|e| {
            taken.iter().any(|t| {
                e.span.start < t.span.end.max(t.span.start + 1)
                    && t.span.start < e.span.end.max(e.span.start + 1)
            })
        });
        let valid = fix.edits.iter().all(|e| {
            e.span.end <= source.len()
                && source.is_char_boundary(e.span.start)
                && source.is_char_boundary(e.span.end)
        });
        if overlaps || !valid {
            continue;
        }
        taken.extend(fix.edits.iter());
        applied += 1;
    }
    taken.sort_by_key(|e| std::cmp::Reverse((e.span.start, e.span.end)));
    let mut out = source.to_string();
    for e in taken {
        out.replace_range(e.span.start..e.span.end, &e.text);
    }
    (out, applied)
}

/// Lints and fixes `sql` until no fix applies (at most 10 rounds). Returns the fixed text
/// and the number of fixes applied.
pub fn fix_sql(linter: &Linter<'_>, path: &str, sql: &str) -> (String, usize) {
    let mut text = sql.to_string();
    let mut total = 0;
    for _ in 0..10 {
        let report = linter.lint_sql(path, &text);
        if !report.errors.is_empty() {
            break;
        }
        let (next, n) = apply_fixes(&text, &report.findings);
        if n == 0 || next == text {
            break;
        }
        total += n;
        text = next;
    }
    (text, total)
}

/// How many files [`Linter::lint_stream`] holds at once.
pub const STREAM_CHUNK: usize = 256;

/// Something to lint: an input, or the report of a path that could not be read.
pub type Source = Result<Input, FileReport>;

/// The report of a path that was not linted: one error, for that path.
pub fn unreadable(path: impl Into<String>, message: impl Into<String>) -> FileReport {
    FileReport {
        path: path.into(),
        source: String::new(),
        findings: Vec::new(),
        errors: vec![FileError {
            line: 1,
            column: 1,
            message: message.into(),
        }],
    }
}

/// The files under `paths` (folders searched as [`collect_inputs`] does), read one at a
/// time as the returned iterator is consumed. A path that does not exist or cannot be
/// read becomes an error report for that path; the others are still linted.
pub fn sources(paths: &[PathBuf], exclude: &[String]) -> impl Iterator<Item = Source> {
    // Boxed: a report is large and rare, the paths are many.
    let mut found: Vec<Result<(PathBuf, bool), Box<FileReport>>> = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files = Vec::new();
            match walk(p, &mut files) {
                Ok(()) => found.extend(files.into_iter().map(Ok)),
                Err(e) => {
                    found.extend(files.into_iter().map(Ok));
                    let report = unreadable(p.display().to_string(), e.to_string());
                    found.push(Err(Box::new(report)));
                }
            }
        } else {
            found.push(Ok((p.clone(), true)));
        }
    }
    let exclude = exclude.to_vec();
    found.into_iter().filter_map(move |f| {
        let (path, explicit) = match f {
            Ok(f) => f,
            Err(report) => return Some(Err(*report)),
        };
        read_input(&path, explicit, &exclude)
            .map_err(|e| unreadable(path.display().to_string(), e.to_string()))
            .transpose()
    })
}

/// Reads one path found by [`sources`] or [`collect_inputs`]; `None` when it is excluded
/// or (found in a folder) a YAML/JSON/TOML file that is not a migration.
fn read_input(path: &Path, explicit: bool, exclude: &[String]) -> Result<Option<Input>, LintError> {
    let shown = path.display().to_string();
    if crate::config::is_excluded(&shown, exclude) {
        return Ok(None);
    }
    let kind = input_kind(path).unwrap_or(InputKind::Sql);
    let source = std::fs::read_to_string(path).map_err(|e| LintError::Io {
        path: shown.clone(),
        source: e,
    })?;
    if kind == InputKind::Migration && !explicit && !source.contains("operations") {
        return Ok(None);
    }
    Ok(Some(Input {
        path: shown,
        source,
        kind,
    }))
}

/// Whether a path is a file the linter reads.
pub fn input_kind(path: &Path) -> Option<InputKind> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "sql" => Some(InputKind::Sql),
        "yaml" | "yml" | "json" | "toml" => Some(InputKind::Migration),
        _ => None,
    }
}

/// Expands files and folders (recursively, sorted) into inputs, skipping `exclude` globs;
/// the first path that cannot be read is the error (see [`sources`] to lint the others).
/// Inside folders, YAML/JSON/TOML files are taken only when they look like migrations
/// (have an `operations` key), so `ratchet.toml` or `package.json` are not linted.
pub fn collect_inputs(paths: &[PathBuf], exclude: &[String]) -> Result<Vec<Input>, LintError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push((p.clone(), true));
        }
    }
    let mut inputs = Vec::new();
    for (path, explicit) in files {
        if let Some(input) = read_input(&path, explicit, exclude)? {
            inputs.push(input);
        }
    }
    Ok(inputs)
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<(), LintError> {
    let io = |e| LintError::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if input_kind(&path).is_some() {
            out.push((path, false));
        }
    }
    Ok(())
}
