//! User SQL fragments (`up`, `down`, `check`, defaults, raw `sql`), read with the real
//! PostgreSQL parser (`pg_query`) before use: a typo fails at plan time with the parser's
//! message instead of half-way through a migration, and a fragment cannot smuggle in a
//! second statement.

use std::collections::BTreeSet;

use pg_query::NodeRef;

use ratchet_sql::LockMode;

use crate::plan::Lock;

pub use ratchet_sql::columns::strip_select;

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

/// Why `expr` is not one SQL expression, in the user's own terms, and the byte offset
/// in `expr` where the parser stopped. The check itself wraps the expression
/// (`SELECT (…)`), so the parser's own message may name a parenthesis the user never
/// wrote (issue 9); this parses it again without the wrapper and finds the failing token
/// as the first one after which the text stops being the start of a statement (the
/// parser is LALR(1): it fails at the first token that cannot continue).
pub fn expression_error(expr: &str) -> Option<(String, usize)> {
    check_expression(expr).err()?;
    let body = strip_select(expr);
    let base = expr.find(body).unwrap_or(0);
    let sql = format!("SELECT {body}");
    let prefix = "SELECT ".len();
    let message = |e: pg_query::Error| match e {
        pg_query::Error::Parse(m) => m,
        other => other.to_string(),
    };
    let Err(full) = pg_query::parse(&sql, pg_query::ParserOptions::DEFAULT).map_err(message) else {
        return Some((
            "not a single expression (a list, a FROM clause or a second statement?)".into(),
            base,
        ));
    };
    if full.contains("at end of input") {
        return Some(("the expression ends too early".into(), base + body.len()));
    }
    let tokens = pg_query::scan(&sql).map(|s| s.tokens).unwrap_or_default();
    for t in tokens.iter().filter(|t| t.start as usize >= prefix) {
        let end = (t.end as usize).min(sql.len());
        if let Err(m) =
            pg_query::parse(&sql[..end], pg_query::ParserOptions::DEFAULT).map_err(message)
        {
            if !m.contains("at end of input") {
                return Some((m, base + t.start as usize - prefix));
            }
        }
    }
    Some((full, base))
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

/// The locks a raw statement takes: what `ratchet plan` shows for `sql` operations.
///
/// DDL goes through the statement -> lock table the linter uses (`ratchet_sql::locks`), so
/// `plan` and `lint` name the same lock (issue 9: `ADD CONSTRAINT … FOREIGN KEY … NOT
/// VALID` and `VALIDATE CONSTRAINT` were shown as ACCESS EXCLUSIVE). A foreign key also
/// locks the table it references (SHARE ROW EXCLUSIVE); DML takes ROW EXCLUSIVE.
pub fn infer_locks(sql: &str, schema: &str) -> Vec<Lock> {
    use pg_query::NodeEnum as N;
    use ratchet_sql::ast::{self, QualifiedName};
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return vec![];
    };
    let qualify = |q: &QualifiedName| match &q.schema {
        Some(s) => format!("{s}.{}", q.name),
        None => format!("{schema}.{}", q.name),
    };
    let mut locks = Vec::new();
    let mut push = |l: Lock| {
        if !locks.contains(&l) {
            locks.push(l);
        }
    };
    for stmt in &parsed.protobuf.stmts {
        let Some(node) = stmt.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
            continue;
        };
        if let Some(l) = ratchet_sql::locks::statement_lock(node) {
            push(Lock::new(l.mode, qualify(&l.table)));
        }
        match node {
            N::AlterTableStmt(a) => {
                for c in ast::alter_cmds(a).filter_map(ast::cmd_constraint) {
                    if let Some(pk) = c.pktable.as_ref() {
                        let on = qualify(&ast::range_var_name(pk));
                        push(Lock::new(LockMode::ShareRowExclusive, on));
                    }
                }
            }
            N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_) => {
                for t in parsed.dml_tables() {
                    let on = qualify(&QualifiedName::parse(&t));
                    push(Lock::new(LockMode::RowExclusive, on));
                }
            }
            _ => {}
        }
    }
    locks
}

/// The unqualified column references of an expression: `(name, byte offset, byte end)`
/// in `strip_select(expr)`, found by the parser (a string literal or a function that
/// happens to share a column's name is never matched; a simple `CASE`'s operand is,
/// see `ratchet_sql::columns`).
pub fn column_refs(expr: &str) -> Result<Vec<(String, usize, usize)>, String> {
    ratchet_sql::columns::expression_refs(expr).map_err(|e| e.to_string())
}

