//! Validation: every backfilled row checked against `up`/`down`, mismatches repaired
//! on request.

use crate::error::EngineError;
use crate::sql::{ident, literal};
use serde::Serialize;
use serde_json::json;
use tokio_postgres::types::ToSql;

use crate::backfill::*;
use crate::retry::{RetryLog, RetryPolicy};

/// The result of `ratchet validate`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Validation {
    pub rows_checked: i64,
    pub mismatches: i64,
    pub repaired: i64,
    pub passed: bool,
    /// The first few mismatches: table, key, old value, new value.
    pub samples: Vec<serde_json::Value>,
    /// Checks that could not compare values (a volatile `up`), said plainly.
    pub notes: Vec<String>,
}

/// The per-row condition that the pair is consistent, over alias `r`, and a note when
/// the check is weaker than an equality.
pub(crate) fn consistency(
    spec: &BackfillSpec,
    volatile: &std::collections::BTreeSet<String>,
) -> Result<(String, Option<String>), EngineError> {
    let p = &spec.pair;
    let new = format!("r.{}", spec.new_col());
    let up = spec.up("r.")?;
    let what = format!("{}.{}", spec.table, p.new.as_deref().unwrap_or_default());
    let up_volatile =
        p.up.as_deref()
            .is_some_and(|u| crate::fragment::is_volatile(u, volatile));
    if up_volatile {
        return Ok((
            format!("{new} IS NOT NULL OR {up} IS NULL"),
            Some(format!(
                "`up` of {what} is volatile: rows were checked to be filled, not compared"
            )),
        ));
    }
    let down = match (&p.old, &p.down) {
        (Some(old), Some(d)) => {
            let resolves = crate::fragment::column_refs(d)
                .unwrap_or_default()
                .iter()
                .all(|(n, _, _)| p.new_names.iter().any(|(l, _)| l == n));
            let d_volatile = crate::fragment::is_volatile(d, volatile);
            match (resolves, d_volatile) {
                (true, false) => p
                    .down_sql("r.")
                    .map_err(|e| EngineError::Sql {
                        context: "rewriting `down`".into(),
                        message: e,
                    })?
                    .map(|d| format!("r.{} IS NOT DISTINCT FROM {d}", ident(old))),
                _ => None,
            }
        }
        _ => None,
    };
    match down {
        Some(d) => Ok((format!("{new} IS NOT DISTINCT FROM {up} OR {d}"), None)),
        // No way back (a new column, or an unusable `down`): rows written through the new
        // version may differ from `up` on purpose, so only completeness is checked.
        None => Ok((
            format!("{new} IS NOT NULL OR {up} IS NULL"),
            Some(format!(
                "{what} has no usable `down`: rows were checked to be filled, not compared"
            )),
        )),
    }
}

/// Rows per validation chunk (key-range chunks keep each read short; a table without a
/// key is read at once).
const CHUNK: i64 = 10_000;

