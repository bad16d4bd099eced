//! D10 `dynamic-sql-injection`: PL/pgSQL `EXECUTE` of a string built by concatenation.

use pg_query::NodeEnum;
use serde_json::Value;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// In `CREATE FUNCTION/PROCEDURE … LANGUAGE plpgsql` bodies and `DO` blocks: `EXECUTE`,
    /// `FOR … IN EXECUTE`, `OPEN … FOR EXECUTE` and `RETURN QUERY EXECUTE` whose query is
    /// built with `||` from a variable that is not passed through `quote_ident`,
    /// `quote_literal`, `quote_nullable` or `format()`. The body is parsed with the real
    /// PL/pgSQL parser.
    ///
    /// ## Why it is dangerous
    /// A value concatenated into SQL text is SQL: a table name or string that contains a
    /// quote or a semicolon changes the statement (SQL injection), and a name with
    /// upper-case letters or spaces simply breaks it.
    ///
    /// ## What to do instead
    /// `format('… %I … %L', name, value)` for identifiers and literals, or `EXECUTE … USING`
    /// for values.
    ///
    /// ## Example
    /// ```sql
    /// EXECUTE 'DELETE FROM ' || tbl || ' WHERE id = ' || id;
    /// -- instead
    /// EXECUTE format('DELETE FROM %I WHERE id = $1', tbl) USING id;
    /// ```
    code: "D10",
    name: "dynamic-sql-injection",
    severity: Warning,
    summary: "EXECUTE of SQL built by concatenating variables",
    check: check,
}

const SAFE_FUNCTIONS: &[&str] = &["quote_ident", "quote_literal", "quote_nullable", "format"];
/// `$…$` delimiter used to wrap a DO body into a function for the PL/pgSQL parser.
const WRAP: &str = "$ratchet_do$";

/// The PL/pgSQL function text to parse for a statement, if it has PL/pgSQL code.
fn plpgsql_source(cx: &Context<'_>, stmt: &crate::Statement) -> Option<String> {
    match &stmt.node {
        NodeEnum::CreateFunctionStmt(f) => {
            let language = f.options.iter().find_map(|o| match ast::inner(o)? {
                NodeEnum::DefElem(d) if d.defname == "language" => {
                    ast::node_string(d.arg.as_deref()?).map(str::to_string)
                }
                _ => None,
            })?;
            // libpg_query's PL/pgSQL parser aborts the process (a C assertion) on a function
            // without an `AS '…'` body, so only hand it functions that have one (found by
            // tests/proptest_no_panic.rs).
            let has_body = f.sql_body.is_none()
                && f.options.iter().any(|o| {
                    matches!(ast::inner(o), Some(NodeEnum::DefElem(d)) if d.defname == "as"
                        && matches!(d.arg.as_deref().and_then(ast::inner), Some(NodeEnum::List(l)) if !l.items.is_empty()))
                });
            (language.eq_ignore_ascii_case("plpgsql") && has_body).then(|| cx.sql(stmt).to_string())
        }
        NodeEnum::DoStmt(d) => {
            let mut body = None;
            for arg in &d.args {
                let Some(NodeEnum::DefElem(e)) = ast::inner(arg) else {
                    continue;
                };
                let value = e.arg.as_deref().and_then(ast::node_string)?;
                match e.defname.as_str() {
                    "language" if !value.eq_ignore_ascii_case("plpgsql") => return None,
                    "as" => body = Some(value),
                    _ => {}
                }
            }
            let body = body.filter(|b| !b.contains(WRAP))?;
            Some(format!(
                "CREATE FUNCTION ratchet_do() RETURNS void LANGUAGE plpgsql AS {WRAP}{body}{WRAP}"
            ))
        }
        _ => None,
    }
}

/// Every dynamic query expression in a parsed PL/pgSQL function.
fn dynamic_queries(tree: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![tree];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (key, field) in [
                    ("PLpgSQL_stmt_dynexecute", "query"),
                    ("PLpgSQL_stmt_dynfors", "query"),
                    ("PLpgSQL_stmt_open", "dynquery"),
                    ("PLpgSQL_stmt_return_query", "dynquery"),
                ] {
                    let query = map
                        .get(key)
                        .and_then(|s| s.get(field))
                        .and_then(|q| q.get("PLpgSQL_expr"))
                        .and_then(|e| e.get("query"));
                    if let Some(Value::String(q)) = query {
                        out.push(q.clone());
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

/// Whether an expression concatenates a variable that is not quoted.
fn concatenates_variable(expr: &str) -> bool {
    let Ok(parsed) = pg_query::parse(&format!("SELECT {expr}"), pg_query::ParserOptions::DEFAULT) else {
        return false;
    };
    let Ok(tree) = serde_json::to_value(&parsed.protobuf) else {
        return false;
    };
    let mut stack = vec![&tree];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(a) = map.get("AExpr") {
                    let is_concat = a.get("name").and_then(Value::as_array).is_some_and(|n| {
                        n.iter().any(|p| {
                            p.pointer("/node/String/sval").and_then(Value::as_str) == Some("||")
                        })
                    });
                    if is_concat
                        && ["lexpr", "rexpr"]
                            .iter()
                            .any(|side| a.get(side).is_some_and(unquoted_variable))
                    {
                        return true;
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}

/// A variable (column reference or parameter), possibly cast, not wrapped in a quoting
/// function.
fn unquoted_variable(operand: &Value) -> bool {
    let Some(node) = operand.get("node") else {
        return false;
    };
    if node.get("ColumnRef").is_some() || node.get("ParamRef").is_some() {
        return true;
    }
    if let Some(cast) = node.get("TypeCast") {
        return cast.get("arg").is_some_and(unquoted_variable);
    }
    if let Some(call) = node.get("FuncCall") {
        let name = call
            .get("funcname")
            .and_then(Value::as_array)
            .and_then(|n| n.last())
            .and_then(|p| p.pointer("/node/String/sval"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if SAFE_FUNCTIONS.contains(&name.to_ascii_lowercase().as_str()) {
            return false;
        }
        return call
            .get("args")
            .and_then(Value::as_array)
            .is_some_and(|args| args.iter().any(unquoted_variable));
    }
    false
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let Some(source) = plpgsql_source(cx, stmt) else {
            continue;
        };
        let Ok(tree) = pg_query::parse_plpgsql(&source) else {
            continue;
        };
        for query in dynamic_queries(&tree)
            .into_iter()
            .filter(|q| concatenates_variable(q))
        {
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!("EXECUTE of SQL built by concatenating a variable ({query}): a value with a quote or semicolon changes the statement (SQL injection)"),
                )
                .help("use format('… %I … %L', name, value) for identifiers and literals, or EXECUTE … USING for values"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_concatenated_execute() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE FUNCTION purge(tbl text) RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  EXECUTE 'DELETE FROM ' || tbl;\nEND $$;"
        ));
    }

    #[test]
    fn fires_in_a_do_block() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "DO $$ DECLARE t text := 'x'; BEGIN EXECUTE 'DROP TABLE ' || t; END $$;"
        ));
    }

    #[test]
    fn ignores_format_and_quote_ident() {
        lint_ok(
            &RULE,
            "CREATE FUNCTION purge(tbl text) RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  EXECUTE format('DELETE FROM %I', tbl);\n  EXECUTE 'DELETE FROM ' || quote_ident(tbl);\n  EXECUTE 'SELECT 1' || ' + 1';\nEND $$;",
        );
    }
}
