//! The engine's backfill and validation commands (the work is done in `crate::backfill`).

use serde_json::json;

use crate::backfill::Progress;
use crate::error::{EngineError, Gate, Refusal};
use crate::lifecycle::Engine;
use crate::plan::Action;
use crate::state::{MigrationPhase, ValidationRecord};
use crate::validate::{validate_one, Validation};

impl Engine {
    /// Progress of the active migration's backfills.
    pub async fn backfill_progress(&self) -> Result<Vec<Progress>, EngineError> {
        let Some(active) = self.state.active(&self.client).await? else {
            return Ok(vec![]);
        };
        let rows = self
            .state
            .backfill_progress(&self.client, active.id)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let table = match active.plan.steps.get(r.step as usize).map(|s| &s.action) {
                    Some(Action::Backfill(b)) => b.table.clone(),
                    _ => String::new(),
                };
                Progress {
                    step: r.step,
                    table,
                    rows_done: r.rows_done,
                    rows_total: r.rows_total,
                    batch_size: r.batch_size,
                    done: r.done,
                    slices: r.slices,
                    slices_done: r.slices_done,
                }
            })
            .collect())
    }

    /// Run or resume every unfinished backfill of the active migration.
    pub async fn backfill(&mut self) -> Result<Option<String>, EngineError> {
        let Some(active) = self.state.active(&self.client).await? else {
            return Ok(None);
        };
        if active.phase != MigrationPhase::Started {
            return Err(EngineError::refused(
                Refusal::WrongPhase,
                format!(
                    "migration `{}` is {}; there is nothing to backfill",
                    active.name, active.phase
                ),
            ));
        }
        self.run_phase(&active, crate::plan::Phase::Start).await?;
        Ok(Some(active.name))
    }

    /// Check every row of every backfilled column: the new column equals `up(old)`, or the
    /// old equals `down(new)` for rows written through the new version. With `repair`,
    /// recompute the mismatching rows. The result is stored and gates `complete`.
    pub async fn validate(&mut self, repair: bool) -> Result<Option<Validation>, EngineError> {
        let Some(active) = self.state.active(&self.client).await? else {
            return Ok(None);
        };
        if !active
            .plan
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Backfill(_)))
        {
            return Ok(None);
        }
        let progress = self.backfill_progress().await?;
        if let Some(p) = progress.iter().find(|p| !p.done) {
            return Err(EngineError::refused(
                Refusal::Gate(Gate::BackfillUnfinished),
                format!(
                "the backfill of {} is not finished ({} rows done); run `ratchet backfill` first",
                p.table, p.rows_done
            ),
            ));
        }
        // The tables' write count as the validation begins: a write after this may have
        // been missed by a chunk checked before it, so `complete` validates again when
        // the count moved (the triggers keep the pair in sync; this is the proof).
        let writes_at_start = crate::state::flags::write_count(
            &self.client,
            &crate::gates::backfilled_tables(&active),
        )
        .await?;
        let mut out = Validation::default();
        for step in &active.plan.steps {
            let Action::Backfill(spec) = &step.action else {
                continue;
            };
            validate_one(
                &mut self.backfill_ctx(),
                &active.name,
                spec,
                repair,
                &mut out,
            )
            .await?;
        }
        out.passed = out.mismatches == out.repaired;
        let detail =
            json!({"samples": out.samples, "notes": out.notes, "writes_at_start": writes_at_start});
        self.state
            .record_validation(
                &self.client,
                active.id,
                &ValidationRecord {
                    rows_checked: out.rows_checked,
                    mismatches: out.mismatches,
                    repaired: out.repaired,
                    passed: out.passed,
                    detail: &detail,
                },
            )
            .await?;
        self.state
            .event(
                &self.client,
                Some(&active.name),
                "validate",
                json!({"rows_checked": out.rows_checked, "mismatches": out.mismatches,
                       "repaired": out.repaired, "passed": out.passed}),
            )
            .await?;
        Ok(Some(out))
    }
}
