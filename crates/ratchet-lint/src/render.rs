//! Output formats: rustc-style text, JSON, JSON lines, SARIF 2.1.0 (code scanning) and
//! GitHub workflow annotations.
//!
//! Output is streamed: a [`Renderer`] writes each file's findings as soon as the file is
//! linted and keeps only running totals, so memory does not grow with the findings.
//! The JSON document keeps its `errors` (one per file that could not be checked) until the
//! end, where the format puts them. [`render`] renders a whole [`Report`] to a `String`.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::lint::{FileError, FileReport, Finding, Report};
use crate::rule::Severity;
use crate::rules;
use crate::source::LineIndex;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    /// One JSON object per line (`"type": "finding"` or `"error"`).
    JsonLines,
    Sarif,
    Github,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            "json-lines" | "jsonl" => Some(Format::JsonLines),
            "sarif" => Some(Format::Sarif),
            "github" => Some(Format::Github),
            _ => None,
        }
    }
}

/// What a run found, counted while streaming.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub files: usize,
    /// Problems that stopped (part of) a file from being checked.
    pub problems: usize,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Totals {
    pub fn add(&mut self, file: &FileReport) {
        self.files += 1;
        self.problems += file.errors.len();
        for f in &file.findings {
            match f.severity {
                Severity::Error => self.errors += 1,
                Severity::Warning => self.warnings += 1,
                Severity::Info => self.infos += 1,
            }
        }
    }

    /// 2 when any file had an error, 1 when a finding is at or above `fail_on`, else 0.
    pub fn exit_code(&self, fail_on: Severity) -> i32 {
        let at_least = |s: Severity| match s {
            Severity::Error => self.errors,
            Severity::Warning => self.errors + self.warnings,
            Severity::Info => self.errors + self.warnings + self.infos,
        };
        if self.problems > 0 {
            2
        } else if at_least(fail_on) > 0 {
            1
        } else {
            0
        }
    }
}

/// Writes one format file by file: [`Renderer::new`] writes the header, [`Renderer::file`]
/// each file's results, [`Renderer::finish`] the end (the text summary, the closing of the
/// JSON and SARIF documents).
#[derive(Debug)]
pub struct Renderer<W: Write> {
    format: Format,
    out: W,
    totals: Totals,
    /// No result has been written yet (JSON and SARIF separators).
    first: bool,
    /// `--format json`: the errors, written after the findings.
    json_errors: Vec<Value>,
    /// SARIF: the folder relative URIs are resolved against (`SRCROOT`).
    srcroot: PathBuf,
}

impl<W: Write> Renderer<W> {
    /// Starts the output. `srcroot` is the folder paths are relative to (the working
    /// directory of the run); SARIF names it `SRCROOT`.
    pub fn new(format: Format, mut out: W, srcroot: &Path) -> io::Result<Renderer<W>> {
        match format {
            Format::Json => out.write_all(b"{\n  \"findings\": [")?,
            Format::Sarif => {
                let head = json!({
                    "$schema": SARIF_SCHEMA,
                    "version": "2.1.0",
                });
                let head = serde_json::to_string(&head).unwrap_or_default();
                let run_head = json!({
                    "tool": {"driver": driver()},
                    "originalUriBaseIds": {"SRCROOT": {"uri": dir_uri(srcroot)}},
                    "columnKind": "unicodeCodePoints",
                });
                let run_head = serde_json::to_string(&run_head).unwrap_or_default();
                // `{…,"runs":[{…,"results":[` — the results follow, file by file.
                write!(
                    out,
                    "{},\"runs\":[{},\"results\":[",
                    head.trim_end_matches('}'),
                    run_head.trim_end_matches('}')
                )?;
            }
            Format::Text | Format::JsonLines | Format::Github => {}
        }
        Ok(Renderer {
            format,
            out,
            totals: Totals::default(),
            first: true,
            json_errors: Vec::new(),
            srcroot: srcroot.to_path_buf(),
        })
    }

