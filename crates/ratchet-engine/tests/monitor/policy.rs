//! The policy and the AIMD throttle, without a database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratchet_engine::backfill::{BatchStats, Decision, Throttle};
use ratchet_engine::config::MonitorConfig;
use ratchet_engine::monitor::{
    latency_budget, Board, MonitorThrottle, Observation, Policy, Sample, Thresholds,
    ThrottleSettings, FAST_WINDOW, MAX_PACE,
};
use ratchet_engine::report::{HealthReport, HealthState};

fn policy() -> Policy {
    Policy::new(Thresholds::from_config(&MonitorConfig {
        max_probe_p99_ms: 50,
        max_replication_lag_s: 2.0,
        max_throttle: Duration::from_secs(10),
        ..MonitorConfig::default()
    }))
}

fn probe(p99: f64) -> Observation {
    (
        "probe",
        Ok(Sample::of(&[("probe_p99_ms", p99), ("probe_p50_ms", 1.0)])),
    )
}

#[test]
fn under_the_thresholds_everything_is_ok() {
    let mut p = policy();
    let (verdicts, report) = p.judge(
        &[
            probe(10.0),
            ("replication", Ok(Sample::of(&[("replication_lag_s", 1.0)]))),
            (
                "load",
                Ok(Sample::of(&[
                    ("active_sessions", 3.0),
                    ("connections_used", 10.0),
                    ("max_connections", 100.0),
                ])),
            ),
        ],
        Instant::now(),
    );
    assert_eq!(report.state, HealthState::Ok);
    assert!(report.reasons.is_empty());
    assert_eq!(verdicts.len(), 3);
    assert_eq!(report.figures["probe_p99_ms"], 10.0);
    assert_eq!(report.figures["replication_lag_s"], 1.0);
}

#[test]
fn over_a_threshold_throttles_and_far_over_it_pauses_with_the_reason() {
    let mut p = policy();
    let (_, r) = p.judge(&[probe(84.0)], Instant::now());
    assert_eq!(r.state, HealthState::Throttle);
    assert_eq!(r.reasons, ["probe p99 84.0 ms > 50 ms"]);
    let (_, r) = p.judge(&[probe(120.0)], Instant::now());
    assert_eq!(r.state, HealthState::Pause, "{r:?}");
    // The worst monitor decides; every monitor that is not ok gives its reason.
    let lag = ("replication", Ok(Sample::of(&[("replication_lag_s", 3.0)])));
    let (v, r) = p.judge(&[probe(60.0), lag], Instant::now());
    assert_eq!(r.state, HealthState::Throttle);
    assert_eq!(
        v.iter()
            .filter(|v| v.state == HealthState::Throttle)
            .count(),
        2
    );
    assert!(
        r.reasons[1].starts_with("replication lag 3.0 s > 2.0 s"),
        "{r:?}"
    );
}

#[test]
fn throttled_for_longer_than_max_throttle_pauses() {
    let mut p = policy();
    let t0 = Instant::now();
    assert_eq!(p.judge(&[probe(60.0)], t0).1.state, HealthState::Throttle);
    let later = t0 + Duration::from_secs(9);
    assert_eq!(
        p.judge(&[probe(60.0)], later).1.state,
        HealthState::Throttle
    );
    let (_, r) = p.judge(&[probe(60.0)], t0 + Duration::from_secs(11));
    assert_eq!(r.state, HealthState::Pause);
    assert!(r.reasons[0].contains("throttling did not help"), "{r:?}");
    // Back under the threshold: ok, and the clock starts again.
    assert_eq!(
        p.judge(&[probe(5.0)], t0 + Duration::from_secs(12)).1.state,
        HealthState::Ok
    );
    let again = t0 + Duration::from_secs(13);
    assert_eq!(
        p.judge(&[probe(60.0)], again).1.state,
        HealthState::Throttle
    );
}

#[test]
fn a_failing_sampler_pauses() {
    let mut p = policy();
    let (v, r) = p.judge(
        &[
            probe(1.0),
            (
                "locks",
                Err("canceling statement due to statement timeout".into()),
            ),
        ],
        Instant::now(),
    );
    assert_eq!(r.state, HealthState::Pause);
    assert_eq!(v[1].state, HealthState::Pause);
    assert_eq!(
        r.reasons,
        ["locks monitor failed: canceling statement due to statement timeout (no data is not healthy data)"]
    );
}

