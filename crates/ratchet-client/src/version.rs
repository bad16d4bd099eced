//! Which version of the schema an application uses, and how its sessions select it.
//!
//! ratchet publishes every version of the schema as a *version schema* of views
//! (`public_02_status`); an application selects the one it was built for with
//! `search_path = <version schema>, <schema>` and then names its tables unqualified. Two
//! ways to set it, for two kinds of connection:
//!
//! - once per session, in the startup packet ([`Versioned::configure`]: the `options`
//!   parameter `-c search_path=…`) or with `SET` ([`Versioned::set_session`]), for direct
//!   connections and session pooling;
//! - once per transaction ([`Versioned::transaction`], [`Versioned::set_local`]: `SET
//!   LOCAL`), which survives transaction pooling, where consecutive transactions of one
//!   client run on different server sessions.
//!
//! PostgreSQL skips a schema of the `search_path` that does not exist without a word, so an
//! application deployed before its version schema is published would silently use the
//! base tables: [`Versioned::verify`] checks, once at start-up, that the version schema
//! exists and that the session really uses it.

use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::Error;

/// The version schema the application was built for, at run time.
pub const VERSION_SCHEMA_ENV: &str = "RATCHET_VERSION_SCHEMA";
/// The managed (base) schema, default `public`.
pub const SCHEMA_ENV: &str = "RATCHET_SCHEMA";
/// ratchet's state schema, default `ratchet`.
pub const STATE_SCHEMA_ENV: &str = "RATCHET_STATE_SCHEMA";
/// This instance's id in the heartbeat, default `<hostname>:<pid>`.
pub const INSTANCE_ENV: &str = "RATCHET_INSTANCE";

/// The longest application name or instance id the state schema keeps (`clients`).
const MAX_LABEL: usize = 200;

/// How one application selects its version, and who it is in the heartbeat. Built with
/// [`Versioned::builder`]; cheap to clone.
///
/// ```
/// let v = ratchet_client::Versioned::builder("billing")
///     .version_schema("public_02_status")
///     .instance("web-1")
///     .build()
///     .unwrap();
/// assert_eq!(v.search_path(), r#""public_02_status","public""#);
/// assert_eq!(v.version(), "public_02_status");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    version_schema: Option<String>,
    /// The version schema alone on the `search_path`, without the schema after it.
    alone: bool,
    schema: String,
    state_schema: String,
    app: String,
    instance: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Version {
    Schema(String),
    BaseTables,
}

/// Settings of a [`Versioned`]. What the code sets wins; [`VersionedBuilder::from_env`]
/// fills in what it left unset; the rest has defaults (schema `public`, state schema
/// `ratchet`, instance `<hostname>:<pid>`). The version itself has no default.
#[derive(Debug, Clone, Default)]
pub struct VersionedBuilder {
    app: String,
    version: Option<Version>,
    alone: bool,
    schema: Option<String>,
    state_schema: Option<String>,
    instance: Option<String>,
}

impl VersionedBuilder {
    /// The version schema the application was built for, e.g. `public_02_status`. A
    /// constant is the safest source: the build pins it, so a binary cannot run against
    /// another version by a configuration mistake. With a build script:
    ///
    /// ```ignore
    /// // build.rs: fail the build when the version is not given.
    /// fn main() {
    ///     println!("cargo:rerun-if-env-changed=RATCHET_VERSION_SCHEMA");
    ///     let v = std::env::var("RATCHET_VERSION_SCHEMA").expect("RATCHET_VERSION_SCHEMA");
    ///     println!("cargo:rustc-env=RATCHET_VERSION_SCHEMA={v}");
    /// }
    /// // src/main.rs
    /// let v = Versioned::builder("billing").version_schema(env!("RATCHET_VERSION_SCHEMA"));
    /// ```
    pub fn version_schema(mut self, version_schema: impl Into<String>) -> Self {
        self.version = Some(Version::Schema(version_schema.into()));
        self
    }

    /// Use the base tables themselves (`search_path = <schema>`): an application written
    /// before its first versioned migration. Its heartbeat reports the schema's name,
    /// which `ratchet clients` shows as the base tables.
    pub fn base_tables(mut self) -> Self {
        self.version = Some(Version::BaseTables);
        self
    }

