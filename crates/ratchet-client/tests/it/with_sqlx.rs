//! The `sqlx` feature: the same over a `PgPool`.

use std::time::{Duration, Instant};

use ratchet_client::{sqlx as rc, Error, FlagSetting, Versioned};
use ratchet_engine::state::FlagSetting as EngineSetting;
use ratchet_scratch::testing::{connect, TestDb};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::common::*;

const FLAG: &str = "checkout.new_flow";

fn app(instance: &str) -> Versioned {
    Versioned::builder("shop")
        .version_schema("public_01_setup")
        .instance(instance)
        .build()
        .unwrap()
}

/// Over an sqlx pool of the DML-only role: the version selected by the startup options,
/// by the `after_connect` hook and per transaction (`begin`), each verified and used;
/// flag reads cached, equal to SQL `flag()` for 1,000 keys at 30 %, reflecting a change
/// within the TTL; heartbeats at the interval with the version schema, stopping when
/// dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlx_pool_selects_the_version_reads_flags_and_sends_heartbeats() {
    let db = TestDb::new().await;
    let roles = roles(&db).await;
    let mut e = setup(&roles, 10).await;
    let v = app("sqlx-1");
    let options: PgConnectOptions = roles.app_url.parse().unwrap();

    // In the startup packet.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(rc::connect_options(&v, options.clone()))
        .await
        .unwrap();
    rc::verify(&v, &pool).await.unwrap();
    let (n, name): (i64, String) =
        sqlx::query_as("SELECT count(*), current_setting('application_name') FROM payments")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((n, name.as_str()), (10, "shop"));

    // With `SET` after connecting, and per transaction.
    let plain = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .unwrap();
    assert!(matches!(
        rc::verify(&v, &plain).await,
        Err(Error::SearchPathNotApplied { .. })
    ));
    let mut tx = rc::begin(&v, &plain).await.unwrap();
    rc::verify(&v, &mut *tx).await.unwrap();
    sqlx::query("UPDATE payments SET status = 'paid' WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        rc::verify(&v, &plain).await.is_err(),
        "SET LOCAL ended with its transaction"
    );
    let hooked = PgPoolOptions::new()
        .max_connections(1)
        .after_connect(rc::after_connect(&v))
        .connect_with(options)
        .await
        .unwrap();
    rc::verify(&v, &hooked).await.unwrap();

    // Flags.
    let flags = rc::Flags::new(pool.clone(), &v);
    assert_eq!(flags.setting("no.such").await.unwrap(), FlagSetting::Off);
    assert!(!flags.flag(FLAG, Some("k")).await.unwrap());
    e.set_flag(FLAG, EngineSetting::Percent(30), false)
        .await
        .unwrap();
    let changed = Instant::now();
    while flags.setting(FLAG).await.unwrap() != FlagSetting::Percent(30) {
        assert!(changed.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(changed.elapsed() <= flags.cache().ttl() + Duration::from_millis(100));
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    let sql: Vec<bool> = sqlx::query_scalar(
        "SELECT ratchet.flag($1, k) FROM unnest($2::text[]) WITH ORDINALITY u(k, n) ORDER BY n",
    )
    .bind(FLAG)
    .bind(&keys)
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut local = Vec::new();
    for k in &keys {
        local.push(flags.flag(FLAG, Some(k)).await.unwrap());
    }
    assert_eq!(sql, local);

    // Heartbeats.
    let owner = connect(&roles.owner_url).await.unwrap();
    let interval = Duration::from_millis(100);
    let hb = rc::heartbeat(&v, pool.clone(), interval);
    tokio::time::sleep(Duration::from_millis(550)).await;
    let (version, beats): (String, i64) = {
        let r = owner
            .query_one(
                "SELECT version, (extract(epoch FROM last_seen - first_seen) * 1000)::bigint
                   FROM ratchet.clients WHERE app = 'shop' AND instance = 'sqlx-1'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(version, "public_01_setup");
    assert!(
        (350..=600).contains(&beats),
        "first to last heartbeat: {beats} ms"
    );
    assert!((5..=7).contains(&hb.sent()), "{hb:?}");
    drop(hb);
    // A heartbeat in flight when the handle was dropped may still land.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent_at_drop = owner
        .query_one(
            "SELECT last_seen::text FROM ratchet.clients WHERE instance = 'sqlx-1'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    tokio::time::sleep(interval * 3).await;
    let later: String = owner
        .query_one(
            "SELECT last_seen::text FROM ratchet.clients WHERE instance = 'sqlx-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(later, sent_at_drop);
}
