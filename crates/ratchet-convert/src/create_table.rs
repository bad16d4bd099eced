//! `CREATE TABLE`: becomes `create_table`, its columns with their inline constraints and
//! its table constraints.

use pg_query::protobuf::{self, node::Node as N};
use ratchet_spec::model::*;

use crate::constraint::{column_fk, no_index_options};
use crate::converter::{unsupported, Conv, Converter};
use crate::deparse::{deparse_expr_opt, deparse_type};
use crate::names::{object_name, or_default, table_name};

impl Converter<'_> {
    pub(crate) fn create_table(&mut self, s: &protobuf::CreateStmt) -> Conv<Operation> {
        let rel = s.relation.as_ref();
        let table = table_name(rel)?;
        if rel.is_some_and(|r| r.relpersistence != "p") {
            return unsupported(
                "create_table makes ordinary tables, not TEMPORARY or UNLOGGED ones",
            );
        }
        if !s.inh_relations.is_empty() || s.partbound.is_some() || s.partspec.is_some() {
            return unsupported("create_table has no inheritance or partitioning");
        }
        if s.of_typename.is_some() || !s.options.is_empty() || !s.tablespacename.is_empty() {
            return unsupported("create_table has no OF type, WITH options or TABLESPACE");
        }
        if !s.access_method.is_empty() {
            return unsupported("create_table has no USING access method");
        }
        if s.if_not_exists {
            self.review(
                "`IF NOT EXISTS` dropped: ratchet checks that the table is new when it plans",
            );
        }
        let mut columns = Vec::new();
        let mut constraints = Vec::new();
        for elt in &s.table_elts {
            match &elt.node {
                Some(N::ColumnDef(def)) => columns.push(self.column(&table, def)?),
                Some(N::Constraint(c)) => constraints.push(self.table_constraint(&table, c)?),
                _ => return unsupported("create_table has no LIKE clause"),
            }
        }
        promote_primary_key(&mut columns, &mut constraints);
        Ok(Operation::CreateTable(CreateTable {
            name: table,
            columns,
            constraints,
            comment: None,
        }))
    }

    pub(crate) fn table_constraint(
        &mut self,
        table: &str,
        c: &protobuf::Constraint,
    ) -> Conv<TableConstraint> {
        let named = !c.conname.is_empty();
        let shape = self.constraint_shape(table, c)?;
        if !named {
            // PostgreSQL names them at CREATE TABLE just the same; no need to ask for review.
            self.pending.pop();
        }
        Ok(TableConstraint {
            name: shape.name,
            type_: shape.type_,
            columns: shape.columns,
            check: shape.check,
            references: shape.references,
            exclude: None,
            index_parameters: shape.index_parameters,
            nulls_not_distinct: c.nulls_not_distinct,
            deferrable: c.deferrable,
            initially_deferred: c.initdeferred,
            no_inherit: c.is_no_inherit,
        })
    }

    pub(crate) fn column(&mut self, table: &str, def: &protobuf::ColumnDef) -> Conv<Column> {
        if def.coll_clause.is_some() {
            return unsupported("a column COLLATE clause has no ratchet equivalent");
        }
        if !def.compression.is_empty() || !def.storage_name.is_empty() {
            return unsupported("column COMPRESSION or STORAGE has no ratchet equivalent");
        }
        let name = def.colname.clone();
        let mut column = Column {
            name: name.clone(),
            type_: deparse_type(def.type_name.as_ref())?,
            pk: false,
            unique: false,
            nullable: true,
            default: None,
            check: None,
            references: None,
            comment: None,
            generated: None,
        };
        let mut last_fk = false;
        for constraint in &def.constraints {
            let Some(N::Constraint(c)) = &constraint.node else {
                return unsupported("unexpected column constraint");
            };
            last_fk = self.column_constraint(table, &mut column, c, last_fk)?;
        }
        Ok(column)
    }

    /// Applies one column constraint; returns whether it was a foreign key (the
    /// DEFERRABLE attributes that may follow apply to it).
    pub(crate) fn column_constraint(
        &mut self,
        table: &str,
        column: &mut Column,
        c: &protobuf::Constraint,
        last_fk: bool,
    ) -> Conv<bool> {
        use protobuf::ConstrType as C;
        let col = column.name.clone();
        match c.contype() {
            C::ConstrNotnull => column.nullable = false,
            C::ConstrNull => column.nullable = true,
            C::ConstrDefault => column.default = Some(deparse_expr_opt(c.raw_expr.as_deref())?),
            C::ConstrPrimary => {
                no_index_options(c)?;
                column.pk = true;
                column.nullable = false;
            }
            C::ConstrUnique => {
                no_index_options(c)?;
                if c.nulls_not_distinct || c.deferrable {
                    return unsupported("a column UNIQUE has no NULLS NOT DISTINCT or DEFERRABLE; use a table constraint");
                }
                column.unique = true;
            }
            C::ConstrCheck => {
                let name = or_default(&c.conname, || object_name(table, &col, "check"));
                column.check = Some(CheckConstraint {
                    name,
                    constraint: deparse_expr_opt(c.raw_expr.as_deref())?,
                    no_inherit: c.is_no_inherit,
                });
            }
            C::ConstrForeign => {
                column.references = Some(column_fk(table, &col, c)?);
                return Ok(true);
            }
            C::ConstrGenerated => column.generated = Some(stored_generated(c)?),
            C::ConstrIdentity => {
                column.nullable = false;
                column.generated = Some(identity(c)?);
            }
            C::ConstrAttrDeferrable | C::ConstrAttrDeferred if last_fk => {
                if let Some(fk) = column.references.as_mut() {
                    fk.deferrable = true;
                    fk.initially_deferred |= c.contype() == C::ConstrAttrDeferred;
                }
                return Ok(true);
            }
            C::ConstrAttrNotDeferrable | C::ConstrAttrImmediate => return Ok(last_fk),
            _ => return unsupported("this column constraint has no ratchet equivalent"),
        }
        Ok(false)
    }
}

/// `GENERATED ALWAYS AS (…) STORED | VIRTUAL` (`virtual: true` in the file).
fn stored_generated(c: &protobuf::Constraint) -> Conv<Generated> {
    Ok(Generated {
        expression: Some(deparse_expr_opt(c.raw_expr.as_deref())?),
        is_virtual: c.generated_kind == "v",
        identity: None,
    })
}

/// `GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY`, without sequence options.
fn identity(c: &protobuf::Constraint) -> Conv<Generated> {
    if !c.options.is_empty() {
        return unsupported("identity sequence options have no ratchet conversion yet");
    }
    let when = if c.generated_when == "a" {
        "ALWAYS"
    } else {
        "BY DEFAULT"
    };
    Ok(Generated {
        expression: None,
        is_virtual: false,
        identity: Some(Identity {
            user_specified_values: Some(when.to_string()),
            sequence_options: None,
        }),
    })
}

/// `primary_key` constraints without a name or index options become `pk: true` on
/// their columns, the way pgroll files say it.
fn promote_primary_key(columns: &mut [Column], constraints: &mut Vec<TableConstraint>) {
    constraints.retain(|c| {
        let plain = c.type_ == ConstraintType::PrimaryKey
            && c.index_parameters.is_none()
            && !c.deferrable
            && c.columns
                .iter()
                .all(|name| columns.iter().any(|col| &col.name == name));
        if plain {
            for col in columns
                .iter_mut()
                .filter(|col| c.columns.contains(&col.name))
            {
                col.pk = true;
                col.nullable = false;
            }
        }
        !plain
    });
}
