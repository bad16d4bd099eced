//! A22 `concurrently-in-transaction`.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::ast;
use crate::context::Statement;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX … CONCURRENTLY` or
    /// `DETACH PARTITION … CONCURRENTLY` inside a transaction: an explicit `BEGIN` in the
    /// file, the `-- ratchet:transaction` directive, or `--assume-in-transaction`. Under
    /// `--assume-in-transaction` a file whose only statement (besides `SET`s) is the
    /// concurrent one is allowed: runners such as Flyway detect it and run it outside a
    /// transaction.
    ///
    /// ## Why it is dangerous
    /// PostgreSQL rejects these inside a transaction block (error 25001, "cannot run inside a
    /// transaction block"): the migration fails, or is left half-applied.
    ///
    /// ## What to do instead
    /// Put the statement in its own migration that runs without a transaction
    /// (`-- ratchet:no-transaction`, Rails `disable_ddl_transaction!`, Atlas `txmode none`,
    /// Alembic `autocommit_block`). ratchet's `create_index`/`drop_index` operations run them
    /// outside transactions.
    ///
    /// ## Example
    /// ```sql
    /// BEGIN;
    /// CREATE INDEX CONCURRENTLY users_email_idx ON users (email);  -- fails with 25001
    /// COMMIT;
    /// ```
    code: "A22",
    name: "concurrently-in-transaction",
    severity: Error,
    summary: "CONCURRENTLY statements inside a transaction block fail with 25001",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let substantive = cx
        .statements()
        .iter()
        .filter(|s| !matches!(s.node, NodeEnum::VariableSetStmt(_)))
        .count();
    for stmt in cx.statements() {
        let Some(what) = concurrent_kind(stmt) else {
            continue;
        };
        if !stmt.tx.in_transaction {
            continue;
        }
        let implicit = !stmt.tx.explicit && cx.directive.is_none();
        if implicit && substantive == 1 {
            continue;
        }
        let source = if stmt.tx.explicit {
            "inside the file's BEGIN … COMMIT"
        } else if cx.directive == Some(true) {
            "in a file marked `-- ratchet:transaction`"
        } else {
            "in a file the runner wraps in a transaction (--assume-in-transaction)"
        };
        sink.push(
            Diagnostic::new(stmt.span, format!("{what} cannot run inside a transaction block (error 25001); it runs {source}"))
                .help("move it to its own migration run without a transaction (`-- ratchet:no-transaction`); ratchet's `create_index`/`drop_index` do this"),
        );
    }
}

fn concurrent_kind(stmt: &Statement) -> Option<&'static str> {
    match &stmt.node {
        NodeEnum::IndexStmt(i) if i.concurrent => Some("CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(d) if d.concurrent => Some("DROP INDEX CONCURRENTLY"),
        NodeEnum::ReindexStmt(r)
            if ast::option_on(&r.params, "concurrently") =>
        {
            Some("REINDEX CONCURRENTLY")
        }
        node => {
            let a = ast::alter_table(node)?;
            ast::alter_cmds(a)
                .any(|c| {
                    ast::cmd_type(c) == AlterTableType::AtDetachPartition
                        && matches!(c.def.as_deref().and_then(ast::inner), Some(NodeEnum::PartitionCmd(p)) if p.concurrent)
                })
                .then_some("DETACH PARTITION … CONCURRENTLY")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_in_begin_block() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "BEGIN;\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\nCOMMIT;"
        ));
    }

    #[test]
    fn fires_under_assume_in_transaction_with_other_statements() {
        lint_errors_with(
            &RULE,
            "ALTER TABLE users ADD COLUMN x int;\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
            &in_transaction(),
            None,
        );
    }

    #[test]
    fn single_statement_file_under_assume_in_transaction_is_fine() {
        lint_ok_with(
            &RULE,
            "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
            &in_transaction(),
            None,
        );
    }

    // Issue #10: the COMMIT the linter saw ends the runner's transaction.
    #[test]
    fn after_commit_under_assume_in_transaction_is_fine() {
        lint_ok_with(
            &RULE,
            "ALTER TABLE users ADD COLUMN x int;\nCOMMIT;\nCREATE UNIQUE INDEX CONCURRENTLY users_email_idx ON users (email);\nBEGIN;\nSELECT 1;",
            &in_transaction(),
            None,
        );
    }

    #[test]
    fn outside_transaction_is_fine() {
        lint_ok(
            &RULE,
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
        );
    }
}
