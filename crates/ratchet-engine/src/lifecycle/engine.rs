//! [`Engine`]: one session on one database, holding the migration lock; the façade the
//! CLI calls. Its commands are in `lifecycle/` (start, complete, abort, migrate, status,
//! grants; backfill and validate in `lifecycle/backfill.rs`); the steps run through
//! [`crate::executor::Executor`], backfills and validation through a narrow
//! [`crate::backfill::Ctx`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::backfill::Throttle;
use crate::config::Config;
use crate::error::EngineError;
use crate::executor::{BlockerWatch, Executor};
use crate::plan::{Phase, Plan, Step};
use crate::report::{Event, Reporter};
use crate::session::{open, setup_session};
use crate::state::{MigrationRow, State};

/// A connection to one database, holding the migration lock.
pub struct Engine {
    pub(crate) client: Client,
    /// Where `client` connected: backfill workers open their own sessions there.
    pub(crate) url: String,
    pub config: Config,
    pub(crate) state: State,
    pub(crate) reporter: Arc<dyn Reporter>,
    pub(crate) throttle: Arc<dyn Throttle>,
    /// Opened at the first step; samples who blocks the step's lock waits.
    watch: Option<Arc<BlockerWatch>>,
    /// `server_version_num` of the server (routes that depend on the version).
    pub(crate) server_version_num: i32,
}

impl Engine {
    /// Connect, take the migration lock and make sure the state schema exists.
    pub async fn connect(
        url: &str,
        config: Config,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Engine, EngineError> {
        let mut engine = Engine::open(url, config, reporter).await?;
        // Refuse at once what no migration could finish on (the doctor's reasons).
        engine.server_version_num = crate::doctor::require(&engine.client).await?;
        engine.take_lock().await?;
        engine.state.ensure(&engine.client).await?;
        Ok(engine)
    }

    /// A connection with its session set up, holding no lock yet.
    async fn open(
        url: &str,
        config: Config,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Engine, EngineError> {
        // Batch bounds a caller set inconsistently are made consistent here, whoever built
        // the `Config` (the CLI warns about them itself, before).
        let mut config = config;
        for c in config.normalize() {
            reporter.report(&Event::Info(format!(
                "warning: {:?} {} is out of bounds; the backfill uses {}",
                c.setting, c.given, c.used
            )));
        }
        let client = open(url).await?;
        let state = State {
            state_schema: config.state_schema.clone(),
            schema: config.schema.clone(),
        };
        let engine = Engine {
            client,
            url: url.to_string(),
            config,
            state,
            reporter,
            throttle: Arc::new(crate::backfill::NoThrottle),
            watch: None,
            server_version_num: 0,
        };
        engine.setup_session().await?;
        Ok(engine)
    }

    /// The advisory-lock key of the migration lock: one runner per state schema.
    pub(crate) fn lock_key(&self) -> String {
        format!("ratchet:{}", self.config.state_schema)
    }

    async fn setup_session(&self) -> Result<(), EngineError> {
        setup_session(&self.client, &self.config).await
    }

    /// Another session set up like the engine's own, without the migration lock (the
    /// engine's session keeps holding it): a backfill worker.
    /// The narrow view of the engine a backfill or validation works with.
    pub(crate) fn backfill_ctx(&mut self) -> crate::backfill::Ctx<'_> {
        crate::backfill::Ctx {
            client: &mut self.client,
            url: &self.url,
            config: &self.config,
            state: &self.state,
            reporter: self.reporter.clone(),
            throttle: self.throttle.clone(),
        }
    }

    /// Take the migration lock, waiting at most `lock_wait`.
    ///
    /// Polls `pg_try_advisory_lock` between sleeps instead of waiting inside
    /// `pg_advisory_lock`: a waiting statement holds a snapshot, and a running
    /// `CREATE INDEX CONCURRENTLY` of the lock holder waits for every older snapshot, so a
    /// blocking wait would make the holder deadlock (issue 9). Between two polls this
    /// session has no transaction and no snapshot open.
    async fn take_lock(&self) -> Result<(), EngineError> {
        let key = self.lock_key();
        let started = Instant::now();
        loop {
            let got: bool = self
                .client
                .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
                .await
                .map_err(|e| EngineError::db("taking the migration lock", e))?
                .get(0);
            if got {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= self.config.lock_wait {
                return Err(EngineError::Busy(waited.as_millis() as u64));
            }
            let left = self.config.lock_wait - waited;
            tokio::time::sleep(left.min(Duration::from_millis(200))).await;
        }
    }

    /// Connect without the migration lock, for commands that only read (`status`,
    /// `plan`): they must answer at once while another process runs a migration, and
    /// they never write. Only when the state schema does not exist yet is it created,
    /// under the lock like every other write.
    pub async fn connect_read_only(
        url: &str,
        config: Config,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Engine, EngineError> {
        // Read only: never runs a step, so the server version is never asked for.
        let engine = Engine::open(url, config, reporter).await?;
        if !engine.state.exists(&engine.client).await? {
            engine.take_lock().await?;
            engine.state.ensure(&engine.client).await?;
            engine.release_lock().await?;
        }
        Ok(engine)
    }

    async fn release_lock(&self) -> Result<(), EngineError> {
        let key = self.lock_key();
        self.client
            .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&key])
            .await
            .map_err(|e| EngineError::db("releasing the migration lock", e))?;
        Ok(())
    }

    /// Install the hook consulted between backfill batches (monitoring, throttling).
    pub fn set_throttle(&mut self, throttle: Arc<dyn Throttle>) {
        self.throttle = throttle;
    }

    /// Where the engine connected (the monitors open their own sessions there).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The reporter the engine tells its events to (hooks report beside it).
    pub fn reporter(&self) -> Arc<dyn Reporter> {
        self.reporter.clone()
    }

    /// The state store of this engine's schemas.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The raw client, for callers that need to read (status, tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn report(&self, e: Event) {
        self.reporter.report(&e);
    }

    /// The step runner, borrowing this engine's session and settings.
    pub(crate) fn executor(&mut self) -> Executor<'_> {
        Executor {
            client: &mut self.client,
            url: &self.url,
            config: &self.config,
            state: &self.state,
            reporter: &self.reporter,
            throttle: &self.throttle,
            watch: &mut self.watch,
            server_version_num: self.server_version_num,
        }
    }

    /// Run every step of `phase` of `m` that is not done yet.
    pub(crate) async fn run_phase(
        &mut self,
        m: &MigrationRow,
        phase: Phase,
    ) -> Result<(), EngineError> {
        self.executor().run_phase(m, phase).await
    }

    /// The steps of `plan` as they would run (for `ratchet plan`).
    pub fn describe(plan: &Plan) -> Vec<(usize, &Step)> {
        plan.steps.iter().enumerate().collect()
    }
}
