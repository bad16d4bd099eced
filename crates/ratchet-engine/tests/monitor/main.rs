//! The health monitors: the policy and the AIMD throttle without a database, then on
//! real PostgreSQL a load spike (pgbench), replication lag from a real standby, and a
//! failing monitor, each driving a backfill through throttle, pause, resume or stop.

#[path = "../common/mod.rs"]
mod common;

mod failing;
mod load_spike;
mod policy;
mod replication;
mod samplers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratchet_engine::backfill::{BatchStats, Decision, Throttle, Throttles};
use ratchet_engine::config::MonitorConfig;
use ratchet_engine::monitor::Monitors;
use ratchet_engine::report::{Event, HealthState};
use ratchet_engine::state::State;
use ratchet_engine::{Config, Engine, Reporter};
use tokio_postgres::Client;

pub const TYPE_CHANGE: &str = r#"
operations:
  - alter_column:
      table: items
      column: amount
      type: bigint
      up: CAST(amount AS bigint)
      down: CAST(amount AS text)
"#;

pub const ITEMS: &str = r#"
operations:
  - create_table:
      name: items
      columns:
        - name: id
          type: bigint
          pk: true
          generated:
            identity:
              user_specified_values: BY DEFAULT
        - name: amount
          type: text
          nullable: true
"#;

/// Monitors that react within a second: short intervals and windows.
pub fn fast_monitors() -> MonitorConfig {
    MonitorConfig {
        interval: Duration::from_millis(200),
        probe_interval: Duration::from_millis(50),
        probe_window: Duration::from_secs(1),
        probe_baseline: Duration::from_millis(500),
        max_throttle: Duration::from_secs(1),
        max_pause: Duration::from_secs(120),
        ..MonitorConfig::default()
    }
}

pub fn config_with(monitor: MonitorConfig) -> Config {
    Config {
        monitor,
        ..common::config()
    }
}

pub fn state() -> State {
    State {
        state_schema: "ratchet".into(),
        schema: "public".into(),
    }
}

/// Every event, kept.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Event>>);

impl Reporter for Collect {
    fn report(&self, e: &Event) {
        self.0.lock().unwrap().push(e.clone());
    }
}

impl Collect {
    pub fn health_states(&self) -> Vec<HealthState> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Health(h) => Some(h.state),
                _ => None,
            })
            .collect()
    }
}

/// Wraps a hook and keeps every decision it made between batches.
pub struct Recording {
    pub inner: Arc<dyn Throttle>,
    pub seen: Mutex<Vec<Decision>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn Throttle>) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            seen: Mutex::new(vec![]),
        })
    }

    /// The kinds of decisions in order, consecutive repeats folded: "continue",
    /// "throttle", "pause", "stop" ("recovering" throttles count as continue).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = vec![];
        for d in self.seen.lock().unwrap().iter() {
            let k = match d {
                Decision::Continue => "continue",
                Decision::Throttle { reason, .. } if reason.starts_with("recovering") => "continue",
                Decision::Throttle { .. } => "throttle",
                Decision::Pause(_) => "pause",
                Decision::Stop(_) => "stop",
            };
            if out.last() != Some(&k) {
                out.push(k);
            }
        }
        out
    }
}

impl Throttle for Recording {
    fn after_batch(&self, stats: &BatchStats) -> Decision {
        let d = self.inner.after_batch(stats);
        self.seen.lock().unwrap().push(d.clone());
        d
    }

    fn before_attempt(&self) -> Decision {
        self.inner.before_attempt()
    }
}

/// Paces the backfill (small batches, a short wait each) so that it lasts long enough
/// for the monitors to act on a 2-core machine shared with other builds.
pub struct Pace {
    pub rows: i64,
    pub wait: Duration,
}

impl Throttle for Pace {
    fn after_batch(&self, _: &BatchStats) -> Decision {
        Decision::Throttle {
            max_batch: self.rows,
            wait: self.wait,
            reason: "recovering: the test's pace".into(),
        }
    }
}

/// The monitors' hook, recorded, beside a pace.
pub async fn install(
    e: &mut Engine,
    url: &str,
    config: &Config,
    reporter: Arc<Collect>,
    pace: Pace,
) -> (Monitors, Arc<Recording>) {
    let (monitors, hook) = Monitors::start(url, config, reporter, state())
        .await
        .unwrap();
    let rec = Recording::new(hook);
    e.set_throttle(Arc::new(Throttles(vec![rec.clone(), Arc::new(pace)])));
    (monitors, rec)
}

/// Create `items` with `rows` rows and start the type change without its backfill.
pub async fn items_started(url: &str, files: &common::Files, rows: i64, config: &Config) -> Engine {
    let mut off = config.clone();
    off.monitor.enabled = false;
    off.run_backfill = false;
    let mut e = Engine::connect(url, off.clone(), Arc::new(ratchet_engine::Silent))
        .await
        .unwrap();
    e.start(&files.migration("01_items.yaml", ITEMS))
        .await
        .unwrap();
    common::complete(&mut e).await.unwrap();
    // A batch is whole pages: with a tenth of each page filled, the tests' small batches
    // (a few hundred rows) take about as many rows as they ask for, and the backfill
    // runs long enough for the monitors to act on it.
    e.client()
        .batch_execute("ALTER TABLE public.items SET (fillfactor = 10)")
        .await
        .unwrap();
    e.client()
        .execute(
            "INSERT INTO public.items (amount) SELECT g::text FROM generate_series(1, $1::bigint) g",
            &[&rows],
        )
        .await
        .unwrap();
    e.start(&files.migration("02_type.yaml", TYPE_CHANGE))
        .await
        .unwrap();
    drop(e);
    Engine::connect(url, config.clone(), Arc::new(ratchet_engine::Silent))
        .await
        .unwrap()
}

/// (rows, rows filled, the new column's sum, what it should be).
pub async fn filled(c: &Client) -> (i64, i64, i64, i64) {
    let r = c
        .query_one(
            "SELECT count(*), count(_ratchet_new_amount),
                    coalesce(sum(_ratchet_new_amount), 0)::bigint,
                    coalesce(sum(CAST(amount AS bigint)), 0)::bigint
               FROM public.items",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

/// The monitors' event rows: (kind, reasons joined).
pub async fn monitor_events(c: &Client) -> Vec<(String, String)> {
    c.query(
        "SELECT kind, coalesce(detail->>'reason', detail->'reasons'->>0, '')
           FROM ratchet.events WHERE kind IN ('throttle', 'pause', 'resume', 'stop')
          ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Wait until `f` holds, at most `limit`.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}
