//! Error rates: rollbacks, deadlocks, recovery conflicts and temporary files per second
//! in the migrated database, as deltas of `pg_stat_database` between two samples (by the
//! server's clock). Backends publish these counters about once a second (PostgreSQL
//! 15+: at most every second, idle ones later), so a rate taken over one short interval
//! jumps between 0 and several times the truth: rates are taken over at least
//! [`WINDOW`] of samples.

use std::collections::VecDeque;

use tokio_postgres::{Client, Error};

use super::Sample;

/// The counters, in the order of [`NAMES`].
const NAMES: [&str; 5] = [
    "commits_per_s",
    "rollbacks_per_s",
    "deadlocks_per_s",
    "conflicts_per_s",
    "temp_files_per_s",
];

/// The shortest span, in seconds, a rate is taken over.
pub(super) const WINDOW: f64 = 3.0;

#[derive(Default)]
pub(super) struct Errors {
    /// (server epoch seconds, counters), oldest first.
    history: VecDeque<(f64, [f64; 5])>,
}

impl Errors {
    pub(super) async fn sample(&mut self, c: &Client) -> Result<Sample, Error> {
        let r = c
            .query_one(
                "SELECT extract(epoch FROM clock_timestamp())::float8,
                        xact_commit::float8, xact_rollback::float8, deadlocks::float8,
                        conflicts::float8, temp_files::float8
                   FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await?;
        let at: f64 = r.get(0);
        let now: [f64; 5] = std::array::from_fn(|i| r.get::<_, f64>(i + 1));
        let mut s = Sample::default();
        self.history.push_back((at, now));
        // Keep the newest sample at least WINDOW old as the base.
        while self.history.len() > 2 && self.history[1].0 <= at - WINDOW {
            self.history.pop_front();
        }
        let rates = match self.history.front() {
            Some(&(t, before)) if at > t => std::array::from_fn(|i| {
                // A stats reset makes a counter go back: no rate for that span.
                ((now[i] - before[i]) / (at - t)).max(0.0)
            }),
            _ => [0.0; 5],
        };
        for (name, rate) in NAMES.iter().zip(rates) {
            s.set(name, rate);
        }
        Ok(s)
    }
}
