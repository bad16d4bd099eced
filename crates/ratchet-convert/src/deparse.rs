//! Sub-expressions and types rendered back to SQL with pg_query's deparser: the node is
//! placed into a statement the real parser produced (`SELECT 1`, `SELECT NULL::int`) and
//! that statement is deparsed. Building protobuf trees from scratch is avoided on
//! purpose — libpg_query asserts on enum fields left at their protobuf default.

use pg_query::protobuf::{self, node::Node as N};

use crate::converter::{unsupported, Conv, Unsupported};

/// Renders an expression with pg_query's deparser, by putting it into the target list
/// of a `SELECT 1` the real parser produced.
pub(crate) fn deparse_expr(expr: &protobuf::Node) -> Conv<String> {
    let failed = || Unsupported("an expression that could not be rendered back to SQL".to_string());
    let mut template = pg_query::parse("SELECT 1", pg_query::ParserOptions::DEFAULT)
        .map_err(|_| failed())?
        .protobuf;
    let target = first_target(&mut template).ok_or_else(failed)?;
    target.val = Some(Box::new(expr.clone()));
    let text = template
        .deparse(pg_query::DeparseOptions::default())
        .map_err(|_| failed())?;
    text.strip_prefix("SELECT ")
        .map(str::to_string)
        .ok_or_else(failed)
}

pub(crate) fn deparse_expr_opt(expr: Option<&protobuf::Node>) -> Conv<String> {
    match expr {
        Some(e) => deparse_expr(e),
        None => unsupported("a constraint without its expression"),
    }
}

/// Renders a type name the way `\d` would show it (`bigint`, `varchar(20)`,
/// `numeric(10, 2)`), through `SELECT NULL::<type>`.
pub(crate) fn deparse_type(type_name: Option<&protobuf::TypeName>) -> Conv<String> {
    let failed = || Unsupported("a type that could not be rendered back to SQL".to_string());
    let Some(type_name) = type_name else {
        return Err(failed());
    };
    if type_name.setof || type_name.pct_type {
        return unsupported("`%TYPE` and SETOF types have no ratchet equivalent");
    }
    let mut template = pg_query::parse("SELECT NULL::int", pg_query::ParserOptions::DEFAULT)
        .map_err(|_| failed())?
        .protobuf;
    let cast = first_target(&mut template)
        .and_then(|rt| rt.val.as_mut())
        .and_then(|v| match v.node.as_mut() {
            Some(N::TypeCast(tc)) => Some(tc),
            _ => None,
        })
        .ok_or_else(failed)?;
    cast.type_name = Some(type_name.clone());
    let text = template
        .deparse(pg_query::DeparseOptions::default())
        .map_err(|_| failed())?;
    let rendered = text.strip_prefix("SELECT NULL::").ok_or_else(failed)?;
    // `json` and `varbit` come back qualified; the bare names mean the same types.
    Ok(rendered
        .strip_prefix("pg_catalog.")
        .unwrap_or(rendered)
        .to_string())
}

/// The first target of the template's `SELECT`, where a node is put to be deparsed.
fn first_target(template: &mut protobuf::ParseResult) -> Option<&mut protobuf::ResTarget> {
    let stmt = template.stmts.first_mut()?.stmt.as_mut()?;
    let Some(N::SelectStmt(select)) = stmt.node.as_mut() else {
        return None;
    };
    match select.target_list.first_mut()?.node.as_mut() {
        Some(N::ResTarget(rt)) => Some(rt),
        _ => None,
    }
}
