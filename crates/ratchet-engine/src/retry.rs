//! One retry policy for every statement ratchet may retry: a step's transaction or
//! statement, a backfill batch. A transient failure (lock timeout, deadlock, serialization
//! failure, cancel) is retried within `Config::max_attempts`, after a jittered exponential
//! wait ([`crate::session::backoff`]); each retry is reported and written to the event log
//! with the sessions that blocked it; the last failure gives up with
//! [`EngineError::RetriesExhausted`], naming them. Anything else fails at once.

use std::time::Duration;

use serde_json::json;
use tokio_postgres::GenericClient;

use crate::config::Config;
use crate::error::{db_message, is_retryable, sqlstate, EngineError};
use crate::report::{Event, Reporter};
use crate::session::{backoff, blocked_by};
use crate::state::State;

/// The budget: attempts and the backoff between them (from [`Config`]).
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    config: Config,
}

/// A failed attempt that is worth another one.
#[derive(Debug)]
pub(crate) struct Retry {
    /// What was attempted, as the output and the event log name it.
    pub(crate) description: String,
    pub(crate) attempt: u32,
    pub(crate) wait: Duration,
    pub(crate) sqlstate: String,
    pub(crate) message: String,
    /// The sessions seen blocking the attempt, as `session::describe_sessions` lines.
    pub(crate) blockers: Vec<String>,
}

/// The database error inside `e` when it is worth retrying.
pub(crate) fn transient(e: &EngineError) -> Option<&tokio_postgres::Error> {
    match e {
        EngineError::Database { source, .. } if is_retryable(source) => Some(source),
        _ => None,
    }
}

impl RetryPolicy {
    pub(crate) fn new(config: &Config) -> RetryPolicy {
        RetryPolicy {
            config: config.clone(),
        }
    }

    /// After attempt `attempt` of `description` failed with `e`: the retry to make, or the
    /// error to stop with (`e` itself when it is not transient, `RetriesExhausted` when
    /// the budget is spent, its message prefixed with `description` when `named`; a step's
    /// error names its step already).
    pub(crate) fn after_failure(
        &self,
        (description, named): (&str, bool),
        attempt: u32,
        e: EngineError,
        blockers: Vec<String>,
    ) -> Result<Retry, EngineError> {
        let Some(pg) = transient(&e) else {
            return Err(e);
        };
        let (code, message) = (sqlstate(pg), db_message(pg));
        if attempt >= self.config.max_attempts {
            return Err(EngineError::RetriesExhausted {
                attempts: attempt,
                message: if named {
                    format!("{description}: [{code}] {message}")
                } else {
                    format!("[{code}] {message}")
                },
                blockers: blocked_by(&blockers),
            });
        }
        Ok(Retry {
            description: description.to_string(),
            attempt,
            wait: backoff(&self.config, attempt),
            sqlstate: code,
            message,
            blockers,
        })
    }
}

impl Retry {
    /// Report the retry, write its event row (`detail` says which step or batch), and
    /// wait before the next attempt.
    pub(crate) async fn record_and_wait(
        self,
        client: &impl GenericClient,
        state: &State,
        reporter: &dyn Reporter,
        migration: &str,
        detail: serde_json::Value,
    ) -> Result<(), EngineError> {
        let mut row = json!({
            "attempt": self.attempt, "sqlstate": self.sqlstate, "message": self.message,
            "wait_ms": self.wait.as_millis() as u64, "blockers": self.blockers,
        });
        if let (Some(row), serde_json::Value::Object(detail)) = (row.as_object_mut(), detail) {
            row.extend(detail);
        }
        let wait = self.wait;
        reporter.report(&Event::Retry {
            description: self.description,
            attempt: self.attempt,
            wait,
            sqlstate: self.sqlstate,
            message: self.message,
            blockers: self.blockers,
        });
        state.event(client, Some(migration), "retry", row).await?;
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// Where a retried attempt is logged: the state store, the reporter, the migration, and
/// what the attempt is (`description`, and `detail` for the event row).
pub(crate) struct RetryLog<'a> {
    pub(crate) state: &'a State,
    pub(crate) reporter: &'a dyn Reporter,
    pub(crate) migration: &'a str,
    pub(crate) description: String,
    pub(crate) detail: serde_json::Value,
}

impl RetryPolicy {
    /// Run `attempt` on `client` until it succeeds, fails for good, or the budget is
    /// spent; each retry is logged through `log`.
    pub(crate) async fn run<T>(
        &self,
        client: &mut tokio_postgres::Client,
        log: &RetryLog<'_>,
        mut attempt: impl AsyncFnMut(&mut tokio_postgres::Client) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let mut n = 1;
        loop {
            match attempt(client).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.after_failure((&log.description, true), n, e, Vec::new())?
                        .record_and_wait(
                            &*client,
                            log.state,
                            log.reporter,
                            log.migration,
                            log.detail.clone(),
                        )
                        .await?;
                    n += 1;
                }
            }
        }
    }
}