/// Validate the backfill `spec` of migration `migration`, chunk by chunk, adding to `out`;
/// with `repair`, recompute the mismatching rows of each chunk. Each chunk and each repair
/// is retried under the engine's retry policy.
pub(crate) async fn validate_one(
    cx: &mut Ctx<'_>,
    migration: &str,
    spec: &BackfillSpec,
    repair: bool,
    out: &mut Validation,
) -> Result<(), EngineError> {
    let cat = crate::catalog::load(&*cx.client, &cx.config.schema).await?;
    let (ok, note) = consistency(spec, &cat.volatile_functions)?;
    if let Some(n) = note {
        out.notes.push(n);
    }
    let policy = RetryPolicy::new(cx.config);
    let log = RetryLog {
        state: cx.state,
        reporter: cx.reporter.as_ref(),
        migration,
        description: format!("validation chunk of {}", spec.table),
        detail: json!({ "validate": spec.table }),
    };
    let mut cursor: Option<Vec<String>> = None;
    // The throttle's cap on the chunk size, while the monitors slow validation down.
    let mut limit = CHUNK;
    let rows_total = estimated_rows(&*cx.client, spec).await;
    let started = std::time::Instant::now();
    let (mut checked_here, mut bad_here) = (0u64, 0u64);
    loop {
        let t0 = std::time::Instant::now();
        let (sql, params) = chunk_sql(spec, &ok, cursor.as_ref(), limit);
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let r = policy
            .run(cx.client, &log, async |c| {
                c.query_one(&sql, &refs)
                    .await
                    .map_err(|e| EngineError::db(format!("validating {}", spec.table), e))
            })
            .await?;
        let checked: i64 = r.get(0);
        let bad: i64 = r.get(1);
        out.rows_checked += checked;
        out.mismatches += bad;
        checked_here += checked.max(0) as u64;
        bad_here += bad.max(0) as u64;
        cx.report(crate::report::Event::Validate {
            table: spec.table.clone(),
            rows_checked: checked_here,
            rows_total,
            mismatches: bad_here,
            rows_per_second: checked_here as f64 / started.elapsed().as_secs_f64().max(0.001),
            chunk_size: limit,
            chunk_duration: t0.elapsed(),
        });
        keep_samples(out, spec, r.get(3));
        if repair && bad > 0 && !spec.key.is_empty() {
            let keys: Vec<Vec<String>> =
                serde_json::from_value(r.get::<_, serde_json::Value>(4)).unwrap_or_default();
            let log = RetryLog {
                description: format!("repair of {}", spec.table),
                detail: json!({ "repair": spec.table }),
                ..log
            };
            out.repaired += policy
                .run(cx.client, &log, async |c| repair_rows(c, spec, &keys).await)
                .await?;
        }
        if spec.key.is_empty() || checked < limit {
            break;
        }
        cursor = r.get(2);
        let stats = BatchStats {
            seq: BatchStats::next_seq(),
            table: spec.table.clone(),
            rows: checked as u64,
            rows_done: out.rows_checked as u64,
            rows_total: None,
            batch_size: limit,
            duration: t0.elapsed(),
        };
        limit = between_chunks(cx, &stats)
            .await?
            .unwrap_or(CHUNK)
            .clamp(1, CHUNK);
    }
    Ok(())
}

/// The planner's estimate of the rows of the table of `spec` (its leaf partitions'
/// together), for the progress; none before the table was ever analyzed.
async fn estimated_rows(client: &tokio_postgres::Client, spec: &BackfillSpec) -> Option<u64> {
    let table = crate::sql::qualified(&spec.schema, &spec.table);
    let r = client
        .query_one(
            "SELECT CASE WHEN t.relkind = 'p' THEN
                        (SELECT sum(greatest(c.reltuples, 0))
                           FROM pg_partition_tree(t.oid) p
                           JOIN pg_class c ON c.oid = p.relid
                          WHERE p.isleaf)
                    ELSE greatest(t.reltuples, 0) END::float8
               FROM pg_class t WHERE t.oid = $1::text::regclass",
            &[&table],
        )
        .await
        .ok()?;
    let n: Option<f64> = r.get(0);
    n.filter(|n| *n >= 1.0).map(|n| n as u64)
}

/// Between chunks the throttle hook decides, as between backfill batches: wait while it
/// says pause, a smaller chunk (returned) and a wait on throttle, a clean stop on stop
/// (validation starts over with `ratchet validate`; it only reads).
async fn between_chunks(cx: &Ctx<'_>, stats: &BatchStats) -> Result<Option<i64>, EngineError> {
    loop {
        match cx.throttle.after_batch(stats) {
            Decision::Continue => return Ok(None),
            Decision::Throttle {
                max_batch, wait, ..
            } => {
                tokio::time::sleep(wait).await;
                return Ok(Some(max_batch));
            }
            Decision::Pause(d) => tokio::time::sleep(d).await,
            Decision::Stop(why) => {
                return Err(EngineError::refused(
                    crate::error::Refusal::Stopped,
                    format!(
                        "validation of {} stopped: {why}; run `ratchet validate` again",
                        stats.table
                    ),
                ))
            }
        }
    }
}

/// The first few mismatches, for the report.
fn keep_samples(out: &mut Validation, spec: &BackfillSpec, samples: serde_json::Value) {
    let Some(arr) = samples.as_array() else {
        return;
    };
    let room = 5usize.saturating_sub(out.samples.len());
    for s in arr.iter().take(room) {
        out.samples
            .push(json!({"table": spec.table, "key": s[0], "old": s[1], "new": s[2]}));
    }
}

