//! Table constraints: `ADD CONSTRAINT` becomes `create_constraint` (added NOT VALID and
//! validated by ratchet), `DROP CONSTRAINT` a drop that keeps the old version's data
//! valid; `CREATE TABLE` shares the reading of a constraint's parts.

use pg_query::protobuf;
use ratchet_spec::model::*;

use ratchet_sql::columns::referenced_names;
use ratchet_sql::ident_if_needed as quote_ident;

use crate::converter::{unsupported, Conv, Converter, Unsupported};
use crate::deparse::deparse_expr_opt;
use crate::index::storage_parameters;
use crate::names::{names, object_name, or_default, table_name};

impl Converter<'_> {
    pub(crate) fn drop_constraint(&mut self, table: &str, name: &str) -> Operation {
        let key = (table.to_string(), name.to_string());
        let Some(columns) = self.known.constraints.get(&key) else {
            return Operation::DropConstraint(DropConstraint {
                table: table.to_string(),
                name: name.to_string(),
                up: None,
                down: None,
            });
        };
        Operation::DropMulticolumnConstraint(DropMulticolumnConstraint {
            table: table.to_string(),
            name: name.to_string(),
            up: identity_map(columns),
            down: identity_map(columns),
        })
    }

    pub(crate) fn add_constraint(
        &mut self,
        table: &str,
        c: &protobuf::Constraint,
    ) -> Conv<Operation> {
        let shape = self.constraint_shape(table, c)?;
        if c.skip_validation {
            self.review(
                "`NOT VALID` dropped: ratchet adds the constraint NOT VALID and validates it in a \
                 separate step by itself",
            );
        }
        // Identity `up`/`down`: existing values are kept, and rows that violate the
        // constraint stop the migration, exactly as the SQL would fail.
        let (up, down) = (identity_map(&shape.columns), identity_map(&shape.columns));
        Ok(Operation::CreateConstraint(CreateConstraint {
            table: table.to_string(),
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
            up,
            down,
        }))
    }

    /// The parts of a table-level constraint shared by CREATE TABLE and ADD CONSTRAINT.
    pub(crate) fn constraint_shape(
        &mut self,
        table: &str,
        c: &protobuf::Constraint,
    ) -> Conv<Shape> {
        use protobuf::ConstrType as C;
        if !c.indexname.is_empty() {
            return unsupported(
                "`USING INDEX` has no ratchet operation (create_constraint builds its own index concurrently)",
            );
        }
        let (type_, columns, suffix) = match c.contype() {
            C::ConstrCheck => {
                let columns = c
                    .raw_expr
                    .as_deref()
                    .map(referenced_names)
                    .unwrap_or_default();
                (ConstraintType::Check, columns, "check")
            }
            C::ConstrUnique => (ConstraintType::Unique, names(&c.keys)?, "key"),
            C::ConstrPrimary => (ConstraintType::PrimaryKey, names(&c.keys)?, "pkey"),
            C::ConstrForeign => (ConstraintType::ForeignKey, names(&c.fk_attrs)?, "fkey"),
            C::ConstrExclusion => {
                return unsupported("EXCLUDE constraints have no ratchet conversion yet");
            }
            _ => return unsupported("this kind of table constraint has no ratchet operation"),
        };
        let name = if c.conname.is_empty() {
            let name = default_constraint_name(table, &columns, type_, suffix);
            self.review(format!(
                "the constraint had no name; it is named `{name}`, as PostgreSQL would name it"
            ));
            name
        } else {
            c.conname.clone()
        };
        let check = match type_ {
            ConstraintType::Check => Some(deparse_expr_opt(c.raw_expr.as_deref())?),
            _ => None,
        };
        let references = match type_ {
            ConstraintType::ForeignKey => Some(table_fk(c)?),
            _ => None,
        };
        Ok(Shape {
            name,
            type_,
            columns,
            check,
            references,
            index_parameters: index_parameters(c)?,
        })
    }
}

/// A constraint's parts before they go into a `create_constraint` or a `create_table`.
pub(crate) struct Shape {
    pub(crate) name: String,
    pub(crate) type_: ConstraintType,
    pub(crate) columns: Vec<String>,
    pub(crate) check: Option<String>,
    pub(crate) references: Option<TableForeignKeyReference>,
    pub(crate) index_parameters: Option<IndexParameters>,
}

