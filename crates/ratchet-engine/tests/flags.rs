//! Flags, gates and the fleet against real PostgreSQL: the read flag each backfilling
//! migration owns, the gates of raising it and of `complete` (flags, soak time, old
//! clients, a stale validation), `complete --force`, the freeze, and `ratchet.flag()`
//! itself (percentage rollouts, search_path games).

mod common;

use std::time::Duration;

use common::{engine, Files};
use ratchet_engine::error::{Gate, Refusal};
use ratchet_engine::lifecycle::CompleteOptions;
use ratchet_engine::state::FlagSetting;
use ratchet_engine::{Engine, EngineError};
use ratchet_scratch::testing::TestDb;

const PAYMENTS: &str = r#"
operations:
  - create_table:
      name: payments
      columns:
        - name: id
          type: bigint
          pk: true
        - name: status
          type: text
        - name: amount
          type: int
"#;

/// The seed's example: the payment status text becomes a smallint code.
const STATUS: &str = r#"
operations:
  - alter_column:
      table: payments
      column: status
      type: smallint
      up: "CASE status WHEN 'paid' THEN 1 WHEN 'failed' THEN 2 ELSE 0 END"
      down: "CASE status WHEN 1 THEN 'paid' WHEN 2 THEN 'failed' ELSE 'pending' END"
flags:
  - name: payments.new_badge
    description: show the new status badge
    gates_complete: false
"#;

const READ: &str = "02_status.read_new";

/// `payments` (01, completed, 300 rows), then 02 started: backfilled, not validated.
async fn setup(
    db: &TestDb,
    files: &Files,
    gates: impl FnOnce(&mut ratchet_engine::Config),
) -> Engine {
    let mut e = engine(db).await;
    e.start(&files.migration("01_payments.yaml", PAYMENTS))
        .await
        .unwrap();
    e.complete().await.unwrap();
    drop(e);
    db.client()
        .await
        .execute(
            "INSERT INTO payments SELECT g, (ARRAY['paid','failed','pending'])[1 + g % 3], g FROM generate_series(1, 300) g",
            &[],
        )
        .await
        .unwrap();
    let mut config = common::config();
    gates(&mut config);
    let mut e = Engine::connect(&db.url, config, std::sync::Arc::new(ratchet_engine::Silent))
        .await
        .unwrap();
    e.start(&files.migration("02_status.yaml", STATUS))
        .await
        .unwrap();
    e
}

fn gate_of(e: &EngineError) -> Option<Gate> {
    match e {
        EngineError::Refused {
            kind: Refusal::Gate(g),
            ..
        } => Some(*g),
        _ => None,
    }
}

#[tokio::test]
async fn the_read_flag_is_raised_only_after_validation_and_every_change_is_logged() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup(&db, &files, |_| {}).await;
    let flags = e.flags().await.unwrap();
    let names: Vec<&str> = flags.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, [READ, "payments.new_badge"]);
    assert!(flags.iter().all(|f| f.setting == FlagSetting::Off));
    assert!(flags[0].gates_complete && !flags[1].gates_complete);

    let err = e
        .set_flag(READ, FlagSetting::Percent(10), false)
        .await
        .unwrap_err();
    assert_eq!(gate_of(&err), Some(Gate::FlagBeforeValidation), "{err}");
    assert!(err.to_string().contains("ratchet validate"), "{err}");
    // Off to off, or lowering, is always fine.
    e.set_flag(READ, FlagSetting::Off, false).await.unwrap();

    let v = e.validate(false).await.unwrap().unwrap();
    assert!(v.passed);
    let out = e
        .set_flag(READ, FlagSetting::Percent(10), false)
        .await
        .unwrap();
    assert_eq!(
        (out.old, out.new, out.changed),
        (FlagSetting::Off, FlagSetting::Percent(10), true)
    );
    let f = e.flag(READ).await.unwrap().unwrap();
    assert_eq!(f.setting, FlagSetting::Percent(10));
    assert_eq!(f.set_by, "postgres");
    let history = e.flag_history(Some(READ)).await.unwrap();
    let kinds: Vec<&str> = history.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(kinds, ["flag_created", "flag"]);
    assert_eq!(history[1].detail["old"], "off");
    assert_eq!(history[1].detail["new"], "10%");
    assert_eq!(history[1].who, "postgres");
    assert_eq!(history[1].migration.as_deref(), Some("02_status"));

    // An unknown flag is a usage error naming the closest one.
    let err = e
        .set_flag("02_status.read_nwe", FlagSetting::On, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(READ), "{err}");
}

