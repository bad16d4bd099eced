//! C4 `opaque-raw-sql`: code whose statements the linter cannot see.

use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Severity, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `DO` blocks and `CALL`s. A DO block whose body contains DDL, data changes or
    /// dynamic `EXECUTE` is a `warning`; other DO blocks and CALLs are `info`.
    ///
    /// ## Why it is dangerous
    /// The body is a string to the parser: the statements inside run with the same locks
    /// and rewrites as written at top level, but no rule can check them, so an unsafe
    /// `ALTER TABLE` or a whole-table `UPDATE` slips through review.
    ///
    /// ## What to do instead
    /// Write the statements at top level (or as ratchet operations), so they are checked;
    /// where a block is really needed, acknowledge it with
    /// `-- ratchet:ignore opaque-raw-sql <reason>`.
    ///
    /// ## Example
    /// ```sql
    /// DO $$ BEGIN
    ///   IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'orders_idx') THEN
    ///     CREATE INDEX orders_idx ON orders (user_id);
    ///   END IF;
    /// END $$;
    /// ```
    code: "C4",
    name: "opaque-raw-sql",
    severity: Warning,
    summary: "DO blocks and CALLs hide statements from every check",
    check: check,
}

const CHANGING_WORDS: &[&str] = &[
    "alter", "create", "drop", "truncate", "execute", "update", "delete", "insert", "reindex",
    "vacuum", "cluster",
];

/// The body of a DO block (its `AS` argument).
fn do_body(node: &NodeEnum) -> Option<&str> {
    let NodeEnum::DoStmt(d) = node else {
        return None;
    };
    d.args.iter().find_map(|a| match ast::inner(a)? {
        NodeEnum::DefElem(e) if e.defname == "as" => match ast::inner(e.arg.as_deref()?)? {
            NodeEnum::String(s) => Some(s.sval.as_str()),
            _ => None,
        },
        _ => None,
    })
}

/// Whether the body contains a keyword that changes schema or data (scanned, so words
/// inside strings and comments do not count).
fn changes_something(body: &str) -> bool {
    let Ok(scanned) = pg_query::scan(body) else {
        return true;
    };
    scanned.tokens.iter().any(|t| {
        let word = body
            .get(usize::try_from(t.start).unwrap_or(0)..usize::try_from(t.end).unwrap_or(0))
            .unwrap_or("");
        CHANGING_WORDS.contains(&word.to_ascii_lowercase().as_str())
    })
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let diagnostic = match &stmt.node {
            NodeEnum::DoStmt(_) => {
                let risky = do_body(&stmt.node).is_none_or(changes_something);
                let message = if risky {
                    "this DO block changes schema or data, but its statements are invisible to every lint rule"
                } else {
                    "this DO block's statements are invisible to every lint rule"
                };
                Diagnostic::new(stmt.span, message)
                    .maybe_severity((!risky).then_some(Severity::Info))
            }
            NodeEnum::CallStmt(_) => Diagnostic::new(
                stmt.span,
                "this CALL runs a procedure whose statements are invisible to every lint rule",
            )
            .severity(Severity::Info),
            _ => continue,
        };
        sink.push(diagnostic.help(
            "write the statements at top level (or as ratchet operations) so they are checked, or acknowledge with `-- ratchet:ignore opaque-raw-sql <reason>`",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_a_do_block_with_ddl() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "DO $$ BEGIN\n  EXECUTE 'ALTER TABLE orders ADD COLUMN note text';\nEND $$;"
        ));
    }

    #[test]
    fn a_read_only_do_block_is_info() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "DO $$ BEGIN RAISE NOTICE 'hello'; END $$;"
        ));
    }

    #[test]
    fn ignores_create_function() {
        lint_ok(
            &RULE,
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
        );
    }
}
