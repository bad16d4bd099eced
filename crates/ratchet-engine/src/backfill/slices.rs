//! A backfill's stored cursor and slices, and cutting the range into slices.

use crate::error::EngineError;
use crate::report::Event;
use crate::state::MigrationRow;
use tokio_postgres::Client;

use super::*;

pub(crate) use crate::state::{BackfillRow as Row, Slice};

pub(crate) async fn load_row(
    cx: &Ctx<'_>,
    m: &MigrationRow,
    step: usize,
) -> Result<Option<Row>, EngineError> {
    cx.state.backfill_row(&*cx.client, m.id, step).await
}

/// Slices smaller than this are not cut further: a worker would spend more on starting
/// than on updating.
pub(crate) const MIN_SLICE_ROWS: i64 = 1000;

/// The unfinished slices of a backfill, cut so that `workers` workers each have one where
/// the rows allow it. The first run makes one slice of the whole range; a resumed run
/// with more workers than unfinished slices cuts them again. Runs before any worker
/// starts, under the migration lock.
pub(crate) async fn prepare_slices(
    cx: &mut Ctx<'_>,
    m: &MigrationRow,
    step: usize,
    spec: &BackfillSpec,
    row: &Row,
    bound: &[String],
    (workers, rows_per_page): (usize, f64),
) -> Result<Vec<Slice>, EngineError> {
    let mut all = cx.state.slices(&*cx.client, m.id, step).await?;
    if all.is_empty() {
        // A cursor in `backfills` was left by a ratchet from before slices: go on from it.
        let whole = Slice {
            id: 0,
            cursor: row.cursor.clone(),
            upper: bound.to_vec(),
            batch: row.batch,
            done: false,
        };
        cx.state
            .insert_slice(&*cx.client, m.id, step, &whole)
            .await?;
        all = vec![whole];
    }
    let open: Vec<Slice> = all.iter().filter(|x| !x.done).cloned().collect();
    let parts = workers.div_ceil(open.len().max(1));
    if parts < 2 {
        return Ok(open);
    }
    // Counting and walking the key index takes a while on a big table: say so first.
    cx.report(Event::Info(format!(
        "cutting the rest of the backfill of {} into slices for {workers} workers",
        spec.table
    )));
    let mut next_id = all.iter().map(|x| x.id).max().unwrap_or(0) + 1;
    let mut out = Vec::new();
    for slice in open {
        let points = split_points(&*cx.client, spec, &slice, (parts, rows_per_page)).await?;
        let Some(first) = points.first() else {
            out.push(slice);
            continue;
        };
        let tx = cx
            .client
            .transaction()
            .await
            .map_err(|e| EngineError::db("cutting the backfill into slices", e))?;
        let store = |e| EngineError::db("cutting the backfill into slices", e);
        cx.state
            .set_slice_upper(&tx, m.id, step, slice.id, first)
            .await?;
        let mut cursor = first.clone();
        for upper in points[1..].iter().chain([&slice.upper]) {
            let part = Slice {
                id: next_id,
                cursor: Some(cursor),
                upper: upper.clone(),
                batch: slice.batch,
                done: false,
            };
            cx.state.insert_slice(&tx, m.id, step, &part).await?;
            out.push(part);
            cursor = upper.clone();
            next_id += 1;
        }
        tx.commit().await.map_err(store)?;
        out.push(Slice {
            upper: first.clone(),
            ..slice
        });
    }
    out.sort_by_key(|x| x.id);
    cx.report(Event::Info(format!(
        "backfill of {}: {} slices to walk",
        spec.table,
        out.len()
    )));
    Ok(out)
}

/// Where to cut `slice` into `parts` slices of about the same number of rows (of pages
/// for a walk over pages): the inner boundaries, none when it is too small to cut.
pub(crate) async fn split_points(
    client: &Client,
    spec: &BackfillSpec,
    slice: &Slice,
    (parts, rows_per_page): (usize, f64),
) -> Result<Vec<Vec<String>>, EngineError> {
    let parts = parts as i64;
    if spec.walks_pages() {
        let (from, to) = (page(slice.cursor.as_ref()), page(Some(&slice.upper)));
        let rows = ((to - from) as f64 * rows_per_page) as i64;
        let parts = parts.min(rows / MIN_SLICE_ROWS);
        if parts < 2 {
            return Ok(vec![]);
        }
        let each = (to - from) / parts;
        if each < 1 {
            return Ok(vec![]);
        }
        return Ok((1..parts)
            .map(|i| vec![(from + each * i).to_string()])
            .collect());
    }
    let rows: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE {}",
                spec.t(),
                spec.range_cond("", slice.cursor.is_some())
            ),
            &range_params(&slice.upper, slice.cursor.as_ref()),
        )
        .await
        .map_err(|e| EngineError::db("counting the rows to backfill", e))?
        .get(0);
    let parts = parts.min(rows / MIN_SLICE_ROWS);
    if parts < 2 {
        return Ok(vec![]);
    }
    let each = rows / parts;
    let mut points: Vec<Vec<String>> = Vec::new();
    for _ in 1..parts {
        let cursor = points.last().or(slice.cursor.as_ref());
        let mut params = range_params(&slice.upper, cursor);
        params.push(&each);
        let point: Option<Vec<String>> = client
            .query_opt(&spec.batch_end_sql(cursor.is_some()), &params)
            .await
            .map_err(|e| EngineError::db("cutting the backfill into slices", e))?
            .map(|r| r.get(0));
        match point {
            Some(p) if p != slice.upper => points.push(p),
            _ => break,
        }
    }
    Ok(points)
}

/// The live rows a page of `spec`'s table holds, about: counted in its first pages (a
/// few hundred kilobytes), else the planner's figures, else a narrow row's count.
pub(crate) async fn rows_per_page(client: &Client, spec: &BackfillSpec) -> f64 {
    const SAMPLE: i64 = 64;
    let t = crate::sql::literal(&spec.t());
    let sql = format!(
        "SELECT (SELECT count(*) FROM {table} WHERE ctid < '({SAMPLE},0)'::tid)::float8
                / greatest(least(pg_relation_size({t}::regclass) / current_setting('block_size')::int, {SAMPLE}), 1),
                (SELECT CASE WHEN relpages > 0 AND reltuples > 0 THEN reltuples / relpages END
                   FROM pg_class WHERE oid = {t}::regclass)::float8",
        table = spec.t(),
    );
    match client.query_one(&sql, &[]).await {
        Ok(r) => {
            let sampled: f64 = r.get(0);
            let planner: Option<f64> = r.get(1);
            if sampled > 0.0 {
                sampled
            } else {
                planner.unwrap_or(100.0)
            }
        }
        Err(_) => 100.0,
    }
}
