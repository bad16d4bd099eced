//! What a running ratchet process and its operators share through the state schema:
//! controls an operator sets from any machine (`ratchet pause`, `ratchet set batch-size
//! 500`), read by the running process between batches; and the running process's
//! heartbeat with its latest health verdict, read by `ratchet status --watch`.

use serde::Serialize;
use tokio_postgres::GenericClient;

use super::State;
use crate::error::EngineError;

/// One control an operator set, with who set it and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Control {
    pub key: String,
    pub value: String,
    pub set_by: String,
    pub host: Option<String>,
    pub application: Option<String>,
    /// Seconds since it was set.
    pub age_s: f64,
}

/// The process running a migration on this schema, as its last heartbeat left it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerRow {
    pub migration: Option<String>,
    pub pid: i32,
    pub host: Option<String>,
    pub application: Option<String>,
    /// Seconds since its last heartbeat.
    pub seen_s: f64,
    /// Its latest `HealthReport` (and whatever else it publishes), as JSON.
    pub health: serde_json::Value,
}

impl State {
    /// Every control set for this schema, by key.
    pub async fn controls(&self, c: &impl GenericClient) -> Result<Vec<Control>, EngineError> {
        let rows = c
            .query(
                &format!(
                    "SELECT key, value, set_by, host, application,
                            extract(epoch FROM clock_timestamp() - set_at)::float8
                       FROM {} WHERE schema = $1 ORDER BY key",
                    self.t("controls")
                ),
                &[&self.schema],
            )
            .await
            .map_err(|e| EngineError::db("reading the controls", e))?;
        Ok(rows
            .iter()
            .map(|r| Control {
                key: r.get(0),
                value: r.get(1),
                set_by: r.get(2),
                host: r.get(3),
                application: r.get(4),
                age_s: r.get(5),
            })
            .collect())
    }

    /// Set control `key` to `value`, or clear it with `None` (the caller writes the
    /// change to the event log).
    pub async fn set_control(
        &self,
        c: &impl GenericClient,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), EngineError> {
        let done = match value {
            Some(v) => {
                c.execute(
                    &format!(
                        "INSERT INTO {} (schema, key, value) VALUES ($1, $2, $3)
                         ON CONFLICT (schema, key) DO UPDATE
                            SET value = EXCLUDED.value, set_by = DEFAULT, host = DEFAULT,
                                application = DEFAULT, set_at = DEFAULT",
                        self.t("controls")
                    ),
                    &[&self.schema, &key, &v],
                )
                .await
            }
            None => {
                c.execute(
                    &format!(
                        "DELETE FROM {} WHERE schema = $1 AND key = $2",
                        self.t("controls")
                    ),
                    &[&self.schema, &key],
                )
                .await
            }
        };
        done.map_err(|e| EngineError::db("setting a control", e))?;
        Ok(())
    }

    /// The running process's heartbeat: who runs which migration, and its latest health.
    pub async fn heartbeat(
        &self,
        c: &impl GenericClient,
        migration: Option<&str>,
        health: &serde_json::Value,
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "INSERT INTO {} (schema, migration, health) VALUES ($1, $2, $3)
                 ON CONFLICT (schema) DO UPDATE
                    SET migration = EXCLUDED.migration, pid = DEFAULT, host = DEFAULT,
                        application = DEFAULT, seen_at = DEFAULT, health = EXCLUDED.health,
                        started_at = CASE WHEN {t}.pid = pg_backend_pid()
                                          THEN {t}.started_at ELSE clock_timestamp() END",
                self.t("runners"),
                t = self.t("runners")
            ),
            &[&self.schema, &migration, health],
        )
        .await
        .map_err(|e| EngineError::db("writing the heartbeat", e))?;
        Ok(())
    }

    /// The last heartbeat of the process running on this schema, if any ever ran.
    pub async fn runner(&self, c: &impl GenericClient) -> Result<Option<RunnerRow>, EngineError> {
        let row = c
            .query_opt(
                &format!(
                    "SELECT migration, pid, host, application,
                            extract(epoch FROM clock_timestamp() - seen_at)::float8, health
                       FROM {} WHERE schema = $1",
                    self.t("runners")
                ),
                &[&self.schema],
            )
            .await
            .map_err(|e| EngineError::db("reading the heartbeat", e))?;
        Ok(row.map(|r| RunnerRow {
            migration: r.get(0),
            pid: r.get(1),
            host: r.get(2),
            application: r.get(3),
            seen_s: r.get(4),
            health: r.get(5),
        }))
    }
}
