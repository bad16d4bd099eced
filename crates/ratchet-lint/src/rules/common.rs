//! Helpers shared by several rules: iterating the ALTER TABLE sub-commands on tables that
//! already exist, and the advice strings that point at ratchet operations.

use pg_query::protobuf::{AlterTableCmd, AlterTableType, ColumnDef, ConstrType, Constraint};

use crate::ast::{self, QualifiedName};
use crate::context::{Context, Statement};

/// One `ALTER TABLE` sub-command on a table that existed before this file.
pub struct Cmd<'c> {
    pub stmt: &'c Statement,
    pub table: QualifiedName,
    pub cmd: &'c AlterTableCmd,
    /// Number of sub-commands in the statement (fixes are offered for single-command ones).
    pub siblings: usize,
}

impl Cmd<'_> {
    pub fn kind(&self) -> AlterTableType {
        ast::cmd_type(self.cmd)
    }
    pub fn column_def(&self) -> Option<&ColumnDef> {
        ast::cmd_column_def(self.cmd)
    }
    pub fn constraint(&self) -> Option<&Constraint> {
        ast::cmd_constraint(self.cmd)
    }
}

/// Every ALTER TABLE sub-command on an existing table (not created earlier in the file).
pub fn existing_cmds<'c>(cx: &'c Context<'_>) -> Vec<Cmd<'c>> {
    let mut out = Vec::new();
    for stmt in cx.statements() {
        let Some(a) = ast::alter_table(&stmt.node) else {
            continue;
        };
        let Some(table) = ast::alter_table_name(a) else {
            continue;
        };
        if cx.is_new_table(&table, stmt) {
            continue;
        }
        let siblings = a.cmds.len();
        for cmd in ast::alter_cmds(a) {
            out.push(Cmd {
                stmt,
                table: table.clone(),
                cmd,
                siblings,
            });
        }
    }
    out
}

/// Existing-table sub-commands of one kind.
pub fn cmds_of<'c>(cx: &'c Context<'_>, kind: AlterTableType) -> Vec<Cmd<'c>> {
    existing_cmds(cx)
        .into_iter()
        .filter(|c| c.kind() == kind)
        .collect()
}

/// `ADD CONSTRAINT` sub-commands with a constraint of type `ty`.
pub fn added_constraints<'c>(cx: &'c Context<'_>, ty: ConstrType) -> Vec<Cmd<'c>> {
    cmds_of(cx, AlterTableType::AtAddConstraint)
        .into_iter()
        .filter(|c| c.constraint().is_some_and(|k| ast::constr_type(k) == ty))
        .collect()
}

/// `ADD COLUMN` sub-commands whose column carries an inline constraint of type `ty`.
pub fn added_columns_with<'c>(cx: &'c Context<'_>, ty: ConstrType) -> Vec<Cmd<'c>> {
    cmds_of(cx, AlterTableType::AtAddColumn)
        .into_iter()
        .filter(|c| {
            c.column_def()
                .is_some_and(|d| ast::column_constraints(d).any(|k| ast::constr_type(k) == ty))
        })
        .collect()
}

/// "ACCESS EXCLUSIVE lock (blocks reads and writes)".
pub const AEL: &str = "ACCESS EXCLUSIVE lock (blocks reads and writes)";

/// The safe pattern for constraints that can be added NOT VALID.
pub const NOT_VALID_HELP: &str = "add it with NOT VALID (brief lock, no scan), then run `ALTER TABLE … VALIDATE CONSTRAINT …` \
in a later transaction (SHARE UPDATE EXCLUSIVE: reads and writes continue). ratchet operation: `create_constraint` \
(adds NOT VALID and validates separately)";

/// The expand/contract advice for rewrites.
pub const EXPAND_CONTRACT: &str =
    "ratchet operation: `alter_column` with `up`/`down` (new column, dual-write trigger, \
batched backfill, switch, drop the old column later)";

/// The fix text that makes a constraint NOT VALID and validates it separately: when the
/// statement runs in a transaction, the VALIDATE must wait for a later migration.
pub fn not_valid_fix(cx: &Context<'_>, c: &Cmd<'_>, name: &str) -> Option<crate::rule::Fix> {
    use crate::rule::{Edit, Fix};
    if c.siblings != 1 || name.is_empty() {
        return None;
    }
    let end = c.stmt.span.end;
    let rest = cx.source.get(end..).unwrap_or("");
    let semi = if rest.starts_with(';') { end + 1 } else { end };
    let validate = format!(
        "ALTER TABLE {} VALIDATE CONSTRAINT {};",
        c.table,
        ratchet_sql::ident_unless_lowercase(name)
    );
    let follow = if c.stmt.tx.in_transaction {
        format!("\n-- run in a later migration, outside this transaction: {validate}")
    } else {
        format!("\n{validate}")
    };
    Some(Fix::new(
        "add NOT VALID and validate separately",
        if semi == end {
            vec![Edit::insert(end, format!(" NOT VALID;{follow}"))]
        } else {
            vec![Edit::insert(end, " NOT VALID"), Edit::insert(semi, follow)]
        },
    ))
}
