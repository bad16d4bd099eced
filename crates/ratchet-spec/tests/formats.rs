//! JSON and TOML files use the same structure as YAML; these check parsing, operation
//! locations, and that every example survives a conversion to each format and back.

mod common;

use std::path::Path;

use ratchet_spec::*;

const JSON: &str = r#"{
  "version_schema": "v2",
  "operations": [
    {
      "create_table": {
        "name": "items",
        "columns": [
          {"name": "id", "type": "serial", "pk": true},
          {"name": "label", "type": "text", "nullable": true}
        ]
      }
    },
    {"alter_column": {"table": "items", "column": "label", "default": null}}
  ]
}
"#;

const TOML: &str = r#"version_schema = "v2"

[[operations]]
[operations.create_table]
name = "items"

[[operations.create_table.columns]]
name = "id"
type = "serial"
pk = true

[[operations.create_table.columns]]
name = "label"
type = "text"
nullable = true

[[operations]]
alter_column = { table = "items", column = "label", default = {} }
"#;

fn parse(name: &str, format: Format, text: &str) -> Migration {
    match parse_str(name, Path::new(name), format, text) {
        Ok(m) => m,
        Err(e) => panic!("{name} must parse:\n{e}"),
    }
}

fn positions(m: &Migration) -> Vec<(usize, usize)> {
    m.operations.iter().map(|o| (o.line, o.column)).collect()
}

#[test]
fn json_example_parses_with_locations() {
    let m = parse("items.json", Format::Json, JSON);
    assert_eq!(positions(&m), [(4, 5), (13, 5)]);
    assert_eq!(m.location(1), "items.json:13:5");
    let Operation::AlterColumn(op) = &m.operations[1].value else {
        panic!("second operation is alter_column");
    };
    assert_eq!(op.default, Some(None));
    assert_eq!(validate_static(&m), Ok(()));
}

#[test]
fn toml_example_parses_with_locations() {
    let m = parse("items.toml", Format::Toml, TOML);
    assert_eq!(positions(&m), [(3, 1), (17, 1)]);
    let Operation::AlterColumn(op) = &m.operations[1].value else {
        panic!("second operation is alter_column");
    };
    assert_eq!(op.default, Some(None));
    assert_eq!(m.file(), parse("items.json", Format::Json, JSON).file());
}

#[test]
fn toml_inline_operations_array_is_located() {
    let text = "operations = [\n  { drop_table = { name = \"a\" } },\n  { drop_index = { name = \"b\" } },\n]\n";
    let m = parse("inline.toml", Format::Toml, text);
    assert_eq!(positions(&m), [(2, 3), (3, 3)]);
}

#[test]
fn yaml_flow_style_is_located() {
    let text = "operations: [{drop_table: {name: a}}, {drop_index: {name: b}}]\n";
    let m = parse("flow.yaml", Format::Yaml, text);
    assert_eq!(positions(&m), [(1, 14), (1, 39)]);
}

#[test]
fn checksum_covers_the_operations_and_raw_checksum_the_bytes() {
    let m = parse(
        "x.yaml",
        Format::Yaml,
        "operations:\n  - drop_table:\n      name: t\n",
    );
    assert_eq!(
        m.raw_checksum,
        "583b5b9b54577349b63f4c5dd40f1ce83bb172b4985baa92f934db0d10a056ce"
    );
    assert_eq!(m.checksum.len(), 64);
    // Comments, quoting and the syntax do not change the operations (issue 9).
    let commented = parse(
        "x.yaml",
        Format::Yaml,
        "# drop t\noperations:\n  - drop_table:\n      name: 't'   # the old one\n",
    );
    assert_eq!(m.checksum, commented.checksum);
    assert_ne!(m.raw_checksum, commented.raw_checksum);
    let json = parse(
        "x.json",
        Format::Json,
        r#"{"operations": [{"drop_table": {"name": "t"}}]}"#,
    );
    assert_eq!(m.checksum, json.checksum);
    let other = parse(
        "x.yaml",
        Format::Yaml,
        "operations:\n  - drop_table:\n      name: u\n",
    );
    assert_ne!(m.checksum, other.checksum);
}

#[test]
fn every_example_round_trips_through_every_format() {
    let migrations = match load_dir(&common::examples_dir()) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    for m in &migrations {
        let file = m.file();
        for format in [Format::Yaml, Format::Json, Format::Toml] {
            let text = match to_string(&file, format) {
                Ok(t) => t,
                Err(e) => panic!("{} as {format}: {e}", m.name),
            };
            let path = Path::new("converted").with_extension(format.extension());
            let back = match parse_str(&m.name, &path, format, &text) {
                Ok(b) => b,
                Err(e) => panic!(
                    "{} as {format} does not parse back:\n{e}\n---\n{text}",
                    m.name
                ),
            };
            assert_eq!(back.file(), file, "{} as {format}:\n{text}", m.name);
            assert_eq!(back.operations.len(), m.operations.len());
        }
    }
}

#[test]
fn yaml_output_is_pgroll_shaped() {
    let m = parse(
        "x.yaml",
        Format::Yaml,
        "operations:\n  - drop_table:\n      name: t\n",
    );
    let text = to_string(&m.file(), Format::Yaml).unwrap_or_default();
    assert_eq!(text, "operations:\n- drop_table:\n    name: t\n");
}

#[test]
fn toml_null_default_is_written_as_empty_table() {
    let m = parse("items.json", Format::Json, JSON);
    let text = to_string(&m.file(), Format::Toml).unwrap_or_default();
    assert!(text.contains("default = {}"), "{text}");
}

#[test]
fn load_dir_rejects_two_files_with_one_name() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
    };
    write("01_a.yaml", "operations:\n  - drop_table:\n      name: t\n");
    write("README.md", "not a migration");
    write("02_b.json", JSON);
    let loaded = load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = loaded.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["01_a", "02_b"]);
    write("01_a.toml", TOML);
    let Err(err) = load_dir(dir.path()) else {
        panic!("duplicate stems must fail");
    };
    assert!(matches!(err, SpecError::DuplicateMigration { .. }), "{err}");
}

#[test]
fn load_file_rejects_unknown_extension_and_missing_file() {
    let err = load_file(Path::new("migration.txt")).err();
    assert!(matches!(err, Some(SpecError::UnsupportedFormat { .. })));
    let err = load_file(Path::new("/nonexistent/01.yaml")).err();
    assert!(matches!(err, Some(SpecError::Io { .. })));
}
