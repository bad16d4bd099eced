//! The rule reference in `docs/rules/`, generated from the registry (the `///` comment of
//! each rule file). A test fails when the checked-in files differ from this output;
//! `RATCHET_BLESS=1 cargo test -p ratchet-lint --test docs` rewrites them.

use crate::rule::Rule;
use crate::rules;

/// `(file name, contents)` of every generated page, index first.
pub fn generate() -> Vec<(String, String)> {
    let mut pages = vec![("README.md".to_string(), index())];
    pages.extend(
        rules::ALL
            .iter()
            .map(|r| (format!("{}.md", r.name), page(r))),
    );
    pages
}

/// The page of one rule, as checked in under `docs/rules/`.
pub fn page(r: &Rule) -> String {
    format!("{GENERATED}\n{}", explain(r))
}

/// The marker at the top of each checked-in page (not shown by `ratchet explain`).
const GENERATED: &str = "<!-- generated from crates/ratchet-lint/src/rules; do not edit -->";

/// What `ratchet explain` prints for a rule: its page without the generated-file marker.
pub fn explain(r: &Rule) -> String {
    let default = if r.enabled_by_default {
        format!("on, `{}`", r.severity)
    } else {
        format!("off (opt-in), `{}` when enabled", r.severity)
    };
    format!(
        "# {} `{}`\n\n{}\n\n- **Default:** {}\n- **Category:** {}\n- **Why this default:** {}\n- **Suppress:** `-- ratchet:ignore {} <reason>`\n\n{}",
        r.code,
        r.name,
        r.summary,
        default,
        r.category.as_str(),
        default_reason(r),
        r.name,
        r.doc_markdown().trim_start()
    )
}

fn index() -> String {
    let mut s = format!(
        "{GENERATED}\n# Lint rules\n\n\
         Every rule of `ratchet lint`, generated from the rule files. See [the user guide](../lint.md).\n\n\
         | code | rule | category | default | detects |\n|---|---|---|---|---|\n",
    );
    for r in rules::ALL {
        let default = table_default(r);
        s.push_str(&format!(
            "| {} | [`{}`]({}.md) | {} | {} | {} |\n",
            r.code,
            r.name,
            r.name,
            r.category.as_str(),
            default,
            r.summary.replace('|', "\\|")
        ));
    }
    s
}

/// Why a rule has its default (category, severity, on or off): the reason shown in the
/// table of `docs/lint.md`. Rules without their own reason share their class's.
pub fn default_reason(r: &Rule) -> &'static str {
    use crate::rule::{Category, Severity};
    let own = match r.name {
        // Policy rules.
        "missing-lock-timeout" => "warning: a write-blocking lock request queued behind one long transaction stops all traffic on the table (the most common migration outage), and `SET lock_timeout` costs nothing",
        "missing-statement-timeout" => "info: a statement_timeout during `CREATE INDEX CONCURRENTLY` leaves an INVALID index, so the advice must not fail CI",
        "prefer-bigint" => "info: an `integer` key is a capacity choice that fails nothing today, and many tables never near 2^31 rows; raise it in config to enforce it",
        "prefer-identity" => "info: serial works; identity is tidier (grants, ownership), not safer to migrate",
        "prefer-timestamptz" => "warning: `timestamp` silently drops the UTC offset of every value written, and changing it later rewrites the table",
        "ban-char" => "warning: `char(n)` pads and compares with blanks, a data-correctness trap that is costly to change later",
        "json-column" => "warning: `json` has no equality operator, so DISTINCT/UNION/GROUP BY on it fail, and converting later rewrites",
        "varchar-length-limit" => "info: a length limit is a valid choice; only changing it later needs a migration",
        "create-enum" => "info: enums are fine for stable value sets; the note is about later changes",
        "too-many-index-columns" => "info: wide indexes are a design smell, not a hazard of the migration",
        "multiple-alter-same-table" => "info: an efficiency note (the lock is taken twice), never a failure",
        "require-schema-qualified" => "off: many projects rely on search_path deliberately",
        "column-alignment-padding" => "off: a storage optimisation for teams that want it",
        "naming-convention" => "off: needs the team's own patterns in config",
        "unused-ignore" => "warning: a stale suppression would hide the next real finding on that statement",
        // Hazards whose default differs from their class.
        "unique-may-fail-on-duplicates" => "info: `CREATE UNIQUE INDEX CONCURRENTLY` is the recommended way to add uniqueness; on duplicates it fails leaving only an INVALID index, holding no lock and changing no data",
        "fk-without-index" => "warning on an existing table (deletes on the parent scan it); info on a table created in the same file, which is empty: a performance note for later",
        "create-trigger-existing-table" => "info: the SHARE ROW EXCLUSIVE lock is brief; the trigger's cost lands on later writes",
        "enum-add-value" => "info: ADD VALUE is instant; only ordering and transaction use on old versions need care",
        "statements-after-access-exclusive" => "warning: the lock is held for as long as the slow statement runs; whether that matters depends on its speed",
        "drop-index-non-concurrently" => "warning: ACCESS EXCLUSIVE, but usually brief; CONCURRENTLY avoids it",
        "attach-partition-unvalidated" => "warning: the scan is of the partition only, often small; a pre-validated CHECK avoids it",
        "refresh-matview-blocking" => "warning: blocks reads of the view only, for the length of the refresh",
        "client-visible-shape-change" => "off: rollback compatibility is a deployment policy some teams do not need",
        "security-or-config-change" => "off: privilege and setting changes are often the point of the migration",
        "table-rewrite-observed" => "error: reported by rehearsal from a trace, never by `lint`",
        "syntax-error" => "error: nothing in the statement can be checked and it fails when run (exit 2)",
        _ => "",
    };
    if !own.is_empty() {
        return own;
    }
    match (r.category, r.severity) {
        (Category::Hazard, Severity::Error) => "error: locks that block traffic for the length of a scan, rewrite or build, a statement that will fail, or data loss",
        (Category::Hazard, Severity::Warning) => "warning: breaks clients that still use the old shape, or a hazard that usually matters in production",
        (Category::Hazard, Severity::Info) => "info: advice that matters only in some deployments",
        (Category::Policy, _) => "a team choice: nothing breaks today",
    }
}

/// The table of every rule with its category and default, and why (between the markers
/// of `docs/lint.md`).
pub fn rule_table() -> String {
    let mut s = String::from(
        "| code | rule | category | default | why this default |\n|---|---|---|---|---|\n",
    );
    for r in rules::ALL {
        let default = table_default(r);
        s.push_str(&format!(
            "| {} | [`{}`](rules/{}.md) | {} | {} | {} |\n",
            r.code,
            r.name,
            r.name,
            r.category.as_str(),
            default,
            default_reason(r).replace('|', "\\|")
        ));
    }
    s
}

/// A rule's default as the tables show it: its severity, or `off (<severity>)`.
fn table_default(r: &Rule) -> String {
    if r.enabled_by_default {
        r.severity.as_str().to_string()
    } else {
        format!("off ({})", r.severity)
    }
}
