//! ratchet's own bookkeeping, in one schema (`ratchet` by default): migrations and their
//! phase, each step's completion, backfill bounds and the cursors of their slices (one
//! per worker), validation results, an append-only event log, the operator's controls
//! (`ratchet pause`, `ratchet set`) and the running process's heartbeat and health
//! (`state/runtime.rs`).
//!
//! Created and upgraded idempotently (`CREATE … IF NOT EXISTS`, under the migration lock)
//! by `ratchet init` and by every command that needs it. Needs no superuser: only the
//! CREATE privilege on the database.

use serde::Serialize;
use tokio_postgres::GenericClient;

mod backfills;
mod events;
pub(crate) mod flags;
mod runtime;
mod watch;

pub(crate) use backfills::{BackfillRow, BatchRecord, Slice, ValidationRecord};
pub use events::{EventFilter, EventRow};
pub use flags::{ClientRow, Flag, FlagSetting, Freeze};
pub use runtime::{Control, RunnerRow};
pub use watch::LockHolder;

use crate::error::EngineError;
use crate::plan::Plan;
use crate::sql::ident;

/// The DDL of the state schema, current version. Every statement is idempotent.
pub fn ddl(state: &str) -> String {
    let s = ident(state);
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.migrations (
    id              bigserial PRIMARY KEY,
    schema          text NOT NULL,
    name            text NOT NULL,
    checksum        text NOT NULL,
    version_schema  text NOT NULL,
    phase           text NOT NULL CHECK (phase IN ('started', 'completing', 'completed', 'aborting', 'aborted')),
    plan            jsonb NOT NULL,
    file            jsonb NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    started_by      text NOT NULL DEFAULT current_user
);
CREATE UNIQUE INDEX IF NOT EXISTS migrations_name_live
    ON {s}.migrations (schema, name) WHERE phase <> 'aborted';
CREATE UNIQUE INDEX IF NOT EXISTS migrations_one_active
    ON {s}.migrations (schema) WHERE phase IN ('started', 'completing', 'aborting');
CREATE TABLE IF NOT EXISTS {s}.steps (
    migration_id  bigint NOT NULL REFERENCES {s}.migrations (id),
    step          int NOT NULL,
    phase         text NOT NULL,
    description   text NOT NULL,
    attempts      int NOT NULL,
    duration_ms   bigint NOT NULL,
    done_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (migration_id, step)
);
CREATE TABLE IF NOT EXISTS {s}.backfills (
    migration_id  bigint NOT NULL REFERENCES {s}.migrations (id),
    step          int NOT NULL,
    cursor        jsonb,
    upper_bound   jsonb,
    rows_done     bigint NOT NULL DEFAULT 0,
    rows_total    bigint,
    batch_size    int,
    done          boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (migration_id, step)
);
CREATE TABLE IF NOT EXISTS {s}.backfill_slices (
    migration_id  bigint NOT NULL,
    step          int NOT NULL,
    slice         int NOT NULL,
    cursor        jsonb,
    upper_bound   jsonb NOT NULL,
    rows_done     bigint NOT NULL DEFAULT 0,
    batch_size    int,
    done          boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (migration_id, step, slice),
    FOREIGN KEY (migration_id, step) REFERENCES {s}.backfills
);
CREATE TABLE IF NOT EXISTS {s}.validations (
    id            bigserial PRIMARY KEY,
    migration_id  bigint NOT NULL REFERENCES {s}.migrations (id),
    checked_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    rows_checked  bigint NOT NULL,
    mismatches    bigint NOT NULL,
    repaired      bigint NOT NULL DEFAULT 0,
    passed        boolean NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS {s}.events (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    schema       text NOT NULL,
    migration    text,
    kind         text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{{}}',
    who          text NOT NULL DEFAULT current_user,
    application  text DEFAULT current_setting('application_name', true)
);
ALTER TABLE {s}.events ADD COLUMN IF NOT EXISTS host text DEFAULT inet_client_addr()::text;
CREATE TABLE IF NOT EXISTS {s}.controls (
    schema       text NOT NULL,
    key          text NOT NULL,
    value        text NOT NULL,
    set_by       text NOT NULL DEFAULT current_user,
    host         text DEFAULT inet_client_addr()::text,
    application  text DEFAULT current_setting('application_name', true),
    set_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (schema, key)
);
CREATE TABLE IF NOT EXISTS {s}.runners (
    schema       text PRIMARY KEY,
    migration    text,
    pid          int NOT NULL DEFAULT pg_backend_pid(),
    host         text DEFAULT inet_client_addr()::text,
    application  text DEFAULT current_setting('application_name', true),
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    seen_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    health       jsonb NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS {s}.flags (
    name         text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
    schema       text NOT NULL,
    migration    text,
    state        text NOT NULL DEFAULT 'off' CHECK (state IN ('off', 'on', 'percent')),
    percent      int NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    gates_complete boolean NOT NULL DEFAULT true,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    set_by       text NOT NULL DEFAULT current_user,
    host         text DEFAULT inet_client_addr()::text,
    application  text DEFAULT current_setting('application_name', true),
    set_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS {s}.freezes (
    schema       text PRIMARY KEY,
    reason       text NOT NULL,
    set_by       text NOT NULL DEFAULT current_user,
    host         text DEFAULT inet_client_addr()::text,
    application  text DEFAULT current_setting('application_name', true),
    set_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS {s}.clients (
    app          text NOT NULL CHECK (length(app) BETWEEN 1 AND 200),
    instance     text NOT NULL CHECK (length(instance) BETWEEN 1 AND 200),
    version      text NOT NULL CHECK (length(version) BETWEEN 1 AND 200),
    role         text NOT NULL DEFAULT session_user,
    host         text DEFAULT inet_client_addr()::text,
    first_seen   timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_seen    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (app, instance)
);
{functions}
"#,
        functions = functions(state)
    )
}

/// The version of the functions applications call; a state schema whose functions carry
/// another comment gets them (and the grants) again. v2 added `flag_setting(name)`.
const FUNCTIONS_VERSION: &str = "ratchet functions v2";

/// The three functions applications may call, `flag(name, key)`, `flag_setting(name)`
/// and `heartbeat(app, instance, version)`, and the state schema's grants: `USAGE` on
/// the schema and `EXECUTE` on those three for every role, nothing else. All are
/// `SECURITY DEFINER` (they run as the migration role, which owns the tables) with a
/// fixed `search_path`, so a caller's own objects named like the built-ins they use are
/// never picked up.
///
/// `flag_setting(name)` returns a flag's `state` and `percent` (no row for an unknown
/// flag): what the client crate caches to answer `flag()` locally for any key with the
/// same hash, without one query per key. It tells no more than `flag()` already does
/// to a caller who tries many keys.
///
/// Runs only when the functions are missing or older ([`FUNCTIONS_VERSION`]): a GRANT
/// or `CREATE OR REPLACE` on every command would update catalog rows that concurrent
/// commands update too. The same pass revokes every privilege on the state tables that
/// roles other than the owner got (`ALTER DEFAULT PRIVILEGES` can hand an application
/// role DML on every new table).
fn functions(state: &str) -> String {
    let s = ident(state);
    let lit = crate::sql::literal(&format!("{s}.heartbeat(text,text,text)"));
    let schema_lit = crate::sql::literal(state);
    format!(
        r#"DO $ratchet$
DECLARE
    r record;
BEGIN
    IF coalesce(obj_description(to_regprocedure({lit}), 'pg_proc'), '') <> '{FUNCTIONS_VERSION}' THEN
        CREATE OR REPLACE FUNCTION {s}.flag(name text, key text DEFAULT NULL) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $f$
            SELECT coalesce((
                SELECT CASE f.state
                         WHEN 'on' THEN true
                         WHEN 'off' THEN false
                         ELSE $2 IS NOT NULL
                              AND ('x' || left(md5(f.name || ':' || $2), 8))::bit(32)::bigint % 100 < f.percent
                       END
                  FROM {s}.flags f WHERE f.name = $1), false)
        $f$;
        COMMENT ON FUNCTION {s}.flag(text, text) IS '{FUNCTIONS_VERSION}';
        CREATE OR REPLACE FUNCTION {s}.heartbeat(app text, instance text, version text) RETURNS void
            LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $f$
            INSERT INTO {s}.clients AS c (app, instance, version, role, host)
            VALUES ($1, $2, $3, session_user, inet_client_addr()::text)
            ON CONFLICT (app, instance) DO UPDATE
               SET version = excluded.version, role = excluded.role, host = excluded.host,
                   last_seen = clock_timestamp()
        $f$;
        CREATE OR REPLACE FUNCTION {s}.flag_setting(name text) RETURNS TABLE (state text, percent int)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp ROWS 1
        AS $f$
            SELECT f.state, f.percent FROM {s}.flags f WHERE f.name = $1
        $f$;
        COMMENT ON FUNCTION {s}.flag_setting(text) IS '{FUNCTIONS_VERSION}';
        -- Functions get EXECUTE for PUBLIC when created: only these three keep it.
        REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {s} FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION {s}.flag(text, text), {s}.flag_setting(text),
                                  {s}.heartbeat(text, text, text) TO PUBLIC;
        GRANT USAGE ON SCHEMA {s} TO PUBLIC;
        FOR r IN
            SELECT DISTINCT c.oid::regclass AS rel, c.relkind,
                   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.rolname) END AS grantee
              FROM pg_class c
              CROSS JOIN LATERAL aclexplode(c.relacl) a
              LEFT JOIN pg_roles g ON g.oid = a.grantee
             WHERE c.relnamespace = {schema_lit}::regnamespace
               AND c.relkind IN ('r', 'S', 'v', 'p')
               AND a.grantee <> c.relowner
        LOOP
            EXECUTE format('REVOKE ALL ON %s %s FROM %s',
                           CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.rel, r.grantee);
        END LOOP;
        COMMENT ON FUNCTION {s}.heartbeat(text, text, text) IS '{FUNCTIONS_VERSION}';
    END IF;
END
$ratchet$;"#
    )
}

/// Where a migration stands (the `phase` column of `migrations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationPhase {
    /// Expanded (or expanding): both versions work.
    Started,
    /// `complete` has begun: only finishing it is possible.
    Completing,
    Completed,
    /// `abort` has begun: only finishing it is possible.
    Aborting,
    Aborted,
}

impl MigrationPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationPhase::Started => "started",
            MigrationPhase::Completing => "completing",
            MigrationPhase::Completed => "completed",
            MigrationPhase::Aborting => "aborting",
            MigrationPhase::Aborted => "aborted",
        }
    }

    fn parse(s: &str) -> Result<MigrationPhase, EngineError> {
        Ok(match s {
            "started" => MigrationPhase::Started,
            "completing" => MigrationPhase::Completing,
            "completed" => MigrationPhase::Completed,
            "aborting" => MigrationPhase::Aborting,
            "aborted" => MigrationPhase::Aborted,
            other => {
                return Err(EngineError::State(format!(
                    "unknown migration phase `{other}` in the state schema"
                )))
            }
        })
    }
}

