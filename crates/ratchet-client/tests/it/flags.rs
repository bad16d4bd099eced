//! Flag reads through the client: the cache, its agreement with SQL's `flag()`, and what
//! happens when the setting cannot be read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratchet_client::{Error, FlagSetting, Versioned};
use ratchet_engine::state::FlagSetting as EngineSetting;
use ratchet_scratch::testing::{connect, TestDb};

use crate::common::*;

const FLAG: &str = "checkout.new_flow";

fn app() -> Versioned {
    Versioned::builder("shop")
        .version_schema("public_01_setup")
        .build()
        .unwrap()
}

/// A change made with the engine's `set_flag` (what `ratchet flags set` calls) reaches a
/// client with the default cache (1 s) within the TTL: right after the change the
/// cached setting is still served, and the new one arrives once the entry expires,
/// measured from the change. With a zero TTL the next read sees it.
#[tokio::test]
#[allow(clippy::print_stderr)] // the measured delay, for whoever reads the test log
async fn a_flag_change_reaches_the_client_within_the_cache_ttl() {
    let db = TestDb::new().await;
    let roles = roles(&db).await;
    let mut e = setup(&roles, 10).await;
    let client = Arc::new(connect(&roles.app_url).await.unwrap());
    let flags = app().flags(client.clone());
    let ttl = flags.cache().ttl();
    assert_eq!(ttl, Duration::from_secs(1));
    let uncached = app().flags(client).with_ttl(Duration::ZERO);

    assert!(!flags.flag(FLAG, Some("user-1")).await.unwrap());
    let read_at = Instant::now();
    e.set_flag(FLAG, EngineSetting::On, false).await.unwrap();
    let changed_at = Instant::now();
    assert!(uncached.flag(FLAG, Some("user-1")).await.unwrap());
    if read_at.elapsed() < ttl {
        assert!(
            !flags.flag(FLAG, Some("user-1")).await.unwrap(),
            "the cached setting is served within the TTL"
        );
    }
    while !flags.flag(FLAG, Some("user-1")).await.unwrap() {
        assert!(changed_at.elapsed() < ttl * 3, "the change never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delay = changed_at.elapsed();
    eprintln!("flag change seen by the client after {delay:?} (TTL {ttl:?})");
    assert!(
        delay <= ttl + Duration::from_millis(100),
        "seen after {delay:?}, TTL {ttl:?}"
    );
    assert!(
        read_at.elapsed() >= ttl,
        "the cache, not the database, held the old setting"
    );

    // And back off, at 30 %: the same within the TTL.
    e.set_flag(FLAG, EngineSetting::Percent(30), false)
        .await
        .unwrap();
    let changed_at = Instant::now();
    while flags.setting(FLAG).await.unwrap() != FlagSetting::Percent(30) {
        assert!(changed_at.elapsed() < ttl * 3, "the change never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(changed_at.elapsed() <= ttl + Duration::from_millis(100));
}

/// For 10,000 keys at 30 % and at 50 %, the answers the client computes from the cached
/// setting equal SQL `ratchet.flag(name, key)`; 27–33 % are on at 30 %, every key keeps
/// its answer when asked again, and every key on at 30 % is still on at 50 %.
#[tokio::test]
async fn local_answers_equal_sql_flag_for_10000_keys_and_the_rollout_is_monotone() {
    let db = TestDb::new().await;
    let roles = roles(&db).await;
    let mut e = setup(&roles, 10).await;
    let client = Arc::new(connect(&roles.app_url).await.unwrap());
    let flags = app().flags(client.clone()).with_ttl(Duration::ZERO);
    let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();

    let mut on_at = Vec::new();
    for percent in [30u8, 50] {
        e.set_flag(FLAG, EngineSetting::Percent(percent), false)
            .await
            .unwrap();
        assert_eq!(
            flags.setting(FLAG).await.unwrap(),
            FlagSetting::Percent(percent)
        );
        let sql: Vec<bool> = client
            .query(
                "SELECT ratchet.flag($1, k) FROM unnest($2::text[]) WITH ORDINALITY u(k, n) ORDER BY n",
                &[&FLAG, &keys],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut local = Vec::with_capacity(keys.len());
        for k in &keys {
            local.push(flags.flag(FLAG, Some(k)).await.unwrap());
        }
        assert_eq!(sql.len(), 10_000);
        let differing = (0..keys.len()).filter(|&i| sql[i] != local[i]).count();
        assert_eq!(differing, 0, "keys answered differently at {percent}%");
        let again: Vec<bool> = keys
            .iter()
            .map(|k| FlagSetting::Percent(percent).answer(FLAG, Some(k)))
            .collect();
        assert_eq!(again, local, "the same key always gets the same answer");
        let on = local.iter().filter(|b| **b).count();
        if percent == 30 {
            assert!((2700..=3300).contains(&on), "{on} of 10000 on at 30%");
        }
        // Without a key a percentage is off, in SQL as here.
        let sql_none: bool = client
            .query_one("SELECT ratchet.flag($1)", &[&FLAG])
            .await
            .unwrap()
            .get(0);
        assert!(!sql_none);
        assert!(!flags.flag(FLAG, None).await.unwrap());
        on_at.push(local);
    }
    let lost = (0..keys.len())
        .filter(|&i| on_at[0][i] && !on_at[1][i])
        .count();
    assert_eq!(lost, 0, "keys on at 30% but off at 50%");
    let on50 = on_at[1].iter().filter(|b| **b).count();
    assert!((4700..=5300).contains(&on50), "{on50} of 10000 on at 50%");
}

/// A flag that does not exist is off, in SQL as in the client (fail closed); a read that
/// fails is an error the application can handle (`flag`) or turn into its default
/// (`flag_or`); a state schema of an older ratchet is named as such, and the next
/// engine command upgrades it (`functions` v1 → v2).
#[tokio::test]
async fn unknown_flags_are_off_failures_are_errors_and_an_old_state_schema_is_upgraded() {
    let db = TestDb::new().await;
    let roles = roles(&db).await;
    let e = setup(&roles, 10).await;
    drop(e);
    let client = Arc::new(connect(&roles.app_url).await.unwrap());
    let flags = app().flags(client.clone());
    assert_eq!(
        flags.setting("no.such_flag").await.unwrap(),
        FlagSetting::Off
    );
    assert!(!flags.flag("no.such_flag", Some("k")).await.unwrap());

    // A state schema from before `flag_setting()`: as ratchet v1 left it.
    let owner = connect(&roles.owner_url).await.unwrap();
    owner
        .batch_execute(
            "DROP FUNCTION ratchet.flag_setting(text);
             COMMENT ON FUNCTION ratchet.heartbeat(text, text, text) IS 'ratchet functions v1';",
        )
        .await
        .unwrap();
    let fresh = app().flags(client.clone());
    let err = fresh.flag(FLAG, Some("k")).await.unwrap_err();
    assert!(
        matches!(&err, Error::StateSchemaOutdated(s) if s == "ratchet"),
        "{err:?}"
    );
    assert!(fresh.flag_or(FLAG, Some("k"), true).await);
    assert!(!fresh.flag_or(FLAG, Some("k"), false).await);
    // Any engine command as the migration role brings the functions up to date.
    drop(engine(&roles.owner_url, config()).await);
    assert_eq!(fresh.setting(FLAG).await.unwrap(), FlagSetting::Off);

    // Another state schema name that does not exist.
    let other = Versioned::builder("shop")
        .base_tables()
        .state_schema("ops")
        .build()
        .unwrap();
    let err = other.flags(client.clone()).setting(FLAG).await.unwrap_err();
    assert!(
        matches!(&err, Error::NoStateSchema(s) if s == "ops"),
        "{err:?}"
    );

    // A lost connection: an error, or the default.
    let doomed = Arc::new(connect(&roles.app_url).await.unwrap());
    let pid: i32 = doomed
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    db.client()
        .await
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let lost = app().flags(doomed).with_ttl(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(5);
    while lost.flag(FLAG, Some("k")).await.is_ok() {
        assert!(Instant::now() < deadline, "the session was not ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        lost.flag(FLAG, Some("k")).await,
        Err(Error::Db { .. })
    ));
    assert!(lost.flag_or(FLAG, Some("k"), true).await);
}
