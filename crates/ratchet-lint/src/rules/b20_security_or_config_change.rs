//! B20 `security-or-config-change`: changes to privileges, row security and settings
//! that change what clients can see or how their SQL behaves.

use pg_query::protobuf::{AlterTableType, ObjectType};
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// Opt-in (enable `security-or-config-change`): `REVOKE`, `CREATE/ALTER POLICY`,
    /// `ENABLE/DISABLE/FORCE ROW LEVEL SECURITY`, `ALTER FUNCTION` options (`SECURITY
    /// DEFINER`, `SET search_path`, …), `ALTER VIEW … SET (…)`, `ALTER ROLE`, `ALTER
    /// DATABASE`, `ALTER SYSTEM` and `ALTER EXTENSION`.
    ///
    /// ## Why it is dangerous
    /// None of these takes a harmful lock, but each changes what the application's roles
    /// can see or do (a REVOKE or a new policy makes queries fail or return fewer rows) or
    /// how their SQL behaves (`search_path`, `SECURITY DEFINER`). Review catches this more
    /// reliably than tests, which usually run as a superuser.
    ///
    /// ## What to do instead
    /// Review the change against the real application roles before it ships.
    ///
    /// ## Example
    /// ```sql
    /// REVOKE SELECT ON orders FROM reporting;
    /// ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
    /// ```
    code: "B20",
    name: "security-or-config-change",
    severity: Warning,
    enabled_by_default: false,
    summary: "privilege, row-security and configuration changes alter what clients can do",
    check: check,
}

fn change(cx: &Context<'_>, stmt: &crate::Statement) -> Option<&'static str> {
    Some(match &stmt.node {
        NodeEnum::GrantStmt(g) if !g.is_grant => "REVOKE takes privileges away from roles the application may use",
        NodeEnum::CreatePolicyStmt(_) => "a new row-security policy changes which rows clients see and may write",
        NodeEnum::AlterPolicyStmt(_) => "changing a row-security policy changes which rows clients see and may write",
        NodeEnum::AlterFunctionStmt(_) => "changing function options (SECURITY DEFINER, search_path, …) changes how it runs for every caller",
        NodeEnum::AlterRoleStmt(_) | NodeEnum::AlterRoleSetStmt(_) => "changing a role changes what its sessions can do or how their SQL behaves",
        NodeEnum::AlterDatabaseStmt(_) | NodeEnum::AlterDatabaseSetStmt(_) => "changing database settings changes how every session's SQL behaves",
        NodeEnum::AlterSystemStmt(_) => "ALTER SYSTEM changes server settings for every session",
        NodeEnum::AlterExtensionStmt(_) => "updating an extension changes the functions and types clients use",
        NodeEnum::AlterTableStmt(a) => {
            let objtype = ast::object_type(a.objtype);
            let kinds: Vec<AlterTableType> = ast::alter_cmds(a).map(ast::cmd_type).collect();
            let rls = kinds.iter().any(|k| {
                matches!(
                    k,
                    AlterTableType::AtEnableRowSecurity
                        | AlterTableType::AtDisableRowSecurity
                        | AlterTableType::AtForceRowSecurity
                        | AlterTableType::AtNoForceRowSecurity
                )
            });
            let view_options = matches!(objtype, ObjectType::ObjectView | ObjectType::ObjectMatview)
                && kinds.iter().any(|k| matches!(k, AlterTableType::AtSetRelOptions | AlterTableType::AtResetRelOptions));
            let new = a.relation.as_ref().map(ast::range_var_name).is_some_and(|t| cx.is_new_table(&t, stmt));
            if rls && !new {
                "turning row-level security on or off changes which rows clients see and may write"
            } else if view_options {
                "changing view options (security_barrier, security_invoker, check_option) changes what clients see through it"
            } else {
                return None;
            }
        }
        _ => return None,
    })
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        if let Some(message) = change(cx, stmt) {
            sink.push(
                Diagnostic::new(stmt.span, message)
                    .help("review it against the real application roles before it ships"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_revoke() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "REVOKE SELECT ON orders FROM reporting;"
        ));
    }

    #[test]
    fn fires_on_enable_row_level_security() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders ENABLE ROW LEVEL SECURITY;"
        ));
    }

    #[test]
    fn ignores_grant() {
        lint_ok(&RULE, "GRANT SELECT ON orders TO reporting;");
    }
}
