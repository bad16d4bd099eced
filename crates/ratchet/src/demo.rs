//! `ratchet demo`: the main job end to end on a throwaway cluster, so a new user sees
//! what ratchet does before pointing it at a real database.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use anyhow::Context;
use ratchet_engine::{Config, Engine};
use ratchet_scratch::{connect, Cluster};

use crate::engine_cmd::print_plan;
use crate::live::reporter::{LiveReporter, ProgressMode};
use crate::output::line;

const V1: &str = include_str!("../../../examples/demo/01_create_users.yaml");
const V2: &str = include_str!("../../../examples/demo/02_profile.yaml");
const V3: &str = include_str!("../../../examples/demo/03_email_required.yaml");

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Run against this database instead of a throwaway cluster (it must be empty).
    #[arg(long, env = "RATCHET_DEMO_DATABASE_URL")]
    pub database_url: Option<String>,
}

pub async fn run(a: &DemoArgs) -> anyhow::Result<i32> {
    let cluster;
    let url = match &a.database_url {
        Some(u) => u.clone(),
        None => {
            line("== starting a throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir)");
            cluster = tokio::task::spawn_blocking(Cluster::start_with_watchdog).await??;
            line(format!("   listening on 127.0.0.1:{}", cluster.port()));
            cluster.url("postgres")
        }
    };
    let dir = tempfile::tempdir()?;
    let f1 = dir.path().join("01_create_users.yaml");
    let f2 = dir.path().join("02_profile.yaml");
    let f3 = dir.path().join("03_email_required.yaml");
    std::fs::write(&f1, V1)?;
    std::fs::write(&f2, V2)?;
    std::fs::write(&f3, V3)?;
    let m1 = ratchet_spec::load_file(&f1)?;
    let m2 = ratchet_spec::load_file(&f2)?;
    let m3 = ratchet_spec::load_file(&f3)?;
    // The live status block (plain status lines when stderr is not a terminal), shown
    // during the backfill of version 3.
    let progress = LiveReporter::new(ProgressMode::Auto, Duration::from_secs(1));
    let mut engine = Engine::connect(&url, Config::default(), progress.clone()).await?;
    let app = connect(&url)
        .await
        .context("connecting as the application")?;

    line("\n== version 1: create the users table");
    let v1 = engine.start(&m1).await?.version_schema;
    engine.complete().await?;
    app.batch_execute(&format!(
        "SET search_path TO {v1}; INSERT INTO users (name, email)
         SELECT 'user ' || g, CASE WHEN g % 10 <> 0 THEN 'user' || g || '@example.com' END
           FROM generate_series(1, 20000) g"
    ))
    .await?;
    line(format!(
        "   20000 users inserted through version schema {v1} (every tenth without an email)"
    ));

    line("\n== plan of version 2 (reads the catalog only)");
    print_plan(&engine.plan(&m2).await?);

    line("\n== start version 2 (expand: additive changes only)");
    let v2 = engine.start(&m2).await?.version_schema;
    let old: String = app
        .query_one(&format!("SELECT name FROM {v1}.users WHERE id = 1"), &[])
        .await?
        .get(0);
    app.execute(
        &format!("INSERT INTO {v1}.users (name, email) VALUES ('from old app', 'old@example.com')"),
        &[],
    )
    .await?;
    line(format!(
        "   old version ({v1}) still reads `name`: {old:?}, and inserts work"
    ));
    let row = app
        .query_one(
            &format!("SELECT full_name, active FROM {v2}.users WHERE email = 'old@example.com'"),
            &[],
        )
        .await?;
    let (full, active): (String, bool) = (row.get(0), row.get(1));
    line(format!(
        "   new version ({v2}) sees the same row as full_name={full:?}, active={active}"
    ));
    app.execute(
        &format!(
            "INSERT INTO {v2}.users (full_name, email) VALUES ('from new app', 'new@example.com')"
        ),
        &[],
    )
    .await?;
    let n: i64 = app
        .query_one(&format!("SELECT count(*) FROM {v1}.users"), &[])
        .await?
        .get(0);
    line(format!(
        "   a row inserted through the new version is visible to the old one too ({n} users)"
    ));

    line("\n== complete version 2 (contract: the old version goes away)");
    engine.complete().await?;
    let gone = app
        .query_one(&format!("SELECT name FROM {v1}.users LIMIT 1"), &[])
        .await
        .is_err();
    line(format!("   old version schema {v1} dropped: {gone}"));

    line("\n== start version 3: email becomes required (dual writes + batched backfill)");
    // Small batches, so that the backfill lasts long enough to watch its status block
    // (a real one adapts its batches to --batch-target, 200 ms by default).
    engine.config.backfill.initial = 25;
    engine.config.backfill.max = 25;
    engine.config.backfill.target = Duration::from_millis(5);
    progress.hint_plan_of(&engine.plan(&m3).await?);
    progress.hint_workers(engine.config.backfill.workers);
    let v3 = engine.start(&m3).await?.version_schema;
    app.execute(
        &format!("INSERT INTO {v2}.users (full_name) VALUES ('old app, no email')"),
        &[],
    )
    .await?;
    let email: String = app
        .query_one(
            &format!("SELECT email FROM {v3}.users WHERE full_name = 'old app, no email'"),
            &[],
        )
        .await?
        .get(0);
    line(format!(
        "   a row the old version ({v2}) wrote without an email has one in {v3}: {email}"
    ));
    let missing: i64 = app
        .query_one(
            &format!("SELECT count(*) FROM {v3}.users WHERE email IS NULL"),
            &[],
        )
        .await?
        .get(0);
    line(format!(
        "   rows without an email in the new version: {missing}"
    ));
    let v = engine
        .validate(false)
        .await?
        .ok_or_else(|| anyhow::anyhow!("nothing to validate"))?;
    line(format!(
        "   validate: {} rows checked, {} mismatches",
        v.rows_checked, v.mismatches
    ));
    switch_reads(&mut engine, &app, &m3.name).await?;
    line("\n== complete version 3 (every gate passed)");
    engine.complete().await?;
    let nullable: bool = app
        .query_one(
            "SELECT NOT attnotnull FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'email'",
            &[],
        )
        .await?
        .get(0);
    line(format!(
        "   completed: public.users.email is NOT NULL now: {}",
        !nullable
    ));
    let st = engine.status().await?;
    line(format!(
        "   status: version schema {}, {} migrations applied",
        st.version_schema.unwrap_or_default(),
        st.history.len()
    ));
    line("\n== done; removing the throwaway cluster");
    Ok(0)
}

/// The second half of the careful sequence: `complete` is refused while the migration's
/// read flag is off; raise it to 10 % (the same keys always get the new read), then on,
/// then the contract may run.
async fn switch_reads(
    engine: &mut ratchet_engine::Engine,
    app: &tokio_postgres::Client,
    migration: &str,
) -> anyhow::Result<()> {
    use ratchet_engine::state::FlagSetting;
    let flag = ratchet_engine::lifecycle::read_flag(migration);
    line(format!(
        "\n== switch reads behind the flag {flag} (created off by start)"
    ));
    if let Err(e) = engine.complete().await {
        line(format!("   complete before the flag is on: refused: {e}"));
    }
    for setting in [FlagSetting::Percent(10), FlagSetting::On] {
        engine.set_flag(&flag, setting, false).await?;
        let on: i64 = app
            .query_one(
                "SELECT count(*) FROM generate_series(1, 1000) u WHERE ratchet.flag($1, 'user-' || u)",
                &[&flag],
            )
            .await?
            .get(0);
        line(format!(
            "   ratchet flags set {flag} {setting}: SELECT ratchet.flag('{flag}', 'user-N') is true for {on} of 1000 users"
        ));
    }
    Ok(())
}
