//! `create_table`: a new table, nothing uses it yet, so it is created as written.

use ratchet_spec::CreateTable;

use crate::error::EngineError;
use crate::plan::{Lock, Phase, Statement, ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE};
use crate::planner::ddl::{column_definition, column_reference, table_constraint};
use crate::planner::{check_ident_len, Planner, VColumn, VTable};
use crate::sql::{ident, literal};

impl Planner<'_> {
    pub(super) fn create_table(&mut self, o: &CreateTable) -> Result<(), EngineError> {
        self.ensure_table_name_free(&o.name)?;
        let mut locks = Vec::new();
        let mut defs = self.column_definitions(o, &mut locks)?;
        self.table_constraints(o, &mut defs, &mut locks)?;
        let qt = self.q(&o.name);
        let mut stmts = vec![Statement::new(
            format!("CREATE TABLE {qt} (\n  {}\n)", defs.join(",\n  ")),
            locks,
        )];
        if let Some(c) = &o.comment {
            stmts.push(Statement::new(
                format!("COMMENT ON TABLE {qt} IS {}", literal(c)),
                vec![],
            ));
        }
        for c in o.columns.iter().filter(|c| c.comment.is_some()) {
            stmts.push(Statement::new(
                format!(
                    "COMMENT ON COLUMN {qt}.{} IS {}",
                    ident(&c.name),
                    literal(c.comment.as_deref().unwrap_or_default())
                ),
                vec![],
            ));
        }
        self.start
            .push(self.tx(Phase::Start, format!("create table {}", o.name), stmts));
        self.abort.push(self.tx(
            Phase::Abort,
            format!("drop table {}", o.name),
            vec![Statement::new(
                format!("DROP TABLE IF EXISTS {qt}"),
                vec![self.lock(ACCESS_EXCLUSIVE, &o.name)],
            )],
        ));
        self.tables.push(VTable {
            physical: o.name.clone(),
            logical: o.name.clone(),
            hidden: false,
            created: true,
            columns: o
                .columns
                .iter()
                .map(|c| VColumn {
                    physical: c.name.clone(),
                    logical: c.name.clone(),
                    hidden: false,
                    type_name: c.type_.clone(),
                    not_null: !c.nullable || c.pk,
                    has_default: c.default.is_some() || c.generated.is_some(),
                    replaces: None,
                })
                .collect(),
        });
        Ok(())
    }

    /// Each column's definition (an inline PRIMARY KEY for a single-column key), then the
    /// table's PRIMARY KEY over several columns; the locks the references take go to
    /// `locks`.
    fn column_definitions(
        &self,
        o: &CreateTable,
        locks: &mut Vec<Lock>,
    ) -> Result<Vec<String>, EngineError> {
        let pk: Vec<&str> = o
            .columns
            .iter()
            .filter(|c| c.pk)
            .map(|c| c.name.as_str())
            .collect();
        let mut defs = Vec::new();
        for c in &o.columns {
            self.column_fragments(c)?;
            let reference = match &c.references {
                Some(r) => {
                    let (t, col) = self.resolve_reference(&r.table, &r.column)?;
                    locks.push(self.lock(SHARE_ROW_EXCLUSIVE, &t));
                    Some(column_reference(&self.schema, &t, &col, r))
                }
                None => None,
            };
            defs.push(column_definition(c, pk.len() == 1 && c.pk, reference));
        }
        if pk.len() > 1 {
            defs.push(format!(
                "PRIMARY KEY ({})",
                pk.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(defs)
    }

    /// The table constraints, checked against the table's columns.
    fn table_constraints(
        &self,
        o: &CreateTable,
        defs: &mut Vec<String>,
        locks: &mut Vec<Lock>,
    ) -> Result<(), EngineError> {
        let names: Vec<&str> = o.columns.iter().map(|c| c.name.as_str()).collect();
        for k in &o.constraints {
            check_ident_len(&k.name).map_err(|m| self.invalid(m, "use a shorter name"))?;
            for col in &k.columns {
                if !names.contains(&col.as_str()) {
                    return Err(self.invalid(
                        format!(
                            "constraint `{}` names column `{col}`, which table `{}` does not have",
                            k.name, o.name
                        ),
                        format!("columns of `{}`: {}", o.name, names.join(", ")),
                    ));
                }
            }
            if let Some(ch) = &k.check {
                self.expr("check", ch)?;
            }
            let (ref_table, ref_cols) = match &k.references {
                Some(r) => {
                    let t = self.table(&r.table)?;
                    let mut cols = Vec::new();
                    for c in &r.columns {
                        cols.push(self.column(t, c)?.physical.clone());
                    }
                    locks.push(self.lock(SHARE_ROW_EXCLUSIVE, &t.physical));
                    (Some(self.q(&t.physical)), cols)
                }
                None => (None, vec![]),
            };
            defs.push(
                table_constraint(k, ref_table.as_deref(), &ref_cols).map_err(|e| {
                    self.invalid(e, "see the constraint's fields in docs/operations.md")
                })?,
            );
        }
        Ok(())
    }
}
