//! `cargo bench -p ratchet-lint`: generates a folder of migration files (10,000 by default;
//! `RATCHET_BENCH_FILES=n` to change), lints it like `ratchet lint <folder>` does, and
//! prints files/s and the total time. When `squawk` is on PATH (`pip install squawk-cli`) it
//! lints the same folder with squawk and prints both side by side.

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ratchet_lint::{collect_inputs, Linter, Settings};

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
    let start = Instant::now();
    let inputs = collect_inputs(&[tmp.path().to_path_buf()], &settings.exclude)?;
    let report = Linter::new(&settings, None).lint_inputs(inputs);
    let ours = start.elapsed();
    let findings = report.findings().count();
    println!(
        "ratchet lint: {count} files in {:.3} s = {:.0} files/s ({findings} findings, {} threads)",
        ours.as_secs_f64(),
        rate(count, ours),
        rayon::current_num_threads()
    );

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
    let out = Command::new("squawk").args(&files).output()?;
    let theirs = start.elapsed();
    println!(
        "{}: {count} files in {:.3} s = {:.0} files/s (exit {})",
        String::from_utf8_lossy(&version.stdout).trim(),
        theirs.as_secs_f64(),
        rate(count, theirs),
        out.status.code().unwrap_or(-1)
    );
    println!("| tool | files | total | files/s |\n|---|---|---|---|");
    println!(
        "| ratchet lint | {count} | {:.3} s | {:.0} |",
        ours.as_secs_f64(),
        rate(count, ours)
    );
    println!(
        "| squawk | {count} | {:.3} s | {:.0} |",
        theirs.as_secs_f64(),
        rate(count, theirs)
    );
    println!(
        "ratchet is {:.1}x {} than squawk",
        (theirs.as_secs_f64() / ours.as_secs_f64()).max(ours.as_secs_f64() / theirs.as_secs_f64()),
        if ours < theirs { "faster" } else { "slower" }
    );
    Ok(())
}
