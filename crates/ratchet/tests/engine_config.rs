//! The `[engine]` table of `ratchet.toml` end to end against real PostgreSQL: its values
//! reach the engine, a flag overrides them, a bad table is an error naming file, line and
//! key before anything touches the database, and no ratchet.toml is fine.

use std::path::Path;
use std::process::{Command, Output};

use ratchet_scratch::testing::TestDb;

/// `ratchet` run in `dir` (where it looks for ratchet.toml) with no engine flag but
/// those in `args`.
fn ratchet_in(dir: &Path, db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .current_dir(dir)
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("RATCHET_FAULT_KILL")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

async fn scalar(db: &TestDb, sql: &str) -> String {
    let c = db.client().await;
    c.query_one(&format!("SELECT ({sql})::text"), &[])
        .await
        .unwrap()
        .get(0)
}

/// A migration whose raw `sql` step records the `lock_timeout` it runs under.
fn lock_timeout_probe(dir: &Path, name: &str) -> String {
    write(
        dir,
        &format!("{name}.yaml"),
        &format!(
            "operations:\n  - sql:\n      up: CREATE TABLE public.{name} AS SELECT current_setting('lock_timeout') AS v\n      down: DROP TABLE public.{name}\n"
        ),
    )
}

/// The batch size of the active migration's first backfill, from `status --format json`.
fn batch_size(dir: &Path, db: &TestDb) -> i64 {
    let o = ok(ratchet_in(dir, db, &["status", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["active"]["backfills"][0]["batch_size"]
        .as_i64()
        .unwrap_or_else(|| panic!("no backfill in {v}"))
}

#[tokio::test]
async fn engine_table_values_are_used_and_flags_override_them() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "ratchet.toml",
        "[lint]\nfail_on = \"error\"\n\n[engine]\nstate_schema = \"ratchet_cfg\"\nlock_timeout = \"137ms\"\nbatch_min = 1\nbatch_max = 7\n",
    );
    let o = ok(ratchet_in(d, &db, &["init"]));
    assert!(
        text(&o).contains("state schema `ratchet_cfg` is ready"),
        "{}",
        text(&o)
    );

    // lock_timeout from the file, then from the flag.
    let probe = lock_timeout_probe(d, "seen_file");
    ok(ratchet_in(d, &db, &["start", &probe, "--complete"]));
    assert_eq!(scalar(&db, "SELECT v FROM public.seen_file").await, "137ms");
    let probe = lock_timeout_probe(d, "seen_flag");
    ok(ratchet_in(
        d,
        &db,
        &["start", &probe, "--complete", "--lock-timeout", "300ms"],
    ));
    assert_eq!(scalar(&db, "SELECT v FROM public.seen_flag").await, "300ms");
    // Every command used the state schema of the file.
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM ratchet_cfg.migrations").await,
        "2"
    );

    // batch_max from the file caps the backfill's batches; the flag overrides it.
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE public.items (id bigint PRIMARY KEY, amount int NOT NULL);
         INSERT INTO public.items SELECT g, g FROM generate_series(1, 200) g",
    )
    .await
    .unwrap();
    let add = write(
        d,
        "03_doubled.yaml",
        "operations:\n  - add_column:\n      table: items\n      up: amount * 2\n      column:\n        name: doubled\n        type: int\n        nullable: true\n",
    );
    ok(ratchet_in(d, &db, &["start", &add]));
    let size = batch_size(d, &db);
    assert!((1..=7).contains(&size), "batch size {size}");
    ok(ratchet_in(d, &db, &["abort"]));
    ok(ratchet_in(d, &db, &["start", &add, "--no-backfill"]));
    ok(ratchet_in(d, &db, &["backfill", "--batch-max", "3"]));
    let size = batch_size(d, &db);
    assert!((1..=3).contains(&size), "batch size {size}");
    let o = ok(ratchet_in(d, &db, &["status", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["active"]["backfills"][0]["rows_done"], 200, "{v}");
    assert_eq!(v["active"]["backfills"][0]["done"], true, "{v}");
}

#[tokio::test]
async fn ratchet_config_shows_each_value_and_where_it_comes_from() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No ratchet.toml: the defaults of ratchet_engine::Config.
    let o = ok(ratchet_in(d, &db, &["config", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["config_file"], serde_json::Value::Null);
    assert_eq!(v["engine"]["lock_timeout"]["value"], "500ms");
    assert_eq!(v["engine"]["lock_timeout"]["source"], "default");
    assert_eq!(v["engine"]["batch_max"]["value"], 100000);

    write(
        d,
        "ratchet.toml",
        "[engine]\nlock_timeout = \"2s\"\nmax_attempts = 5\nbatch_min = 0\n",
    );
    let o = ok(ratchet_in(d, &db, &["config", "--max-attempts", "9"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("config file: ratchet.toml"), "{out}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert_eq!(
        line("lock_timeout"),
        "lock_timeout 2s [engine] in ratchet.toml"
    );
    assert_eq!(line("max_attempts"), "max_attempts 9 --max-attempts");
    assert_eq!(line("wait"), "wait 10s default");
    // The engine's rule raised batch_min to 1, and the CLI said so.
    assert_eq!(line("batch_min"), "batch_min 1 [engine] in ratchet.toml");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: batch_min is below 1 row (0); the backfill uses 1"),
        "{err}"
    );
    // --config names another file, which need not be called ratchet.toml.
    let other = write(d, "prod.toml", "[engine]\nwait = \"1m\"\n");
    let o = ok(ratchet_in(
        d,
        &db,
        &["--config", &other, "config", "--format", "json"],
    ));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["config_file"], other.as_str());
    assert_eq!(v["engine"]["wait"]["value"], "1m");
    assert_eq!(v["engine"]["lock_timeout"]["source"], "default");
}

#[tokio::test]
async fn a_bad_engine_table_fails_every_engine_command_naming_file_line_and_key() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let probe = lock_timeout_probe(d, "never");
    let migrations = d.join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    let migrations = migrations.display().to_string();
    let cases = [
        (
            "[engine]\nlock_timeout = \"1s\"\nlock_timout = \"2s\"\n",
            "invalid config ratchet.toml:3: [engine] lock_timout = \"2s\": unknown key (did you mean `lock_timeout`?); [engine] accepts: schema, state_schema, lock_timeout,",
        ),
        (
            "[engine]\nbatch_max = \"lots\"\n",
            "invalid config ratchet.toml:2: [engine] batch_max = \"lots\": expected a whole number of rows, not \"lots\"",
        ),
        (
            "[engine]\nwait = 5\n",
            "invalid config ratchet.toml:2: [engine] wait = 5: expected a duration in quotes with a unit, like \"500ms\", \"2s\" or \"1m\", not the bare number 5 (\"5ms\" or \"5s\"?)",
        ),
        (
            "[engin]\nwait = \"5s\"\n",
            "invalid config ratchet.toml:1: unknown table `engin` (did you mean `[engine]`?)",
        ),
    ];
    let commands: [&[&str]; 11] = [
        &["init"],
        &["plan", &probe],
        &["start", &probe],
        &["complete"],
        &["backfill"],
        &["validate"],
        &["abort"],
        &["grants"],
        &["migrate", &migrations],
        &["status"],
        &["config"],
    ];
    for (toml, expected) in cases {
        write(d, "ratchet.toml", toml);
        for args in commands {
            let o = ratchet_in(d, &db, args);
            assert_eq!(o.status.code(), Some(2), "{args:?} {toml}: {}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.starts_with(&format!("error: {expected}")),
                "{args:?}: {err}"
            );
            assert!(o.stdout.is_empty(), "{args:?}: {}", text(&o));
        }
    }
    // Nothing reached the database.
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'ratchet'"
        )
        .await,
        "0"
    );
    // A --config that does not exist is an error too, not an empty config.
    let o = ratchet_in(d, &db, &["status", "--config", "missing.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("reading missing.toml"), "{}", text(&o));
}

#[tokio::test]
async fn without_ratchet_toml_the_engine_defaults_apply() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = ok(ratchet_in(d, &db, &["init"]));
    assert!(
        text(&o).contains("state schema `ratchet` is ready"),
        "{}",
        text(&o)
    );
    let probe = lock_timeout_probe(d, "seen_default");
    ok(ratchet_in(d, &db, &["start", &probe, "--complete"]));
    assert_eq!(
        scalar(&db, "SELECT v FROM public.seen_default").await,
        "500ms"
    );
}