/// One chunk's query after `cursor` (at most `chunk` rows), and its parameters: rows checked, mismatches, the
/// next cursor, up to five samples, and the keys of the mismatching rows.
fn chunk_sql(
    spec: &BackfillSpec,
    ok: &str,
    cursor: Option<&Vec<String>>,
    chunk: i64,
) -> (String, Vec<String>) {
    let old = spec
        .pair
        .old
        .as_ref()
        .map(|o| format!("r.{}::text", ident(o)))
        .unwrap_or_else(|| "NULL::text".into());
    let key_text = if spec.key.is_empty() {
        "ARRAY[r.ctid::text]".to_string()
    } else {
        format!("ARRAY[{}]", spec.keys_text("r."))
    };
    let (range, order, params): (String, String, Vec<String>) = if spec.key.is_empty() {
        ("true".into(), "r.ctid".into(), vec![])
    } else {
        let r = match cursor {
            Some(_) => format!("({}) > {}", spec.keys("r."), spec.key_params(1)),
            None => "true".into(),
        };
        (r, spec.keys("r."), cursor.cloned().unwrap_or_default())
    };
    let limit = if spec.key.is_empty() {
        String::new()
    } else {
        format!("LIMIT {chunk}")
    };
    let (carry, last) = carried_key(spec);
    let sql = format!(
        "WITH b AS (SELECT {key_text} AS k, ({ok}) AS ok, {old} AS o, r.{new}::text AS n{carry}
                      FROM {t} AS r WHERE {range} ORDER BY {order} {limit})
         SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM b WHERE NOT ok),
                {last},
                (SELECT coalesce(json_agg(json_build_array(k, o, n)), '[]') FROM (SELECT * FROM b WHERE NOT ok LIMIT 5) x),
                (SELECT coalesce(json_agg(k), '[]') FROM b WHERE NOT ok)",
        new = spec.new_col(),
        t = spec.t(),
    );
    (sql, params)
}

/// The chunk's last key, in the key's own order (text order may differ), is the next
/// cursor; the key columns are carried as `_k0, _k1, …` for that. Returns the carried
/// columns of the chunk's select list and the expression of its last key.
fn carried_key(spec: &BackfillSpec) -> (String, String) {
    if spec.key.is_empty() {
        return (String::new(), "NULL::text[]".to_string());
    }
    let carried: Vec<String> = (0..spec.key.len()).map(|i| format!("_k{i}")).collect();
    let cols: Vec<String> = spec
        .key
        .iter()
        .zip(&carried)
        .map(|((k, _), c)| format!(", r.{} AS {c}", ident(k)))
        .collect();
    let text: Vec<String> = carried.iter().map(|c| format!("{c}::text")).collect();
    let desc: Vec<String> = carried.iter().map(|c| format!("{c} DESC")).collect();
    (
        cols.concat(),
        format!(
            "(SELECT ARRAY[{}] FROM b ORDER BY {} LIMIT 1)",
            text.join(", "),
            desc.join(", ")
        ),
    )
}

/// Recompute the rows of `keys` from `up`, in one transaction.
pub(crate) async fn repair_rows(
    client: &mut tokio_postgres::Client,
    spec: &BackfillSpec,
    keys: &[Vec<String>],
) -> Result<i64, EngineError> {
    let sql = format!(
        "UPDATE {t} AS r SET {new} = {up} WHERE ({k}) = {p}",
        t = spec.t(),
        new = spec.new_col(),
        up = spec.up("r.")?,
        k = spec.keys("r."),
        p = spec.key_params(1)
    );
    let tx = client
        .transaction()
        .await
        .map_err(|e| EngineError::db("beginning a repair", e))?;
    tx.batch_execute(&format!(
        "SET LOCAL ratchet.backfill = {}",
        literal(&spec.pair.name)
    ))
    .await
    .map_err(|e| EngineError::db("preparing a repair", e))?;
    let mut n = 0;
    for key in keys {
        let refs: Vec<&(dyn ToSql + Sync)> = key.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        n += tx
            .execute(&sql, &refs)
            .await
            .map_err(|e| EngineError::db("repairing a row", e))? as i64;
    }
    tx.commit()
        .await
        .map_err(|e| EngineError::db("committing a repair", e))?;
    Ok(n)
}
