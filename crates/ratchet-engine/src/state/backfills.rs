//! The backfills' rows in the state schema: each backfill's bound and totals
//! (`backfills`), the slices of its range with their cursors (`backfill_slices`), and
//! each validation's result (`validations`).

use serde_json::json;
use tokio_postgres::GenericClient;

use super::State;
use crate::error::EngineError;

/// One row of `backfills`.
pub(crate) struct BackfillRow {
    /// The single cursor kept by ratchet before backfills were cut into slices.
    pub(crate) cursor: Option<Vec<String>>,
    pub(crate) bound: Option<Vec<String>>,
    pub(crate) rows_done: i64,
    pub(crate) rows_total: Option<i64>,
    pub(crate) batch: Option<i32>,
    pub(crate) done: bool,
}

/// A part of a backfill's range, walked by one worker at a time: the keys after `cursor`
/// (from the first key when `None`) up to and including `upper`; for a table without a
/// key, the pages from `cursor` up to, not including, `upper`.
#[derive(Debug, Clone)]
pub(crate) struct Slice {
    pub(crate) id: i32,
    pub(crate) cursor: Option<Vec<String>>,
    pub(crate) upper: Vec<String>,
    pub(crate) batch: Option<i32>,
    pub(crate) done: bool,
}

/// What one batch did, stored with its slice's cursor in the batch's transaction.
pub(crate) struct BatchRecord<'a> {
    pub(crate) slice: i32,
    pub(crate) cursor: Option<&'a Vec<String>>,
    pub(crate) rows: i64,
    pub(crate) batch_size: i32,
    pub(crate) finished: bool,
}

/// Progress of one backfill, as `backfills` and its slices record it.
pub(crate) struct ProgressRow {
    pub(crate) step: i32,
    pub(crate) rows_done: i64,
    pub(crate) rows_total: Option<i64>,
    pub(crate) batch_size: Option<i32>,
    pub(crate) done: bool,
    pub(crate) slices: i64,
    pub(crate) slices_done: i64,
}

/// The figures of one validation run.
pub(crate) struct ValidationRecord<'a> {
    pub(crate) rows_checked: i64,
    pub(crate) mismatches: i64,
    pub(crate) repaired: i64,
    pub(crate) passed: bool,
    pub(crate) detail: &'a serde_json::Value,
}

fn keys_of(v: Option<serde_json::Value>) -> Option<Vec<String>> {
    v.and_then(|v| serde_json::from_value(v).ok())
}