impl std::fmt::Display for MigrationPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `migrations`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationRow {
    pub id: i64,
    pub name: String,
    pub checksum: String,
    pub version_schema: String,
    pub phase: MigrationPhase,
    #[serde(skip)]
    pub plan: Plan,
}

impl MigrationRow {
    pub fn is_active(&self) -> bool {
        matches!(
            self.phase,
            MigrationPhase::Started | MigrationPhase::Completing | MigrationPhase::Aborting
        )
    }
}

/// The state schema of one target schema.
#[derive(Debug, Clone)]
pub struct State {
    pub state_schema: String,
    pub schema: String,
}

impl State {
    fn t(&self, table: &str) -> String {
        format!("{}.{}", ident(&self.state_schema), ident(table))
    }

    pub async fn ensure(&self, c: &impl GenericClient) -> Result<(), EngineError> {
        c.batch_execute(&ddl(&self.state_schema))
            .await
            .map_err(|e| EngineError::db("creating the state schema", e))
    }

    /// Whether the state schema is there and current (its functions carry the current
    /// [`FUNCTIONS_VERSION`], which the last step of [`ddl`] writes).
    pub async fn exists(&self, c: &impl GenericClient) -> Result<bool, EngineError> {
        let row = c
            .query_one(
                "SELECT coalesce(obj_description(to_regprocedure($1), 'pg_proc'), '') = $2",
                &[
                    &format!("{}.heartbeat(text,text,text)", ident(&self.state_schema)),
                    &FUNCTIONS_VERSION,
                ],
            )
            .await
            .map_err(|e| EngineError::db("looking for the state schema", e))?;
        Ok(row.get(0))
    }

