//! The engine commands: each resolves its settings (flags over `[engine]` over the
//! defaults), opens the engine, calls it, and hands the outcome to `render`.

use std::sync::Arc;

use anyhow::Context;
use ratchet_engine::backfill::{Throttle, Throttles};
use ratchet_engine::config::{BatchSetting, Clamped};
use ratchet_engine::monitor::Monitors;
use ratchet_engine::{Config, Engine};

use super::args::{
    BackfillArgs, BackfillCmdArgs, CompleteArgs, ConfigArgs, ConnArgs, Format, MigrateArgs,
    MonitorArgs, PlanArgs, StartArgs, StatusArgs, ValidateArgs,
};
use super::render;
use super::settings::Settings;
use crate::output::{line, warn, Progress};

/// The engine settings of a command, with a warning for each batch size the engine's
/// rule changed.
fn config(conn: &ConnArgs, batches: Option<&BackfillArgs>) -> anyhow::Result<Config> {
    Ok(checked(Settings::resolve(conn, batches)?))
}

/// [`config`] with the monitor flags of a command that runs steps or backfills.
fn monitored_config(
    conn: &ConnArgs,
    batches: Option<&BackfillArgs>,
    monitor: Option<&MonitorArgs>,
) -> anyhow::Result<Config> {
    Ok(checked(Settings::resolve_with(conn, batches, monitor)?))
}

/// The config of `s`, after a warning for each batch size the engine's rule changed.
fn checked(s: Settings) -> Config {
    for c in &s.clamped {
        warn_clamped(c);
    }
    s.config
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
    let url = url(conn)?;
    Ok(Engine::connect(url, config, Arc::new(Progress::new())).await?)
}

/// An engine for a command that only reads (`status`, `plan`): it never takes the
/// migration lock, so it answers at once while another process runs a migration.
async fn engine_read_only(conn: &ConnArgs, config: Config) -> anyhow::Result<Engine> {
    let url = url(conn)?;
    Ok(Engine::connect_read_only(url, config, Arc::new(Progress::new())).await?)
}

/// Start the health monitors of a command that runs steps, backfills or validation, and
/// install their hook (beside any other, in `Throttles`). Stop them when it ends.
async fn watch(engine: &mut Engine) -> anyhow::Result<Monitors> {
    let (monitors, hook) = Monitors::start(
        engine.url(),
        &engine.config,
        engine.reporter(),
        engine.state().clone(),
    )
    .await?;
    let hooks: Vec<Arc<dyn Throttle>> = vec![hook];
    engine.set_throttle(Arc::new(Throttles(hooks)));
    Ok(monitors)
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
    let mut config = monitored_config(&a.conn, Some(&a.batches), Some(&a.monitor))?;
    config.run_backfill = !a.no_backfill;
    config.completes_at_once = a.complete;
    let mut engine = engine(&a.conn, config).await?;
    let monitors = watch(&mut engine).await?;
    let out = engine
        .start(&m)
        .await
        .with_context(|| format!("starting {}", a.file.display()))?;
    render::report_start(&out);
    if a.complete && !out.already_completed && !out.backfill_left {
        render::report_complete(engine.validate_and_complete().await?);
    }
    monitors.stop().await;
    Ok(0)
}

pub async fn complete(a: &CompleteArgs) -> anyhow::Result<i32> {
    let config = monitored_config(&a.conn, None, Some(&a.monitor))?;
    let mut engine = engine(&a.conn, config).await?;
    if a.skip_validation {
        warn("--skip-validation: completing without a passed validation; this is recorded in the event log");
    }
    let monitors = watch(&mut engine).await?;
    render::report_complete(engine.complete_with(a.skip_validation).await?);
    monitors.stop().await;
    Ok(0)
}

pub async fn backfill(a: &BackfillCmdArgs) -> anyhow::Result<i32> {
    let config = monitored_config(&a.conn, Some(&a.batches), Some(&a.monitor))?;
    let mut engine = engine(&a.conn, config).await?;
    let monitors = watch(&mut engine).await?;
    let done = engine.backfill().await;
    monitors.stop().await;
    let Some(name) = done? else {
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
    let config = monitored_config(&a.conn, None, Some(&a.monitor))?;
    let mut engine = engine(&a.conn, config).await?;
    let monitors = watch(&mut engine).await?;
    let validated = engine.validate(a.repair).await;
    monitors.stop().await;
    let Some(v) = validated? else {
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
    let config = monitored_config(&a.conn, Some(&a.batches), Some(&a.monitor))?;
    let mut engine = engine(&a.conn, config).await?;
    let monitors = watch(&mut engine).await?;
    let out = engine.migrate(&local, a.complete).await;
    monitors.stop().await;
    let out = out?;
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
    let s = Settings::resolve_with(&a.conn, Some(&a.batches), Some(&a.monitor))?;
    for c in &s.clamped {
        warn_clamped(c);
    }
    match a.format {
        Format::Json => line(render::settings_json(&s)?),
        Format::Text => render::print_settings(&s),
    }
    Ok(0)
}
