//! Feature flags, the freeze switch and the application instances' heartbeats, as the
//! state schema keeps them. Applications only reach them through `flag()` and
//! `heartbeat()` (see [`super::ddl`]); every change made here goes to the event log in
//! the same transaction, so the log never misses one.

use serde::Serialize;
use tokio_postgres::GenericClient;

use super::State;
use crate::error::EngineError;
pub use ratchet_client::FlagSetting;

/// One flag, with who changed it last and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    pub name: String,
    /// The migration that created it (none for a flag created by hand).
    pub migration: Option<String>,
    pub setting: FlagSetting,
    /// `complete` of its migration waits until it is fully on.
    pub gates_complete: bool,
    pub description: Option<String>,
    pub set_by: String,
    pub host: Option<String>,
    pub application: Option<String>,
    /// UTC, RFC 3339.
    pub set_at: String,
    /// Seconds since it was last set.
    pub age_s: f64,
}

/// The freeze of a schema: `start`, `migrate` and `complete` refuse while it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Freeze {
    pub reason: String,
    pub set_by: String,
    pub host: Option<String>,
    pub application: Option<String>,
    pub set_at: String,
    pub age_s: f64,
}

/// One application instance, as its latest heartbeat left it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientRow {
    pub app: String,
    pub instance: String,
    /// The version it said it uses (a version schema or a migration name).
    pub version: String,
    pub role: String,
    pub host: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    /// Seconds since its last heartbeat.
    pub seen_s: f64,
}

/// `column` (a timestamptz) as UTC RFC 3339 text.
fn ts(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
}

impl State {
    /// Every flag of this schema, by name.
    pub async fn flags(&self, c: &impl GenericClient) -> Result<Vec<Flag>, EngineError> {
        self.read_flags(c, None).await
    }

    pub async fn flag(
        &self,
        c: &impl GenericClient,
        name: &str,
    ) -> Result<Option<Flag>, EngineError> {
        Ok(self.read_flags(c, Some(name)).await?.into_iter().next())
    }

    async fn read_flags(
        &self,
        c: &impl GenericClient,
        name: Option<&str>,
    ) -> Result<Vec<Flag>, EngineError> {
        let rows = c
            .query(
                &format!(
                    "SELECT name, migration, state, percent, gates_complete, description, set_by,
                            host(host::inet), application, {},
                            extract(epoch FROM clock_timestamp() - set_at)::float8
                       FROM {} WHERE schema = $1 AND ($2::text IS NULL OR name = $2) ORDER BY name",
                    ts("set_at"),
                    self.t("flags")
                ),
                &[&self.schema, &name],
            )
            .await
            .map_err(|e| EngineError::db("reading the flags", e))?;
        Ok(rows
            .iter()
            .map(|r| Flag {
                name: r.get(0),
                migration: r.get(1),
                setting: FlagSetting::from_columns(r.get(2), r.get(3)),
                gates_complete: r.get(4),
                description: r.get(5),
                set_by: r.get(6),
                host: r.get(7),
                application: r.get(8),
                set_at: r.get(9),
                age_s: r.get(10),
            })
            .collect())
    }

    /// Create flag `name` (off) for `migration` unless it exists. A flag of that name
    /// owned by another schema or migration is refused: applications ask for flags by
    /// name alone.
    pub async fn create_flag(
        &self,
        c: &impl GenericClient,
        name: &str,
        migration: Option<&str>,
        gates_complete: bool,
        description: Option<&str>,
    ) -> Result<bool, EngineError> {
        let created = c
            .execute(
                &format!(
                    "INSERT INTO {} (name, schema, migration, gates_complete, description)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
                    self.t("flags")
                ),
                &[
                    &name,
                    &self.schema,
                    &migration,
                    &gates_complete,
                    &description,
                ],
            )
            .await
            .map_err(|e| EngineError::db("creating a flag", e))?
            == 1;
        if !created {
            self.check_flag_free(c, name, migration).await?;
        } else {
            self.event(
                c,
                migration,
                "flag_created",
                serde_json::json!({"flag": name, "state": "off"}),
            )
            .await?;
        }
        Ok(created)
    }

    /// Delete the flags `migration` owns (its abort: a later start of the same file
    /// creates them again, off), with one event per flag.
    pub async fn delete_flags(
        &self,
        c: &impl GenericClient,
        migration: &str,
    ) -> Result<(), EngineError> {
        let rows = c
            .query(
                &format!(
                    "DELETE FROM {} WHERE schema = $1 AND migration = $2 RETURNING name, state, percent",
                    self.t("flags")
                ),
                &[&self.schema, &migration],
            )
            .await
            .map_err(|e| EngineError::db("deleting the flags of an aborted migration", e))?;
        for r in rows {
            let name: String = r.get(0);
            let was = FlagSetting::from_columns(r.get(1), r.get(2));
            self.event(
                c,
                Some(migration),
                "flag_deleted",
                serde_json::json!({"flag": name, "old": was.to_string()}),
            )
            .await?;
        }
        Ok(())
    }

