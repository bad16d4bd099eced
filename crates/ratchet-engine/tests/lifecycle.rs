//! start → complete / abort on real PostgreSQL: versioned views, idempotency, refusals.

mod common;

use common::*;
use ratchet_engine::EngineError;
use ratchet_scratch::testing::TestDb;

#[tokio::test]
async fn old_and_new_versions_both_work_until_complete() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 10).await;
    let m = files.migration("02_rename.yaml", RENAME);
    let out = e.start(&m).await.unwrap();
    assert_eq!(out.version_schema, "public_02_rename");
    let c = db.client().await;
    // Old version: the previous version schema, unchanged.
    assert_eq!(
        columns(&c, "public_01_users", "users").await,
        ["id", "name", "email"]
    );
    // New version: renamed, added, dropped.
    assert_eq!(
        columns(&c, "public_02_rename", "users").await,
        ["id", "full_name", "active"]
    );
    // Writes through both versions.
    c.batch_execute("INSERT INTO public_01_users.users (name, email) VALUES ('old', 'o@x')")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO public_02_rename.users (full_name) VALUES ('new')")
        .await
        .unwrap();
    let active: bool = c
        .query_one(
            "SELECT active FROM public_02_rename.users WHERE full_name = 'old'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(active, "the column default applies to old-version inserts");
    common::complete(&mut e).await.unwrap();
    assert!(!schema_exists(&c, "public_01_users").await);
    assert_eq!(
        columns(&c, "public", "users").await,
        ["id", "full_name", "active"]
    );
    assert_eq!(
        columns(&c, "public_02_rename", "users").await,
        ["id", "full_name", "active"]
    );
    let n: i64 = c
        .query_one("SELECT count(*) FROM public_02_rename.users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 12);
}

#[tokio::test]
async fn every_command_twice_changes_nothing_the_second_time() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 5).await;
    let m = files.migration("02_rename.yaml", RENAME);
    e.start(&m).await.unwrap();
    let again = e.start(&m).await.unwrap();
    assert!(again.resumed);
    common::complete(&mut e).await.unwrap();
    assert!(common::complete(&mut e).await.unwrap().is_none());
    let third = e.start(&m).await.unwrap();
    assert!(third.already_completed);
    assert!(e.abort().await.unwrap().is_none());
    let st = e.status().await.unwrap();
    assert_eq!(st.history.len(), 2);
    assert!(st.history.iter().all(|h| h.done));
}

#[tokio::test]
async fn abort_drops_what_start_added_and_keeps_old_data() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 20).await;
    let m = files.migration("02_rename.yaml", RENAME);
    e.start(&m).await.unwrap();
    assert_eq!(e.abort().await.unwrap().as_deref(), Some("02_rename"));
    let c = db.client().await;
    assert!(!schema_exists(&c, "public_02_rename").await);
    assert!(schema_exists(&c, "public_01_users").await);
    assert_eq!(
        columns(&c, "public", "users").await,
        ["id", "name", "email"]
    );
    let idx: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'users_email_idx'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(idx, 0);
    let n: i64 = c
        .query_one("SELECT count(*) FROM public.users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 20);
    // The same file can be started again after an abort.
    e.start(&m).await.unwrap();
    common::complete(&mut e).await.unwrap();
}

