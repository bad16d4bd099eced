//! The engine's errors. Which database errors are worth a retry is decided by
//! `ratchet_sql::SqlStateClass` (one place for the whole workspace); [`is_retryable`]
//! applies it to a client error.

use ratchet_sql::SqlStateClass;

/// Why an engine call failed. Each variant is something a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("database error while {context}: {}", db_message(source))]
    Database {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("could not connect to the database: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error("{location}: {message}\n  hint: {hint}")]
    Invalid {
        location: String,
        message: String,
        hint: String,
    },
    #[error("{location}: not supported yet: {operation}\n  hint: {hint}")]
    Unsupported {
        location: String,
        operation: String,
        hint: String,
    },
    /// The migration file is wrong in itself (its own checks, no database needed).
    #[error("{0}")]
    File(String),
    /// ratchet will not do it now; `kind` says why (a caller can match it), `message`
    /// names the cause and the command that would satisfy it.
    #[error("{message}")]
    Refused { kind: Refusal, message: String },
    #[error(
        "another ratchet process holds the migration lock on this database; waited {0} ms. \
         `ratchet status` shows what it is doing: let it finish, or wait longer with --wait"
    )]
    Busy(u64),
    #[error(
        "while running step {step} ({description}) of {migration}: {source}{}",
        step_next(source)
    )]
    Step {
        migration: String,
        step: usize,
        description: String,
        #[source]
        source: Box<EngineError>,
    },
    #[error(
        "gave up after {attempts} attempts on lock timeouts/deadlocks (last: {message}{blockers}); \
         end or wait out the blocking transaction (SELECT pg_terminate_backend(pid) ends a \
         stuck one), then run the same command again"
    )]
    RetriesExhausted {
        attempts: u32,
        message: String,
        /// "; blocked by pid …" naming the sessions last seen blocking, or empty.
        blockers: String,
    },
    #[error("{context}: {message}")]
    Sql { context: String, message: String },
    #[error("the stored state is inconsistent: {0}")]
    State(String),
}

/// The next step after a failed step, when its cause does not name one itself (one
/// path only, issue 9).
fn step_next(source: &EngineError) -> &'static str {
    match source {
        EngineError::Database { .. } | EngineError::Connect(_) | EngineError::Sql { .. } => {
            "\n  the step was rolled back. If the database was at fault, run the same command \
             again to retry from this step; if the file is, fix it and run `ratchet start` \
             again (accepted while no step has run; otherwise `ratchet abort` first)"
        }
        _ => "",
    }
}

impl EngineError {
    pub fn db(context: impl Into<String>, source: tokio_postgres::Error) -> EngineError {
        EngineError::Database {
            context: context.into(),
            source,
        }
    }

    /// True when the failure is a refusal (a gate, a validation, another runner) rather
    /// than a breakage: the CLI exits 1 for these and 2 for the rest. A bad migration file
    /// (its shape, its SQL, a table it names that does not exist) is never a refusal: it
    /// is a usage error like an unknown field (issue 9).
    pub fn is_refusal(&self) -> bool {
        match self {
            EngineError::Refused { .. } | EngineError::Busy(_) => true,
            EngineError::Step { source, .. } => source.is_refusal(),
            _ => false,
        }
    }
}

/// Whether a database error is transient, so the executor retries it (with backoff)
/// instead of failing the step: a lock timeout, a deadlock, a cancel, a serialization
/// failure ([`SqlStateClass::retryable`]). An error without a SQLSTATE (the connection broke) is
/// not.
pub fn is_retryable(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| SqlStateClass::of(c.code()).retryable())
}

/// The SQLSTATE of an error, or `?????` for connection-level failures.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| "?????".into())
}

/// The server's own message (with detail and hint), without the client library's prefix.
pub fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut s = d.message().to_string();
            if let Some(detail) = d.detail() {
                s.push_str(&format!(" (detail: {detail})"));
            }
            if let Some(hint) = d.hint() {
                s.push_str(&format!(" (hint: {hint})"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// Why ratchet refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A gate before `complete` (or before validating) is not met.
    Gate(Gate),
    /// Another migration is active: complete or abort it first.
    AnotherMigrationActive,
    /// The migration is in a phase that does not allow this (completing, aborting, …).
    WrongPhase,
    /// The start of the migration has unfinished steps.
    StartUnfinished,
    /// An applied migration's file changed (its operations' checksum).
    FileChanged,
    /// The folder and the database disagree on which migrations come in which order.
    OrderMismatch,
    /// The version schema's name is taken by a schema ratchet did not create.
    SchemaExists,
    /// `up` fails for a row: the data or the expression must be fixed.
    RowFails,
    /// The backfill was stopped by its throttle hook.
    Stopped,
    /// The server lacks a capability the migration needs (e.g. `security_invoker` views
    /// for a table with row-level security on PostgreSQL 14).
    Capability,
}

/// The gates of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    BackfillUnfinished,
    NotValidated,
    ValidationFailed,
    /// A flag `complete` waits for is not fully on.
    FlagNotOn,
    /// The migration has not been expanded for `min_soak` yet.
    SoakNotElapsed,
    /// An application instance (or a live session) still uses an older version.
    OldClients,
    /// A read flag may be raised only after the backfill finished and validation passed.
    FlagBeforeValidation,
    /// `ratchet freeze` stands: no start, migrate or complete until `ratchet unfreeze`.
    Frozen,
}

impl EngineError {
    /// A refusal of `kind` with its message (the cause and the command that satisfies it).
    pub fn refused(kind: Refusal, message: impl Into<String>) -> EngineError {
        EngineError::Refused {
            kind,
            message: message.into(),
        }
    }
}
