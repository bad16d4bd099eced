//! The engine commands: each resolves its settings (flags over `[engine]` over the
//! defaults), opens the engine, calls it, and hands the outcome to `render`.

use std::sync::Arc;

use anyhow::Context;
use ratchet_engine::backfill::{Throttle, Throttles};
use ratchet_engine::config::{BatchSetting, Clamped};
use ratchet_engine::control::{Change, ControlHandle, Controls, Setting};
use ratchet_engine::monitor::Monitors;
use ratchet_engine::state::EventFilter;
use ratchet_engine::{Config, Engine};

use super::args::{
    BackfillArgs, BackfillCmdArgs, CompleteArgs, ConfigArgs, ConnArgs, DoctorArgs, EventsArgs,
    Format, MigrateArgs, MonitorArgs, PauseArgs, PlanArgs, SetArgs, StartArgs, StatusArgs,
    ValidateArgs,
};
use super::observe::Observe;
use super::render;
use super::settings::Settings;
use crate::output::{line, warn, Progress};

/// The engine settings of a command, with a warning for each batch size the engine's
/// rule changed.
pub(super) fn config(conn: &ConnArgs, batches: Option<&BackfillArgs>) -> anyhow::Result<Config> {
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

pub(super) fn url(conn: &ConnArgs) -> anyhow::Result<&str> {
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
pub(super) async fn engine_read_only(conn: &ConnArgs, config: Config) -> anyhow::Result<Engine> {
    let url = url(conn)?;
    Ok(Engine::connect_read_only(url, config, Arc::new(Progress::new())).await?)
}

/// What runs beside the engine while a command works: the health monitors and the
/// operator's controls, each with a background task.
struct Watch {
    monitors: Monitors,
    _control: ControlHandle,
}

impl Watch {
    /// Stop the monitors (after the event row of a stop they decided); the controls'
    /// task ends with the handle.
    async fn stop(self) {
        self.monitors.stop().await;
    }
}

/// Install the hooks consulted between backfill batches, validation chunks and before
/// each DDL attempt, on an engine about to run steps. Every hook is added here, in one
/// list combined by `Throttles` (the most restrictive decision wins): the health
/// monitors, and the operator's controls (`ratchet pause`, `ratchet set`).
async fn watch(engine: &mut Engine, conn: &ConnArgs) -> anyhow::Result<Watch> {
    let (monitors, monitor_hook) = Monitors::start(
        engine.url(),
        &engine.config,
        engine.reporter(),
        engine.state().clone(),
    )
    .await?;
    let (control, control_hook) =
        Controls::start(url(conn)?, &engine.config, engine.reporter()).await?;
    let hooks: Vec<Arc<dyn Throttle>> = vec![monitor_hook, control_hook];
    engine.set_throttle(Arc::new(Throttles(hooks)));
    Ok(Watch {
        monitors,
        _control: control,
    })
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
    let (obs, mut engine) = observed(&a.conn, config, &a.observe).await?;
    let monitors = watch(&mut engine, &a.conn).await?;
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
    monitors.stop().await;
    Ok(0)
}

pub async fn complete(a: &CompleteArgs) -> anyhow::Result<i32> {
    let mut config = monitored_config(&a.conn, None, Some(&a.monitor))?;
    config.gates = super::gate_settings::resolve_for(&a.conn, &a.gates)?.config;
    let (obs, mut engine) = observed(&a.conn, config, &a.observe).await?;
    if a.skip_validation {
        warn("--skip-validation: completing without a passed validation; this is recorded in the event log");
    }
    if a.force {
        warn("--force: completing although reads may not be switched, the soak time may not have elapsed or old clients may still be seen; this is recorded in the event log");
    }
    obs.hint_engine(&engine).await;
    let monitors = watch(&mut engine, &a.conn).await?;
    let done = engine
        .complete_with(ratchet_engine::lifecycle::CompleteOptions {
            skip_validation: a.skip_validation,
            force: a.force,
            at_once: false,
        })
        .await
        .map_err(Into::into);
    monitors.stop().await;
    render::report_complete(obs.finish(done)?);
    Ok(0)
}

pub async fn backfill(a: &BackfillCmdArgs) -> anyhow::Result<i32> {
    let config = monitored_config(&a.conn, Some(&a.batches), Some(&a.monitor))?;
    let (obs, mut engine) = observed(&a.conn, config, &a.observe).await?;
    obs.hint_engine(&engine).await;
    let monitors = watch(&mut engine, &a.conn).await?;
    let done = engine.backfill().await.map_err(Into::into);
    monitors.stop().await;
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
    let config = monitored_config(&a.conn, None, Some(&a.monitor))?;
    let (obs, mut engine) = observed(&a.conn, config, &a.observe).await?;
    obs.hint_engine(&engine).await;
    let monitors = watch(&mut engine, &a.conn).await?;
    let validated = engine.validate(a.repair).await.map_err(Into::into);
    monitors.stop().await;
    let Some(v) = obs.finish(validated)? else {
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
    let (obs, mut engine) = observed(&a.conn, config, &a.observe).await?;
    let monitors = watch(&mut engine, &a.conn).await?;
    let out = engine.migrate(&local, a.complete).await.map_err(Into::into);
    monitors.stop().await;
    let out = obs.finish(out)?;
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
    let mut config = config(&a.conn, None)?;
    config.gates = super::gate_settings::resolve_for(&a.conn, &a.gates)?.config;
    let engine = engine_read_only(&a.conn, config).await?;
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

/// `ratchet doctor`: the capability table; exit 1 when something a migration needs is
/// missing. Writes nothing (no state schema, no lock).
pub async fn doctor(a: &DoctorArgs) -> anyhow::Result<i32> {
    let config = config(&a.conn, None)?;
    let report = ratchet_engine::doctor::probe_url(url(&a.conn)?, &config.schema).await?;
    match a.format {
        Format::Json => line(serde_json::to_string_pretty(&report)?),
        Format::Text => render::print_doctor(&report),
    }
    let missing = report
        .checks
        .iter()
        .any(|c| c.verdict == ratchet_engine::doctor::Verdict::Missing);
    Ok(i32::from(missing))
}

/// `ratchet config`: the settings every engine command would run with, and where each
/// comes from. Reads no database.
pub fn show_config(a: &ConfigArgs) -> anyhow::Result<i32> {
    let s = Settings::resolve_with(&a.conn, Some(&a.batches), Some(&a.monitor))?;
    for c in &s.clamped {
        warn_clamped(c);
    }
    let gates = super::gate_settings::resolve_for(&a.conn, &a.gates)?;
    match a.format {
        Format::Json => line(render::settings_json(&s, &gates)?),
        Format::Text => render::print_settings(&s, &gates),
    }
    Ok(0)
}

/// `ratchet pause`: stored in the state schema; the running process obeys it at its next
/// batch or DDL attempt.
pub async fn pause(a: &PauseArgs) -> anyhow::Result<i32> {
    let reason = a.reason.clone().filter(|r| !r.trim().is_empty());
    change_control(&a.conn, Change::Pause { reason }).await
}

pub async fn resume(a: &ConnArgs) -> anyhow::Result<i32> {
    change_control(a, Change::Resume).await
}

/// `ratchet set KEY VALUE`; without a key, the controls set now. A bad key or value is a
/// usage error (exit 2) that names what is accepted, and changes nothing.
pub async fn set(a: &SetArgs) -> anyhow::Result<i32> {
    let Some(key) = &a.key else {
        let engine = engine_read_only(&a.conn, config(&a.conn, None)?).await?;
        render::print_controls(&engine.controls().await?);
        return Ok(0);
    };
    let Some(setting) = Setting::parse(key) else {
        anyhow::bail!(
            "unknown setting `{key}`; `ratchet set` takes one of: {} (pause with `ratchet pause`)",
            Setting::names()
        );
    };
    let Some(value) = &a.value else {
        anyhow::bail!(
            "`ratchet set {setting}` needs a value: {}",
            Setting::value(setting, "").unwrap_err()
        );
    };
    let change = if value.trim() == "default" {
        Change::Reset(setting)
    } else {
        Change::Set(setting, setting.value(value).map_err(anyhow::Error::msg)?)
    };
    change_control(&a.conn, change).await
}

/// Make an operator's change on a read-only engine (no migration lock: the running
/// process holds it).
async fn change_control(conn: &ConnArgs, c: Change) -> anyhow::Result<i32> {
    let mut engine = engine_read_only(conn, config(conn, None)?).await?;
    let changed = engine.change_control(&c).await?;
    render::report_change(&c, &changed);
    Ok(0)
}

/// `ratchet events`: the event log, oldest first; `--follow` polls for new rows until
/// Ctrl-C.
pub async fn events(a: &EventsArgs) -> anyhow::Result<i32> {
    let engine = engine_read_only(&a.conn, config(&a.conn, None)?).await?;
    let mut filter = EventFilter {
        after: None,
        migration: a.migration.clone(),
        limit: a.limit,
        ..EventFilter::default()
    };
    loop {
        let rows = engine.events(&filter).await?;
        for e in &rows {
            match a.format {
                Format::Json => line(serde_json::to_string(e)?),
                Format::Text => line(render::event_line(e)),
            }
        }
        if !a.follow {
            return Ok(0);
        }
        filter.after = rows.last().map(|e| e.id).or(filter.after);
        filter.limit = None;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(0),
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
}
