//! A6 `type-change-revalidates-check`.

use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::{NodeEnum, NodeRef};

use crate::ast;
use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER COLUMN … TYPE` on a column that has CHECK constraints — known from the catalog
    /// (`--database-url`) or from a CHECK added earlier in the same file.
    ///
    /// ## Why it is dangerous
    /// The CHECK constraints on the column are re-verified with a full scan under the ACCESS
    /// EXCLUSIVE lock of the type change, even when the type change itself is binary-coercible
    /// and would otherwise be metadata-only.
    ///
    /// ## What to do instead
    /// Drop the CHECKs, change the type, re-add them `NOT VALID` and `VALIDATE` them in a later
    /// transaction (SHARE UPDATE EXCLUSIVE). ratchet operations: `drop_constraint`,
    /// `alter_column`, `create_constraint`.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE items ADD CONSTRAINT code_len CHECK (length(code) < 20);
    /// ALTER TABLE items ALTER COLUMN code TYPE text;  -- re-checks code_len with a scan
    /// ```
    code: "A6",
    name: "type-change-revalidates-check",
    severity: Warning,
    summary: "a type change re-verifies the column's CHECK constraints with a scan under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::cmds_of(cx, AlterTableType::AtAlterColumnType) {
        let column = c.cmd.name.as_str();
        let from_catalog = cx
            .table_info(&c.table)
            .into_iter()
            .flat_map(|t| t.checks.iter())
            .find(|(_, def, _)| mentions(def, column))
            .map(|(n, _, _)| n.clone());
        let from_file = cx.before(c.stmt).iter().find_map(|s| {
            let a = ast::alter_table(&s.node)?;
            if !ast::alter_table_name(a)?.same_as(&c.table) {
                return None;
            }
            ast::alter_cmds(a)
                .filter_map(ast::cmd_constraint)
                .find_map(|k| {
                    let expr = k.raw_expr.as_deref().and_then(ast::inner)?;
                    (ast::constr_type(k) == ConstrType::ConstrCheck && references(expr, column))
                        .then(|| k.conname.clone())
                })
        });
        let Some(name) = from_catalog.or(from_file) else {
            continue;
        };
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("changing the type of `{}.{column}` re-verifies CHECK `{name}` with a full scan under an {AEL}", c.table),
            )
            .help("drop the CHECK, change the type, re-add it NOT VALID and VALIDATE it in a later transaction. ratchet operations: `drop_constraint`, `alter_column`, `create_constraint`"),
        );
    }
}

fn mentions(def: &str, column: &str) -> bool {
    def.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| w == column)
}

fn references(expr: &NodeEnum, column: &str) -> bool {
    ast::contains(expr, |n| match n {
        NodeRef::ColumnRef(c) => c.fields.last().and_then(ast::node_string) == Some(column),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_when_check_added_earlier() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE items ADD CONSTRAINT code_len CHECK (length(code) < 20) NOT VALID;\nALTER TABLE items ALTER COLUMN code TYPE text;"
        ));
    }

    #[test]
    fn check_on_other_column_is_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE items ADD CONSTRAINT p CHECK (price > 0) NOT VALID;\nALTER TABLE items ALTER COLUMN code TYPE text;",
        );
    }
}
