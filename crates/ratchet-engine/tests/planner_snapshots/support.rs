//! Loading the fixtures, planning without a database, and the text rendering of a plan.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ratchet_engine::catalog::Catalog;
use ratchet_engine::plan::{Action, ColumnMapping, Mapping, Plan, Statement, Step};
use ratchet_engine::planner::{self, PlanInput};
use ratchet_engine::EngineError;
use ratchet_spec::{Format, Migration};

/// The version schema of "the last completed migration" every case plans after, unless
/// it says otherwise: the plan then drops it at complete.
pub const PREVIOUS: &str = "public_00_base";

/// The fixtures folder, absolute (the test may run from anywhere).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `fixtures/catalogs/<name>.json`.
pub fn catalog(name: &str) -> Catalog {
    let path = fixtures().join("catalogs").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// `fixtures/migrations/<file>`, parsed by ratchet-spec with the path relative to the
/// crate, so that locations in errors are the same on every machine.
pub fn migration(file: &str) -> Migration {
    let relative = Path::new("tests/fixtures/migrations").join(file);
    let text = std::fs::read_to_string(fixtures().join("migrations").join(file))
        .unwrap_or_else(|e| panic!("{relative:?}: {e}"));
    let stem = relative.file_stem().and_then(|s| s.to_str()).unwrap();
    let format = Format::from_path(&relative).expect("a .yaml or .json fixture");
    let m = ratchet_spec::parse_str(stem, &relative, format, &text)
        .unwrap_or_else(|e| panic!("{relative:?}: {e}"));
    // The engine runs these checks before planning; a fixture must pass them, so that
    // every error snapshotted here is the planner's own.
    if let Err(errs) = ratchet_spec::validate_static(&m) {
        panic!("{relative:?} fails the static checks: {errs:?}");
    }
    m
}

/// One planner run: a catalog fixture, a migration fixture and the planner's settings.
pub struct Case {
    catalog: &'static str,
    file: &'static str,
    previous: Option<&'static str>,
    completes_at_once: bool,
    /// `server_version_num` instead of the fixture's (routes that depend on the version).
    server_version: Option<i32>,
}

/// Plan `fixtures/migrations/<file>` against `fixtures/catalogs/<catalog>.json`.
pub fn case(catalog: &'static str, file: &'static str) -> Case {
    Case {
        catalog,
        file,
        previous: Some(PREVIOUS),
        completes_at_once: false,
        server_version: None,
    }
}

impl Case {
    /// The first migration: no previous version schema.
    pub fn without_previous(mut self) -> Case {
        self.previous = None;
        self
    }

    /// After a migration whose version schema is `name`.
    pub fn after(mut self, name: &'static str) -> Case {
        self.previous = Some(name);
        self
    }

    /// As with `Config::completes_at_once` (`ratchet migrate`).
    pub fn completing_at_once(mut self) -> Case {
        self.completes_at_once = true;
        self
    }

    /// As if the catalog had been read from a server of `server_version_num`.
    pub fn on_server(mut self, server_version_num: i32) -> Case {
        self.server_version = Some(server_version_num);
        self
    }

    /// The migration file's text, shown as the snapshot's description.
    pub fn source(&self) -> String {
        std::fs::read_to_string(fixtures().join("migrations").join(self.file)).unwrap()
    }

    pub fn plan(&self) -> Result<Plan, EngineError> {
        let m = migration(self.file);
        let mut cat = catalog(self.catalog);
        if let Some(v) = self.server_version {
            cat.server_version_num = v;
        }
        planner::plan(&PlanInput {
            migration: &m,
            catalog: &cat,
            previous_version_schema: self.previous.map(str::to_string),
            completes_at_once: self.completes_at_once,
        })
    }

    /// The plan as text; panics with the error when the planner refuses.
    pub fn render(&self) -> String {
        let plan = self.plan().unwrap_or_else(|e| panic!("{}: {e}", self.file));
        let m = migration(self.file);
        let server = match self.server_version {
            Some(v) => format!(" (as on server_version_num {v})"),
            None => String::new(),
        };
        format!("catalog: {}{server}\n{}", self.catalog, render(&plan, &m))
    }

    /// The planner's error message; panics when it plans.
    pub fn error(&self) -> String {
        match self.plan() {
            Ok(plan) => panic!("{} planned {} steps", self.file, plan.steps.len()),
            Err(e) => format!("catalog: {}\n{e}\n", self.catalog),
        }
    }
}

/// `assert_snapshot!` of a case's rendered plan (or, with `error`, of its error), with
/// the migration file as the snapshot's description.
macro_rules! assert_plan {
    ($case:expr) => {
        assert_plan!(@ $case, render)
    };
    ($case:expr, error) => {
        assert_plan!(@ $case, error)
    };
    (@ $case:expr, $how:ident) => {{
        let case = $case;
        let mut settings = insta::Settings::clone_current();
        settings.set_description(case.source());
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(case.$how()));
    }};
}