#[tokio::test]
async fn semantic_errors_fail_before_anything_changes() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 1).await;
    let cases = [
        ("missing table", "operations:\n  - drop_table:\n      name: userz\n", "did you mean `users`?"),
        (
            "missing column",
            "operations:\n  - rename_column:\n      table: users\n      from: nmae\n      to: x\n",
            "column `nmae` does not exist",
        ),
        (
            "duplicate table",
            "operations:\n  - create_table:\n      name: users\n      columns:\n        - name: id\n          type: int\n",
            "already exists",
        ),
        (
            "index on a missing column",
            "operations:\n  - create_index:\n      name: i\n      table: users\n      columns:\n        - column: nope\n",
            "column `nope` does not exist",
        ),
        (
            "second op fails after a valid first",
            "operations:\n  - create_table:\n      name: t2\n      columns:\n        - name: id\n          type: int\n  - drop_table:\n      name: nope\n",
            "table `nope` does not exist",
        ),
        (
            "bad expression",
            "operations:\n  - add_column:\n      table: users\n      column:\n        name: n\n        type: int\n        default: \"1); DROP TABLE users; --\"\n",
            "not a valid SQL expression",
        ),
    ];
    let c = db.client().await;
    for (what, yaml, expected) in cases {
        let m = files.migration("02_bad.yaml", yaml);
        let err = e.start(&m).await.expect_err(what);
        let text = err.to_string();
        assert!(text.contains(expected), "{what}: {text}");
        assert!(
            text.contains("02_bad.yaml:"),
            "{what}: error names the file: {text}"
        );
        assert!(
            matches!(err, EngineError::Invalid { .. }),
            "{what}: {err:?}"
        );
        assert!(
            e.status().await.unwrap().active.is_none(),
            "{what}: nothing recorded"
        );
        assert!(!schema_exists(&c, "public_02_bad").await, "{what}");
        let t2: i64 = c
            .query_one("SELECT count(*) FROM pg_class WHERE relname = 't2'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(t2, 0, "{what}: nothing created");
    }
}

#[tokio::test]
async fn a_changed_file_is_refused() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 1).await;
    // A comment changes no operation: the normalized checksum is the same (issue 9).
    let m = files.migration("01_users.yaml", &format!("{USERS}\n# edited\n"));
    assert!(e.start(&m).await.unwrap().already_completed);
    let m = files.migration("01_users.yaml", &USERS.replacen("bigint", "int", 1));
    let err = e.start(&m).await.unwrap_err();
    assert!(err.to_string().contains("the operations changed"), "{err}");
    assert!(err.is_refusal());
}

#[tokio::test]
async fn a_second_runner_is_refused_cleanly() {
    let db = TestDb::new().await;
    let _first = engine(&db).await;
    let mut no_wait = config();
    no_wait.lock_wait = std::time::Duration::ZERO;
    let err = match ratchet_engine::Engine::connect(
        &db.url,
        no_wait,
        std::sync::Arc::new(ratchet_engine::Silent),
    )
    .await
    {
        Ok(_) => panic!("a second runner must not get the migration lock"),
        Err(e) => e,
    };
    assert!(matches!(err, EngineError::Busy(_)), "{err:?}");
    // With a wait, it gets the lock once the first is gone.
    drop(_first);
    let mut cfg = config();
    cfg.lock_wait = std::time::Duration::from_secs(5);
    ratchet_engine::Engine::connect(&db.url, cfg, std::sync::Arc::new(ratchet_engine::Silent))
        .await
        .unwrap();
}

#[tokio::test]
async fn views_keep_defaults_and_are_security_invoker() {
    let db = TestDb::new().await;
    let files = Files::new();
    let _e = setup_users(&db, &files, 0).await;
    let c = db.client().await;
    let opts: Option<Vec<String>> = c
        .query_one(
            "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public_01_users' AND c.relname = 'users'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // PostgreSQL 14 has no security_invoker views (a table with row-level security is
    // refused there instead: see the next test).
    if server_version(&c).await >= 150000 {
        assert_eq!(opts.unwrap(), ["security_invoker=true"]);
    } else {
        assert_eq!(opts, None);
    }
    let id: i64 = c
        .query_one(
            "INSERT INTO public_01_users.users (name) VALUES ('x') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(id > 0);
}

#[tokio::test]
async fn a_failed_concurrent_index_build_is_cleaned_up_and_retried() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 50).await;
    let c = db.client().await;
    c.batch_execute("INSERT INTO public.users (name) VALUES ('u1')")
        .await
        .unwrap();
    let m = files.migration(
        "02_idx.yaml",
        "operations:\n  - create_index:\n      name: users_name_idx\n      table: users\n      unique: true\n      columns:\n        - column: name\n",
    );
    // Duplicates: the concurrent build fails and leaves an INVALID index behind.
    let err = e.start(&m).await.unwrap_err();
    assert!(
        err.to_string().contains("could not create unique index"),
        "{err}"
    );
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.users_name_idx'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!valid);
    // Fix the data, run the same command again: the leftover is dropped and rebuilt.
    c.batch_execute("DELETE FROM public.users WHERE id = (SELECT max(id) FROM public.users)")
        .await
        .unwrap();
    let out = e.start(&m).await.unwrap();
    assert!(out.resumed);
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.users_name_idx'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
    common::complete(&mut e).await.unwrap();
}

