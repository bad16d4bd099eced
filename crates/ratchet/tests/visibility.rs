//! What an operator sees of a running migration, end to end against real PostgreSQL:
//! the Prometheus endpoint (`--metrics-addr`), `status --watch` from a second process,
//! and the plain status lines when stderr is not a terminal. None of it depends on the
//! health monitors: the figures moved here are the backfill's, the steps' and the
//! retries'.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ratchet_scratch::testing::TestDb;

fn ratchet(db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ratchet"));
    c.env("DATABASE_URL", &db.url)
        .env_remove("RATCHET_FAULT_KILL")
        .env_remove("RATCHET_METRICS_ADDR");
    c
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `items(id, amount text)` with `rows` rows, and the file of a migration that changes
/// `amount` to bigint: a backfill of every row.
async fn items(db: &TestDb, dir: &Path, rows: i64) -> String {
    let v1 = dir.join("01_items.yaml");
    std::fs::write(
        &v1,
        "operations:\n  - create_table:\n      name: items\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n        - name: amount\n          type: text\n",
    )
    .unwrap();
    let v2 = dir.join("02_type.yaml");
    std::fs::write(
        &v2,
        "operations:\n  - alter_column:\n      table: items\n      column: amount\n      type: bigint\n      up: CAST(amount AS bigint)\n      down: CAST(amount AS text)\n",
    )
    .unwrap();
    let o = ratchet(db)
        .args(["start", &v1.display().to_string(), "--complete"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    db.client()
        .await
        .batch_execute(&format!(
            // A batch is whole pages: a tenth of each filled keeps the small batches of
            // the slow runs here about as small as they ask.
            "ALTER TABLE public.items SET (fillfactor = 10);
             INSERT INTO public.items SELECT g, g::text FROM generate_series(1, {rows}) g;
             ANALYZE public.items"
        ))
        .await
        .unwrap();
    v2.display().to_string()
}

/// `start` of `file` with small batches (a backfill that lasts a few seconds), stderr
/// piped.
fn slow_start(db: &TestDb, file: &str, extra: &[&str]) -> Child {
    ratchet(db)
        .args(["start", file, "--batch-max", "20", "--batch-target", "5ms"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET /metrics: the status line, the content type, the body.
fn scrape(port: u16) -> std::io::Result<(String, String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok((status, ctype, body.to_string()))
}

/// Every line of `body` is a comment (`# HELP`, `# TYPE`, `# UNIT`, `# EOF` last) or a
/// sample `name{label="value",…} number` of a family a `# TYPE` line declared: the text
/// exposition format, checked strictly. prometheus-parse then reads the values.
fn parse_strictly(body: &str) -> prometheus_parse::Scrape {
    let mut families: Vec<String> = vec![];
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "{body}");
    for l in &lines {
        if let Some(rest) = l.strip_prefix("# ") {
            let mut w = rest.split(' ');
            let kind = w.next().unwrap();
            match kind {
                "HELP" | "UNIT" => assert!(w.next().is_some_and(valid_name), "{l}"),
                "TYPE" => {
                    let name = w.next().unwrap();
                    assert!(valid_name(name), "{l}");
                    let t = w.next().unwrap();
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "info",
                            "unknown"
                        ]
                        .contains(&t),
                        "{l}"
                    );
                    families.push(name.to_string());
                }
                "EOF" => {}
                _ => panic!("not a comment of the format: {l}"),
            }
            continue;
        }
        let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{l}"
        );
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, Some(rest)),
            None => (series, None),
        };
        assert!(valid_name(name), "{l}");
        if let Some(labels) = labels {
            let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("{l}"));
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{l}"));
                assert!(valid_name(k), "{l}");
                assert!(!v.trim_end_matches('"').contains('"'), "{l}");
            }
        }
        let family = families.iter().any(|f| {
            name == f
                || name
                    .strip_prefix(f.as_str())
                    .is_some_and(|s| s.starts_with('_'))
        });
        assert!(family, "sample of an undeclared family: {l}");
    }
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// The value of `name` (the sample whose labels include `labels`).
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .find(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_answers_in_the_text_format_and_its_counters_move() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = items(&db, dir.path(), 30_000).await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // A probe whose budget nothing reaches: the verdict stays ok, and its figures must
    // still reach the gauges (they once moved only when the verdict changed).
    let probe = [
        "--probe-sql",
        "SELECT 1",
        "--probe-interval",
        "50ms",
        "--probe-baseline",
        "300ms",
        "--max-probe-ratio",
        "1000",
        "--max-probe-p99-ms",
        "100000",
    ];
    let mut child = slow_start(&db, &v2, &[&["--metrics-addr", &addr][..], &probe].concat());
    // Scrapes while the backfill runs, until two of them show rows backfilled, apart,
    // and one shows the probe's quantiles.
    let mut seen: Vec<f64> = vec![];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(150));
        let Ok((status, ctype, body)) = scrape(port) else {
            continue;
        };
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
        let s = parse_strictly(&body);
        let Some(rows) = value(&s, "ratchet_rows_backfilled_total", &[("table", "items")]) else {
            continue;
        };
        if seen.last().is_none_or(|prev| rows > *prev) {
            seen.push(rows);
        }
        let probed = value(&s, "ratchet_probe_latency_seconds", &[("quantile", "0.99")])
            .is_some_and(|p99| p99 > 0.0);
        last = Some((s, body));
        if seen.len() >= 3 && probed {
            break;
        }
    }
    let (s, body) = last.expect("no scrape answered while the backfill ran");
    assert!(
        seen.len() >= 2,
        "rows backfilled never moved: {seen:?}\n{body}"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // The other figures of the backfill are there too.
    assert_eq!(
        value(&s, "ratchet_backfill_rows_expected", &[("table", "items")]),
        Some(30_000.0),
        "{body}"
    );
    assert!(value(&s, "ratchet_backfill_batch_size", &[("table", "items")]).unwrap() > 0.0);
    assert!(value(&s, "ratchet_backfill_batch_duration_seconds_count", &[]).unwrap() >= 1.0);
    assert_eq!(
        value(&s, "ratchet_backfill_workers", &[]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(&s, "ratchet_health_state", &[("monitor", "overall")]),
        Some(0.0),
        "{body}"
    );
    assert!(value(&s, "ratchet_steps_done_total", &[("phase", "start")]).unwrap() >= 1.0);
    for q in ["0.5", "0.99"] {
        let v = value(&s, "ratchet_probe_latency_seconds", &[("quantile", q)]);
        assert!(
            v.is_some_and(|v| v > 0.0),
            "probe p{q} while healthy: {v:?}\n{body}"
        );
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("metrics: http://{addr}/metrics")),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_fails_the_command_before_it_starts_anything() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = items(&db, dir.path(), 10).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = ratchet(&db)
        .args(["start", &v2, "--metrics-addr", &addr])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--metrics-addr"), "{}", text(&o));
    let o = ratchet(&db)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["active"], serde_json::Value::Null, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_from_a_second_process_follows_the_backfill_to_the_end() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = items(&db, dir.path(), 30_000).await;
    let start = slow_start(&db, &v2, &["--complete"]);
    // Watching begins once the migration is active (without one, it says so and ends).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = ratchet(&db)
            .args(["status", "--format", "json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        if !v["active"].is_null() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut watch = ratchet(&db)
        .args([
            "status",
            "--watch",
            "--format",
            "json",
            "--interval",
            "200ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(watch.stdout.take().unwrap());
    let mut ticks: Vec<serde_json::Value> = vec![];
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
        ticks.push(v);
    }
    let o = watch.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let start = start.wait_with_output().unwrap();
    assert!(start.status.success(), "{}", text(&start));
    // It ended by itself once the migration was completed: the last tick says so.
    let last = ticks.last().unwrap();
    assert_eq!(last["active"], false, "{last}");
    // While it ran: the migration, its step and the progress moving, the lock holder.
    let running: Vec<&serde_json::Value> = ticks
        .iter()
        .filter(|t| t["migration"] == "02_type" && t["backfill"]["table"] == "items")
        .collect();
    let done: Vec<u64> = running
        .iter()
        .filter_map(|t| t["backfill"]["rows_done"].as_u64())
        .collect();
    assert!(
        done.windows(2).any(|w| w[0] < w[1]) && done.iter().any(|d| *d > 0 && *d < 30_000),
        "the progress never moved: {done:?}"
    );
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    let mid = running
        .iter()
        .find(|t| {
            t["backfill"]["rows_done"]
                .as_u64()
                .is_some_and(|d| d > 0 && d < 30_000)
        })
        .unwrap();
    assert_eq!(mid["backfill"]["rows_total"], 30_000, "{mid}");
    assert!(mid["step"]["description"].is_string(), "{mid}");
    assert!(
        mid["runner"]
            .as_str()
            .unwrap()
            .contains("holds the migration lock"),
        "{mid}"
    );
    assert!(
        running
            .iter()
            .any(|t| t["backfill"]["rows_per_second"].as_f64() > Some(0.0)),
        "{running:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_without_an_active_migration_says_so_and_ends() {
    let db = TestDb::new().await;
    let o = ratchet(&db)
        .args(["status", "--watch", "--interval", "100ms"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("no active migration"), "{out}");
    assert!(out.contains("no ratchet process is running"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_status_lines_come_at_the_interval_when_stderr_is_not_a_terminal() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = items(&db, dir.path(), 30_000).await;
    let t0 = Instant::now();
    let o = slow_start(&db, &v2, &["--status-interval", "400ms"])
        .wait_with_output()
        .unwrap();
    let took = t0.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let status: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("  status: "))
        .collect();
    // One line per 400 ms of steps (the first comes after 400 ms; give the rest slack).
    let expected = (took.as_millis() / 400) as usize;
    assert!(
        status.len() >= 2 && status.len() + 2 >= expected / 2,
        "{} status lines in {took:?}:\n{err}",
        status.len()
    );
    assert!(
        status
            .iter()
            .any(|l| l.contains("backfill items: ") && l.contains("rows/s")),
        "{err}"
    );
    assert!(status.iter().all(|l| l.contains("health ")), "{err}");
    // The monitors' verdict reaches the lines while it stays the same (ok, mostly).
    assert!(
        status.iter().any(|l| !l.contains("no monitor report yet")),
        "{err}"
    );
    // One line per step as before.
    assert!(err.lines().any(|l| l.starts_with("  ✓ [start #")), "{err}");
    // No escape sequences of the terminal block.
    assert!(!err.contains('\x1b'), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_json_writes_one_object_per_event() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = items(&db, dir.path(), 20_000).await;
    let o = ratchet(&db)
        .args(["start", &v2, "--progress", "json", "--batch-max", "50"])
        .args(["--status-interval", "100ms"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        kinds.contains(&"step_started") && kinds.contains(&"step_done"),
        "{kinds:?}"
    );
    let last = events
        .iter()
        .rev()
        .find(|e| e["event"] == "backfill")
        .unwrap();
    assert_eq!(last["rows_done"], 20_000, "{last}");
    // The periodic picture, while a step runs: the step, and the backfill once it moves.
    let status: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "status").collect();
    assert!(!status.is_empty(), "{kinds:?}");
    assert!(
        status.iter().all(|s| s["step"]["phase"] == "start"),
        "{status:?}"
    );
    assert!(
        status
            .iter()
            .any(|s| s["backfill"]["table"] == "items"
                && s["backfill"]["rows_done"].as_u64() > Some(0)),
        "{status:?}"
    );
    // stdout keeps its result lines.
    assert!(String::from_utf8_lossy(&o.stdout).contains("started 02_type"));
    // A validation reports its chunks as it goes: rows checked of the estimate, mismatches.
    let o = ratchet(&db)
        .args(["validate", "--progress", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let chunks: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|e: &serde_json::Value| e["event"] == "validate")
        .collect();
    assert!(chunks.len() >= 2, "chunks of 10,000 rows: {chunks:?}");
    let last = chunks.last().unwrap();
    assert_eq!(
        (&last["table"], &last["rows_checked"], &last["mismatches"]),
        (
            &serde_json::json!("items"),
            &serde_json::json!(20_000),
            &serde_json::json!(0)
        ),
        "{last}"
    );
    assert_eq!(
        last["rows_total"], 20_000,
        "the planner's estimate after ANALYZE"
    );
}

/// The metric names `src/metrics.rs` registers (without the `ratchet_` prefix).
fn registered_metrics() -> Vec<String> {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics.rs"))
        .unwrap();
    let mut names = vec![];
    let mut rest = src.as_str();
    while let Some(i) = rest.find("r.register(") {
        rest = &rest[i + "r.register(".len()..];
        let start = rest.find('"').unwrap() + 1;
        let end = start + rest[start..].find('"').unwrap();
        names.push(rest[start..end].to_string());
    }
    assert!(names.len() >= 15, "{names:?}");
    names
}

#[test]
fn the_dashboard_and_the_docs_know_every_metric_and_only_those() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let names = registered_metrics();
    let counters = ["rows_backfilled", "retries", "errors", "steps_done"];
    let exposed: Vec<String> = names
        .iter()
        .map(|n| match counters.contains(&n.as_str()) {
            true => format!("ratchet_{n}_total"),
            false => format!("ratchet_{n}"),
        })
        .collect();
    let docs = std::fs::read_to_string(root.join("docs/monitoring.md")).unwrap();
    for name in &exposed {
        assert!(
            docs.contains(&format!("| `{name}` |")),
            "docs/monitoring.md does not list {name}"
        );
    }
    let raw = std::fs::read_to_string(root.join("docs/grafana/ratchet-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(dash["uid"], "ratchet-migration");
    let panels = dash["panels"].as_array().unwrap();
    let mut used = std::collections::BTreeSet::new();
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let pos = &p["gridPos"];
        assert!(
            pos["w"].as_u64().unwrap() <= 24 && pos["h"].as_u64().unwrap() > 0,
            "{p}"
        );
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{p}");
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("ratchet_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                used.insert(name);
            }
        }
    }
    for name in &used {
        let base = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(
            exposed.iter().any(|e| e == base),
            "the dashboard uses {name}, which ratchet does not export"
        );
    }
    for wanted in [
        "ratchet_rows_backfilled_total",
        "ratchet_backfill_batch_duration_seconds",
        "ratchet_backfill_batch_size",
        "ratchet_health_state",
        "ratchet_lock_waits_caused",
        "ratchet_probe_latency_seconds",
        "ratchet_replication_lag_seconds",
        "ratchet_retries_total",
    ] {
        assert!(
            used.iter()
                .any(|u| u.strip_suffix("_bucket").unwrap_or(u) == wanted),
            "no panel shows {wanted}"
        );
    }
}