    /// Put the version schema alone on the `search_path` (default: the version schema,
    /// then the schema, as `ratchet url --version` does). Alone, a query of an instance
    /// still running after `ratchet complete` dropped its version fails (`relation
    /// "…" does not exist`, 42P01) instead of reaching the changed base tables; the price
    /// is that the schema's own functions and types must be named with their schema.
    /// With the heartbeat running, `complete` waits for such instances anyway (unless
    /// forced, or once they are silent longer than `client_timeout`).
    pub fn version_schema_only(mut self) -> Self {
        self.alone = true;
        self
    }

    /// The managed schema (default `public`).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// ratchet's state schema (default `ratchet`; `state_schema` in `ratchet.toml`).
    pub fn state_schema(mut self, state_schema: impl Into<String>) -> Self {
        self.state_schema = Some(state_schema.into());
        self
    }

    /// This instance's id in the heartbeat (default `<hostname>:<pid>`): one row of
    /// `clients` per application and instance.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Fill what the code left unset from the environment: [`VERSION_SCHEMA_ENV`],
    /// [`SCHEMA_ENV`], [`STATE_SCHEMA_ENV`], [`INSTANCE_ENV`] (empty values count as
    /// unset).
    pub fn from_env(self) -> Self {
        self.with_lookup(|k| std::env::var(k).ok())
    }

    fn with_lookup(mut self, get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        if self.version.is_none() {
            self.version = get(VERSION_SCHEMA_ENV).map(Version::Schema);
        }
        self.schema = self.schema.or_else(|| get(SCHEMA_ENV));
        self.state_schema = self.state_schema.or_else(|| get(STATE_SCHEMA_ENV));
        self.instance = self.instance.or_else(|| get(INSTANCE_ENV));
        self
    }

    pub fn build(self) -> Result<Versioned, Error> {
        let schema = self.schema.unwrap_or_else(|| "public".into());
        let state_schema = self.state_schema.unwrap_or_else(|| "ratchet".into());
        let version_schema = match self.version.ok_or(Error::NoVersion)? {
            Version::Schema(s) => Some(s),
            Version::BaseTables => None,
        };
        let instance = self.instance.unwrap_or_else(default_instance);
        check_name("schema", &schema)?;
        check_name("state schema", &state_schema)?;
        if let Some(vs) = &version_schema {
            check_name("version schema", vs)?;
        }
        check_label("application name", &self.app)?;
        check_label("instance id", &instance)?;
        Ok(Versioned {
            alone: self.alone && version_schema.is_some(),
            version_schema,
            schema,
            state_schema,
            app: self.app,
            instance,
        })
    }
}

fn invalid(what: &'static str, value: &str, reason: &str) -> Error {
    Error::Invalid {
        what,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A PostgreSQL name: 1 to 63 bytes (a longer one would be truncated), no NUL.
fn check_name(what: &'static str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains('\0') {
        return Err(invalid(
            what,
            name,
            "a schema name is 1 to 63 bytes, without NUL",
        ));
    }
    if ratchet_sql::ident::ident_too_long(name) {
        return Err(invalid(
            what,
            name,
            "longer than 63 bytes: PostgreSQL would truncate it",
        ));
    }
    Ok(())
}

/// What the `clients` table accepts: 1 to 200 characters.
fn check_label(what: &'static str, label: &str) -> Result<(), Error> {
    let n = label.chars().count();
    if n == 0 || n > MAX_LABEL || label.contains('\0') {
        return Err(invalid(what, label, "1 to 200 characters, without NUL"));
    }
    Ok(())
}

/// `<hostname>:<pid>`: unique per process on a host, and readable in `ratchet clients`.
fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown-host".into());
    let host: String = host.chars().take(MAX_LABEL - 12).collect();
    format!("{host}:{}", std::process::id())
}

/// A backslash before every space and backslash: how PostgreSQL splits the `options`
/// startup parameter into arguments.
pub(crate) fn escape_option(value: &str) -> String {
    value.replace('\\', "\\\\").replace(' ', "\\ ")
}

