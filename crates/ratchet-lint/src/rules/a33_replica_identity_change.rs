//! A33 `replica-identity-change`.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::ast;
use crate::rule::Diagnostic;
use crate::rules::common;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … REPLICA IDENTITY DEFAULT|FULL|NOTHING|USING INDEX` on an existing table.
    ///
    /// ## Why it is dangerous
    /// Logical-replication and CDC consumers (Debezium, publications) get different row
    /// images: `NOTHING` breaks UPDATE/DELETE replication, `FULL` bloats WAL with whole old
    /// rows. Takes an ACCESS EXCLUSIVE lock briefly.
    ///
    /// ## What to do instead
    /// Coordinate with the replication consumers first. ratchet operation:
    /// `set_replica_identity`.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE orders REPLICA IDENTITY FULL;
    /// ```
    code: "A33",
    name: "replica-identity-change",
    severity: Warning,
    summary: "REPLICA IDENTITY changes what logical-replication consumers receive",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::cmds_of(cx, AlterTableType::AtReplicaIdentity) {
        let kind = match c.cmd.def.as_deref().and_then(ast::inner) {
            Some(NodeEnum::ReplicaIdentityStmt(r)) => match r.identity_type.as_str() {
                "f" => "FULL",
                "n" => "NOTHING",
                "i" => "USING INDEX",
                _ => "DEFAULT",
            },
            _ => "a new setting",
        };
        sink.push(
            Diagnostic::new(c.stmt.span, format!("REPLICA IDENTITY {kind} on `{}` changes the row images logical-replication/CDC consumers receive", c.table))
                .help("coordinate with replication consumers first. ratchet operation: `set_replica_identity`"),
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
            "ALTER TABLE orders REPLICA IDENTITY FULL;"
        ));
    }

    #[test]
    fn new_table_is_fine() {
        lint_ok(
            &RULE,
            "CREATE TABLE orders (id int);\nALTER TABLE orders REPLICA IDENTITY FULL;",
        );
    }
}
