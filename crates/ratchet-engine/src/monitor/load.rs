//! Load: active sessions and sessions waiting on a lock (server-wide, client backends,
//! not counting the monitors' own), and connections used against `max_connections`.

use tokio_postgres::{Client, Error};

use super::Sample;

pub(super) struct Load;

impl Load {
    pub(super) async fn sample(&mut self, c: &Client) -> Result<Sample, Error> {
        let r = c
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'active'
                                           AND application_name NOT LIKE 'ratchet monitor%')::float8,
                        count(*) FILTER (WHERE wait_event_type = 'Lock')::float8,
                        count(*)::float8,
                        current_setting('max_connections')::float8
                   FROM pg_stat_activity WHERE backend_type = 'client backend'",
                &[],
            )
            .await?;
        let mut s = Sample::default();
        s.set("active_sessions", r.get(0));
        s.set("waiting_sessions", r.get(1));
        s.set("connections_used", r.get(2));
        s.set("max_connections", r.get(3));
        Ok(s)
    }
}