    /// Writes one file's errors and findings.
    pub fn file(&mut self, file: &FileReport) -> io::Result<()> {
        self.totals.add(file);
        match self.format {
            Format::Text => self.out.write_all(text_file(file).as_bytes()),
            Format::Github => self.out.write_all(github_file(file).as_bytes()),
            Format::JsonLines => {
                for e in &file.errors {
                    let mut v = error_json(file, e);
                    v["type"] = json!("error");
                    writeln!(self.out, "{v}")?;
                }
                for f in &file.findings {
                    let mut v = finding_json(file, f);
                    v["type"] = json!("finding");
                    writeln!(self.out, "{v}")?;
                }
                Ok(())
            }
            Format::Json => {
                for f in &file.findings {
                    let sep = if std::mem::take(&mut self.first) {
                        ""
                    } else {
                        ","
                    };
                    write!(self.out, "{sep}\n    {}", finding_json(file, f))?;
                }
                self.json_errors
                    .extend(file.errors.iter().map(|e| error_json(file, e)));
                Ok(())
            }
            Format::Sarif => {
                let results = sarif_results(file, &self.srcroot);
                for r in results {
                    let sep = if std::mem::take(&mut self.first) {
                        ""
                    } else {
                        ","
                    };
                    write!(self.out, "{sep}\n{r}")?;
                }
                Ok(())
            }
        }
    }

    /// Ends the output and returns the totals.
    pub fn finish(mut self) -> io::Result<Totals> {
        match self.format {
            Format::Text => self.out.write_all(summary(&self.totals).as_bytes())?,
            Format::Json => {
                let close = if self.first { "]" } else { "\n  ]" };
                write!(self.out, "{close},\n  \"errors\": [")?;
                for (i, e) in self.json_errors.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(self.out, "{sep}\n    {e}")?;
                }
                let close = if self.json_errors.is_empty() {
                    "]"
                } else {
                    "\n  ]"
                };
                writeln!(self.out, "{close}\n}}")?;
            }
            Format::Sarif => self.out.write_all(b"\n]}]}\n")?,
            Format::JsonLines | Format::Github => {}
        }
        self.out.flush()?;
        Ok(self.totals)
    }
}

/// Renders a whole report in `format` (SARIF paths relative to the working directory).
pub fn render(report: &Report, format: Format) -> String {
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    render_in(report, format, &root)
}

/// [`render`] with the folder relative paths are resolved against.
pub fn render_in(report: &Report, format: Format, srcroot: &Path) -> String {
    let mut buf = Vec::new();
    let written = Renderer::new(format, &mut buf, srcroot).and_then(|mut r| {
        for f in &report.files {
            r.file(f)?;
        }
        r.finish()
    });
    match written {
        Ok(_) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => String::new(),
    }
}

/// rustc-style diagnostics with the source line and a caret, then a summary line.
pub fn text(report: &Report) -> String {
    render(report, Format::Text)
}

fn text_file(file: &FileReport) -> String {
    let lines = LineIndex::new(&file.source);
    let mut out = String::new();
    for e in &file.errors {
        out.push_str(&format!("error: {}\n", e.message));
        snippet(&mut out, file, &lines, e.line, e.column, 1);
        out.push('\n');
    }
    for f in &file.findings {
        out.push_str(&finding_text(file, &lines, f));
        out.push('\n');
    }
    out
}

/// One finding, rustc-style (used by the rule snapshot tests too).
pub fn finding_text(file: &FileReport, lines: &LineIndex, f: &Finding) -> String {
    let mut out = format!("{}[{}]: {}\n", f.severity, f.rule.name, f.message);
    let line_text = lines.line_text(&file.source, f.line);
    let span_chars = file
        .source
        .get(f.span.start..f.span.end)
        .map_or(1, |s| s.lines().next().unwrap_or("").chars().count());
    let width = span_chars
        .min(line_text.chars().count().saturating_sub(f.column - 1))
        .max(1);
    snippet(&mut out, file, lines, f.line, f.column, width);
    if !f.help.is_empty() {
        out.push_str(&format!(
            "{} = help: {}\n",
            " ".repeat(gutter(f.line)),
            f.help
        ));
    }
    if let Some(fix) = &f.fix {
        out.push_str(&format!(
            "{} = fix: {} (apply with --fix)\n",
            " ".repeat(gutter(f.line)),
            fix.title
        ));
    }
    out
}

