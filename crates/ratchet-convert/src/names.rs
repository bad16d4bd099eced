//! Names read from the parse tree (tables, qualified names, column lists) and names
//! made the way PostgreSQL makes them.

use pg_query::protobuf::{self, node::Node as N};
use ratchet_sql::MAX_IDENT;

use crate::converter::{unsupported, Conv};

pub(crate) fn node_of(def: &Option<Box<protobuf::Node>>) -> Option<&N> {
    def.as_deref().and_then(|n| n.node.as_ref())
}

/// A table name from a `RangeVar`, refusing other schemas: ratchet's operations act
/// on the schema the migration runs against.
pub(crate) fn table_name(rel: Option<&protobuf::RangeVar>) -> Conv<String> {
    let Some(rel) = rel else {
        return unsupported("statement without a table");
    };
    check_schema(&rel.catalogname, &rel.schemaname)?;
    Ok(rel.relname.clone())
}

fn check_schema(catalog: &str, schema: &str) -> Conv<()> {
    if !catalog.is_empty() || !matches!(schema, "" | "public") {
        return unsupported(format!(
            "names an object in schema `{schema}`; ratchet's operations act on the schema the migration runs against"
        ));
    }
    Ok(())
}

/// `[schema.]name` from the `List` of `String`s a DROP statement carries.
pub(crate) fn qualified_name(node: &protobuf::Node) -> Conv<String> {
    let Some(N::List(list)) = &node.node else {
        return unsupported("unexpected object name");
    };
    let parts = names(&list.items)?;
    match parts.as_slice() {
        [name] => Ok(name.clone()),
        [schema, name] => check_schema("", schema).map(|()| name.clone()),
        _ => unsupported("names an object in another database"),
    }
}

/// The strings of a list of `String` nodes (column lists, qualified names).
pub(crate) fn names(nodes: &[protobuf::Node]) -> Conv<Vec<String>> {
    nodes
        .iter()
        .map(|n| match &n.node {
            Some(N::String(s)) => Ok(s.sval.clone()),
            _ => unsupported("an expression where a column name was expected"),
        })
        .collect()
}

pub(crate) fn or_default(name: &str, default: impl FnOnce() -> String) -> String {
    if name.is_empty() {
        default()
    } else {
        name.to_string()
    }
}

/// PostgreSQL's `makeObjectName`: `table_part_label`, shortening the longer of the two
/// parts until the whole fits in 63 bytes, so a generated name matches the server's.
pub(crate) fn object_name(table: &str, part: &str, label: &str) -> String {
    let mut a = table.to_string();
    let mut b = part.to_string();
    let overhead = label.len() + 1 + usize::from(!b.is_empty());
    while a.len() + b.len() + overhead > MAX_IDENT && !(a.is_empty() && b.is_empty()) {
        let longer = if a.len() > b.len() { &mut a } else { &mut b };
        longer.pop();
    }
    if b.is_empty() {
        format!("{a}_{label}")
    } else {
        format!("{a}_{b}_{label}")
    }
}
