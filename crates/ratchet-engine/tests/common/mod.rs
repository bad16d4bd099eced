//! Shared helpers of the engine's integration tests: a fresh database per test and
//! migration files written to a temp dir.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ratchet_engine::{Config, Engine, Silent};
use ratchet_scratch::testing::TestDb;
use ratchet_spec::Migration;

pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, yaml).unwrap();
        p
    }

    pub fn migration(&self, name: &str, yaml: &str) -> Migration {
        let p = self.write(name, yaml);
        ratchet_spec::load_file(&p).unwrap()
    }
}

pub fn config() -> Config {
    Config {
        lock_timeout: Duration::from_millis(200),
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        ..Config::default()
    }
}

pub async fn engine(db: &TestDb) -> Engine {
    Engine::connect(&db.url, config(), Arc::new(Silent))
        .await
        .unwrap()
}

/// Column names of `schema.rel` in order.
pub async fn columns(c: &tokio_postgres::Client, schema: &str, rel: &str) -> Vec<String> {
    c.query(
        "SELECT a.attname::text FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = r.relnamespace
          WHERE n.nspname = $1 AND r.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum",
        &[&schema, &rel],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

pub async fn schema_exists(c: &tokio_postgres::Client, schema: &str) -> bool {
    c.query_one(
        "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
        &[&schema],
    )
    .await
    .unwrap()
    .get::<_, i64>(0)
        == 1
}

pub const USERS: &str = r#"
operations:
  - create_table:
      name: users
      columns:
        - name: id
          type: bigint
          pk: true
          generated:
            identity:
              user_specified_values: BY DEFAULT
        - name: name
          type: text
        - name: email
          type: text
          nullable: true
"#;

pub const RENAME: &str = r#"
operations:
  - rename_column:
      table: users
      from: name
      to: full_name
  - add_column:
      table: users
      column:
        name: active
        type: boolean
        default: "true"
  - create_index:
      name: users_email_idx
      table: users
      columns:
        - column: email
  - drop_column:
      table: users
      column: email
"#;

/// Create `users` through migration 01 and fill it.
pub async fn setup_users(db: &TestDb, files: &Files, rows: i64) -> Engine {
    let mut e = engine(db).await;
    let m = files.migration("01_users.yaml", USERS);
    e.start(&m).await.unwrap();
    e.complete().await.unwrap();
    let c = db.client().await;
    c.execute(
        "INSERT INTO public.users (name, email) SELECT 'u' || g, 'u' || g || '@x' FROM generate_series(1, $1::bigint) g",
        &[&rows],
    )
    .await
    .unwrap();
    e
}

/// `complete` the way a team runs it: the migration's read flags switched on first (the
/// gate of `complete`; `tests/flags.rs` tests the gates themselves). `--force` on the flag
/// so that a test of the validation gate still meets that gate at `complete`.
pub async fn complete(
    e: &mut Engine,
) -> Result<Option<ratchet_engine::StartOutcome>, ratchet_engine::EngineError> {
    for f in e.flags().await? {
        if f.gates_complete && f.setting != ratchet_engine::state::FlagSetting::On {
            let active = e.status().await?.active.map(|a| a.name);
            if f.migration == active {
                e.set_flag(&f.name, ratchet_engine::state::FlagSetting::On, true)
                    .await?;
            }
        }
    }
    e.complete().await
}

/// `server_version_num` of the server `c` is connected to, e.g. 180004.
pub async fn server_version(c: &tokio_postgres::Client) -> i32 {
    c.query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0)
}
