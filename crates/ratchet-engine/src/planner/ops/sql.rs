//! `sql`: the user's own statements, run as written, with the locks they take shown.

use ratchet_spec::Sql;

use crate::error::EngineError;
use crate::fragment;
use crate::plan::{Action, Phase, Statement};
use crate::planner::Planner;

impl Planner<'_> {
    pub(super) fn sql(&mut self, o: &Sql) -> Result<(), EngineError> {
        let phase = if o.on_complete {
            Phase::Complete
        } else {
            Phase::Start
        };
        let statements = fragment::split_statements(&o.up).map_err(|e| {
            self.invalid(
                format!("`up` is not valid SQL: {e}"),
                "fix the SQL; nothing was run",
            )
        })?;
        for s in statements {
            let locks = fragment::infer_locks(&s, &self.schema);
            let stmt = Statement::new(s.clone(), locks);
            let outside = fragment::needs_no_transaction(&s)
                || (fragment::is_enum_add_value(&s) && self.catalog().server_version_num < 120000);
            let step = if outside {
                self.step(
                    phase,
                    "raw SQL (outside a transaction)",
                    Action::NoTransaction { statement: stmt },
                )
            } else {
                self.tx(phase, "raw SQL", vec![stmt])
            };
            match phase {
                Phase::Complete => self.complete.push(step),
                _ => self.start.push(step),
            }
        }
        if let (Some(down), false) = (&o.down, o.on_complete) {
            fragment::split_statements(down).map_err(|e| {
                self.invalid(
                    format!("`down` is not valid SQL: {e}"),
                    "fix the SQL; nothing was run",
                )
            })?;
            let locks = fragment::infer_locks(down, &self.schema);
            self.abort.push(self.tx(
                Phase::Abort,
                "raw SQL `down`",
                vec![Statement::new(down.clone(), locks)],
            ));
        }
        Ok(())
    }
}
