//! `ratchet bench backfill`: ratchet's backfill against the two ways people fill a new
//! column by hand, on the same data in one run, so the figures are comparable.
//!
//! 1. one plain `UPDATE t SET new = <up>` over the whole table (the speed ceiling, and the
//!    thing never to do in production: one transaction locking every row);
//! 2. ratchet's batched, resumable backfill of an `add_column` with `up`, with one worker
//!    (the default) and with `--workers` sessions on slices of the table's pages; on the
//!    throwaway cluster also as a role without superuser, whose batches cannot switch the
//!    triggers off and pass their `WHEN` clause instead;
//!    next to it, for reference, the same plain UPDATE on a table that carries a
//!    `BEFORE UPDATE` row trigger it does not fire (replica mode): PostgreSQL locks, and
//!    WAL-logs the lock of, every row it updates once such a trigger exists, whether it
//!    fires or not, so this is the ceiling for any backfill that keeps dual writes on;
//! 3. the trigger-driven no-op update (`UPDATE t SET id = id` in key batches, with the
//!    cheapest possible trigger computing the new column), as hand-written scripts do it;
//! 4. the same approach shaped the way pgroll runs it: a `needs_backfill` flag column,
//!    a trigger that reads `search_path` to decide whether to compute the new column,
//!    and batches of 1,000 keys picked with `FOR NO KEY UPDATE` and joined to the update.
#![allow(clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratchet_engine::{Config, Engine, Event, Reporter};
use ratchet_scratch::{connect, Cluster};
use tokio_postgres::Client;

use crate::output::line;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchWhat {
    /// Backfill throughput and WAL per row, next to a plain UPDATE and a no-op update.
    Backfill(BackfillBench),
    /// `ratchet.flag()` calls per second from SQL, next to a plain indexed lookup.
    Flags(crate::bench_flags::FlagsBench),
    /// A backfill beside a TPC-B-like workload, monitors off and on: the workload's
    /// latency and throughput, the backfill's rate, the monitors' own cost.
    Throttle(crate::bench_throttle::ThrottleBench),
}