    /// Refuse when flag `name` exists for another schema or migration than `migration`
    /// of this schema: applications ask for flags by name alone.
    pub async fn check_flag_free(
        &self,
        c: &impl GenericClient,
        name: &str,
        migration: Option<&str>,
    ) -> Result<(), EngineError> {
        let Some(row) = c
            .query_opt(
                &format!(
                    "SELECT schema, migration FROM {} WHERE name = $1",
                    self.t("flags")
                ),
                &[&name],
            )
            .await
            .map_err(|e| EngineError::db("reading a flag", e))?
        else {
            return Ok(());
        };
        let (schema, owner): (String, Option<String>) = (row.get(0), row.get(1));
        if schema != self.schema || owner.as_deref() != migration {
            return Err(EngineError::State(format!(
                "flag `{name}` exists already, owned by {} in schema `{schema}`; flag names are unique in the state schema `{}`: rename the flag in the migration file",
                owner.map_or("no migration".to_string(), |o| format!("migration `{o}`")),
                self.state_schema
            )));
        }
        Ok(())
    }

    /// Write `setting` to flag `name` and the change to the event log (kind `flag`, with
    /// the old and the new setting and `extra`'s fields), in one transaction. Returns
    /// the old setting, or `None` when there is no such flag.
    pub async fn write_flag(
        &self,
        c: &mut tokio_postgres::Client,
        name: &str,
        setting: FlagSetting,
        extra: serde_json::Value,
    ) -> Result<Option<FlagSetting>, EngineError> {
        let err = |e| EngineError::db("setting a flag", e);
        let tx = c.transaction().await.map_err(err)?;
        let Some(row) = tx
            .query_opt(
                &format!(
                    "SELECT state, percent, migration FROM {} WHERE schema = $1 AND name = $2 FOR UPDATE",
                    self.t("flags")
                ),
                &[&self.schema, &name],
            )
            .await
            .map_err(err)?
        else {
            return Ok(None);
        };
        let old = FlagSetting::from_columns(row.get(0), row.get(1));
        let migration: Option<String> = row.get(2);
        let (state, percent) = setting.columns();
        tx.execute(
            &format!(
                "UPDATE {} SET state = $3, percent = $4, set_by = DEFAULT, host = DEFAULT,
                        application = DEFAULT, set_at = DEFAULT
                  WHERE schema = $1 AND name = $2",
                self.t("flags")
            ),
            &[&self.schema, &name, &state, &percent],
        )
        .await
        .map_err(err)?;
        let mut detail = serde_json::json!({
            "flag": name, "old": old.to_string(), "new": setting.to_string(),
        });
        if let (Some(d), serde_json::Value::Object(more)) = (detail.as_object_mut(), extra) {
            d.extend(more);
        }
        self.event(&tx, migration.as_deref(), "flag", detail)
            .await?;
        tx.commit().await.map_err(err)?;
        Ok(Some(old))
    }

    /// The freeze of this schema, if one stands.
    pub async fn freeze(&self, c: &impl GenericClient) -> Result<Option<Freeze>, EngineError> {
        let row = c
            .query_opt(
                &format!(
                    "SELECT reason, set_by, host(host::inet), application, {},
                            extract(epoch FROM clock_timestamp() - set_at)::float8
                       FROM {} WHERE schema = $1",
                    ts("set_at"),
                    self.t("freezes")
                ),
                &[&self.schema],
            )
            .await
            .map_err(|e| EngineError::db("reading the freeze", e))?;
        Ok(row.map(|r| Freeze {
            reason: r.get(0),
            set_by: r.get(1),
            host: r.get(2),
            application: r.get(3),
            set_at: r.get(4),
            age_s: r.get(5),
        }))
    }

    /// Set (`Some(reason)`) or lift (`None`) the freeze, with its event, in one
    /// transaction. Returns whether anything changed.
    pub async fn write_freeze(
        &self,
        c: &mut tokio_postgres::Client,
        reason: Option<&str>,
    ) -> Result<bool, EngineError> {
        let err = |e| EngineError::db("changing the freeze", e);
        let tx = c.transaction().await.map_err(err)?;
        let changed = match reason {
            Some(r) => tx
                .execute(
                    &format!(
                        "INSERT INTO {} (schema, reason) VALUES ($1, $2)
                         ON CONFLICT (schema) DO UPDATE SET reason = excluded.reason,
                            set_by = DEFAULT, host = DEFAULT, application = DEFAULT, set_at = DEFAULT",
                        self.t("freezes")
                    ),
                    &[&self.schema, &r],
                )
                .await
                .map_err(err)?,
            None => tx
                .execute(
                    &format!("DELETE FROM {} WHERE schema = $1", self.t("freezes")),
                    &[&self.schema],
                )
                .await
                .map_err(err)?,
        };
        if changed > 0 {
            let (kind, detail) = match reason {
                Some(r) => ("freeze", serde_json::json!({"reason": r})),
                None => ("unfreeze", serde_json::json!({})),
            };
            self.event(&tx, None, kind, detail).await?;
        }
        tx.commit().await.map_err(err)?;
        Ok(changed > 0)
    }

