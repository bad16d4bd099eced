//! `drop_column`: hidden from the new version at once and dropped at complete; with `down`,
//! the old version's writes keep it filled meanwhile.

use ratchet_spec::DropColumn;

use crate::error::EngineError;
use crate::plan::{Phase, Statement, ACCESS_EXCLUSIVE};
use crate::planner::expand::{Sides, Work};
use crate::planner::Planner;
use crate::sql::ident;

impl Planner<'_> {
    pub(super) fn drop_column(&mut self, o: &DropColumn) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = self.column(&t, &o.column)?.clone();
        self.refuse_partition_key_column(&t, &c.physical, "dropping")?;
        if let Some(down) = &o.down {
            if !t.created {
                return self.drop_column_with_down(o, down);
            }
        }
        if c.not_null && !c.has_default && !t.created {
            return Err(self.invalid(
                format!("column `{}` is NOT NULL without a default: inserts through the new version could not fill it", o.column),
                "give `down:` to compute it for new-version writes, or make it nullable first",
            ));
        }
        if let Some(pk) = self.catalog_table(&t).and_then(|ct| ct.primary_key()) {
            if pk.columns.contains(&c.physical) {
                return Err(self.invalid(
                    format!(
                        "column `{}` is part of the primary key of `{}`",
                        o.column, o.table
                    ),
                    "drop or replace the primary key first (drop_constraint / create_constraint)",
                ));
            }
        }
        let tm = self.table_mut(&o.table);
        if let Some(col) = tm
            .columns
            .iter_mut()
            .find(|x| x.logical == o.column && !x.hidden)
        {
            col.hidden = true;
        }
        self.cancel_rename_at_complete(&t.physical, &c.physical);
        self.complete.push(self.tx(
            Phase::Complete,
            format!("drop column {}.{}", o.table, o.column),
            vec![Statement::new(
                format!(
                    "ALTER TABLE {} DROP COLUMN IF EXISTS {}",
                    self.q(&t.physical),
                    ident(&c.physical)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            )],
        ));
        Ok(())
    }

    pub(super) fn drop_column_with_down(
        &mut self,
        o: &DropColumn,
        down: &str,
    ) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = self.column(&t, &o.column)?.clone();
        let new_names: Vec<(String, String)> = Self::names(&t)
            .into_iter()
            .filter(|(l, _)| l != &o.column)
            .collect();
        let mut tx1 = Vec::new();
        let sides = Sides {
            old: Some(&c.physical),
            new: None,
            up: None,
            down: Some(down),
        };
        let pair = self.push_pair(&t, sides, new_names, &mut tx1)?;
        // A default on the dropped column would fill it for rows the new version inserts
        // (its views do not show the column), and `down` would never run for them: the
        // table loses the default during the expand (the old version's views keep their
        // own copy of it), and abort puts it back.
        let default = self
            .catalog_table(&t)
            .and_then(|ct| ct.column(&c.physical))
            .and_then(|ci| ci.default.clone());
        if let Some(d) = default {
            let qt = self.q(&t.physical);
            let lock = vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)];
            tx1.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ALTER COLUMN {} DROP DEFAULT",
                    ident(&c.physical)
                ),
                lock.clone(),
            ));
            let restore = Statement::new(
                format!(
                    "ALTER TABLE IF EXISTS {qt} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(&c.physical)
                ),
                lock,
            );
            self.abort.push(self.tx(
                Phase::Abort,
                format!("restore the default of {}.{}", o.table, o.column),
                vec![restore],
            ));
        }
        self.push_expand(
            &t,
            &format!("drop column {}.{}", o.table, o.column),
            tx1,
            std::slice::from_ref(&pair),
        );
        self.push_work(
            &t,
            &format!("drop column {}.{}", o.table, o.column),
            Work::default(),
            &[pair],
            std::slice::from_ref(&c.physical),
        )?;
        self.cancel_rename_at_complete(&t.physical, &c.physical);
        if let Some(col) = self
            .table_mut(&o.table)
            .columns
            .iter_mut()
            .find(|x| x.logical == o.column && !x.hidden)
        {
            col.hidden = true;
        }
        Ok(())
    }
}
