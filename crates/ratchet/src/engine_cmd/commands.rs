//! The engine commands: each resolves its settings (flags over `[engine]` over the
//! defaults), opens the engine, calls it, and hands the outcome to `render`.

use std::sync::Arc;

use anyhow::Context;
use ratchet_engine::config::{BatchSetting, Clamped};
use ratchet_engine::{Config, Engine};

use super::args::{
    BackfillArgs, BackfillCmdArgs, CompleteArgs, ConfigArgs, ConnArgs, Format, MigrateArgs,
    PlanArgs, StartArgs, StatusArgs, ValidateArgs,
};
use super::observe::Observe;
use super::render;
use super::settings::Settings;
use crate::output::{line, warn, Progress};

/// The engine settings of a command, with a warning for each batch size the engine's
/// rule changed.
fn config(conn: &ConnArgs, batches: Option<&BackfillArgs>) -> anyhow::Result<Config> {
    let s = Settings::resolve(conn, batches)?;
    for c in &s.clamped {
        warn_clamped(c);
    }
    Ok(s.config)
}

/// A warning for a bound the user set that the engine cannot use. The first batch size
/// has no flag: that it moved into the bounds is no news.
fn warn_clamped(c: &Clamped) {
    let why = match c.setting {
        BatchSetting::Min => "batch_min is below 1 row",
        BatchSetting::Max => "batch_max is below batch_min",
        BatchSetting::Workers => "backfill_workers is below 1",
        BatchSetting::Initial => return,
    };
    warn(&format!(
        "{why} ({}); the backfill uses {}",
        c.given, c.used
    ));
}

fn url(conn: &ConnArgs) -> anyhow::Result<&str> {
    let Some(url) = &conn.database_url else {
        anyhow::bail!(
            "no database given: pass --database-url or set DATABASE_URL \
             (try `ratchet demo` to see ratchet work on a throwaway cluster)"
        );
    };
    Ok(url)
}

async fn engine(conn: &ConnArgs, config: Config) -> anyhow::Result<Engine> {
    engine_with(conn, config, Arc::new(Progress::new())).await
}

/// An engine reporting to `reporter` (the status block and the metrics).
async fn engine_with(
    conn: &ConnArgs,
    config: Config,
    reporter: Arc<dyn ratchet_engine::Reporter>,
) -> anyhow::Result<Engine> {
    let url = url(conn)?;
    Ok(Engine::connect(url, config, reporter).await?)
}

/// The status block and metrics of a command that runs steps, and its engine.
async fn observed(
    conn: &ConnArgs,
    config: Config,
    observe: &super::observe::ObserveArgs,
) -> anyhow::Result<(Observe, Engine)> {
    let obs = Observe::start(observe, config.backfill.workers).await?;
    let engine = engine_with(conn, config, obs.reporter()).await;
    let engine = obs.finish(engine)?;
    Ok((obs, engine))
}

/// An engine for a command that only reads (`status`, `plan`): it never takes the
/// migration lock, so it answers at once while another process runs a migration.
async fn engine_read_only(conn: &ConnArgs, config: Config) -> anyhow::Result<Engine> {
    let url = url(conn)?;
    Ok(Engine::connect_read_only(url, config, Arc::new(Progress::new())).await?)
}

fn load(path: &std::path::Path) -> anyhow::Result<ratchet_spec::Migration> {
    Ok(ratchet_spec::load_file(path)?)
}

pub async fn init(a: &ConnArgs) -> anyhow::Result<i32> {
    let config = config(a, None)?;
    let state_schema = config.state_schema.clone();
    engine(a, config).await?;
    line(format!("state schema `{state_schema}` is ready"));
    Ok(0)
}

pub async fn plan(a: &PlanArgs) -> anyhow::Result<i32> {
    let m = load(&a.file)?;
    let engine = engine_read_only(&a.conn, config(&a.conn, None)?).await?;
    let plan = engine.plan(&m).await?;
    match a.format {
        Format::Json => line(serde_json::to_string_pretty(&plan)?),
        Format::Text => render::print_plan(&plan),
    }
    Ok(0)
}

pub async fn start(a: &StartArgs) -> anyhow::Result<i32> {
    let m = load(&a.file)?;
    let mut config = config(&a.conn, Some(&a.batches))?;
    config.run_backfill = !a.no_backfill;
    config.completes_at_once = a.complete;
    let (obs, mut engine) = observed(&a.conn, config, &a.observe).await?;
    match engine.status().await.ok() {
        Some(st) if st.active.as_ref().is_some_and(|x| x.name == m.name) => obs.hint_status(&st),
        _ => {
            if let Ok(plan) = engine.plan(&m).await {
                obs.hint_plan(&plan);
            }
        }
    }
    let out = engine
        .start(&m)
        .await
        .with_context(|| format!("starting {}", a.file.display()));
    let out = obs.finish(out)?;
    render::report_start(&out);
    if a.complete && !out.already_completed && !out.backfill_left {
        let done = engine.validate_and_complete().await.map_err(Into::into);
        render::report_complete(obs.finish(done)?);
    }
    Ok(0)
}

