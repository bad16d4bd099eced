//! ratchet's own database sessions: how they are opened and set up (lock timeout, the
//! idle-in-transaction bound), the retry backoff, who blocks them, and the crash-test
//! fault points.

use std::time::Duration;

use rand::Rng;
use tokio_postgres::{Client, NoTls};

use crate::config::Config;
use crate::error::EngineError;

/// Crash testing: `RATCHET_FAULT_KILL=<phase>:<step>:<before-commit|after-commit>` makes
/// the process SIGKILL itself at that point, exactly as `kill -9` from outside would. The
/// test-suite uses it to prove that every step can be interrupted and resumed.
/// `RATCHET_FAULT_STOP` (same form) SIGSTOPs it there instead, as a VM or GC pause would:
/// the tests prove that the server then ends ratchet's stalled transaction by itself.
/// Backfill batches have the point `backfill:<step>:before-commit`.
pub(crate) fn fault_point(phase: &str, step: usize, when: &str) {
    let here = format!("{phase}:{step}:{when}");
    for (var, signal) in [
        ("RATCHET_FAULT_KILL", "-9"),
        ("RATCHET_FAULT_STOP", "-STOP"),
    ] {
        if std::env::var(var).is_ok_and(|spec| spec == here) {
            let _ = std::process::Command::new("kill")
                .args([signal, &std::process::id().to_string()])
                .status();
            if signal == "-9" {
                std::thread::sleep(Duration::from_secs(10));
            }
        }
    }
}

pub(crate) async fn open(url: &str) -> Result<Client, EngineError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(EngineError::Connect)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

/// How long one of ratchet's sessions may sit idle inside a transaction before the
/// server ends it: a stopped ratchet process (a VM pause, a long GC pause, a network
/// partition) must never hold its locks for long. `lock_timeout` only bounds acquiring
/// a lock; this bounds holding one while ratchet does nothing.
pub fn idle_in_transaction_timeout(config: &Config) -> Duration {
    (config.lock_timeout * 4).max(Duration::from_secs(1))
}

/// The bound on a whole DDL transaction on PostgreSQL 17+ (`transaction_timeout`), so
/// no step can hold a strong lock for long even after it got it.
pub fn ddl_transaction_timeout(config: &Config) -> Duration {
    (config.lock_timeout * 20).max(Duration::from_secs(10))
}

/// How long a setting lasts: the session, or the current transaction (`SET LOCAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Session,
    Transaction,
}

/// `SET [LOCAL] <name> = '<ms>ms'`: the one place a timeout setting is written.
pub(crate) fn set_timeout(name: &str, d: Duration, scope: Scope) -> String {
    let local = if scope == Scope::Transaction {
        "LOCAL "
    } else {
        ""
    };
    format!("SET {local}{name} = '{}ms'", d.as_millis())
}

/// `SET [LOCAL] lock_timeout = …`.
pub(crate) fn with_lock_timeout(d: Duration, scope: Scope) -> String {
    set_timeout("lock_timeout", d, scope)
}

pub(crate) async fn setup_session(client: &Client, config: &Config) -> Result<(), EngineError> {
    // Raw `sql` operations land in the managed schema; everything ratchet generates
    // is schema-qualified anyway.
    let sql = format!(
        "SET application_name = 'ratchet'; SET search_path = {}; {}; {}",
        crate::sql::ident(&config.schema),
        with_lock_timeout(config.lock_timeout, Scope::Session),
        set_timeout(
            "idle_in_transaction_session_timeout",
            idle_in_transaction_timeout(config),
            Scope::Session
        )
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| EngineError::db("setting up the session", e))
}

/// Sessions holding a lock on `table` that blocks writes (SHARE or stronger), other than
/// the caller: who a backfill batch waited for, asked after its lock timeout (the wait is
/// over by then, so `pg_blocking_pids` would find no one).
pub(crate) async fn write_blockers_of(client: &Client, table: &str) -> Vec<String> {
    describe_sessions(
        client,
        "SELECT DISTINCT l.pid FROM pg_locks l
          WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
            AND l.relation = to_regclass($1::text)
            AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                           'AccessExclusiveLock')",
        &table,
    )
    .await
}

/// "pid 123 (application psql, idle in transaction, transaction open 12.3 s)" for each
/// pid `pids_sql` (one parameter) returns. A failed query gives nothing.
pub(crate) async fn describe_sessions(
    client: &Client,
    pids_sql: &str,
    param: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Vec<String> {
    let rows = client
        .query(
            &format!(
                "SELECT b.pid, coalesce(a.application_name, ''), coalesce(a.state, 'unknown'),
                        extract(epoch FROM clock_timestamp() - a.xact_start)::float8
                   FROM ({pids_sql}) AS b(pid)
                   LEFT JOIN pg_stat_activity a ON a.pid = b.pid ORDER BY b.pid"
            ),
            &[param],
        )
        .await
        .unwrap_or_default();
    rows.iter()
        .map(|r| {
            let (pid, app, state): (i32, String, String) = (r.get(0), r.get(1), r.get(2));
            let age = r
                .get::<_, Option<f64>>(3)
                .map(|s| format!(", transaction open {s:.1} s"))
                .unwrap_or_default();
            let app = if app.is_empty() {
                "no application_name".into()
            } else {
                format!("application {app}")
            };
            format!("pid {pid} ({app}, {state}{age})")
        })
        .collect()
}

/// "; blocked by pid 1 (…), pid 2 (…)", or nothing.
pub(crate) fn blocked_by(blockers: &[String]) -> String {
    if blockers.is_empty() {
        String::new()
    } else {
        format!("; blocked by {}", blockers.join(", "))
    }
}

/// The wait before retry `attempt + 1` after a lock timeout or deadlock: exponential from
/// `config.backoff`, capped at `config.max_backoff`, ±50 % jitter (so two waiters that
/// collided do not collide again). Shared by the step runner and the backfill workers.
pub(crate) fn backoff(config: &Config, attempt: u32) -> Duration {
    let base =
        config.backoff.as_millis() as f64 * 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
    let capped = base.min(config.max_backoff.as_millis() as f64);
    let jitter = rand::rng().random_range(0.5..1.5);
    Duration::from_millis((capped * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_written_in_milliseconds_for_the_scope_asked() {
        assert_eq!(
            with_lock_timeout(Duration::from_millis(500), Scope::Transaction),
            "SET LOCAL lock_timeout = '500ms'"
        );
        assert_eq!(
            set_timeout(
                "transaction_timeout",
                Duration::from_secs(10),
                Scope::Session
            ),
            "SET transaction_timeout = '10000ms'"
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let config = Config {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..Config::default()
        };
        for _ in 0..50 {
            let first = backoff(&config, 1);
            assert!(
                (50..=150).contains(&(first.as_millis() as u64)),
                "{first:?}"
            );
            let late = backoff(&config, 10);
            assert!((200..=600).contains(&(late.as_millis() as u64)), "{late:?}");
        }
    }
}
