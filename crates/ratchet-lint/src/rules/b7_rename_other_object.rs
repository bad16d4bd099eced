//! B7 `rename-other-object`: renaming schemas, views, types, enum values and functions.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER … RENAME TO` of a schema, view, materialized view, type, domain, function,
    /// procedure or sequence, and `ALTER TYPE … RENAME VALUE`. Renames of indexes,
    /// constraints, triggers and policies are not reported: clients do not name them.
    ///
    /// ## Why it is dangerous
    /// Every query, function body and client that uses the old name fails once the rename
    /// commits; a renamed enum value makes stored strings in client code invalid.
    ///
    /// ## What to do instead
    /// Add the new object (or enum value) next to the old one, move the clients, and drop
    /// the old one in a later contract migration.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TYPE order_status RENAME VALUE 'shipped' TO 'dispatched';
    /// ```
    code: "B7",
    name: "rename-other-object",
    severity: Warning,
    summary: "renaming schemas, views, types, enum values or functions breaks their users",
    check: check,
}

fn kind_name(kind: ObjectType) -> Option<&'static str> {
    Some(match kind {
        ObjectType::ObjectSchema => "schema",
        ObjectType::ObjectView => "view",
        ObjectType::ObjectMatview => "materialized view",
        ObjectType::ObjectType => "type",
        ObjectType::ObjectDomain => "domain",
        ObjectType::ObjectFunction => "function",
        ObjectType::ObjectProcedure => "procedure",
        ObjectType::ObjectRoutine => "routine",
        ObjectType::ObjectSequence => "sequence",
        ObjectType::ObjectForeignTable => "foreign table",
        _ => return None,
    })
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let message = match &stmt.node {
            NodeEnum::RenameStmt(r) => {
                let kind = ast::object_type(r.rename_type);
                // A view column rename changes what clients select.
                let view_column = kind == ObjectType::ObjectColumn
                    && matches!(ast::object_type(r.relation_type), ObjectType::ObjectView | ObjectType::ObjectMatview);
                if view_column {
                    format!("renaming view column `{}` to `{}` breaks clients that select it", r.subname, r.newname)
                } else if let Some(kind) = kind_name(kind) {
                    format!("renaming a {kind} to `{}` breaks every query and client that uses the old name", r.newname)
                } else {
                    continue;
                }
            }
            NodeEnum::AlterEnumStmt(e) if !e.old_val.is_empty() => format!(
                "renaming enum value '{}' to '{}' breaks clients and stored queries that use the old value",
                e.old_val, e.new_val
            ),
            _ => continue,
        };
        sink.push(Diagnostic::new(stmt.span, message).help(
            "add the new name next to the old one, move the clients, then drop the old one in a contract migration",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_rename_enum_value() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TYPE order_status RENAME VALUE 'shipped' TO 'dispatched';"
        ));
    }

    #[test]
    fn fires_on_rename_view() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER VIEW active_users RENAME TO current_users;"
        ));
    }

    #[test]
    fn ignores_rename_index() {
        lint_ok(
            &RULE,
            "ALTER INDEX users_email_idx RENAME TO users_email_key;",
        );
    }

    #[test]
    fn ignores_add_enum_value() {
        lint_ok(
            &RULE,
            "ALTER TYPE order_status ADD VALUE 'returned' AFTER 'shipped';",
        );
    }
}
