//! Fixture files: every `tests/data/err/*.sql` must produce at least one finding (the
//! rendered output is snapshotted), every `tests/data/ok/*.sql` none at warning or above.
//! A fixture may start with `-- fixture: assume_in_transaction` or `-- fixture: pg_version=11`.

use std::path::{Path, PathBuf};

use ratchet_lint::{Linter, PgVersion, Settings, Severity};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn settings_for(sql: &str) -> Settings {
    let mut s = Settings::default();
    for line in sql
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-- fixture:"))
    {
        for opt in line.split(',').map(str::trim) {
            match opt.split_once('=') {
                Some(("pg_version", v)) => s.pg_version = PgVersion::parse(v).expect("pg_version"),
                Some(("enable", r)) => s.enable.push(r.to_string()),
                _ if opt == "assume_in_transaction" => s.assume_in_transaction = true,
                _ => panic!("unknown fixture option {opt}"),
            }
        }
    }
    s
}

fn render(path: &Path) -> (ratchet_lint::FileReport, String) {
    let sql = std::fs::read_to_string(path).expect("read fixture");
    let settings = settings_for(&sql);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("fixture.sql")
        .to_string();
    let report = Linter::new(&settings, None).lint_sql(&name, &sql);
    let text = ratchet_lint::render::text(&ratchet_lint::Report {
        files: vec![report.clone()],
    });
    (report, text)
}

#[test]
fn err_fixtures_fire() {
    let files = fixtures("err");
    assert!(!files.is_empty());
    for path in files {
        let (report, text) = render(&path);
        assert!(
            report.errors.is_empty() || path.to_string_lossy().contains("syntax"),
            "{}: {:?}",
            path.display(),
            report.errors
        );
        assert!(
            !report.findings.is_empty() || !report.errors.is_empty(),
            "{} produced no finding",
            path.display()
        );
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("fixture")
            .to_string();
        insta::assert_snapshot!(format!("err__{stem}"), text);
    }
}

#[test]
fn ok_fixtures_are_clean() {
    let files = fixtures("ok");
    assert!(!files.is_empty());
    for path in files {
        let (report, text) = render(&path);
        assert!(
            report.errors.is_empty(),
            "{}: {:?}",
            path.display(),
            report.errors
        );
        let loud: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .collect();
        assert!(
            loud.is_empty(),
            "{} should be clean:\n{text}",
            path.display()
        );
    }
}
