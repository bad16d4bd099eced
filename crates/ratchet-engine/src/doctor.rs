//! `ratchet doctor`: what the server and the current role offer, probed in a handful of
//! catalog queries (well under a second), read only. The same probe runs when an engine
//! command connects: a capability the migration cannot do without refuses the command
//! at once, with the doctor's reason, instead of failing mid-migration.

use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::error::{EngineError, Refusal};

/// The oldest and newest PostgreSQL major versions ratchet is tested on.
pub const SUPPORTED: std::ops::RangeInclusive<i32> = 14..=18;

/// What `version()` and the installed functions say the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    PostgreSQL,
    Aurora,
    Citus,
    CockroachDB,
    YugabyteDB,
}

/// How a capability stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Present.
    Ok,
    /// Absent or weak; ratchet works around it or works with less (e.g. no monitors).
    Warn,
    /// Absent, and ratchet cannot migrate without it.
    Missing,
}

/// One row of the doctor's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub verdict: Verdict,
    /// What was found, and what it means for ratchet.
    pub detail: String,
}

/// Everything the doctor found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub version: String,
    pub server_version_num: i32,
    pub flavour: Flavour,
    pub role: String,
    pub checks: Vec<Check>,
    /// Settings that shape a migration: `lock_timeout`, `statement_timeout`,
    /// `idle_in_transaction_session_timeout`, `max_connections`, `wal_level`, ….
    pub settings: Vec<(String, String)>,
}

impl Report {
    /// The first capability no migration can do without, as a refusal: the server, row
    /// triggers, advisory locks, transactional DDL. (Missing privileges are the doctor's
    /// to show: PostgreSQL names them precisely when a statement needs one.)
    pub fn require(&self) -> Result<(), EngineError> {
        const REQUIRED: [&str; 4] = [
            "server",
            "row triggers",
            "advisory locks",
            "transactional DDL",
        ];
        let required: Vec<Check> = self
            .checks
            .iter()
            .filter(|c| REQUIRED.contains(&c.name.as_str()))
            .cloned()
            .collect();
        refuse_missing(&required)
    }
}

/// The first `Missing` of `checks`, as a refusal with the doctor's reason.
fn refuse_missing(checks: &[Check]) -> Result<(), EngineError> {
    match checks.iter().find(|c| c.verdict == Verdict::Missing) {
        None => Ok(()),
        Some(c) => Err(EngineError::refused(
            Refusal::Capability,
            format!(
                "{}: {} (`ratchet doctor` lists what this server and role offer)",
                c.name, c.detail
            ),
        )),
    }
}

fn check(name: &str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_string(),
        verdict,
        detail: detail.into(),
    }
}

fn flavour_of(version: &str, aurora: bool, citus: bool) -> Flavour {
    if version.contains("CockroachDB") {
        Flavour::CockroachDB
    } else if version.contains("-YB-") || version.to_lowercase().contains("yugabyte") {
        Flavour::YugabyteDB
    } else if aurora {
        Flavour::Aurora
    } else if citus {
        Flavour::Citus
    } else {
        Flavour::PostgreSQL
    }
}

/// What an engine command checks when it connects: only what no migration can do
/// without and that one query can tell (the server and its flavour, PL/pgSQL for the
/// triggers, transactional DDL; the migration lock taken next proves advisory locks).
/// Returns `server_version_num`.
pub async fn require(client: &impl GenericClient) -> Result<i32, EngineError> {
    let row = client
        .query_one(
            "SELECT version(), current_setting('server_version_num')::int,
                    to_regproc('aurora_version') IS NOT NULL,
                    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus'),
                    EXISTS (SELECT 1 FROM pg_language WHERE lanname = 'plpgsql')",
            &[],
        )
        .await
        .map_err(|e| EngineError::db("probing the server", e))?;
    let version: String = row.get(0);
    let num: i32 = row.get(1);
    let flavour = flavour_of(&version, row.get(2), row.get(3));
    let checks = vec![
        version_check(num, flavour),
        triggers_check(row.get(4)),
        ddl_check(flavour),
    ];
    refuse_missing(&checks)?;
    Ok(num)
}

/// Connect to `url` and probe (`ratchet doctor`); writes nothing.
pub async fn probe_url(url: &str, schema: &str) -> Result<Report, EngineError> {
    let client = crate::session::open(url).await?;
    probe(&client, schema).await
}

