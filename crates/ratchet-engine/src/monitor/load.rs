//! Load: active sessions and sessions waiting on a lock (server-wide, client backends,
//! not counting the monitors' own), connections used against `max_connections`, and,
//! when the server runs on this machine, the share of its CPU time that was busy
//! (`/proc/stat`, over the interval since the last sample).
//!
//! The server counts as local when the monitors' own backend is a `postgres` process in
//! this machine's `/proc`; a remote server has no CPU figure (`pg_stat_activity` states
//! are what there is).

use tokio_postgres::{Client, Error};

use super::Sample;

#[derive(Default)]
pub(super) struct Load {
    /// Whether the server runs here (found out at the first sample).
    local: Option<bool>,
    /// The last (busy, total) jiffies of `/proc/stat`.
    last: Option<(u64, u64)>,
}

impl Load {
    pub(super) async fn sample(&mut self, c: &Client) -> Result<Sample, Error> {
        let r = c
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'active'
                                           AND application_name NOT LIKE 'ratchet monitor%')::float8,
                        count(*) FILTER (WHERE wait_event_type = 'Lock')::float8,
                        count(*)::float8,
                        current_setting('max_connections')::float8,
                        pg_backend_pid()
                   FROM pg_stat_activity WHERE backend_type = 'client backend'",
                &[],
            )
            .await?;
        let mut s = Sample::default();
        s.set("active_sessions", r.get(0));
        s.set("waiting_sessions", r.get(1));
        s.set("connections_used", r.get(2));
        s.set("max_connections", r.get(3));
        let pid: i32 = r.get(4);
        let local = *self.local.get_or_insert_with(|| is_local_postgres(pid));
        if let Some((busy, total, cpus)) = local.then(read_proc_stat).flatten() {
            s.set("server_cpus", cpus as f64);
            if let Some((b0, t0)) = self.last.replace((busy, total)) {
                let dt = total.saturating_sub(t0);
                if dt > 0 {
                    let share = busy.saturating_sub(b0) as f64 / dt as f64;
                    s.set("server_cpu_busy_pct", (share * 100.0).clamp(0.0, 100.0));
                }
            }
        }
        Ok(s)
    }
}

/// Whether `pid` is a PostgreSQL process of this machine.
fn is_local_postgres(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| matches!(comm.trim(), "postgres" | "postmaster"))
}

/// (busy, total) jiffies of all CPUs, and how many CPUs, from `/proc/stat`.
fn read_proc_stat() -> Option<(u64, u64, usize)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_proc_stat(&text)
}

fn parse_proc_stat(text: &str) -> Option<(u64, u64, usize)> {
    let first = text.lines().next()?;
    let mut fields = first.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let v: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    let cpus = text
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    Some((total - idle, total, cpus.max(1)))
}

#[cfg(test)]
mod tests {
    use super::parse_proc_stat;

    #[test]
    fn busy_and_total_jiffies_of_proc_stat() {
        let text = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n\
                    cpu1 50 3 25 400 10 2 1 0 0 0\nintr 12345\n";
        assert_eq!(parse_proc_stat(text), Some((160, 980, 2)));
        assert_eq!(parse_proc_stat("intr 1\n"), None);
    }
}
