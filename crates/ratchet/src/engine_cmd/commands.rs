//! The engine commands: init, plan, start, complete, abort, migrate, status.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ratchet_engine::{Config, Engine, EngineError, Phase, Plan};

use crate::output::{line, Progress};

/// Connection options shared by every command that talks to the database.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnArgs {
    /// PostgreSQL connection URL, e.g. postgres://user@host:5432/db.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The application schema to manage.
    #[arg(long, default_value = "public")]
    pub schema: String,
    /// Where ratchet keeps its state (migrations, steps, events).
    #[arg(long, default_value = "ratchet")]
    pub state_schema: String,
    /// lock_timeout of every DDL statement (e.g. 500ms, 2s); on timeout the statement is
    /// retried with backoff instead of waiting and blocking the queries behind it.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Attempts per step on lock timeout or deadlock before giving up.
    #[arg(long, default_value_t = 30)]
    pub max_attempts: u32,
    /// How long to wait for another ratchet process to finish (e.g. 30s, 5m; 0: refuse at
    /// once). The default also covers a previous run whose connection the server is still
    /// closing.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub wait: Duration,
}

/// Backfill batch sizing.
#[derive(clap::Args, Debug, Clone)]
pub struct BackfillArgs {
    /// The duration each backfill batch should take (e.g. 200ms, 1s); the batch size
    /// adapts to it.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub batch_target: Duration,
    /// Smallest backfill batch, in rows.
    #[arg(long, default_value_t = 10)]
    pub batch_min: i64,
    /// Largest backfill batch, in rows.
    #[arg(long, default_value_t = 100_000)]
    pub batch_max: i64,
    /// Sessions filling a table at once, each on its own slice of the key range. More
    /// workers finish sooner and load the server more; a resumed backfill may use more
    /// workers than it started with.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub backfill_workers: u16,
}

impl BackfillArgs {
    fn apply(&self, cfg: &mut Config) {
        cfg.backfill.target = self.batch_target;
        cfg.backfill.min = self.batch_min.max(1);
        cfg.backfill.max = self.batch_max.max(cfg.backfill.min);
        cfg.backfill.workers = usize::from(self.backfill_workers);
        cfg.backfill.initial = cfg
            .backfill
            .initial
            .clamp(cfg.backfill.min, cfg.backfill.max);
    }
}

#[derive(clap::Args, Debug)]
pub struct CompleteArgs {
    /// Complete even though the latest validation is missing or failed. Loud, and recorded
    /// in the event log.
    #[arg(long)]
    pub skip_validation: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct BackfillCmdArgs {
    #[command(flatten)]
    pub batches: BackfillArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Recompute the mismatching rows from `up`.
    #[arg(long)]
    pub repair: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The migration file (YAML, JSON or TOML).
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// The migration file (YAML, JSON or TOML).
    pub file: PathBuf,
    /// Complete the migration right after starting it (validating backfills first).
    #[arg(long)]
    pub complete: bool,
    /// Leave the backfill (and the version schema, created once the new columns are
    /// filled) for `ratchet backfill` instead of running it now.
    #[arg(long)]
    pub no_backfill: bool,
    #[command(flatten)]
    pub batches: BackfillArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// Folder of migration files, applied in file-name order.
    pub dir: PathBuf,
    /// Complete the last migration too (the others are always completed).
    #[arg(long)]
    pub complete: bool,
    #[command(flatten)]
    pub batches: BackfillArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `500ms`, `2s`, `1m`; a number without a unit is refused (was it seconds or
/// milliseconds? `--wait 1` used to mean 1 ms, issue 9). `0` needs no unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let Some(i) = s.find(|c: char| !c.is_ascii_digit() && c != '.') else {
        if s.parse::<f64>() == Ok(0.0) {
            return Ok(Duration::ZERO);
        }
        return Err(format!(
            "`{s}` has no unit: write {s}s for seconds or {s}ms for milliseconds"
        ));
    };
    let (num, unit) = (&s[..i], s[i..].trim());
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 500ms, 2s, 1m)"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000.0,
        "m" | "min" => n * 60_000.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s or m)")),
    };
    Ok(Duration::from_millis(ms as u64))
}

/// 1 for refusals (gates, validations, another runner), 2 for everything else: usage,
/// a bad migration file (its shape, its SQL, or what it refers to), configuration,
/// database errors.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<EngineError>() {
        Some(engine) if engine.is_refusal() => 1,
        _ => 2,
    }
}

