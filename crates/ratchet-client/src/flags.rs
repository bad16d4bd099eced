//! Feature flags as an application reads them: the *setting* of each flag (off, on, or a
//! percentage), read through the state schema's `flag_setting(name)` and kept for a short
//! time, and the answer for a key computed here with the same hash as SQL's `flag()`
//! ([`FlagSetting::answer`]). One query per flag and TTL instead of one per request, and
//! the same answers: a request served by this cache and one that asks `flag()` in SQL
//! agree for every key.
//!
//! Applications may not read the `flags` table (the state schema grants them only the
//! functions), which is why the setting comes from `flag_setting()`, a `SECURITY DEFINER`
//! function next to `flag()`. An unknown flag is off: a typo or a flag not created yet
//! keeps the old behaviour (fail closed).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

use crate::{Error, FlagSetting, Versioned};

/// How long a flag's setting is kept before it is read again: a change made with
/// `ratchet flags set` reaches every instance within this time.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

/// The settings read, per flag name, each kept for the TTL. Shared by the clones of a
/// [`Flags`]; usable on its own with [`read_setting`] for a client this crate does not
/// wrap.
#[derive(Debug)]
pub struct FlagCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, FlagSetting)>>,
}

impl FlagCache {
    /// A cache keeping each setting for `ttl` (zero: read every time).
    pub fn new(ttl: Duration) -> FlagCache {
        FlagCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The setting of `name` if it was read less than the TTL ago.
    pub fn get(&self, name: &str) -> Option<FlagSetting> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, setting) = entries.get(name)?;
        (at.elapsed() < self.ttl).then_some(*setting)
    }

    pub fn put(&self, name: &str, setting: FlagSetting) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(name.to_string(), (Instant::now(), setting));
    }

    /// Forget `name`: the next read asks the database.
    pub fn invalidate(&self, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(name);
    }

    pub fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.clear();
    }
}

/// The statement that reads one flag's setting.
pub(crate) fn setting_sql(state_schema: &str) -> String {
    format!(
        "SELECT state, percent FROM {}.flag_setting($1)",
        ratchet_sql::ident(state_schema)
    )
}

/// The setting `flag_setting()` returned: no row (an unknown flag) and a state this
/// crate does not know are off, as `flag()` answers them.
pub(crate) fn setting_from(row: Option<(String, i32)>) -> FlagSetting {
    row.map_or(FlagSetting::Off, |(state, percent)| {
        FlagSetting::from_columns(&state, percent)
    })
}

/// Read the setting of flag `name` now, without a cache, through `<state>.flag_setting`.
/// One statement, unnamed (no prepared statement is left on the session: works through
/// PgBouncer in transaction mode).
pub async fn read_setting(
    c: &impl GenericClient,
    state_schema: &str,
    name: &str,
) -> Result<FlagSetting, Error> {
    let row = c
        .query_typed_opt(&setting_sql(state_schema), &[(&name, Type::TEXT)])
        .await
        .map_err(|e| Error::state("reading a flag from the state schema", state_schema, e))?;
    Ok(setting_from(row.map(|r| (r.get(0), r.get(1)))))
}

/// Flag reads over one tokio-postgres client, with the settings cached for a TTL
/// ([`DEFAULT_TTL`]). Cheap to clone; the clones share client and cache.
///
/// ```no_run
/// # async fn f(client: std::sync::Arc<tokio_postgres::Client>, v: ratchet_client::Versioned)
/// # -> Result<(), ratchet_client::Error> {
/// let flags = v.flags(client);
/// if flags.flag("03_payment_status.read_new", Some("user-42")).await? {
///     // read the new column
/// }
/// // Or never fail a request over a flag: a database error gives the default.
/// let new = flags.flag_or("03_payment_status.read_new", Some("user-42"), false).await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Flags<S = Arc<Client>> {
    source: S,
    state_schema: Arc<str>,
    cache: Arc<FlagCache>,
}