impl State {
    /// Record the bound of backfill step `step`: `bound` is the SQL expression that
    /// computes it (`BackfillSpec::bound_sql`), `table` the qualified table whose planner
    /// estimate becomes `rows_total`. Runs in the transaction that creates the dual-write
    /// triggers; a rerun of that transaction after a crash keeps the first bound.
    pub(crate) async fn record_backfill_bound(
        &self,
        c: &impl GenericClient,
        id: i64,
        step: usize,
        bound: &str,
        table: &str,
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "INSERT INTO {} (migration_id, step, upper_bound, rows_total)
                 SELECT $1, $2, {bound},
                        (SELECT CASE WHEN reltuples > 0 THEN reltuples::bigint END
                           FROM pg_class WHERE oid = $3::text::regclass)
                 ON CONFLICT DO NOTHING",
                self.t("backfills")
            ),
            &[&id, &(step as i32), &table],
        )
        .await
        .map_err(|e| EngineError::db("recording the backfill's bound", e))?;
        Ok(())
    }

    /// The `backfills` row of step `step` of migration `id`.
    pub(crate) async fn backfill_row(
        &self,
        c: &impl GenericClient,
        id: i64,
        step: usize,
    ) -> Result<Option<BackfillRow>, EngineError> {
        let row = c
            .query_opt(
                &format!(
                    "SELECT cursor, upper_bound, rows_done, rows_total, batch_size, done
                       FROM {} WHERE migration_id = $1 AND step = $2",
                    self.t("backfills")
                ),
                &[&id, &(step as i32)],
            )
            .await
            .map_err(|e| EngineError::db("reading the backfill cursor", e))?;
        Ok(row.map(|r| BackfillRow {
            cursor: keys_of(r.get(0)),
            bound: keys_of(r.get(1)),
            rows_done: r.get(2),
            rows_total: r.get(3),
            batch: r.get(4),
            done: r.get(5),
        }))
    }

    /// The slices of a backfill, in order.
    pub(crate) async fn slices(
        &self,
        c: &impl GenericClient,
        id: i64,
        step: usize,
    ) -> Result<Vec<Slice>, EngineError> {
        let rows = c
            .query(
                &format!(
                    "SELECT slice, cursor, upper_bound, batch_size, done FROM {}
                      WHERE migration_id = $1 AND step = $2 ORDER BY slice",
                    self.t("backfill_slices")
                ),
                &[&id, &(step as i32)],
            )
            .await
            .map_err(|e| EngineError::db("reading the backfill slices", e))?;
        Ok(rows
            .iter()
            .map(|r| Slice {
                id: r.get(0),
                cursor: keys_of(r.get(1)),
                upper: keys_of(r.get(2)).unwrap_or_default(),
                batch: r.get(3),
                done: r.get(4),
            })
            .collect())
    }

    /// Record a new slice of a backfill.
    pub(crate) async fn insert_slice(
        &self,
        c: &impl GenericClient,
        id: i64,
        step: usize,
        slice: &Slice,
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "INSERT INTO {} (migration_id, step, slice, cursor, upper_bound, batch_size)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                self.t("backfill_slices")
            ),
            &[
                &id,
                &(step as i32),
                &slice.id,
                &slice.cursor.as_ref().map(|c| json!(c)),
                &json!(slice.upper),
                &slice.batch,
            ],
        )
        .await
        .map_err(|e| EngineError::db("recording a backfill slice", e))?;
        Ok(())
    }

    /// Move the upper bound of a slice (when it is cut in parts).
    pub(crate) async fn set_slice_upper(
        &self,
        c: &impl GenericClient,
        id: i64,
        step: usize,
        slice: i32,
        upper: &[String],
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "UPDATE {} SET upper_bound = $4
                  WHERE migration_id = $1 AND step = $2 AND slice = $3",
                self.t("backfill_slices")
            ),
            &[&id, &(step as i32), &slice, &json!(upper)],
        )
        .await
        .map_err(|e| EngineError::db("cutting the backfill into slices", e))?;
        Ok(())
    }

    /// A batch's cursor on its slice and the backfill's totals (that `ratchet status`
    /// shows), in the batch's own transaction `c`.
    pub(crate) async fn record_batch(
        &self,
        c: &impl GenericClient,
        id: i64,
        step: usize,
        b: &BatchRecord<'_>,
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "WITH slice AS (
                   UPDATE {} SET cursor = $4, rows_done = rows_done + $5,
                          batch_size = $6, done = $7, updated_at = clock_timestamp()
                    WHERE migration_id = $1 AND step = $2 AND slice = $3)
                 UPDATE {} SET rows_done = rows_done + $5, batch_size = $6,
                        updated_at = clock_timestamp()
                  WHERE migration_id = $1 AND step = $2",
                self.t("backfill_slices"),
                self.t("backfills")
            ),
            &[
                &id,
                &(step as i32),
                &b.slice,
                &b.cursor.map(|c| json!(c)),
                &b.rows,
                &b.batch_size,
                &b.finished,
            ],
        )
        .await
        .map_err(|e| EngineError::db("storing the backfill cursor", e))?;
        Ok(())
    }

    /// Start a walk over pages again over a rewritten table: a new bound (`bound` is
    /// its SQL, as for [`record_backfill_bound`](Self::record_backfill_bound)) and no
    /// slices. The rows filled so far stay filled; the new walk skips them.
    pub(crate) async fn rewalk_backfill(
        &self,
        c: &mut tokio_postgres::Client,
        id: i64,
        step: usize,
        bound: &str,
    ) -> Result<(), EngineError> {
        let e = |e| EngineError::db("starting the backfill again over the rewritten table", e);
        let tx = c.transaction().await.map_err(e)?;
        tx.execute(
            &format!(
                "UPDATE {} SET upper_bound = {bound}, cursor = NULL, updated_at = clock_timestamp()
                  WHERE migration_id = $1 AND step = $2",
                self.t("backfills")
            ),
            &[&id, &(step as i32)],
        )
        .await
        .map_err(e)?;
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE migration_id = $1 AND step = $2",
                self.t("backfill_slices")
            ),
            &[&id, &(step as i32)],
        )
        .await
        .map_err(e)?;
        tx.commit().await.map_err(e)
    }

    /// Mark a backfill done.
    pub(crate) async fn finish_backfill(
        &self,
        c: &impl GenericClient,
        id: i64,
        step: usize,
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "UPDATE {} SET done = true, updated_at = clock_timestamp()
                  WHERE migration_id = $1 AND step = $2",
                self.t("backfills")
            ),
            &[&id, &(step as i32)],
        )
        .await
        .map_err(|e| EngineError::db("recording the end of the backfill", e))?;
        Ok(())
    }

    /// Progress of every backfill of migration `id`, by step.
    pub(crate) async fn backfill_progress(
        &self,
        c: &impl GenericClient,
        id: i64,
    ) -> Result<Vec<ProgressRow>, EngineError> {
        let rows = c
            .query(
                &format!(
                    "SELECT b.step, b.rows_done, b.rows_total, b.batch_size, b.done,
                            count(sl.slice), count(sl.slice) FILTER (WHERE sl.done)
                       FROM {} b
                       LEFT JOIN {} sl USING (migration_id, step)
                      WHERE b.migration_id = $1
                      GROUP BY b.migration_id, b.step ORDER BY b.step",
                    self.t("backfills"),
                    self.t("backfill_slices")
                ),
                &[&id],
            )
            .await
            .map_err(|e| EngineError::db("reading backfill progress", e))?;
        Ok(rows
            .iter()
            .map(|r| ProgressRow {
                step: r.get(0),
                rows_done: r.get(1),
                rows_total: r.get(2),
                batch_size: r.get(3),
                done: r.get(4),
                slices: r.get(5),
                slices_done: r.get(6),
            })
            .collect())
    }

    /// How many backfills of migration `id` are not done.
    pub(crate) async fn unfinished_backfills(
        &self,
        c: &impl GenericClient,
        id: i64,
    ) -> Result<i64, EngineError> {
        Ok(c.query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE migration_id = $1 AND NOT done",
                self.t("backfills")
            ),
            &[&id],
        )
        .await
        .map_err(|e| EngineError::db("reading backfill progress", e))?
        .get(0))
    }

    /// Store a validation's result.
    pub(crate) async fn record_validation(
        &self,
        c: &impl GenericClient,
        id: i64,
        v: &ValidationRecord<'_>,
    ) -> Result<(), EngineError> {
        c.execute(
            &format!(
                "INSERT INTO {} (migration_id, rows_checked, mismatches, repaired, passed, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                self.t("validations")
            ),
            &[
                &id,
                &v.rows_checked,
                &v.mismatches,
                &v.repaired,
                &v.passed,
                v.detail,
            ],
        )
        .await
        .map_err(|e| EngineError::db("storing the validation result", e))?;
        Ok(())
    }
}