fn gutter(line: usize) -> usize {
    line.to_string().len()
}

fn snippet(
    out: &mut String,
    file: &FileReport,
    lines: &LineIndex,
    line: usize,
    column: usize,
    width: usize,
) {
    let pad = " ".repeat(gutter(line));
    out.push_str(&format!("{pad}--> {}:{line}:{column}\n", file.path));
    let text = lines.line_text(&file.source, line);
    if text.is_empty() {
        return;
    }
    out.push_str(&format!("{pad} |\n{line} | {text}\n"));
    let lead: String = text
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    out.push_str(&format!("{pad} | {lead}{}\n", "^".repeat(width)));
}

fn summary(t: &Totals) -> String {
    let plural = |n: usize, s: &str| {
        if n == 1 {
            format!("{n} {s}")
        } else {
            format!("{n} {s}s")
        }
    };
    let mut s = format!(
        "{}: {}, {}, {} in {}",
        if t.errors + t.warnings + t.infos + t.problems == 0 {
            "ok"
        } else {
            "found"
        },
        plural(t.errors, "error"),
        plural(t.warnings, "warning"),
        plural(t.infos, "info"),
        plural(t.files, "file")
    );
    if t.problems > 0 {
        s.push_str(&format!(
            "; {} could not be checked",
            plural(t.problems, "problem")
        ));
    }
    s.push('\n');
    s
}

fn finding_json(file: &FileReport, f: &Finding) -> Value {
    json!({
        "rule": f.rule.name,
        "severity": f.severity.as_str(),
        "category": f.rule.category.as_str(),
        "file": file.path,
        "line": f.line,
        "column": f.column,
        "message": f.message,
        "help": f.help,
    })
}

fn error_json(file: &FileReport, e: &FileError) -> Value {
    json!({"file": file.path, "line": e.line, "column": e.column, "message": e.message})
}

/// `{"findings": [...], "errors": [...]}`.
pub fn json(report: &Report) -> String {
    render(report, Format::Json)
}

/// SARIF 2.1.0, one run, every registered rule in the driver.
pub fn sarif(report: &Report) -> String {
    render(report, Format::Sarif)
}

const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The SARIF rule for problems that stopped a file from being checked other than syntax
/// errors (an unreadable path, an invalid migration file).
const INPUT_ERROR_ID: &str = "E1";
const INPUT_ERROR_NAME: &str = "input-error";

fn driver() -> Value {
    let mut rule_list: Vec<Value> = rules::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.summary},
                "help": {"text": r.doc_markdown(), "markdown": r.doc_markdown()},
                "defaultConfiguration": {"level": sarif_level(r.severity), "enabled": r.enabled_by_default},
                "properties": {"category": r.category.as_str(), "tags": [r.category.as_str()]},
            })
        })
        .collect();
    rule_list.push(json!({
        "id": INPUT_ERROR_ID,
        "name": INPUT_ERROR_NAME,
        "shortDescription": {"text": "a path that could not be read, or a migration file that is not valid"},
        "fullDescription": {"text": "A path that could not be read, or a migration file that is not valid: nothing in it was checked, and `ratchet lint` exits with code 2."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"category": "hazard", "tags": ["hazard"]},
    }));
    let mut driver = json!({
        "name": "ratchet",
        "fullName": "ratchet lint",
        "version": env!("CARGO_PKG_VERSION"),
        "semanticVersion": env!("CARGO_PKG_VERSION"),
        "rules": rule_list,
    });
    if let Some(uri) = information_uri() {
        driver["informationUri"] = json!(uri);
    }
    driver
}