#[tokio::test]
async fn complete_waits_for_the_flag_the_soak_time_and_the_old_clients() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup(&db, &files, |c| {
        c.gates.min_soak = Duration::from_secs(3);
        c.gates.client_timeout = Duration::from_secs(2);
    })
    .await;
    e.validate(false).await.unwrap();
    let app = db.client().await;
    // An instance of the old application: the version of 01 (dropped by 02's contract).
    app.execute(
        "SELECT ratchet.heartbeat('billing', 'web-1', 'public_01_payments')",
        &[],
    )
    .await
    .unwrap();
    // … and one of the new version, which does not hold anything back.
    app.execute(
        "SELECT ratchet.heartbeat('billing', 'web-2', 'public_02_status')",
        &[],
    )
    .await
    .unwrap();

    let err = e.complete().await.unwrap_err();
    assert_eq!(gate_of(&err), Some(Gate::FlagNotOn), "{err}");
    assert!(
        err.to_string()
            .contains("ratchet flags set 02_status.read_new 10%"),
        "{err}"
    );
    e.set_flag(READ, FlagSetting::Percent(30), false)
        .await
        .unwrap();
    let err = e.complete().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("ratchet flags set 02_status.read_new on"),
        "{err}"
    );
    e.set_flag(READ, FlagSetting::On, false).await.unwrap();

    // The soak time counts from the end of the start.
    let err = e.complete().await.unwrap_err();
    if gate_of(&err) == Some(Gate::SoakNotElapsed) {
        assert!(err.to_string().contains("wait "), "{err}");
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    // Still beating after the soak.
    app.execute(
        "SELECT ratchet.heartbeat('billing', 'web-1', 'public_01_payments')",
        &[],
    )
    .await
    .unwrap();
    let err = e.complete().await.unwrap_err();
    assert_eq!(gate_of(&err), Some(Gate::OldClients), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("billing/web-1") && !msg.contains("web-2"),
        "{msg}"
    );

    let seq = e.sequence().await.unwrap().unwrap();
    let names: Vec<&str> = seq.stages.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "expanded",
            "backfilled",
            "validated",
            "reads switched",
            "soaked",
            "no old clients",
            "complete"
        ]
    );
    assert!(
        seq.next.contains("move them to `public_02_status`"),
        "{}",
        seq.next
    );

    // The old instance stops; after the client timeout it is gone. The new one keeps
    // beating.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    app.execute(
        "SELECT ratchet.heartbeat('billing', 'web-2', 'public_02_status')",
        &[],
    )
    .await
    .unwrap();
    let fleet = e.clients().await.unwrap();
    let web1 = fleet
        .instances
        .iter()
        .find(|i| i.row.instance == "web-1")
        .unwrap();
    assert!(web1.gone);
    // A session without a heartbeat that names the old version in its application_name
    // (idle, holding no lock): pg_stat_activity shows it, the second signal. An idle
    // session whose last statement read the old version does not count.
    let quiet = db.client().await;
    quiet
        .batch_execute(
            "SET application_name = 'billing public_01_payments'; \
             SELECT count(*) FROM public_01_payments.payments",
        )
        .await
        .unwrap();
    let idle = db.client().await;
    idle.simple_query("SELECT count(*) FROM public_01_payments.payments")
        .await
        .unwrap();
    let fleet = e.clients().await.unwrap();
    assert!(
        fleet
            .sessions
            .iter()
            .any(|s| s.version_schema == "public_01_payments" && s.sessions == 1),
        "{:?}",
        fleet.sessions
    );
    let err = e.complete().await.unwrap_err();
    assert_eq!(gate_of(&err), Some(Gate::OldClients), "{err}");
    assert!(
        err.to_string()
            .contains("1 session(s) using `public_01_payments` right now"),
        "{err}"
    );
    drop(quiet);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        e.clients()
            .await
            .unwrap()
            .sessions
            .iter()
            .map(|s| s.sessions)
            .sum::<i64>(),
        0,
        "the idle session of the old version does not count"
    );
    let out = e.complete().await.unwrap().unwrap();
    assert_eq!(out.migration, "02_status");
    assert_eq!(
        common::columns(&app, "public", "payments").await,
        ["id", "amount", "status"]
    );
    let t: String = app
        .query_one(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'payments' AND column_name = 'status'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(t, "smallint");
}

