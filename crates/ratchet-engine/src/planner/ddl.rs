//! SQL text for column definitions and constraints, from the file model.
//!
//! Names are always quoted; types, defaults and check expressions are the user's SQL and
//! are checked by the parser (see `fragment`) before they get here.

use ratchet_spec::{
    Column, ConstraintType, ExcludeConstraint, ForeignKeyReference, IndexParameters,
    TableConstraint, TableForeignKeyReference,
};

use crate::sql::{ident, ident_list, qualified};

/// `ON DELETE …` / `ON UPDATE …` / `MATCH …` / `DEFERRABLE` clauses.
fn fk_tail(
    on_delete: Option<&str>,
    on_update: Option<&str>,
    match_type: Option<&str>,
    deferrable: bool,
    initially_deferred: bool,
) -> String {
    let mut s = String::new();
    if let Some(m) = match_type {
        s.push_str(&format!(" MATCH {}", m.to_uppercase()));
    }
    if let Some(a) = on_delete {
        s.push_str(&format!(" ON DELETE {}", a.to_uppercase()));
    }
    if let Some(a) = on_update {
        s.push_str(&format!(" ON UPDATE {}", a.to_uppercase()));
    }
    s.push_str(&deferrable_clause(deferrable, initially_deferred));
    s
}

fn deferrable_clause(deferrable: bool, initially_deferred: bool) -> String {
    match (deferrable, initially_deferred) {
        (true, true) => " DEFERRABLE INITIALLY DEFERRED".into(),
        (true, false) => " DEFERRABLE".into(),
        _ => String::new(),
    }
}

/// `REFERENCES "s"."t" ("c") …` for a single-column reference; `table` and `column` are
/// physical names.
pub fn column_reference(
    schema: &str,
    table: &str,
    column: &str,
    r: &ForeignKeyReference,
) -> String {
    format!(
        "REFERENCES {} ({}){}",
        qualified(schema, table),
        ident(column),
        fk_tail(
            r.on_delete.as_deref(),
            r.on_update.as_deref(),
            r.match_type.as_deref(),
            r.deferrable,
            r.initially_deferred
        )
    )
}

/// A column definition for CREATE TABLE / ADD COLUMN. `inline_pk` puts PRIMARY KEY on the
/// column (a single-column key); `reference` is the REFERENCES clause already resolved.
pub fn column_definition(c: &Column, inline_pk: bool, reference: Option<String>) -> String {
    let mut s = format!("{} {}", ident(&c.name), c.type_);
    if let Some(g) = &c.generated {
        if let Some(e) = &g.expression {
            let kind = if g.is_virtual { "VIRTUAL" } else { "STORED" };
            s.push_str(&format!(" GENERATED ALWAYS AS ({e}) {kind}"));
        }
        if let Some(i) = &g.identity {
            let kind = i
                .user_specified_values
                .as_deref()
                .unwrap_or("BY DEFAULT")
                .to_uppercase();
            s.push_str(&format!(" GENERATED {kind} AS IDENTITY"));
            if let Some(o) = &i.sequence_options {
                s.push_str(&format!(" ({o})"));
            }
        }
    }
    if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if !c.nullable || c.pk {
        s.push_str(" NOT NULL");
    }
    if inline_pk {
        s.push_str(" PRIMARY KEY");
    }
    if c.unique {
        s.push_str(" UNIQUE");
    }
    if let Some(ch) = &c.check {
        s.push_str(&format!(
            " CONSTRAINT {} CHECK ({}){}",
            ident(&ch.name),
            ch.constraint,
            if ch.no_inherit { " NO INHERIT" } else { "" }
        ));
    }
    if let (Some(r), Some(clause)) = (&c.references, reference) {
        s.push_str(&format!(" CONSTRAINT {} {clause}", ident(&r.name)));
    }
    s
}

fn index_parameters(p: Option<&IndexParameters>) -> String {
    let Some(p) = p else {
        return String::new();
    };
    let mut s = String::new();
    if !p.include_columns.is_empty() {
        s.push_str(&format!(" INCLUDE ({})", ident_list(&p.include_columns)));
    }
    if let Some(sp) = &p.storage_parameters {
        s.push_str(&format!(" WITH ({sp})"));
    }
    if let Some(ts) = &p.tablespace {
        s.push_str(&format!(" USING INDEX TABLESPACE {}", ident(ts)));
    }
    s
}

fn exclude_clause(e: &ExcludeConstraint) -> String {
    let mut s = format!("EXCLUDE USING {} ({})", e.index_method, e.elements);
    if let Some(p) = &e.predicate {
        s.push_str(&format!(" WHERE ({p})"));
    }
    s
}

/// A table constraint to write (after `CONSTRAINT name`), with physical column names and
/// the referenced table already resolved to its physical name.
#[derive(Debug, Clone, Copy)]
pub struct ConstraintDef<'a> {
    pub type_: ConstraintType,
    pub columns: &'a [String],
    pub check: Option<&'a str>,
    /// The referenced table (quoted), the reference, and its physical columns.
    pub references: Option<(&'a str, &'a TableForeignKeyReference, &'a [String])>,
    pub exclude: Option<&'a ExcludeConstraint>,
    pub index_params: Option<&'a IndexParameters>,
    pub nulls_not_distinct: bool,
    pub deferrable: bool,
    pub initially_deferred: bool,
    pub no_inherit: bool,
}

