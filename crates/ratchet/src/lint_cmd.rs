//! `ratchet lint`, `ratchet explain` and `ratchet convert`: thin wrappers over `ratchet-lint` and
//! `ratchet-convert`.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use ratchet_lint::config::LintConfig;
use ratchet_lint::{Catalog, Format, Input, Linter, PgVersion, Renderer, Settings, Severity};

/// Check SQL migrations (and ratchet migration files) for unsafe changes.
///
/// Exit codes: 0 clean, 1 findings at or above --fail-on, 2 errors (syntax errors,
/// unreadable files, bad config, database errors).
#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// Files or folders (searched recursively for .sql and migration files); `-` reads stdin.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "json-lines", "sarif", "github"])]
    pub format: String,
    /// Exit 1 when a finding has at least this severity [default: warning, or `fail_on` in ratchet.toml].
    #[arg(long, value_parser = ["error", "warning", "info"])]
    pub fail_on: Option<String>,
    /// Target PostgreSQL version, e.g. 15 or 14.3 [default: 15, or the server's with --database-url].
    #[arg(long, value_name = "VERSION")]
    pub pg_version: Option<String>,
    /// The migration runner wraps each file in a transaction (Flyway, Rails, Django, sqlx…).
    #[arg(long)]
    pub assume_in_transaction: bool,
    /// Read real column types, table sizes and the server version from this database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Config file [default: ./ratchet.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Apply autofixes to the files (stdin: print the fixed SQL to stdout).
    #[arg(long)]
    pub fix: bool,
    /// Turn on a rule (code or name; repeatable).
    #[arg(long, value_name = "RULE")]
    pub enable: Vec<String>,
    /// Turn off a rule (code or name; repeatable).
    #[arg(long, value_name = "RULE")]
    pub disable: Vec<String>,
    /// Name shown for stdin input.
    #[arg(long, default_value = "-", value_name = "NAME")]
    pub stdin_filename: String,
}

/// Print the documentation of a lint rule.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Rule code or name, e.g. A18 or create-index-non-concurrently.
    pub rule: Option<String>,
    /// List every rule with its default severity and category (hazard or policy).
    #[arg(long)]
    pub list: bool,
}
/// Turn a plain SQL migration into a ratchet migration file.
///
/// Recognised statements (renames, type changes, SET NOT NULL, ADD COLUMN, CREATE/DROP
/// INDEX, ADD/DROP CONSTRAINT, DROP COLUMN/TABLE, CREATE TABLE) become operations with
/// `up`/`down` filled where the SQL determines them; the rest is kept as `sql`
/// operations with a comment. Notes about what to review go to stderr.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// The SQL file to convert (`-` reads stdin).
    pub file: std::path::PathBuf,
    /// Output format [default: from the `-o` extension, else yaml].
    #[arg(long, value_parser = ["yaml", "json", "toml"])]
    pub format: Option<String>,
    /// Write the migration file here instead of to stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

pub fn run_lint(a: &LintArgs) -> anyhow::Result<i32> {
    let (settings, config_fail_on) = settings_from(a)?;
    let catalog = match &a.database_url {
        Some(url) => Some(Catalog::load(url)?),
        None => None,
    };
    let mut settings = settings;
    if let Some(c) = &catalog {
        settings.target_server(c.server_version, a.pg_version.is_some());
    }
    let fail_on = match a.fail_on.as_deref() {
        Some(s) => Severity::parse(s).context("--fail-on")?,
        None => config_fail_on.unwrap_or(Severity::Warning),
    };
    let format = Format::parse(&a.format).context("--format")?;
    let linter = Linter::new(&settings, catalog.as_ref());
    let stdin = a.paths.iter().any(|p| p.as_os_str() == "-");
    let files: Vec<PathBuf> = a
        .paths
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .cloned()
        .collect();
    let mut stdin_input = None;
    if stdin {
        let mut sql = String::new();
        std::io::stdin()
            .read_to_string(&mut sql)
            .context("reading SQL from stdin")?;
        if a.fix {
            let (fixed, _) = ratchet_lint::fix_sql(&linter, &a.stdin_filename, &sql);
            std::io::stdout().write_all(fixed.as_bytes())?;
            return Ok(0);
        }
        stdin_input = Some(Ok(Input::sql(a.stdin_filename.clone(), sql)));
    }
    // Files are read, fixed, linted and printed a chunk at a time: a missing path is an
    // error for that path (exit 2 at the end) and the others are still linted.
    let fix = |source: ratchet_lint::Source| -> ratchet_lint::Source {
        let mut input = source?;
        if a.fix && input.kind == ratchet_lint::InputKind::Sql {
            let (fixed, n) = ratchet_lint::fix_sql(&linter, &input.path, &input.source);
            if n > 0 {
                if let Err(e) = std::fs::write(&input.path, &fixed) {
                    let message = format!("cannot write {}: {e}", input.path);
                    return Err(ratchet_lint::unreadable(input.path, message));
                }
                input.source = fixed;
            }
        }
        Ok(input)
    };
    let sources = ratchet_lint::sources(&files, &settings.exclude)
        .chain(stdin_input)
        .map(fix);
    let root = std::env::current_dir().context("reading the working directory")?;
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut renderer = Renderer::new(format, out, &root)?;
    linter.lint_stream(sources, |file| renderer.file(&file))?;
    let totals = renderer.finish()?;
    Ok(totals.exit_code(fail_on))
}