/// Whether `expr` holds a subquery (whose own tables may supply unqualified columns).
pub fn has_subquery(expr: &str) -> bool {
    let Ok(parsed) = pg_query::parse(
        &format!("SELECT ({})", strip_select(expr)),
        pg_query::ParserOptions::DEFAULT,
    ) else {
        return false;
    };
    serde_json::to_string(&parsed.protobuf).is_ok_and(|j| j.contains("\"SubLink\""))
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

/// An index definition (`pg_get_indexdef`) carried over to renamed columns: every key
/// column, key expression and the `WHERE` predicate that name a column of `map` (old →
/// new) are rewritten, everything else (method, ordering, `NULLS FIRST/LAST`,
/// collations, operator classes and their options, `INCLUDE`, storage parameters) is
/// kept; the result is a `CREATE [UNIQUE] INDEX CONCURRENTLY <name>` statement.
/// `Ok(None)` when the index names none of the columns.
pub fn carry_index(
    definition: &str,
    name: &str,
    map: &[(String, String)],
) -> Result<Option<String>, String> {
    let renamed = |n: &str| map.iter().find(|(o, _)| o == n).map(|(_, x)| x.clone());
    // Column references inside expressions and the predicate, by their location.
    let mut sql = definition.to_string();
    let mut touched = false;
    let refs = ratchet_sql::columns::statement_refs(definition).map_err(|e| e.to_string())?;
    for (col, start, end) in refs.into_iter().rev() {
        if let Some(new) = renamed(&col) {
            sql.replace_range(start..end, &crate::sql::ident(&new));
            touched = true;
        }
    }
    let mut parsed =
        pg_query::parse(&sql, pg_query::ParserOptions::DEFAULT).map_err(|e| e.to_string())?;
    let Some(pg_query::NodeEnum::IndexStmt(stmt)) = parsed
        .protobuf
        .stmts
        .first_mut()
        .and_then(|s| s.stmt.as_mut())
        .and_then(|s| s.node.as_mut())
    else {
        return Err(format!("not an index definition: {definition}"));
    };
    // Plain key and INCLUDE columns are names, not column references.
    for param in stmt
        .index_params
        .iter_mut()
        .chain(stmt.index_including_params.iter_mut())
    {
        if let Some(pg_query::NodeEnum::IndexElem(e)) = param.node.as_mut() {
            if let Some(new) = renamed(&e.name) {
                e.name = new;
                touched = true;
            }
        }
    }
    if !touched {
        return Ok(None);
    }
    stmt.idxname = name.to_string();
    stmt.concurrent = true;
    stmt.if_not_exists = false;
    parsed
        .protobuf
        .deparse(pg_query::DeparseOptions::default())
        .map(Some)
        .map_err(|e| e.to_string())
}

/// A `CREATE INDEX` statement moved onto another relation: named `name`, on
/// `schema.table`, `ON ONLY` when `only` (the index of a partitioned table that its
/// partitions' indexes are attached to), `CONCURRENTLY` when `concurrent`. Everything else
/// (unique, method, keys, `INCLUDE`, storage parameters, predicate) is kept; column names
/// are the same in every partition of a table, so the keys and the predicate hold there.
pub fn retarget_index(
    sql: &str,
    name: &str,
    (schema, table): (&str, &str),
    only: bool,
    concurrent: bool,
) -> Result<String, String> {
    let mut parsed =
        pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).map_err(|e| e.to_string())?;
    let Some(pg_query::NodeEnum::IndexStmt(stmt)) = parsed
        .protobuf
        .stmts
        .first_mut()
        .and_then(|s| s.stmt.as_mut())
        .and_then(|s| s.node.as_mut())
    else {
        return Err(format!("not an index definition: {sql}"));
    };
    let Some(rel) = stmt.relation.as_mut() else {
        return Err(format!("an index definition without a table: {sql}"));
    };
    rel.schemaname = schema.to_string();
    rel.relname = table.to_string();
    rel.inh = !only;
    stmt.idxname = name.to_string();
    stmt.concurrent = concurrent;
    stmt.if_not_exists = false;
    parsed
        .protobuf
        .deparse(pg_query::DeparseOptions::default())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_is_moved_onto_a_partition_or_onto_only_the_parent() {
        let sql = "CREATE UNIQUE INDEX CONCURRENTLY \"ev_k\" ON \"public\".\"events\" USING btree (\"kind\" DESC, id) INCLUDE (note) WHERE kind <> 'x'";
        let leaf = retarget_index(sql, "events_p0_k", ("app", "events_p0"), false, true).unwrap();
        assert_eq!(
            leaf,
            "CREATE UNIQUE INDEX CONCURRENTLY events_p0_k ON app.events_p0 USING btree (kind DESC, id) INCLUDE (note) WHERE kind <> 'x'"
        );
        let parent = retarget_index(sql, "ev_k", ("public", "events"), true, false).unwrap();
        assert_eq!(
            parent,
            "CREATE UNIQUE INDEX ev_k ON ONLY public.events USING btree (kind DESC, id) INCLUDE (note) WHERE kind <> 'x'"
        );
    }

    #[test]
    fn an_index_is_carried_with_its_ordering_collation_opclass_and_predicate() {
        let map = [("email".to_string(), "_ratchet_new_email".to_string())];
        let carry = |def: &str| carry_index(def, "_tmp", &map).unwrap();
        assert_eq!(
            carry("CREATE INDEX i ON public.users USING btree (email DESC NULLS LAST)").unwrap(),
            "CREATE INDEX CONCURRENTLY _tmp ON public.users USING btree (_ratchet_new_email DESC NULLS LAST)"
        );
        let c = carry(
            "CREATE UNIQUE INDEX i ON public.users USING btree (lower(email) COLLATE \"C\" text_pattern_ops, id) INCLUDE (email) WHERE (email IS NOT NULL)",
        )
        .unwrap();
        assert!(
            c.starts_with("CREATE UNIQUE INDEX CONCURRENTLY _tmp ON public.users"),
            "{c}"
        );
        assert!(
            c.contains("lower(_ratchet_new_email) COLLATE \"C\" text_pattern_ops, id)"),
            "{c}"
        );
        assert!(c.contains("INCLUDE (_ratchet_new_email)"), "{c}");
        assert!(c.contains("WHERE _ratchet_new_email IS NOT NULL"), "{c}");
        // An index on other columns is not carried.
        assert_eq!(
            carry("CREATE INDEX j ON public.users USING btree (id)"),
            None
        );
        // A literal with the column's name is left alone.
        let c = carry("CREATE INDEX k ON public.users USING btree (id) WHERE (note <> 'email')")
            .map(|_| ());
        assert_eq!(c, None);
    }

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

    // A simple CASE's operand was not rewritten: every write failed after start.
    #[test]
    fn case_operand_is_rewritten() {
        let r = rewrite_columns(
            "CASE status WHEN 'paid' THEN 'succeeded' ELSE status END",
            |n| (n == "status").then(|| "NEW.\"s\"".to_string()),
        )
        .unwrap();
        assert_eq!(
            r,
            "(CASE NEW.\"s\" WHEN 'paid' THEN 'succeeded' ELSE NEW.\"s\" END)"
        );
    }

    #[test]
    fn accepts_pgroll_select_form() {
        assert!(check_expression("SELECT CASE WHEN x IS NULL THEN 1 ELSE x END").is_ok());
        assert!(check_expression("UPPER(name)").is_ok());
        assert!(check_expression("1); DROP TABLE users; --").is_err());
    }

    #[test]
    fn syntax_errors_point_into_the_users_expression() {
        // The wrapper's `)` is never blamed.
        let (m, at) = expression_error("amount +").unwrap();
        assert_eq!((m.as_str(), at), ("the expression ends too early", 8));
        let (m, at) = expression_error("CAST(amount AS bigint) bogus junk").unwrap();
        assert_eq!((m.as_str(), at), ("syntax error at or near \"junk\"", 29));
        let (m, at) = expression_error("SELECT lower(a b)").unwrap();
        assert_eq!((m.as_str(), at), ("syntax error at or near \"b\"", 15));
        assert!(expression_error("lower(a)").is_none());
    }

    #[test]
    fn raw_sql_locks_come_from_the_linters_table() {
        let l = |sql: &str| {
            infer_locks(sql, "public")
                .into_iter()
                .map(|l| format!("{} on {}", l.mode, l.on))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            l("ALTER TABLE posts ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES app.users (id) NOT VALID"),
            ["SHARE ROW EXCLUSIVE on public.posts", "SHARE ROW EXCLUSIVE on app.users"]
        );
        assert_eq!(
            l("ALTER TABLE posts VALIDATE CONSTRAINT fk"),
            ["SHARE UPDATE EXCLUSIVE on public.posts"]
        );
        assert_eq!(
            l("UPDATE posts SET a = 1"),
            ["ROW EXCLUSIVE on public.posts"]
        );
        assert_eq!(l("DROP TABLE old"), ["ACCESS EXCLUSIVE on public.old"]);
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
