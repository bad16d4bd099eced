//! Output formats: rustc-style text, JSON, SARIF 2.1.0 (code scanning) and GitHub workflow
//! annotations. Each returns a `String`; the CLI decides where it goes.

use serde_json::{json, Value};

use crate::lint::{FileReport, Finding, Report};
use crate::rules;
use crate::source::LineIndex;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Github,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            "sarif" => Some(Format::Sarif),
            "github" => Some(Format::Github),
            _ => None,
        }
    }
}

/// Renders a report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text(report),
        Format::Json => json(report),
        Format::Sarif => sarif(report),
        Format::Github => github(report),
    }
}

/// rustc-style diagnostics with the source line and a caret, then a summary line.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for file in &report.files {
        let lines = LineIndex::new(&file.source);
        for e in &file.errors {
            out.push_str(&format!("error: {}\n", e.message));
            snippet(&mut out, file, &lines, e.line, e.column, 1);
            out.push('\n');
        }
        for f in &file.findings {
            out.push_str(&finding_text(file, &lines, f));
            out.push('\n');
        }
    }
    out.push_str(&summary(report));
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

fn summary(report: &Report) -> String {
    use crate::rule::Severity::*;
    let (e, w, i) = (
        report.count(Error),
        report.count(Warning),
        report.count(Info),
    );
    let errors = report.error_count();
    let files = report.files.len();
    let plural = |n: usize, s: &str| {
        if n == 1 {
            format!("{n} {s}")
        } else {
            format!("{n} {s}s")
        }
    };
    let mut s = format!(
        "{}: {}, {}, {} in {}",
        if e + w + i + errors == 0 {
            "ok"
        } else {
            "found"
        },
        plural(e, "error"),
        plural(w, "warning"),
        plural(i, "info"),
        plural(files, "file")
    );
    if errors > 0 {
        s.push_str(&format!(
            "; {} could not be checked",
            plural(errors, "problem")
        ));
    }
    s.push('\n');
    s
}

/// `{"findings": [...], "errors": [...]}`.
pub fn json(report: &Report) -> String {
    let findings: Vec<Value> = report
        .findings()
        .map(|(file, f)| {
            json!({
                "rule": f.rule.name,
                "severity": f.severity.as_str(),
                "file": file.path,
                "line": f.line,
                "column": f.column,
                "message": f.message,
                "help": f.help,
            })
        })
        .collect();
    let errors: Vec<Value> = report
        .files
        .iter()
        .flat_map(|file| {
            file.errors.iter().map(move |e| json!({"file": file.path, "line": e.line, "column": e.column, "message": e.message}))
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&json!({"findings": findings, "errors": errors}))
        .unwrap_or_default();
    s.push('\n');
    s
}

/// SARIF 2.1.0, one run, every registered rule in the driver.
pub fn sarif(report: &Report) -> String {
    let rule_list: Vec<Value> = rules::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.name,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.summary},
                "help": {"text": r.doc_markdown(), "markdown": r.doc_markdown()},
                "defaultConfiguration": {"level": sarif_level(r.severity)},
                "properties": {"code": r.code},
            })
        })
        .collect();
    let mut results: Vec<Value> = report
        .findings()
        .map(|(file, f)| {
            let (end_line, end_col) =
                LineIndex::new(&file.source).line_col(&file.source, f.span.end);
            json!({
                "ruleId": f.rule.name,
                "ruleIndex": rules::ALL.iter().position(|r| r.name == f.rule.name).unwrap_or(0),
                "level": sarif_level(f.severity),
                "message": {"text": format!("{}\nhelp: {}", f.message, f.help)},
                "locations": [location(&file.path, f.line, f.column, Some((end_line, end_col)))],
            })
        })
        .collect();
    for file in &report.files {
        for e in &file.errors {
            results.push(json!({
                "ruleId": "syntax-error",
                "level": "error",
                "message": {"text": e.message},
                "locations": [location(&file.path, e.line, e.column, None)],
            }));
        }
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "ratchet", "informationUri": "https://example.invalid/ratchet", "rules": rule_list}},
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

fn sarif_level(s: crate::rule::Severity) -> &'static str {
    match s {
        crate::rule::Severity::Error => "error",
        crate::rule::Severity::Warning => "warning",
        crate::rule::Severity::Info => "note",
    }
}

fn location(path: &str, line: usize, column: usize, end: Option<(usize, usize)>) -> Value {
    let mut region = json!({"startLine": line, "startColumn": column});
    if let Some((l, c)) = end {
        region["endLine"] = json!(l);
        region["endColumn"] = json!(c);
    }
    json!({"physicalLocation": {"artifactLocation": {"uri": path.trim_start_matches("./")}, "region": region}})
}

/// GitHub Actions workflow commands (`::error file=…,line=…,col=…,title=…::message`).
pub fn github(report: &Report) -> String {
    let mut out = String::new();
    for file in &report.files {
        for e in &file.errors {
            out.push_str(&format!(
                "::error file={},line={},col={},title=syntax-error::{}\n",
                escape_prop(&file.path),
                e.line,
                e.column,
                escape_data(&e.message)
            ));
        }
        for f in &file.findings {
            let level = match f.severity {
                crate::rule::Severity::Error => "error",
                crate::rule::Severity::Warning => "warning",
                crate::rule::Severity::Info => "notice",
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
