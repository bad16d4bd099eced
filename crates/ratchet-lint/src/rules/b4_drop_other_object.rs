//! B4 `drop-other-object`: dropping views, functions, types and other objects clients
//! depend on.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `DROP VIEW`, `DROP MATERIALIZED VIEW`, `DROP FUNCTION/PROCEDURE`, `DROP TYPE`,
    /// `DROP SEQUENCE`, `DROP DOMAIN`, `DROP EXTENSION`, `DROP TRIGGER` and `DROP POLICY`.
    /// A drop that the same transaction recreates under the same name (the usual way to
    /// change a view's columns) is not reported.
    ///
    /// ## Why it is dangerous
    /// Queries of the running application version, and objects that depend on the
    /// dropped one, fail. Dropping a trigger or policy silently removes behaviour (audit,
    /// row-level security) that clients rely on.
    ///
    /// ## What to do instead
    /// Drop it in a contract migration once nothing uses it; to change a view, recreate
    /// it within the same transaction.
    ///
    /// ## Example
    /// ```sql
    /// DROP FUNCTION order_total(bigint);
    /// ```
    code: "B4",
    name: "drop-other-object",
    severity: Warning,
    summary: "dropping views, functions, types etc. breaks clients and dependent objects",
    check: check,
}

fn kind_name(kind: ObjectType) -> Option<&'static str> {
    Some(match kind {
        ObjectType::ObjectView => "view",
        ObjectType::ObjectMatview => "materialized view",
        ObjectType::ObjectFunction => "function",
        ObjectType::ObjectProcedure => "procedure",
        ObjectType::ObjectRoutine => "routine",
        ObjectType::ObjectType => "type",
        ObjectType::ObjectSequence => "sequence",
        ObjectType::ObjectDomain => "domain",
        ObjectType::ObjectExtension => "extension",
        ObjectType::ObjectTrigger => "trigger",
        ObjectType::ObjectPolicy => "policy",
        _ => return None,
    })
}

/// The last name of each dropped object (functions carry `ObjectWithArgs`).
fn dropped_names(objects: &[pg_query::Node]) -> Vec<String> {
    objects
        .iter()
        .filter_map(|o| match ast::inner(o)? {
            NodeEnum::List(l) => ast::string_list(&l.items).pop(),
            NodeEnum::String(s) => Some(s.sval.clone()),
            NodeEnum::TypeName(t) => ast::string_list(&t.names).pop(),
            NodeEnum::ObjectWithArgs(f) => ast::string_list(&f.objname).pop(),
            _ => None,
        })
        .collect()
}

/// The name a statement creates, for the kinds of this rule.
fn created_name(node: &NodeEnum) -> Option<String> {
    match node {
        NodeEnum::ViewStmt(v) => v.view.as_ref().map(|r| r.relname.clone()),
        NodeEnum::CreateTableAsStmt(c) => c.into.as_ref()?.rel.as_ref().map(|r| r.relname.clone()),
        NodeEnum::CreateFunctionStmt(f) => ast::string_list(&f.funcname).pop(),
        NodeEnum::CompositeTypeStmt(t) => t.typevar.as_ref().map(|r| r.relname.clone()),
        NodeEnum::CreateEnumStmt(e) => ast::string_list(&e.type_name).pop(),
        NodeEnum::CreateSeqStmt(s) => s.sequence.as_ref().map(|r| r.relname.clone()),
        NodeEnum::CreateDomainStmt(d) => ast::string_list(&d.domainname).pop(),
        NodeEnum::CreateExtensionStmt(e) => Some(e.extname.clone()),
        NodeEnum::CreateTrigStmt(t) => Some(t.trigname.clone()),
        NodeEnum::CreatePolicyStmt(p) => Some(p.policy_name.clone()),
        _ => None,
    }
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::DropStmt(drop) = &stmt.node else {
            continue;
        };
        let Some(kind) = kind_name(ast::object_type(drop.remove_type)) else {
            continue;
        };
        for name in dropped_names(&drop.objects) {
            let created_before = cx
                .before(stmt)
                .iter()
                .any(|s| created_name(&s.node).as_deref() == Some(&name));
            let recreated = cx
                .after(stmt)
                .iter()
                .filter(|s| s.tx.in_transaction && s.tx.id == stmt.tx.id)
                .any(|s| created_name(&s.node).as_deref() == Some(&name));
            if created_before || (stmt.tx.in_transaction && recreated) {
                continue;
            }
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!("dropping {kind} `{name}` breaks clients and objects that still use it"),
                )
                .help(format!(
                    "drop the {kind} in a contract migration once nothing uses it; to redefine it, recreate it in the same transaction"
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{in_transaction, lint_errors, lint_ok, lint_ok_with};

    #[test]
    fn fires_on_drop_function() {
        insta::assert_snapshot!(lint_errors(&RULE, "DROP FUNCTION order_total(bigint);"));
    }

    #[test]
    fn fires_on_drop_view() {
        insta::assert_snapshot!(lint_errors(&RULE, "DROP VIEW IF EXISTS active_users;"));
    }

    #[test]
    fn ignores_a_view_recreated_in_the_same_transaction() {
        lint_ok_with(
            &RULE,
            "DROP VIEW active_users;\nCREATE VIEW active_users AS SELECT id, email FROM users;",
            &in_transaction(),
            None,
        );
    }

    #[test]
    fn ignores_drop_table() {
        lint_ok(&RULE, "DROP TABLE active_users;");
    }
}