#[tokio::test]
async fn raw_sql_is_reflected_in_the_views_and_down_runs_on_abort() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 3).await;
    let c = db.client().await;
    let m = files.migration(
        "02_sql.yaml",
        "operations:\n  - sql:\n      up: CREATE TABLE notes (id int PRIMARY KEY, body text); CREATE INDEX CONCURRENTLY notes_body ON notes (body)\n      down: DROP TABLE IF EXISTS notes\n",
    );
    e.start(&m).await.unwrap();
    assert_eq!(columns(&c, "public_02_sql", "notes").await, ["id", "body"]);
    e.abort().await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM pg_class WHERE relname = 'notes'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "`down` ran on abort");
    let on_complete = files.migration(
        "03_later.yaml",
        "operations:\n  - sql:\n      up: ALTER TABLE users ADD COLUMN birth_date timestamptz\n      onComplete: true\n",
    );
    e.start(&on_complete).await.unwrap();
    assert!(!columns(&c, "public", "users")
        .await
        .contains(&"birth_date".to_string()));
    // Regression: complete dropped and re-created the live version's view with the new
    // column: its grants were lost and prepared statements failed ("cached plan must not
    // change result type"). The live version keeps its identity and its shape; the
    // column is in the table, and the next version shows it.
    c.batch_execute("CREATE ROLE ratchet_lc_reader").await.ok();
    c.batch_execute("GRANT SELECT ON public_03_later.users TO ratchet_lc_reader")
        .await
        .unwrap();
    let oid_sql = "SELECT 'public_03_later.users'::regclass::oid";
    let before: u32 = c.query_one(oid_sql, &[]).await.unwrap().get(0);
    common::complete(&mut e).await.unwrap();
    let after: u32 = c.query_one(oid_sql, &[]).await.unwrap().get(0);
    assert_eq!(after, before, "the live view kept its OID");
    assert_eq!(
        columns(&c, "public_03_later", "users").await,
        ["id", "name", "email"]
    );
    assert!(columns(&c, "public", "users")
        .await
        .contains(&"birth_date".to_string()));
    let granted: bool = c
        .query_one(
            "SELECT has_table_privilege('ratchet_lc_reader', 'public_03_later.users', 'SELECT')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(granted, "the live view kept its grants");
}

#[tokio::test]
async fn json_and_toml_files_run_like_yaml() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = engine(&db).await;
    let json = files.write(
        "01_t.json",
        r#"{"operations": [{"create_table": {"name": "t", "columns": [{"name": "id", "type": "int", "pk": true}]}}]}"#,
    );
    let toml = files.write(
        "02_u.toml",
        "version_schema = \"v2\"\n\n[[operations]]\n[operations.rename_table]\nfrom = \"t\"\nto = \"u\"\n",
    );
    for p in [json, toml] {
        let m = ratchet_spec::load_file(&p).unwrap();
        e.start(&m).await.unwrap();
        common::complete(&mut e).await.unwrap();
    }
    let c = db.client().await;
    assert_eq!(columns(&c, "public", "u").await, ["id"]);
    assert_eq!(columns(&c, "public_v2", "u").await, ["id"]);
    let st = e.status().await.unwrap();
    assert_eq!(st.version_schema.as_deref(), Some("public_v2"));
}

#[tokio::test]
async fn plan_reads_the_catalog_only() {
    let db = TestDb::new().await;
    let files = Files::new();
    let e = setup_users(&db, &files, 1).await;
    let m = files.migration("02_rename.yaml", RENAME);
    let plan = e.plan(&m).await.unwrap();
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["version_schema"], "public_02_rename");
    assert_eq!(json["previous_version_schema"], "public_01_users");
    let c = db.client().await;
    assert!(!schema_exists(&c, "public_02_rename").await);
    assert!(e.status().await.unwrap().active.is_none());
    assert_eq!(
        columns(&c, "public", "users").await,
        ["id", "name", "email"]
    );
}