    /// Every migration not aborted, oldest first.
    pub async fn history(&self, c: &impl GenericClient) -> Result<Vec<MigrationRow>, EngineError> {
        let rows = c
            .query(
                &format!(
                    "SELECT id, name, checksum, version_schema, phase, plan FROM {}
                      WHERE schema = $1 AND phase <> 'aborted' ORDER BY id",
                    self.t("migrations")
                ),
                &[&self.schema],
            )
            .await
            .map_err(|e| EngineError::db("reading the migration history", e))?;
        rows.iter()
            .map(|r| {
                let plan: serde_json::Value = r.get(5);
                Ok(MigrationRow {
                    id: r.get(0),
                    name: r.get(1),
                    checksum: r.get(2),
                    version_schema: r.get(3),
                    phase: MigrationPhase::parse(r.get(4))?,
                    plan: serde_json::from_value(plan)
                        .map_err(|e| EngineError::State(format!("stored plan unreadable: {e}")))?,
                })
            })
            .collect()
    }

    pub async fn active(
        &self,
        c: &impl GenericClient,
    ) -> Result<Option<MigrationRow>, EngineError> {
        Ok(self.history(c).await?.into_iter().find(|m| m.is_active()))
    }

    pub async fn insert(
        &self,
        c: &impl GenericClient,
        name: &str,
        checksum: &str,
        plan: &Plan,
        file: &serde_json::Value,
    ) -> Result<MigrationRow, EngineError> {
        let plan_json = serde_json::to_value(plan)
            .map_err(|e| EngineError::State(format!("plan not serialisable: {e}")))?;
        let row = c
            .query_one(
                &format!(
                    "INSERT INTO {} (schema, name, checksum, version_schema, phase, plan, file)
                     VALUES ($1, $2, $3, $4, 'started', $5, $6) RETURNING id",
                    self.t("migrations")
                ),
                &[
                    &self.schema,
                    &name,
                    &checksum,
                    &plan.version_schema,
                    &plan_json,
                    file,
                ],
            )
            .await
            .map_err(|e| EngineError::db("recording the migration", e))?;
        Ok(MigrationRow {
            id: row.get(0),
            name: name.to_string(),
            checksum: checksum.to_string(),
            version_schema: plan.version_schema.clone(),
            phase: MigrationPhase::Started,
            plan: plan.clone(),
        })
    }

