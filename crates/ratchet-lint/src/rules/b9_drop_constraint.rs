//! B9 `drop-constraint`: removing a guarantee that clients rely on.

use pg_query::protobuf::AlterTableType;

use crate::ast;
use crate::context::PriorFacts;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … DROP CONSTRAINT` (foreign key, check, unique, primary key) on an
    /// existing table. Not reported: a constraint added earlier in the same file, and a
    /// `CHECK (col IS NOT NULL)` helper (the safe SET NOT NULL pattern of rule A8 ends by
    /// dropping it).
    ///
    /// ## Why it is dangerous
    /// Clients rely on the guarantee: uniqueness used for upserts (`ON CONFLICT` fails
    /// without it), foreign keys that keep orphans out, checks that keep bad values out.
    /// Once it is gone, bad data can arrive and stays after any rollback.
    ///
    /// ## What to do instead
    /// Make sure no client depends on it, then drop it in a contract migration with
    /// ratchet's `drop_constraint`/`drop_multicolumn_constraint`.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;
    /// ```
    code: "B9",
    name: "drop-constraint",
    severity: Warning,
    summary: "DROP CONSTRAINT removes guarantees clients rely on",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let mut in_file = PriorFacts::default();
    for stmt in cx.statements() {
        let Some(alter) = ast::alter_table(&stmt.node) else {
            continue;
        };
        let Some(table) = ast::alter_table_name(alter) else {
            continue;
        };
        for cmd in
            ast::alter_cmds(alter).filter(|c| ast::cmd_type(c) == AlterTableType::AtDropConstraint)
        {
            let key = (table.name.clone(), cmd.name.clone());
            let added_here =
                in_file.validated.contains_key(&key) || in_file.not_valid.contains_key(&key);
            let not_null_helper = in_file.not_null_checks.contains_key(&key)
                || cx
                    .prior
                    .not_null_checks
                    .get(&key)
                    .is_some_and(|(f, _)| *f < cx.file_index);
            if added_here || not_null_helper || cx.is_new_table(&table, stmt) {
                continue;
            }
            sink.push(
                Diagnostic::new(
                    stmt.span,
                    format!(
                        "dropping constraint `{}` of `{table}` removes a guarantee clients may rely on (upserts, orphan protection, valid values)",
                        cmd.name
                    ),
                )
                .help(
                    "check that no client depends on it, then drop it in a contract migration (ratchet's `drop_constraint`)",
                ),
            );
        }
        in_file.absorb(cx.file_index, std::iter::once(&stmt.node));
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_drop_constraint() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;"
        ));
    }

    #[test]
    fn ignores_the_not_null_helper_check() {
        lint_ok(
            &RULE,
            "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n\
             ALTER TABLE users DROP CONSTRAINT users_email_nn;",
        );
    }

    #[test]
    fn ignores_drop_column() {
        lint_ok(&RULE, "ALTER TABLE orders DROP COLUMN note;");
    }
}