impl<'a> ConstraintDef<'a> {
    /// A constraint of `type_` over `columns`, every option off.
    pub fn new(type_: ConstraintType, columns: &'a [String]) -> ConstraintDef<'a> {
        ConstraintDef {
            type_,
            columns,
            check: None,
            references: None,
            exclude: None,
            index_params: None,
            nulls_not_distinct: false,
            deferrable: false,
            initially_deferred: false,
            no_inherit: false,
        }
    }

    /// `DEFERRABLE [INITIALLY DEFERRED]` as given.
    pub fn deferrable(self, deferrable: bool, initially_deferred: bool) -> ConstraintDef<'a> {
        ConstraintDef {
            deferrable,
            initially_deferred,
            ..self
        }
    }

    /// The constraint's SQL. Err names what a foreign key or an exclusion constraint
    /// lacks (the migration file's checks refuse that earlier).
    pub fn body(&self) -> Result<String, String> {
        let deferrable = deferrable_clause(self.deferrable, self.initially_deferred);
        Ok(match self.type_ {
            ConstraintType::Unique => format!(
                "UNIQUE{} ({}){}{deferrable}",
                if self.nulls_not_distinct {
                    " NULLS NOT DISTINCT"
                } else {
                    ""
                },
                ident_list(self.columns),
                index_parameters(self.index_params),
            ),
            ConstraintType::PrimaryKey => format!(
                "PRIMARY KEY ({}){}{deferrable}",
                ident_list(self.columns),
                index_parameters(self.index_params),
            ),
            ConstraintType::Check => format!(
                "CHECK ({}){}",
                self.check.unwrap_or("true"),
                if self.no_inherit { " NO INHERIT" } else { "" }
            ),
            ConstraintType::ForeignKey => {
                let Some((table, r, ref_cols)) = self.references else {
                    return Err("a foreign_key constraint needs `references`".into());
                };
                let mut on_delete = r.on_delete.clone();
                if let (Some(a), false) = (&on_delete, r.on_delete_set_columns.is_empty()) {
                    on_delete = Some(format!("{a} ({})", ident_list(&r.on_delete_set_columns)));
                }
                format!(
                    "FOREIGN KEY ({}) REFERENCES {table} ({}){}",
                    ident_list(self.columns),
                    ident_list(ref_cols),
                    fk_tail(
                        on_delete.as_deref(),
                        r.on_update.as_deref(),
                        r.match_type.as_deref(),
                        self.deferrable,
                        self.initially_deferred
                    )
                )
            }
            ConstraintType::Exclude => {
                let Some(e) = self.exclude else {
                    return Err("an exclude constraint needs `exclude`".into());
                };
                format!(
                    "{}{}{deferrable}",
                    exclude_clause(e),
                    index_parameters(self.index_params),
                )
            }
        })
    }
}

/// A `create_table` constraint as a table-constraint clause.
pub fn table_constraint(
    c: &TableConstraint,
    ref_table: Option<&str>,
    ref_cols: &[String],
) -> Result<String, String> {
    let references = match (&c.references, ref_table) {
        (Some(r), Some(t)) => Some((t, r, ref_cols)),
        _ => None,
    };
    let def = ConstraintDef {
        check: c.check.as_deref(),
        references,
        exclude: c.exclude.as_ref(),
        index_params: c.index_parameters.as_ref(),
        nulls_not_distinct: c.nulls_not_distinct,
        no_inherit: c.no_inherit,
        ..ConstraintDef::new(c.type_, &c.columns).deferrable(c.deferrable, c.initially_deferred)
    };
    Ok(format!("CONSTRAINT {} {}", ident(&c.name), def.body()?))
}

#[cfg(test)]
mod constraint_def_tests {
    use super::*;

    #[test]
    fn a_constraint_def_writes_its_clause_and_names_what_it_lacks() {
        let cols = vec!["email".to_string(), "Tenant".to_string()];
        let def = ConstraintDef {
            nulls_not_distinct: true,
            ..ConstraintDef::new(ConstraintType::Unique, &cols).deferrable(true, true)
        };
        assert_eq!(
            def.body().unwrap(),
            "UNIQUE NULLS NOT DISTINCT (\"email\", \"Tenant\") DEFERRABLE INITIALLY DEFERRED"
        );
        let fk = ConstraintDef::new(ConstraintType::ForeignKey, &cols);
        assert_eq!(
            fk.body().unwrap_err(),
            "a foreign_key constraint needs `references`"
        );
        let check = ConstraintDef {
            check: Some("length(email) > 3"),
            no_inherit: true,
            ..ConstraintDef::new(ConstraintType::Check, &cols)
        };
        assert_eq!(
            check.body().unwrap(),
            "CHECK (length(email) > 3) NO INHERIT"
        );
    }
}
