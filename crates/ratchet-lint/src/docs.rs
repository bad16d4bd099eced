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
        "# {} `{}`\n\n{}\n\n- **Default:** {}\n- **Suppress:** `-- ratchet:ignore {} <reason>`\n\n{}",
        r.code,
        r.name,
        r.summary,
        default,
        r.name,
        r.doc_markdown().trim_start()
    )
}

fn index() -> String {
    let mut s = format!(
        "{GENERATED}\n# Lint rules\n\n\
         Every rule of `ratchet lint`, generated from the rule files. See [the user guide](../lint.md).\n\n\
         | code | rule | default | detects |\n|---|---|---|---|\n",
    );
    for r in rules::ALL {
        let default = if r.enabled_by_default {
            r.severity.as_str().to_string()
        } else {
            format!("off ({})", r.severity)
        };
        s.push_str(&format!(
            "| {} | [`{}`]({}.md) | {} | {} |\n",
            r.code,
            r.name,
            r.name,
            default,
            r.summary.replace('|', "\\|")
        ));
    }
    s
}