#[derive(clap::Args, Debug)]
pub struct BackfillBench {
    /// Rows in the table.
    #[arg(long, default_value_t = 2_000_000)]
    pub rows: i64,
    /// Batch size of the no-op-update approach.
    #[arg(long, default_value_t = 10_000)]
    pub noop_batch: i64,
    /// Batch size of the pgroll-shaped no-op update (pgroll's default is 1,000).
    #[arg(long, default_value_t = 1_000)]
    pub pgroll_batch: i64,
    /// Target duration of ratchet's backfill batches.
    #[arg(long, default_value = "200ms", value_parser = crate::engine_cmd::parse_duration)]
    pub batch_target: Duration,
    /// Sessions of ratchet's second run (the first uses one, the default of `ratchet
    /// start`); 1 skips the second run.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Runs of each approach, taken in turns (each on a fresh table); each row shows
    /// the median run, and the spread of the ratchet rows against the floor is printed
    /// (a shared machine varies by 10% and more from one run to the next).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub runs: u32,
    /// Use this (empty, disposable) database instead of a throwaway cluster.
    #[arg(long, env = "RATCHET_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

pub(crate) const UP: &str = "(a * 2)::text || b";

/// The login role of the run without superuser.
const BENCH_ROLE: &str = "ratchet_bench";

struct Figures {
    name: String,
    seconds: f64,
    wal_bytes: f64,
}

pub async fn run(a: &BenchArgs) -> anyhow::Result<i32> {
    let b = match &a.what {
        BenchWhat::Backfill(b) => b,
        BenchWhat::Flags(f) => return crate::bench_flags::run(f).await,
        BenchWhat::Throttle(t) => return crate::bench_throttle::run(t).await,
    };
    let (cluster, url) = server(b.database_url.as_deref()).await?;
    // A role without superuser, on the throwaway cluster only (it needs a role created).
    let role_url = cluster
        .as_ref()
        .map(|c| format!("postgres://{BENCH_ROLE}@127.0.0.1:{}/postgres", c.port()));
    let c = connect(&url).await?;
    line(format!(
        "{} rows per table; each approach gets a fresh, identical table\n",
        b.rows
    ));
    // Each round runs every approach once; the figures are each approach's median run.
    let mut rounds: Vec<Vec<Figures>> = Vec::new();
    for round in 1..=b.runs {
        if b.runs > 1 {
            line(format!("run {round} of {}", b.runs));
        }
        let mut r = vec![plain_update(&c, b.rows).await?];
        r.push(ratchet_backfill(&c, &url, b.rows, b.batch_target, 1, false).await?);
        if b.workers > 1 {
            r.push(ratchet_backfill(&c, &url, b.rows, b.batch_target, b.workers, false).await?);
        }
        if let Some(role_url) = &role_url {
            r.push(ratchet_backfill(&c, role_url, b.rows, b.batch_target, 1, true).await?);
        }
        r.push(plain_update_with_trigger(&c, b.rows).await?);
        r.push(noop_update(&c, b.rows, b.noop_batch).await?);
        r.push(pgroll_style(&c, b.rows, b.pgroll_batch).await?);
        rounds.push(r);
    }
    let spreads: Vec<String> = if b.runs > 1 {
        spread_against_floor(&rounds)
    } else {
        vec![]
    };
    let mut medians: Vec<Figures> = (0..rounds[0].len())
        .map(|i| median(rounds.iter().map(|r| &r[i])))
        .collect();
    let pgroll = medians.pop().expect("pgroll run");
    let noop = medians.pop().expect("no-op run");
    let ceiling = medians.pop().expect("floor run");
    let plain = medians.remove(0);
    let ratchet = medians;
    let summary: Vec<String> = ratchet
        .iter()
        .map(|r| {
            format!(
                "{}: {:.0}% of a plain UPDATE's throughput (goal ≥ 80%), {:.0}% of a plain \
                 UPDATE with a trigger present; {:.1}× the no-op update with a minimal trigger, \
                 {:.1}× the pgroll-shaped one (goal ≥ 2×)",
                r.name,
                plain.seconds / r.seconds * 100.0,
                ceiling.seconds / r.seconds * 100.0,
                noop.seconds / r.seconds,
                pgroll.seconds / r.seconds,
            )
        })
        .collect();
    let base = plain.seconds;
    let mut all = vec![plain];
    all.extend(ratchet);
    all.extend([noop, pgroll, ceiling]);
    line(format!(
        "{:<40} {:>9} {:>12} {:>14} {:>10}",
        "approach", "seconds", "rows/s", "WAL bytes/row", "vs plain"
    ));
    for f in &all {
        line(format!(
            "{:<40} {:>9.2} {:>12.0} {:>14.1} {:>9.0}%",
            f.name,
            f.seconds,
            b.rows as f64 / f.seconds,
            f.wal_bytes / b.rows as f64,
            base / f.seconds * 100.0
        ));
    }
    line("");
    for s in summary.iter().chain(&spreads) {
        line(s);
    }
    Ok(0)
}

/// The run of the median time among `runs` of one approach.
fn median<'a>(runs: impl Iterator<Item = &'a Figures>) -> Figures {
    let mut runs: Vec<&Figures> = runs.collect();
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let m = runs[runs.len() / 2];
    Figures {
        name: m.name.clone(),
        seconds: m.seconds,
        wal_bytes: m.wal_bytes,
    }
}

/// For each ratchet approach, its throughput against the floor (the plain `UPDATE` with
/// a trigger present) of the same round: min, median and max over the rounds.
fn spread_against_floor(rounds: &[Vec<Figures>]) -> Vec<String> {
    let n = rounds[0].len();
    let floor = n - 3;
    (1..floor)
        .map(|i| {
            let mut ratios: Vec<f64> = rounds
                .iter()
                .map(|r| r[floor].seconds / r[i].seconds * 100.0)
                .collect();
            ratios.sort_by(f64::total_cmp);
            format!(
                "{}: {:.0}% / {:.0}% / {:.0}% (min / median / max over {} runs) of the plain \
                 UPDATE with a trigger present in the same run (goal ≥ 95% for one worker)",
                rounds[0][i].name,
                ratios[0],
                ratios[ratios.len() / 2],
                ratios[ratios.len() - 1],
                rounds.len()
            )
        })
        .collect()
}

/// The server of a benchmark: `database_url` when given, else a throwaway cluster (kept
/// running while the returned cluster lives), and its URL.
pub(crate) async fn server(
    database_url: Option<&str>,
) -> anyhow::Result<(Option<Cluster>, String)> {
    match database_url {
        Some(u) => Ok((None, u.to_string())),
        None => {
            line("starting a throwaway PostgreSQL cluster for the benchmark");
            let cluster = tokio::task::spawn_blocking(Cluster::start_with_watchdog).await??;
            let url = cluster.url("postgres");
            Ok((Some(cluster), url))
        }
    }
}

