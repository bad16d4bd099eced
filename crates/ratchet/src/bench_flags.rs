//! `ratchet bench flags`: how many `ratchet.flag(name, key)` calls one session makes per
//! second from SQL, next to the same number of plain primary-key lookups of the flag's
//! row (what any hand-rolled flag table costs), in one run on the same server.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use ratchet_engine::{Config, Engine, Silent};
use ratchet_scratch::connect;

use crate::output::line;

#[derive(clap::Args, Debug)]
pub struct FlagsBench {
    /// Calls per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub calls: i64,
    /// Measurements of each; the best is reported (min/median/max beside it).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Use this (disposable) database instead of a throwaway cluster.
    #[arg(long, env = "RATCHET_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
}

pub async fn run(b: &FlagsBench) -> anyhow::Result<i32> {
    let (_cluster, url) = crate::bench::server(b.database_url.as_deref()).await?;
    // The state schema with its functions, as every engine command creates it.
    let engine = Engine::connect(&url, Config::default(), Arc::new(Silent)).await?;
    drop(engine);
    let c = connect(&url).await?;
    c.batch_execute(
        "INSERT INTO ratchet.flags (name, schema, state, percent) VALUES ('bench.read_new', 'public', 'percent', 30)
           ON CONFLICT (name) DO UPDATE SET state = 'percent', percent = 30;
         DROP TABLE IF EXISTS bench_flag_lookup;
         CREATE TABLE bench_flag_lookup (name text PRIMARY KEY, percent int NOT NULL);
         INSERT INTO bench_flag_lookup VALUES ('bench.read_new', 30);
         ANALYZE bench_flag_lookup;",
    )
    .await?;
    let flag = format!(
        "SELECT count(*) FROM generate_series(1, {}) i WHERE ratchet.flag('bench.read_new', i::text)",
        b.calls
    );
    // A correlated subquery: one index lookup of the flag's row per key.
    let lookup = format!(
        "SELECT count(*) FROM generate_series(1, {}) i
          WHERE (SELECT l.percent FROM bench_flag_lookup l WHERE l.name = 'bench.read_new' AND i > 0) > i % 100",
        b.calls
    );
    line(format!(
        "{} calls per measurement, {} measurements, one session\n",
        b.calls, b.runs
    ));
    line(format!(
        "{:<44} {:>12} {:>12} {:>12}",
        "", "best /s", "median /s", "worst /s"
    ));
    let mut best = Vec::new();
    for (name, sql) in [
        ("plain primary-key lookup (baseline)", &lookup),
        ("ratchet.flag(name, key)", &flag),
    ] {
        let mut rates = Vec::new();
        for _ in 0..b.runs.max(1) {
            let t = Instant::now();
            c.query_one(sql.as_str(), &[]).await?;
            rates.push(b.calls as f64 / t.elapsed().as_secs_f64());
        }
        rates.sort_by(|a, b| b.total_cmp(a));
        line(format!(
            "{name:<44} {:>12.0} {:>12.0} {:>12.0}",
            rates[0],
            rates[rates.len() / 2],
            rates[rates.len() - 1]
        ));
        best.push(rates[0]);
    }
    line(format!(
        "\nratchet.flag(): {:.0} calls/s, {:.0}% of the plain lookup's rate (goal ≥ 100,000/s in one session)",
        best[1],
        best[1] / best[0] * 100.0
    ));
    c.batch_execute(
        "DROP TABLE bench_flag_lookup; DELETE FROM ratchet.flags WHERE name = 'bench.read_new';",
    )
    .await?;
    Ok(0)
}
