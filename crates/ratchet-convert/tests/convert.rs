//! `ratchet convert`: each SQL fixture under `tests/data/convert/` is converted, the
//! YAML is snapshotted together with the notes, and the result must re-parse with
//! `ratchet_spec::parse_str` (in every format) and pass `validate_static`.

use std::path::Path;

use ratchet_convert::{convert, Conversion, ConvertError, NoteKind};
use ratchet_spec::{parse_str, to_string, validate_static, Format, MigrationFile, Operation};

fn fixture(name: &str) -> Conversion {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/convert")
        .join(format!("{name}.sql"));
    let sql = std::fs::read_to_string(&path).expect("fixture exists");
    convert(&sql, &format!("{name}.sql")).expect("fixture converts")
}

/// Writes `file` in `format`, parses it back strictly and validates it.
fn round_trip(name: &str, file: &MigrationFile, format: Format) -> String {
    let text = to_string(file, format).expect("serializes");
    let path = format!("{name}.{}", format.extension());
    let migration = parse_str(name, Path::new(&path), format, &text)
        .unwrap_or_else(|e| panic!("{format} output does not re-parse: {e}\n{text}"));
    if let Err(errors) = validate_static(&migration) {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("{format} output is invalid:\n{}\n{text}", errors.join("\n"));
    }
    assert_eq!(
        &migration.file(),
        file,
        "{format} round trip changed the file"
    );
    text
}

fn render(name: &str, conversion: &Conversion) -> String {
    let yaml = round_trip(name, &conversion.file, Format::Yaml);
    round_trip(name, &conversion.file, Format::Json);
    round_trip(name, &conversion.file, Format::Toml);
    let notes: Vec<String> = conversion.notes.iter().map(|n| format!("# {n}")).collect();
    format!("{yaml}\n# --- notes ---\n{}\n", notes.join("\n"))
}

macro_rules! fixtures {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let name = stringify!($name);
            insta::assert_snapshot!(name, render(name, &fixture(name)));
        }
    )*};
}

fixtures!(
    rename,
    type_change,
    not_null,
    indexes,
    constraints,
    drops,
    mixed_raw,
    create_table
);

fn ops(sql: &str) -> Vec<Operation> {
    convert(sql, "t.sql").expect("converts").file.operations
}

#[test]
fn type_change_is_a_cast_and_back_when_the_old_type_is_known() {
    let ops = ops("CREATE TABLE t (n int); ALTER TABLE t ALTER COLUMN n TYPE bigint;");
    let Some(Operation::AlterColumn(alter)) = ops.last() else {
        panic!("{ops:?}")
    };
    assert_eq!(alter.up.as_deref(), Some("CAST(n AS bigint)"));
    assert_eq!(alter.down.as_deref(), Some("CAST(n AS int)"));
}

#[test]
fn old_type_follows_renames_within_the_file() {
    let ops = ops(
        "CREATE TABLE t (n smallint); ALTER TABLE t RENAME COLUMN n TO m; \
         ALTER TABLE t RENAME TO u; ALTER TABLE u ALTER COLUMN m TYPE int;",
    );
    let Some(Operation::AlterColumn(alter)) = ops.last() else {
        panic!("{ops:?}")
    };
    assert_eq!(alter.down.as_deref(), Some("CAST(m AS smallint)"));
}

#[test]
fn quoted_identifiers_stay_quoted_in_up_and_down() {
    let ops = ops(r#"ALTER TABLE t ALTER COLUMN "Order" SET NOT NULL"#);
    let Some(Operation::AlterColumn(alter)) = ops.first() else {
        panic!("{ops:?}")
    };
    assert_eq!(alter.column, "Order");
    assert_eq!(alter.up.as_deref(), Some(r#""Order""#));
}

#[test]
fn unrecognised_statements_keep_their_text_behind_a_comment() {
    let conversion = convert("CREATE EXTENSION pg_trgm;", "t.sql").expect("converts");
    let [Operation::Sql(sql)] = conversion.file.operations.as_slice() else {
        panic!()
    };
    assert!(
        sql.up.starts_with("-- ratchet convert: kept as raw SQL:"),
        "{}",
        sql.up
    );
    assert!(sql.up.ends_with("\nCREATE EXTENSION pg_trgm"), "{}", sql.up);
    assert_eq!(conversion.notes[0].kind, NoteKind::KeptAsSql);
}

#[test]
fn syntax_error_points_at_the_offending_token() {
    let err = convert(
        "CREATE TABLE a (id int);\n\nALTER TABLE a\n  ADD COLUMN b int NOT NUL;\n",
        "m.sql",
    )
    .expect_err("does not parse");
    assert_eq!(
        err.to_string(),
        "m.sql:4:24: syntax error: syntax error at or near \"NUL\""
    );
}

#[test]
fn syntax_error_at_end_of_input_points_after_the_last_token() {
    let err = convert("ALTER TABLE t ADD COLUMN", "m.sql").expect_err("does not parse");
    let ConvertError::Syntax { line, column, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!((line, column), (1, 25));
}

#[test]
fn a_file_without_statements_is_an_error() {
    let err = convert("-- nothing here\n", "m.sql").expect_err("empty");
    assert_eq!(
        err,
        ConvertError::Empty {
            file: "m.sql".into()
        }
    );
}

#[test]
fn notes_point_at_the_statement_not_the_comment_above_it() {
    let conversion = convert("-- why\n/* more */\n  DROP VIEW v;", "m.sql").expect("converts");
    assert_eq!(
        (conversion.notes[0].line, conversion.notes[0].column),
        (3, 3)
    );
}

mod never_panics {
    use proptest::prelude::*;

    const WORDS: &[&str] = &[
        "ALTER",
        "TABLE",
        "t",
        "ADD",
        "COLUMN",
        "c",
        "int",
        "NOT",
        "NULL",
        "DEFAULT",
        "(",
        ")",
        ",",
        ";",
        "CREATE",
        "INDEX",
        "ON",
        "DROP",
        "CONSTRAINT",
        "CHECK",
        "RENAME",
        "TO",
        "TYPE",
        "USING",
        "'x'",
        "\"Q\"",
        "1",
        "PRIMARY",
        "KEY",
        "REFERENCES",
        "u",
        "UNIQUE",
        "SET",
        "é",
        "$$",
        "--",
        "\n",
        "/*",
        "*/",
        "BEGIN",
        "COMMIT",
        "WHERE",
        ">",
        "IF",
        "EXISTS",
    ];

    proptest! {
        #[test]
        fn on_token_soup(words in proptest::collection::vec(0..WORDS.len(), 0..40)) {
            let sql: Vec<&str> = words.iter().map(|&i| WORDS[i]).collect();
            let _ = ratchet_convert::convert(&sql.join(" "), "fuzz.sql");
        }

        #[test]
        fn on_arbitrary_text(sql in "\\PC{0,200}") {
            let _ = ratchet_convert::convert(&sql, "fuzz.sql");
        }
    }
}
