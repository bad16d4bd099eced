//! A fresh database per integration test (the idea of sqlx's `#[sqlx::test]`).
//!
//! Every test gets its own `ratchet_test_<pid>_<n>` database, so tests run in parallel
//! without seeing each other. The server is `DATABASE_URL` when set; otherwise one
//! scratch [`Cluster`] per test process, started on first use and stopped by its
//! watchdog when the process exits. Databases left behind by crashed runs are swept
//! when the first test of a process starts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio_postgres::Client;

pub use crate::connect;
use crate::{Cluster, ScratchError};

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct Server {
    /// URL of the maintenance database (`postgres`), used to create and drop test dbs.
    admin_url: String,
    _cluster: Option<Cluster>,
}

/// Replace the database name in a `postgres://…/db?opts` URL.
pub fn url_with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

fn server() -> Result<&'static Server, ScratchError> {
    let s = SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Ok(Server {
                admin_url: url_with_db(&url, "postgres"),
                _cluster: None,
            });
        }
        Cluster::start_with_watchdog()
            .map(|c| Server {
                admin_url: c.url("postgres"),
                _cluster: Some(c),
            })
            .map_err(|e| e.to_string())
    });
    s.as_ref().map_err(|e| ScratchError::CommandFailed {
        command: "start scratch cluster".into(),
        status: "failed".into(),
        output: e.clone(),
    })
}

/// A database of its own for one test; dropped (with `FORCE`) when the value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDb {
    /// Create a fresh, empty database.
    pub async fn new() -> TestDb {
        let server = server().expect("a PostgreSQL server for the tests");
        let admin = connect(&server.admin_url)
            .await
            .expect("connect to the test server");
        if COUNTER.fetch_add(1, Ordering::SeqCst) == 0 {
            sweep_stale(&admin).await;
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("ratchet_test_{}_{n}", std::process::id());
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        TestDb {
            url: url_with_db(&server.admin_url, &name),
            name,
            admin_url: server.admin_url.clone(),
        }
    }

    /// A new connection to this test's database.
    pub async fn client(&self) -> Client {
        connect(&self.url).await.expect("connect to test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a tokio runtime, which must not be blocked on: use a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(c) = connect(&admin_url).await {
                        let _ = c
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

/// Drop test databases whose creating process is gone (a crashed or killed test run).
async fn sweep_stale(admin: &Client) {
    let Ok(rows) = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'ratchet\\_test\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name
            .trim_start_matches("ratchet_test_")
            .split('_')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// SQL that counts every write of `column` per row of `public.<table>` (keyed by `id`)
/// into `public.writes`: an `AFTER UPDATE` trigger enabled `ALWAYS`, so it fires in the
/// replica mode backfills use too. Tests use it to show no row is written twice.
pub fn count_writes_sql(table: &str, column: &str) -> String {
    format!(
        "CREATE TABLE public.writes (id bigint);
         CREATE FUNCTION public.count_writes() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF to_jsonb(NEW)->>'{column}' IS DISTINCT FROM to_jsonb(OLD)->>'{column}' THEN
             INSERT INTO public.writes VALUES (NEW.id);
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER count_writes AFTER UPDATE ON public.{table}
           FOR EACH ROW EXECUTE FUNCTION public.count_writes();
         ALTER TABLE public.{table} ENABLE ALWAYS TRIGGER count_writes;"
    )
}

/// The rows `count_writes_sql` counted, and the most writes of any one row.
pub const WRITES_PER_ROW: &str = "SELECT count(*), coalesce(max(n), 0)
    FROM (SELECT id, count(*) AS n FROM public.writes GROUP BY id) x";

#[cfg(test)]
mod tests {
    use super::url_with_db;

    #[test]
    fn replaces_database_name() {
        assert_eq!(
            url_with_db("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(url_with_db("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }
}
