//! What a rule is: its identity in the registry, its documentation, and the check that
//! reports [`Diagnostic`]s into a [`Sink`].
//!
//! Rules are plain data (a `static`), so the registry, `ratchet explain` and the generated
//! `docs/rules/` all read the same table and cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::context::Context;

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Style or a debatable practice.
    Info,
    /// A hazard that usually matters in production.
    Warning,
    /// Locks, rewrites, breakage or data loss.
    Error,
}

impl Severity {
    /// The lowercase name used in every output format and in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses `error`, `warning` (or `warn`) and `info`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(Severity::Error),
            "warning" | "warn" => Some(Severity::Warning),
            "info" | "note" => Some(Severity::Info),
            _ => None,
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a rule names a hazard of running the migration or a team's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Running the migration as written locks, rewrites, breaks clients or loses data.
    Hazard,
    /// A practice a team may choose (types, timeouts, naming): nothing breaks today.
    Policy,
}

impl Category {
    /// `hazard` or `policy`, as in the JSON and SARIF output.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Hazard => "hazard",
            Category::Policy => "policy",
        }
    }
}

/// A rule's check: walk `cx.statements()` (and the facts on `cx`) and push diagnostics.
pub type CheckFn = fn(&Context<'_>, &mut Sink);

/// One entry of the registry.
#[derive(Debug)]
pub struct Rule {
    /// Section letter and number from LINT-RULES.md, e.g. `A18`.
    pub code: &'static str,
    /// The kebab-case id users write, e.g. `create-index-non-concurrently`.
    pub name: &'static str,
    /// Severity when neither config nor the rule itself says otherwise.
    pub severity: Severity,
    /// `false` for opt-in rules (enabled through `[lint] enable = [...]`).
    pub enabled_by_default: bool,
    /// Hazard or policy (see [`Category`]).
    pub category: Category,
    /// One line: what the rule detects.
    pub summary: &'static str,
    /// The full documentation (Markdown), taken from the `///` comment in the rule file.
    pub doc: &'static str,
    /// The check itself.
    pub check: CheckFn,
}

impl Rule {
    /// True when `s` names this rule by code (`A18`, any case) or name.
    pub fn matches(&self, s: &str) -> bool {
        s.eq_ignore_ascii_case(self.code) || s == self.name
    }

    /// The documentation with the leading space of each `///` line removed.
    pub fn doc_markdown(&self) -> String {
        let mut out = String::new();
        for line in self.doc.lines() {
            out.push_str(line.strip_prefix(' ').unwrap_or(line));
            out.push('\n');
        }
        out
    }
}

/// Declares a rule file's `pub static RULE`, turning the `///` lines above it into
/// [`Rule::doc`]. See `CONTRIBUTING.md`.
#[macro_export]
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])*
        code: $code:literal,
        name: $name:literal,
        severity: $sev:ident,
        $(category: $cat:ident,)?
        $(enabled_by_default: $en:literal,)?
        summary: $summary:literal,
        check: $check:path $(,)?
    ) => {
        /// This file's rule.
        pub static RULE: $crate::Rule = $crate::Rule {
            code: $code,
            name: $name,
            severity: $crate::Severity::$sev,
            enabled_by_default: $crate::declare_rule!(@en $($en)?),
            category: $crate::declare_rule!(@cat $($cat)?),
            summary: $summary,
            doc: concat!($($doc, "\n",)*),
            check: $check,
        };
    };
    (@en) => { true };
    (@cat) => { $crate::rule::Category::Hazard };
    (@cat $cat:ident) => { $crate::rule::Category::$cat };
    (@en $en:literal) => { $en };
}

/// A byte range in the linted text (`start..end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start,
            end: end.max(start),
        }
    }
}

/// One text replacement: `span` is replaced by `text`. An empty span inserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub span: Span,
    pub text: String,
}

impl Edit {
    pub fn insert(at: usize, text: impl Into<String>) -> Edit {
        Edit {
            span: Span::new(at, at),
            text: text.into(),
        }
    }
    pub fn replace(span: Span, text: impl Into<String>) -> Edit {
        Edit {
            span,
            text: text.into(),
        }
    }
}

/// An autofix: edits applied together by `--fix`. Edits must not overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fix {
    /// What the fix does, e.g. "add CONCURRENTLY".
    pub title: String,
    pub edits: Vec<Edit>,
}

impl Fix {
    pub fn new(title: impl Into<String>, edits: Vec<Edit>) -> Fix {
        Fix {
            title: title.into(),
            edits,
        }
    }
}

/// What a rule reports. Build with [`Diagnostic::new`] and the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The text to point at (usually the statement, see `Statement::span`).
    pub span: Span,
    /// The hazard: the lock and what it blocks, or the breakage.
    pub message: String,
    /// The remedy and the ratchet operation that does it safely.
    pub help: String,
    /// Overrides the rule's severity for this finding (e.g. `info` on a tiny table).
    /// Config severities still win over this.
    pub severity: Option<Severity>,
    pub fix: Option<Fix>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
            help: String::new(),
            severity: None,
            fix: None,
        }
    }
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = help.into();
        self
    }
    pub fn severity(mut self, severity: Severity) -> Diagnostic {
        self.severity = Some(severity);
        self
    }
    /// Like [`Diagnostic::severity`] but keeps the rule default when `None`.
    pub fn maybe_severity(mut self, severity: Option<Severity>) -> Diagnostic {
        if severity.is_some() {
            self.severity = severity;
        }
        self
    }
    pub fn fix(mut self, fix: Fix) -> Diagnostic {
        self.fix = Some(fix);
        self
    }
}

/// Collects one rule's diagnostics.
#[derive(Debug, Default)]
pub struct Sink {
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Sink {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }
}