#[test]
fn the_probe_ratio_compares_with_the_baseline_above_a_floor() {
    let mut p = policy();
    let with_baseline = |p99: f64, base: f64| -> Observation {
        (
            "probe",
            Ok(Sample::of(&[
                ("probe_p99_ms", p99),
                ("probe_baseline_p99_ms", base),
            ])),
        )
    };
    // 4 ms against 0.1 ms is noise: the baseline counts as `ratio_floor_ms` (5 ms).
    assert_eq!(
        p.judge(&[with_baseline(4.0, 0.1)], Instant::now()).1.state,
        HealthState::Ok
    );
    // 30 ms against 0.1 ms is 6x the floor.
    let (_, r) = p.judge(&[with_baseline(30.0, 0.1)], Instant::now());
    assert_eq!(r.state, HealthState::Throttle, "{r:?}");
    let (_, r) = p.judge(&[with_baseline(45.0, 10.0)], Instant::now());
    assert_eq!(r.state, HealthState::Throttle);
    assert!(r.reasons[0].contains("4.5x its baseline 10.0 ms"), "{r:?}");
    // The ratio takes the p99 of as many latest results as the baseline had, not the
    // longer window's (which picks a higher tail of the same distribution).
    let recent = |p99: f64, recent: f64, base: f64| -> Observation {
        (
            "probe",
            Ok(Sample::of(&[
                ("probe_p99_ms", p99),
                ("probe_recent_p99_ms", recent),
                ("probe_baseline_p99_ms", base),
            ])),
        )
    };
    let (_, r) = p.judge(&[recent(45.0, 12.0, 10.0)], Instant::now());
    assert_eq!(r.state, HealthState::Ok, "{r:?}");
    let (_, r) = p.judge(&[recent(45.0, 45.0, 10.0)], Instant::now());
    assert_eq!(r.state, HealthState::Throttle, "{r:?}");
}

#[test]
fn locks_errors_load_and_maintenance_rules() {
    let mut p = policy();
    let now = Instant::now();
    let obs = |m: &'static str, f: &[(&str, f64)]| -> Observation { (m, Ok(Sample::of(f))) };
    let state = |p: &mut Policy, o: Observation| p.judge(&[o], now).1;
    let r = state(
        &mut p,
        obs(
            "locks",
            &[("lock_waits_caused", 2.0), ("lock_wait_max_ms", 1500.0)],
        ),
    );
    assert_eq!(r.state, HealthState::Throttle);
    assert!(
        r.reasons[0].starts_with("2 session(s) wait on a lock ratchet holds, the longest 1500 ms")
    );
    let r = state(
        &mut p,
        obs(
            "errors",
            &[("rollbacks_per_s", 120.0), ("deadlocks_per_s", 0.0)],
        ),
    );
    assert_eq!(r.state, HealthState::Pause);
    let r = state(
        &mut p,
        obs(
            "errors",
            &[("rollbacks_per_s", 1.0), ("deadlocks_per_s", 0.5)],
        ),
    );
    assert_eq!(r.state, HealthState::Throttle);
    let r = state(
        &mut p,
        obs(
            "load",
            &[("connections_used", 98.0), ("max_connections", 100.0)],
        ),
    );
    assert_eq!(r.state, HealthState::Pause);
    let r = state(
        &mut p,
        obs(
            "load",
            &[("connections_used", 92.0), ("max_connections", 100.0)],
        ),
    );
    assert_eq!(r.state, HealthState::Throttle);
    let r = state(&mut p, obs("load", &[("server_cpu_busy_pct", 99.0)]));
    assert_eq!(r.state, HealthState::Ok, "off by default");
    let mut cpu = Policy::new(Thresholds::from_config(&MonitorConfig {
        max_server_cpu_pct: 90.0,
        ..MonitorConfig::default()
    }));
    let r = state(&mut cpu, obs("load", &[("server_cpu_busy_pct", 95.0)]));
    assert_eq!(r.state, HealthState::Throttle);
    assert_eq!(r.reasons, ["the server's CPUs are 95% busy > 90%"]);
    let r = state(
        &mut p,
        obs(
            "maintenance",
            &[("autovacuum_running", 1.0), ("foreign_rewrites", 0.0)],
        ),
    );
    assert_eq!(r.state, HealthState::Ok);
    let r = state(&mut p, obs("maintenance", &[("foreign_rewrites", 1.0)]));
    assert_eq!(r.state, HealthState::Throttle);
}