/// Where a [`Flags`] reads a setting it has not cached: a tokio-postgres client
/// (`Arc<Client>`, the default), or with the `sqlx` feature an `sqlx::PgPool`
/// (`ratchet_client::sqlx::Flags`).
pub trait SettingSource: Send + Sync {
    /// The setting of flag `name` now, through `<state_schema>.flag_setting`.
    fn read<'a>(
        &'a self,
        state_schema: &'a str,
        name: &'a str,
    ) -> impl Future<Output = Result<FlagSetting, Error>> + Send + 'a;
}

impl SettingSource for Arc<Client> {
    fn read<'a>(
        &'a self,
        state_schema: &'a str,
        name: &'a str,
    ) -> impl Future<Output = Result<FlagSetting, Error>> + Send + 'a {
        read_setting(self.as_ref(), state_schema, name)
    }
}

impl<S> std::fmt::Debug for Flags<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flags")
            .field("state_schema", &self.state_schema)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl<S: SettingSource> Flags<S> {
    /// Flags of `v`'s state schema, read from `source`, kept [`DEFAULT_TTL`].
    pub fn new(source: S, v: &Versioned) -> Flags<S> {
        Flags {
            source,
            state_schema: v.state_schema().into(),
            cache: Arc::new(FlagCache::new(DEFAULT_TTL)),
        }
    }

    /// The same, each setting kept `ttl` (zero: read every time), with a cache of its
    /// own.
    pub fn with_ttl(self, ttl: Duration) -> Flags<S> {
        Flags {
            cache: Arc::new(FlagCache::new(ttl)),
            ..self
        }
    }

    pub fn cache(&self) -> &FlagCache {
        &self.cache
    }

    /// The setting of flag `name`: from the cache while fresh, else read (and kept).
    pub async fn setting(&self, name: &str) -> Result<FlagSetting, Error> {
        if let Some(s) = self.cache.get(name) {
            return Ok(s);
        }
        let s = self.source.read(&self.state_schema, name).await?;
        self.cache.put(name, s);
        Ok(s)
    }

    /// Whether flag `name` is on for `key`: what `<state>.flag(name, key)` answers in SQL
    /// (a percentage is off without a key; an unknown flag is off).
    pub async fn flag(&self, name: &str, key: Option<&str>) -> Result<bool, Error> {
        Ok(self.setting(name).await?.answer(name, key))
    }

    /// [`Self::flag`], with `default` when the setting cannot be read (logged as a
    /// warning).
    pub async fn flag_or(&self, name: &str, key: Option<&str>, default: bool) -> bool {
        match self.flag(name, key).await {
            Ok(on) => on,
            Err(e) => {
                tracing::warn!(flag = name, error = %e, "ratchet flag read failed; using the default {default}");
                default
            }
        }
    }
}

impl Versioned {
    /// [`Flags::new`] for this application's state schema.
    pub fn flags(&self, client: Arc<Client>) -> Flags {
        Flags::new(client, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_flags_and_states_are_off() {
        assert_eq!(setting_from(None), FlagSetting::Off);
        assert_eq!(setting_from(Some(("dunno".into(), 50))), FlagSetting::Off);
        assert_eq!(setting_from(Some(("on".into(), 0))), FlagSetting::On);
        assert_eq!(
            setting_from(Some(("percent".into(), 30))),
            FlagSetting::Percent(30)
        );
        assert_eq!(
            setting_from(Some(("percent".into(), 130))),
            FlagSetting::Percent(100)
        );
    }

    #[test]
    fn the_cache_keeps_a_setting_for_its_ttl_only() {
        let c = FlagCache::new(Duration::from_millis(50));
        assert_eq!(c.get("f"), None);
        c.put("f", FlagSetting::On);
        assert_eq!(c.get("f"), Some(FlagSetting::On));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("f"), None);
        c.put("f", FlagSetting::Off);
        c.invalidate("f");
        assert_eq!(c.get("f"), None);
        let none = FlagCache::new(Duration::ZERO);
        none.put("f", FlagSetting::On);
        assert_eq!(none.get("f"), None);
    }

    #[test]
    fn the_statement_names_the_state_schema_quoted() {
        assert_eq!(
            setting_sql("Ops"),
            r#"SELECT state, percent FROM "Ops".flag_setting($1)"#
        );
    }
}
