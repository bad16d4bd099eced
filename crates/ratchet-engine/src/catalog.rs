//! Catalog introspection: what the database looks like right now.
//!
//! The planner validates a migration against this snapshot (missing tables, duplicate
//! names, …) before anything is changed, and the executor re-reads it to rebuild the
//! version schema's views. Only `pg_catalog` is read; nothing here takes a lock
//! stronger than the catalog's own ACCESS SHARE.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use crate::error::EngineError;

/// A snapshot of one schema's tables.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    pub schema: String,
    pub server_version_num: i32,
    /// Tables (and partitioned tables) by name.
    pub tables: BTreeMap<String, Table>,
    /// Every index of the schema by name, including those backing constraints.
    pub indexes: BTreeMap<String, IndexInfo>,
    /// Names of the types (enums, domains, composites) defined in the schema.
    pub types: Vec<String>,
    /// Every schema name in the database (a version schema must not collide).
    pub schemas: Vec<String>,
    /// Names of volatile functions (any overload): a default calling one rewrites the
    /// table when a column is added.
    pub volatile_functions: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    pub oid: u32,
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub constraints: Vec<ConstraintInfo>,
    pub comment: Option<String>,
    /// The planner's row estimate (`pg_class.reltuples`; -1 when never analysed).
    pub estimated_rows: f64,
    /// The replica identity as an `ALTER TABLE … REPLICA IDENTITY` clause (`DEFAULT`,
    /// `FULL`, `NOTHING`, `USING INDEX "name"`), so an abort can put it back.
    #[serde(default)]
    pub replica_identity: String,
    /// Row-level security is enabled (`pg_class.relrowsecurity`).
    #[serde(default)]
    pub row_security: bool,
    /// How a partitioned table (relkind `p`) is partitioned, and its partitions; `None`
    /// for a plain table. The planner routes indexes, backfills and foreign keys through
    /// the partitions with it (PostgreSQL cannot build an index `CONCURRENTLY` on a
    /// partitioned table, nor, before 18, add a `NOT VALID` foreign key to one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioning: Option<Partitioning>,
}

/// The partition key of a partitioned table and the tree of partitions below it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partitioning {
    /// `pg_get_partkeydef()`, e.g. `RANGE (created_at)` or `HASH (id)`.
    pub key: String,
    /// The key's plain columns; expression keys are left out (see `key_has_expressions`).
    pub key_columns: Vec<String>,
    /// The key has an expression (`RANGE ((lower(name)))`): no unique index can include it.
    #[serde(default)]
    pub key_has_expressions: bool,
    /// Every partition below the table, level by level (a partition's parent comes
    /// before it), each level in name order.
    pub partitions: Vec<Partition>,
}

/// One partition of a partitioned table, at any level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// Its schema (a partition may live in another schema than its parent).
    pub schema: String,
    pub name: String,
    /// The table it is a partition of (in `parent_schema`).
    pub parent: String,
    pub parent_schema: String,
    /// 1 for a partition of the root, 2 for a partition of a partition, …
    pub level: i32,
    pub kind: PartitionKind,
    /// The partition key of a partition that is itself partitioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key_has_expressions: bool,
}

/// What a partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKind {
    /// A plain table holding rows.
    Leaf,
    /// Itself partitioned (sub-partitions below it hold the rows).
    Partitioned,
    /// A foreign table (no indexes, no local rows).
    Foreign,
}

impl Partitioning {
    /// The partitions that hold rows (plain tables, at any level).
    pub fn leaves(&self) -> impl Iterator<Item = &Partition> {
        self.partitions
            .iter()
            .filter(|p| p.kind == PartitionKind::Leaf)
    }

    /// The foreign partitions, which ratchet cannot index or backfill.
    pub fn foreign(&self) -> impl Iterator<Item = &Partition> {
        self.partitions
            .iter()
            .filter(|p| p.kind == PartitionKind::Foreign)
    }
}

