//! Reading the event log back (`ratchet events`), and an operator's change of a control
//! written together with its event row, so that the log never misses a change.

use serde::Serialize;
use tokio_postgres::GenericClient;

use super::State;
use crate::error::EngineError;

/// One row of the event log, with who wrote it (the columns' defaults: the role, the
/// client address, the `application_name` of the session that wrote it) and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub id: i64,
    /// UTC, RFC 3339 with milliseconds.
    pub at: String,
    /// Seconds since then.
    pub age_s: f64,
    pub migration: Option<String>,
    pub kind: String,
    pub detail: serde_json::Value,
    pub who: String,
    /// The client address (`inet_client_addr()`); none over a Unix socket.
    pub host: Option<String>,
    pub application: Option<String>,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events after this id (`--follow` polls with the last id it saw).
    pub after: Option<i64>,
    pub migration: Option<String>,
    /// The latest `limit` events (still oldest first).
    pub limit: Option<i64>,
    /// Only events of these kinds (none: every kind).
    pub kinds: Vec<String>,
    /// Only events about this flag (`detail.flag`).
    pub flag: Option<String>,
}

impl State {
    /// Events of this schema, oldest first.
    pub async fn events(
        &self,
        c: &impl GenericClient,
        f: &EventFilter,
    ) -> Result<Vec<EventRow>, EngineError> {
        let sql = format!(
            "SELECT * FROM (
                SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                       extract(epoch FROM clock_timestamp() - at)::float8, migration, kind, detail, who, host(host::inet), application
                  FROM {} WHERE schema = $1 AND id > $2 AND ($3::text IS NULL OR migration = $3)
                   AND (cardinality($5::text[]) = 0 OR kind = ANY($5))
                   AND ($6::text IS NULL OR detail->>'flag' = $6)
                 ORDER BY id DESC LIMIT $4) e
             ORDER BY id",
            self.t("events")
        );
        let rows = c
            .query(
                &sql,
                &[
                    &self.schema,
                    &f.after.unwrap_or(0),
                    &f.migration,
                    &f.limit,
                    &f.kinds,
                    &f.flag,
                ],
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

    /// Set control `key` to `value` (clear it with `None`) and write the change to the
    /// event log (kind `control`, `detail` with the key, the old and the new value and
    /// `extra`'s fields), in one transaction. Returns the old value; nothing is written
    /// when the value does not change.
    pub async fn change_control(
        &self,
        c: &mut tokio_postgres::Client,
        migration: Option<&str>,
        key: &str,
        value: Option<&str>,
        extra: serde_json::Value,
    ) -> Result<(Option<String>, bool), EngineError> {
        let tx = c
            .transaction()
            .await
            .map_err(|e| EngineError::db("setting a control", e))?;
        // Serialize concurrent changes of one key: the old value in the event stays true.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!(
                "ratchet-control:{}:{}:{key}",
                self.state_schema, self.schema
            )],
        )
        .await
        .map_err(|e| EngineError::db("setting a control", e))?;
        let old = self
            .controls(&tx)
            .await?
            .into_iter()
            .find(|x| x.key == key)
            .map(|x| x.value);
        if old.as_deref() == value {
            return Ok((old, false));
        }
        self.set_control(&tx, key, value).await?;
        let mut detail = serde_json::json!({"key": key, "old": old, "new": value});
        if let (Some(d), serde_json::Value::Object(more)) = (detail.as_object_mut(), extra) {
            d.extend(more);
        }
        self.event(&tx, migration, "control", detail).await?;
        tx.commit()
            .await
            .map_err(|e| EngineError::db("setting a control", e))?;
        Ok((old, true))
    }
}
