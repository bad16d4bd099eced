//! Version schemas: one schema of views per migration, showing the tables as that version
//! of the application sees them.
//!
//! Views refer to their base columns by attribute number, not by name, so the physical
//! renames done at `complete` never break them. Simple one-table views are automatically
//! updatable, so applications write through them as through the tables. Views are
//! created `security_invoker` on PostgreSQL 15+ so row-level security on the base tables
//! still applies to the querying role.

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;

use crate::catalog::{self, Catalog};
use crate::error::EngineError;
pub use crate::plan::{ColumnMapping, Mapping, TableMapping};
use crate::plan::{Lock, Statement, ACCESS_EXCLUSIVE};
use crate::sql::{ident, literal, qualified};

/// One view as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDef {
    pub name: String,
    pub create: String,
    pub defaults: Vec<String>,
    /// The physical table behind the view.
    pub table: String,
    /// The table's own comment, shown on the view.
    pub comment: Option<String>,
    pub columns: Vec<ViewColumn>,
}

/// One column of a view.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewColumn {
    pub physical: String,
    pub logical: String,
    pub type_name: String,
    pub default: Option<String>,
    pub comment: Option<String>,
    /// The sequence in the version schema counting inserts that leave the column out
    /// (see [`ColumnMapping::count_omitted`]); its view default bumps it.
    pub counter: Option<String>,
}

/// Prefix of the omission counters' sequences in a version schema.
pub const COUNTER_PREFIX: &str = "_ratchet_omitted_";

/// The counter of `table.column` in `version_schema`, and the view default that bumps it
/// and gives NULL (which the dual-write trigger then fills with `up`).
fn omission_counter(version_schema: &str, table: &str, column: &str, ty: &str) -> (String, String) {
    let mut name = format!("{COUNTER_PREFIX}{table}_{column}");
    while name.len() > 63 {
        name.pop();
    }
    let default = format!(
        "(CASE WHEN nextval({}::regclass) IS NULL THEN NULL END)::{ty}",
        literal(&qualified(version_schema, &name))
    );
    (name, default)
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
            let mut default = match cm.and_then(|c| c.default.clone()) {
                Some(d) => d,
                None => col.default.clone(),
            };
            let mut counter = None;
            if default.is_none() && cm.is_some_and(|c| c.count_omitted) {
                let (name, d) =
                    omission_counter(version_schema, &logical_table, &logical, &col.type_name);
                counter = Some(name);
                default = Some(d);
            }
            cols.push((position, col, logical, default, counter));
        }
        cols.sort_by_key(|(p, c, _, _, _)| (*p, c.attnum));
        let columns: Vec<ViewColumn> = cols
            .iter()
            .map(|(_, c, l, default, counter)| ViewColumn {
                physical: c.name.clone(),
                logical: l.clone(),
                type_name: c.type_name.clone(),
                default: default.clone(),
                comment: c.comment.clone(),
                counter: counter.clone(),
            })
            .collect();
        out.push(view_def(
            &catalog.schema,
            version_schema,
            &logical_table,
            &table.name,
            table.comment.clone(),
            columns,
            secure,
        ));
    }
    out
}

