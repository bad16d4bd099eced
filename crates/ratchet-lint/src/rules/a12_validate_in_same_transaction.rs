//! A12 `validate-in-same-transaction`.

use pg_query::protobuf::AlterTableType;

use crate::rule::Diagnostic;
use crate::rules::common;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `VALIDATE CONSTRAINT` in the same transaction as the `ADD … NOT VALID` of that
    /// constraint, or after any statement in the same transaction that took a write-blocking
    /// lock (SHARE or stronger) on an existing table. VALIDATE in a later transaction or a
    /// later file is the safe pattern and is not reported.
    ///
    /// ## Why it is dangerous
    /// Locks are held until COMMIT. The ACCESS EXCLUSIVE (or SHARE ROW EXCLUSIVE) lock of the
    /// earlier statement stays held through the validating scan, so NOT VALID gains nothing:
    /// reads and/or writes are blocked for the whole scan.
    ///
    /// ## What to do instead
    /// Run VALIDATE in its own transaction or migration. ratchet operation:
    /// `create_constraint` (validates in a separate step).
    ///
    /// ## Example
    /// ```sql
    /// BEGIN;
    /// ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;
    /// ALTER TABLE orders VALIDATE CONSTRAINT positive;  -- still under ACCESS EXCLUSIVE
    /// COMMIT;
    /// ```
    code: "A12",
    name: "validate-in-same-transaction",
    severity: Error,
    summary: "VALIDATE CONSTRAINT in the transaction that added it NOT VALID (or holds a write-blocking lock)",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::cmds_of(cx, AlterTableType::AtValidateConstraint) {
        if !c.stmt.tx.in_transaction {
            continue;
        }
        let same_tx = |s: &&crate::Statement| s.tx.id == c.stmt.tx.id && s.tx.in_transaction;
        let added = cx
            .not_valid_added_in_file(&c.table, &c.cmd.name, c.stmt)
            .filter(|s| same_tx(s));
        let held = cx.before(c.stmt).iter().filter(same_tx).find_map(|s| {
            s.lock
                .as_ref()
                .filter(|l| l.mode.blocks_writes() && !cx.is_new_table(&l.table, s))
        });
        let message = match (added, held) {
            (Some(_), Some(l)) => format!(
                "VALIDATE CONSTRAINT `{}` runs in the transaction that added it NOT VALID: the {} on `{}` is held through the whole scan",
                c.cmd.name, l.mode.describe(), l.table
            ),
            (None, Some(l)) => format!(
                "VALIDATE CONSTRAINT `{}` runs while this transaction holds a {} on `{}`, for the whole scan",
                c.cmd.name, l.mode.describe(), l.table
            ),
            _ => continue,
        };
        sink.push(
            Diagnostic::new(c.stmt.span, message)
                .help("COMMIT first and VALIDATE in its own transaction or a later migration. ratchet operation: `create_constraint`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_in_same_transaction() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "BEGIN;\nALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT positive;\nCOMMIT;"
        ));
    }

    #[test]
    fn later_transaction_is_fine() {
        lint_ok(
            &RULE,
            "BEGIN;\nALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;\nCOMMIT;\nBEGIN;\nALTER TABLE orders VALIDATE CONSTRAINT positive;\nCOMMIT;",
        );
    }

    #[test]
    fn autocommit_statements_are_fine() {
        lint_ok(&RULE, "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT positive;");
    }

    #[test]
    fn wrapped_file_fires() {
        lint_errors_with(
            &RULE,
            "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT positive;",
            &in_transaction(),
            None,
        );
    }
}