/// The project's home page, from the crate's `repository` — unless that is a placeholder
/// (an `.invalid` host), which SARIF consumers would show as a broken link.
pub fn information_uri() -> Option<&'static str> {
    usable_uri(env!("CARGO_PKG_REPOSITORY"))
}

/// `uri` unless it is empty or its host is a placeholder (`.invalid`, RFC 2606).
fn usable_uri(uri: &str) -> Option<&str> {
    let host = uri.split("://").nth(1)?.split('/').next()?;
    (!host.is_empty() && !host.ends_with(".invalid")).then_some(uri)
}

fn sarif_results(file: &FileReport, srcroot: &Path) -> Vec<Value> {
    let artifact = artifact_location(&file.path, srcroot);
    let lines = LineIndex::new(&file.source);
    let syntax_index = rules::ALL.iter().position(|r| r.name == "syntax-error");
    let mut out = Vec::new();
    for e in &file.errors {
        let syntax = e.message.starts_with("syntax error");
        let (id, index) = if syntax {
            ("D11", syntax_index.unwrap_or(0))
        } else {
            (INPUT_ERROR_ID, rules::ALL.len())
        };
        out.push(json!({
            "ruleId": id,
            "ruleIndex": index,
            "level": "error",
            "message": {"text": e.message},
            "locations": [location(&artifact, e.line, e.column, None)],
        }));
    }
    for f in &file.findings {
        let end = (f.span.end > f.span.start).then(|| lines.line_col(&file.source, f.span.end));
        out.push(json!({
            "ruleId": f.rule.code,
            "ruleIndex": rules::ALL.iter().position(|r| r.name == f.rule.name).unwrap_or(0),
            "level": sarif_level(f.severity),
            "message": {"text": format!("{}\nhelp: {}", f.message, f.help)},
            "locations": [location(&artifact, f.line, f.column, end)],
            "properties": {"category": f.rule.category.as_str()},
        }));
    }
    out
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn location(artifact: &Value, line: usize, column: usize, end: Option<(usize, usize)>) -> Value {
    let mut region = json!({"startLine": line.max(1), "startColumn": column.max(1)});
    if let Some((l, c)) = end.filter(|&(l, c)| (l, c) >= (line, column)) {
        region["endLine"] = json!(l);
        region["endColumn"] = json!(c.max(1));
    }
    json!({"physicalLocation": {"artifactLocation": artifact, "region": region}})
}

/// RFC 3986 path characters left as they are: unreserved ones and `/`.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

fn encode(path: &str) -> String {
    utf8_percent_encode(path, PATH).to_string()
}

/// `file:///abs/dir/` (with the trailing slash a base URI needs).
fn dir_uri(dir: &Path) -> String {
    let mut s = format!("file://{}", encode(&dir.to_string_lossy()));
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// A path under `srcroot` as a relative URI with `uriBaseId: SRCROOT`; any other path as
/// an absolute `file://` URI. Both percent-encoded (RFC 3986).
pub fn artifact_location(path: &str, srcroot: &Path) -> Value {
    let p = Path::new(path);
    let absolute = if p.is_absolute() {
        normalize(p)
    } else {
        normalize(&srcroot.join(p))
    };
    match absolute.strip_prefix(normalize(srcroot)) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            json!({"uri": encode(&rel.join("/")), "uriBaseId": "SRCROOT"})
        }
        _ => json!({"uri": format!("file://{}", encode(&absolute.to_string_lossy()))}),
    }
}

/// Removes `.` and resolves `..` without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// GitHub Actions workflow commands (`::error file=…,line=…,col=…,title=…::message`).
pub fn github(report: &Report) -> String {
    render(report, Format::Github)
}