/// Defaults, then `[lint]` of the config file, then the flags.
fn settings_from(a: &LintArgs) -> anyhow::Result<(Settings, Option<Severity>)> {
    let mut settings = Settings::default();
    let mut fail_on = None;
    if let Some(path) = crate::config_file::locate(a.config.as_deref()) {
        let text = crate::config_file::read(&path)?;
        crate::config_file::check_tables(&path.display().to_string(), &text)?;
        let cfg = LintConfig::from_toml(&path.display().to_string(), &text)?;
        cfg.apply(&mut settings);
        fail_on = cfg.fail_on();
    }
    if let Some(v) = &a.pg_version {
        settings.pg_version = PgVersion::parse(v)
            .with_context(|| format!("--pg-version {v}: expected e.g. 15 or 14.3"))?;
    }
    if a.assume_in_transaction {
        settings.assume_in_transaction = true;
    }
    for r in a.enable.iter().chain(&a.disable) {
        if ratchet_lint::rules::find(r).is_none() && r != "all" {
            return Err(ratchet_lint::LintError::UnknownRule(r.clone()).into());
        }
    }
    settings.enable.extend(a.enable.iter().cloned());
    settings.disable.extend(a.disable.iter().cloned());
    Ok((settings, fail_on))
}

pub fn run_explain(a: &ExplainArgs) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    if a.list || a.rule.is_none() {
        for r in ratchet_lint::rules::ALL {
            let default = if r.enabled_by_default {
                r.severity.as_str().to_string()
            } else {
                format!("off ({})", r.severity)
            };
            writeln!(
                out,
                "{:<4} {:<40} {:<14} {:<7} {}",
                r.code,
                r.name,
                default,
                r.category.as_str(),
                r.summary
            )?;
        }
        return Ok(0);
    }
    let name = a.rule.as_deref().unwrap_or_default();
    let rule = ratchet_lint::rules::find(name)
        .ok_or_else(|| ratchet_lint::LintError::UnknownRule(name.to_string()))?;
    out.write_all(ratchet_lint::docs::explain(rule).as_bytes())?;
    Ok(0)
}
pub fn run_convert(a: &ConvertArgs) -> anyhow::Result<i32> {
    use anyhow::Context as _;
    use std::io::{Read as _, Write as _};

    let (sql, name) = if a.file.as_os_str() == "-" {
        let mut sql = String::new();
        std::io::stdin()
            .read_to_string(&mut sql)
            .context("reading SQL from stdin")?;
        (sql, "<stdin>".to_string())
    } else {
        let sql = std::fs::read_to_string(&a.file)
            .with_context(|| format!("reading {}", a.file.display()))?;
        (sql, a.file.display().to_string())
    };
    let format = match a.format.as_deref() {
        Some("json") => ratchet_spec::Format::Json,
        Some("toml") => ratchet_spec::Format::Toml,
        Some(_) => ratchet_spec::Format::Yaml,
        None => a
            .output
            .as_deref()
            .and_then(ratchet_spec::Format::from_path)
            .unwrap_or(ratchet_spec::Format::Yaml),
    };
    let conversion = ratchet_convert::convert(&sql, &name)?;
    let text = ratchet_spec::to_string(&conversion.file, format)?;
    match &a.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    let mut stderr = std::io::stderr().lock();
    for note in &conversion.notes {
        writeln!(stderr, "{note}")?;
    }
    Ok(0)
}