impl Partition {
    /// `"schema"."name"`.
    pub fn qualified(&self) -> String {
        crate::sql::qualified(&self.schema, &self.name)
    }

    /// `schema.name`, as the plan's locks name relations.
    pub fn lock_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    pub attnum: i16,
    /// `format_type()` of the column, e.g. `character varying(255)`.
    pub type_name: String,
    pub not_null: bool,
    /// The default expression (`pg_get_expr`), absent for identity/generated columns.
    pub default: Option<String>,
    /// `a` (always) or `d` (by default) for identity columns.
    pub identity: Option<String>,
    /// The generation expression of a stored generated column.
    pub generated: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConstraintInfo {
    pub name: String,
    /// `p` primary key, `u` unique, `c` check, `f` foreign key, `x` exclusion, `n` not null.
    pub kind: String,
    pub columns: Vec<String>,
    pub definition: String,
    pub validated: bool,
    /// The referenced table of a foreign key.
    pub referenced_table: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexInfo {
    pub name: String,
    pub table: String,
    /// Key columns by name; expression keys are left out.
    pub columns: Vec<String>,
    pub unique: bool,
    pub primary: bool,
    /// False for an index left INVALID by a failed `CREATE INDEX CONCURRENTLY`.
    pub valid: bool,
    pub definition: String,
    /// The constraint this index backs, if any.
    pub constraint: Option<String>,
    /// An index of a partitioned table (relkind `I`): it has no storage of its own, and
    /// `DROP INDEX CONCURRENTLY` cannot drop it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partitioned: bool,
    /// The partitioned index this one is attached to (as the index of a partition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

impl Catalog {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// The constraint `name` on any table of the schema.
    pub fn constraint(&self, table: &str, name: &str) -> Option<&ConstraintInfo> {
        self.tables
            .get(table)?
            .constraints
            .iter()
            .find(|c| c.name == name)
    }

    /// Whether a relation (table, view, index, sequence, …) called `name` exists; used to
    /// refuse names PostgreSQL would reject before anything is changed.
    pub fn relation_name_taken(&self, name: &str) -> bool {
        self.tables.contains_key(name) || self.indexes.contains_key(name)
    }
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn primary_key(&self) -> Option<&ConstraintInfo> {
        self.constraints.iter().find(|c| c.kind == "p")
    }
}

/// The schemas ratchet itself owns and must never expose as application tables.
pub fn is_internal_table(name: &str) -> bool {
    name.starts_with("_ratchet_")
}

/// Read the catalog of `schema`.
pub async fn load(client: &impl GenericClient, schema: &str) -> Result<Catalog, EngineError> {
    let server_version_num: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| EngineError::db("reading the server version", e))?
        .get(0);
    let mut catalog = Catalog {
        schema: schema.to_string(),
        server_version_num,
        ..Catalog::default()
    };
    load_tables(client, &mut catalog).await?;
    load_columns(client, &mut catalog).await?;
    load_constraints(client, &mut catalog).await?;
    load_indexes(client, &mut catalog).await?;
    load_partitions(client, &mut catalog).await?;
    load_names(client, &mut catalog).await?;
    Ok(catalog)
}

async fn load_tables(client: &impl GenericClient, cat: &mut Catalog) -> Result<(), EngineError> {
    let rows = client
        .query(
            "SELECT c.oid, c.relname::text, obj_description(c.oid, 'pg_class'), c.reltuples::float8,
                    CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'
                      WHEN 'i' THEN COALESCE((SELECT 'USING INDEX ' || quote_ident(ic.relname)
                                                FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                                               WHERE i.indrelid = c.oid AND i.indisreplident), 'DEFAULT')
                      ELSE 'DEFAULT' END,
                    c.relrowsecurity
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            &[&cat.schema],
        )
        .await
        .map_err(|e| EngineError::db("reading tables", e))?;
    for row in rows {
        let name: String = row.get(1);
        cat.tables.insert(
            name.clone(),
            Table {
                oid: row.get(0),
                name,
                columns: Vec::new(),
                constraints: Vec::new(),
                comment: row.get(2),
                estimated_rows: row.get(3),
                replica_identity: row.get(4),
                row_security: row.get(5),
                partitioning: None,
            },
        );
    }
    Ok(())
}

async fn load_columns(client: &impl GenericClient, cat: &mut Catalog) -> Result<(), EngineError> {
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, a.attnum, format_type(a.atttypid, a.atttypmod),
                    a.attnotnull,
                    CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                    NULLIF(a.attidentity::text, ''),
                    CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                    col_description(c.oid, a.attnum)
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0
                AND NOT a.attisdropped
              ORDER BY c.relname, a.attnum",
            &[&cat.schema],
        )
        .await
        .map_err(|e| EngineError::db("reading columns", e))?;
    for row in rows {
        let table: String = row.get(0);
        let Some(t) = cat.tables.get_mut(&table) else {
            continue;
        };
        t.columns.push(ColumnInfo {
            name: row.get(1),
            attnum: row.get(2),
            type_name: row.get(3),
            not_null: row.get(4),
            default: row.get(5),
            identity: row.get(6),
            generated: row.get(7),
            comment: row.get(8),
        });
    }
    Ok(())
}

async fn load_constraints(
    client: &impl GenericClient,
    cat: &mut Catalog,
) -> Result<(), EngineError> {
    let rows = client
        .query(
            "SELECT c.relname::text, k.conname::text, k.contype::text,
                    ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                          ORDER BY u.i),
                    pg_get_constraintdef(k.oid), k.convalidated, r.relname::text
               FROM pg_constraint k
               JOIN pg_class c ON c.oid = k.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_class r ON r.oid = k.confrelid
              WHERE n.nspname = $1
              ORDER BY c.relname, k.conname",
            &[&cat.schema],
        )
        .await
        .map_err(|e| EngineError::db("reading constraints", e))?;
    for row in rows {
        let table: String = row.get(0);
        let Some(t) = cat.tables.get_mut(&table) else {
            continue;
        };
        t.constraints.push(ConstraintInfo {
            name: row.get(1),
            kind: row.get(2),
            columns: row.get(3),
            definition: row.get(4),
            validated: row.get(5),
            referenced_table: row.get(6),
        });
    }
    Ok(())
}