fn github_file(file: &FileReport) -> String {
    let mut out = String::new();
    for e in &file.errors {
        let title = if e.message.starts_with("syntax error") {
            "syntax-error"
        } else {
            INPUT_ERROR_NAME
        };
        out.push_str(&format!(
            "::error file={},line={},col={},title={title}::{}\n",
            escape_prop(&file.path),
            e.line,
            e.column,
            escape_data(&e.message)
        ));
    }
    for f in &file.findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        out.push_str(&format!(
            "::{level} file={},line={},col={},title={}::{}\n",
            escape_prop(&file.path),
            f.line,
            f.column,
            escape_prop(f.rule.name),
            escape_data(&format!("{}\nhelp: {}", f.message, f.help))
        ));
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_prop(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_use_srcroot_and_are_percent_encoded() {
        let root = Path::new("/work/repo");
        assert_eq!(
            artifact_location("./migrations/001 add #1 é.sql", root),
            json!({"uri": "migrations/001%20add%20%231%20%C3%A9.sql", "uriBaseId": "SRCROOT"})
        );
        assert_eq!(
            artifact_location("/work/repo/m/a.sql", root),
            json!({"uri": "m/a.sql", "uriBaseId": "SRCROOT"})
        );
        assert_eq!(
            artifact_location("../other/a b.sql", root),
            json!({"uri": "file:///work/other/a%20b.sql"})
        );
        assert_eq!(dir_uri(Path::new("/a b/c")), "file:///a%20b/c/");
    }

    fn sample() -> Report {
        let settings = crate::Settings::default();
        let mut r = crate::Linter::new(&settings, None).lint_inputs(vec![
            crate::Input::sql("a.sql", "CREATE INDEX i ON users (email);\nDROP TABLE t;"),
            crate::Input::sql("b.sql", "ALTER TABLE users ADD COLUM x int;"),
        ]);
        r.files
            .push(crate::lint::unreadable("c.sql", "cannot read c.sql"));
        r
    }

    // The incrementally written JSON document is one valid document, empty or not.
    #[test]
    fn streamed_json_is_a_document() {
        let empty: Value = serde_json::from_str(&json(&Report::default())).expect("JSON");
        assert_eq!(empty, json!({"findings": [], "errors": []}));
        let report = sample();
        let v: Value = serde_json::from_str(&json(&report)).expect("JSON");
        let findings = report.findings().count();
        assert!(findings >= 3);
        assert_eq!(v["findings"].as_array().map(Vec::len), Some(findings));
        let files: Vec<&str> = v["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["file"].as_str())
            .collect();
        assert_eq!(files, ["b.sql", "c.sql"]);
    }

    #[test]
    fn json_lines_is_one_object_per_line() {
        let report = sample();
        let out = render(&report, Format::JsonLines);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
            .collect();
        let count = |t: &str| lines.iter().filter(|l| l["type"] == t).count();
        assert_eq!(count("finding"), report.findings().count());
        assert_eq!(count("error"), report.error_count());
        assert_eq!(lines.len(), count("finding") + count("error"));
    }

    #[test]
    fn totals_and_exit_codes() {
        let report = sample();
        let mut t = Totals::default();
        for f in &report.files {
            t.add(f);
        }
        assert_eq!(t.files, 3);
        assert_eq!(t.problems, 2);
        assert_eq!(
            t.exit_code(Severity::Error),
            report.exit_code(Severity::Error)
        );
        assert_eq!(t.exit_code(Severity::Error), 2);
        let clean = crate::Linter::new(&crate::Settings::default(), None).lint_inputs(vec![
            crate::Input::sql(
                "a.sql",
                "CREATE INDEX CONCURRENTLY i ON t (a);\nDROP TABLE t;",
            ),
        ]);
        let mut t = Totals::default();
        t.add(&clean.files[0]);
        assert_eq!(t.exit_code(Severity::Error), 0);
        assert_eq!(t.exit_code(Severity::Warning), 1);
    }

    #[test]
    fn placeholder_information_uris_are_left_out() {
        assert_eq!(usable_uri("https://example.invalid/ratchet"), None);
        assert_eq!(usable_uri(""), None);
        assert_eq!(
            usable_uri("https://github.com/acme/ratchet"),
            Some("https://github.com/acme/ratchet")
        );
    }
}