#[tokio::test]
async fn enum_types_are_created_extended_and_used_in_columns() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 3).await;
    let m = files.migration(
        "02_mood.yaml",
        r#"
operations:
  - sql:
      up: CREATE TYPE mood AS ENUM ('ok', 'sad')
  - sql:
      up: ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok'
  - add_column:
      table: users
      column:
        name: mood
        type: mood
        default: "'ok'"
"#,
    );
    e.start(&m).await.unwrap();
    let c = db.client().await;
    c.batch_execute("UPDATE public_02_mood.users SET mood = 'meh' WHERE id = 1")
        .await
        .unwrap();
    common::complete(&mut e).await.unwrap();
    let moods: Vec<String> = c
        .query(
            "SELECT mood::text FROM public_02_mood.users ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(moods, ["meh", "ok", "ok"]);
    let order: Vec<String> = c
        .query("SELECT unnest(enum_range(NULL::mood))::text", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(order, ["ok", "meh", "sad"]);
}

#[tokio::test]
async fn abort_puts_the_replica_identity_back() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 5).await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE UNIQUE INDEX users_id_ri ON public.users (id);
         ALTER TABLE public.users REPLICA IDENTITY USING INDEX users_id_ri",
    )
    .await
    .unwrap();
    let identity = || async {
        c.query_one(
            "SELECT c.relreplident::text || coalesce((SELECT ':' || ic.relname FROM pg_index i
                         JOIN pg_class ic ON ic.oid = i.indexrelid
                        WHERE i.indrelid = c.oid AND i.indisreplident), '')
                   FROM pg_class c WHERE c.oid = 'public.users'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0)
    };
    assert_eq!(identity().await, "i:users_id_ri");
    let m = files.migration(
        "02_full.yaml",
        "operations:\n  - set_replica_identity:\n      table: users\n      identity:\n        type: full\n",
    );
    e.start(&m).await.unwrap();
    assert_eq!(identity().await, "f");
    e.abort().await.unwrap();
    assert_eq!(identity().await, "i:users_id_ri");
}

// Row-level security through the version schemas: on PostgreSQL 15+ the views are
// security_invoker, so an application role sees only the rows its policy gives it, through
// the old and the new version alike; on PostgreSQL 14 (no security_invoker) start is
// refused, naming the table, and nothing is created.
#[tokio::test]
async fn row_level_security_applies_through_the_views_or_is_refused_on_14() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 0).await;
    let c = db.client().await;
    let app = format!("app_{}", std::process::id());
    c.batch_execute(&format!(
        "INSERT INTO users (name, email) VALUES ('mine', 'a@x'), ('theirs', 'b@x');
         DO $$ BEGIN CREATE ROLE {app} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         GRANT USAGE ON SCHEMA public, public_01_users TO {app};
         GRANT SELECT, INSERT, UPDATE ON users TO {app};
         GRANT SELECT, INSERT, UPDATE ON public_01_users.users TO {app};
         ALTER TABLE users ENABLE ROW LEVEL SECURITY;
         CREATE POLICY only_mine ON users TO {app} USING (name = 'mine');"
    ))
    .await
    .unwrap();
    let m = files.migration("02_rename.yaml", RENAME);
    let result = e.start(&m).await;
    if server_version(&c).await < 150000 {
        let err = result.unwrap_err();
        assert!(
            matches!(
                &err,
                EngineError::Refused {
                    kind: ratchet_engine::error::Refusal::Capability,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("`users`") && msg.contains("row-level security"),
            "{msg}"
        );
        assert!(msg.contains("PostgreSQL 15"), "{msg}");
        assert!(!schema_exists(&c, "public_02_rename").await);
        return;
    }
    let out = result.unwrap();
    for schema in ["public_01_users", out.version_schema.as_str()] {
        c.batch_execute(&format!(
            "GRANT USAGE ON SCHEMA {schema} TO {app}; GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {app}"
        ))
        .await
        .unwrap();
        let rows = c
            .simple_query(&format!(
                "BEGIN; SET LOCAL ROLE {app}; SELECT count(*) FROM {schema}.users; COMMIT;"
            ))
            .await
            .unwrap();
        let seen: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect();
        assert_eq!(seen, ["1"], "the policy applies through {schema}");
    }
}

// Every DDL transaction runs with ratchet's lock_timeout; on PostgreSQL 17+ also with a
// transaction_timeout (no step holds a lock it got for long), absent before 17 where the
// setting does not exist.
#[tokio::test]
async fn ddl_transactions_carry_lock_timeout_and_on_17_transaction_timeout() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 0).await;
    let m = files.migration(
        "02_seen.yaml",
        r#"operations:
  - sql:
      up: >-
        CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lt,
          CASE WHEN current_setting('server_version_num')::int >= 170000
               THEN current_setting('transaction_timeout') END AS tt
      down: DROP TABLE seen
"#,
    );
    e.start(&m).await.unwrap();
    let c = db.client().await;
    let row = c.query_one("SELECT lt, tt FROM seen", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "200ms");
    let tt: Option<String> = row.get(1);
    if server_version(&c).await >= 170000 {
        // ratchet_engine::executor::ddl_transaction_timeout: 20 lock timeouts, at least 10 s.
        assert_eq!(tt.as_deref(), Some("10s"));
    } else {
        assert_eq!(tt, None);
    }
    // Outside ratchet's transactions the session's own settings are untouched.
    let own: String = c
        .query_one("SELECT current_setting('lock_timeout')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(own, "0");
}

