//! Gates: checks that must pass before the destructive contract phase runs.

use crate::error::EngineError;
use crate::executor::Engine;
use crate::plan::Action;
use crate::sql::ident;
use crate::state::MigrationRow;

/// Refuse `complete` while a backfill of the migration is unfinished or its latest
/// validation is missing or failed.
pub async fn before_complete(engine: &Engine, m: &MigrationRow) -> Result<(), EngineError> {
    let has_backfill = m
        .plan
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::Backfill(_)));
    if !has_backfill {
        return Ok(());
    }
    let s = ident(&engine.config.state_schema);
    let row = engine
        .client
        .query_opt(
            &format!(
                "SELECT passed FROM {s}.validations WHERE migration_id = $1 ORDER BY id DESC LIMIT 1"
            ),
            &[&m.id],
        )
        .await
        .map_err(|e| EngineError::db("reading validation results", e))?;
    match row.map(|r| r.get::<_, bool>(0)) {
        Some(true) => Ok(()),
        Some(false) => Err(EngineError::Refused(format!(
            "the latest validation of `{}` failed; run `ratchet validate --repair`, then complete",
            m.name
        ))),
        None => Err(EngineError::Refused(format!(
            "`{}` has not been validated; run `ratchet validate` first",
            m.name
        ))),
    }
}
