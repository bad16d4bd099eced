//! `ALTER TABLE`: each sub-command becomes an operation, and consecutive changes of one
//! column are folded into one `alter_column`, as a hand-written file would say them.

use pg_query::protobuf::{self, node::Node as N};
use ratchet_spec::model::{
    AddColumn, AlterColumn, DropColumn, Operation, ReplicaIdentity, SetReplicaIdentity,
};
use ratchet_sql::ident_if_needed as quote_ident;

use crate::converter::{unsupported, Conv, Converter};
use crate::deparse::{deparse_expr, deparse_type};
use crate::names::{node_of, table_name};

impl Converter<'_> {
    pub(crate) fn alter_table(&mut self, s: &protobuf::AlterTableStmt) -> Conv<Vec<Operation>> {
        if s.objtype() != protobuf::ObjectType::ObjectTable {
            return unsupported("ALTER of an object other than a table has no ratchet operation");
        }
        let table = table_name(s.relation.as_ref())?;
        if s.relation.as_ref().is_some_and(|r| !r.inh) {
            return unsupported("`ALTER TABLE ONLY` has no ratchet operation");
        }
        if s.missing_ok {
            self.review("`IF EXISTS` dropped: ratchet checks that the table exists when it plans");
        }
        let mut ops: Vec<Operation> = Vec::new();
        for cmd in &s.cmds {
            let Some(N::AlterTableCmd(cmd)) = &cmd.node else {
                return unsupported("unexpected ALTER TABLE subcommand");
            };
            for op in self.alter_cmd(&table, cmd)? {
                push_merged(&mut ops, op);
            }
        }
        Ok(ops)
    }

    /// One sub-command as operations (none when ratchet does its job by itself).
    pub(crate) fn alter_cmd(
        &mut self,
        table: &str,
        cmd: &protobuf::AlterTableCmd,
    ) -> Conv<Vec<Operation>> {
        use protobuf::AlterTableType as T;
        let col = cmd.name.clone();
        let op = match cmd.subtype() {
            T::AtAddColumn => {
                let Some(N::ColumnDef(def)) = node_of(&cmd.def) else {
                    return unsupported("ADD COLUMN without a column definition");
                };
                if cmd.missing_ok {
                    self.review("`ADD COLUMN IF NOT EXISTS`: the guard is dropped");
                }
                self.add_column(table, def)?
            }
            T::AtDropColumn => self.drop_column(table, cmd)?,
            T::AtAlterColumnType => self.alter_type(table, &col, cmd)?,
            T::AtSetNotNull => self.not_null(table, &col, true),
            T::AtDropNotNull => self.not_null(table, &col, false),
            T::AtColumnDefault => {
                let default = match cmd.def.as_deref() {
                    Some(expr) => Some(deparse_expr(expr)?),
                    None => None,
                };
                Operation::AlterColumn(AlterColumn {
                    default: Some(default),
                    ..alter_column(table, &col)
                })
            }
            T::AtAddConstraint => {
                let Some(N::Constraint(c)) = node_of(&cmd.def) else {
                    return unsupported("ADD CONSTRAINT without a constraint");
                };
                self.add_constraint(table, c)?
            }
            T::AtDropConstraint => self.drop_constraint_cmd(table, cmd)?,
            T::AtValidateConstraint => return self.validate_constraint(table, &col),
            T::AtReplicaIdentity => {
                let Some(N::ReplicaIdentityStmt(r)) = node_of(&cmd.def) else {
                    return unsupported("REPLICA IDENTITY without an identity");
                };
                replica_identity(table, r)?
            }
            other => {
                return unsupported(format!(
                    "{} has no ratchet operation",
                    subcommand_name(other)
                ))
            }
        };
        Ok(vec![op])
    }

    /// `DROP COLUMN`, without CASCADE: drop_column does not drop dependent objects.
    fn drop_column(&mut self, table: &str, cmd: &protobuf::AlterTableCmd) -> Conv<Operation> {
        let col = &cmd.name;
        if cascades(cmd) {
            return unsupported(
                "`DROP COLUMN … CASCADE` also drops dependent objects, which drop_column does not",
            );
        }
        if cmd.missing_ok {
            self.review("`DROP COLUMN IF EXISTS`: the guard is dropped");
        }
        self.review(format!(
            "drop_column `{table}.{col}`: set `down` if the old application version needs a value \
             in `{col}` for rows written through the new version"
        ));
        Ok(Operation::DropColumn(DropColumn {
            table: table.to_string(),
            column: col.clone(),
            down: None,
        }))
    }

    /// `SET NOT NULL` (`set`) or `DROP NOT NULL` as an `alter_column` with identity
    /// `up`/`down`, which fail on a NULL exactly where the SQL (or the old version) would.
    fn not_null(&mut self, table: &str, col: &str, set: bool) -> Operation {
        let ident = quote_ident(col);
        self.review(if set {
            format!(
                "`up: {ident}` fails on rows where `{col}` is NULL, as SET NOT NULL would; \
                 write e.g. `COALESCE({ident}, <value>)` to fill them instead"
            )
        } else {
            format!(
                "`down: {ident}` fails when the new version writes NULL into `{col}`, which is still \
                 NOT NULL for the old version; write e.g. `COALESCE({ident}, <value>)`"
            )
        });
        Operation::AlterColumn(AlterColumn {
            nullable: Some(!set),
            up: Some(ident.clone()),
            down: Some(ident),
            ..alter_column(table, col)
        })
    }

    /// `DROP CONSTRAINT`, without CASCADE: drop_constraint keeps dependent objects.
    fn drop_constraint_cmd(
        &mut self,
        table: &str,
        cmd: &protobuf::AlterTableCmd,
    ) -> Conv<Operation> {
        if cascades(cmd) {
            return unsupported(
                "`DROP CONSTRAINT … CASCADE` also drops dependent objects, which drop_constraint does not",
            );
        }
        if cmd.missing_ok {
            self.review("`DROP CONSTRAINT IF EXISTS`: the guard is dropped");
        }
        Ok(self.drop_constraint(table, &cmd.name))
    }

    /// `VALIDATE CONSTRAINT`: nothing to do for a constraint this file adds, since
    /// create_constraint validates it in a step of its own.
    fn validate_constraint(&mut self, table: &str, col: &str) -> Conv<Vec<Operation>> {
        let key = (table.to_string(), col.to_string());
        if self.known.constraints.contains_key(&key) {
            self.review(format!(
                "VALIDATE CONSTRAINT `{col}`: the create_constraint of this file validates it"
            ));
            return Ok(Vec::new());
        }
        unsupported(
            "VALIDATE CONSTRAINT of a constraint this file does not add; ratchet's \
             create_constraint validates the constraints it adds by itself",
        )
    }

    pub(crate) fn add_column(&mut self, table: &str, def: &protobuf::ColumnDef) -> Conv<Operation> {
        let column = self.column(table, def)?;
        if !column.nullable && column.default.is_none() && column.generated.is_none() && !column.pk
        {
            self.review(format!(
                "`{table}.{}` is NOT NULL without a default: existing rows need a value, give it in `up` \
                 (the SQL fails on a non-empty table)",
                column.name
            ));
        }
        Ok(Operation::AddColumn(AddColumn {
            table: table.to_string(),
            column,
            up: None,
        }))
    }

    pub(crate) fn alter_type(
        &mut self,
        table: &str,
        col: &str,
        cmd: &protobuf::AlterTableCmd,
    ) -> Conv<Operation> {
        let Some(N::ColumnDef(def)) = node_of(&cmd.def) else {
            return unsupported("ALTER COLUMN TYPE without a type");
        };
        if def.coll_clause.is_some() {
            return unsupported("a COLLATE clause on a type change has no ratchet equivalent");
        }
        let new_type = deparse_type(def.type_name.as_ref())?;
        let ident = quote_ident(col);
        let up = match def.raw_default.as_deref() {
            Some(using) => deparse_expr(using)?,
            None => format!("CAST({ident} AS {new_type})"),
        };
        let key = (table.to_string(), col.to_string());
        let down = match self.known.types.get(&key) {
            Some(old) => Some(format!("CAST({ident} AS {old})")),
            None => {
                self.review(format!(
                    "the old type of `{table}.{col}` is not in this file: set `down` to \
                     `CAST({ident} AS <old type>)` so the old version can read what the new one writes"
                ));
                None
            }
        };
        Ok(Operation::AlterColumn(AlterColumn {
            type_: Some(new_type),
            up: Some(up),
            down,
            ..alter_column(table, col)
        }))
    }
}