/// The NOT NULL route of the server's version: on PostgreSQL 18 a not-null constraint
/// added NOT VALID and validated at complete, named as PostgreSQL names one; before 18 a
/// CHECK stand-in, then SET NOT NULL and the check dropped. Either way a NULL written
/// through the new version during the expand is refused, and the column of a
/// duplicated NOT NULL column keeps its constraint's name.
#[tokio::test]
async fn not_null_takes_the_route_of_the_server_version() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 200).await;
    let c = db.client().await;
    let v = server_version(&c).await;
    c.batch_execute("UPDATE users SET email = NULL WHERE id % 10 = 0")
        .await
        .unwrap();
    let m = files.migration(
        "02_required.yaml",
        "operations:\n  - alter_column:\n      table: users\n      column: email\n      nullable: false\n      up: coalesce(email, name || '@unknown')\n      down: email\n  - alter_column:\n      table: users\n      column: name\n      type: varchar(100)\n      up: name\n      down: name\n",
    );
    let plan = e.plan(&m).await.unwrap();
    let native = v >= 180000;
    assert!(
        plan.routes.iter().any(|r| r.contains(if native {
            "NOT VALID not-null constraint"
        } else {
            "CHECK (… IS NOT NULL) NOT VALID"
        })),
        "{:?}",
        plan.routes
    );
    e.start(&m).await.unwrap();
    // (name, kind, validated) of the check and not-null constraints.
    let kinds = |rows: Vec<tokio_postgres::Row>| -> Vec<(String, String, bool)> {
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    };
    let q = "SELECT conname::text, contype::text, convalidated FROM pg_constraint
              WHERE conrelid = 'public.users'::regclass AND contype IN ('c', 'n')
              ORDER BY conname";
    let during = kinds(c.query(q, &[]).await.unwrap());
    let temp: Vec<&(String, String, bool)> = during
        .iter()
        .filter(|(n, _, _)| n.starts_with("_ratchet_"))
        .collect();
    assert_eq!(temp.len(), 2, "{during:?}");
    for (name, kind, validated) in &temp {
        assert_eq!(kind, if native { "n" } else { "c" }, "{name}");
        assert!(!validated, "{name} is NOT VALID until complete");
    }
    // A NULL through the new version is refused at once.
    let err = c
        .execute(
            "INSERT INTO public_02_required.users (name, email) VALUES ('n', NULL)",
            &[],
        )
        .await
        .unwrap_err();
    let want = if native {
        tokio_postgres::error::SqlState::NOT_NULL_VIOLATION
    } else {
        tokio_postgres::error::SqlState::CHECK_VIOLATION
    };
    assert_eq!(err.code(), Some(&want), "{err}");
    assert!(e.validate(false).await.unwrap().unwrap().passed);
    common::complete(&mut e).await.unwrap();
    let after = kinds(c.query(q, &[]).await.unwrap());
    if native {
        assert_eq!(
            after,
            [
                ("users_email_not_null".to_string(), "n".to_string(), true),
                ("users_id_not_null".to_string(), "n".to_string(), true),
                ("users_name_not_null".to_string(), "n".to_string(), true),
            ],
            "the duplicate of `name` keeps the original's constraint name"
        );
    } else {
        assert!(after.is_empty(), "no check left: {after:?}");
    }
    let not_null: Vec<bool> = c
        .query(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.users'::regclass
              AND attname IN ('email', 'name') ORDER BY attname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(not_null, [true, true]);
    let unknown: i64 = c
        .query_one(
            "SELECT count(*) FROM users WHERE email LIKE '%@unknown'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unknown, 20);
}

/// `generated: {expression, virtual: true}`: on PostgreSQL 18 a virtual generated column
/// is added in one short transaction with no backfill (computed when read, through the new
/// version only); before 18 it is refused at plan time, before anything is recorded.
#[tokio::test]
async fn a_virtual_generated_column_needs_no_backfill_on_postgresql_18() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 100).await;
    let c = db.client().await;
    let v = server_version(&c).await;
    let m = files.migration(
        "02_lower.yaml",
        "operations:\n  - add_column:\n      table: users\n      column:\n        name: name_lower\n        type: text\n        nullable: true\n        generated:\n          expression: lower(name)\n          virtual: true\n",
    );
    if v < 180000 {
        let err = e.start(&m).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("virtual generated columns need PostgreSQL 18"),
            "{msg}"
        );
        assert!(
            e.status().await.unwrap().active.is_none(),
            "nothing recorded"
        );
        return;
    }
    let plan = e.plan(&m).await.unwrap();
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s.action, ratchet_engine::plan::Action::Backfill(_))),
        "no backfill"
    );
    assert!(
        plan.routes.iter().any(|r| r.contains("is VIRTUAL")),
        "{:?}",
        plan.routes
    );
    e.start(&m).await.unwrap();
    // Through the old version: no such column; writes go on.
    c.batch_execute("INSERT INTO public_01_users.users (name, email) VALUES ('OLD', 'o@x')")
        .await
        .unwrap();
    c.batch_execute(
        "INSERT INTO public_02_lower.users (name, email) VALUES ('NeW', 'n@x');
         UPDATE public_02_lower.users SET name = 'Mixed' WHERE id = 1;",
    )
    .await
    .unwrap();
    let err = c
        .batch_execute("UPDATE public_02_lower.users SET name_lower = 'x' WHERE id = 2")
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("generated"), "{err:?}");
    let rows: Vec<(String, String)> = c
        .query(
            "SELECT name, name_lower FROM public_02_lower.users WHERE id = 1 OR name IN ('OLD', 'NeW') ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [
            ("Mixed".to_string(), "mixed".to_string()),
            ("OLD".to_string(), "old".to_string()),
            ("NeW".to_string(), "new".to_string()),
        ]
    );
    common::complete(&mut e).await.unwrap();
    let kind: String = c
        .query_one(
            "SELECT attgenerated::text FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'name_lower'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind, "v");
}

