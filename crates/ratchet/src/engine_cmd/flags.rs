//! `ratchet flags`, `freeze`, `unfreeze`, `clients` and `url`: the read switch, the
//! change freeze, the application fleet and how an application selects its version.
//! Like `pause` and `set`, they work on a read-only engine (no migration lock), while
//! another process runs a migration.

use ratchet_engine::gates::{human, ClientVersion, Clients};
use ratchet_engine::state::{Flag, FlagSetting};

use super::args::{ConnArgs, Format};
use super::commands::{config, engine_read_only, url};
use super::gate_settings::{self, GateArgs};
use super::render::event_line;
use crate::output::{line, warn};

/// `ratchet flags …`
#[derive(clap::Args, Debug)]
pub struct FlagsArgs {
    #[command(subcommand)]
    pub command: FlagsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum FlagsCommand {
    /// Every flag of the schema with its setting, owner and last change.
    List(FlagsListArgs),
    /// One flag.
    Get(FlagNameArgs),
    /// Set a flag: on, off, or a percentage of keys (e.g. 10%). Raising the read flag
    /// of a migration is refused until its backfill is finished and validated.
    Set(FlagSetArgs),
    /// Every change of one flag (or of all), with who and when.
    History(FlagHistoryArgs),
}

#[derive(clap::Args, Debug)]
pub struct FlagsListArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct FlagNameArgs {
    /// The flag's name, e.g. `03_payment_status.read_new`.
    pub name: String,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct FlagSetArgs {
    /// The flag's name.
    pub name: String,
    /// on, off, or a percentage from 0 to 100 (`30` or `30%`): on for that share of keys,
    /// by a stable hash of the key the application passes.
    pub value: String,
    /// Raise the flag although its migration's backfill is not validated. Loud, and
    /// recorded in the event log.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub struct FlagHistoryArgs {
    /// Only this flag's changes.
    pub name: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `ratchet freeze`
#[derive(clap::Args, Debug)]
pub struct FreezeArgs {
    /// Why: shown by `status` and in every refusal while the freeze stands.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `ratchet clients`
#[derive(clap::Args, Debug)]
pub struct ClientsArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub gates: GateArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `ratchet url`
#[derive(clap::Args, Debug)]
pub struct UrlArgs {
    /// The version to select: a migration name, a version schema, or `latest` (the one
    /// `ratchet status` says applications should use now).
    #[arg(long, default_value = "latest")]
    pub version: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

pub async fn flags(a: &FlagsArgs) -> anyhow::Result<i32> {
    match &a.command {
        FlagsCommand::List(a) => {
            let engine = engine_read_only(&a.conn, config(&a.conn, None)?).await?;
            let flags = engine.flags().await?;
            match a.format {
                Format::Json => line(serde_json::to_string_pretty(&flags)?),
                Format::Text if flags.is_empty() => {
                    line("no flags (migrations that backfill create theirs at `start`)")
                }
                Format::Text => {
                    line(format!(
                        "{:<40} {:<8} {:<28} {:<6} {}",
                        "FLAG", "SETTING", "MIGRATION", "GATES", "LAST SET"
                    ));
                    for f in &flags {
                        line(flag_row(f));
                    }
                }
            }
            Ok(0)
        }
        FlagsCommand::Get(a) => {
            let engine = engine_read_only(&a.conn, config(&a.conn, None)?).await?;
            let Some(f) = engine.flag(&a.name).await? else {
                anyhow::bail!(
                    "there is no flag `{}`; `ratchet flags list` shows them",
                    a.name
                );
            };
            match a.format {
                Format::Json => line(serde_json::to_string_pretty(&f)?),
                Format::Text => line(flag_row(&f)),
            }
            Ok(0)
        }
        FlagsCommand::Set(a) => {
            let setting = FlagSetting::parse(&a.value).map_err(anyhow::Error::msg)?;
            let mut engine = engine_read_only(&a.conn, config(&a.conn, None)?).await?;
            let out = engine.set_flag(&a.name, setting, a.force).await?;
            match a.format {
                Format::Json => line(serde_json::to_string(&out)?),
                Format::Text if !out.changed => {
                    line(format!("{} is already {}", out.flag, out.new))
                }
                Format::Text => {
                    if let Some(why) = &out.forced {
                        warn(&format!("--force: {why}; recorded in the event log"));
                    }
                    line(format!("{}: {} -> {}", out.flag, out.old, out.new))
                }
            }
            Ok(0)
        }
        FlagsCommand::History(a) => {
            let engine = engine_read_only(&a.conn, config(&a.conn, None)?).await?;
            for e in engine.flag_history(a.name.as_deref()).await? {
                match a.format {
                    Format::Json => line(serde_json::to_string(&e)?),
                    Format::Text => line(event_line(&e)),
                }
            }
            Ok(0)
        }
    }
}

fn flag_row(f: &Flag) -> String {
    let by = match &f.host {
        Some(h) => format!("{}@{h}", f.set_by),
        None => f.set_by.clone(),
    };
    format!(
        "{:<40} {:<8} {:<28} {:<6} {} by {by} ({} ago)",
        f.name,
        f.setting.to_string(),
        f.migration.as_deref().unwrap_or("-"),
        if f.gates_complete { "yes" } else { "no" },
        f.set_at,
        human(f.age_s)
    )
}

pub async fn freeze(a: &FreezeArgs) -> anyhow::Result<i32> {
    let reason = a.reason.trim();
    if reason.is_empty() {
        anyhow::bail!("`ratchet freeze` needs a reason (--reason \"…\"): every refusal shows it");
    }
    let mut engine = engine_read_only(&a.conn, config(&a.conn, None)?).await?;
    engine.freeze(reason).await?;
    line(format!(
        "frozen: start, migrate and complete refuse until `ratchet unfreeze` (reason: {reason})"
    ));
    Ok(0)
}

pub async fn unfreeze(a: &ConnArgs) -> anyhow::Result<i32> {
    let mut engine = engine_read_only(a, config(a, None)?).await?;
    if engine.unfreeze().await? {
        line("unfrozen: changes may go ahead");
    } else {
        line("nothing was frozen");
    }
    Ok(0)
}

pub async fn clients(a: &ClientsArgs) -> anyhow::Result<i32> {
    let mut cfg = config(&a.conn, None)?;
    cfg.gates = gate_settings::resolve_for(&a.conn, &a.gates)?.config;
    let engine = engine_read_only(&a.conn, cfg).await?;
    let c = engine.clients().await?;
    match a.format {
        Format::Json => line(serde_json::to_string_pretty(&c)?),
        Format::Text => print_clients(&c),
    }
    Ok(0)
}

fn print_clients(c: &Clients) {
    match &c.migration {
        Some(m) => line(format!(
            "judged against migration {m}; silent for {} = gone",
            human(c.client_timeout_s)
        )),
        None => line("no migration yet"),
    }
    if c.instances.is_empty() {
        line("no application instance has sent a heartbeat (`SELECT ratchet.heartbeat(app, instance, version)`)");
    } else {
        line(format!(
            "{:<20} {:<24} {:<32} {:<12} {}",
            "APP", "INSTANCE", "VERSION", "VERSION IS", "LAST SEEN"
        ));
    }
    for i in &c.instances {
        let judged = match i.judged {
            ClientVersion::Current => "current",
            ClientVersion::Old => "OLD",
            ClientVersion::BaseTables => "base tables",
            ClientVersion::OtherSchema => "other schema",
            ClientVersion::Unknown => "UNKNOWN",
        };
        line(format!(
            "{:<20} {:<24} {:<32} {:<12} {} ago{}",
            i.row.app,
            i.row.instance,
            i.row.version,
            judged,
            human(i.row.seen_s),
            if i.gone { " (gone)" } else { "" }
        ));
    }
    for s in &c.sessions {
        line(format!(
            "sessions using {} ({}) right now: {}",
            s.version_schema, s.migration, s.sessions
        ));
    }
}

/// `ratchet url --version X`: the connection URL with `options=-c search_path=<version
/// schema>,<schema>`, for applications in any language (libpq and most drivers pass the
/// `options` startup parameter through).
pub async fn print_url(a: &UrlArgs) -> anyhow::Result<i32> {
    let cfg = config(&a.conn, None)?;
    let schema = cfg.schema.clone();
    let engine = engine_read_only(&a.conn, cfg).await?;
    let st = engine.status().await?;
    let version = if a.version == "latest" {
        st.version_schema.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "no version schema exists yet: applications use the tables of `{schema}` directly"
            )
        })?
    } else {
        let found = st
            .history
            .iter()
            .find(|h| h.name == a.version || h.version_schema == a.version);
        match found {
            Some(h) => h.version_schema.clone(),
            None => {
                let known: Vec<String> = st.history.iter().map(|h| h.name.clone()).collect();
                let hint = ratchet_spec::closest(&a.version, &known)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                anyhow::bail!(
                    "`{}` is neither a migration nor a version schema of `{schema}`{hint}; `ratchet status` lists them",
                    a.version
                )
            }
        }
    };
    line(with_search_path(url(&a.conn)?, &[&version, &schema])?);
    Ok(0)
}

/// `url` with `options=-c search_path=…` (a URL, or a `key=value` connection string).
pub fn with_search_path(conn: &str, schemas: &[&str]) -> anyhow::Result<String> {
    let path: Vec<String> = schemas
        .iter()
        .map(|s| ratchet_engine::sql::ident(s))
        .collect();
    // The `options` value is split at spaces; a backslash escapes one.
    let option = format!("-c search_path={}", path.join(","))
        .replace('\\', "\\\\")
        .replace(' ', "\\ ")
        .replacen("-c\\ ", "-c ", 1);
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let mut u = url::Url::parse(conn)
            .map_err(|e| anyhow::anyhow!("the database URL does not parse: {e}"))?;
        // Percent-encoded (a space as %20): libpq and tokio-postgres do not read `+` as a
        // space, as form encoding would write it.
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut query: Vec<String> = u
            .query_pairs()
            .filter(|(k, _)| k != "options")
            .map(|(k, v)| format!("{}={}", enc(&k), enc(&v)))
            .collect();
        query.push(format!("options={}", enc(&option)));
        u.set_query(Some(&query.join("&")));
        Ok(u.to_string())
    } else {
        let quoted = option.replace('\\', "\\\\").replace('\'', "\\'");
        Ok(format!("{conn} options='{quoted}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::with_search_path;

    #[test]
    fn urls_get_the_search_path_option() {
        let u = with_search_path(
            "postgres://u@h:5432/db?sslmode=disable",
            &["public_02_x", "public"],
        )
        .unwrap();
        assert_eq!(
            u,
            "postgres://u@h:5432/db?sslmode=disable&options=%2Dc%20search%5Fpath%3D%22public%5F02%5Fx%22%2C%22public%22"
        );
        let kv = with_search_path("host=h dbname=db", &["v2", "app"]).unwrap();
        assert_eq!(
            kv,
            "host=h dbname=db options='-c search_path=\"v2\",\"app\"'"
        );
    }
}