#[test]
fn slot_retention_archiver_and_statements_rules() {
    let mut p = Policy::new(Thresholds::from_config(&MonitorConfig {
        max_slot_wal_mb: 100,
        max_archiver_backlog: 10,
        max_statements_ratio: 3.0,
        ratio_floor_ms: 1.0,
        ..MonitorConfig::default()
    }));
    let now = Instant::now();
    let obs = |m: &'static str, f: &[(&str, f64)]| -> Observation { (m, Ok(Sample::of(f))) };
    let mut state = |o: Observation| p.judge(&[o], now).1;
    let mb = 1024.0 * 1024.0;
    let quiet = [
        ("replication_lag_s", 0.0),
        ("slot_wal_retained_bytes", 50.0 * mb),
        ("archiver_backlog_segments", 2.0),
        ("archiver_failing", 0.0),
    ];
    assert_eq!(state(obs("replication", &quiet)).state, HealthState::Ok);
    let r = state(obs(
        "replication",
        &[("slot_wal_retained_bytes", 150.0 * mb)],
    ));
    assert_eq!(r.state, HealthState::Throttle);
    assert_eq!(
        r.reasons,
        ["replication slots retain 150 MB of WAL > 100 MB"]
    );
    let r = state(obs(
        "replication",
        &[("slot_wal_retained_bytes", 250.0 * mb)],
    ));
    assert_eq!(r.state, HealthState::Pause, "2.5x over pauses");
    let r = state(obs("replication", &[("archiver_backlog_segments", 12.0)]));
    assert_eq!(r.state, HealthState::Throttle);
    assert_eq!(r.reasons, ["12 WAL segments wait for the archiver > 10"]);
    let r = state(obs("replication", &[("archiver_failing", 1.0)]));
    assert_eq!(r.state, HealthState::Throttle);
    assert!(
        r.reasons[0].contains("archiver's last attempt failed"),
        "{r:?}"
    );
    // Statements: the window's mean against the mean before, above the floor.
    let stmts = |mean: f64, base: f64| {
        obs(
            "statements",
            &[
                ("statements_mean_ms", mean),
                ("statements_baseline_mean_ms", base),
            ],
        )
    };
    assert_eq!(state(stmts(2.5, 1.0)).state, HealthState::Ok);
    assert_eq!(
        state(stmts(0.9, 0.05)).state,
        HealthState::Ok,
        "under the 1 ms floor"
    );
    let r = state(stmts(4.0, 1.0));
    assert_eq!(r.state, HealthState::Throttle);
    assert!(
        r.reasons[0].contains("4.00 ms on average, 4.0x their 1.00 ms before (> 3.0x)"),
        "{r:?}"
    );
    // No baseline (nothing ran before): shown, not judged.
    assert_eq!(
        state(obs("statements", &[("statements_mean_ms", 40.0)])).state,
        HealthState::Ok
    );
}

#[test]
fn the_latency_budget_is_the_baseline_times_the_ratio_under_the_absolute_limit() {
    let t = |p99: u64, ratio: f64| {
        Thresholds::from_config(&MonitorConfig {
            max_probe_p99_ms: p99,
            max_probe_ratio: ratio,
            ratio_floor_ms: 1.0,
            ..MonitorConfig::default()
        })
    };
    assert_eq!(latency_budget(&t(100, 1.5), Some(2.0)), Some(3.0));
    assert_eq!(latency_budget(&t(100, 1.5), Some(0.2)), Some(1.5), "floor");
    assert_eq!(latency_budget(&t(2, 1.5), Some(2.0)), Some(2.0), "absolute");
    assert_eq!(latency_budget(&t(100, 1.5), None), Some(100.0));
    assert_eq!(latency_budget(&t(0, 0.0), Some(2.0)), None);
}