pub(crate) fn identity_map<M: FromIterator<(String, String)>>(columns: &[String]) -> M {
    columns
        .iter()
        .map(|c| (c.clone(), quote_ident(c)))
        .collect()
}

fn default_constraint_name(
    table: &str,
    columns: &[String],
    type_: ConstraintType,
    suffix: &str,
) -> String {
    match type_ {
        ConstraintType::PrimaryKey => object_name(table, "", suffix),
        // CHECK constraints are named after their first column only.
        ConstraintType::Check => {
            object_name(table, columns.first().map_or("", String::as_str), suffix)
        }
        _ => object_name(table, &columns.join("_"), suffix),
    }
}

pub(crate) fn no_index_options(c: &protobuf::Constraint) -> Conv<()> {
    if !c.indexname.is_empty()
        || !c.including.is_empty()
        || !c.options.is_empty()
        || !c.indexspace.is_empty()
    {
        return unsupported(
            "column PRIMARY KEY/UNIQUE with index options has no ratchet equivalent",
        );
    }
    Ok(())
}

fn index_parameters(c: &protobuf::Constraint) -> Conv<Option<IndexParameters>> {
    if c.including.is_empty() && c.options.is_empty() && c.indexspace.is_empty() {
        return Ok(None);
    }
    Ok(Some(IndexParameters {
        include_columns: names(&c.including)?,
        storage_parameters: storage_parameters(&c.options)?,
        tablespace: (!c.indexspace.is_empty()).then(|| c.indexspace.clone()),
    }))
}

/// PostgreSQL's one-letter foreign key action codes.
fn fk_action(code: &str) -> Conv<Option<String>> {
    Ok(match code {
        "" | "a" => None,
        "r" => Some("RESTRICT".into()),
        "c" => Some("CASCADE".into()),
        "n" => Some("SET NULL".into()),
        "d" => Some("SET DEFAULT".into()),
        _ => return unsupported("unknown foreign key action"),
    })
}

fn fk_match(code: &str) -> Conv<Option<String>> {
    Ok(match code {
        "" | "s" => None,
        "f" => Some("FULL".into()),
        _ => return unsupported("MATCH PARTIAL is not implemented by PostgreSQL"),
    })
}

fn referenced_table(c: &protobuf::Constraint) -> Conv<String> {
    let table = table_name(c.pktable.as_ref())?;
    if c.pk_attrs.is_empty() {
        return unsupported(
            "the foreign key references the primary key implicitly; name the referenced columns",
        );
    }
    Ok(table)
}

fn table_fk(c: &protobuf::Constraint) -> Conv<TableForeignKeyReference> {
    Ok(TableForeignKeyReference {
        table: referenced_table(c)?,
        columns: names(&c.pk_attrs)?,
        on_delete: fk_action(&c.fk_del_action)?,
        on_update: fk_action(&c.fk_upd_action)?,
        match_type: fk_match(&c.fk_matchtype)?,
        on_delete_set_columns: names(&c.fk_del_set_cols)?,
    })
}

pub(crate) fn column_fk(
    table: &str,
    column: &str,
    c: &protobuf::Constraint,
) -> Conv<ForeignKeyReference> {
    let referenced = referenced_table(c)?;
    let [target] = names(&c.pk_attrs)?
        .try_into()
        .map_err(|_| Unsupported("a column REFERENCES must name exactly one column".to_string()))?;
    if !c.fk_del_set_cols.is_empty() {
        return unsupported("`ON DELETE SET NULL (columns)` on a column reference");
    }
    Ok(ForeignKeyReference {
        name: or_default(&c.conname, || object_name(table, column, "fkey")),
        table: referenced,
        column: target,
        on_delete: fk_action(&c.fk_del_action)?,
        on_update: fk_action(&c.fk_upd_action)?,
        match_type: fk_match(&c.fk_matchtype)?,
        deferrable: c.deferrable,
        initially_deferred: c.initdeferred,
    })
}
