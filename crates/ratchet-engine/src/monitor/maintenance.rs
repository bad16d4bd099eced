//! Maintenance running on the migrated tables (`pg_stat_progress_vacuum`,
//! `pg_stat_progress_create_index`, `pg_stat_progress_cluster`): autovacuum, VACUUM,
//! CREATE INDEX, CLUSTER / VACUUM FULL. Vacuums are shown, not held against the
//! backfill (its updates leave dead rows that autovacuum must clean); an index build or
//! a rewrite by another session competes with it for the same table, so the backfill
//! throttles while one runs.

use tokio_postgres::{Client, Error};

use super::Sample;

pub(super) struct Maintenance;

impl Maintenance {
    /// `tables`: the migrated tables, schema-qualified and quoted.
    pub(super) async fn sample(&mut self, c: &Client, tables: &[String]) -> Result<Sample, Error> {
        let mut s = Sample::default();
        for k in ["autovacuum_running", "vacuum_running", "foreign_rewrites"] {
            s.set(k, 0.0);
        }
        if tables.is_empty() {
            return Ok(s);
        }
        let rows = c
            .query(
                "WITH t AS (SELECT to_regclass(x) AS oid FROM unnest($1::text[]) x),
                      p AS (SELECT 'vacuum' AS what, pid, relid FROM pg_stat_progress_vacuum
                            UNION ALL
                            SELECT lower(command), pid, relid FROM pg_stat_progress_create_index
                            UNION ALL
                            SELECT lower(command), pid, relid FROM pg_stat_progress_cluster)
                 SELECT p.what, p.pid, p.relid::regclass::text,
                        coalesce(a.backend_type = 'autovacuum worker', false),
                        coalesce(a.application_name, '') LIKE 'ratchet%'
                   FROM p JOIN t ON t.oid = p.relid
                   LEFT JOIN pg_stat_activity a ON a.pid = p.pid
                  ORDER BY p.pid",
                &[&tables],
            )
            .await?;
        let (mut auto, mut vacuum, mut foreign) = (0.0, 0.0, 0.0);
        for r in &rows {
            let (what, pid, table): (String, i32, String) = (r.get(0), r.get(1), r.get(2));
            let (is_auto, is_ours): (bool, bool) = (r.get(3), r.get(4));
            let who = match (is_auto, is_ours) {
                (true, _) => "autovacuum".to_string(),
                (_, true) => "ratchet".to_string(),
                _ => format!("pid {pid}"),
            };
            s.notes.push(format!("{what} on {table} by {who}"));
            match what.as_str() {
                "vacuum" if is_auto => auto += 1.0,
                "vacuum" => vacuum += 1.0,
                _ if !is_ours => foreign += 1.0,
                _ => {}
            }
        }
        s.set("autovacuum_running", auto);
        s.set("vacuum_running", vacuum);
        s.set("foreign_rewrites", foreign);
        Ok(s)
    }
}
