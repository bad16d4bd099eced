//! A34 `disable-autovacuum`.

use pg_query::protobuf::AlterTableType;
use pg_query::{Node, NodeEnum};

use crate::ast;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `autovacuum_enabled = false` (or `toast.autovacuum_enabled = false`) in
    /// `ALTER TABLE … SET (…)` or `CREATE TABLE … WITH (…)`.
    ///
    /// ## Why it is dangerous
    /// Dead tuples pile up (bloat, slower scans) and the table is not frozen, so it
    /// eventually forces an anti-wraparound vacuum or, at worst, a shutdown to prevent
    /// transaction ID wraparound.
    ///
    /// ## What to do instead
    /// Leave autovacuum on and tune its thresholds (`autovacuum_vacuum_scale_factor`,
    /// `autovacuum_vacuum_cost_limit`) per table.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE events SET (autovacuum_enabled = false);
    /// ```
    code: "A34",
    name: "disable-autovacuum",
    severity: Warning,
    summary: "autovacuum_enabled = false lets bloat and wraparound risk build up",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let options: Vec<&Node> = match &stmt.node {
            NodeEnum::CreateStmt(c) => c.options.iter().collect(),
            node => match ast::alter_table(node) {
                Some(a) => ast::alter_cmds(a)
                    .filter(|c| ast::cmd_type(c) == AlterTableType::AtSetRelOptions)
                    .filter_map(|c| match c.def.as_deref().and_then(ast::inner) {
                        Some(NodeEnum::List(l)) => Some(l.items.iter()),
                        _ => None,
                    })
                    .flatten()
                    .collect(),
                None => continue,
            },
        };
        if options.into_iter().any(disables) {
            sink.push(
                Diagnostic::new(stmt.span, "autovacuum_enabled = false lets dead tuples pile up and risks transaction ID wraparound")
                    .help("leave autovacuum on; tune autovacuum_vacuum_scale_factor / cost limits for this table instead"),
            );
        }
    }
}

fn disables(opt: &Node) -> bool {
    let Some(NodeEnum::DefElem(d)) = ast::inner(opt) else {
        return false;
    };
    if d.defname != "autovacuum_enabled" {
        return false;
    }
    let value = match d.arg.as_deref().and_then(ast::inner) {
        Some(NodeEnum::String(s)) => s.sval.to_ascii_lowercase(),
        Some(NodeEnum::Integer(i)) => i.ival.to_string(),
        Some(NodeEnum::Boolean(b)) => b.boolval.to_string(),
        Some(NodeEnum::TypeCast(_)) | None => return false,
        Some(_) => return false,
    };
    matches!(value.as_str(), "false" | "off" | "0" | "no" | "f")
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE events SET (autovacuum_enabled = false);"
        ));
    }

    #[test]
    fn tuning_is_fine() {
        lint_ok(&RULE, "ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_enabled = true);");
    }
}
