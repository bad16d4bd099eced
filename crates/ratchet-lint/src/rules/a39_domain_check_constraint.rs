//! A39 `domain-check-constraint`.

use pg_query::protobuf::ConstrType;
use pg_query::NodeEnum;

use crate::ast;
use crate::rule::{Diagnostic, Severity};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER DOMAIN … ADD CONSTRAINT … CHECK` without `NOT VALID` (error), and
    /// `CREATE DOMAIN … CHECK` (info: harmless now, but the CHECK can later only be changed
    /// with the scans described here).
    ///
    /// ## Why it is dangerous
    /// Adding a CHECK to a domain re-validates every column of every table that uses the
    /// domain, each scan under a lock that blocks writes. Coercing a column to a constrained
    /// domain forces a rewrite.
    ///
    /// ## What to do instead
    /// Put CHECK constraints on the columns (they can be added NOT VALID and validated
    /// online), or add the domain constraint `NOT VALID` and `VALIDATE CONSTRAINT` later.
    ///
    /// ## Example
    /// ```sql
    /// ALTER DOMAIN positive_int ADD CONSTRAINT positive CHECK (VALUE > 0);
    /// ```
    code: "A39",
    name: "domain-check-constraint",
    severity: Error,
    summary: "CHECK constraints on domains re-validate every column using the domain",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        match &stmt.node {
            NodeEnum::AlterDomainStmt(d) if d.subtype == "C" => {
                let Some(k) = d.def.as_deref().and_then(ast::node_constraint) else {
                    continue;
                };
                if ast::constr_type(k) != ConstrType::ConstrCheck || k.skip_validation {
                    continue;
                }
                let name = ast::string_list(&d.type_name).join(".");
                sink.push(
                    Diagnostic::new(stmt.span, format!("adding a CHECK to domain `{name}` scans every column of every table that uses it, blocking writes"))
                        .help("add it NOT VALID and VALIDATE CONSTRAINT later, or put the CHECK on the columns instead"),
                );
            }
            NodeEnum::CreateDomainStmt(d) => {
                if !d
                    .constraints
                    .iter()
                    .filter_map(ast::node_constraint)
                    .any(|k| ast::constr_type(k) == ConstrType::ConstrCheck)
                {
                    continue;
                }
                let name = ast::string_list(&d.domainname).join(".");
                sink.push(
                    Diagnostic::new(stmt.span, format!("domain `{name}` has a CHECK: changing it later re-validates every column that uses the domain"))
                        .help("prefer CHECK constraints on the columns, which can be replaced online")
                        .severity(Severity::Info),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_on_alter_domain() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER DOMAIN positive_int ADD CONSTRAINT positive CHECK (VALUE > 0);"
        ));
    }

    #[test]
    fn not_valid_is_fine() {
        lint_ok(
            &RULE,
            "ALTER DOMAIN positive_int ADD CONSTRAINT positive CHECK (VALUE > 0) NOT VALID;",
        );
    }

    #[test]
    fn domain_without_check_is_fine() {
        lint_ok(&RULE, "CREATE DOMAIN email AS text;");
    }
}