fn wait_of(d: &Decision) -> Duration {
    match d {
        Decision::Throttle { wait, .. } => *wait,
        _ => Duration::ZERO,
    }
}

#[test]
fn the_probe_over_its_budget_throttles_between_the_verdicts() {
    let board = Arc::new(Board::new());
    let t = MonitorThrottle::new(board.clone(), settings(Duration::from_secs(60)));
    board.publish(report(HealthState::Ok));
    board.set_latency_budget(Some(2.0));
    board.probe_result(1.0);
    assert_eq!(t.after_batch(&stats(1000)), Decision::Continue, "under it");
    // Over the budget: a pause of one batch time, batches halved.
    board.probe_result(3.0);
    let d = t.after_batch(&stats(1000));
    assert_eq!(
        (cap(&d), wait_of(&d)),
        (Some(500), Duration::from_millis(40))
    );
    let Decision::Throttle { reason, .. } = &d else {
        unreachable!()
    };
    assert_eq!(
        reason,
        "probe 3.00 ms over its budget 2.00 ms: pausing 1.0x the batch time"
    );
    // The same probe result: no second cut.
    let d = t.after_batch(&stats(500));
    assert_eq!(
        (cap(&d), wait_of(&d)),
        (Some(500), Duration::from_millis(40))
    );
    // A new result under it, while the slow one is still in the last second: the pause
    // holds (it does not ease) and does not double.
    board.probe_result(1.0);
    let d = t.after_batch(&stats(500));
    assert_eq!(
        (cap(&d), wait_of(&d)),
        (Some(500), Duration::from_millis(40))
    );
    assert_eq!(t.pace(), 1.0);
    // Each new result over it doubles the pause, up to MAX_PACE.
    for _ in 0..10 {
        board.probe_result(3.0);
        t.after_batch(&stats(500));
    }
    assert_eq!(t.pace(), MAX_PACE);
    assert_eq!(t.cap(), Some(100), "not below the step");
    // The slow results leave the last second: the pause eases off, then the cap grows.
    std::thread::sleep(FAST_WINDOW + Duration::from_millis(50));
    board.probe_result(0.5);
    t.after_batch(&stats(100));
    assert!(t.pace() < MAX_PACE - 5.0, "{}", t.pace());
    ease_off(&t, || board.probe_result(0.5));
    assert_eq!(t.cap(), Some(200), "grown once the pause is gone");
    // No probe budget: only the verdicts steer.
    board.set_latency_budget(None);
    board.probe_result(50.0);
    let before = t.pace();
    t.after_batch(&stats(50));
    assert!(t.pace() <= before);
    assert_eq!(t.cap(), None);
}

fn report(state: HealthState) -> HealthReport {
    HealthReport {
        state,
        reasons: match state {
            HealthState::Ok => vec![],
            _ => vec!["probe p99 84 ms > 50 ms".into()],
        },
        figures: Default::default(),
    }
}

fn settings(max_pause: Duration) -> ThrottleSettings {
    ThrottleSettings {
        max_pause,
        poll: Duration::from_millis(10),
        stale_after: Duration::from_secs(60),
        min_batch: 10,
        step: 100,
        ease_per_s: 10.0,
    }
}

fn stats(batch_size: i64) -> BatchStats {
    BatchStats {
        seq: BatchStats::next_seq(),
        table: "items".into(),
        rows: batch_size as u64,
        rows_done: 0,
        rows_total: None,
        batch_size,
        duration: Duration::from_millis(40),
    }
}

/// Batches of 100 rows, one every 100 ms (a batch and its wait), until the pause has
/// eased off: the time counts only while the backfill runs.
fn ease_off(t: &MonitorThrottle, before_each: impl Fn()) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while t.pace() > 0.0 {
        assert!(std::time::Instant::now() < deadline, "still {}", t.pace());
        std::thread::sleep(Duration::from_millis(100));
        before_each();
        t.after_batch(&stats(100));
    }
}

fn cap(d: &Decision) -> Option<i64> {
    match d {
        Decision::Throttle { max_batch, .. } => Some(*max_batch),
        _ => None,
    }
}

