//! The plan: every step `start`, `complete` and `abort` will run, computed before anything
//! runs.
//!
//! Planner and executor are separate on purpose: `ratchet plan` prints exactly these
//! steps (SQL and the lock each takes), and `start` stores the plan in the state schema
//! so that a rerun after a crash resumes the *same* steps instead of re-planning against
//! a half-changed catalog.

use serde::{Deserialize, Serialize};

mod backfill;
mod mapping;
mod pair;

pub use backfill::BackfillSpec;
pub use mapping::{ColumnMapping, Mapping, TableMapping};
pub use pair::Pair;

/// The phase a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Expand: additive changes only; the old version keeps working.
    Start,
    /// Contract: the old version goes away; destructive changes happen here.
    Complete,
    /// Undo an expand that was not completed: drop what start added.
    Abort,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Complete => "complete",
            Phase::Abort => "abort",
        }
    }
}

pub use ratchet_sql::LockMode;

/// A lock a statement takes, and on what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The mode; serialized as PostgreSQL's name for it, e.g. `ACCESS EXCLUSIVE`.
    pub mode: LockMode,
    /// The relation, schema-qualified.
    pub on: String,
}

impl Lock {
    pub fn new(mode: LockMode, on: impl Into<String>) -> Lock {
        Lock {
            mode,
            on: on.into(),
        }
    }

    /// Whether the mode blocks ordinary writes (INSERT/UPDATE/DELETE) while held.
    pub fn blocks_writes(&self) -> bool {
        self.mode.blocks_writes()
    }

    /// Whether the mode blocks plain reads (SELECT) while held.
    pub fn blocks_reads(&self) -> bool {
        self.mode.blocks_reads()
    }
}

pub const ACCESS_EXCLUSIVE: LockMode = LockMode::AccessExclusive;
pub const SHARE_ROW_EXCLUSIVE: LockMode = LockMode::ShareRowExclusive;
pub const SHARE_UPDATE_EXCLUSIVE: LockMode = LockMode::ShareUpdateExclusive;
pub const ROW_SHARE: LockMode = LockMode::RowShare;
pub const ROW_EXCLUSIVE: LockMode = LockMode::RowExclusive;

/// One SQL statement and the locks it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    pub sql: String,
    pub locks: Vec<Lock>,
}

impl Statement {
    /// A statement and its locks; several claims on one relation collapse into the
    /// strongest, which is the one that matters for what it blocks.
    pub fn new(sql: impl Into<String>, locks: Vec<Lock>) -> Statement {
        let mut merged: Vec<Lock> = Vec::new();
        for l in locks {
            match merged.iter_mut().find(|m| m.on == l.on) {
                Some(m) if l.mode > m.mode => *m = l,
                Some(_) => {}
                None => merged.push(l),
            }
        }
        Statement {
            sql: sql.into(),
            locks: merged,
        }
    }
}

/// What a step does. Each kind has its own idempotency rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Statements run in one transaction with `SET LOCAL lock_timeout`; the step's
    /// completion is recorded in the same transaction, so it runs exactly once.
    Transaction {
        statements: Vec<Statement>,
        /// The backfill steps (indexes into the plan's steps) whose bounds this
        /// transaction records: which rows existed when the dual-write triggers it creates
        /// took over. The executor records them through the state store in the same
        /// transaction, so no row is missed and none is filled twice.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        backfill_bounds: Vec<usize>,
    },
    /// `CREATE INDEX CONCURRENTLY` (cannot run in a transaction). Idempotent by
    /// checking the catalog: a valid index of that name means done; an INVALID one left by
    /// a failed attempt is dropped concurrently and the build retried.
    CreateIndexConcurrently {
        schema: String,
        index: String,
        statement: Statement,
    },
    /// `DROP INDEX CONCURRENTLY IF EXISTS` (idempotent by itself).
    DropIndexConcurrently { statement: Statement },
    /// A statement that must run outside a transaction block (e.g. `ALTER TYPE … ADD
    /// VALUE` before PostgreSQL 12, `VACUUM`); must be idempotent by itself.
    NoTransaction { statement: Statement },
    /// Create or update the version schema's views from the catalog as it is when the step
    /// runs (so raw `sql` operations are reflected), mapped through `mapping`.
    SyncViews {
        version_schema: String,
        mapping: Mapping,
        /// The views as the planner expects them, for `ratchet plan` only.
        preview: Vec<Statement>,
    },
    /// Fill a new physical column for the rows that existed at start, in batches.
    Backfill(Box<BackfillSpec>),
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub phase: Phase,
    /// The operation (0-based index into the file) this step comes from, if any.
    pub operation: Option<usize>,
    pub description: String,
    pub action: Action,
}

impl Step {
    /// Every statement the step runs, as `ratchet plan` shows them.
    pub fn statements(&self) -> Vec<Statement> {
        match &self.action {
            Action::Transaction { statements, .. } => statements.clone(),
            Action::CreateIndexConcurrently { statement, .. }
            | Action::DropIndexConcurrently { statement }
            | Action::NoTransaction { statement } => vec![statement.clone()],
            Action::SyncViews { preview, .. } => preview.clone(),
            Action::Backfill(spec) => spec.preview(),
        }
    }
}

/// The whole plan of one migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub migration: String,
    pub schema: String,
    /// The schema of views applications use for the new version.
    pub version_schema: String,
    /// The version schema of the previous migration, dropped at complete.
    pub previous_version_schema: Option<String>,
    pub steps: Vec<Step>,
    /// Things the file does that will work but deserve a look (e.g. an `up`/`down` that
    /// names a column the version does not have).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The version-specific routes this plan takes on the server it was planned for, and
    /// why, e.g. `PostgreSQL 18: NOT NULL is added NOT VALID and validated …`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
}

impl Plan {
    pub fn steps_of(&self, phase: Phase) -> impl Iterator<Item = (usize, &Step)> {
        self.steps
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.phase == phase)
    }
}