async fn load_indexes(client: &impl GenericClient, cat: &mut Catalog) -> Result<(), EngineError> {
    let rows = client
        .query(
            "SELECT i.relname::text, t.relname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY u(n, o)
                          JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.n
                          ORDER BY u.o),
                    x.indisunique, x.indisprimary, x.indisvalid, pg_get_indexdef(i.oid),
                    (SELECT k.conname::text FROM pg_constraint k WHERE k.conindid = i.oid
                       AND k.conrelid = t.oid LIMIT 1),
                    i.relkind = 'I',
                    (SELECT p.relname::text FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent
                      WHERE h.inhrelid = i.oid)
               FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid
               JOIN pg_class t ON t.oid = x.indrelid
               JOIN pg_namespace n ON n.oid = i.relnamespace
              WHERE n.nspname = $1",
            &[&cat.schema],
        )
        .await
        .map_err(|e| EngineError::db("reading indexes", e))?;
    for row in rows {
        let name: String = row.get(0);
        cat.indexes.insert(
            name.clone(),
            IndexInfo {
                name,
                table: row.get(1),
                columns: row.get(2),
                unique: row.get(3),
                primary: row.get(4),
                valid: row.get(5),
                definition: row.get(6),
                constraint: row.get(7),
                partitioned: row.get(8),
                parent: row.get(9),
            },
        );
    }
    Ok(())
}

