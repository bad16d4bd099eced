//! The pgroll examples must parse and pass the static checks unchanged: compatibility with
//! pgroll's files is the reason the vocabulary is theirs.

mod common;

use ratchet_spec::*;

fn load_examples() -> Vec<Migration> {
    match load_dir(&common::examples_dir()) {
        Ok(migrations) => migrations,
        Err(e) => panic!("examples must load:\n{e}"),
    }
}

fn example(migrations: &[Migration], name: &str) -> Migration {
    match migrations.iter().find(|m| m.name == name) {
        Some(m) => m.clone(),
        None => panic!("no example {name}"),
    }
}

#[test]
fn all_56_examples_parse_and_validate() {
    let migrations = load_examples();
    assert_eq!(
        migrations.len(),
        56,
        "LICENSE must be ignored, every .yaml loaded"
    );
    for m in &migrations {
        if let Err(errors) = validate_static(m) {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("{} fails validation:\n{}", m.name, text.join("\n"));
        }
        assert_eq!(m.format, Format::Yaml);
        assert_eq!(m.checksum.len(), 64);
    }
    let names: Vec<&str> = migrations.iter().map(|m| m.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "load_dir sorts by file name");
}

#[test]
fn operation_kinds() {
    let all = load_examples();
    let kinds = |name: &str| -> Vec<&'static str> {
        example(&all, name)
            .operations
            .iter()
            .map(|o| o.value.kind())
            .collect()
    };
    assert_eq!(kinds("01_create_tables"), ["create_table"; 3]);
    assert_eq!(kinds("03_add_column"), ["add_column"; 3]);
    assert_eq!(kinds("29_set_replica_identity"), ["set_replica_identity"]);
    assert_eq!(
        kinds("48_drop_tickets_check"),
        ["drop_multicolumn_constraint"]
    );
    assert_eq!(
        kinds("55_add_primary_key_constraint_to_table"),
        ["create_table", "create_constraint"]
    );
}

#[test]
fn operation_locations_point_at_each_list_entry() {
    let all = load_examples();
    let m = example(&all, "01_create_tables");
    let positions: Vec<(usize, usize)> = m.operations.iter().map(|o| (o.line, o.column)).collect();
    assert_eq!(positions, [(2, 5), (14, 5), (24, 5)]);
    assert!(m.location(1).ends_with("01_create_tables.yaml:14:5"));
    let m = example(&all, "56_with_version_schema");
    assert_eq!((m.operations[0].line, m.operations[0].column), (3, 5));
    assert_eq!(m.version_schema.as_deref(), Some("with_version_schema"));
}

#[test]
fn every_example_operation_is_located_on_its_key_line() {
    for m in load_examples() {
        let text = std::fs::read_to_string(&m.path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for op in &m.operations {
            let line = lines.get(op.line - 1).copied().unwrap_or_default();
            let at: String = line.chars().skip(op.column - 1).collect();
            assert!(
                at.starts_with(op.value.kind()),
                "{}:{}:{} points at {at:?}, not at {}",
                m.path.display(),
                op.line,
                op.column,
                op.value.kind()
            );
        }
    }
}

#[test]
fn null_comment_and_null_default_are_some_none() {
    let all = load_examples();
    let Operation::AlterColumn(op) = &example(&all, "36_set_comment_to_null").operations[0].value
    else {
        panic!("36 is an alter_column");
    };
    assert_eq!(op.comment, Some(None));
    assert_eq!(op.default, None);
    let Operation::AlterColumn(op) =
        &example(&all, "46_alter_column_drop_default").operations[0].value
    else {
        panic!("46 is an alter_column");
    };
    assert_eq!(op.default, Some(None));
    let Operation::AlterColumn(op) = &example(&all, "35_alter_column_multiple").operations[0].value
    else {
        panic!("35 is an alter_column");
    };
    assert_eq!(op.default, Some(Some("'unknown event'".to_string())));
}

#[test]
fn details_of_a_few_examples() {
    let all = load_examples();
    let Operation::Sql(sql) = &example(&all, "32_sql_on_complete").operations[0].value else {
        panic!("32 is sql");
    };
    assert!(sql.on_complete);
    let Operation::CreateConstraint(c) =
        &example(&all, "44_add_table_unique_constraint").operations[0].value
    else {
        panic!("44 is create_constraint");
    };
    assert_eq!(c.type_, ConstraintType::Unique);
    assert_eq!(
        c.up.keys().collect::<Vec<_>>(),
        ["sellers_name", "sellers_zip"]
    );
    let Operation::CreateIndex(i) =
        &example(&all, "54_create_index_with_opclass").operations[0].value
    else {
        panic!("54 is create_index");
    };
    assert_eq!(
        i.columns[0].opclass.as_ref().map(|o| o.name.as_str()),
        Some("int8_ops")
    );
}
