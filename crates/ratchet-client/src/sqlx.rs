//! The same over sqlx (feature `sqlx`): the version selected for every connection of a
//! `PgPool` ([`connect_options`] in the startup packet, or [`after_connect`] with `SET`),
//! or per transaction ([`begin`], `SET LOCAL`: survives PgBouncer's transaction pooling);
//! cached flag reads ([`Flags`]) and the heartbeat ([`heartbeat`]) over the pool.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use ratchet_client::{sqlx as rc, Versioned};
//! use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
//!
//! let v = Versioned::builder("billing").from_env().build()?;
//! let options: PgConnectOptions = "postgres://app@db/shop".parse()?;
//! let pool = PgPoolOptions::new()
//!     .connect_with(rc::connect_options(&v, options))
//!     .await?;
//! rc::verify(&v, &pool).await?;
//! let _heartbeat = rc::heartbeat(&v, pool.clone(), ratchet_client::heartbeat::DEFAULT_INTERVAL);
//! let flags = rc::Flags::new(pool.clone(), &v);
//! let new = flags.flag_or("02_status.read_new", Some("customer-42"), false).await;
//! # Ok(()) }
//! ```
//!
//! Statements run with `persistent(false)` (unnamed): no prepared statement is left on
//! a server session, so they also work through PgBouncer in transaction mode.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ::sqlx::pool::PoolConnectionMetadata;
use ::sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, Postgres};
use ::sqlx::{Executor, Transaction};

use crate::flags::{setting_from, setting_sql};
use crate::heartbeat::{spawn, Beat, Heartbeat};
use crate::version::escape_option;
use crate::{Error, FlagSetting, Versioned};

/// `options` with the version selected in the startup packet of every connection
/// (`-c search_path=…`, kept beside options already there) and `application_name` set to
/// the application's name unless one is set. See [`Versioned::configure`] for where this
/// works and where it does not.
pub fn connect_options(v: &Versioned, options: PgConnectOptions) -> PgConnectOptions {
    let options = options.options([("search_path", escape_option(&v.search_path()))]);
    match options.get_application_name() {
        Some(_) => options,
        None => options.application_name(v.app()),
    }
}

/// The future an `after_connect` hook returns.
pub type HookFuture<'c> = Pin<Box<dyn Future<Output = Result<(), ::sqlx::Error>> + Send + 'c>>;

/// A hook for `PgPoolOptions::after_connect` that selects the version with `SET
/// search_path` on every new connection of the pool: for a server reached through
/// something that drops the `options` startup parameter, in session mode.
///
/// ```no_run
/// # async fn run(v: ratchet_client::Versioned) -> Result<(), sqlx::Error> {
/// let pool = sqlx::postgres::PgPoolOptions::new()
///     .after_connect(ratchet_client::sqlx::after_connect(&v))
///     .connect("postgres://app@db/shop")
///     .await?;
/// # Ok(()) }
/// ```
pub fn after_connect(
    v: &Versioned,
) -> impl for<'c> Fn(&'c mut PgConnection, PoolConnectionMetadata) -> HookFuture<'c>
       + Send
       + Sync
       + 'static {
    let sql: Arc<str> = format!("SET search_path TO {}", v.search_path()).into();
    move |conn: &mut PgConnection, _meta: PoolConnectionMetadata| -> HookFuture<'_> {
        let sql = sql.clone();
        Box::pin(async move {
            conn.execute(::sqlx::raw_sql(&sql)).await?;
            Ok(())
        })
    }
}

/// Begin a transaction on `pool` with the version selected (`SET LOCAL search_path`):
/// the way through PgBouncer in transaction mode.
pub async fn begin(v: &Versioned, pool: &PgPool) -> Result<Transaction<'static, Postgres>, Error> {
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| Error::sqlx("beginning a transaction", e))?;
    set_local(v, &mut tx).await?;
    Ok(tx)
}

/// `SET LOCAL search_path` in the transaction `tx`.
pub async fn set_local(v: &Versioned, tx: &mut PgConnection) -> Result<(), Error> {
    let sql = format!("SET LOCAL search_path TO {}", v.search_path());
    tx.execute(::sqlx::raw_sql(&sql))
        .await
        .map_err(|e| Error::sqlx("setting the search_path of the transaction", e))?;
    Ok(())
}

/// [`Versioned::verify`] over sqlx: the version schema exists and the session's
/// `search_path` starts with it.
pub async fn verify<'c>(
    v: &Versioned,
    e: impl Executor<'c, Database = Postgres>,
) -> Result<(), Error> {
    let expected: Vec<String> = v
        .search_path_schemas()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (exists, found): (bool, Vec<String>) = ::sqlx::query_as(
        "SELECT $1::text IS NULL OR to_regnamespace(quote_ident($1)) IS NOT NULL,
                current_schemas(false)::text[]",
    )
    .bind(v.version_schema())
    .persistent(false)
    .fetch_one(e)
    .await
    .map_err(|e| Error::sqlx("checking the search_path", e))?;
    if !exists {
        return Err(Error::VersionSchemaMissing(v.version().to_string()));
    }
    if !found.starts_with(&expected) {
        return Err(Error::SearchPathNotApplied { expected, found });
    }
    Ok(())
}

/// Read the setting of flag `name` now, without a cache ([`crate::read_setting`] over
/// sqlx).
pub async fn read_setting<'c>(
    e: impl Executor<'c, Database = Postgres>,
    state_schema: &str,
    name: &str,
) -> Result<FlagSetting, Error> {
    let row: Option<(String, i32)> = ::sqlx::query_as(&setting_sql(state_schema))
        .bind(name)
        .persistent(false)
        .fetch_optional(e)
        .await
        .map_err(|e| Error::sqlx_state("reading a flag from the state schema", state_schema, e))?;
    Ok(setting_from(row))
}

/// [`crate::Flags`] over a pool: settings cached for a TTL
/// ([`DEFAULT_TTL`](crate::flags::DEFAULT_TTL)), answers computed with `flag()`'s hash.
/// Cheap to clone; the clones share pool and cache.
pub type Flags = crate::Flags<PgPool>;

impl crate::SettingSource for PgPool {
    fn read<'a>(
        &'a self,
        state_schema: &'a str,
        name: &'a str,
    ) -> impl Future<Output = Result<FlagSetting, Error>> + Send + 'a {
        read_setting(self, state_schema, name)
    }
}

/// Send one heartbeat now over `e`.
pub async fn send_heartbeat<'c>(
    v: &Versioned,
    e: impl Executor<'c, Database = Postgres>,
) -> Result<(), Error> {
    let sql = format!(
        "SELECT {}.heartbeat($1, $2, $3)",
        ratchet_sql::ident(v.state_schema())
    );
    ::sqlx::query(&sql)
        .bind(v.app())
        .bind(v.instance())
        .bind(v.version())
        .persistent(false)
        .execute(e)
        .await
        .map_err(|e| {
            Error::sqlx_state(
                "sending the heartbeat to the state schema",
                v.state_schema(),
                e,
            )
        })?;
    Ok(())
}

struct PoolBeat {
    v: Versioned,
    pool: PgPool,
}

impl Beat for PoolBeat {
    fn beat(&mut self) -> impl Future<Output = Result<(), Error>> + Send + '_ {
        send_heartbeat(&self.v, &self.pool)
    }
}

/// Heartbeats over `pool`, one now and one every `interval`, until the handle is
/// dropped ([`Versioned::heartbeat`] over sqlx).
pub fn heartbeat(v: &Versioned, pool: PgPool, interval: Duration) -> Heartbeat {
    spawn(v, interval, PoolBeat { v: v.clone(), pool })
}