/// The `add_column` with `up` every backfill benchmark runs: column `n` of `table`
/// computed by [`UP`], from a file in the returned directory (kept while it lives).
pub(crate) fn add_column_migration(
    table: &str,
) -> anyhow::Result<(tempfile::TempDir, ratchet_spec::Migration)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bench.yaml");
    std::fs::write(
        &file,
        format!(
            "operations:\n  - add_column:\n      table: {table}\n      up: \"{UP}\"\n      column:\n        name: n\n        type: text\n        nullable: true\n"
        ),
    )?;
    let m = ratchet_spec::load_file(&file)?;
    Ok((dir, m))
}

pub(crate) async fn fresh_table(c: &Client, name: &str, rows: i64) -> anyhow::Result<()> {
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS {name};
         CREATE TABLE {name} (id bigint PRIMARY KEY, a int NOT NULL, b text NOT NULL);
         INSERT INTO {name} SELECT g, g % 1000, 'row' FROM generate_series(1, {rows}) g;"
    ))
    .await?;
    // Outside a transaction block: one statement each.
    c.batch_execute(&format!("VACUUM (ANALYZE) {name}")).await?;
    c.batch_execute("CHECKPOINT").await?;
    Ok(())
}

async fn wal(c: &Client) -> anyhow::Result<String> {
    Ok(c.query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0))
}

async fn wal_since(c: &Client, since: &str) -> anyhow::Result<f64> {
    Ok(c.query_one(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)::float8",
        &[&since],
    )
    .await?
    .get(0))
}

/// Build `table` (untimed), prepare it with `setup` (untimed), then time `run` and count
/// the WAL it writes. The table and its trigger function `<table>_fill`, if `setup` made
/// one, are dropped afterwards.
async fn measure(
    c: &Client,
    rows: i64,
    name: &'static str,
    table: &str,
    setup: &str,
    run: impl AsyncFnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Figures> {
    fresh_table(c, table, rows).await?;
    c.batch_execute(setup).await?;
    let w = wal(c).await?;
    let t = Instant::now();
    run().await?;
    let seconds = t.elapsed().as_secs_f64();
    let wal_bytes = wal_since(c, &w).await?;
    c.batch_execute(&format!(
        "DROP TABLE {table}; DROP FUNCTION IF EXISTS {table}_fill()"
    ))
    .await?;
    Ok(Figures {
        name: name.to_string(),
        seconds,
        wal_bytes,
    })
}

async fn plain_update(c: &Client, rows: i64) -> anyhow::Result<Figures> {
    measure(
        c,
        rows,
        "plain UPDATE (one transaction)",
        "bench_plain",
        "ALTER TABLE bench_plain ADD COLUMN n text",
        async || {
            Ok(c.batch_execute(&format!("UPDATE bench_plain SET n = {UP}"))
                .await?)
        },
    )
    .await
}

/// The new column `n` of `table` and the cheapest trigger that fills it: `BEFORE <event>`,
/// computing `n` from the row, the function named `<table>_fill` as [`measure`] expects.
fn minimal_trigger(table: &str, event: &str) -> String {
    format!(
        "ALTER TABLE {table} ADD COLUMN n text;
         CREATE FUNCTION {table}_fill() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN NEW.n := (NEW.a * 2)::text || NEW.b; RETURN NEW; END $$;
         CREATE TRIGGER {table}_fill BEFORE {event} ON {table}
           FOR EACH ROW EXECUTE FUNCTION {table}_fill();"
    )
}

/// The plain UPDATE again, on a table with a `BEFORE UPDATE` row trigger that replica
/// mode keeps from firing: what the row locks such a trigger brings cost by themselves.
async fn plain_update_with_trigger(c: &Client, rows: i64) -> anyhow::Result<Figures> {
    measure(
        c,
        rows,
        "plain UPDATE, trigger present (ref.)",
        "bench_plain_trg",
        &minimal_trigger("bench_plain_trg", "UPDATE OF a, b"),
        async || {
            Ok(c.batch_execute(&format!(
                "BEGIN; SET LOCAL session_replication_role = replica;
                 UPDATE bench_plain_trg SET n = {UP}; COMMIT;"
            ))
            .await?)
        },
    )
    .await
}

/// Records how long the backfill step took.
#[derive(Default)]
pub(crate) struct StepClock(Mutex<Option<Duration>>);

impl StepClock {
    /// The backfill step's seconds (NaN when it did not run).
    pub(crate) fn seconds(&self) -> f64 {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|d| d.as_secs_f64())
            .unwrap_or(f64::NAN)
    }
}

