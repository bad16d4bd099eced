//! `rename_constraint`.

use ratchet_spec::RenameConstraint;

use crate::error::EngineError;
use crate::plan::{Phase, Statement, ACCESS_EXCLUSIVE};
use crate::planner::{check_ident_len, did_you_mean, Planner};
use crate::sql::ident;

impl Planner<'_> {
    pub(super) fn rename_constraint(&mut self, o: &RenameConstraint) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let exists = self
            .catalog_table(&t)
            .is_some_and(|ct| ct.constraints.iter().any(|k| k.name == o.from));
        if !exists {
            let known: Vec<String> = self
                .catalog_table(&t)
                .map(|ct| ct.constraints.iter().map(|k| k.name.clone()).collect())
                .unwrap_or_default();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(self.invalid(
                format!("table `{}` has no constraint `{}`", o.table, o.from),
                did_you_mean(&o.from, &known, "constraints"),
            ));
        }
        let taken = self
            .catalog_table(&t)
            .is_some_and(|ct| ct.constraints.iter().any(|k| k.name == o.to));
        if taken || o.from == o.to {
            return Err(self.invalid(
                format!("table `{}` already has a constraint `{}`", o.table, o.to),
                "choose another name",
            ));
        }
        check_ident_len(&o.to).map_err(|m| self.invalid(m, "use a shorter name"))?;
        self.complete.push(self.tx(
            Phase::Complete,
            format!("rename constraint {} to {}", o.from, o.to),
            vec![Statement::new(
                format!(
                    "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                    self.q(&t.physical),
                    ident(&o.from),
                    ident(&o.to)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            )],
        ));
        Ok(())
    }
}
