//! Gates: checks that must pass before the destructive contract phase runs.

use serde_json::json;

use crate::error::{EngineError, Gate, Refusal};
use crate::executor::Engine;
use crate::plan::Action;
use crate::sql::ident;
use crate::state::MigrationRow;

/// Refuse `complete` while a backfill of the migration is unfinished, or while its latest
/// validation is missing or failed (unless `skip_validation`, which is logged loudly).
pub async fn before_complete(
    engine: &Engine,
    m: &MigrationRow,
    skip_validation: bool,
) -> Result<(), EngineError> {
    let has_backfill = m
        .plan
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::Backfill(_)));
    if !has_backfill {
        return Ok(());
    }
    let s = ident(&engine.config.state_schema);
    let unfinished: i64 = engine
        .client
        .query_one(
            &format!("SELECT count(*) FROM {s}.backfills WHERE migration_id = $1 AND NOT done"),
            &[&m.id],
        )
        .await
        .map_err(|e| EngineError::db("reading backfill progress", e))?
        .get(0);
    if unfinished > 0 {
        return Err(EngineError::refused(
            Refusal::Gate(Gate::BackfillUnfinished),
            format!(
                "{unfinished} backfill(s) of `{}` are unfinished; run `ratchet backfill` first",
                m.name
            ),
        ));
    }
    if skip_validation {
        engine
            .state
            .event(
                &engine.client,
                Some(&m.name),
                "validation_skipped",
                json!({"warning": "complete ran with --skip-validation"}),
            )
            .await?;
        return Ok(());
    }
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
        Some(false) => Err(EngineError::refused(
            Refusal::Gate(Gate::ValidationFailed),
            format!(
            "the latest validation of `{}` failed; run `ratchet validate --repair`, then complete",
            m.name
        ),
        )),
        None => Err(EngineError::refused(
            Refusal::Gate(Gate::NotValidated),
            format!(
                "`{}` has not been validated; run `ratchet validate` first",
                m.name
            ),
        )),
    }
}