/// A view over `schema.table` showing `columns` in order.
fn view_def(
    schema: &str,
    version_schema: &str,
    name: &str,
    table: &str,
    comment: Option<String>,
    columns: Vec<ViewColumn>,
    secure: bool,
) -> ViewDef {
    let select = columns
        .iter()
        .map(|c| {
            if c.physical == c.logical {
                ident(&c.logical)
            } else {
                format!("{} AS {}", ident(&c.physical), ident(&c.logical))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let view = qualified(version_schema, name);
    let with = if secure {
        " WITH (security_invoker = true)"
    } else {
        ""
    };
    let create = format!(
        "CREATE VIEW {view}{with} AS SELECT {select} FROM {}",
        qualified(schema, table)
    );
    let defaults = columns
        .iter()
        .filter_map(|c| {
            c.default.as_ref().map(|d| {
                format!(
                    "ALTER VIEW {view} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(&c.logical)
                )
            })
        })
        .collect();
    ViewDef {
        name: name.to_string(),
        create,
        defaults,
        table: table.to_string(),
        comment,
        columns,
    }
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

/// A view as it is in the database: its columns `(name, type, default)` in order.
struct Existing {
    /// `(name, type, default, comment)` in order.
    columns: Vec<(String, String, Option<String>, Option<String>)>,
    comment: Option<String>,
}

async fn existing_views(
    client: &impl GenericClient,
    version_schema: &str,
) -> Result<BTreeMap<String, Existing>, EngineError> {
    let rows = client
        .query(
            "SELECT c.relname::text, obj_description(c.oid, 'pg_class'), a.attname::text,
                    format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid),
                    col_description(c.oid, a.attnum)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
              WHERE n.nspname = $1 AND c.relkind = 'v'
              ORDER BY c.relname, a.attnum",
            &[&version_schema],
        )
        .await
        .map_err(|e| EngineError::db("reading version schema views", e))?;
    let mut out: BTreeMap<String, Existing> = BTreeMap::new();
    for r in rows {
        let e = out.entry(r.get(0)).or_insert_with(|| Existing {
            columns: vec![],
            comment: r.get(1),
        });
        e.columns.push((r.get(2), r.get(3), r.get(4), r.get(5)));
    }
    Ok(out)
}

/// `v` reduced to the columns an existing view already shows, in its order: a version
/// that applications use never changes shape (a prepared statement would fail with
/// `cached plan must not change result type`), so columns a later change adds appear in
/// the next version only. None when the existing view shows a column `v` cannot give.
fn keep_shape(
    v: &ViewDef,
    existing: &Existing,
    schema: &str,
    vs: &str,
    secure: bool,
) -> Option<ViewDef> {
    let mut columns = Vec::new();
    for (name, ty, _, _) in &existing.columns {
        let c = v
            .columns
            .iter()
            .find(|c| &c.logical == name && &c.type_name == ty)?;
        columns.push(c.clone());
    }
    Some(view_def(
        schema,
        vs,
        &v.name,
        &v.table,
        v.comment.clone(),
        columns,
        secure,
    ))
}

/// Make the views of `version_schema` match `views`: create missing ones, drop those no
/// longer wanted. A view that exists keeps its identity (OID, grants) and its columns:
/// it is only changed with `CREATE OR REPLACE VIEW` and `ALTER VIEW … DEFAULT`, in the
/// caller's transaction; only a view whose columns can no longer be given is dropped and
/// created again. Table and column comments are carried onto the views (ratchet's own
/// bookkeeping stays in the state schema), and the privileges are mirrored from the
/// tables ([`sync_grants`]).
pub async fn sync(
    client: &impl GenericClient,
    catalog: &Catalog,
    version_schema: &str,
    views: &[ViewDef],
) -> Result<(), EngineError> {
    let run = |sql: String| exec(client, sql);
    run(format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        ident(version_schema)
    ))
    .await?;
    let existing = existing_views(client, version_schema).await?;
    for name in existing.keys() {
        if !views.iter().any(|v| &v.name == name) {
            run(format!(
                "DROP VIEW IF EXISTS {}",
                qualified(version_schema, name)
            ))
            .await?;
        }
    }
    let secure = catalog.server_version_num >= 150000;
    // A raw `sql` operation may have enabled row-level security since the plan was made
    // (see `planner::check_row_security`): never create a view that bypasses it.
    if let Some(v) = views
        .iter()
        .find(|v| !secure && catalog.tables.get(&v.table).is_some_and(|t| t.row_security))
    {
        return Err(EngineError::refused(
            crate::error::Refusal::Capability,
            format!(
                "table `{}` has row-level security and PostgreSQL {} cannot create `security_invoker` views; \
                 upgrade to PostgreSQL 15 or later to migrate it with version schemas",
                v.table,
                catalog.server_version_num / 10000
            ),
        ));
    }
    // Omission counters first: the view defaults name them.
    let wanted = sync_counters(client, version_schema, views).await?;
    for v in views {
        let (v, old) = match existing.get(&v.name) {
            None => {
                run(v.create.clone()).await?;
                (v.clone(), None)
            }
            Some(e) => match keep_shape(v, e, &catalog.schema, version_schema, secure) {
                Some(kept) => {
                    run(kept
                        .create
                        .replacen("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
                    .await?;
                    (kept, Some(e))
                }
                None => {
                    let view = qualified(version_schema, &v.name);
                    run(format!("DROP VIEW {view}")).await?;
                    run(v.create.clone()).await?;
                    (v.clone(), None)
                }
            },
        };
        sync_view_defaults(client, version_schema, &v, old).await?;
        sync_view_comments(client, version_schema, &v, old).await?;
    }
    // Counters no view default names any more (after complete): gone.
    for (name, _, _) in omission_counts(client, version_schema).await? {
        if !wanted.iter().any(|(n, _)| *n == name) {
            run(format!(
                "DROP SEQUENCE IF EXISTS {}",
                qualified(version_schema, &name)
            ))
            .await?;
        }
    }
    sync_grants(client, &catalog.schema, version_schema, views).await
}

/// The omission counters the views' defaults name (`(sequence, view.column)`), created
/// where missing.
async fn sync_counters(
    client: &impl GenericClient,
    version_schema: &str,
    views: &[ViewDef],
) -> Result<Vec<(String, String)>, EngineError> {
    let wanted: Vec<(String, String)> = views
        .iter()
        .flat_map(|v| {
            v.columns.iter().filter_map(move |c| {
                c.counter
                    .clone()
                    .map(|n| (n, format!("{}.{}", v.name, c.logical)))
            })
        })
        .collect();
    for (name, what) in &wanted {
        let q = qualified(version_schema, name);
        exec(
            client,
            format!(
                "CREATE SEQUENCE IF NOT EXISTS {q}; GRANT USAGE ON SEQUENCE {q} TO PUBLIC;
             COMMENT ON SEQUENCE {q} IS {}",
                literal(what)
            ),
        )
        .await?;
    }
    Ok(wanted)
}

/// The column defaults of view `v`, set or dropped where they differ from what the view
/// `old` had (all of them on a new view).
async fn sync_view_defaults(
    client: &impl GenericClient,
    version_schema: &str,
    v: &ViewDef,
    old: Option<&Existing>,
) -> Result<(), EngineError> {
    let view = qualified(version_schema, &v.name);
    for c in &v.columns {
        let had = old.and_then(|e| e.columns.iter().find(|x| x.0 == c.logical));
        let had_default = had.and_then(|x| x.2.clone());
        if had.is_some() && had_default == c.default {
            continue;
        }
        let col = ident(&c.logical);
        match &c.default {
            Some(d) => {
                exec(
                    client,
                    format!("ALTER VIEW {view} ALTER COLUMN {col} SET DEFAULT {d}"),
                )
                .await?
            }
            None if had_default.is_some() => {
                exec(
                    client,
                    format!("ALTER VIEW {view} ALTER COLUMN {col} DROP DEFAULT"),
                )
                .await?
            }
            None => {}
        }
    }
    Ok(())
}

/// The comments of view `v` and its columns, set where they differ from the view's (a
/// comment changed on the table since reaches a kept view too).
async fn sync_view_comments(
    client: &impl GenericClient,
    version_schema: &str,
    v: &ViewDef,
    old: Option<&Existing>,
) -> Result<(), EngineError> {
    let view = qualified(version_schema, &v.name);
    if old.is_none() || old.and_then(|e| e.comment.clone()) != v.comment {
        let text = v.comment.as_deref().map(literal).unwrap_or("NULL".into());
        exec(client, format!("COMMENT ON VIEW {view} IS {text}")).await?;
    }
    for c in &v.columns {
        let had = old
            .and_then(|e| e.columns.iter().find(|x| x.0 == c.logical))
            .and_then(|x| x.3.clone());
        if had == c.comment {
            continue;
        }
        let text = c.comment.as_deref().map(literal).unwrap_or("NULL".into());
        exec(
            client,
            format!("COMMENT ON COLUMN {view}.{} IS {text}", ident(&c.logical)),
        )
        .await?;
    }
    Ok(())
}

/// One privilege: `(grantee, privilege, column)`; the grantee as SQL (`PUBLIC` or a
/// quoted role name).
type Grant = (String, String, Option<String>);

const GRANTEE: &str = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END";

/// The table- and column-level DML privileges on `rel`, other than its owner's.
async fn grants_of(
    client: &impl GenericClient,
    rel: &str,
    columns: Option<&[(String, String)]>,
) -> Result<Vec<Grant>, EngineError> {
    let rows = client
        .query(
            &format!(
                "SELECT {GRANTEE}, a.privilege_type, NULL::text
                   FROM pg_class c, aclexplode(c.relacl) a
                  WHERE c.oid = $1::text::regclass AND a.grantee <> c.relowner
                    AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
                 UNION ALL
                 SELECT {GRANTEE}, a.privilege_type, t.attname::text
                   FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid, aclexplode(t.attacl) a
                  WHERE t.attrelid = $1::text::regclass AND t.attnum > 0 AND NOT t.attisdropped
                    AND a.grantee <> c.relowner
                    AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')"
            ),
            &[&rel],
        )
        .await
        .map_err(|e| EngineError::db(format!("reading the privileges on {rel}"), e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let col: Option<String> = r.get(2);
            let col = match (col, columns) {
                // A column privilege of the table: on the view's column of that name.
                (Some(c), Some(map)) => Some(map.iter().find(|(p, _)| *p == c)?.1.clone()),
                (c, _) => c,
            };
            Some((r.get(0), r.get(1), col))
        })
        .collect())
}

/// Give `version_schema` and each of `views` the privileges of the base schema and of
/// the tables behind them (table- and column-level): an application role with DML
/// grants on the tables can use the version at once. Only ever adds: a privilege given
/// on a view itself is kept, and one revoked on a table must be revoked on the views too. Run by every view sync and by `ratchet grants` (privileges granted after the
/// migration started).
pub async fn sync_grants(
    client: &impl GenericClient,
    schema: &str,
    version_schema: &str,
    views: &[ViewDef],
) -> Result<(), EngineError> {
    let run = |sql: String| exec(client, sql);
    let usage = "SELECT {GRANTEE} FROM pg_namespace n,
                        aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                  WHERE n.nspname = $1 AND a.privilege_type = 'USAGE' AND a.grantee <> n.nspowner"
        .replace("{GRANTEE}", GRANTEE);
    let grantees = |nsp: String| {
        let usage = usage.clone();
        async move {
            let rows = client
                .query(&usage, &[&nsp])
                .await
                .map_err(|e| EngineError::db("reading schema privileges", e))?;
            Ok::<Vec<String>, EngineError>(rows.iter().map(|r| r.get(0)).collect())
        }
    };
    let want = grantees(schema.to_string()).await?;
    let have = grantees(version_schema.to_string()).await?;
    let vs = ident(version_schema);
    for g in want.iter().filter(|g| !have.contains(g)) {
        run(format!("GRANT USAGE ON SCHEMA {vs} TO {g}")).await?;
    }
    for v in views {
        let map: Vec<(String, String)> = v
            .columns
            .iter()
            .map(|c| (c.physical.clone(), c.logical.clone()))
            .collect();
        let want = grants_of(client, &qualified(schema, &v.table), Some(&map)).await?;
        let view = qualified(version_schema, &v.name);
        let have = grants_of(client, &view, None).await?;
        let on = |col: &Option<String>| match col {
            Some(c) => format!(" ({})", ident(c)),
            None => String::new(),
        };
        for (who, what, col) in want.iter().filter(|g| !have.contains(g)) {
            run(format!("GRANT {what}{} ON {view} TO {who}", on(col))).await?;
        }
    }
    Ok(())
}

/// The omission counters of `version_schema`: `(sequence, table.column, count)` (the
/// sequence's comment names the view's column).
pub async fn omission_counts(
    client: &impl GenericClient,
    version_schema: &str,
) -> Result<Vec<(String, String, i64)>, EngineError> {
    let rows = client
        .query(
            "SELECT c.relname::text, coalesce(obj_description(c.oid, 'pg_class'), c.relname::text)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind = 'S' AND starts_with(c.relname, $2)",
            &[&version_schema, &COUNTER_PREFIX],
        )
        .await
        .map_err(|e| EngineError::db("reading the omission counters", e))?;
    let mut out = Vec::new();
    for r in rows {
        let name: String = r.get(0);
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {}",
                    qualified(version_schema, &name)
                ),
                &[],
            )
            .await
            .map_err(|e| EngineError::db("reading an omission counter", e))?
            .get(0);
        out.push((name, r.get(1), n));
    }
    Ok(out)
}

/// [`sync_grants`] for the views `version_schema` has now (`ratchet grants`): a table
/// created since the version's views were built has no view there, and a column added
/// since is not on its view, so only what exists gets privileges.
pub async fn resync_grants(
    client: &impl GenericClient,
    catalog: &Catalog,
    mapping: &Mapping,
    version_schema: &str,
) -> Result<(), EngineError> {
    let existing = existing_views(client, version_schema).await?;
    let mut views = desired_views(catalog, mapping, version_schema);
    views.retain_mut(|v| match existing.get(&v.name) {
        Some(e) => {
            v.columns
                .retain(|c| e.columns.iter().any(|x| x.0 == c.logical));
            true
        }
        None => false,
    });
    sync_grants(client, &catalog.schema, version_schema, &views).await
}

/// Run one statement of a view sync; the error quotes it.
async fn exec(client: &impl GenericClient, sql: String) -> Result<(), EngineError> {
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| EngineError::db(format!("running `{sql}`"), e))
}
