//! Version schemas: one schema of views per migration, showing the tables as that version
//! of the application sees them.
//!
//! Views refer to their base columns by attribute number, not by name, so the physical
//! renames done at `complete` never break them. Simple one-table views are automatically
//! updatable, so applications write through them as through the tables. Views are
//! created `security_invoker` on PostgreSQL 15+ so row-level security on the base tables
//! still applies to the querying role.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use crate::catalog::{self, Catalog};
use crate::error::EngineError;
use crate::plan::{Lock, Statement, ACCESS_EXCLUSIVE};
use crate::sql::{ident, literal, qualified};

/// How physical tables and columns appear in a version: the result of the migration's
/// renames, drops and replacements. Tables and columns not listed appear as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub tables: Vec<TableMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMapping {
    pub physical: String,
    pub logical: String,
    pub hidden: bool,
    pub columns: Vec<ColumnMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnMapping {
    pub physical: String,
    pub logical: String,
    pub hidden: bool,
    /// The physical column whose place this one takes in the view's column order (a
    /// duplicated column shows where the original was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Position in the view (columns without one follow, in table order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<usize>,
    /// The default the view shows instead of the table's (`Some(None)`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Option<String>>,
}

/// One view as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDef {
    pub name: String,
    pub create: String,
    pub defaults: Vec<String>,
    /// Changes when what applications see changes (names, types, defaults), not when a
    /// physical name changes underneath.
    pub signature: String,
}

/// The views of `version_schema` for the catalog seen through `mapping`.
pub fn desired_views(catalog: &Catalog, mapping: &Mapping, version_schema: &str) -> Vec<ViewDef> {
    let by_physical: BTreeMap<&str, &TableMapping> = mapping
        .tables
        .iter()
        .map(|t| (t.physical.as_str(), t))
        .collect();
    let secure = catalog.server_version_num >= 150000;
    let mut out = Vec::new();
    for table in catalog.tables.values() {
        if catalog::is_internal_table(&table.name) {
            continue;
        }
        let tm = by_physical.get(table.name.as_str());
        if tm.is_some_and(|t| t.hidden) {
            continue;
        }
        let logical_table = tm.map(|t| t.logical.clone()).unwrap_or(table.name.clone());
        // (sort key, physical, logical, column info)
        let mut cols = Vec::new();
        for col in &table.columns {
            let cm = tm.and_then(|t| t.columns.iter().find(|c| c.physical == col.name));
            if cm.is_some_and(|c| c.hidden) {
                continue;
            }
            if cm.is_none() && col.name.starts_with("_ratchet_") {
                continue;
            }
            let logical = cm.map(|c| c.logical.clone()).unwrap_or(col.name.clone());
            let position = match cm.and_then(|c| c.order) {
                Some(o) => o as i64,
                None => 100_000 + col.attnum as i64,
            };
            let default = match cm.and_then(|c| c.default.clone()) {
                Some(d) => d,
                None => col.default.clone(),
            };
            cols.push((position, col, logical, default));
        }
        cols.sort_by_key(|(p, c, _, _)| (*p, c.attnum));
        let select = cols
            .iter()
            .map(|(_, c, l, _)| {
                if &c.name == l {
                    ident(l)
                } else {
                    format!("{} AS {}", ident(&c.name), ident(l))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let view = qualified(version_schema, &logical_table);
        let with = if secure {
            " WITH (security_invoker = true)"
        } else {
            ""
        };
        let create = format!(
            "CREATE VIEW {view}{with} AS SELECT {select} FROM {}",
            qualified(&catalog.schema, &table.name)
        );
        let mut defaults = Vec::new();
        let mut signature = format!("{logical_table}|{secure}");
        for (_, c, l, default) in &cols {
            signature.push_str(&format!("|{l}:{}", c.type_name));
            if let Some(d) = default {
                defaults.push(format!(
                    "ALTER VIEW {view} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(l)
                ));
                signature.push_str(&format!("={d}"));
            }
        }
        out.push(ViewDef {
            name: logical_table,
            create,
            defaults,
            signature,
        });
    }
    out
}

/// The statements that create `views` from nothing, for `ratchet plan`.
pub fn preview(version_schema: &str, views: &[ViewDef]) -> Vec<Statement> {
    let mut out = vec![Statement::new(
        format!("CREATE SCHEMA IF NOT EXISTS {}", ident(version_schema)),
        vec![],
    )];
    for v in views {
        out.push(Statement::new(v.create.clone(), vec![]));
        for d in &v.defaults {
            out.push(Statement::new(
                d.clone(),
                vec![Lock::new(
                    ACCESS_EXCLUSIVE,
                    format!("{version_schema}.{}", v.name),
                )],
            ));
        }
    }
    out
}

/// Make the views of `version_schema` match `views`: create missing ones, replace
/// changed ones (drop + create in the caller's transaction, so readers never see a gap),
/// drop those no longer wanted, leave unchanged ones alone.
pub async fn sync(
    client: &impl GenericClient,
    version_schema: &str,
    views: &[ViewDef],
) -> Result<(), EngineError> {
    let run = |sql: String| async move {
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| EngineError::db(format!("running `{sql}`"), e))
    };
    run(format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        ident(version_schema)
    ))
    .await?;
    let rows = client
        .query(
            "SELECT c.relname::text, coalesce(obj_description(c.oid, 'pg_class'), '')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind = 'v'",
            &[&version_schema],
        )
        .await
        .map_err(|e| EngineError::db("reading version schema views", e))?;
    let existing: BTreeMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for name in existing.keys() {
        if !views.iter().any(|v| &v.name == name) {
            run(format!(
                "DROP VIEW IF EXISTS {}",
                qualified(version_schema, name)
            ))
            .await?;
        }
    }
    for v in views {
        let marker = format!("ratchet:{}", hash(&v.signature));
        if existing.get(&v.name) == Some(&marker) {
            continue;
        }
        let view = qualified(version_schema, &v.name);
        if existing.contains_key(&v.name) {
            run(format!("DROP VIEW {view}")).await?;
        }
        run(v.create.clone()).await?;
        for d in &v.defaults {
            run(d.clone()).await?;
        }
        run(format!("COMMENT ON VIEW {view} IS {}", literal(&marker))).await?;
    }
    Ok(())
}

fn hash(s: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..8])
}
