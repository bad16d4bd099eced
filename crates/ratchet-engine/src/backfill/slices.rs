//! A backfill's stored cursor and slices, and cutting the range into slices.

use crate::error::EngineError;
use crate::report::Event;
use crate::sql::ident;
use crate::state::MigrationRow;
use serde_json::json;
use tokio_postgres::{Client, GenericClient};

use super::*;

pub(crate) struct Row {
    /// The single cursor kept by ratchet before backfills were cut into slices.
    pub(crate) cursor: Option<Vec<String>>,
    pub(crate) bound: Option<Vec<String>>,
    pub(crate) rows_done: i64,
    pub(crate) rows_total: Option<i64>,
    pub(crate) batch: Option<i32>,
    pub(crate) done: bool,
}

pub(crate) async fn load_row(
    cx: &Ctx<'_>,
    m: &MigrationRow,
    step: usize,
) -> Result<Option<Row>, EngineError> {
    let s = ident(&cx.config.state_schema);
    let row = cx
        .client
        .query_opt(
            &format!(
                "SELECT cursor, upper_bound, rows_done, rows_total, batch_size, done
                   FROM {s}.backfills WHERE migration_id = $1 AND step = $2"
            ),
            &[&m.id, &(step as i32)],
        )
        .await
        .map_err(|e| EngineError::db("reading the backfill cursor", e))?;
    Ok(row.map(|r| Row {
        cursor: keys_of(r.get(0)),
        bound: keys_of(r.get(1)),
        rows_done: r.get(2),
        rows_total: r.get(3),
        batch: r.get(4),
        done: r.get(5),
    }))
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

pub(crate) async fn load_slices(
    client: &Client,
    s: &str,
    m: &MigrationRow,
    step: usize,
) -> Result<Vec<Slice>, EngineError> {
    let rows = client
        .query(
            &format!(
                "SELECT slice, cursor, upper_bound, batch_size, done FROM {s}.backfill_slices
                  WHERE migration_id = $1 AND step = $2 ORDER BY slice"
            ),
            &[&m.id, &(step as i32)],
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

pub(crate) async fn insert_slice(
    client: &impl GenericClient,
    s: &str,
    m: &MigrationRow,
    step: usize,
    slice: &Slice,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            &format!(
                "INSERT INTO {s}.backfill_slices
                   (migration_id, step, slice, cursor, upper_bound, batch_size)
                 VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            &[
                &m.id,
                &(step as i32),
                &slice.id,
                &slice.cursor.as_ref().map(|c| json!(c)),
                &json!(slice.upper),
                &slice.batch,
            ],
        )
        .await
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
) -> Result<Vec<Slice>, EngineError> {
    let s = ident(&cx.config.state_schema);
    let workers = cx.config.backfill.workers.max(1);
    let mut all = load_slices(&*cx.client, &s, m, step).await?;
    if all.is_empty() {
        // A cursor in `backfills` was left by a ratchet from before slices: go on from it.
        let whole = Slice {
            id: 0,
            cursor: row.cursor.clone(),
            upper: bound.to_vec(),
            batch: row.batch,
            done: false,
        };
        insert_slice(&*cx.client, &s, m, step, &whole)
            .await
            .map_err(|e| EngineError::db("recording the backfill's range", e))?;
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
        let points = split_points(&*cx.client, spec, &slice, parts).await?;
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
        tx.execute(
            &format!(
                "UPDATE {s}.backfill_slices SET upper_bound = $4
                  WHERE migration_id = $1 AND step = $2 AND slice = $3"
            ),
            &[&m.id, &(step as i32), &slice.id, &json!(first)],
        )
        .await
        .map_err(store)?;
        let mut cursor = first.clone();
        for upper in points[1..].iter().chain([&slice.upper]) {
            let part = Slice {
                id: next_id,
                cursor: Some(cursor),
                upper: upper.clone(),
                batch: slice.batch,
                done: false,
            };
            insert_slice(&tx, &s, m, step, &part).await.map_err(store)?;
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

/// Where to cut `slice` into `parts` slices of about the same number of rows (pages for
/// a table without a key): the inner boundaries, none when it is too small to cut.
pub(crate) async fn split_points(
    client: &Client,
    spec: &BackfillSpec,
    slice: &Slice,
    parts: usize,
) -> Result<Vec<Vec<String>>, EngineError> {
    let parts = parts as i64;
    if spec.key.is_empty() {
        let (from, to) = (page(slice.cursor.as_ref()), page(Some(&slice.upper)));
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