impl ConnArgs {
    fn config(&self) -> Config {
        Config {
            schema: self.schema.clone(),
            state_schema: self.state_schema.clone(),
            lock_timeout: self.lock_timeout,
            max_attempts: self.max_attempts,
            lock_wait: self.wait,
            ..Config::default()
        }
    }

    pub async fn engine(&self) -> anyhow::Result<Engine> {
        self.engine_with(|_| {}).await
    }

    /// An engine for a command that only reads (`status`, `plan`): it never takes the
    /// migration lock, so it answers at once while another process runs a migration.
    pub async fn engine_read_only(&self) -> anyhow::Result<Engine> {
        let url = self.url()?;
        Ok(Engine::connect_read_only(url, self.config(), Arc::new(Progress::new())).await?)
    }

    fn url(&self) -> anyhow::Result<&str> {
        let Some(url) = &self.database_url else {
            anyhow::bail!(
                "no database given: pass --database-url or set DATABASE_URL \
                 (try `ratchet demo` to see ratchet work on a throwaway cluster)"
            );
        };
        Ok(url)
    }

    pub async fn engine_with(&self, tune: impl FnOnce(&mut Config)) -> anyhow::Result<Engine> {
        let mut config = self.config();
        tune(&mut config);
        let url = self.url()?;
        Ok(Engine::connect(url, config, Arc::new(Progress::new())).await?)
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<ratchet_spec::Migration> {
    Ok(ratchet_spec::load_file(path)?)
}

pub async fn init(a: &ConnArgs) -> anyhow::Result<i32> {
    a.engine().await?;
    line(format!("state schema `{}` is ready", a.state_schema));
    Ok(0)
}

pub async fn plan(a: &PlanArgs) -> anyhow::Result<i32> {
    let m = load(&a.file)?;
    let engine = a.conn.engine_read_only().await?;
    let plan = engine.plan(&m).await?;
    match a.format {
        Format::Json => line(serde_json::to_string_pretty(&plan)?),
        Format::Text => print_plan(&plan),
    }
    Ok(0)
}

/// The plan grouped by phase, each statement with the locks it takes.
pub fn print_plan(plan: &Plan) {
    for w in &plan.warnings {
        crate::output::warn(w);
    }
    line(format!(
        "migration {} (schema {}, version schema {})",
        plan.migration, plan.schema, plan.version_schema
    ));
    for phase in [Phase::Start, Phase::Complete, Phase::Abort] {
        line(format!("\n{}:", phase.as_str()));
        for (i, step) in plan.steps_of(phase) {
            line(format!("  #{i} {}", step.description));
            for s in step.statements() {
                for (n, l) in s.sql.lines().enumerate() {
                    line(format!("      {}{l}", if n == 0 { "" } else { "  " }));
                }
                if s.locks.is_empty() {
                    line("        lock: none on existing tables");
                }
                for lock in &s.locks {
                    line(format!("        lock: {} on {}", lock.mode, lock.on));
                }
            }
        }
    }
}

pub async fn start(a: &StartArgs) -> anyhow::Result<i32> {
    let m = load(&a.file)?;
    let mut engine = a
        .conn
        .engine_with(|c| {
            a.batches.apply(c);
            c.run_backfill = !a.no_backfill;
            c.completes_at_once = a.complete;
        })
        .await?;
    let out = engine
        .start(&m)
        .await
        .with_context(|| format!("starting {}", a.file.display()))?;
    if out.already_completed {
        line(format!(
            "{} was already applied; nothing to do",
            out.migration
        ));
    } else {
        line(format!("started {}", out.migration));
    }
    if out.backfill_left {
        line(format!(
            "the backfill is left for later: run `ratchet backfill`; it creates the version schema {} when the new columns are filled (deploy the new application after that)",
            out.version_schema
        ));
        return Ok(0);
    }
    line(format!(
        "applications of the new version use: SET search_path TO {}",
        out.version_schema
    ));
    if a.complete && !out.already_completed {
        report_complete(engine.validate_and_complete().await?);
    }
    Ok(0)
}

fn report_complete(out: Option<ratchet_engine::StartOutcome>) {
    match out {
        Some(out) => {
            line(format!(
                "completed {}; version schema {} is now the only one",
                out.migration, out.version_schema
            ));
            if let Some(old) = &out.dropped_version_schema {
                line(format!(
                    "dropped {old}: an application still on it with `search_path = {old}, public` now reads and writes the base tables directly; move every application to {} first",
                    out.version_schema
                ));
            }
        }
        None => line("no active migration; nothing to complete"),
    }
}

pub async fn complete(a: &CompleteArgs) -> anyhow::Result<i32> {
    let mut engine = a.conn.engine().await?;
    if a.skip_validation {
        crate::output::warn(
            "--skip-validation: completing without a passed validation; this is recorded in the event log",
        );
    }
    report_complete(engine.complete_with(a.skip_validation).await?);
    Ok(0)
}

pub async fn backfill(a: &BackfillCmdArgs) -> anyhow::Result<i32> {
    let mut engine = a.conn.engine_with(|c| a.batches.apply(c)).await?;
    match engine.backfill().await? {
        Some(name) => {
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
        }
        None => line("no active migration; nothing to backfill"),
    }
    Ok(0)
}

pub async fn validate(a: &ValidateArgs) -> anyhow::Result<i32> {
    let mut engine = a.conn.engine().await?;
    let Some(v) = engine.validate(a.repair).await? else {
        line("nothing to validate (no active migration with a backfill)");
        return Ok(0);
    };
    if a.format == Format::Json {
        line(serde_json::to_string_pretty(&v)?);
    } else {
        line(format!(
            "checked {} rows: {} mismatch(es), {} repaired — {}",
            v.rows_checked,
            v.mismatches,
            v.repaired,
            if v.passed { "passed" } else { "FAILED" }
        ));
        for s in &v.samples {
            line(format!("  mismatch: {s}"));
        }
        for n in &v.notes {
            line(format!("  note: {n}"));
        }
    }
    Ok(if v.passed { 0 } else { 1 })
}

pub async fn abort(a: &ConnArgs) -> anyhow::Result<i32> {
    let mut engine = a.engine().await?;
    match engine.abort().await? {
        Some(name) => line(format!(
            "aborted {name}; everything its start added is gone"
        )),
        None => line("no active migration; nothing to abort"),
    }
    Ok(0)
}

pub async fn grants(a: &ConnArgs) -> anyhow::Result<i32> {
    let engine = a.engine().await?;
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
    let mut engine = a.conn.engine_with(|c| a.batches.apply(c)).await?;
    let out = engine.migrate(&local, a.complete).await?;
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
    let engine = a.conn.engine_read_only().await?;
    let st = engine.status().await?;
    // Read from the stored cursors, which each batch commits: a running backfill's live
    // progress, seen from another terminal.
    let backfills = match &st.active {
        Some(_) => engine.backfill_progress().await?,
        None => vec![],
    };
    if a.format == Format::Json {
        let mut v = serde_json::to_value(&st)?;
        if let Some(active) = v.get_mut("active").and_then(|a| a.as_object_mut()) {
            active.insert("backfills".into(), serde_json::to_value(&backfills)?);
        }
        line(serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    line(format!("schema: {}", st.schema));
    line(format!(
        "version schema: {}",
        st.version_schema
            .as_deref()
            .unwrap_or("(none yet: applications use the tables)")
    ));
    if let Some(p) = &st.pending_version_schema {
        line(format!(
            "pending version schema: {p} (not usable yet: its start has not built the views)"
        ));
    }
    match &st.active {
        Some(act) => {
            line(format!("active: {} ({})", act.name, act.phase));
            for w in &act.warnings {
                line(format!("  warning: {w}"));
            }
            for p in &backfills {
                let total = p
                    .rows_total
                    .map(|t| format!(" of ~{t}"))
                    .unwrap_or_default();
                let slices = if p.slices > 1 {
                    format!(", {} slices ({} done)", p.slices, p.slices_done)
                } else {
                    String::new()
                };
                line(format!(
                    "  backfill {}: {} rows{total}{slices}{}",
                    p.table,
                    p.rows_done,
                    if p.done { ", done" } else { "" }
                ));
            }
            for s in &act.steps {
                line(format!(
                    "  [{}] {} #{} {}",
                    if s.done { "x" } else { " " },
                    s.phase.as_str(),
                    s.index,
                    s.description
                ));
            }
        }
        None => line("active: none"),
    }
    line(format!("history ({}):", st.history.len()));
    for h in &st.history {
        line(format!(
            "  {} {} ({})",
            if h.done { "✓" } else { "…" },
            h.name,
            h.phase
        ));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("250").unwrap_err().contains("250ms"));
        assert!(parse_duration("fast").is_err());
    }
}