/// The partition key and the partition tree of every partitioned table of the schema
/// (`pg_partition_tree`, PostgreSQL 12+).
async fn load_partitions(
    client: &impl GenericClient,
    cat: &mut Catalog,
) -> Result<(), EngineError> {
    // The key of a partitioned relation: its definition, plain columns, and whether an
    // expression is part of it (attnum 0 in `partattrs`).
    const KEY: &str = "(SELECT pg_get_partkeydef(pt.partrelid) FROM pg_partitioned_table pt WHERE pt.partrelid = {rel}),
         ARRAY(SELECT a.attname::text FROM pg_partitioned_table pt
                CROSS JOIN LATERAL unnest(pt.partattrs::int2[]) WITH ORDINALITY u(n, o)
                 JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = u.n
                WHERE pt.partrelid = {rel} ORDER BY u.o),
         coalesce((SELECT 0 = ANY(pt.partattrs::int2[]) FROM pg_partitioned_table pt
                    WHERE pt.partrelid = {rel}), false)";
    let sql = format!(
        "SELECT r.relname::text, n.nspname::text, c.relname::text, pn.nspname::text,
                pc.relname::text, tr.level, c.relkind::text, {}, {}
           FROM pg_class r JOIN pg_namespace rn ON rn.oid = r.relnamespace
           CROSS JOIN LATERAL pg_partition_tree(r.oid) tr
           JOIN pg_class c ON c.oid = tr.relid JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_class pc ON pc.oid = tr.parentrelid
           LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
          WHERE rn.nspname = $1 AND r.relkind = 'p' AND NOT r.relispartition
          ORDER BY r.relname, tr.level, c.relname",
        KEY.replace("{rel}", "r.oid"),
        KEY.replace("{rel}", "c.oid"),
    );
    let rows = client
        .query(&sql, &[&cat.schema])
        .await
        .map_err(|e| EngineError::db("reading partitions", e))?;
    for row in rows {
        let root: String = row.get(0);
        let Some(t) = cat.tables.get_mut(&root) else {
            continue;
        };
        let level: i32 = row.get(5);
        let p = t.partitioning.get_or_insert_with(|| Partitioning {
            key: row.get::<_, Option<String>>(7).unwrap_or_default(),
            key_columns: row.get(8),
            key_has_expressions: row.get(9),
            partitions: Vec::new(),
        });
        if level == 0 {
            continue;
        }
        let kind = match row.get::<_, String>(6).as_str() {
            "p" => PartitionKind::Partitioned,
            "f" => PartitionKind::Foreign,
            _ => PartitionKind::Leaf,
        };
        let partitioned = kind == PartitionKind::Partitioned;
        p.partitions.push(Partition {
            name: row.get(2),
            schema: row.get(1),
            parent_schema: row.get::<_, Option<String>>(3).unwrap_or_default(),
            parent: row.get::<_, Option<String>>(4).unwrap_or_default(),
            level,
            kind,
            key: row.get::<_, Option<String>>(10).filter(|_| partitioned),
            key_columns: if partitioned { row.get(11) } else { vec![] },
            key_has_expressions: partitioned && row.get::<_, bool>(12),
        });
    }
    Ok(())
}

async fn load_names(client: &impl GenericClient, cat: &mut Catalog) -> Result<(), EngineError> {
    let rows = client
        .query(
            "SELECT t.typname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE n.nspname = $1 AND t.typtype IN ('e', 'd', 'c', 'r')
                AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid AND c.relkind <> 'c')",
            &[&cat.schema],
        )
        .await
        .map_err(|e| EngineError::db("reading types", e))?;
    cat.types = rows.iter().map(|r| r.get(0)).collect();
    let rows = client
        .query("SELECT nspname::text FROM pg_namespace", &[])
        .await
        .map_err(|e| EngineError::db("reading schemas", e))?;
    cat.schemas = rows.iter().map(|r| r.get(0)).collect();
    let rows = client
        .query(
            "SELECT DISTINCT proname::text FROM pg_proc WHERE provolatile = 'v'",
            &[],
        )
        .await
        .map_err(|e| EngineError::db("reading function volatility", e))?;
    cat.volatile_functions = rows.iter().map(|r| r.get(0)).collect();
    Ok(())
}
