//! `cargo bench -p ratchet-lint`: generates a folder of migration files (10,000 by default;
//! `RATCHET_BENCH_FILES=n` to change), lints it like `ratchet lint <folder>` does —
//! streaming, file by file, into the text renderer — and prints files/s, the total time and
//! the peak memory (the process's peak RSS, `VmHWM`, reset before each run), side by side
//! with the baseline: the same run holding every file and report until the end (the
//! pre-streaming pipeline, still `Linter::lint_inputs`). When `squawk` is on PATH
//! (`pip install squawk-cli`) it lints the same folder with squawk and prints it too (its
//! peak memory when GNU `time` is installed).

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ratchet_lint::render::{render, Format, Renderer};
use ratchet_lint::{collect_inputs, sources, Linter, Settings};

/// Realistic migration bodies; `{n}` makes names unique per file.
const TEMPLATES: &[&str] = &[
    "CREATE TABLE items_{n} (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    name text NOT NULL,\n    price_cents bigint NOT NULL DEFAULT 0,\n    created_at timestamptz NOT NULL DEFAULT now()\n);\nCREATE INDEX items_{n}_name_idx ON items_{n} (name);\n",
    "ALTER TABLE users ADD COLUMN flag_{n} boolean NOT NULL DEFAULT false;\n",
    "CREATE INDEX users_col_{n}_idx ON users (email, created_at);\n",
    "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_{n}_idx ON orders (customer_id);\n",
    "BEGIN;\nALTER TABLE orders ADD CONSTRAINT orders_{n}_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\nCOMMIT;\nALTER TABLE orders VALIDATE CONSTRAINT orders_{n}_fk;\n",
    "ALTER TABLE accounts ALTER COLUMN balance_{n} TYPE bigint;\nUPDATE accounts SET balance_{n} = 0 WHERE balance_{n} IS NULL;\n",
    "-- ratchet:ignore drop-column contract phase of migration {n}\nALTER TABLE users DROP COLUMN legacy_{n};\n",
    "CREATE TABLE events_{n} (id serial PRIMARY KEY, payload json, happened timestamp, kind varchar(20));\nINSERT INTO events_{n} (payload) VALUES ('{}');\n",
    "ALTER TABLE invoices ADD CONSTRAINT invoices_{n}_positive CHECK (amount > 0);\nALTER TABLE invoices ALTER COLUMN note_{n} SET NOT NULL;\n",
    "CREATE OR REPLACE FUNCTION touch_{n}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\nEND;\n$$;\nCREATE TRIGGER touch_{n} BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch_{n}();\n",
];

fn generate(dir: &Path, count: usize) -> std::io::Result<u64> {
    let mut bytes = 0;
    for n in 0..count {
        let body = TEMPLATES[n % TEMPLATES.len()].replace("{n}", &n.to_string());
        bytes += body.len() as u64;
        std::fs::write(dir.join(format!("V{n:06}__migration.sql")), body)?;
    }
    Ok(bytes)
}

fn rate(files: usize, t: Duration) -> f64 {
    files as f64 / t.as_secs_f64().max(1e-9)
}

/// Resets the peak RSS of this process (Linux: `5` to `/proc/self/clear_refs`).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak RSS since the last reset, in MiB (`VmHWM`).
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn mib(m: Option<f64>) -> String {
    m.map_or_else(|| "n/a".to_string(), |m| format!("{m:.1} MiB"))
}

/// One measured run: time and peak memory.
struct Run {
    time: Duration,
    peak: Option<f64>,
    findings: usize,
}

fn measure(f: impl FnOnce() -> usize) -> Run {
    let resettable = reset_peak();
    let start = Instant::now();
    let findings = f();
    let time = start.elapsed();
    Run {
        time,
        peak: peak_mib().filter(|_| resettable),
        findings,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo test --benches` probes with --list
    }
    let count: usize = std::env::var("RATCHET_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir()?;
    let bytes = generate(tmp.path(), count)?;
    println!(
        "generated {count} migration files ({:.1} MiB) in {}",
        bytes as f64 / 1048576.0,
        tmp.path().display()
    );

    let settings = Settings::default();
    let linter = Linter::new(&settings, None);
    let root = tmp.path().to_path_buf();
    let before = peak_mib();
    // Streaming, as the CLI runs: read, lint and render a chunk at a time.
    let stream = measure(|| {
        let mut renderer =
            Renderer::new(Format::Text, std::io::sink(), &root).expect("renderer starts");
        let mut findings = 0;
        let streamed: std::io::Result<()> =
            linter.lint_stream(sources(std::slice::from_ref(&root), &[]), |f| {
                findings += f.findings.len();
                renderer.file(&f)
            });
        streamed.expect("lint");
        renderer.finish().expect("renderer ends");
        findings
    });
    // Baseline: every input and report held until the output is rendered at the end.
    let batch = measure(|| {
        let inputs = collect_inputs(std::slice::from_ref(&root), &[]).expect("read inputs");
        let report = linter.lint_inputs(inputs);
        let text = render(&report, Format::Text);
        std::hint::black_box(text.len());
        report.findings().count()
    });
    assert_eq!(
        stream.findings, batch.findings,
        "both pipelines find the same"
    );
    let ours = stream.time;
    println!(
        "process before linting: {} peak RSS; {} threads",
        mib(before),
        rayon::current_num_threads()
    );
    println!(
        "| pipeline | files | total | files/s | peak RSS | findings |\n|---|---|---|---|---|---|"
    );
    for (name, r) in [
        ("streaming (ratchet lint)", &stream),
        ("baseline: batch", &batch),
    ] {
        println!(
            "| {name} | {count} | {:.3} s | {:.0} | {} | {} |",
            r.time.as_secs_f64(),
            rate(count, r.time),
            mib(r.peak),
            r.findings
        );
    }

    let squawk = Command::new("squawk").arg("--version").output();
    let Ok(version) = squawk else {
        println!("squawk: not on PATH (pip install squawk-cli) — comparison skipped");
        return Ok(());
    };
    let mut files: Vec<_> = std::fs::read_dir(tmp.path())?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let start = Instant::now();
    // GNU time reports squawk's peak RSS (`%M`, KiB) on stderr's last line.
    let timed = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("squawk")
        .args(&files)
        .output();
    let (out, squawk_peak) = match timed {
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let kib = err
                .lines()
                .last()
                .and_then(|l| l.trim().parse::<f64>().ok());
            (out, kib.map(|k| k / 1024.0))
        }
        Err(_) => (Command::new("squawk").args(&files).output()?, None),
    };
    let theirs = start.elapsed();
    println!(
        "{}: {count} files in {:.3} s = {:.0} files/s (exit {})",
        String::from_utf8_lossy(&version.stdout).trim(),
        theirs.as_secs_f64(),
        rate(count, theirs),
        out.status.code().unwrap_or(-1)
    );
    println!("| tool | files | total | files/s | peak RSS |\n|---|---|---|---|---|");
    println!(
        "| ratchet lint | {count} | {:.3} s | {:.0} | {} |",
        ours.as_secs_f64(),
        rate(count, ours),
        mib(stream.peak)
    );
    println!(
        "| squawk | {count} | {:.3} s | {:.0} | {} |",
        theirs.as_secs_f64(),
        rate(count, theirs),
        mib(squawk_peak)
    );
    println!(
        "ratchet is {:.1}x {} than squawk",
        (theirs.as_secs_f64() / ours.as_secs_f64()).max(ours.as_secs_f64() / theirs.as_secs_f64()),
        if ours < theirs { "faster" } else { "slower" }
    );
    Ok(())
}
