//! `rename_column`: a new name in the new version's views; the column is renamed at complete.

use ratchet_spec::RenameColumn;

use crate::error::EngineError;
use crate::planner::{check_ident_len, Planner};

impl Planner<'_> {
    pub(super) fn rename_column(&mut self, o: &RenameColumn) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = self.column(&t, &o.from)?.clone();
        if o.from == o.to {
            return Err(self.invalid("`from` and `to` are the same name", "nothing to rename"));
        }
        if t.columns.iter().any(|x| x.logical == o.to && !x.hidden) {
            return Err(self.invalid(
                format!("column `{}` already exists in table `{}`", o.to, o.table),
                "choose another name",
            ));
        }
        check_ident_len(&o.to).map_err(|m| self.invalid(m, "use a shorter name"))?;
        if t.columns.iter().any(|x| x.physical == o.to && x.hidden) {
            return Err(self.unsupported(
                "rename_column onto the name of a column dropped in the same migration",
                "drop the column in one migration and rename in the next",
            ));
        }
        let tm = self.table_mut(&o.table);
        if let Some(col) = tm
            .columns
            .iter_mut()
            .find(|x| x.logical == o.from && !x.hidden)
        {
            col.logical = o.to.clone();
        }
        self.rename_column_at_complete(&t.physical, &c.physical, &o.to);
        Ok(())
    }
}
