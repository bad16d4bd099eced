//! SARIF output that code scanning accepts (issue #10): every document these tests render
//! is validated against the official OASIS SARIF 2.1.0 schema (`tests/fixtures/`, unchanged
//! copy), and the rules of GitHub code scanning and Microsoft's SARIF validator that the
//! schema does not express are checked directly: relative URIs with `uriBaseId`, RFC 3986
//! encoding, rule names distinct from ids, the tool version.

use std::path::{Path, PathBuf};

use ratchet_lint::render::{render_in, Format};
use ratchet_lint::{sources, Input, InputKind, Linter, Report, Settings};
use serde_json::Value;

fn schema() -> jsonschema::Validator {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sarif-schema-2.1.0.json");
    let text = std::fs::read_to_string(path).expect("schema fixture");
    let schema: Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

/// Parses `sarif` and fails with every schema error.
fn validated(sarif: &str) -> Value {
    let doc: Value = serde_json::from_str(sarif).expect("SARIF is JSON");
    let errors: Vec<String> = schema()
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    doc
}

const ROOT: &str = "/work/repo";

fn report(inputs: Vec<Input>) -> Report {
    Linter::new(&Settings::default(), None).lint_inputs(inputs)
}

fn sample() -> Report {
    let mut r = report(vec![
        Input::sql(
            "migrations/001 add #1 é.sql",
            "CREATE INDEX users_email_idx ON users (email);\n",
        ),
        Input::sql(
            "./migrations/002.sql",
            "ALTER TABLE users ADD COLUM x int;\n",
        ),
        Input::sql("/elsewhere/003.sql", "DROP TABLE users;\n"),
        Input {
            path: "migrations/004.yaml".into(),
            source: "operations:\n  - sql:\n      up: CREATE INDEX i ON t (a)\n".into(),
            kind: InputKind::Migration,
        },
    ]);
    r.files.push(ratchet_lint::unreadable(
        "missing.sql",
        "cannot read missing.sql: No such file or directory (os error 2)",
    ));
    r
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let doc = validated(&render_in(&sample(), Format::Sarif, Path::new(ROOT)));
    let run = &doc["runs"][0];
    assert_eq!(
        run["originalUriBaseIds"]["SRCROOT"]["uri"],
        "file:///work/repo/"
    );
    let uris: Vec<(&str, Option<&str>)> = run["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let a = &r["locations"][0]["physicalLocation"]["artifactLocation"];
            (a["uri"].as_str().unwrap_or(""), a["uriBaseId"].as_str())
        })
        .collect();
    for expected in [
        ("migrations/001%20add%20%231%20%C3%A9.sql", Some("SRCROOT")),
        ("migrations/002.sql", Some("SRCROOT")),
        ("file:///elsewhere/003.sql", None),
        ("migrations/004.yaml", Some("SRCROOT")),
        ("missing.sql", Some("SRCROOT")),
    ] {
        assert!(uris.contains(&expected), "{expected:?} not in {uris:?}");
    }
}

#[test]
fn rules_have_kebab_names_distinct_from_ids_and_the_tool_its_version() {
    let doc = validated(&render_in(&sample(), Format::Sarif, Path::new(ROOT)));
    let driver = &doc["runs"][0]["tool"]["driver"];
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    if let Some(uri) = driver["informationUri"].as_str() {
        assert!(
            !uri.contains(".invalid"),
            "placeholder informationUri {uri}"
        );
    }
    let rules = driver["rules"].as_array().expect("rules");
    assert!(rules.len() > 60);
    for r in rules {
        let (id, name) = (
            r["id"].as_str().expect("id"),
            r["name"].as_str().expect("name"),
        );
        assert_ne!(id, name);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name} is not kebab-case"
        );
        let category = r["properties"]["category"].as_str();
        assert!(matches!(category, Some("hazard" | "policy")), "{r}");
    }
    // Every result points at its rule.
    for res in doc["runs"][0]["results"].as_array().expect("results") {
        let i = res["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[i]["id"], res["ruleId"], "{res}");
    }
}

#[test]
fn results_snapshot() {
    let doc = validated(&render_in(&sample(), Format::Sarif, Path::new(ROOT)));
    let results = serde_json::to_string_pretty(&doc["runs"][0]["results"]).expect("JSON");
    insta::assert_snapshot!(results);
}

#[test]
fn empty_run_and_missing_paths_validate() {
    validated(&render_in(
        &Report::default(),
        Format::Sarif,
        Path::new(ROOT),
    ));
    // A missing path among real ones: an error result for it, the others linted.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.sql"), "DROP TABLE users;\n").expect("write");
    let paths = [dir.path().join("a.sql"), dir.path().join("nope.sql")];
    let files = Linter::new(&Settings::default(), None).lint_sources(sources(&paths, &[]));
    let doc = validated(&render_in(&files, Format::Sarif, dir.path()));
    let ids: Vec<&str> = doc["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["ruleId"].as_str())
        .collect();
    assert!(ids.contains(&"B2") && ids.contains(&"E1"), "{ids:?}");
}

#[test]
fn every_error_fixture_renders_valid_sarif() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/err");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    let files = Linter::new(&Settings::default(), None).lint_sources(sources(&paths, &[]));
    assert!(files
        .files
        .iter()
        .all(|f| !f.findings.is_empty() || !f.errors.is_empty()));
    validated(&render_in(&files, Format::Sarif, &dir));
}

// The validator is live: the faults issue #10 found are rejected.
#[test]
fn the_schema_rejects_broken_documents() {
    let good: Value =
        serde_json::from_str(&render_in(&sample(), Format::Sarif, Path::new(ROOT))).expect("JSON");
    let v = schema();
    assert!(v.is_valid(&good));
    let mut bad = good.clone();
    bad["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!v.is_valid(&bad), "an unknown level passes");
    let mut bad = good;
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        0.into();
    assert!(!v.is_valid(&bad), "a line 0 passes");
}
