//! What `ratchet status --watch` reads besides the progress, the heartbeat and the
//! events: which session holds the migration lock (a running ratchet process is known
//! by it even when its heartbeat is missing or late).

use serde::Serialize;
use tokio_postgres::GenericClient;

use super::State;
use crate::error::EngineError;

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
