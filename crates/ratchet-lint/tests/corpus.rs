//! Corpus test: folders of realistic migrations as Rails, Django, Flyway, Prisma and sqlx
//! write them (`tests/corpus/<tool>/`, with that tool's transaction behaviour in a
//! `ratchet.toml`), each with the findings we expect in `expected.txt` — one line per
//! finding, `file:line severity rule`. Regenerate with `RATCHET_BLESS=1` and review the diff.

use std::path::{Path, PathBuf};

use ratchet_lint::config::LintConfig;
use ratchet_lint::{collect_inputs, Linter, Settings};

fn lint_folder(dir: &Path) -> String {
    let mut settings = Settings::default();
    let cfg_path = dir.join("ratchet.toml");
    if let Ok(text) = std::fs::read_to_string(&cfg_path) {
        LintConfig::from_toml("ratchet.toml", &text)
            .expect("valid corpus config")
            .apply(&mut settings);
    }
    let inputs = collect_inputs(&[dir.to_path_buf()], &settings.exclude).expect("read corpus");
    let report = Linter::new(&settings, None).lint_inputs(inputs);
    let mut lines = Vec::new();
    for file in &report.files {
        let rel = Path::new(&file.path)
            .strip_prefix(dir)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| file.path.clone());
        for e in &file.errors {
            lines.push(format!("{rel}:{} error {}", e.line, e.message));
        }
        for f in &file.findings {
            lines.push(format!("{rel}:{} {} {}", f.line, f.severity, f.rule.name));
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn corpus_matches_expected_findings() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let bless = std::env::var_os("RATCHET_BLESS").is_some();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5);
    for dir in dirs {
        let got = lint_folder(&dir);
        let expected_path = dir.join("expected.txt");
        if bless {
            std::fs::write(&expected_path, &got).expect("write expected.txt");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        assert_eq!(
            expected,
            got,
            "corpus {} changed; review and RATCHET_BLESS=1",
            dir.display()
        );
    }
}