/// Probe the server and the current role; `schema` is the schema ratchet would migrate.
pub async fn probe(client: &impl GenericClient, schema: &str) -> Result<Report, EngineError> {
    let db = |what: &'static str| move |e| EngineError::db(what, e);
    let row = client
        .query_one(
            "SELECT version(), current_setting('server_version_num')::int, current_user::text,
                    to_regproc('aurora_version') IS NOT NULL,
                    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus'),
                    EXISTS (SELECT 1 FROM pg_language WHERE lanname = 'plpgsql'),
                    has_database_privilege(current_database(), 'CREATE'),
                    EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                    COALESCE(has_schema_privilege($1, 'CREATE'), false),
                    pg_has_role('pg_monitor', 'MEMBER'),
                    pg_has_role('pg_signal_backend', 'MEMBER'),
                    (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
                    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')",
            &[&schema],
        )
        .await
        .map_err(db("probing the server"))?;
    let version: String = row.get(0);
    let num: i32 = row.get(1);
    let flavour = flavour_of(&version, row.get(3), row.get(4));
    let superuser: bool = row.get(11);
    let mut checks = vec![version_check(num, flavour), views_check(num, flavour)];
    checks.push(triggers_check(row.get(5)));
    checks.push(advisory_lock_check(client).await);
    checks.push(ddl_check(flavour));
    checks.push(privilege_check(
        row.get(6),
        row.get::<_, bool>(7),
        row.get(8),
        schema,
        superuser,
    ));
    checks.push(trigger_privilege_check(client, schema).await?);
    let monitor: bool = row.get(9);
    checks.push(check(
        "monitoring",
        if monitor || superuser { Verdict::Ok } else { Verdict::Warn },
        if monitor || superuser {
            "pg_monitor (or superuser): other sessions' queries and the standbys' lag are visible"
        } else {
            "not a member of pg_monitor: other roles' queries and replication lag are hidden from the monitors (`GRANT pg_monitor TO …`)"
        },
    ));
    let signal: bool = row.get(10);
    checks.push(check(
        "signal other sessions",
        if signal || superuser { Verdict::Ok } else { Verdict::Warn },
        if signal || superuser {
            "pg_signal_backend (or superuser): a session blocking a step can be named and cancelled"
        } else {
            "not a member of pg_signal_backend: blockers are named but cannot be cancelled by this role"
        },
    ));
    checks.push(if row.get(12) {
        check(
            "pg_stat_statements",
            Verdict::Ok,
            "installed: statement latency of the migrated tables is watched",
        )
    } else {
        check(
            "pg_stat_statements",
            Verdict::Warn,
            "not installed: only the probe query measures latency",
        )
    });
    let settings = settings(client).await?;
    Ok(Report {
        version,
        server_version_num: num,
        flavour,
        role: row.get(2),
        checks,
        settings,
    })
}

fn version_check(num: i32, flavour: Flavour) -> Check {
    let major = num / 10000;
    if flavour == Flavour::CockroachDB {
        return check(
            "server",
            Verdict::Missing,
            "CockroachDB speaks PostgreSQL's protocol but has no updatable views with row triggers behind them, which version schemas need",
        );
    }
    if SUPPORTED.contains(&major) {
        check(
            "server",
            Verdict::Ok,
            format!("PostgreSQL {major} ({flavour:?}), supported"),
        )
    } else if major < *SUPPORTED.start() {
        check(
            "server",
            Verdict::Missing,
            format!(
                "PostgreSQL {major} is older than the oldest supported, {}",
                SUPPORTED.start()
            ),
        )
    } else {
        check(
            "server",
            Verdict::Warn,
            format!(
                "PostgreSQL {major} is newer than ratchet is tested on ({})",
                SUPPORTED.end()
            ),
        )
    }
}

fn triggers_check(plpgsql: bool) -> Check {
    if plpgsql {
        check(
            "row triggers",
            Verdict::Ok,
            "PL/pgSQL is installed: the dual-write triggers can be created",
        )
    } else {
        check(
            "row triggers",
            Verdict::Missing,
            "PL/pgSQL is not installed, and the dual-write triggers are written in it; `CREATE EXTENSION plpgsql`",
        )
    }
}

fn ddl_check(flavour: Flavour) -> Check {
    if flavour == Flavour::CockroachDB {
        check(
            "transactional DDL",
            Verdict::Missing,
            "schema changes are not transactional here: a step could be half-applied",
        )
    } else {
        check(
            "transactional DDL",
            Verdict::Ok,
            "every step's DDL commits or rolls back with its completion marker",
        )
    }
}

fn views_check(num: i32, flavour: Flavour) -> Check {
    if num >= 150000 && flavour != Flavour::CockroachDB {
        check(
            "security_invoker views",
            Verdict::Ok,
            "version schemas' views apply the reader's privileges and row-level security",
        )
    } else {
        check(
            "security_invoker views",
            Verdict::Warn,
            "not before PostgreSQL 15: views read as their owner, so a table with row-level security is refused",
        )
    }
}

async fn advisory_lock_check(client: &impl GenericClient) -> Check {
    let probe = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtext('ratchet doctor')) AND pg_advisory_unlock(hashtext('ratchet doctor'))",
            &[],
        )
        .await;
    match probe {
        Ok(r) if r.get::<_, Option<bool>>(0) == Some(true) => check(
            "advisory locks",
            Verdict::Ok,
            "one ratchet process per database at a time (the migration lock)",
        ),
        Ok(_) => check(
            "advisory locks",
            Verdict::Warn,
            "the probe lock is held by another session (a ratchet process running?)",
        ),
        Err(e) => check(
            "advisory locks",
            Verdict::Missing,
            format!("session advisory locks are not available ({e}); two runners could interleave"),
        ),
    }
}

