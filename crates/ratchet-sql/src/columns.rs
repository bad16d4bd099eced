//! The column references of SQL expressions and statements, found in the parse tree of
//! the real PostgreSQL parser: a string literal or a function that happens to share a
//! column's name is never taken for the column, as a textual search would.
//!
//! The tree is walked through its serialized (serde) form, so every node kind is reached:
//! `pg_query`'s own node iterator skips some fields (a simple `CASE`'s operand among them),
//! which once left `CASE status WHEN …` half rewritten in a dual-write trigger and broke
//! every write.

use serde::Serialize;
use serde_json::Value;

use crate::SqlError;

/// A column reference with its place in the text: `(name, byte offset, byte end)`.
pub type ColumnSpan = (String, usize, usize);

/// One `ColumnRef` node of a parse tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRef {
    /// The last part of the reference: `c` of `t.c`.
    pub name: String,
    /// Whether it has more parts than the name (`t.c`, `s.t.c`).
    pub qualified: bool,
    /// Byte offset in the parsed text, when the parser reports one.
    pub location: Option<usize>,
}

/// Strips pgroll's `SELECT …` form (`up: SELECT CASE … END`) down to the expression.
pub fn strip_select(expr: &str) -> &str {
    let t = expr.trim();
    if t.len() > 7 && t[..7].eq_ignore_ascii_case("select ") {
        return t[7..].trim();
    }
    t
}

/// Every `ColumnRef` of `tree` (a parse result or any node of one) that ends in a name
/// (not `t.*`), in tree order.
pub fn tree_refs(tree: &impl Serialize) -> Result<Vec<ColumnRef>, SqlError> {
    let value = serde_json::to_value(tree)?;
    let mut out = Vec::new();
    collect(&value, &mut out);
    Ok(out)
}

/// The distinct names that `tree`'s column references end in (`c` for `t.c` too), in
/// tree order: the columns a constraint expression constrains.
pub fn referenced_names(tree: &impl Serialize) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in tree_refs(tree).unwrap_or_default() {
        if !names.contains(&r.name) {
            names.push(r.name);
        }
    }
    names
}

/// The unqualified column references of an expression, as spans of `strip_select(expr)`,
/// in text order.
pub fn expression_refs(expr: &str) -> Result<Vec<ColumnSpan>, SqlError> {
    let body = strip_select(expr);
    let sql = format!("SELECT ({body})");
    let prefix = "SELECT (".len();
    let refs = statement_refs(&sql)?;
    Ok(refs
        .into_iter()
        .filter(|(_, start, end)| *start >= prefix && *end <= prefix + body.len())
        .map(|(name, start, end)| (name, start - prefix, end - prefix))
        .collect())
}

/// The unqualified column references of a whole statement, as spans of `sql`, in text
/// order.
pub fn statement_refs(sql: &str) -> Result<Vec<ColumnSpan>, SqlError> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)?;
    let found = tree_refs(&parsed.protobuf)?;
    let tokens = pg_query::scan(sql)?.tokens;
    let mut refs: Vec<ColumnSpan> = found
        .into_iter()
        .filter(|r| !r.qualified)
        .filter_map(|r| {
            let start = r.location?;
            let token = tokens.iter().find(|t| t.start as usize == start)?;
            Some((r.name, start, token.end as usize))
        })
        .collect();
    refs.sort_by_key(|r| r.1);
    refs.dedup();
    Ok(refs)
}

fn collect(v: &Value, out: &mut Vec<ColumnRef>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("ColumnRef").and_then(column_ref) {
                out.push(r);
            }
            for val in m.values() {
                collect(val, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                collect(x, out);
            }
        }
        _ => {}
    }
}

/// The serde form of `ColumnRef { fields: [.., String { sval }], location }`.
fn column_ref(c: &Value) -> Option<ColumnRef> {
    let fields = c.get("fields")?.as_array()?;
    let name = fields.last()?.pointer("/node/String/sval")?.as_str()?;
    let location = c
        .get("location")
        .and_then(Value::as_i64)
        .and_then(|l| usize::try_from(l).ok());
    Some(ColumnRef {
        name: name.to_string(),
        qualified: fields.len() > 1,
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        expression_refs(expr)
            .unwrap()
            .into_iter()
            .map(|(n, _, _)| n)
            .collect()
    }

    #[test]
    fn a_simple_case_operand_is_a_reference() {
        assert_eq!(
            names("CASE status WHEN 'paid' THEN 'succeeded' ELSE status END"),
            ["status", "status"]
        );
    }

    #[test]
    fn literals_functions_and_qualified_names_are_not_references() {
        assert_eq!(names("upper(name) || 'name' || \"name\""), ["name", "name"]);
        assert_eq!(names("t.amount + amount"), ["amount"]);
        assert_eq!(names("now()"), Vec::<String>::new());
    }

    #[test]
    fn spans_point_into_the_expression_without_its_select() {
        let refs = expression_refs("SELECT lower(\"Email\") || x").unwrap();
        assert_eq!(
            refs,
            [("Email".to_string(), 6, 13), ("x".to_string(), 18, 19)]
        );
        let body = strip_select("SELECT lower(\"Email\") || x");
        assert_eq!(&body[6..13], "\"Email\"");
    }

    #[test]
    fn subquery_columns_are_found_too() {
        assert_eq!(
            names(
                "CASE WHEN EXISTS (SELECT 1 FROM users WHERE users.id = user_id) THEN user_id END"
            ),
            ["user_id", "user_id"]
        );
    }

    #[test]
    fn statement_refs_cover_the_whole_statement() {
        let sql = "CREATE INDEX i ON t (lower(email)) WHERE deleted_at IS NULL AND note <> 'email'";
        let refs = statement_refs(sql).unwrap();
        let found: Vec<&str> = refs.iter().map(|(_, s, e)| &sql[*s..*e]).collect();
        assert_eq!(found, ["email", "deleted_at", "note"]);
        assert!(refs.iter().all(|(n, s, e)| &sql[*s..*e] == n));
    }

    #[test]
    fn referenced_names_are_distinct_and_include_qualified_ones() {
        let parsed = pg_query::parse(
            "SELECT CASE WHEN b > 0 THEN COALESCE(a, t.b, (ARRAY[c])[1]) END",
            pg_query::ParserOptions::DEFAULT,
        )
        .unwrap();
        assert_eq!(referenced_names(&parsed.protobuf), ["b", "a", "c"]);
    }

    #[test]
    fn parse_errors_carry_the_parsers_message() {
        let err = expression_refs("amount +").unwrap_err();
        assert!(err.to_string().contains("syntax error"), "{err}");
    }
}
