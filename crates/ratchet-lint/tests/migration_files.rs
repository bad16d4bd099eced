//! Ratchet migration files (JSON/YAML): the `up` and `down` SQL of an operation never run
//! together, so rules comparing statements see them apart (issue #10).

use ratchet_lint::{Input, InputKind, Linter, Settings};

fn rules_of(path: &str, source: &str) -> Vec<(&'static str, usize)> {
    let settings = Settings::default();
    let input = Input {
        path: path.into(),
        source: source.into(),
        kind: InputKind::Migration,
    };
    let report = Linter::new(&settings, None).lint_inputs(vec![input]);
    let file = &report.files[0];
    assert!(file.errors.is_empty(), "{:?}", file.errors);
    file.findings
        .iter()
        .map(|f| (f.rule.name, f.line))
        .collect()
}

const UP_AND_DOWN: &str = r#"{
  "operations": [
    {
      "sql": {
        "up": "ALTER TABLE users ADD COLUMN nickname text",
        "down": "ALTER TABLE users DROP COLUMN nickname"
      }
    }
  ]
}
"#;

#[test]
fn json_up_and_down_of_one_operation_are_not_combined() {
    let found = rules_of("m.json", UP_AND_DOWN);
    assert!(
        !found.iter().any(|(r, _)| *r == "multiple-alter-same-table"),
        "{found:?}"
    );
    // The down SQL is still linted: dropping a column is reported, at its line.
    assert!(found.contains(&("drop-column", 6)), "{found:?}");
}

#[test]
fn yaml_up_and_down_of_one_operation_are_not_combined() {
    let yaml = "operations:\n  - sql:\n      up: ALTER TABLE users ADD COLUMN nickname text\n      down: ALTER TABLE users DROP COLUMN nickname\n";
    let found = rules_of("m.yaml", yaml);
    assert!(
        !found.iter().any(|(r, _)| *r == "multiple-alter-same-table"),
        "{found:?}"
    );
}

#[test]
fn two_up_operations_on_one_table_are_still_reported() {
    let json = r#"{
  "operations": [
    {"sql": {"up": "ALTER TABLE users ADD COLUMN a int", "down": "ALTER TABLE users DROP COLUMN a"}},
    {"sql": {"up": "ALTER TABLE users ADD COLUMN b int", "down": "ALTER TABLE users DROP COLUMN b"}}
  ]
}
"#;
    let found = rules_of("m.json", json);
    let multiple: Vec<_> = found
        .iter()
        .filter(|(r, _)| *r == "multiple-alter-same-table")
        .collect();
    // Once among the ups (line 4), once among the downs, which run together on rollback.
    assert_eq!(multiple.len(), 2, "{found:?}");
    assert!(
        multiple.contains(&&("multiple-alter-same-table", 4)),
        "{found:?}"
    );
}
