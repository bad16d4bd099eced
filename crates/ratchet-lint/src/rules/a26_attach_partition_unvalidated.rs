//! A26 `attach-partition-unvalidated`.

use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::NodeEnum;

use crate::ast::{self, QualifiedName};
use crate::context::Statement;
use crate::rule::Diagnostic;
use crate::rules::common;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE parent ATTACH PARTITION part FOR VALUES …` when `part` has no validated
    /// CHECK constraint that could prove the bound: none added (valid, or NOT VALID and then
    /// VALIDATEd) earlier in the file or in an earlier file, and none in the catalog. A
    /// partition created in the same file is empty and exempt. (No other linter has this rule.)
    ///
    /// ## Why it is dangerous
    /// PostgreSQL scans the partition to prove every row fits the bound, holding an ACCESS
    /// EXCLUSIVE lock on the partition; the parent takes SHARE UPDATE EXCLUSIVE since PG 12
    /// (ACCESS EXCLUSIVE before). With a validated CHECK matching the bound the scan is skipped.
    ///
    /// ## What to do instead
    /// `ALTER TABLE part ADD CONSTRAINT bound CHECK (…) NOT VALID`, `VALIDATE CONSTRAINT bound`
    /// (SHARE UPDATE EXCLUSIVE), `ATTACH PARTITION` (no scan), then drop the CHECK.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE m_2024 ADD CONSTRAINT m_2024_bound CHECK (d >= '2024-01-01' AND d < '2025-01-01') NOT VALID;
    /// ALTER TABLE m_2024 VALIDATE CONSTRAINT m_2024_bound;
    /// ALTER TABLE m ATTACH PARTITION m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    /// ```
    code: "A26",
    name: "attach-partition-unvalidated",
    severity: Warning,
    summary: "ATTACH PARTITION without a pre-validated CHECK scans the partition under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::cmds_of(cx, AlterTableType::AtAttachPartition) {
        let Some(NodeEnum::PartitionCmd(p)) = c.cmd.def.as_deref().and_then(ast::inner) else {
            continue;
        };
        let Some(part) = p.name.as_ref().map(ast::range_var_name) else {
            continue;
        };
        if cx.is_new_table(&part, c.stmt) || has_validated_check(cx, &part, c.stmt) {
            continue;
        }
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("ATTACH PARTITION scans `{part}`{} under an ACCESS EXCLUSIVE lock to prove the partition bound", cx.size_note(&part)),
            )
            .help("add a CHECK matching the bound NOT VALID, VALIDATE it (reads and writes continue), then ATTACH (no scan) and drop the CHECK"),
        );
    }
}

fn has_validated_check(cx: &Context<'_>, table: &QualifiedName, stmt: &Statement) -> bool {
    if cx
        .table_info(table)
        .is_some_and(|t| t.checks.iter().any(|(_, _, valid)| *valid))
    {
        return true;
    }
    let mut names = Vec::new();
    let mut validated = Vec::new();
    for s in cx.before(stmt) {
        let Some(a) = ast::alter_table(&s.node) else {
            continue;
        };
        if !ast::alter_table_name(a).is_some_and(|t| t.same_as(table)) {
            continue;
        }
        for cmd in ast::alter_cmds(a) {
            match (ast::cmd_type(cmd), ast::cmd_constraint(cmd)) {
                (AlterTableType::AtAddConstraint, Some(k))
                    if ast::constr_type(k) == ConstrType::ConstrCheck =>
                {
                    if k.skip_validation {
                        names.push(k.conname.clone());
                    } else {
                        return true;
                    }
                }
                (AlterTableType::AtValidateConstraint, _) => validated.push(cmd.name.clone()),
                _ => {}
            }
        }
    }
    names.iter().any(|n| validated.contains(n))
        || cx
            .prior
            .validated
            .iter()
            .any(|((t, _), f)| t == &table.name && *f < cx.file_index)
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(&RULE, "ALTER TABLE m ATTACH PARTITION m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"));
    }

    #[test]
    fn prevalidated_check_is_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE m_2024 ADD CONSTRAINT b CHECK (d >= '2024-01-01' AND d < '2025-01-01') NOT VALID;\n\
             ALTER TABLE m_2024 VALIDATE CONSTRAINT b;\n\
             ALTER TABLE m ATTACH PARTITION m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
        );
    }
}
