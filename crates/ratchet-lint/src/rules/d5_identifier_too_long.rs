//! D5 `identifier-too-long`: names PostgreSQL silently truncates to 63 bytes.

use pg_query::NodeEnum;

use crate::{Context, Diagnostic, Sink, Span};

/// PostgreSQL's NAMEDATALEN - 1.
const MAX_BYTES: usize = 63;
/// `pg_query::protobuf::Token::Ident`.
const IDENT: i32 = 258;

crate::declare_rule! {
    /// ## What it detects
    /// Identifiers longer than 63 bytes in schema-changing statements (quoted or not; a
    /// multi-byte character counts with all its bytes).
    ///
    /// ## Why it is dangerous
    /// PostgreSQL truncates them with only a NOTICE. Two long names that share their first
    /// 63 bytes collide ("relation already exists"), and tools that compare the schema
    /// with the names in code (ORMs, schema diff, `ratchet` validation) see drift that
    /// does not match any migration.
    ///
    /// ## What to do instead
    /// Shorten the name to at most 63 bytes.
    ///
    /// ## Example
    /// ```sql
    /// CREATE INDEX index_orders_on_customer_id_and_created_at_and_status_and_region_code ON orders (customer_id);
    /// ```
    code: "D5",
    name: "identifier-too-long",
    severity: Warning,
    summary: "identifiers longer than 63 bytes are silently truncated",
    check: check,
}

/// The identifier a token spells: unquoted names as written, quoted ones unescaped.
fn identifier(text: &str) -> String {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => text.to_string(),
    }
}

fn is_schema_change(node: &NodeEnum) -> bool {
    !matches!(
        node,
        NodeEnum::SelectStmt(_)
            | NodeEnum::InsertStmt(_)
            | NodeEnum::UpdateStmt(_)
            | NodeEnum::DeleteStmt(_)
            | NodeEnum::MergeStmt(_)
            | NodeEnum::TransactionStmt(_)
            | NodeEnum::VariableSetStmt(_)
            | NodeEnum::VariableShowStmt(_)
    )
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        if !is_schema_change(&stmt.node) {
            continue;
        }
        let long: Vec<(Span, String)> = cx
            .tokens_in(stmt.span)
            .filter(|t| t.kind == IDENT)
            .map(|t| (t.span, identifier(cx.text(t.span))))
            .filter(|(_, name)| name.len() > MAX_BYTES)
            .collect();
        for (span, name) in long {
            let kept: String = truncate(&name);
            sink.push(
                Diagnostic::new(
                    span,
                    format!(
                        "identifier is {} bytes long: PostgreSQL silently truncates it to `{kept}`, so names can collide and the schema drifts from the code",
                        name.len()
                    ),
                )
                .help(format!("shorten it to at most {MAX_BYTES} bytes")),
            );
        }
    }
}

/// The first 63 bytes, cut at a character boundary as PostgreSQL does.
fn truncate(name: &str) -> String {
    let mut end = MAX_BYTES.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_a_long_index_name() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE INDEX index_orders_on_customer_id_and_created_at_and_status_and_region_code ON orders (customer_id);"
        ));
    }

    #[test]
    fn ignores_a_63_byte_name_and_long_strings() {
        let name = "a".repeat(63);
        lint_ok(
            &RULE,
            &format!(
                "CREATE TABLE {name} (note text DEFAULT '{}');",
                "x".repeat(100)
            ),
        );
    }
}
