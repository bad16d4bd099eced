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

/// The page of one rule (also what `ratchet explain` prints).
pub fn page(r: &Rule) -> String {
    let default = if r.enabled_by_default {
        format!("on, `{}`", r.severity)
    } else {
        format!("off (opt-in), `{}` when enabled", r.severity)
    };
    format!(
        "<!-- generated from crates/ratchet-lint/src/rules; do not edit -->\n# {} `{}`\n\n{}\n\n- **Default:** {}\n- **Category:** {}\n- **Suppress:** `-- ratchet:ignore {} <reason>`\n\n{}",
        r.code,
        r.name,
        r.summary,
        default,
        r.category.as_str(),
        r.name,
        r.doc_markdown().trim_start()
    )
}

fn index() -> String {
    let mut s = String::from(
        "<!-- generated from crates/ratchet-lint/src/rules; do not edit -->\n# Lint rules\n\n\
         Every rule of `ratchet lint`, generated from the rule files. See [the user guide](../lint.md).\n\n\
         | code | rule | category | default | detects |\n|---|---|---|---|---|\n",
    );
    for r in rules::ALL {
        let default = if r.enabled_by_default {
            r.severity.as_str().to_string()
        } else {
            format!("off ({})", r.severity)
        };
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
