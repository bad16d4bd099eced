//! The SQL of a backfill: batches over a key range or pages, and their ranges.

use crate::error::EngineError;
use crate::plan::{Lock, Statement, ROW_EXCLUSIVE};
use crate::sql::{ident, literal, qualified};
use tokio_postgres::types::ToSql;

use super::*;

impl BackfillSpec {
    pub(crate) fn t(&self) -> String {
        qualified(&self.schema, &self.table)
    }

    /// The table that holds the dual-write triggers: the partitioned parent of a leaf
    /// partition (its partitions' clones are internal triggers on PostgreSQL 14), else the
    /// table itself. It is in the plan's schema, the pair's.
    pub(crate) fn trigger_table(&self) -> String {
        match &self.parent {
            Some(p) => qualified(&self.pair.schema, p),
            None => self.t(),
        }
    }

    pub(crate) fn new_col(&self) -> String {
        ident(self.pair.new.as_deref().unwrap_or_default())
    }

    pub(crate) fn keys(&self, prefix: &str) -> String {
        self.key
            .iter()
            .map(|(k, _)| format!("{prefix}{}", ident(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn keys_text(&self, prefix: &str) -> String {
        self.key
            .iter()
            .map(|(k, _)| format!("{prefix}{}::text", ident(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn keys_desc(&self, prefix: &str) -> String {
        self.key
            .iter()
            .map(|(k, _)| format!("{prefix}{} DESC", ident(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `($1::text::type, $2::text::type)` starting at parameter `first`.
    pub(crate) fn key_params(&self, first: usize) -> String {
        let p = self
            .key
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| format!("${}::text::{ty}", first + i))
            .collect::<Vec<_>>()
            .join(", ");
        format!("({p})")
    }

    pub(crate) fn up(&self, prefix: &str) -> Result<String, EngineError> {
        self.pair
            .up_sql(prefix)
            .map_err(|e| EngineError::Sql {
                context: "rewriting `up`".into(),
                message: e,
            })?
            .ok_or_else(|| EngineError::State("a backfill without `up`".into()))
    }

    /// The backfill's bound as a `jsonb` array of text, computed when it runs, in the
    /// transaction that creates the triggers, so it names exactly the rows that existed
    /// before them: for a walk over pages, the page count and the table's file node (a
    /// rewrite, `VACUUM FULL` or `CLUSTER`, moves the rows: the walk then starts again
    /// over the new file); for a walk over keys, the greatest key.
    pub(crate) fn bound_sql(&self) -> String {
        if self.walks_pages() {
            let lit = literal(&self.t());
            format!(
                "to_jsonb(ARRAY[(pg_relation_size({lit}::regclass) / current_setting('block_size')::int + 1)::text, \
                 pg_relation_filenode({lit}::regclass)::text])"
            )
        } else {
            format!(
                "(SELECT to_jsonb(ARRAY[{}]) FROM {} ORDER BY {} LIMIT 1)",
                self.keys_text(""),
                self.t(),
                self.keys_desc("")
            )
        }
    }

    /// What `ratchet plan` shows: one representative batch.
    pub fn preview(&self) -> Vec<Statement> {
        let up = self.up("r.").unwrap_or_else(|e| format!("/* {e} */"));
        let range = if self.walks_pages() {
            "r.ctid >= '(<from page>,0)' AND r.ctid < '(<to page>,0)'".to_string()
        } else {
            format!(
                "({k}) > (<cursor>) AND ({k}) <= (<bound captured at start>)",
                k = self.keys("r.")
            )
        };
        vec![Statement::new(
            format!(
                "UPDATE {} AS r SET {} = {up} WHERE {range} AND r.{} IS NULL  -- in batches, resumable",
                self.t(),
                self.new_col(),
                self.new_col()
            ),
            vec![Lock::new(ROW_EXCLUSIVE, format!("{}.{}", self.schema, self.table))],
        )]
    }

    /// The keys up to the bound (`$1…`) and, when `has_cursor`, after the cursor (the
    /// parameters after the bound's): the parameters [`range_params`] lists.
    pub(crate) fn range_cond(&self, prefix: &str, has_cursor: bool) -> String {
        let keys = self.keys(prefix);
        let mut cond = format!("({keys}) <= {}", self.key_params(1));
        if has_cursor {
            cond += &format!(" AND ({keys}) > {}", self.key_params(self.key.len() + 1));
        }
        cond
    }

    /// The end key of the next batch: the `limit`-th key after the cursor (an index-only
    /// scan), or nothing when fewer rows are left before the bound.
    /// Parameters: bound keys, then cursor keys (when `has_cursor`), then the limit.
    pub(crate) fn batch_end_sql(&self, has_cursor: bool) -> String {
        let n = self.key.len();
        let limit = if has_cursor { 2 * n + 1 } else { n + 1 };
        // The text array is built above the OFFSET: built in the scan, it would be computed
        // for every skipped key too (about half the query's time).
        format!(
            "SELECT ARRAY[{kt}] FROM (SELECT {keys} FROM {t} WHERE {cond} ORDER BY {keys} \
             OFFSET ${limit}::bigint - 1 LIMIT 1) AS e",
            kt = self.keys_text("e."),
            t = self.t(),
            cond = self.range_cond("", has_cursor),
            keys = self.keys(""),
        )
    }

    /// One keyset batch: a range UPDATE between the cursor and the batch's end key, of
    /// the rows not filled yet. Parameters: end keys, then cursor keys (when `has_cursor`).
    pub(crate) fn keyed_batch_sql(&self, has_cursor: bool) -> Result<String, EngineError> {
        Ok(format!(
            "UPDATE {t} AS r SET {new} = {up} WHERE {cond} AND r.{new} IS NULL",
            t = self.t(),
            new = self.new_col(),
            up = self.up("r.")?,
            cond = self.range_cond("r.", has_cursor),
        ))
    }

    /// One batch over pages `$1` up to `$2`: the rows it updated, and the table's file
    /// node as the statement saw it (it holds the table's lock, which a rewrite waits
    /// for; see [`bound_sql`](Self::bound_sql)).
    pub(crate) fn ctid_batch_sql(&self) -> Result<String, EngineError> {
        Ok(format!(
            "WITH u AS (UPDATE {t} AS r SET {new} = {up}
   WHERE r.ctid >= $1 AND r.ctid < $2
     AND r.{new} IS NULL RETURNING 1)
SELECT count(*), pg_relation_filenode({lit}::regclass)::text FROM u",
            lit = literal(&self.t()),
            t = self.t(),
            new = self.new_col(),
            up = self.up("r.")?,
        ))
    }
}

/// The parameters of [`BackfillSpec::range_cond`]: the bound's keys, then the cursor's.
pub(crate) fn range_params<'a>(
    bound: &'a [String],
    cursor: Option<&'a Vec<String>>,
) -> Vec<&'a (dyn ToSql + Sync)> {
    bound
        .iter()
        .chain(cursor.into_iter().flatten())
        .map(|v| v as &(dyn ToSql + Sync))
        .collect()
}

/// The first tuple of page `.0` as a `tid` parameter (binary: the block number, then
/// the line pointer). A plain parameter keeps the TID range scan's bounds free of any
/// per-batch expression: built with `format(…)::tid` they cost a batch about 15%.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageStart(pub(crate) i64);

impl tokio_postgres::types::ToSql for PageStart {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use bytes::BufMut;
        // A page past the last one a tid can name ends every range.
        out.put_u32(u32::try_from(self.0.max(0)).unwrap_or(u32::MAX));
        out.put_u16(0);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::TID
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The page number a cursor or bound of a table without a key holds (0: the start).
pub(crate) fn page(v: Option<&Vec<String>>) -> i64 {
    v.and_then(|c| c.first())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}
