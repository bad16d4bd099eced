//! The engine's backfill and validation commands (the work is done in `crate::backfill`).

use serde_json::json;

use crate::backfill::Progress;
use crate::error::{EngineError, Gate, Refusal};
use crate::executor::Engine;
use crate::plan::Action;
use crate::sql::ident;
use crate::state::MigrationPhase;
use crate::validate::{validate_one, Validation};

impl Engine {
    /// Progress of the active migration's backfills.
    pub async fn backfill_progress(&self) -> Result<Vec<Progress>, EngineError> {
        let Some(active) = self.state.active(&self.client).await? else {
            return Ok(vec![]);
        };
        let s = ident(&self.config.state_schema);
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT b.step, b.rows_done, b.rows_total, b.batch_size, b.done,
                            count(sl.slice), count(sl.slice) FILTER (WHERE sl.done)
                       FROM {s}.backfills b
                       LEFT JOIN {s}.backfill_slices sl USING (migration_id, step)
                      WHERE b.migration_id = $1
                      GROUP BY b.migration_id, b.step ORDER BY b.step"
                ),
                &[&active.id],
            )
            .await
            .map_err(|e| EngineError::db("reading backfill progress", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let step: i32 = r.get(0);
                let table = match active.plan.steps.get(step as usize).map(|s| &s.action) {
                    Some(Action::Backfill(b)) => b.table.clone(),
                    _ => String::new(),
                };
                Progress {
                    step,
                    table,
                    rows_done: r.get(1),
                    rows_total: r.get(2),
                    batch_size: r.get(3),
                    done: r.get(4),
                    slices: r.get(5),
                    slices_done: r.get(6),
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
        let mut out = Validation::default();
        for step in &active.plan.steps {
            let Action::Backfill(spec) = &step.action else {
                continue;
            };
            validate_one(&mut self.backfill_ctx(), spec, repair, &mut out).await?;
        }
        out.passed = out.mismatches == out.repaired;
        let s = ident(&self.config.state_schema);
        self.client
            .execute(
                &format!(
                    "INSERT INTO {s}.validations (migration_id, rows_checked, mismatches, repaired, passed, detail)
                     VALUES ($1, $2, $3, $4, $5, $6)"
                ),
                &[
                    &active.id,
                    &out.rows_checked,
                    &out.mismatches,
                    &out.repaired,
                    &out.passed,
                    &json!({"samples": out.samples, "notes": out.notes}),
                ],
            )
            .await
            .map_err(|e| EngineError::db("storing the validation result", e))?;
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
