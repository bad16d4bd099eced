//! Gates: checks that must pass before the destructive contract phase runs.

use serde_json::json;

use crate::error::{EngineError, Gate, Refusal};
use crate::plan::Action;
use crate::state::{MigrationRow, State};
use tokio_postgres::Client;

/// Refuse `complete` while a backfill of the migration is unfinished, or while its latest
/// validation is missing or failed (unless `skip_validation`, which is logged loudly).
pub async fn before_complete(
    state: &State,
    client: &Client,
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
    let unfinished = state.unfinished_backfills(client, m.id).await?;
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
        state
            .event(
                client,
                Some(&m.name),
                "validation_skipped",
                json!({"warning": "complete ran with --skip-validation"}),
            )
            .await?;
        return Ok(());
    }
    match state.latest_validation(client, m.id).await? {
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
