//! What can go wrong between an application and ratchet's state schema, one variant per
//! failure the application can act on: a setting it got wrong (fix the configuration), a
//! state schema too old for this crate (run any `ratchet` command once), a version schema
//! that is not there or not selected (deployed too early, or a pooler dropped the
//! `options`), and the database's own errors, with what was being done.

use ratchet_sql::sqlstate::{INVALID_SCHEMA_NAME, UNDEFINED_FUNCTION};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting given to [`crate::VersionedBuilder`] (or read from the environment) is
    /// unusable.
    #[error("{what} `{value}` is not usable: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// No version schema was given and `RATCHET_VERSION_SCHEMA` is not set.
    #[error(
        "no version schema: set RATCHET_VERSION_SCHEMA (e.g. `public_02_status`, what `ratchet status` \
         calls the version applications should use), pass one to `version_schema(…)`, or call \
         `base_tables()` for an application that uses the tables themselves"
    )]
    NoVersion,
    /// The version schema the application was built for does not exist (yet, or any
    /// more). PostgreSQL skips a missing schema of the `search_path` silently, so the
    /// application would read and write the base tables instead: refuse.
    #[error(
        "the version schema `{0}` does not exist in this database: `ratchet start` publishes it once its \
         columns are filled (deploy the application after that), and `ratchet complete` of the next \
         migration drops it"
    )]
    VersionSchemaMissing(String),
    /// The session's `search_path` is not the one the application selected: typically a
    /// pooler that dropped the `options` startup parameter (PgBouncer's
    /// `ignore_startup_parameters`). Use [`crate::Versioned::transaction`] there.
    #[error(
        "this session's search_path starts with {found:?}, not {expected:?}: the `options` startup \
         parameter did not reach the server (a pooler that ignores it?); set it per transaction \
         with `Versioned::transaction` instead"
    )]
    SearchPathNotApplied {
        expected: Vec<String>,
        found: Vec<String>,
    },
    /// The state schema lacks a function this crate calls: it was created by an older
    /// ratchet. Any `ratchet` command run by the migration role upgrades it.
    #[error(
        "the state schema `{0}` is older than this client (no `flag_setting()`): run `ratchet status` \
         once as the migration role to upgrade it"
    )]
    StateSchemaOutdated(String),
    /// There is no state schema of that name (or the role may not use it).
    #[error(
        "there is no state schema `{0}` (`ratchet init` creates it; `state_schema(…)` names another)"
    )]
    NoStateSchema(String),
    #[error("while {doing}: {source}")]
    Db {
        doing: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[cfg(feature = "sqlx")]
    #[error("while {doing}: {source}")]
    Sqlx {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl Error {
    pub(crate) fn db(doing: &'static str, source: tokio_postgres::Error) -> Error {
        Error::Db { doing, source }
    }

    /// An error of a call into the state schema while `doing`, told apart when it means
    /// that schema is old or missing.
    pub(crate) fn state(
        doing: &'static str,
        state_schema: &str,
        e: tokio_postgres::Error,
    ) -> Error {
        let code = e.code().map(|c| c.code().to_string());
        Error::classify(state_schema, code.as_deref()).unwrap_or(Error::Db { doing, source: e })
    }

    #[cfg(feature = "sqlx")]
    pub(crate) fn sqlx(doing: &'static str, source: sqlx::Error) -> Error {
        Error::Sqlx { doing, source }
    }

    #[cfg(feature = "sqlx")]
    pub(crate) fn sqlx_state(doing: &'static str, state_schema: &str, e: sqlx::Error) -> Error {
        let code = e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned());
        Error::classify(state_schema, code.as_deref()).unwrap_or(Error::Sqlx { doing, source: e })
    }

    fn classify(state_schema: &str, code: Option<&str>) -> Option<Error> {
        match code? {
            UNDEFINED_FUNCTION => Some(Error::StateSchemaOutdated(state_schema.to_string())),
            INVALID_SCHEMA_NAME => Some(Error::NoStateSchema(state_schema.to_string())),
            _ => None,
        }
    }
}
