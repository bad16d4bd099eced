//! Replication: each standby's replay lag and bytes behind (`pg_stat_replication`), the
//! WAL that replication slots retain, and the archiver's backlog (`pg_stat_archiver`).
//!
//! The lag in seconds is not taken from `replay_lag` alone: while a standby's replay is
//! stopped (`pg_wal_replay_pause()`, a long query on a hot standby) its replay position
//! does not move, and `replay_lag` keeps its last, small value. So the sampler keeps its
//! own history of the primary's WAL position by time, and a standby's lag is how long
//! before its last reply the first WAL it has not replayed was written (the larger of
//! the two figures). Comparing with the reply's time, not now, keeps a standby that has
//! replayed everything but not said so yet (it replies when WAL arrives, or every
//! `wal_receiver_status_interval`) from looking late.

use std::collections::VecDeque;

use tokio_postgres::{Client, Error};

use super::Sample;

/// How much WAL-position history is kept (at one sample per interval).
const HISTORY: usize = 3600;

#[derive(Default)]
pub(super) struct Replication {
    /// (server epoch seconds, WAL insert position in bytes), oldest first.
    history: VecDeque<(f64, f64)>,
}

impl Replication {
    pub(super) async fn sample(&mut self, c: &Client) -> Result<Sample, Error> {
        let r = c
            .query_one(
                "SELECT extract(epoch FROM clock_timestamp())::float8,
                        pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8,
                        (SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), 0)
                           FROM pg_replication_slots WHERE restart_lsn IS NOT NULL)::float8",
                &[],
            )
            .await?;
        let (at, lsn): (f64, f64) = (r.get(0), r.get(1));
        self.history.push_back((at, lsn));
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
        let mut s = Sample::default();
        s.set("slot_wal_retained_bytes", r.get(2));
        self.standbys(c, lsn, &mut s).await?;
        archiver(c, &mut s).await?;
        Ok(s)
    }

    async fn standbys(&self, c: &Client, lsn: f64, s: &mut Sample) -> Result<(), Error> {
        let rows = c
            .query(
                "SELECT coalesce(nullif(application_name, ''), client_addr::text, 'local'),
                        pg_wal_lsn_diff(replay_lsn, '0/0')::float8,
                        extract(epoch FROM replay_lag)::float8,
                        extract(epoch FROM reply_time)::float8, state
                   FROM pg_stat_replication",
                &[],
            )
            .await?;
        let (mut lag, mut behind) = (0f64, 0f64);
        for r in &rows {
            let name: String = r.get(0);
            let replayed: Option<f64> = r.get(1);
            let reported: Option<f64> = r.get(2);
            let reply: Option<f64> = r.get(3);
            let state: String = r.get(4);
            let bytes = replayed.map_or(0.0, |p| (lsn - p).max(0.0));
            let own = replayed.zip(reply).map_or(0.0, |(p, t)| self.lag_at(p, t));
            let l = own.max(reported.unwrap_or(0.0));
            s.notes.push(format!(
                "standby {name} ({state}): replay lag {l:.1} s, {bytes:.0} bytes behind"
            ));
            lag = lag.max(l);
            behind = behind.max(bytes);
        }
        s.set("standbys", rows.len() as f64);
        s.set("replication_lag_s", lag);
        s.set("replication_bytes_behind", behind);
        Ok(())
    }

    /// How long before `reply` (server epoch) the first WAL after `replayed` was
    /// written, by the history; 0 when none was written after it.
    fn lag_at(&self, replayed: f64, reply: f64) -> f64 {
        let Some(&(first_at, first_lsn)) = self.history.front() else {
            return 0.0;
        };
        // Written before the history began: at least since its start.
        let written = if first_lsn > replayed {
            first_at
        } else {
            match self.history.iter().find(|(_, l)| *l > replayed) {
                Some(&(t, _)) => t,
                None => return 0.0,
            }
        };
        (reply - written).max(0.0)
    }
}

/// `pg_stat_archiver`: WAL segments written but not archived yet, and whether the last
/// attempt failed (only with `archive_mode` on).
async fn archiver(c: &Client, s: &mut Sample) -> Result<(), Error> {
    let r = c
        .query_one(
            "SELECT current_setting('archive_mode') <> 'off',
                    last_archived_wal, pg_walfile_name(pg_current_wal_lsn()),
                    (SELECT setting::float8 FROM pg_settings WHERE name = 'wal_segment_size'),
                    coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)
               FROM pg_stat_archiver",
            &[],
        )
        .await?;
    if !r.get::<_, bool>(0) {
        return Ok(());
    }
    let last: Option<String> = r.get(1);
    let current: String = r.get(2);
    let seg_size: f64 = r.get(3);
    let backlog = match (
        last.as_deref().and_then(|l| segno(l, seg_size)),
        segno(&current, seg_size),
    ) {
        (Some(l), Some(c)) => (c - l - 1.0).max(0.0),
        (None, Some(c)) => c,
        _ => 0.0,
    };
    s.set("archiver_backlog_segments", backlog);
    s.set(
        "archiver_failing",
        if r.get::<_, bool>(4) { 1.0 } else { 0.0 },
    );
    Ok(())
}

/// The segment number of a WAL file name (`TTTTTTTTXXXXXXXXYYYYYYYY`).
fn segno(name: &str, seg_size: f64) -> Option<f64> {
    let hi = u64::from_str_radix(name.get(8..16)?, 16).ok()? as f64;
    let lo = u64::from_str_radix(name.get(16..24)?, 16).ok()? as f64;
    let per_id = 4_294_967_296.0 / seg_size.max(1.0);
    Some(hi * per_id + lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_first_unreplayed_wal_to_the_reply() {
        let r = Replication {
            history: [(100.0, 10.0), (101.0, 20.0), (102.0, 30.0)].into(),
        };
        assert_eq!(r.lag_at(30.0, 102.5), 0.0);
        assert_eq!(r.lag_at(20.0, 102.5), 0.5);
        assert_eq!(r.lag_at(10.0, 102.5), 1.5);
        // Older than the history: at least since its start.
        assert_eq!(r.lag_at(5.0, 102.5), 2.5);
        // A reply older than the WAL written after it: caught up at that time.
        assert_eq!(r.lag_at(20.0, 101.5), 0.0);
    }

    #[test]
    fn segment_numbers_of_wal_file_names() {
        let mb16 = 16.0 * 1024.0 * 1024.0;
        assert_eq!(segno("000000010000000000000003", mb16), Some(3.0));
        assert_eq!(segno("000000010000000100000002", mb16), Some(258.0));
        assert_eq!(segno("short", mb16), None);
    }
}