impl Reporter for StepClock {
    fn report(&self, e: &Event) {
        if let Event::StepDone {
            description,
            duration,
            ..
        } = e
        {
            if description.starts_with("backfill") {
                *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(*duration);
            }
        }
    }
}

async fn ratchet_backfill(
    c: &Client,
    url: &str,
    rows: i64,
    target: Duration,
    workers: usize,
    as_role: bool,
) -> anyhow::Result<Figures> {
    fresh_table(c, "bench_ratchet", rows).await?;
    let mut config = Config::default();
    if as_role {
        // May create schemas and owns the table, nothing more: it cannot switch triggers
        // off with `session_replication_role`, so the backfill's writes pass the
        // dual-write triggers' WHEN clause instead.
        c.batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{BENCH_ROLE}') THEN
                 CREATE ROLE {BENCH_ROLE} LOGIN;
               END IF;
               EXECUTE format('GRANT CREATE ON DATABASE %I TO {BENCH_ROLE}', current_database());
             END $$;
             GRANT USAGE, CREATE ON SCHEMA public TO {BENCH_ROLE};
             ALTER TABLE bench_ratchet OWNER TO {BENCH_ROLE};
             DROP SCHEMA IF EXISTS ratchet_{BENCH_ROLE} CASCADE;"
        ))
        .await?;
        config.state_schema = format!("ratchet_{BENCH_ROLE}");
    }
    let (_dir, m) = add_column_migration("bench_ratchet")?;
    let clock = Arc::new(StepClock::default());
    config.backfill.target = target;
    config.backfill.workers = workers;
    let mut engine = Engine::connect(url, config, clock.clone()).await?;
    let w = wal(c).await?;
    engine.start(&m).await?;
    let wal_bytes = wal_since(c, &w).await?;
    engine.abort().await?;
    let seconds = clock.seconds();
    Ok(Figures {
        name: format!(
            "ratchet backfill, {workers} worker{}{}",
            if workers == 1 { "" } else { "s" },
            if as_role { ", no superuser" } else { "" }
        ),
        seconds,
        wal_bytes,
    })
}

async fn noop_update(c: &Client, rows: i64, batch: i64) -> anyhow::Result<Figures> {
    measure(
        c,
        rows,
        "no-op UPDATE with trigger (batched)",
        "bench_noop",
        &minimal_trigger("bench_noop", "UPDATE"),
        async || {
            let mut lo = 0i64;
            while lo < rows {
                c.execute(
                    "UPDATE bench_noop SET id = id WHERE id > $1 AND id <= $2",
                    &[&lo, &(lo + batch)],
                )
                .await?;
                lo += batch;
            }
            Ok(())
        },
    )
    .await
}

/// The no-op update as pgroll runs it (see the module comment). Written from its
/// documented behaviour: a boolean marks the rows still to fill, the trigger compares
/// `search_path` with the new version's schema on every row, and each batch locks its
/// keys before the join update that fires the trigger.
async fn pgroll_style(c: &Client, rows: i64, batch: i64) -> anyhow::Result<Figures> {
    measure(
        c,
        rows,
        "no-op UPDATE, pgroll-shaped (batched)",
        "bench_pgroll",
        "ALTER TABLE bench_pgroll ADD COLUMN n text, ADD COLUMN needs_backfill boolean DEFAULT true;
         CREATE FUNCTION bench_pgroll_fill() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE
           a bench_pgroll.a%TYPE := NEW.a;
           b bench_pgroll.b%TYPE := NEW.b;
           sp text;
         BEGIN
           SELECT current_setting INTO sp FROM current_setting('search_path');
           IF sp <> 'public_bench' THEN
             NEW.n := (a * 2)::text || b;
             NEW.needs_backfill := false;
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER bench_pgroll_fill BEFORE INSERT OR UPDATE ON bench_pgroll
           FOR EACH ROW EXECUTE FUNCTION bench_pgroll_fill();",
        async || {
            let mut last = 0i64;
            loop {
                let r = c
                    .query_one(
                        "WITH batch AS (
                           SELECT id FROM bench_pgroll WHERE needs_backfill AND id > $1
                            ORDER BY id LIMIT $2 FOR NO KEY UPDATE),
                         u AS (UPDATE bench_pgroll AS t SET id = t.id FROM batch
                                WHERE t.id = batch.id RETURNING t.id)
                         SELECT max(id) FROM u",
                        &[&last, &batch],
                    )
                    .await?;
                match r.get::<_, Option<i64>>(0) {
                    Some(id) => last = id,
                    None => return Ok(()),
                }
            }
        },
    )
    .await
}
