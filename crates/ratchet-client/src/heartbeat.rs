//! The heartbeat: every instance of an application says, at a low rate, which version it
//! uses (`<state>.heartbeat(app, instance, version)`, one upsert of `clients` per instance
//! and interval). `ratchet clients` lists them, and `ratchet complete` refuses to drop a
//! version while an instance that uses it is still heard from.
//!
//! A background tokio task sends one at once and then one per interval until its
//! [`Heartbeat`] handle is dropped. A failed heartbeat is logged (`tracing`, warning) and
//! the next one is tried on time: the application never fails, and never panics, because
//! of it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, Socket};

use crate::{Error, Versioned};

/// One heartbeat per instance every 30 s: `ratchet complete` counts an instance as gone
/// after 2 minutes without one (`client_timeout`), so three may be lost in a row.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// The shortest interval a heartbeat task accepts (a zero interval would spin).
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// The running heartbeat task of one instance; dropping it stops the task.
#[derive(Debug)]
pub struct Heartbeat {
    task: JoinHandle<()>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Heartbeat {
    /// Heartbeats recorded so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Heartbeats that failed so far (each logged).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Stop sending (the same as dropping the handle).
    pub fn stop(self) {}
}

/// One way of sending a heartbeat, owned by the task.
pub(crate) trait Beat: Send + 'static {
    fn beat(&mut self) -> impl Future<Output = Result<(), Error>> + Send + '_;
}

/// Run `beat` now and every `interval` on the current tokio runtime.
pub(crate) fn spawn(v: &Versioned, interval: Duration, mut beat: impl Beat) -> Heartbeat {
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (app, instance) = (v.app().to_string(), v.instance().to_string());
    let (s, f) = (sent.clone(), failed.clone());
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(MIN_INTERVAL));
        // After a stall (a slow database), one heartbeat and then the normal rhythm, not
        // a burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match beat.beat().await {
                Ok(()) => {
                    s.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    f.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%app, %instance, error = %e, "ratchet heartbeat failed; the next one is due in {interval:?}");
                }
            }
        }
    });
    Heartbeat { task, sent, failed }
}

/// The heartbeat statement of `state_schema`.
fn heartbeat_sql(state_schema: &str) -> String {
    format!(
        "SELECT {}.heartbeat($1, $2, $3)",
        ratchet_sql::ident(state_schema)
    )
}

/// Over a client the application shares.
struct Shared {
    v: Versioned,
    client: Arc<Client>,
}

impl Beat for Shared {
    fn beat(&mut self) -> impl Future<Output = Result<(), Error>> + Send + '_ {
        self.v.send_heartbeat(self.client.as_ref())
    }
}

/// Over a connection of its own, opened (again) whenever there is none.
struct Own<T> {
    v: Versioned,
    config: tokio_postgres::Config,
    tls: T,
    client: Option<Client>,
}

impl<T> Own<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    async fn beat_own(&mut self) -> Result<(), Error> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, conn) = self
                .config
                .connect(self.tls.clone())
                .await
                .map_err(|e| Error::db("connecting for the heartbeat", e))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "ratchet heartbeat connection ended");
                }
            });
            self.client = Some(client);
        }
        let Some(client) = &self.client else {
            return Ok(());
        };
        self.v.send_heartbeat(client).await
    }
}

impl<T> Beat for Own<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn beat(&mut self) -> impl Future<Output = Result<(), Error>> + Send + '_ {
        self.beat_own()
    }
}

impl Versioned {
    /// Send one heartbeat now: `SELECT <state>.heartbeat(app, instance, version)` with
    /// [`Versioned::version`] (one unnamed statement: pooler-safe). For an application
    /// with a scheduler of its own; [`Versioned::heartbeat`] runs it in the background.
    pub async fn send_heartbeat(&self, c: &impl GenericClient) -> Result<(), Error> {
        c.query_typed(
            &heartbeat_sql(self.state_schema()),
            &[
                (&self.app(), Type::TEXT),
                (&self.instance(), Type::TEXT),
                (&self.version(), Type::TEXT),
            ],
        )
        .await
        .map_err(|e| {
            Error::state(
                "sending the heartbeat to the state schema",
                self.state_schema(),
                e,
            )
        })?;
        Ok(())
    }

    /// Heartbeats over `client` (shared with the application), one now and one every
    /// [`DEFAULT_INTERVAL`], until the handle is dropped. Needs a tokio runtime.
    pub fn heartbeat(&self, client: Arc<Client>) -> Heartbeat {
        self.heartbeat_every(client, DEFAULT_INTERVAL)
    }

    /// [`Self::heartbeat`] every `interval` (at least 10 ms).
    pub fn heartbeat_every(&self, client: Arc<Client>, interval: Duration) -> Heartbeat {
        let beat = Shared {
            v: self.clone(),
            client,
        };
        spawn(self, interval, beat)
    }

    /// [`Self::heartbeat_connect`] to a database URL (or `key=value` string), without
    /// TLS.
    pub fn heartbeat_url(&self, url: &str, interval: Duration) -> Result<Heartbeat, Error> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::db("reading the database URL of the heartbeat", e))?;
        Ok(self.heartbeat_connect(config, tokio_postgres::NoTls, interval))
    }

    /// Heartbeats over a connection of their own, made with `config` and `tls`
    /// (`tokio_postgres::NoTls` or a TLS connector): opened at the first heartbeat and
    /// again after it is lost, so a database restart only costs the heartbeats sent
    /// while it is down. Sets `application_name` to the application's name unless
    /// `config` has one.
    pub fn heartbeat_connect<T>(
        &self,
        mut config: tokio_postgres::Config,
        tls: T,
        interval: Duration,
    ) -> Heartbeat
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        if config.get_application_name().is_none() {
            config.application_name(self.app());
        }
        let beat = Own {
            v: self.clone(),
            config,
            tls,
            client: None,
        };
        spawn(self, interval, beat)
    }
}