fn cascades(cmd: &protobuf::AlterTableCmd) -> bool {
    cmd.behavior() == protobuf::DropBehavior::DropCascade
}

fn subcommand_name(t: protobuf::AlterTableType) -> &'static str {
    use protobuf::AlterTableType as T;
    match t {
        T::AtSetLogged | T::AtSetUnLogged => "SET LOGGED/UNLOGGED",
        T::AtSetTableSpace => "SET TABLESPACE",
        T::AtSetAccessMethod => "SET ACCESS METHOD",
        T::AtSetRelOptions | T::AtResetRelOptions => "SET/RESET storage parameters",
        T::AtEnableTrig
        | T::AtDisableTrig
        | T::AtEnableTrigAll
        | T::AtDisableTrigAll
        | T::AtEnableTrigUser
        | T::AtDisableTrigUser
        | T::AtEnableAlwaysTrig
        | T::AtEnableReplicaTrig => "ENABLE/DISABLE TRIGGER",
        T::AtAttachPartition => "ATTACH PARTITION",
        T::AtDetachPartition | T::AtDetachPartitionFinalize => "DETACH PARTITION",
        T::AtAddIdentity | T::AtSetIdentity | T::AtDropIdentity => "an identity change",
        T::AtSetExpression | T::AtDropExpression => "a generated expression change",
        T::AtEnableRowSecurity
        | T::AtDisableRowSecurity
        | T::AtForceRowSecurity
        | T::AtNoForceRowSecurity => "a ROW LEVEL SECURITY change",
        T::AtChangeOwner => "OWNER TO",
        T::AtAlterConstraint => "ALTER CONSTRAINT",
        T::AtAddInherit | T::AtDropInherit => "INHERIT/NO INHERIT",
        T::AtSetStatistics => "SET STATISTICS",
        T::AtSetStorage | T::AtSetCompression => "SET STORAGE/COMPRESSION",
        T::AtClusterOn | T::AtDropCluster => "CLUSTER ON",
        _ => "this ALTER TABLE subcommand",
    }
}