    /// Every application instance that ever sent a heartbeat, most recent first.
    pub async fn clients(&self, c: &impl GenericClient) -> Result<Vec<ClientRow>, EngineError> {
        let rows = c
            .query(
                &format!(
                    "SELECT app, instance, version, role, host(host::inet), {}, {},
                            extract(epoch FROM clock_timestamp() - last_seen)::float8
                       FROM {} ORDER BY last_seen DESC, app, instance",
                    ts("first_seen"),
                    ts("last_seen"),
                    self.t("clients")
                ),
                &[],
            )
            .await
            .map_err(|e| EngineError::db("reading the application heartbeats", e))?;
        Ok(rows
            .iter()
            .map(|r| ClientRow {
                app: r.get(0),
                instance: r.get(1),
                version: r.get(2),
                role: r.get(3),
                host: r.get(4),
                first_seen: r.get(5),
                last_seen: r.get(6),
                seen_s: r.get(7),
            })
            .collect())
    }

    /// Every migration (all schemas, aborted ones left out) as `(schema, id, name,
    /// version_schema)`: what a heartbeat's version can name.
    pub(crate) async fn versions(
        &self,
        c: &impl GenericClient,
    ) -> Result<Vec<(String, i64, String, String)>, EngineError> {
        let rows = c
            .query(
                &format!(
                    "SELECT schema, id, name, version_schema FROM {} WHERE phase <> 'aborted' ORDER BY id",
                    self.t("migrations")
                ),
                &[],
            )
            .await
            .map_err(|e| EngineError::db("reading the migrations", e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// Seconds since the last start step of migration `id` was done (`None`: its start
    /// has no finished step yet).
    pub(crate) async fn expanded_for(
        &self,
        c: &impl GenericClient,
        id: i64,
    ) -> Result<Option<f64>, EngineError> {
        Ok(c.query_one(
            &format!(
                "SELECT extract(epoch FROM clock_timestamp() - max(done_at))::float8
                       FROM {} WHERE migration_id = $1 AND phase = 'start'",
                self.t("steps")
            ),
            &[&id],
        )
        .await
        .map_err(|e| EngineError::db("reading the start's steps", e))?
        .get(0))
    }

    /// The latest validation of migration `id`: whether it passed and the write count of
    /// its tables when it began (`None` for results stored before that was recorded).
    pub(crate) async fn latest_validation_writes(
        &self,
        c: &impl GenericClient,
        id: i64,
    ) -> Result<Option<(bool, Option<i64>)>, EngineError> {
        Ok(c.query_opt(
            &format!(
                "SELECT passed, (detail->>'writes_at_start')::bigint FROM {}
                      WHERE migration_id = $1 ORDER BY id DESC LIMIT 1",
                self.t("validations")
            ),
            &[&id],
        )
        .await
        .map_err(|e| EngineError::db("reading validation results", e))?
        .map(|r| (r.get(0), r.get(1))))
    }
}

/// Rows inserted, updated and deleted in `tables` (qualified names) and their partitions
/// since the statistics were reset, from `pg_stat_all_tables`: a validation records it
/// when it begins, and `complete` validates again when it moved.
pub(crate) async fn write_count(
    c: &impl GenericClient,
    tables: &[String],
) -> Result<i64, EngineError> {
    Ok(c.query_one(
        "SELECT coalesce(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del), 0)::bigint
               FROM unnest($1::text[]) t(name)
               CROSS JOIN LATERAL (SELECT t.name::regclass AS relid
                                   UNION SELECT relid FROM pg_partition_tree(t.name::regclass)) p
               JOIN pg_stat_all_tables s ON s.relid = p.relid",
        &[&tables],
    )
    .await
    .map_err(|e| EngineError::db("reading the tables' write counts", e))?
    .get(0))
}

/// Sessions other than this one that show they use schema `version_schema` right now, as
/// far as the server lets another session see it (a session's `search_path` is not
/// visible): a lock on one of its relations (a view of that version being read or
/// written in an open transaction), or, in `pg_stat_activity`, the schema's name in the
/// session's `application_name` (whatever its state) or in the statement it is running
/// (an idle session's last statement does not count: pooled connections stay idle for
/// long). ratchet's own sessions (`application_name` starting with `ratchet`) do not
/// count.
pub(crate) async fn sessions_using(
    c: &impl GenericClient,
    version_schema: &str,
) -> Result<i64, EngineError> {
    Ok(c.query_one(
        "SELECT count(DISTINCT s.pid) FROM (
                 SELECT l.pid FROM pg_locks l JOIN pg_class r ON r.oid = l.relation
                  WHERE r.relnamespace = to_regnamespace(quote_ident($1))
                 UNION ALL
                 SELECT a.pid FROM pg_stat_activity a
                  WHERE a.backend_type = 'client backend'
                    AND (strpos(a.application_name, $1) > 0
                         OR (a.state <> 'idle' AND strpos(a.query, $1) > 0))
             ) s JOIN pg_stat_activity a ON a.pid = s.pid
             WHERE s.pid <> pg_backend_pid() AND a.application_name NOT LIKE 'ratchet%'",
        &[&version_schema],
    )
    .await
    .map_err(|e| EngineError::db("counting the sessions of a version schema", e))?
    .get(0))
}