#[test]
fn aimd_halves_once_per_verdict_and_grows_back_additively() {
    let board = Arc::new(Board::new());
    let t = MonitorThrottle::new(board.clone(), settings(Duration::from_secs(60)));
    board.publish(report(HealthState::Ok));
    assert_eq!(t.after_batch(&stats(1000)), Decision::Continue);
    board.publish(report(HealthState::Throttle));
    let d = t.after_batch(&stats(1000));
    assert_eq!(cap(&d), Some(500));
    let Decision::Throttle { wait, reason, .. } = &d else {
        unreachable!()
    };
    assert_eq!(
        *wait,
        Duration::from_millis(40),
        "the first throttle pauses as long as the batch took"
    );
    assert_eq!(reason, "probe p99 84 ms > 50 ms");
    // The same verdict again: no second cut, the same pause.
    let d = t.after_batch(&stats(500));
    assert_eq!(
        (cap(&d), wait_of(&d)),
        (Some(500), Duration::from_millis(40))
    );
    // Each new verdict halves the cap and doubles the pause.
    board.publish(report(HealthState::Throttle));
    let d = t.after_batch(&stats(500));
    assert_eq!(
        (cap(&d), wait_of(&d)),
        (Some(250), Duration::from_millis(80))
    );
    for _ in 0..10 {
        board.publish(report(HealthState::Throttle));
        t.after_batch(&stats(250));
    }
    assert_eq!(t.cap(), Some(100), "never below the growth step");
    assert_eq!(t.pace(), MAX_PACE);
    // Healthy: the pause eases off first, by `ease_per_s` batch times per second (10
    // here); the cap stays while it does.
    board.publish(report(HealthState::Ok));
    assert_eq!(cap(&t.after_batch(&stats(100))), Some(100));
    std::thread::sleep(Duration::from_millis(1000));
    let d = t.after_batch(&stats(100));
    let pace = t.pace();
    assert!(pace < MAX_PACE - 9.0 && pace > MAX_PACE - 11.5, "{pace}");
    assert_eq!(cap(&d), Some(100));
    ease_off(&t, || ());
    // Then the cap grows by the step per batch while it binds (it did once already, with
    // the batch that ended the pause).
    assert_eq!(t.cap(), Some(200));
    assert_eq!(cap(&t.after_batch(&stats(200))), Some(300));
    assert_eq!(cap(&t.after_batch(&stats(300))), Some(400));
    // The adaptive sizing asks for less than the cap: the cap is dropped.
    assert_eq!(t.after_batch(&stats(150)), Decision::Continue);
    assert_eq!(t.cap(), None);
}

#[test]
fn a_held_backfill_asking_again_neither_eases_the_pause_nor_lifts_the_cap() {
    let board = Arc::new(Board::new());
    let t = MonitorThrottle::new(board.clone(), settings(Duration::from_secs(60)));
    for _ in 0..10 {
        board.publish(report(HealthState::Throttle));
        t.after_batch(&stats(1000));
    }
    assert_eq!((t.cap(), t.pace()), (Some(100), MAX_PACE));
    board.publish(report(HealthState::Ok));
    let held = stats(100);
    t.after_batch(&held);
    let pace = t.pace();
    // Held for 1.5 s (an operator's pause, another hook): the workers ask again with the
    // same batch. Nothing eases off (10 batch times a second here) and the cap, which
    // grew by a step per call and was then dropped, stays.
    for _ in 0..15 {
        std::thread::sleep(Duration::from_millis(100));
        let d = t.after_batch(&held);
        assert_eq!(cap(&d), Some(100));
    }
    assert_eq!(t.pace(), pace);
    // The next batch: only the time since the last call counts (about 0.1 s).
    t.after_batch(&stats(100));
    assert!(t.pace() > pace - 3.0, "{} after {pace}", t.pace());
    assert_eq!(t.cap(), Some(100));
    // A pause verdict holds the backfill the same way: paused time is not healthy time.
    let pace = t.pace();
    board.publish(report(HealthState::Pause));
    let held = stats(100);
    for _ in 0..15 {
        std::thread::sleep(Duration::from_millis(100));
        assert!(matches!(t.after_batch(&held), Decision::Pause(_)));
    }
    board.publish(report(HealthState::Ok));
    t.after_batch(&held);
    t.after_batch(&stats(100));
    assert!(t.pace() > pace - 3.0, "{} after {pace}", t.pace());
    assert_eq!(t.cap(), Some(100));
}

