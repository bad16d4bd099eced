//! Locks: sessions waiting on a lock a ratchet session holds (how many, the longest
//! wait), and the sessions ratchet itself waits on (pid, application_name, query start,
//! state), so that the operator sees who blocks the migration.
//!
//! ratchet's sessions are the ones whose `application_name` starts with `ratchet`
//! (`session::setup_session` sets it); the monitors' own (`ratchet monitor…`) hold no
//! locks and are left out.

use tokio_postgres::{Client, Error};

use super::{Sample, OURS};

pub(super) struct Locks {
    /// PostgreSQL 14+ records when a lock wait began (`pg_locks.waitstart`).
    has_waitstart: bool,
}

impl Locks {
    pub(super) fn new(server_version_num: i32) -> Locks {
        Locks {
            has_waitstart: server_version_num >= 140000,
        }
    }

    fn caused_sql(&self) -> String {
        let since = if self.has_waitstart {
            "(SELECT min(l.waitstart) FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted)"
        } else {
            "NULL::timestamptz"
        };
        format!(
            "SELECT count(*)::float8,
                    coalesce(max(extract(epoch FROM clock_timestamp()
                                 - coalesce(w.since, w.state_change, w.query_start)) * 1000), 0)::float8
               FROM (SELECT a.pid, a.state_change, a.query_start, {since} AS since,
                            pg_blocking_pids(a.pid) AS blockers
                       FROM pg_stat_activity a
                      WHERE a.wait_event_type = 'Lock'
                        AND coalesce(a.application_name, '') NOT LIKE 'ratchet%') w
              WHERE EXISTS (SELECT 1 FROM pg_stat_activity r
                             WHERE r.pid = ANY (w.blockers) AND {OURS})"
        )
    }

    pub(super) async fn sample(&mut self, c: &Client) -> Result<Sample, Error> {
        let r = c.query_one(&self.caused_sql(), &[]).await?;
        let mut s = Sample::default();
        s.set("lock_waits_caused", r.get(0));
        s.set("lock_wait_max_ms", r.get(1));
        let blockers = c
            .query(
                &format!(
                    "SELECT DISTINCT b.pid, coalesce(b.application_name, ''),
                            coalesce(b.state, 'unknown'),
                            extract(epoch FROM clock_timestamp() - b.query_start)::float8
                       FROM pg_stat_activity r
                       CROSS JOIN LATERAL unnest(pg_blocking_pids(r.pid)) AS x(pid)
                       JOIN pg_stat_activity b ON b.pid = x.pid
                      WHERE r.wait_event_type = 'Lock' AND {}
                      ORDER BY b.pid",
                    OURS
                ),
                &[],
            )
            .await?;
        s.set("ratchet_waits_on", blockers.len() as f64);
        s.notes = blockers.iter().map(describe).collect();
        Ok(s)
    }
}

/// "pid 123 (application psql, idle in transaction, query started 12.3 s ago)".
fn describe(r: &tokio_postgres::Row) -> String {
    let (pid, app, state): (i32, String, String) = (r.get(0), r.get(1), r.get(2));
    let app = if app.is_empty() {
        "no application_name".to_string()
    } else {
        format!("application {app}")
    };
    let started = r
        .get::<_, Option<f64>>(3)
        .map(|s| format!(", query started {s:.1} s ago"))
        .unwrap_or_default();
    format!("ratchet waits on pid {pid} ({app}, {state}{started})")
}