/// The plan as a reviewer reads it: a header, then every step in order with its phase,
/// kind, operation, description, statements and locks.
pub fn render(plan: &Plan, m: &Migration) -> String {
    let mut out = String::new();
    let previous = plan.previous_version_schema.as_deref().unwrap_or("none");
    writeln!(out, "migration: {} ({})", plan.migration, m.path.display()).unwrap();
    writeln!(out, "schema: {}", plan.schema).unwrap();
    writeln!(
        out,
        "version schema: {} (previous: {previous})",
        plan.version_schema
    )
    .unwrap();
    for w in &plan.warnings {
        writeln!(out, "warning: {w}").unwrap();
    }
    for r in &plan.routes {
        writeln!(out, "route: {r}").unwrap();
    }
    for (i, step) in plan.steps.iter().enumerate() {
        out.push('\n');
        render_step(&mut out, i, step, m);
    }
    out
}

fn render_step(out: &mut String, i: usize, step: &Step, m: &Migration) {
    let origin = match step.operation {
        Some(op) => {
            let o = &m.operations[op];
            format!("op {op} {} (line {})", o.value.kind(), o.line)
        }
        None => "plan".to_string(),
    };
    let kind = kind(&step.action);
    writeln!(out, "#{i} {} | {kind} | {origin}", step.phase.as_str()).unwrap();
    writeln!(out, "  {}", step.description).unwrap();
    match &step.action {
        Action::Transaction {
            backfill_bounds, ..
        } if !backfill_bounds.is_empty() => {
            let steps: Vec<String> = backfill_bounds.iter().map(|i| format!("#{i}")).collect();
            writeln!(
                out,
                "  records the bounds of backfills {}",
                steps.join(", ")
            )
            .unwrap();
        }
        Action::CreateIndexConcurrently { schema, index, .. } => {
            writeln!(out, "  index: {schema}.{index}").unwrap();
        }
        Action::SyncViews {
            version_schema,
            mapping,
            ..
        } => render_mapping(out, version_schema, mapping),
        Action::Backfill(spec) => {
            let key: Vec<String> = spec.key.iter().map(|(c, t)| format!("{c} {t}")).collect();
            let key = if key.is_empty() {
                "none (ctid ranges)".to_string()
            } else {
                key.join(", ")
            };
            writeln!(out, "  table: {}.{}, key: {key}", spec.schema, spec.table).unwrap();
            let p = &spec.pair;
            let side = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
            writeln!(
                out,
                "  pair {}: old {} -> new {}, up: {}, down: {}, keyed: {}",
                p.name,
                side(&p.old),
                side(&p.new),
                side(&p.up),
                side(&p.down),
                p.keyed
            )
            .unwrap();
        }
        _ => {}
    }
    for s in step.statements() {
        render_statement(out, &s);
    }
}

fn kind(action: &Action) -> &'static str {
    match action {
        Action::Transaction { .. } => "transaction",
        Action::CreateIndexConcurrently { .. } => "create index concurrently",
        Action::DropIndexConcurrently { .. } => "drop index concurrently",
        Action::NoTransaction { .. } => "no transaction",
        Action::SyncViews { .. } => "sync views",
        Action::Backfill(_) => "backfill",
    }
}

/// One line per mapped table: its columns in mapping order, `physical as logical` where
/// the names differ, with what else the mapping says about a column in brackets (an
/// `order` only when it is not the column's place in the list).
fn render_mapping(out: &mut String, version_schema: &str, mapping: &Mapping) {
    writeln!(out, "  version schema: {version_schema}").unwrap();
    for t in &mapping.tables {
        let hidden = if t.hidden { " (hidden)" } else { "" };
        let columns: Vec<String> = t.columns.iter().enumerate().map(column).collect();
        let name = as_name(&t.physical, &t.logical);
        writeln!(out, "  map {name}{hidden}: {}", columns.join(", ")).unwrap();
    }
}

fn as_name(physical: &str, logical: &str) -> String {
    if physical == logical {
        physical.to_string()
    } else {
        format!("{physical} as {logical}")
    }
}

fn column((i, c): (usize, &ColumnMapping)) -> String {
    let mut notes = Vec::new();
    if c.hidden {
        notes.push("hidden".to_string());
    }
    if let Some(r) = &c.replaces {
        notes.push(format!("replaces {r}"));
    }
    match c.order {
        Some(o) if o != i => notes.push(format!("order {o}")),
        Some(_) => {}
        None => notes.push("no order".into()),
    }
    match &c.default {
        Some(Some(d)) => notes.push(format!("default {d}")),
        Some(None) => notes.push("no default".into()),
        None => {}
    }
    if c.count_omitted {
        notes.push("count omitted".into());
    }
    let name = as_name(&c.physical, &c.logical);
    if notes.is_empty() {
        name
    } else {
        format!("{name} [{}]", notes.join(", "))
    }
}

/// Every line of the SQL behind `> `, then the locks it claims.
fn render_statement(out: &mut String, s: &Statement) {
    for line in s.sql.lines() {
        writeln!(out, "  >{}{line}", if line.is_empty() { "" } else { " " }).unwrap();
    }
    if s.locks.is_empty() {
        return;
    }
    let locks: Vec<String> = s
        .locks
        .iter()
        .map(|l| format!("{} on {}", l.mode, l.on))
        .collect();
    writeln!(out, "    locks: {}", locks.join("; ")).unwrap();
}
