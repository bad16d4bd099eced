//! Backfill: fill new physical columns for the rows that existed when the migration
//! started, in keyset batches over the primary key, resumable from a cursor stored in the
//! same transaction as each batch.

use serde::{Deserialize, Serialize};

use crate::plan::{Lock, Statement, ROW_EXCLUSIVE};
use crate::sql::{ident, qualified};

/// What to backfill: `SET column = expression` for every pre-existing row of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillSpec {
    pub schema: String,
    /// Physical table name.
    pub table: String,
    /// Physical key columns (primary key); empty means batches over `ctid` ranges.
    pub key: Vec<String>,
    /// `(physical column, SQL expression over physical columns)`.
    pub set: Vec<(String, String)>,
}

impl BackfillSpec {
    /// What `ratchet plan` shows for the backfill: one representative batch.
    pub fn preview(&self) -> Vec<Statement> {
        let sets = self
            .set
            .iter()
            .map(|(c, e)| format!("{} = {e}", ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let range = if self.key.is_empty() {
            "ctid >= $lo AND ctid < $hi".to_string()
        } else {
            let k = self
                .key
                .iter()
                .map(|c| ident(c))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({k}) > ($cursor) AND ({k}) <= ($batch_end)")
        };
        vec![Statement::new(
            format!(
                "UPDATE {} SET {sets} WHERE {range}  -- repeated in batches",
                qualified(&self.schema, &self.table)
            ),
            vec![Lock::new(
                ROW_EXCLUSIVE,
                format!(
                    "{}.{} (row locks on the batch only)",
                    self.schema, self.table
                ),
            )],
        )]
    }
}

/// Run (or resume) a backfill step.
pub(crate) async fn run(
    _engine: &mut crate::executor::Engine,
    m: &crate::state::MigrationRow,
    _step: usize,
    spec: &BackfillSpec,
) -> Result<(), crate::error::EngineError> {
    Err(crate::error::EngineError::Unsupported {
        location: m.name.clone(),
        operation: format!("backfill of {}.{}", spec.schema, spec.table),
        hint: "backfills are not built yet".into(),
    })
}