impl Versioned {
    /// Settings for application `app` (its name in the heartbeat and in
    /// `application_name`).
    pub fn builder(app: impl Into<String>) -> VersionedBuilder {
        VersionedBuilder {
            app: app.into(),
            ..VersionedBuilder::default()
        }
    }

    /// The version schema, or `None` for an application on the base tables.
    pub fn version_schema(&self) -> Option<&str> {
        self.version_schema.as_deref()
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub fn state_schema(&self) -> &str {
        &self.state_schema
    }

    pub fn app(&self) -> &str {
        &self.app
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// What the heartbeat reports: the version schema, or the schema's own name on the
    /// base tables (how `ratchet clients` tells them apart).
    pub fn version(&self) -> &str {
        self.version_schema.as_deref().unwrap_or(&self.schema)
    }

    /// The schemas of the `search_path`, in order: the version schema (if any), then the
    /// schema, where the application's own functions and types stay (unless
    /// [`VersionedBuilder::version_schema_only`]).
    pub fn search_path_schemas(&self) -> Vec<&str> {
        match (&self.version_schema, self.alone) {
            (Some(vs), true) => vec![vs.as_str()],
            (Some(vs), false) => vec![vs.as_str(), self.schema.as_str()],
            (None, _) => vec![self.schema.as_str()],
        }
    }

    /// The `search_path` value, every name quoted: `"public_02_status","public"`.
    pub fn search_path(&self) -> String {
        self.search_path_schemas()
            .iter()
            .map(|s| ratchet_sql::ident::ident(s))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `options` startup parameter that selects the version for a whole session:
    /// `-c search_path="public_02_status","public"` (spaces and backslashes escaped).
    pub fn startup_options(&self) -> String {
        format!("-c search_path={}", escape_option(&self.search_path()))
    }

    /// Select the version in the startup packet of every connection made with `config`:
    /// adds [`Self::startup_options`] to its `options` (keeping what is there), and sets
    /// `application_name` to the application's name unless one is set already.
    ///
    /// Works on direct connections and through poolers in session mode that forward
    /// `options`; PgBouncer in transaction mode does not keep it on every server
    /// session unless configured for it (see `docs/clients.md`): use
    /// [`Self::transaction`] there.
    pub fn configure(&self, config: &mut tokio_postgres::Config) {
        let options = match config.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} {}", self.startup_options()),
            _ => self.startup_options(),
        };
        config.options(options);
        if config.get_application_name().is_none() {
            config.application_name(&self.app);
        }
    }

    /// `SET search_path` for the rest of the session (a connection whose startup packet
    /// could not carry it). Not for transaction pooling: the next transaction may run on
    /// another server session.
    pub async fn set_session(&self, c: &impl GenericClient) -> Result<(), Error> {
        c.batch_execute(&format!("SET search_path TO {}", self.search_path()))
            .await
            .map_err(|e| Error::db("setting the search_path", e))
    }

    /// `SET LOCAL search_path` in the transaction `tx` is in (any transaction type of a
    /// pool built on tokio-postgres): it lasts until the transaction ends, on the server
    /// session the transaction runs on, so it survives transaction pooling.
    pub async fn set_local(&self, tx: &impl GenericClient) -> Result<(), Error> {
        tx.batch_execute(&format!("SET LOCAL search_path TO {}", self.search_path()))
            .await
            .map_err(|e| Error::db("setting the search_path of the transaction", e))
    }

    /// Begin a transaction with the version selected (`BEGIN`, then `SET LOCAL
    /// search_path`): the way to select it through PgBouncer in transaction mode.
    pub async fn transaction<'a>(&self, client: &'a mut Client) -> Result<Transaction<'a>, Error> {
        let tx = client
            .transaction()
            .await
            .map_err(|e| Error::db("beginning a transaction", e))?;
        self.set_local(&tx).await?;
        Ok(tx)
    }

    /// Check, on a session set up like the application's, that the version schema
    /// exists and that the session's `search_path` really starts with it: fails with
    /// [`Error::VersionSchemaMissing`] or [`Error::SearchPathNotApplied`] (a pooler that
    /// dropped `options`, a role without `USAGE` on the schema). Run it once at
    /// start-up, inside a [`Self::transaction`] when that is how the version is set.
    pub async fn verify(&self, c: &impl GenericClient) -> Result<(), Error> {
        let expected: Vec<String> = self
            .search_path_schemas()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let row = c
            .query_typed_one(
                "SELECT $1::text IS NULL OR to_regnamespace(quote_ident($1)) IS NOT NULL,
                        current_schemas(false)::text[]",
                &[(&self.version_schema, Type::TEXT)],
            )
            .await
            .map_err(|e| Error::db("checking the search_path", e))?;
        let exists: bool = row.get(0);
        if !exists {
            return Err(Error::VersionSchemaMissing(self.version().to_string()));
        }
        let found: Vec<String> = row.get(1);
        if !found.starts_with(&expected) {
            return Err(Error::SearchPathNotApplied { expected, found });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_search_path_is_the_version_schema_then_the_schema_quoted() {
        let v = Versioned::builder("app")
            .version_schema("public_02_Status")
            .schema("app data")
            .build()
            .unwrap();
        assert_eq!(v.search_path(), r#""public_02_Status","app data""#);
        assert_eq!(
            v.startup_options(),
            r#"-c search_path="public_02_Status","app\ data""#
        );
        let alone = Versioned::builder("app")
            .version_schema("public_02_status")
            .version_schema_only()
            .build()
            .unwrap();
        assert_eq!(alone.search_path(), r#""public_02_status""#);
        let b = Versioned::builder("app")
            .base_tables()
            .version_schema_only()
            .build()
            .unwrap();
        assert_eq!(b.search_path(), r#""public""#);
        assert_eq!(b.version(), "public");
        let q = Versioned::builder("app")
            .version_schema(r#"a"b\c"#)
            .build()
            .unwrap();
        assert_eq!(q.startup_options(), r#"-c search_path="a""b\\c","public""#);
    }

    #[test]
    fn configure_keeps_other_options_and_an_application_name() {
        let v = Versioned::builder("billing")
            .version_schema("public_02_status")
            .build()
            .unwrap();
        let mut c = tokio_postgres::Config::new();
        c.options("-c statement_timeout=5s");
        v.configure(&mut c);
        assert_eq!(
            c.get_options(),
            Some(r#"-c statement_timeout=5s -c search_path="public_02_status","public""#)
        );
        assert_eq!(c.get_application_name(), Some("billing"));
        let mut c = tokio_postgres::Config::new();
        c.application_name("billing-worker");
        v.configure(&mut c);
        assert_eq!(c.get_application_name(), Some("billing-worker"));
    }

    #[test]
    fn code_wins_over_the_environment_which_fills_the_rest() {
        let e = env(&[
            (VERSION_SCHEMA_ENV, "public_03_x"),
            (STATE_SCHEMA_ENV, "ops"),
            (INSTANCE_ENV, ""),
        ]);
        let v = Versioned::builder("a")
            .version_schema("public_02_status")
            .with_lookup(&e)
            .build()
            .unwrap();
        assert_eq!(v.version_schema(), Some("public_02_status"));
        assert_eq!(v.state_schema(), "ops");
        assert_eq!(v.schema(), "public");
        assert!(v.instance().ends_with(&format!(":{}", std::process::id())));
        let v = Versioned::builder("a").with_lookup(&e).build().unwrap();
        assert_eq!(v.version_schema(), Some("public_03_x"));
    }

    #[test]
    fn unusable_settings_are_refused() {
        assert!(matches!(
            Versioned::builder("a").build(),
            Err(Error::NoVersion)
        ));
        let long = "x".repeat(64);
        assert!(Versioned::builder("a")
            .version_schema(&long)
            .build()
            .is_err());
        assert!(Versioned::builder("a").version_schema("").build().is_err());
        assert!(Versioned::builder("").base_tables().build().is_err());
        assert!(Versioned::builder("a")
            .base_tables()
            .instance("i".repeat(201))
            .build()
            .is_err());
    }
}
