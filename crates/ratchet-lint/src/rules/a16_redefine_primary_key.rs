//! A16 `redefine-primary-key`.

use pg_query::protobuf::{AlterTableType, ConstrType};

use crate::ast;
use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// A primary key dropped and re-added with a fresh index build: `DROP CONSTRAINT … pkey`
    /// followed (in the same statement or later in the file) by `ADD PRIMARY KEY (…)`
    /// without `USING INDEX`.
    ///
    /// ## Why it is dangerous
    /// The new index is built under an ACCESS EXCLUSIVE lock; between the two steps the table
    /// has no primary key, and foreign keys that depend on it must be dropped too.
    ///
    /// ## What to do instead
    /// Build the new unique index concurrently, then swap in one short transaction:
    /// `DROP CONSTRAINT old_pkey, ADD CONSTRAINT new_pkey PRIMARY KEY USING INDEX new_idx`.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE t DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (id, tenant_id);
    /// ```
    code: "A16",
    name: "redefine-primary-key",
    severity: Error,
    summary: "dropping and re-adding a primary key rebuilds its index under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let cmds = common::existing_cmds(cx);
    for add in cmds.iter().filter(|c| {
        c.kind() == AlterTableType::AtAddConstraint
            && c.constraint().is_some_and(|k| {
                ast::constr_type(k) == ConstrType::ConstrPrimary && k.indexname.is_empty()
            })
    }) {
        let dropped = cmds.iter().find(|d| {
            d.kind() == AlterTableType::AtDropConstraint
                && d.table.same_as(&add.table)
                && d.stmt.index <= add.stmt.index
                && (d.cmd.name.ends_with("_pkey") || d.cmd.name.ends_with("_pk"))
        });
        let Some(d) = dropped else { continue };
        sink.push(
            Diagnostic::new(
                add.stmt.span,
                format!("primary key of `{}` is redefined (dropped `{}`, re-added with a new index build under an {AEL})", add.table, d.cmd.name),
            )
            .help("build the new unique index CONCURRENTLY, then swap: DROP CONSTRAINT old, ADD … PRIMARY KEY USING INDEX new, in one short transaction"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE t DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (id, tenant_id);"
        ));
    }

    #[test]
    fn swap_using_index_is_fine() {
        lint_ok(&RULE, "ALTER TABLE t DROP CONSTRAINT t_pkey, ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_new_idx;");
    }
}
