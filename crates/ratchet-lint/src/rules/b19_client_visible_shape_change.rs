//! B19 `client-visible-shape-change`: changes that break an application-only rollback.

use pg_query::protobuf::{AlterTableType, ObjectType};
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// Opt-in (enable `client-visible-shape-change`): changes that have no lock problem
    /// but that the previous application version — the rollback target — may not
    /// survive: `ADD COLUMN` on an existing table (breaks `SELECT *` consumers and
    /// positional `INSERT`), `ALTER TYPE … ADD ATTRIBUTE`, `CREATE OR REPLACE VIEW/FUNCTION`,
    /// identity changes, new write restrictions (`ADD CONSTRAINT` even NOT VALID,
    /// `SET NOT NULL`, a new unique index even built concurrently), `ALTER SEQUENCE …
    /// RESTART` and `NO INHERIT`.
    ///
    /// ## Why it is dangerous
    /// Rolling the application back to the previous version is only safe when that
    /// version works against the new schema. These changes make writes it still does
    /// fail, or change what its queries return.
    ///
    /// ## What to do instead
    /// Verify that the previous application version runs against the new schema (the
    /// versioned views of ratchet keep it on its own shape), or accept that a rollback
    /// also needs a schema change.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;
    /// ```
    code: "B19",
    name: "client-visible-shape-change",
    severity: Warning,
    enabled_by_default: false,
    summary: "changes the previous application version may not survive (rollback compatibility)",
    check: check,
}

fn cmd_change(kind: AlterTableType, objtype: ObjectType) -> Option<&'static str> {
    Some(match kind {
        AlterTableType::AtAddColumn if objtype == ObjectType::ObjectType => {
            "a new attribute changes the composite type that clients read and write"
        }
        AlterTableType::AtAddColumn => "a new column breaks `SELECT *` consumers and positional INSERTs of the previous version",
        AlterTableType::AtAddConstraint => "a new constraint rejects writes the previous version still makes",
        AlterTableType::AtSetNotNull => "SET NOT NULL rejects writes of NULL that the previous version still makes",
        AlterTableType::AtAddIdentity | AlterTableType::AtSetIdentity | AlterTableType::AtDropIdentity => {
            "an identity change alters how inserts of the previous version get their values"
        }
        AlterTableType::AtDropInherit => "NO INHERIT changes what queries on the parent table return",
        _ => return None,
    })
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let mut changes: Vec<&'static str> = Vec::new();
        match &stmt.node {
            NodeEnum::AlterTableStmt(a) => {
                let table = a.relation.as_ref().map(ast::range_var_name);
                if table.as_ref().is_some_and(|t| cx.is_new_table(t, stmt)) {
                    continue;
                }
                let objtype = ast::object_type(a.objtype);
                changes.extend(
                    ast::alter_cmds(a).filter_map(|c| cmd_change(ast::cmd_type(c), objtype)),
                );
            }
            NodeEnum::ViewStmt(v) if v.replace => {
                changes.push(
                    "CREATE OR REPLACE VIEW changes what the previous version's queries return",
                );
            }
            NodeEnum::CreateFunctionStmt(f) if f.replace => {
                changes.push(
                    "CREATE OR REPLACE FUNCTION changes behaviour the previous version relies on",
                );
            }
            NodeEnum::IndexStmt(i) if i.unique => {
                let new = i
                    .relation
                    .as_ref()
                    .map(ast::range_var_name)
                    .is_some_and(|t| cx.is_new_table(&t, stmt));
                if !new {
                    changes
                        .push("a new unique index rejects writes the previous version still makes");
                }
            }
            NodeEnum::AlterSeqStmt(s) => {
                let restart = s.options.iter().any(|o| matches!(ast::inner(o), Some(NodeEnum::DefElem(d)) if d.defname == "restart"));
                if restart {
                    changes.push("restarting a sequence can hand out values the previous version already used");
                }
            }
            _ => {}
        }
        for change in changes {
            sink.push(Diagnostic::new(stmt.span, change).help(
                "check that the previous application version (the rollback target) works against the new schema",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_a_new_write_restriction() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;"
        ));
    }

    #[test]
    fn fires_on_create_or_replace_view() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE OR REPLACE VIEW v AS SELECT 1 AS a;"
        ));
    }

    #[test]
    fn ignores_new_tables_and_plain_create_view() {
        lint_ok(&RULE, "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int;\nCREATE VIEW v AS SELECT 1 AS a;");
    }
}
