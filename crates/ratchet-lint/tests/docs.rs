//! `docs/rules/` is generated from the rule registry; this test fails when it is stale.
//! Regenerate with `RATCHET_BLESS=1 cargo test -p ratchet-lint --test docs`.

use std::path::PathBuf;

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules")
}

#[test]
fn rule_docs_are_up_to_date() {
    let dir = docs_dir();
    let bless = std::env::var_os("RATCHET_BLESS").is_some();
    let pages = ratchet_lint::docs::generate();
    if bless {
        std::fs::create_dir_all(&dir).expect("create docs/rules");
        for entry in std::fs::read_dir(&dir).expect("read docs/rules").flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(".md") && !pages.iter().any(|(n, _)| *n == name) {
                std::fs::remove_file(entry.path()).expect("remove stale page");
            }
        }
        for (name, text) in &pages {
            std::fs::write(dir.join(name), text).expect("write page");
        }
        return;
    }
    let mut stale = Vec::new();
    for (name, text) in &pages {
        if std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text.as_str()) {
            stale.push(name.clone());
        }
    }
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".md") && !pages.iter().any(|(n, _)| *n == name) {
            stale.push(format!("{name} (no such rule)"));
        }
    }
    assert!(stale.is_empty(), "docs/rules is stale: {stale:?}\nrun: RATCHET_BLESS=1 cargo test -p ratchet-lint --test docs");
}

#[test]
fn every_rule_doc_has_the_four_sections() {
    for rule in ratchet_lint::rules::ALL {
        let doc = rule.doc_markdown();
        for section in [
            "## What it detects",
            "## Why it is dangerous",
            "## What to do instead",
            "## Example",
        ] {
            assert!(
                doc.contains(section),
                "rule {} ({}) lacks `{section}`",
                rule.code,
                rule.name
            );
        }
    }
}

#[test]
fn registry_is_complete_and_unique() {
    let all = ratchet_lint::rules::ALL;
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a.code, b.code, "duplicate code");
            assert_ne!(a.name, b.name, "duplicate name");
        }
    }
    for n in 1..=40 {
        assert!(
            ratchet_lint::rules::find(&format!("A{n}")).is_some(),
            "A{n} missing"
        );
    }
}
