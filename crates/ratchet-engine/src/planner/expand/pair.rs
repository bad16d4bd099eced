//! The dual-write pair of one duplicate (or one side of it): `up` and `down` checked
//! against the versions' columns, the new column, the triggers, and their abort.

use crate::dualwrite::trigger_name;
use crate::error::EngineError;
use crate::fragment;
use crate::plan::{Pair, Phase, Statement, ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE};
use crate::planner::expand::Sides;
use crate::planner::{did_you_mean, Planner, VTable};
use crate::sql::ident;

impl Planner<'_> {
    /// Add the dual-write pair for one duplicate (or one side), and the abort bookkeeping
    /// common to all of them; the statements of the start transaction go to `tx1`.
    pub(in crate::planner) fn push_pair(
        &mut self,
        t: &VTable,
        sides: Sides<'_>,
        new_names: Vec<(String, String)>,
        tx1: &mut Vec<Statement>,
    ) -> Result<Pair, EngineError> {
        let Sides { old, new, up, down } = self.check_sides(t, sides, &new_names)?;
        let key = self.key_of(t);
        let pair = Pair {
            schema: self.schema.clone(),
            table: t.physical.clone(),
            old: old.map(str::to_string),
            new: new.map(|(n, _)| n.to_string()),
            up: up.map(str::to_string),
            down: down.map(str::to_string),
            old_names: Self::names(t),
            new_names,
            name: trigger_name(&t.physical, new.map(|(n, _)| n).or(old).unwrap_or_default()),
            keyed: !key.is_empty(),
        };
        self.pair_statements(t, &pair, new, tx1)?;
        self.push_pair_abort(t, &pair, new);
        Ok(pair)
    }

    /// `up` and `down` parsed, and every column they name found in the version they read
    /// (`up` the old one, `down` the new one). A `down` naming a column the new version
    /// does not have is left out, with a warning, when the migration completes at once.
    fn check_sides<'s>(
        &mut self,
        t: &VTable,
        mut sides: Sides<'s>,
        new_names: &[(String, String)],
    ) -> Result<Sides<'s>, EngineError> {
        if let Some(u) = sides.up {
            self.expr("up", u)?;
        }
        if let Some(d) = sides.down {
            self.expr("down", d)?;
        }
        if let Some(up) = sides.up {
            self.check_side_refs(t, "up", up, &Self::names(t))?;
        }
        if let Some(down) = sides.down {
            if !self.check_side_refs(t, "down", down, new_names)? {
                sides.down = None;
            }
        }
        Ok(sides)
    }

    /// Whether every column `expr` names is one of `names`; `Ok(false)` when `down` must be
    /// left out (see [`Planner::check_sides`]).
    fn check_side_refs(
        &mut self,
        t: &VTable,
        what: &str,
        expr: &str,
        names: &[(String, String)],
    ) -> Result<bool, EngineError> {
        let known: Vec<&str> = names.iter().map(|(l, _)| l.as_str()).collect();
        // Inside a subquery an unqualified name may be a column of the subquery's own
        // tables: PostgreSQL resolves it when the expression is compiled in the start
        // transaction (see `pair_statements`).
        let subquery = fragment::has_subquery(expr);
        for (n, _, _) in fragment::column_refs(expr).unwrap_or_default() {
            if known.contains(&n.as_str()) {
                continue;
            }
            if subquery {
                self.warnings.push(format!(
                    "{}: `{what}` of {} refers to `{n}`, which is not a column of that version \
                     of the table; it must be a column of a table in its subquery",
                    self.location(),
                    t.logical
                ));
                continue;
            }
            if what == "down" && self.input.completes_at_once {
                // No new-version write can run before complete: `down` would never run.
                self.warnings.push(format!(
                    "{}: `down` of {} refers to `{n}`, which is not a column of the new version \
                     of the table; left out, since the migration completes at once (without \
                     --complete this is an error)",
                    self.location(),
                    t.logical
                ));
                return Ok(false);
            }
            let side = if what == "up" { "old" } else { "new" };
            return Err(self.invalid(
                format!(
                    "`{what}` of {} refers to `{n}`, which is not a column of the {side} version of the table",
                    t.logical
                ),
                format!(
                    "{} (`{what}` reads the {side} version's columns)",
                    did_you_mean(&n, &known, "columns")
                ),
            ));
        }
        Ok(true)
    }

    /// The new column, the triggers, and `up`/`down` compiled against the table: all in
    /// the start transaction `tx1`.
    fn pair_statements(
        &self,
        t: &VTable,
        pair: &Pair,
        new: Option<(&str, &str)>,
        tx1: &mut Vec<Statement>,
    ) -> Result<(), EngineError> {
        let qt = self.q(&t.physical);
        if let Some((n, ty)) = new {
            tx1.push(Statement::new(
                format!("ALTER TABLE {qt} ADD COLUMN {} {ty}", ident(n)),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            ));
        }
        for sql in pair
            .create_sql()
            .map_err(|e| self.invalid(e, "check `up` and `down`"))?
        {
            tx1.push(Statement::new(
                sql,
                vec![self.lock(SHARE_ROW_EXCLUSIVE, &t.physical)],
            ));
        }
        // Compile `up` and `down` against the table inside the start transaction: a wrong
        // type, function or operator fails here, before any trigger that cannot run is
        // installed (not at the first write).
        for (what, sql) in [("up", pair.up_sql("r.")), ("down", pair.down_sql("r."))] {
            let sql = sql.map_err(|e| self.invalid(e, format!("check `{what}`")))?;
            if let Some(e) = sql {
                tx1.push(Statement::new(
                    format!("SELECT {e} FROM {qt} AS r WHERE false"),
                    vec![],
                ));
            }
        }
        Ok(())
    }

    /// Abort drops the triggers and the new column.
    fn push_pair_abort(&mut self, t: &VTable, pair: &Pair, new: Option<(&str, &str)>) {
        let qt = self.q(&t.physical);
        let mut abort = pair
            .drop_sql()
            .into_iter()
            .map(|s| Statement::new(s, vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)]))
            .collect::<Vec<_>>();
        if let Some((n, _)) = new {
            abort.push(Statement::new(
                format!(
                    "ALTER TABLE IF EXISTS {qt} DROP COLUMN IF EXISTS {}",
                    ident(n)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            ));
        }
        self.abort.push(self.tx(
            Phase::Abort,
            format!("drop the dual writes of {}", t.logical),
            abort,
        ));
    }
}
