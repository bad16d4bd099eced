//! `drop_constraint` and `drop_multicolumn_constraint`: the constrained columns are
//! duplicated without the constraint, with `up`/`down` between them.

use indexmap::IndexMap;
use ratchet_spec::{DropConstraint, DropMulticolumnConstraint};

use crate::error::EngineError;
use crate::plan::{Phase, Statement, ACCESS_EXCLUSIVE};
use crate::planner::expand::{temp_column, Dup, Work};
use crate::planner::{did_you_mean, Planner};
use crate::sql::ident;

impl Planner<'_> {
    pub(super) fn drop_constraint(&mut self, o: &DropConstraint) -> Result<(), EngineError> {
        let (cols, kind) = self.constraint_columns(&o.table, &o.name)?;
        if cols.len() != 1 {
            return Err(self.invalid(
                format!("constraint `{}` spans {} columns", o.name, cols.len()),
                "use drop_multicolumn_constraint with per-column up/down",
            ));
        }
        if kind == "n" {
            if o.up.is_some() || o.down.is_some() {
                self.warnings.push(format!(
                    "{}: `{}` is a not-null constraint, dropped in place at start (both versions accept every value): `up` and `down` are not used; remove them",
                    self.location(),
                    o.name
                ));
            }
            return self.drop_not_null_constraint(&o.table, &o.name, &cols[0]);
        }
        let mut up = IndexMap::new();
        let mut down = IndexMap::new();
        if let Some(u) = &o.up {
            up.insert(cols[0].clone(), u.clone());
        }
        if let Some(d) = &o.down {
            down.insert(cols[0].clone(), d.clone());
        }
        self.drop_constraint_cols(&o.table, &o.name, &cols, &up, &down)
    }

    /// A not-null constraint (named in the catalog on PostgreSQL 18): dropped in place at
    /// start, a metadata-only change, as `alter_column` with `nullable: true` does; every
    /// value of the column stays valid for both versions, so nothing is duplicated (`up`
    /// and `down` are not needed).
    fn drop_not_null_constraint(
        &mut self,
        table: &str,
        name: &str,
        column: &str,
    ) -> Result<(), EngineError> {
        let physical = self.table(table)?.physical.clone();
        let stmt = Statement::new(
            format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                self.q(&physical),
                ident(name)
            ),
            vec![self.lock(ACCESS_EXCLUSIVE, &physical)],
        );
        self.start.push(self.tx(
            Phase::Start,
            format!("drop not-null constraint {name} of {table}.{column} (metadata only)"),
            vec![stmt],
        ));
        if let Some(c) = self
            .table_mut(table)
            .columns
            .iter_mut()
            .find(|c| c.logical == column && !c.hidden)
        {
            c.not_null = false;
        }
        Ok(())
    }

    pub(super) fn drop_multicolumn_constraint(
        &mut self,
        o: &DropMulticolumnConstraint,
    ) -> Result<(), EngineError> {
        let (cols, _) = self.constraint_columns(&o.table, &o.name)?;
        self.drop_constraint_cols(&o.table, &o.name, &cols, &o.up, &o.down)
    }

    /// The logical columns of constraint `name` of `table`.
    pub(super) fn constraint_columns(
        &self,
        table: &str,
        name: &str,
    ) -> Result<(Vec<String>, String), EngineError> {
        let t = self.table(table)?;
        let Some(k) = self
            .catalog_table(t)
            .and_then(|ct| ct.constraints.iter().find(|k| k.name == name))
        else {
            let known: Vec<String> = self
                .catalog_table(t)
                .map(|ct| ct.constraints.iter().map(|k| k.name.clone()).collect())
                .unwrap_or_default();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(self.invalid(
                format!("table `{table}` has no constraint `{name}`"),
                did_you_mean(name, &known, "constraints"),
            ));
        };
        if k.kind == "p" {
            return Err(self.unsupported("dropping a primary key", "a table needs a key for batched backfills; replace it with create_constraint first"));
        }
        let cols = k
            .columns
            .iter()
            .map(|p| {
                t.columns
                    .iter()
                    .find(|c| &c.physical == p && !c.hidden)
                    .map(|c| c.logical.clone())
                    .unwrap_or(p.clone())
            })
            .collect();
        Ok((cols, k.kind.clone()))
    }

    pub(super) fn drop_constraint_cols(
        &mut self,
        table: &str,
        name: &str,
        cols: &[String],
        up: &IndexMap<String, String>,
        down: &IndexMap<String, String>,
    ) -> Result<(), EngineError> {
        let t = self.table(table)?.clone();
        let mut dups = Vec::new();
        for l in cols {
            let c = self.column(&t, l)?.clone();
            dups.push(Dup {
                logical: c.logical.clone(),
                old: c.physical.clone(),
                new: temp_column(&c.physical),
                new_type: c.type_name.clone(),
                up: up.get(l).cloned().unwrap_or(l.clone()),
                down: down.get(l).cloned().unwrap_or(l.clone()),
            });
        }
        self.duplicate(
            table,
            &format!("drop constraint {name}"),
            dups,
            Some(name),
            Work::default(),
        )
    }
}
