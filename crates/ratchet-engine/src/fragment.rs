//! User SQL fragments (`up`, `down`, `check`, defaults, raw `sql`), read with the real
//! PostgreSQL parser (`pg_query`) before use: a typo fails at plan time with the parser's
//! message instead of half-way through a migration, and a fragment cannot smuggle in a
//! second statement.

use std::collections::BTreeSet;

use pg_query::NodeRef;

use crate::plan::{Lock, ACCESS_EXCLUSIVE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE};

/// Strip pgroll's `SELECT …` form (`up: SELECT CASE … END`) down to the expression.
pub fn strip_select(expr: &str) -> &str {
    let t = expr.trim();
    if t.len() > 7 && t[..7].eq_ignore_ascii_case("select ") {
        return t[7..].trim();
    }
    t
}

/// Parse `expr` as one scalar SQL expression.
pub fn check_expression(expr: &str) -> Result<(), String> {
    let e = strip_select(expr);
    let parsed = pg_query::parse(&format!("SELECT ({e})"), pg_query::ParserOptions::DEFAULT)
        .map_err(|e| e.to_string())?;
    if parsed.protobuf.stmts.len() != 1 {
        return Err("more than one statement".into());
    }
    Ok(())
}

/// Parse `ty` as a type name.
pub fn check_type(ty: &str) -> Result<(), String> {
    let parsed = pg_query::parse(
        &format!("SELECT NULL::{ty}"),
        pg_query::ParserOptions::DEFAULT,
    )
    .map_err(|e| e.to_string())?;
    if parsed.protobuf.stmts.len() != 1 {
        return Err("more than one statement".into());
    }
    Ok(())
}

/// Whether `expr` calls a volatile function (conservatively by name: any overload of that
/// name being volatile counts). A volatile default makes `ADD COLUMN` rewrite the table.
pub fn is_volatile(expr: &str, volatile: &BTreeSet<String>) -> bool {
    let Ok(parsed) = pg_query::parse(
        &format!("SELECT ({})", strip_select(expr)),
        pg_query::ParserOptions::DEFAULT,
    ) else {
        return true;
    };
    parsed.functions().iter().any(|f| {
        let base = f.rsplit('.').next().unwrap_or(f);
        volatile.contains(base)
    })
}

/// Split raw SQL into its statements, checking that it parses.
pub fn split_statements(sql: &str) -> Result<Vec<String>, String> {
    pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).map_err(|e| e.to_string())?;
    let parts = pg_query::split_with_parser(sql).map_err(|e| e.to_string())?;
    Ok(parts
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// Statements PostgreSQL refuses inside a transaction block.
pub fn needs_no_transaction(sql: &str) -> bool {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return false;
    };
    parsed.protobuf.nodes().iter().any(|(n, _, _, _)| match n {
        NodeRef::IndexStmt(i) => i.concurrent,
        NodeRef::ReindexStmt(_) => sql.to_uppercase().contains("CONCURRENTLY"),
        NodeRef::DropStmt(d) => d.concurrent,
        NodeRef::VacuumStmt(_) | NodeRef::CreatedbStmt(_) | NodeRef::DropdbStmt(_) => true,
        _ => false,
    })
}

/// `ALTER TYPE … ADD VALUE`: before PostgreSQL 12 it cannot run inside a transaction
/// block (and from 12 on the new value cannot be used in the transaction that adds it,
/// which running each raw statement in its own transaction already guarantees).
pub fn is_enum_add_value(sql: &str) -> bool {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return false;
    };
    parsed
        .protobuf
        .nodes()
        .iter()
        .any(|(n, _, _, _)| matches!(n, NodeRef::AlterEnumStmt(a) if a.old_val.is_empty()))
}

/// The locks a raw statement takes, as far as its kind tells: what `ratchet plan` shows
/// for `sql` operations.
pub fn infer_locks(sql: &str, schema: &str) -> Vec<Lock> {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return vec![];
    };
    let qualify = |t: &str| {
        if t.contains('.') {
            t.to_string()
        } else {
            format!("{schema}.{t}")
        }
    };
    let mut locks = Vec::new();
    for stmt in &parsed.protobuf.stmts {
        let Some(node) = stmt.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
            continue;
        };
        use pg_query::NodeEnum as N;
        let (mode, tables): (&str, Vec<String>) = match node {
            N::AlterTableStmt(_) | N::RenameStmt(_) | N::DropStmt(_) | N::TruncateStmt(_) => {
                (ACCESS_EXCLUSIVE, parsed.ddl_tables())
            }
            N::IndexStmt(i) if i.concurrent => (SHARE_UPDATE_EXCLUSIVE, parsed.ddl_tables()),
            N::IndexStmt(_) => ("SHARE", parsed.ddl_tables()),
            N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_) => {
                (ROW_EXCLUSIVE, parsed.dml_tables())
            }
            N::CreateTrigStmt(_) => ("SHARE ROW EXCLUSIVE", parsed.ddl_tables()),
            _ => continue,
        };
        for t in tables {
            let l = Lock::new(mode, qualify(&t));
            if !locks.contains(&l) {
                locks.push(l);
            }
        }
    }
    locks
}