#[test]
fn pause_waits_and_recovers() {
    let board = Arc::new(Board::new());
    let t = MonitorThrottle::new(board.clone(), settings(Duration::from_secs(60)));
    board.publish(report(HealthState::Pause));
    assert_eq!(
        t.after_batch(&stats(100)),
        Decision::Pause(Duration::from_millis(10))
    );
    assert_eq!(
        t.before_attempt(),
        Decision::Pause(Duration::from_millis(10))
    );
    board.publish(report(HealthState::Throttle));
    assert_eq!(
        t.before_attempt(),
        Decision::Pause(Duration::from_millis(10)),
        "no DDL attempt while throttled"
    );
    board.publish(report(HealthState::Ok));
    assert_eq!(t.before_attempt(), Decision::Continue);
    assert_eq!(t.after_batch(&stats(100)), Decision::Continue);
}

#[test]
fn paused_longer_than_max_pause_stops_with_a_clear_message() {
    let board = Arc::new(Board::new());
    let t = MonitorThrottle::new(board.clone(), settings(Duration::from_millis(100)));
    board.publish(report(HealthState::Pause));
    assert!(matches!(t.after_batch(&stats(100)), Decision::Pause(_)));
    std::thread::sleep(Duration::from_millis(150));
    board.publish(report(HealthState::Pause));
    let Decision::Stop(why) = t.after_batch(&stats(100)) else {
        panic!("expected a stop")
    };
    assert!(why.contains("longer than max_pause"), "{why}");
    assert!(why.contains("probe p99 84 ms > 50 ms"), "{why}");
    assert!(why.contains("Nothing is lost"), "{why}");
    assert_eq!(board.take_stop().as_deref(), Some(why.as_str()));
    // Recovery clears the clock.
    board.publish(report(HealthState::Ok));
    board.publish(report(HealthState::Pause));
    assert!(matches!(t.after_batch(&stats(100)), Decision::Pause(_)));
}

#[test]
fn throttle_verdicts_between_pauses_do_not_reset_the_max_pause_clock() {
    let board = Arc::new(Board::new());
    let t = MonitorThrottle::new(board.clone(), settings(Duration::from_millis(100)));
    board.publish(report(HealthState::Pause));
    assert!(matches!(t.after_batch(&stats(100)), Decision::Pause(_)));
    // The database swings between pause and throttle, never healthy.
    std::thread::sleep(Duration::from_millis(80));
    board.publish(report(HealthState::Throttle));
    assert!(matches!(
        t.after_batch(&stats(100)),
        Decision::Throttle { .. }
    ));
    std::thread::sleep(Duration::from_millis(80));
    board.publish(report(HealthState::Pause));
    let Decision::Stop(why) = t.after_batch(&stats(100)) else {
        panic!("expected a stop: paused first 160 ms ago, never healthy since")
    };
    assert!(
        why.contains("paused (with no healthy verdict since)"),
        "{why}"
    );
    // A healthy verdict in between starts the clock again.
    board.take_stop();
    board.publish(report(HealthState::Ok));
    board.publish(report(HealthState::Pause));
    std::thread::sleep(Duration::from_millis(80));
    board.publish(report(HealthState::Ok));
    board.publish(report(HealthState::Pause));
    std::thread::sleep(Duration::from_millis(40));
    assert!(matches!(t.after_batch(&stats(100)), Decision::Pause(_)));
}

#[test]
fn a_stale_or_missing_verdict_is_a_pause() {
    let board = Arc::new(Board::new());
    let mut s = settings(Duration::from_secs(60));
    s.stale_after = Duration::from_millis(50);
    let t = MonitorThrottle::new(board.clone(), s);
    assert!(
        matches!(t.after_batch(&stats(100)), Decision::Pause(_)),
        "no verdict yet"
    );
    board.publish(report(HealthState::Ok));
    assert_eq!(t.after_batch(&stats(100)), Decision::Continue);
    std::thread::sleep(Duration::from_millis(80));
    assert!(
        matches!(t.after_batch(&stats(100)), Decision::Pause(_)),
        "stale"
    );
    assert!(board.view(Duration::from_millis(50)).reasons[0].contains("have not reported"));
}
