//! A24 `multiple-alter-same-table`.

use crate::ast;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// Two or more `ALTER TABLE` statements on the same existing table in one file (reported
    /// on the second and later ones).
    ///
    /// ## Why it is dangerous
    /// A matter of efficiency, hence `info`: each statement acquires the table lock again
    /// (queuing behind traffic each time) and may scan or rewrite the table again.
    ///
    /// ## What to do instead
    /// Combine the actions into one `ALTER TABLE t ADD …, ALTER …` where they belong together.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users ADD COLUMN a int;
    /// ALTER TABLE users ADD COLUMN b int;  -- info: combine
    /// ```
    code: "A24",
    name: "multiple-alter-same-table",
    severity: Info,
    category: Policy,
    summary: "several ALTER TABLE statements on one table; combine them",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let Some(table) = combinable(stmt) else {
            continue;
        };
        if cx.is_new_table(&table, stmt) {
            continue;
        }
        let earlier = cx
            .before(stmt)
            .iter()
            .rev()
            .find(|s| combinable(s).is_some_and(|t| t.same_as(&table)));
        let Some(earlier) = earlier else { continue };
        let (line, _) = cx.line_col(earlier.span.start);
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!(
                    "another ALTER TABLE on `{table}` (also on line {line}) takes the lock again"
                ),
            )
            .help("combine the actions into one ALTER TABLE statement"),
        );
    }
}

/// The table of an ALTER TABLE that could be merged with another: VALIDATE CONSTRAINT is
/// deliberately separate (it must run in its own transaction), so it never counts.
fn combinable(stmt: &crate::Statement) -> Option<crate::ast::QualifiedName> {
    let a = ast::alter_table(&stmt.node)?;
    let validate_only = ast::alter_cmds(a)
        .all(|c| ast::cmd_type(c) == pg_query::protobuf::AlterTableType::AtValidateConstraint);
    if validate_only {
        return None;
    }
    ast::alter_table_name(a)
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE users ADD COLUMN a int;\nALTER TABLE users ADD COLUMN b int;"
        ));
    }

    #[test]
    fn validate_is_deliberately_separate() {
        lint_ok(&RULE, "ALTER TABLE users ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT c;");
    }

    #[test]
    fn different_tables_are_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE users ADD COLUMN a int;\nALTER TABLE orders ADD COLUMN b int;",
        );
    }
}
