//! B13 `truncate-cascade`: TRUNCATE that silently empties every referencing table.

use pg_query::protobuf::DropBehavior;
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `TRUNCATE … CASCADE`.
    ///
    /// ## Why it is dangerous
    /// CASCADE also truncates every table that references the named ones through a
    /// foreign key, and the tables that reference those, without listing them. A
    /// production incident at Linear (2024-01-24) started exactly like this.
    ///
    /// ## What to do instead
    /// Name every table to truncate explicitly (without CASCADE, PostgreSQL refuses when
    /// a referencing table is left out, which is the protection you want).
    ///
    /// ## Example
    /// ```sql
    /// TRUNCATE users CASCADE;
    /// -- instead
    /// TRUNCATE sessions, users;
    /// ```
    code: "B13",
    name: "truncate-cascade",
    severity: Error,
    summary: "TRUNCATE … CASCADE silently empties every referencing table",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::TruncateStmt(t) = &stmt.node else {
            continue;
        };
        if t.behavior != DropBehavior::DropCascade as i32 {
            continue;
        }
        let tables: Vec<String> = t
            .relations
            .iter()
            .filter_map(|r| match ast::inner(r)? {
                NodeEnum::RangeVar(rv) => Some(ast::range_var_name(rv).to_string()),
                _ => None,
            })
            .collect();
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!(
                    "TRUNCATE … CASCADE also empties every table that references {} by foreign key, without naming them",
                    tables.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
                ),
            )
            .help("list every table to truncate explicitly and drop CASCADE"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_truncate_cascade() {
        insta::assert_snapshot!(lint_errors(&RULE, "TRUNCATE users CASCADE;"));
    }

    #[test]
    fn ignores_truncate_restrict() {
        lint_ok(&RULE, "TRUNCATE sessions, users;");
    }
}