/// The unqualified column references of an expression: `(name, byte offset, byte end)`
/// in `strip_select(expr)`, found by the parser (a string literal or a function that
/// happens to share a column's name is never matched).
pub fn column_refs(expr: &str) -> Result<Vec<(String, usize, usize)>, String> {
    let body = strip_select(expr);
    let sql = format!("SELECT ({body})");
    let prefix = "SELECT (".len();
    let parsed =
        pg_query::parse(&sql, pg_query::ParserOptions::DEFAULT).map_err(|e| e.to_string())?;
    let tokens = pg_query::scan(&sql).map_err(|e| e.to_string())?.tokens;
    let mut refs = Vec::new();
    for (node, _, _, _) in parsed.protobuf.nodes() {
        let NodeRef::ColumnRef(c) = node else {
            continue;
        };
        if c.fields.len() != 1 {
            continue;
        }
        let Some(pg_query::NodeEnum::String(name)) = c.fields[0].node.as_ref() else {
            continue;
        };
        let start = c.location as usize;
        let Some(tok) = tokens.iter().find(|t| t.start as usize == start) else {
            continue;
        };
        refs.push((name.sval.clone(), start - prefix, tok.end as usize - prefix));
    }
    refs.sort_by_key(|r| r.1);
    Ok(refs)
}

/// Rewrite the unqualified column references of `expr` that `replace` maps, using the
/// positions the parser reports (never a textual search-and-replace). Returns the
/// expression in parentheses.
pub fn rewrite_columns(
    expr: &str,
    replace: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let body = strip_select(expr);
    let mut out = body.to_string();
    for (name, start, end) in column_refs(expr)?.into_iter().rev() {
        if let Some(r) = replace(&name) {
            out.replace_range(start..end, &r);
        }
    }
    Ok(format!("({out})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_column_references_from_the_parse_tree() {
        let r = rewrite_columns(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM users WHERE users.id = user_id) THEN user_id ELSE NULL END",
            |n| (n == "user_id").then(|| "NEW.\"user_id\"".to_string()),
        )
        .unwrap();
        assert_eq!(
            r,
            "(CASE WHEN EXISTS (SELECT 1 FROM users WHERE users.id = NEW.\"user_id\") THEN NEW.\"user_id\" ELSE NULL END)"
        );
        // A literal or a function with a column's name is left alone.
        let r = rewrite_columns("upper(name) || 'name' || \"name\"", |n| {
            (n == "name").then(|| "x".to_string())
        })
        .unwrap();
        assert_eq!(r, "(upper(x) || 'name' || x)");
    }

    #[test]
    fn accepts_pgroll_select_form() {
        assert!(check_expression("SELECT CASE WHEN x IS NULL THEN 1 ELSE x END").is_ok());
        assert!(check_expression("UPPER(name)").is_ok());
        assert!(check_expression("1); DROP TABLE users; --").is_err());
    }

    #[test]
    fn checks_types() {
        assert!(check_type("varchar(255)").is_ok());
        assert!(check_type("time with time zone").is_ok());
        assert!(check_type("int; drop table x").is_err());
    }

    #[test]
    fn spots_volatile_calls() {
        let v: BTreeSet<String> = ["random".to_string()].into();
        assert!(is_volatile("(random() * 1000)::int", &v));
        assert!(!is_volatile("now()", &v));
        assert!(!is_volatile("'x'", &v));
    }

    #[test]
    fn recognises_enum_value_additions() {
        assert!(is_enum_add_value(
            "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok'"
        ));
        assert!(!is_enum_add_value(
            "ALTER TYPE mood RENAME VALUE 'a' TO 'b'"
        ));
        assert!(!is_enum_add_value("CREATE TYPE mood AS ENUM ('ok')"));
    }

    #[test]
    fn concurrently_needs_no_transaction() {
        assert!(needs_no_transaction("CREATE INDEX CONCURRENTLY i ON t (a)"));
        assert!(!needs_no_transaction("CREATE INDEX i ON t (a)"));
    }
}
