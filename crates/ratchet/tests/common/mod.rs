//! Helpers shared by the CLI's integration tests: run the binary against a test
//! database and read what it printed.
#![allow(dead_code)]

use std::process::{Command, Output};

use ratchet_scratch::testing::TestDb;

/// `ratchet ARGS` against `db`, waited for.
pub fn ratchet(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("RATCHET_FAULT_KILL")
        .env_remove("RATCHET_ENV")
        .output()
        .unwrap()
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The stdout of a run that must succeed.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The stderr of a run that must exit with `code`.
pub fn fails(o: Output, code: i32) -> String {
    assert_eq!(o.status.code(), Some(code), "{}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}