pub async fn complete(a: &CompleteArgs) -> anyhow::Result<i32> {
    let (obs, mut engine) = observed(&a.conn, config(&a.conn, None)?, &a.observe).await?;
    if a.skip_validation {
        warn("--skip-validation: completing without a passed validation; this is recorded in the event log");
    }
    obs.hint_engine(&engine).await;
    let done = engine
        .complete_with(a.skip_validation)
        .await
        .map_err(Into::into);
    render::report_complete(obs.finish(done)?);
    Ok(0)
}

pub async fn backfill(a: &BackfillCmdArgs) -> anyhow::Result<i32> {
    let config = config(&a.conn, Some(&a.batches))?;
    let (obs, mut engine) = observed(&a.conn, config, &a.observe).await?;
    obs.hint_engine(&engine).await;
    let done = engine.backfill().await.map_err(Into::into);
    let Some(name) = obs.finish(done)? else {
        line("no active migration; nothing to backfill");
        return Ok(0);
    };
    let vs = engine
        .status()
        .await
        .ok()
        .and_then(|s| s.active.map(|a| a.version_schema));
    line(format!(
        "backfills of {name} are done; next: `ratchet validate`"
    ));
    if let Some(vs) = vs {
        line(format!(
            "applications of the new version use: SET search_path TO {vs}"
        ));
    }
    Ok(0)
}

pub async fn validate(a: &ValidateArgs) -> anyhow::Result<i32> {
    let (obs, mut engine) = observed(&a.conn, config(&a.conn, None)?, &a.observe).await?;
    obs.hint_engine(&engine).await;
    let done = engine.validate(a.repair).await.map_err(Into::into);
    let Some(v) = obs.finish(done)? else {
        line("nothing to validate (no active migration with a backfill)");
        return Ok(0);
    };
    match a.format {
        Format::Json => line(serde_json::to_string_pretty(&v)?),
        Format::Text => render::print_validation(&v),
    }
    Ok(if v.passed { 0 } else { 1 })
}

pub async fn abort(a: &ConnArgs) -> anyhow::Result<i32> {
    let mut engine = engine(a, config(a, None)?).await?;
    match engine.abort().await? {
        Some(name) => line(format!(
            "aborted {name}; everything its start added is gone"
        )),
        None => line("no active migration; nothing to abort"),
    }
    Ok(0)
}

pub async fn grants(a: &ConnArgs) -> anyhow::Result<i32> {
    let engine = engine(a, config(a, None)?).await?;
    let synced = engine.sync_grants().await?;
    if synced.is_empty() {
        line("no version schema is live; nothing to sync");
    }
    for vs in &synced {
        line(format!("privileges synced onto {vs}"));
    }
    Ok(0)
}

pub async fn migrate(a: &MigrateArgs) -> anyhow::Result<i32> {
    let local = ratchet_spec::load_dir(&a.dir)?;
    let config = config(&a.conn, Some(&a.batches))?;
    let (obs, mut engine) = observed(&a.conn, config, &a.observe).await?;
    let out = obs.finish(engine.migrate(&local, a.complete).await.map_err(Into::into))?;
    if out.applied.is_empty() && out.left_active.is_none() {
        line("everything is applied already");
    }
    for name in &out.applied {
        line(format!("applied {name}"));
    }
    if let Some(name) = &out.left_active {
        line(format!(
            "started {name}; run `ratchet complete` once no application uses the old version"
        ));
    }
    if let Some(vs) = &out.version_schema {
        line(format!("version schema: {vs}"));
    }
    Ok(0)
}

pub async fn status(a: &StatusArgs) -> anyhow::Result<i32> {
    let engine = engine_read_only(&a.conn, config(&a.conn, None)?).await?;
    if a.watch {
        return super::watch::watch(&engine, a.interval, a.format).await;
    }
    let st = engine.status().await?;
    // Read from the stored cursors, which each batch commits: a running backfill's live
    // progress, seen from another terminal.
    let backfills = match &st.active {
        Some(_) => engine.backfill_progress().await?,
        None => vec![],
    };
    match a.format {
        Format::Json => line(render::status_json(&st, &backfills)?),
        Format::Text => render::print_status(&st, &backfills),
    }
    Ok(0)
}

/// `ratchet config`: the settings every engine command would run with, and where each
/// comes from. Reads no database.
pub fn show_config(a: &ConfigArgs) -> anyhow::Result<i32> {
    let s = Settings::resolve(&a.conn, Some(&a.batches))?;
    for c in &s.clamped {
        warn_clamped(c);
    }
    match a.format {
        Format::Json => line(render::settings_json(&s)?),
        Format::Text => render::print_settings(&s),
    }
    Ok(0)
}