fn privilege_check(
    create_db: bool,
    schema_exists: bool,
    create_schema: bool,
    schema: &str,
    superuser: bool,
) -> Check {
    if superuser || (create_db && (create_schema || !schema_exists)) {
        check(
            "create schemas",
            Verdict::Ok,
            format!("CREATE on the database (version and state schemas) and on `{schema}`"),
        )
    } else if !create_db {
        check(
            "create schemas",
            Verdict::Missing,
            "no CREATE privilege on the database: the version schemas and the state schema cannot be created (`GRANT CREATE ON DATABASE … TO …`)",
        )
    } else {
        check(
            "create schemas",
            Verdict::Missing,
            format!("no CREATE privilege on schema `{schema}`: new columns, indexes and triggers cannot be added (`GRANT CREATE ON SCHEMA {schema} TO …`, or own its tables)"),
        )
    }
}

/// Creating a trigger needs the TRIGGER privilege (or ownership) on each table.
async fn trigger_privilege_check(
    client: &impl GenericClient,
    schema: &str,
) -> Result<Check, EngineError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
                AND NOT (has_table_privilege(c.oid, 'TRIGGER') AND pg_has_role(c.relowner, 'USAGE'))
              ORDER BY 1 LIMIT 6",
            &[&schema],
        )
        .await
        .map_err(|e| EngineError::db("reading table privileges", e))?;
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(if names.is_empty() {
        check(
            "alter the tables",
            Verdict::Ok,
            format!("owns (and may add triggers to) every table of `{schema}`"),
        )
    } else {
        check(
            "alter the tables",
            Verdict::Warn,
            format!(
                "does not own {}{}: migrations that change them need their owner's role",
                names
                    .iter()
                    .take(5)
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if names.len() > 5 { " and more" } else { "" }
            ),
        )
    })
}

async fn settings(client: &impl GenericClient) -> Result<Vec<(String, String)>, EngineError> {
    let rows = client
        .query(
            "SELECT name, setting || COALESCE(unit, '') FROM pg_settings
              WHERE name = ANY ($1) ORDER BY name",
            &[&vec![
                "lock_timeout",
                "statement_timeout",
                "idle_in_transaction_session_timeout",
                "transaction_timeout",
                "max_connections",
                "wal_level",
                "max_wal_senders",
                "shared_preload_libraries",
            ]],
        )
        .await
        .map_err(|e| EngineError::db("reading settings", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavours_are_told_apart_by_version_and_functions() {
        assert_eq!(
            flavour_of("PostgreSQL 16.2 on x86_64", false, false),
            Flavour::PostgreSQL
        );
        assert_eq!(
            flavour_of("PostgreSQL 15.4 on aarch64", true, false),
            Flavour::Aurora
        );
        assert_eq!(flavour_of("PostgreSQL 16.1", false, true), Flavour::Citus);
        assert_eq!(
            flavour_of(
                "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu)",
                false,
                false
            ),
            Flavour::CockroachDB
        );
        assert_eq!(
            flavour_of("PostgreSQL 11.2-YB-2.18.0.0-b0", false, false),
            Flavour::YugabyteDB
        );
    }

    #[test]
    fn versions_outside_the_tested_range_are_named() {
        assert_eq!(
            version_check(130010, Flavour::PostgreSQL).verdict,
            Verdict::Missing
        );
        assert_eq!(
            version_check(140000, Flavour::PostgreSQL).verdict,
            Verdict::Ok
        );
        assert_eq!(
            version_check(180001, Flavour::PostgreSQL).verdict,
            Verdict::Ok
        );
        assert_eq!(
            version_check(190000, Flavour::PostgreSQL).verdict,
            Verdict::Warn
        );
        assert_eq!(
            version_check(130000, Flavour::CockroachDB).verdict,
            Verdict::Missing
        );
        assert_eq!(
            views_check(140000, Flavour::PostgreSQL).verdict,
            Verdict::Warn
        );
    }
}