#[tokio::test]
async fn force_passes_over_flags_soak_and_clients_and_says_so_in_the_log() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup(&db, &files, |c| {
        c.gates.min_soak = Duration::from_secs(3600)
    })
    .await;
    // Never over an unfinished validation.
    let err = e
        .complete_with(CompleteOptions {
            force: true,
            ..CompleteOptions::default()
        })
        .await
        .unwrap_err();
    assert_eq!(gate_of(&err), Some(Gate::NotValidated), "{err}");
    e.validate(false).await.unwrap();
    db.client()
        .await
        .execute("SELECT ratchet.heartbeat('a', 'i', 'public')", &[])
        .await
        .unwrap();
    e.complete_with(CompleteOptions {
        force: true,
        ..CompleteOptions::default()
    })
    .await
    .unwrap()
    .unwrap();
    let forced = e
        .events(&ratchet_engine::state::EventFilter {
            kinds: vec!["gates_forced".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(forced.len(), 1);
    let passed: Vec<&str> = forced[0].detail["passed_over"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["stage"].as_str().unwrap())
        .collect();
    assert_eq!(passed, ["reads switched", "soaked", "no old clients"]);
}

#[tokio::test]
async fn a_write_after_the_validation_makes_complete_validate_again() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup(&db, &files, |_| {}).await;
    e.validate(false).await.unwrap();
    e.set_flag(READ, FlagSetting::On, false).await.unwrap();
    let app = db.client().await;
    app.batch_execute(
        "SET search_path TO public_01_payments, public; UPDATE payments SET amount = amount + 1 WHERE id <= 10",
    )
    .await
    .unwrap();
    // The statistics reach the shared counters within a second or so.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seq = e.sequence().await.unwrap().unwrap();
    let validated = seq.stages.iter().find(|s| s.name == "validated").unwrap();
    assert!(
        validated.detail.contains("validates again"),
        "{}",
        validated.detail
    );
    e.complete().await.unwrap().unwrap();
    let validations = e
        .events(&ratchet_engine::state::EventFilter {
            kinds: vec!["validate".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(validations.len(), 2, "{validations:?}");
}

#[tokio::test]
async fn a_freeze_blocks_start_migrate_and_complete_until_unfreeze() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = engine(&db).await;
    let m1 = files.migration("01_payments.yaml", PAYMENTS);
    assert!(e.freeze("incident 42: stabilising").await.unwrap());
    for err in [
        e.start(&m1).await.unwrap_err(),
        e.migrate(std::slice::from_ref(&m1), true)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(gate_of(&err), Some(Gate::Frozen), "{err}");
        assert!(err.to_string().contains("incident 42"), "{err}");
        assert!(err.to_string().contains("ratchet unfreeze"), "{err}");
    }
    assert!(e.frozen().await.unwrap().is_some());
    assert!(e.unfreeze().await.unwrap());
    assert!(!e.unfreeze().await.unwrap());
    e.start(&m1).await.unwrap();
    e.freeze("again").await.unwrap();
    let err = e.complete().await.unwrap_err();
    assert_eq!(gate_of(&err), Some(Gate::Frozen), "{err}");
    // Abort stays possible: it undoes the expand.
    e.abort().await.unwrap();
    let kinds: Vec<String> = e
        .events(&ratchet_engine::state::EventFilter {
            kinds: vec!["freeze".into(), "unfreeze".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.kind)
        .collect();
    assert_eq!(kinds, ["freeze", "unfreeze", "freeze"]);
}

#[tokio::test]
async fn percentage_rollouts_are_stable_monotone_and_match_the_client_hash() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup(&db, &files, |_| {}).await;
    e.validate(false).await.unwrap();
    let c = db.client().await;
    e.set_flag(READ, FlagSetting::Percent(30), false)
        .await
        .unwrap();
    let at30 = on_keys(&c, READ).await;
    assert!((2700..=3300).contains(&at30.len()), "{}", at30.len());
    assert_eq!(
        on_keys(&c, READ).await,
        at30,
        "the same key gets the same answer"
    );
    for i in 1..=10000 {
        let k = i.to_string();
        assert_eq!(
            FlagSetting::Percent(30).answer(READ, Some(&k)),
            at30.contains(&k),
            "the client's hash disagrees with SQL for key {k}"
        );
    }
    e.set_flag(READ, FlagSetting::Percent(50), false)
        .await
        .unwrap();
    let at50 = on_keys(&c, READ).await;
    assert!((4700..=5300).contains(&at50.len()), "{}", at50.len());
    assert!(at30.is_subset(&at50), "raising 30% -> 50% turned keys off");
    // Without a key a percentage is off; unknown flags are off (fail closed).
    let row = c
        .query_one(
            "SELECT ratchet.flag($1), ratchet.flag('nope', 'k'), ratchet.flag($1, NULL)",
            &[&READ],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, bool>(0),
            row.get::<_, bool>(1),
            row.get::<_, bool>(2)
        ),
        (false, false, false)
    );
}

#[tokio::test]
async fn flag_ignores_the_callers_search_path_and_objects() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup(&db, &files, |_| {}).await;
    e.validate(false).await.unwrap();
    e.set_flag(READ, FlagSetting::Percent(50), false)
        .await
        .unwrap();
    let c = db.client().await;
    let before: i64 = c
        .query_one(
            "SELECT count(*) FROM generate_series(1, 1000) i WHERE ratchet.flag($1, i::text)",
            &[&READ],
        )
        .await
        .unwrap()
        .get(0);
    // A caller's own md5() and left() in a schema first on its search_path, and in
    // pg_temp: flag() must keep using the built-ins.
    c.batch_execute(
        "CREATE SCHEMA evil;
         CREATE FUNCTION evil.md5(text) RETURNS text LANGUAGE sql AS $$ SELECT 'ffffffffffffffff' $$;
         CREATE FUNCTION evil.left(text, int) RETURNS text LANGUAGE sql AS $$ SELECT '00000000' $$;
         CREATE FUNCTION pg_temp.md5(text) RETURNS text LANGUAGE sql AS $$ SELECT 'ffffffffffffffff' $$;
         SET search_path TO evil, pg_temp, public;",
    )
    .await
    .unwrap();
    let after: i64 = c
        .query_one(
            "SELECT count(*) FROM generate_series(1, 1000) i WHERE ratchet.flag($1, i::text)",
            &[&READ],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after);
}

async fn on_keys(c: &tokio_postgres::Client, flag: &str) -> std::collections::BTreeSet<String> {
    c.query(
        "SELECT i::text FROM generate_series(1, 10000) i WHERE ratchet.flag($1, i::text)",
        &[&flag],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

#[tokio::test]
async fn abort_drops_the_flags_and_a_new_start_creates_them_off() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = setup(&db, &files, |_| {}).await;
    e.validate(false).await.unwrap();
    e.set_flag(READ, FlagSetting::On, false).await.unwrap();
    e.abort().await.unwrap();
    assert!(e.flags().await.unwrap().is_empty());
    e.start(&files.migration("02_status.yaml", STATUS))
        .await
        .unwrap();
    let f = e.flag(READ).await.unwrap().unwrap();
    assert_eq!(f.setting, FlagSetting::Off);
    let kinds: Vec<String> = e
        .flag_history(Some(READ))
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.kind)
        .collect();
    assert_eq!(
        kinds,
        ["flag_created", "flag", "flag_deleted", "flag_created"]
    );
}

#[tokio::test]
async fn a_flag_name_taken_by_another_schema_is_refused_at_start() {
    let db = TestDb::new().await;
    let files = Files::new();
    let c = db.client().await;
    // The same state schema, shared with schema `other`, already has the flag.
    let mut e = engine(&db).await;
    e.start(&files.migration("01_payments.yaml", PAYMENTS))
        .await
        .unwrap();
    e.complete().await.unwrap();
    c.execute(
        "INSERT INTO ratchet.flags (name, schema, migration) VALUES ('payments.new_badge', 'other', 'x')",
        &[],
    )
    .await
    .unwrap();
    let err = e
        .start(&files.migration("02_status.yaml", STATUS))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("payments.new_badge") && msg.contains("schema `other`"),
        "{msg}"
    );
    // Refused before anything was recorded or built.
    assert!(e.status().await.unwrap().active.is_none());
    assert!(!common::schema_exists(&c, "public_02_status").await);
}
