//! SQLSTATE classes: the one place that decides which database errors are worth a retry.
//!
//! Codes are PostgreSQL's ("Appendix A. PostgreSQL Error Codes"), taken as text so that
//! this crate needs no database client: the engine passes `tokio_postgres`'s code string.

/// 55P03 `lock_not_available`.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";
/// 40P01 `deadlock_detected`.
pub const DEADLOCK_DETECTED: &str = "40P01";
/// 40001 `serialization_failure`.
pub const SERIALIZATION_FAILURE: &str = "40001";
/// 57014 `query_canceled`.
pub const QUERY_CANCELED: &str = "57014";
/// 57P01 `admin_shutdown`: the server (or `pg_terminate_backend`) ended the session.
pub const ADMIN_SHUTDOWN: &str = "57P01";
/// 57P02 `crash_shutdown`: another backend crashed and the server is restarting.
pub const CRASH_SHUTDOWN: &str = "57P02";
/// 57P03 `cannot_connect_now`: the server is starting up or shutting down.
pub const CANNOT_CONNECT_NOW: &str = "57P03";
/// 42883 `undefined_function`: e.g. a state schema older than the function called.
pub const UNDEFINED_FUNCTION: &str = "42883";
/// 3F000 `invalid_schema_name`: the schema named does not exist.
pub const INVALID_SCHEMA_NAME: &str = "3F000";
/// 42501 `insufficient_privilege`: "permission denied".
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// What kind of failure a SQLSTATE reports, as far as ratchet acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlStateClass {
    /// 55P03: our `lock_timeout` fired while waiting behind another session; waiting
    /// longer would have blocked every query queued behind us.
    LockNotAvailable,
    /// 40P01: PostgreSQL chose our transaction as the victim of a deadlock.
    Deadlock,
    /// 40001: a concurrent update under REPEATABLE READ or SERIALIZABLE, or, under READ
    /// COMMITTED too, a row a concurrent UPDATE moved to another partition.
    SerializationFailure,
    /// 57014: a `statement_timeout` or an operator's cancel.
    QueryCanceled,
    /// Class 08 (connection exception) and 57P01–57P03: the session is gone.
    ConnectionLost,
    /// Anything else: the statement itself is at fault (syntax, a constraint, a type).
    Other,
}

impl SqlStateClass {
    /// The class of a five-character SQLSTATE.
    pub fn of(code: &str) -> SqlStateClass {
        match code {
            LOCK_NOT_AVAILABLE => SqlStateClass::LockNotAvailable,
            DEADLOCK_DETECTED => SqlStateClass::Deadlock,
            SERIALIZATION_FAILURE => SqlStateClass::SerializationFailure,
            QUERY_CANCELED => SqlStateClass::QueryCanceled,
            ADMIN_SHUTDOWN | CRASH_SHUTDOWN | CANNOT_CONNECT_NOW => SqlStateClass::ConnectionLost,
            c if c.starts_with("08") => SqlStateClass::ConnectionLost,
            _ => SqlStateClass::Other,
        }
    }

    /// Whether running the same statement again, in a new transaction on the same
    /// session after a backoff, can succeed: a lock timeout, a deadlock, a cancel, a
    /// serialization failure.
    ///
    /// A serialization failure reaches ratchet under READ COMMITTED as well: a backfill
    /// batch that waited for a row an application's UPDATE of the partition key then moved
    /// to another partition gets "tuple to be locked was already moved to another partition
    /// due to concurrent update" (issue 14). The batch in a new transaction no longer sees
    /// the row there, and the moved row was filled by the dual-write trigger.
    ///
    /// Not retryable here: a lost connection (the session is gone; a caller must open a
    /// new one first).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            SqlStateClass::LockNotAvailable
                | SqlStateClass::Deadlock
                | SqlStateClass::QueryCanceled
                | SqlStateClass::SerializationFailure
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(SqlStateClass::of("55P03"), SqlStateClass::LockNotAvailable);
        assert_eq!(SqlStateClass::of("40P01"), SqlStateClass::Deadlock);
        assert_eq!(
            SqlStateClass::of("40001"),
            SqlStateClass::SerializationFailure
        );
        assert_eq!(SqlStateClass::of("57014"), SqlStateClass::QueryCanceled);
        for lost in ["08000", "08006", "08003", "57P01", "57P02", "57P03"] {
            assert_eq!(
                SqlStateClass::of(lost),
                SqlStateClass::ConnectionLost,
                "{lost}"
            );
        }
        for other in ["23505", "42P01", "22P02", "", "?????"] {
            assert_eq!(SqlStateClass::of(other), SqlStateClass::Other, "{other}");
        }
    }

    #[test]
    fn only_waits_and_serialization_failures_are_retried() {
        let retried: Vec<&str> = [
            "55P03", "40P01", "57014", "40001", "08006", "57P01", "23505",
        ]
        .into_iter()
        .filter(|c| SqlStateClass::of(c).retryable())
        .collect();
        assert_eq!(retried, ["55P03", "40P01", "57014", "40001"]);
    }
}