    pub async fn set_phase(
        &self,
        c: &impl GenericClient,
        id: i64,
        phase: MigrationPhase,
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "UPDATE {} SET phase = $2,
                        completed_at = CASE WHEN $2 IN ('completed', 'aborted') THEN now() END
                  WHERE id = $1",
                self.t("migrations")
            ),
            &[&id, &phase.as_str()],
        )
        .await
        .map_err(|e| EngineError::db("recording the migration phase", e))?;
        Ok(())
    }

    /// Indices of the steps already done.
    pub async fn done_steps(
        &self,
        c: &impl GenericClient,
        id: i64,
    ) -> Result<Vec<i32>, EngineError> {
        let rows = c
            .query(
                &format!(
                    "SELECT step FROM {} WHERE migration_id = $1",
                    self.t("steps")
                ),
                &[&id],
            )
            .await
            .map_err(|e| EngineError::db("reading finished steps", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    // One column per argument: a struct would only be unpacked again here.
    #[allow(clippy::too_many_arguments)]
    pub async fn mark_step(
        &self,
        c: &impl GenericClient,
        id: i64,
        step: usize,
        phase: &str,
        description: &str,
        attempts: u32,
        duration_ms: i64,
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "INSERT INTO {} (migration_id, step, phase, description, attempts, duration_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                self.t("steps")
            ),
            &[
                &id,
                &(step as i32),
                &phase,
                &description,
                &(attempts as i32),
                &duration_ms,
            ],
        )
        .await
        .map_err(|e| EngineError::db("recording a finished step", e))?;
        Ok(())
    }

    /// Append to the event log.
    pub async fn event(
        &self,
        c: &impl GenericClient,
        migration: Option<&str>,
        kind: &str,
        detail: serde_json::Value,
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "INSERT INTO {} (schema, migration, kind, detail) VALUES ($1, $2, $3, $4)",
                self.t("events")
            ),
            &[&self.schema, &migration, &kind, &detail],
        )
        .await
        .map_err(|e| EngineError::db("writing the event log", e))?;
        Ok(())
    }
}
