//! What an application role may do in the state schema: call `flag()`, `flag_setting()`
//! and `heartbeat()`, and nothing else.

use ratchet_client::Versioned;
use ratchet_scratch::testing::{connect, TestDb};
use ratchet_sql::sqlstate::INSUFFICIENT_PRIVILEGE;

use crate::common::*;

/// A DML-only role (no superuser; USAGE on the schemas, DML on the tables and views,
/// made in `common::roles`): it calls the three functions through the client and in SQL,
/// and every other access to the state schema is refused with permission denied
/// (42501): INSERT, UPDATE, DELETE, TRUNCATE and SELECT on each of its tables (flags,
/// events, clients, freezes, migrations and the rest), its sequences, creating,
/// replacing or dropping objects there, and calling the heartbeat's upsert under another
/// name.
#[tokio::test]
async fn a_dml_only_role_calls_the_three_functions_and_nothing_else_in_the_state_schema() {
    let db = TestDb::new().await;
    let roles = roles(&db).await;
    drop(setup(&roles, 10).await);
    let app = connect(&roles.app_url).await.unwrap();
    let attrs: (bool, bool) = app
        .query_one(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(attrs, (false, false));

    // Allowed: the three functions, in SQL and through the client.
    app.batch_execute(
        "SELECT ratchet.flag('checkout.new_flow', 'k');
         SELECT ratchet.flag('checkout.new_flow');
         SELECT * FROM ratchet.flag_setting('checkout.new_flow');
         SELECT ratchet.heartbeat('shop', 'i-1', 'public_01_setup');",
    )
    .await
    .unwrap();
    let v = Versioned::builder("shop")
        .version_schema("public_01_setup")
        .instance("i-2")
        .build()
        .unwrap();
    v.send_heartbeat(&app).await.unwrap();
    ratchet_client::read_setting(&app, "ratchet", "checkout.new_flow")
        .await
        .unwrap();
    // And its own tables, through its version.
    v.set_session(&app).await.unwrap();
    app.batch_execute("UPDATE payments SET amount_cents = amount_cents WHERE id = 1")
        .await
        .unwrap();

    // Refused: everything else. The tables and sequences as the catalog lists them.
    let owner = connect(&roles.owner_url).await.unwrap();
    // (name, kind, first column)
    let relations: Vec<(String, String, String)> = owner
        .query(
            "SELECT c.relname::text, c.relkind::text, coalesce(a.attname::text, '')
               FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1
              WHERE c.relnamespace = 'ratchet'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S')
              ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let tables: Vec<(&str, &str)> = relations
        .iter()
        .filter(|(_, k, _)| k != "S")
        .map(|(n, _, c)| (n.as_str(), c.as_str()))
        .collect();
    for t in ["flags", "events", "clients", "freezes", "migrations"] {
        assert!(tables.iter().any(|(n, _)| *n == t), "{t} in {tables:?}");
    }
    let mut statements = Vec::new();
    for (t, c) in &tables {
        statements.extend([
            format!("SELECT * FROM ratchet.{t}"),
            format!("INSERT INTO ratchet.{t} DEFAULT VALUES"),
            format!("UPDATE ratchet.{t} SET {c} = {c}"),
            format!("DELETE FROM ratchet.{t}"),
            format!("TRUNCATE ratchet.{t}"),
        ]);
    }
    // The writes an attacker would want, spelled out.
    statements.extend([
        "UPDATE ratchet.flags SET state = 'on' WHERE name = 'checkout.new_flow'".to_string(),
        "INSERT INTO ratchet.flags (name, schema, state) VALUES ('x', 'public', 'on')".into(),
        "INSERT INTO ratchet.events (schema, kind) VALUES ('public', 'flag')".into(),
        "DELETE FROM ratchet.clients WHERE app = 'shop'".into(),
        "UPDATE ratchet.clients SET last_seen = now() - interval '1 day'".into(),
        "INSERT INTO ratchet.freezes (schema, reason) VALUES ('public', 'x')".into(),
        "DELETE FROM ratchet.freezes".into(),
        "UPDATE ratchet.migrations SET phase = 'completed'".into(),
        "CREATE TABLE ratchet.mine (id int)".into(),
        "CREATE FUNCTION ratchet.mine() RETURNS int LANGUAGE sql AS 'SELECT 1'".into(),
        "CREATE OR REPLACE FUNCTION ratchet.flag(name text, key text DEFAULT NULL) RETURNS boolean LANGUAGE sql AS 'SELECT true'".into(),
        "DROP FUNCTION ratchet.heartbeat(text, text, text)".into(),
        "ALTER FUNCTION ratchet.flag_setting(text) SECURITY INVOKER".into(),
        "COMMENT ON FUNCTION ratchet.flag(text, text) IS 'x'".into(),
        "GRANT SELECT ON ratchet.flags TO PUBLIC".into(),
    ]);
    for (name, kind, _) in &relations {
        if kind == "S" {
            statements.push(format!("SELECT nextval('ratchet.{name}')"));
            statements.push(format!("SELECT setval('ratchet.{name}', 1)"));
        }
    }
    // Every function of the state schema but the three.
    let others: Vec<String> = owner
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p
              WHERE p.pronamespace = 'ratchet'::regnamespace
                AND p.proname NOT IN ('flag', 'flag_setting', 'heartbeat')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(others.is_empty(), "functions besides the three: {others:?}");
    // One created later by the migration role gets no EXECUTE for PUBLIC once the
    // functions are (re)installed.
    owner
        .batch_execute(
            "CREATE FUNCTION ratchet.helper() RETURNS int LANGUAGE sql AS 'SELECT 1';
             COMMENT ON FUNCTION ratchet.heartbeat(text, text, text) IS 'older';",
        )
        .await
        .unwrap();
    drop(engine(&roles.owner_url, config()).await);
    statements.push("SELECT ratchet.helper()".into());

    let mut allowed = Vec::new();
    for s in &statements {
        match app.batch_execute(s).await {
            Ok(()) => allowed.push(s.clone()),
            Err(e) => {
                let code = e.code().map(|c| c.code().to_string());
                if code.as_deref() != Some(INSUFFICIENT_PRIVILEGE) {
                    allowed.push(format!("{s}: {e:?}"));
                }
            }
        }
    }
    assert!(
        allowed.is_empty(),
        "not refused with permission denied ({} of {}): {allowed:#?}",
        allowed.len(),
        statements.len()
    );

    // The three still work after the reinstall, and the heartbeat wrote what it should.
    app.batch_execute(
        "SELECT ratchet.flag('checkout.new_flow', 'k');
         SELECT * FROM ratchet.flag_setting('checkout.new_flow');
         SELECT ratchet.heartbeat('shop', 'i-1', 'public_01_setup');",
    )
    .await
    .unwrap();
    let n: i64 = owner
        .query_one(
            "SELECT count(*) FROM ratchet.clients WHERE app = 'shop' AND role = $1",
            &[&roles.app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}
