//! Facts read from a live database (`--database-url`): real column types, row estimates
//! and the server version. Rules use them to be precise (a varchar widening is known to be
//! safe; a blocking index on a 50-row table is `info`, on a 50-million-row table an `error`).
//!
//! Loaded once per run with a handful of catalog queries; nothing is written.

use std::collections::HashMap;

use crate::ast::QualifiedName;
use crate::settings::PgVersion;
use crate::LintError;

/// A column as the catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    /// `format_type()` output, e.g. `character varying(20)`, `integer`.
    pub type_name: String,
    /// `pg_type.typname`, e.g. `varchar`, `int4`.
    pub base_type: String,
    pub not_null: bool,
}

/// An index as the catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
    pub partial: bool,
    pub valid: bool,
}

/// A table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    /// `pg_class.reltuples` (−1 when never analyzed, reported here as 0).
    pub rows: f64,
    pub partitioned: bool,
    pub columns: Vec<ColumnInfo>,
    pub indexes: Vec<IndexInfo>,
    /// `(name, definition, validated)` of CHECK constraints.
    pub checks: Vec<(String, String, bool)>,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The catalog snapshot.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub server_version: Option<PgVersion>,
    tables: HashMap<String, Vec<TableInfo>>,
}

impl Catalog {
    /// Builds a catalog from known tables (tests, or facts gathered elsewhere).
    pub fn from_tables(server_version: Option<PgVersion>, tables: Vec<TableInfo>) -> Catalog {
        let mut map: HashMap<String, Vec<TableInfo>> = HashMap::new();
        for t in tables {
            map.entry(t.name.clone()).or_default().push(t);
        }
        Catalog {
            server_version,
            tables: map,
        }
    }

    /// Looks a table up; an unqualified name prefers `public`.
    pub fn table(&self, name: &QualifiedName) -> Option<&TableInfo> {
        let candidates = self.tables.get(&name.name)?;
        match &name.schema {
            Some(s) => candidates.iter().find(|t| &t.schema == s),
            None => candidates
                .iter()
                .find(|t| t.schema == "public")
                .or_else(|| candidates.first()),
        }
    }

    /// Reads the catalog of the database at `url` (user tables only).
    pub fn load(url: &str) -> Result<Catalog, LintError> {
        let db_err = |e: postgres::Error| LintError::Database {
            message: e.to_string(),
        };
        let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(db_err)?;
        let version: String = client
            .query_one("SHOW server_version_num", &[])
            .map_err(db_err)?
            .get(0);
        let server_version = version.trim().parse::<u32>().ok().map(PgVersion::from_num);
        let mut tables: HashMap<u32, TableInfo> = HashMap::new();
        let rows = client
            .query(
                "SELECT c.oid, n.nspname::text, c.relname::text, greatest(c.reltuples, 0)::float8, c.relkind = 'p'
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p', 'm')
                    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
                &[],
            )
            .map_err(db_err)?;
        for r in rows {
            let oid: u32 = r.get(0);
            let info = TableInfo {
                schema: r.get(1),
                name: r.get(2),
                rows: r.get(3),
                partitioned: r.get(4),
                ..TableInfo::default()
            };
            tables.insert(oid, info);
        }
        let cols = client
            .query(
                "SELECT a.attrelid, a.attname::text, format_type(a.atttypid, a.atttypmod), t.typname::text, a.attnotnull
                   FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                  WHERE a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
                &[],
            )
            .map_err(db_err)?;
        for r in cols {
            let oid: u32 = r.get(0);
            if let Some(t) = tables.get_mut(&oid) {
                t.columns.push(ColumnInfo {
                    name: r.get(1),
                    type_name: r.get(2),
                    base_type: r.get(3),
                    not_null: r.get(4),
                });
            }
        }
        let idx = client
            .query(
                "SELECT i.indrelid, c.relname::text,
                        ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
                              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o),
                        i.indisunique, i.indpred IS NOT NULL, i.indisvalid
                   FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid",
                &[],
            )
            .map_err(db_err)?;
        for r in idx {
            let oid: u32 = r.get(0);
            if let Some(t) = tables.get_mut(&oid) {
                t.indexes.push(IndexInfo {
                    name: r.get(1),
                    columns: r.get(2),
                    unique: r.get(3),
                    partial: r.get(4),
                    valid: r.get(5),
                });
            }
        }
        let checks = client
            .query(
                "SELECT conrelid, conname::text, pg_get_constraintdef(oid), convalidated FROM pg_constraint WHERE contype = 'c'",
                &[],
            )
            .map_err(db_err)?;
        for r in checks {
            let oid: u32 = r.get(0);
            if let Some(t) = tables.get_mut(&oid) {
                t.checks.push((r.get(1), r.get(2), r.get(3)));
            }
        }
        Ok(Catalog::from_tables(
            server_version,
            tables.into_values().collect(),
        ))
    }
}
