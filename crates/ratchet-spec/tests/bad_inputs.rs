//! Every fixture under `tests/data/bad` must fail to parse, and every one under
//! `tests/data/invalid` must parse but fail `validate_static`. The error text is
//! snapshotted exactly as the CLI prints it, so a change in wording is a reviewed change.

mod common;

use std::path::{Path, PathBuf};

use ratchet_spec::*;

fn fixtures(folder: &str) -> Vec<PathBuf> {
    let dir = common::data_dir().join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// Absolute paths differ between machines; the snapshots show them relative to the crate.
fn stable(text: &str) -> String {
    text.replace(&format!("{}/", common::data_dir().display()), "tests/data/")
}

fn snapshot_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.replace('.', "_")
}

#[test]
fn bad_files_fail_to_parse_with_located_errors() {
    for path in fixtures("bad") {
        let err = match load_file(&path) {
            Ok(_) => panic!("{} must not parse", path.display()),
            Err(e) => e,
        };
        assert!(
            err.line().is_some(),
            "{} has no line: {err}",
            path.display()
        );
        assert!(
            !err.hint().is_empty(),
            "{} has no hint: {err}",
            path.display()
        );
        insta::assert_snapshot!(
            format!("bad_{}", snapshot_name(&path)),
            stable(&err.to_string())
        );
    }
}

#[test]
fn invalid_files_parse_but_fail_static_validation() {
    for path in fixtures("invalid") {
        let migration = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let errors = match validate_static(&migration) {
            Ok(()) => panic!("{} must fail validation", path.display()),
            Err(errors) => errors,
        };
        let text: Vec<String> = errors.iter().map(|e| stable(&e.to_string())).collect();
        insta::assert_snapshot!(format!("invalid_{}", snapshot_name(&path)), text.join("\n"));
    }
}

#[test]
fn unknown_field_suggests_the_closest_name() {
    let path = common::data_dir().join("bad/unknown_field.yaml");
    let Err(SpecError::UnknownField {
        field,
        expected,
        hint,
        at,
        ..
    }) = load_file(&path)
    else {
        panic!("unknown_field.yaml must be an UnknownField error");
    };
    assert_eq!(field, "nulable");
    assert!(expected.iter().any(|e| e == "nullable"));
    assert!(hint.starts_with("did you mean `nullable`?"), "{hint}");
    assert_eq!((at.line, at.column), (Some(10), Some(11)));
}

#[test]
fn two_keys_lists_both() {
    let path = common::data_dir().join("bad/two_keys.yaml");
    let Err(SpecError::OperationKeys { found, message, .. }) = load_file(&path) else {
        panic!("two_keys.yaml must be an OperationKeys error");
    };
    assert_eq!(found, ["create_table", "drop_table"]);
    assert_eq!(
        message,
        "an operation must have exactly one key, found 2: create_table, drop_table"
    );
}

#[test]
fn unknown_operation_suggests_the_closest_operation() {
    let path = common::data_dir().join("bad/unknown_operation.yaml");
    let Err(SpecError::UnknownOperation {
        operation, hint, ..
    }) = load_file(&path)
    else {
        panic!("unknown_operation.yaml must be an UnknownOperation error");
    };
    assert_eq!(operation, "create_tabel");
    assert!(hint.starts_with("did you mean `create_table`?"), "{hint}");
}

#[test]
fn empty_inputs_have_no_operations() {
    for (name, format, text) in [
        ("a.yaml", Format::Yaml, ""),
        ("a.yaml", Format::Yaml, "---\n# only a comment\n"),
        ("a.json", Format::Json, "  \n"),
        ("a.toml", Format::Toml, ""),
        ("a.yaml", Format::Yaml, "operations: []"),
        ("a.json", Format::Json, "{\"operations\": []}"),
        ("a.toml", Format::Toml, "operations = []"),
    ] {
        let err = parse_str("a", Path::new(name), format, text).err();
        assert!(
            matches!(err, Some(SpecError::NoOperations { .. })),
            "{name} {text:?}: {err:?}"
        );
    }
}

#[test]
fn no_panic_on_odd_inputs() {
    let odd = [
        "\u{feff}operations: [{sql: {up: x}}]",
        "operations: *anchor",
        "&a operations: [1]",
        "? [complex, key]\n: 1\noperations: [{sql: {up: x}}]",
        "operations:\n  - sql: &s {up: x}\n  - sql: *s\n",
        "[",
        "{",
        "\"",
        "operations = [",
        "operations: [{sql: {up: x}}]\n---\noperations: []\n",
        "\u{0}",
    ];
    for text in odd {
        for format in [Format::Yaml, Format::Json, Format::Toml] {
            let _ = parse_str("x", Path::new("x"), format, text).map(|m| validate_static(&m));
        }
    }
}

#[test]
fn yaml_anchors_and_aliases_are_located() {
    let text = "operations:\n  - sql: &s {up: x}\n  - sql: *s\n";
    let m =
        parse_str("x", Path::new("x.yaml"), Format::Yaml, text).unwrap_or_else(|e| panic!("{e}"));
    let positions: Vec<(usize, usize)> = m.operations.iter().map(|o| (o.line, o.column)).collect();
    assert_eq!(positions, [(2, 5), (3, 5)]);
}