pub(crate) fn alter_column(table: &str, column: &str) -> AlterColumn {
    AlterColumn {
        table: table.to_string(),
        column: column.to_string(),
        name: None,
        type_: None,
        nullable: None,
        default: None,
        comment: None,
        check: None,
        unique: None,
        references: None,
        up: None,
        down: None,
    }
}

/// Adds `op` to `ops`, folding it into the previous `alter_column` of the same column
/// when the two change different things (`TYPE bigint, ALTER c SET NOT NULL` is one
/// operation, as in a hand-written file).
fn push_merged(ops: &mut Vec<Operation>, op: Operation) {
    let (Some(Operation::AlterColumn(prev)), Operation::AlterColumn(next)) = (ops.last_mut(), &op)
    else {
        ops.push(op);
        return;
    };
    if let Some(merged) = merge_alter(prev, next) {
        *prev = merged;
    } else {
        ops.push(op);
    }
}

fn merge_alter(a: &AlterColumn, b: &AlterColumn) -> Option<AlterColumn> {
    if a.table != b.table || a.column != b.column {
        return None;
    }
    let ident = quote_ident(&a.column);
    // A type change's `up`/`down` win: an identity from SET NOT NULL must not hide that
    // the type change's `down` is still missing. Otherwise identities give way.
    let pick = |x: &Option<String>, y: &Option<String>| -> Option<Option<String>> {
        if a.type_.is_some() {
            return Some(x.clone());
        }
        if b.type_.is_some() {
            return Some(y.clone());
        }
        match (x, y) {
            (None, v) | (v, None) => Some(v.clone()),
            (Some(x), Some(y)) if x == y || *y == ident => Some(Some(x.clone())),
            (Some(x), Some(y)) if *x == ident => Some(Some(y.clone())),
            _ => None,
        }
    };
    fn one<T: Clone>(x: &Option<T>, y: &Option<T>) -> Option<Option<T>> {
        match (x, y) {
            (Some(_), Some(_)) => None,
            (Some(v), None) | (None, Some(v)) => Some(Some(v.clone())),
            (None, None) => Some(None),
        }
    }
    Some(AlterColumn {
        table: a.table.clone(),
        column: a.column.clone(),
        name: one(&a.name, &b.name)?,
        type_: one(&a.type_, &b.type_)?,
        nullable: one(&a.nullable, &b.nullable)?,
        default: one(&a.default, &b.default)?,
        comment: one(&a.comment, &b.comment)?,
        check: one(&a.check, &b.check)?,
        unique: one(&a.unique, &b.unique)?,
        references: one(&a.references, &b.references)?,
        up: pick(&a.up, &b.up)?,
        down: pick(&a.down, &b.down)?,
    })
}

fn replica_identity(table: &str, r: &protobuf::ReplicaIdentityStmt) -> Conv<Operation> {
    let (type_, index) = match r.identity_type.as_str() {
        "d" => ("default", None),
        "f" => ("full", None),
        "n" => ("nothing", None),
        "i" => ("index", Some(r.name.clone())),
        _ => return unsupported("unknown replica identity"),
    };
    Ok(Operation::SetReplicaIdentity(SetReplicaIdentity {
        table: table.to_string(),
        identity: ReplicaIdentity {
            type_: type_.to_string(),
            index,
        },
    }))
}
