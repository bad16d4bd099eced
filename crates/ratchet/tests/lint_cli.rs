//! End-to-end tests of `ratchet lint`, `ratchet explain`: exit code, stdout and stderr,
//! with temp paths filtered out.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ratchet(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ratchet"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ratchet");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("ratchet runs");
    let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&dir.display().to_string(), "[TMP]");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: clean(&out.stdout),
        stderr: clean(&out.stderr),
    }
}

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

const BAD: &str = "SET lock_timeout = '1s';\nCREATE INDEX users_email_idx ON users (email);\n";
const GOOD: &str = "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);\n";

#[test]
fn text_output_and_exit_code_1() {
    let dir = project(&[("migrations/001_index.sql", BAD)]);
    let run = ratchet(dir.path(), &["lint", "migrations"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn clean_folder_exits_0() {
    let dir = project(&[("migrations/001_index.sql", GOOD)]);
    let run = ratchet(dir.path(), &["lint", "migrations"], None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("ok: 0 errors, 0 warnings"),
        "{}",
        run.stdout
    );
}

#[test]
fn json_output_has_the_documented_shape() {
    let dir = project(&[
        ("a.sql", BAD),
        ("b.sql", "ALTER TABLE users ADD COLUM x int;\n"),
    ]);
    let run = ratchet(
        dir.path(),
        &["lint", "--format", "json", "a.sql", "b.sql"],
        None,
    );
    assert_eq!(run.code, 2, "syntax errors win: {}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    let finding = &v["findings"][0];
    let keys: Vec<&str> = finding
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["rule", "severity", "category", "file", "line", "column", "message", "help"]
    );
    assert_eq!(finding["rule"], "create-index-non-concurrently");
    assert_eq!(finding["line"], 2);
    let error = &v["errors"][0];
    let keys: Vec<&str> = error
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["file", "line", "column", "message"]);
    assert_eq!(
        (
            error["file"].as_str(),
            error["line"].as_u64(),
            error["column"].as_u64()
        ),
        (Some("b.sql"), Some(1), Some(31))
    );
}

#[test]
fn fail_on_error_ignores_warnings() {
    let dir = project(&[("a.sql", "ALTER TABLE users ADD COLUMN plan text;\n")]);
    assert_eq!(ratchet(dir.path(), &["lint", "a.sql"], None).code, 1);
    assert_eq!(
        ratchet(dir.path(), &["lint", "--fail-on", "error", "a.sql"], None).code,
        0
    );
}

#[test]
fn fix_rewrites_the_file() {
    let dir = project(&[("a.sql", BAD)]);
    let run = ratchet(dir.path(), &["lint", "--fix", "a.sql"], None);
    let fixed = std::fs::read_to_string(dir.path().join("a.sql")).expect("read");
    assert!(
        fixed.contains("CREATE INDEX CONCURRENTLY") && fixed.contains("users_email_idx ON users"),
        "{fixed}"
    );
    assert!(
        !run.stdout.contains("create-index-non-concurrently"),
        "{}",
        run.stdout
    );
}

#[test]
fn stdin_and_github_format() {
    let dir = project(&[]);
    let run = ratchet(
        dir.path(),
        &[
            "lint",
            "--format",
            "github",
            "--stdin-filename",
            "m.sql",
            "-",
        ],
        Some(BAD),
    );
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn sarif_is_2_1_0() {
    let dir = project(&[("a.sql", BAD)]);
    let run = ratchet(dir.path(), &["lint", "--format", "sarif", "a.sql"], None);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid SARIF JSON");
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(v["runs"][0]["results"][0]["ruleId"], "A18");
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ratchet-lint/tests/fixtures/sarif-schema-2.1.0.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let artifact =
        &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(artifact["uri"], "a.sql");
    assert_eq!(artifact["uriBaseId"], "SRCROOT");
    assert_eq!(
        v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
}

#[test]
fn config_file_disables_rules_and_excludes_paths() {
    let dir = project(&[
        (
            "ratchet.toml",
            "[lint]\ndisable = [\"A18\"]\nexclude = [\"legacy\"]\n",
        ),
        ("migrations/001.sql", BAD),
        ("migrations/legacy/000.sql", "DROP TABLE users;\n"),
    ]);
    let run = ratchet(dir.path(), &["lint", "migrations"], None);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let bad_cfg = project(&[
        ("ratchet.toml", "[lint]\ndisable = [\"no-such-rule\"]\n"),
        ("a.sql", GOOD),
    ]);
    let run = ratchet(bad_cfg.path(), &["lint", "a.sql"], None);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown rule `no-such-rule`"),
        "{}",
        run.stderr
    );
}

#[test]
fn assume_in_transaction_and_pg_version_flags() {
    let dir = project(&[(
        "a.sql",
        "ALTER TABLE t ADD COLUMN x int;\nCREATE INDEX CONCURRENTLY i ON t (x);\n",
    )]);
    let run = ratchet(
        dir.path(),
        &[
            "lint",
            "--assume-in-transaction",
            "--format",
            "json",
            "a.sql",
        ],
        None,
    );
    assert!(
        run.stdout.contains("concurrently-in-transaction"),
        "{}",
        run.stdout
    );
    let dir = project(&[(
        "a.sql",
        "SET lock_timeout = '1s';\nALTER TABLE t ADD COLUMN x int DEFAULT 0;\n",
    )]);
    let run = ratchet(
        dir.path(),
        &["lint", "--pg-version", "10", "--format", "json", "a.sql"],
        None,
    );
    assert!(
        run.stdout.contains("add-column-volatile-default"),
        "{}",
        run.stdout
    );
}

#[test]
fn migration_files_are_linted() {
    let yaml = "operations:\n  - sql:\n      up: CREATE INDEX users_email_idx ON users (email)\n  - add_column:\n      table: users\n      column:\n        name: meta\n        type: json\n        nullable: true\n";
    let dir = project(&[("migrations/01_index.yaml", yaml)]);
    let run = ratchet(
        dir.path(),
        &["lint", "--format", "json", "migrations"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let rules: Vec<(&str, u64)> = v["findings"]
        .as_array()
        .expect("array")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or(""),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        rules.contains(&("create-index-non-concurrently", 3)),
        "{rules:?}"
    );
    assert!(rules.contains(&("json-column", 4)), "{rules:?}");
}

#[test]
fn explain_prints_the_rule_doc() {
    let dir = project(&[]);
    let run = ratchet(dir.path(), &["explain", "A18"], None);
    assert_eq!(run.code, 0);
    assert_eq!(run.stderr, "");
    // The page of docs/rules/, without its generated-file marker (issue 9).
    assert!(
        run.stdout
            .starts_with("# A18 `create-index-non-concurrently`\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("<!--"), "{}", run.stdout);
    assert!(run.stdout.contains("## What to do instead"));
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/rules/create-index-non-concurrently.md"),
    )
    .expect("rule page");
    assert!(page.ends_with(&run.stdout), "{page}");
    let by_name = ratchet(
        dir.path(),
        &["explain", "create-index-non-concurrently"],
        None,
    );
    assert_eq!(by_name.stdout, run.stdout);
    let list = ratchet(dir.path(), &["explain", "--list"], None);
    assert!(list.stdout.lines().count() >= 78, "{}", list.stdout);
    let a35 = list
        .stdout
        .lines()
        .find(|l| l.starts_with("A35 "))
        .expect("A35 listed");
    assert!(
        a35.contains(" warning ") && a35.contains(" policy "),
        "{a35}"
    );
    let unknown = ratchet(dir.path(), &["explain", "no-such-rule"], None);
    assert_eq!(unknown.code, 2);
    assert_eq!(unknown.stdout, "");
    assert_eq!(
        unknown.stderr,
        "error: unknown rule `no-such-rule` (`ratchet explain --list` lists every rule)\n"
    );
    // A typo of a name or of a code gets a did-you-mean (issue 9).
    let typo = ratchet(
        dir.path(),
        &["explain", "create-index-nonconcurrently"],
        None,
    );
    assert_eq!(typo.code, 2);
    assert_eq!(typo.stdout, "");
    assert_eq!(
        typo.stderr,
        "error: unknown rule `create-index-nonconcurrently`; did you mean \
         `create-index-non-concurrently`? (`ratchet explain --list` lists every rule)\n"
    );
    // docs/commands.md shows the same error.
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/commands.md"),
    )
    .expect("docs/commands.md");
    let shown = ratchet(dir.path(), &["explain", "create-index-nonconcurent"], None);
    assert!(
        doc.contains(shown.stderr.trim_end()),
        "docs/commands.md is out of date: {}",
        shown.stderr
    );
    let lint = ratchet(
        dir.path(),
        &["lint", "--disable", "create-index-nonconcurrently", "-"],
        Some(GOOD),
    );
    assert_eq!(lint.code, 2);
    assert!(
        lint.stderr
            .contains("did you mean `create-index-non-concurrently`?"),
        "{}",
        lint.stderr
    );
}

/// The example of docs/convert.md, end to end: the YAML and the notes it shows are what the
/// command prints, the YAML loads as a migration, and a file that does not parse changes
/// nothing and exits 2.
#[test]
fn convert_prints_the_documented_example() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/convert.md"),
    )
    .expect("docs/convert.md");
    // The fenced block whose opening fence ends `marker`, from the line after the fence
    // (`marker` may run on into the block's first lines, which are kept).
    let block = |marker: &str| -> String {
        let at = doc.find(marker).expect("marker");
        let fence = at + doc[at..].find("```").expect("fence");
        let rest = &doc[fence..];
        let body = &rest[rest.find('\n').expect("line") + 1..];
        body[..body.find("```").expect("closing fence")].to_string()
    };
    let sql = block("```sql\nCREATE TABLE events");
    let yaml = block("```yaml\noperations:\n- create_table:\n    name: events");
    let notes = block("with these notes on stderr:\n\n```");
    let dir = project(&[("m.sql", &sql), ("bad.sql", "ALTER TABLE t ADD COLUMN;\n")]);
    let run = ratchet(dir.path(), &["convert", "m.sql"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, yaml, "docs/convert.md's YAML is stale");
    assert_eq!(run.stderr, notes, "docs/convert.md's notes are stale");
    // The output is a migration ratchet loads.
    let run = ratchet(dir.path(), &["convert", "m.sql", "-o", "m.yaml"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let m = ratchet_spec::load_file(&dir.path().join("m.yaml")).expect("converted file loads");
    assert_eq!(m.operations.len(), 4);
    // A file that does not parse: exit 2, the location, no output file.
    let run = ratchet(dir.path(), &["convert", "bad.sql", "-o", "bad.yaml"], None);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("bad.sql:1:"), "{}", run.stderr);
    assert!(!dir.path().join("bad.yaml").exists());
}

// Issue #10: one missing path among several is an error for that path, in every format;
// the other paths are linted and the run exits 2 at the end.
#[test]
fn a_missing_path_is_reported_and_the_others_linted() {
    let dir = project(&[("a.sql", BAD), ("b.sql", GOOD)]);
    for format in ["text", "json", "json-lines", "sarif", "github"] {
        let run = ratchet(
            dir.path(),
            &["lint", "--format", format, "a.sql", "missing.sql", "b.sql"],
            None,
        );
        assert_eq!(run.code, 2, "{format}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("missing.sql"),
            "{format}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains("create-index-non-concurrently") || run.stdout.contains("\"A18\""),
            "{format}: a.sql was not linted: {}",
            run.stdout
        );
    }
    let run = ratchet(
        dir.path(),
        &["lint", "--format", "json", "a.sql", "missing.sql"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(v["errors"][0]["file"], "missing.sql");
    assert!(v["errors"][0]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("cannot read missing.sql")));
    assert_eq!(v["findings"][0]["file"], "a.sql");
    let run = ratchet(dir.path(), &["lint", "a.sql", "missing.sql"], None);
    assert!(
        run.stdout.contains("; 1 problem could not be checked"),
        "{}",
        run.stdout
    );
}
