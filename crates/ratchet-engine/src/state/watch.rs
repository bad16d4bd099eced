//! What `ratchet status --watch` reads besides the progress: the latest rows of the
//! event log, and which session holds the migration lock (a running ratchet process is
//! known by it even before its monitors write a heartbeat).

use serde::Serialize;
use tokio_postgres::GenericClient;

use super::State;
use crate::error::EngineError;

/// One row of the event log, newest first when listed by [`State::latest_events`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub id: i64,
    /// When, as ISO 8601 text in UTC.
    pub at: String,
    /// Seconds since then.
    pub age_s: f64,
    pub migration: Option<String>,
    pub kind: String,
    pub detail: serde_json::Value,
    pub who: String,
    pub host: Option<String>,
    pub application: Option<String>,
}

/// The session holding the migration lock: the ratchet process running on this state
/// schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockHolder {
    pub pid: i32,
    pub application: Option<String>,
    pub host: Option<String>,
    /// Seconds since that session connected.
    pub connected_s: f64,
}

impl State {
    /// The `limit` newest events of this schema, newest first.
    pub async fn latest_events(
        &self,
        c: &impl GenericClient,
        limit: i64,
    ) -> Result<Vec<EventRow>, EngineError> {
        let rows = c
            .query(
                &format!(
                    "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                            extract(epoch FROM clock_timestamp() - at)::float8,
                            migration, kind, detail, who, host, application
                       FROM {} WHERE schema = $1 ORDER BY id DESC LIMIT $2",
                    self.t("events")
                ),
                &[&self.schema, &limit],
            )
            .await
            .map_err(|e| EngineError::db("reading the event log", e))?;
        Ok(rows
            .iter()
            .map(|r| EventRow {
                id: r.get(0),
                at: r.get(1),
                age_s: r.get(2),
                migration: r.get(3),
                kind: r.get(4),
                detail: r.get(5),
                who: r.get(6),
                host: r.get(7),
                application: r.get(8),
            })
            .collect())
    }

    /// Who holds the advisory lock `key` (`pg_try_advisory_lock(hashtext(key))`), if any.
    /// A bigint advisory key shows in `pg_locks` as its high half in `classid` and its
    /// low half in `objid`, with `objsubid` 1.
    pub async fn lock_holder(
        &self,
        c: &impl GenericClient,
        key: &str,
    ) -> Result<Option<LockHolder>, EngineError> {
        let row = c
            .query_opt(
                "SELECT l.pid, a.application_name, a.client_addr::text,
                        extract(epoch FROM clock_timestamp() - a.backend_start)::float8
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext($1)::bigint
                  LIMIT 1",
                &[&key],
            )
            .await
            .map_err(|e| EngineError::db("looking for the migration lock's holder", e))?;
        Ok(row.map(|r| LockHolder {
            pid: r.get(0),
            application: r.get::<_, Option<String>>(1).filter(|s| !s.is_empty()),
            host: r.get(2),
            connected_s: r.get(3),
        }))
    }
}