/// PostgreSQL 18 lists NOT NULL constraints by name: `drop_constraint` of one makes the
/// column nullable (through a duplicate, like any dropped constraint). Before 18 there is
/// no such constraint, and the error lists the ones there are.
#[tokio::test]
async fn a_named_not_null_constraint_is_dropped_like_any_constraint_on_postgresql_18() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup_users(&db, &files, 50).await;
    let c = db.client().await;
    let v = server_version(&c).await;
    let m = files.migration(
        "02_name_optional.yaml",
        "operations:\n  - drop_constraint:\n      table: users\n      name: users_name_not_null\n      up: name\n      down: coalesce(name, 'unknown')\n",
    );
    if v < 180000 {
        let err = e.start(&m).await.unwrap_err().to_string();
        assert!(
            err.contains("has no constraint `users_name_not_null`"),
            "{err}"
        );
        return;
    }
    let plan = e.plan(&m).await.unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("`up` and `down` are not used")),
        "{:?}",
        plan.warnings
    );
    e.start(&m).await.unwrap();
    c.batch_execute("INSERT INTO public_02_name_optional.users (name, email) VALUES (NULL, 'n@x')")
        .await
        .unwrap();
    // Dropped in place: the old version reads the same column.
    let old: Option<String> = c
        .query_one(
            "SELECT name FROM public_01_users.users WHERE email = 'n@x'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(old, None);
    common::complete(&mut e).await.unwrap();
    let not_null: bool = c
        .query_one(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'name'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!not_null);
}
