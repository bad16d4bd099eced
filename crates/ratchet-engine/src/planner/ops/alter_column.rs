//! `alter_column`: a duplicate column for changes the data must be checked against (type,
//! NOT NULL, check, unique, foreign key), metadata in place otherwise.

use ratchet_spec::AlterColumn;

use crate::error::EngineError;
use crate::plan::{
    Lock, LockMode, Phase, Statement, ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE,
};
use crate::planner::ddl::column_reference;
use crate::planner::expand::{is_identity, omitted_not_null, temp_column, temp_name, Dup, Work};
use crate::planner::{Planner, VColumn, VTable};
use crate::sql::{ident, literal};

/// The column being altered and its duplicate, as the sub-steps below need them.
struct Altered<'a> {
    o: &'a AlterColumn,
    t: &'a VTable,
    c: &'a VColumn,
    /// The column's name in the new version.
    logical: &'a str,
    /// The duplicate's physical name.
    new: &'a str,
    /// The quoted table.
    qt: String,
    /// `schema.table`, as the locks name it.
    lt: String,
}

impl Altered<'_> {
    fn lock(&self, mode: LockMode) -> Vec<Lock> {
        vec![Lock::new(mode, self.lt.clone())]
    }
}

impl Planner<'_> {
    pub(super) fn alter_column(&mut self, o: &AlterColumn) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = self.column(&t, &o.column)?.clone();
        let logical = self.check_alter(o, &t)?;
        let becomes_not_null = o.nullable == Some(false) && !c.not_null;
        // A foreign key over the column's own values (no `up`, or `up` the column itself)
        // needs no duplicate: it is added NOT VALID and validated in place.
        let in_place_fk = is_identity(o.up.as_deref(), &o.column);
        let needs_dup = !t.created
            && (o.type_.is_some()
                || becomes_not_null
                || o.check.is_some()
                || o.unique.is_some()
                || (o.references.is_some() && !in_place_fk));
        if !needs_dup {
            return self.alter_metadata(o, &t, &c, &logical);
        }
        let new = temp_column(&c.physical);
        let a = Altered {
            o,
            t: &t,
            c: &c,
            logical: &logical,
            new: &new,
            qt: self.q(&t.physical),
            lt: format!("{}.{}", self.schema, t.physical),
        };
        let mut work = Work {
            drop_not_null: o.nullable == Some(true),
            ..Work::default()
        };
        if becomes_not_null {
            self.not_null_on_duplicate(&a, &mut work);
        }
        self.own_constraints_on_duplicate(&a, &mut work)?;
        let default = self.default_on_duplicate(&a, &mut work);
        self.comment_on_duplicate(&a, &mut work);
        let dup = Dup {
            logical: logical.clone(),
            old: c.physical.clone(),
            new: new.clone(),
            new_type: o.type_.clone().unwrap_or(c.type_name.clone()),
            up: o.up.clone().unwrap_or(o.column.clone()),
            down: o.down.clone().unwrap_or(logical.clone()),
        };
        self.duplicate(
            &o.table,
            &format!("alter column {}.{}", o.table, o.column),
            vec![dup],
            None,
            work,
        )?;
        self.view_defaults.push((o.table.clone(), logical, default));
        Ok(())
    }

    /// Something to change, a valid type, a free new name: the column's name in the new
    /// version.
    fn check_alter(&self, o: &AlterColumn, t: &VTable) -> Result<String, EngineError> {
        let unchanged = o.name.is_none()
            && o.type_.is_none()
            && o.nullable.is_none()
            && o.default.is_none()
            && o.comment.is_none()
            && o.check.is_none()
            && o.unique.is_none()
            && o.references.is_none();
        if unchanged {
            return Err(self.invalid("alter_column changes nothing", "give at least one of name, type, nullable, default, comment, check, unique, references"));
        }
        if let Some(ty) = &o.type_ {
            self.type_name(ty)?;
        }
        let logical = o.name.clone().unwrap_or(o.column.clone());
        if o.name.is_some() && t.columns.iter().any(|x| x.logical == logical && !x.hidden) {
            return Err(self.invalid(
                format!("column `{logical}` already exists in table `{}`", o.table),
                "choose another name",
            ));
        }
        Ok(logical)
    }

    /// NOT NULL on the duplicate, validated at complete; a warning when new-version
    /// inserts may leave the column out (only `up` fills it until complete).
    fn not_null_on_duplicate(&mut self, a: &Altered<'_>, work: &mut Work) {
        let o = a.o;
        let route = self.not_null_route(&a.t.physical, a.logical, Some(&a.c.physical));
        work.add_not_null(&a.qt, a.new, a.lock(ACCESS_EXCLUSIVE), route);
        let has_default = match &o.default {
            Some(d) => d.is_some(),
            None => self
                .catalog_table(a.t)
                .and_then(|ct| ct.column(&a.c.physical))
                .is_some_and(|ci| ci.default.is_some()),
        };
        if !has_default {
            self.warnings.push(omitted_not_null(&o.table, a.logical));
            self.count_omitted
                .push((o.table.clone(), a.logical.to_string()));
        }
    }

    /// The operation's own check, unique key and foreign key, over the duplicate.
    fn own_constraints_on_duplicate(
        &self,
        a: &Altered<'_>,
        work: &mut Work,
    ) -> Result<(), EngineError> {
        let (o, qt, new) = (a.o, &a.qt, a.new);
        let on_new = [
            (o.column.clone(), new.to_string()),
            (a.logical.to_string(), new.to_string()),
        ];
        if let Some(ch) = &o.check {
            self.expr("check", &ch.constraint)?;
            let e = self.rewrite(&ch.constraint, &on_new)?;
            work.check(qt, &ch.name, &e, a.lock(ACCESS_EXCLUSIVE));
        }
        if let Some(u) = &o.unique {
            self.refuse_unique_constraint_on_partitioned(a.t, "a unique constraint")?;
            let temp = temp_name(&u.name);
            let columns = format!("({})", ident(new));
            work.unique_key(
                qt,
                (&temp, &u.name, "UNIQUE"),
                &columns,
                a.lock(ACCESS_EXCLUSIVE),
            );
        }
        if let Some(r) = &o.references {
            let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
            let body = format!(
                "FOREIGN KEY ({}) {}",
                ident(new),
                column_reference(&self.schema, &rt, &rc, r)
            );
            let locks = vec![
                self.lock(SHARE_ROW_EXCLUSIVE, &a.t.physical),
                self.lock(SHARE_ROW_EXCLUSIVE, &rt),
            ];
            let temp = temp_name(&r.name);
            self.foreign_key_on_duplicates(
                work,
                &a.t.physical,
                (&temp, &r.name),
                &body,
                (locks, a.lock(ACCESS_EXCLUSIVE)),
                &rt,
            )?;
        }
        Ok(())
    }

    /// The default ends up on the duplicate: the new one, or the old one cast to the new
    /// type. A default kept across a type change is tried on the duplicate inside the
    /// start transaction (set and dropped again: the duplicate must stay without one while
    /// the old version writes), so a default the new type cannot take fails at start, not
    /// at complete (`default: null` drops it instead). Without it, inserts that leave the
    /// column out would work during the expand and fail after complete. Returns the
    /// default the new version's view shows.
    fn default_on_duplicate(&self, a: &Altered<'_>, work: &mut Work) -> Option<String> {
        let (o, qt, new) = (a.o, &a.qt, a.new);
        let default = match (&o.default, &o.type_) {
            (Some(d), _) => d.clone(),
            (None, ty) => self
                .catalog_table(a.t)
                .and_then(|ct| ct.column(&a.c.physical))
                .and_then(|ci| ci.default.clone())
                .map(|d| match ty {
                    Some(ty) => format!("CAST(({d}) AS {ty})"),
                    None => d,
                }),
        };
        if let (Some(d), Some(_), None) = (&default, &o.type_, &o.default) {
            for sql in [
                format!(
                    "ALTER TABLE {qt} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(new)
                ),
                format!("ALTER TABLE {qt} ALTER COLUMN {} DROP DEFAULT", ident(new)),
            ] {
                work.tx1.push(Statement::new(sql, a.lock(ACCESS_EXCLUSIVE)));
            }
        }
        if let Some(d) = &default {
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(new)
                ),
                a.lock(ACCESS_EXCLUSIVE),
            ));
        }
        default
    }

    /// The comment (the new one, or the original's) goes onto the duplicate at start.
    fn comment_on_duplicate(&self, a: &Altered<'_>, work: &mut Work) {
        let comment = match &a.o.comment {
            Some(cm) => cm.clone(),
            None => self
                .catalog_table(a.t)
                .and_then(|ct| ct.column(&a.c.physical))
                .and_then(|ci| ci.comment.clone()),
        };
        if let Some(cm) = comment {
            work.tx1.push(Statement::new(
                format!(
                    "COMMENT ON COLUMN {}.{} IS {}",
                    a.qt,
                    ident(a.new),
                    literal(&cm)
                ),
                vec![],
            ));
        }
    }

    /// alter_column without a duplicate: comment, default, rename, dropping NOT NULL, or
    /// any change to a table created in the same migration.
    fn alter_metadata(
        &mut self,
        o: &AlterColumn,
        t: &VTable,
        c: &VColumn,
        logical: &str,
    ) -> Result<(), EngineError> {
        let qt = self.q(&t.physical);
        let col = ident(&c.physical);
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: LockMode| vec![Lock::new(m, lt.clone())];
        let mut start = Vec::new();
        let mut complete = Vec::new();
        if let Some(cm) = &o.comment {
            let v = cm.as_deref().map(literal).unwrap_or("NULL".into());
            start.push(Statement::new(
                format!("COMMENT ON COLUMN {qt}.{col} IS {v}"),
                lock(SHARE_UPDATE_EXCLUSIVE),
            ));
        }
        if o.nullable == Some(true) && c.not_null {
            start.push(Statement::new(
                format!("ALTER TABLE {qt} ALTER COLUMN {col} DROP NOT NULL"),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        if t.created {
            self.alter_new_table_column(o, t, &col, &mut start)?;
        } else if let Some(d) = &o.default {
            if let Some(v) = d {
                self.expr("default", v)?;
            }
            // The new version sees the new default at once (on its view); the table gets it
            // at complete, so the old version keeps its own until then.
            let v = d
                .as_deref()
                .map(|d| format!("SET DEFAULT {d}"))
                .unwrap_or("DROP DEFAULT".into());
            complete.push(Statement::new(
                format!("ALTER TABLE {qt} ALTER COLUMN {col} {v}"),
                lock(ACCESS_EXCLUSIVE),
            ));
            self.view_defaults
                .push((o.table.clone(), logical.to_string(), d.clone()));
        }
        let what = format!("alter column {}.{}", o.table, o.column);
        if !start.is_empty() {
            self.start.push(self.tx(Phase::Start, what.clone(), start));
        }
        if let (false, Some(r)) = (t.created, &o.references) {
            let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
            let body = format!(
                "FOREIGN KEY ({col}) {}",
                column_reference(&self.schema, &rt, &rc, r)
            );
            self.foreign_key_in_place(&t.physical, &r.name, &body, &rt)?;
            self.built_on.push((
                t.physical.clone(),
                c.physical.clone(),
                format!("foreign key {}", r.name),
            ));
        }
        if !complete.is_empty() {
            self.complete
                .push(self.tx(Phase::Complete, what.clone(), complete));
        }
        if logical != o.column {
            self.rename_column_at_complete(&t.physical, &c.physical, logical);
            if let Some(x) = self
                .table_mut(&o.table)
                .columns
                .iter_mut()
                .find(|x| x.logical == o.column && !x.hidden)
            {
                x.logical = logical.to_string();
            }
        }
        Ok(())
    }

    /// On a table created by this migration nothing runs against it yet: every change is
    /// made directly, in the start transaction.
    fn alter_new_table_column(
        &self,
        o: &AlterColumn,
        t: &VTable,
        col: &str,
        start: &mut Vec<Statement>,
    ) -> Result<(), EngineError> {
        let qt = self.q(&t.physical);
        let lock = || vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)];
        if let Some(ty) = &o.type_ {
            start.push(Statement::new(
                format!("ALTER TABLE {qt} ALTER COLUMN {col} TYPE {ty}"),
                lock(),
            ));
        }
        if o.nullable == Some(false) {
            start.push(Statement::new(
                format!("ALTER TABLE {qt} ALTER COLUMN {col} SET NOT NULL"),
                lock(),
            ));
        }
        if let Some(ch) = &o.check {
            start.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} CHECK ({})",
                    ident(&ch.name),
                    ch.constraint
                ),
                lock(),
            ));
        }
        if let Some(u) = &o.unique {
            start.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} UNIQUE ({col})",
                    ident(&u.name)
                ),
                lock(),
            ));
        }
        if let Some(r) = &o.references {
            let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
            start.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} FOREIGN KEY ({col}) {}",
                    ident(&r.name),
                    column_reference(&self.schema, &rt, &rc, r)
                ),
                vec![
                    self.lock(SHARE_ROW_EXCLUSIVE, &t.physical),
                    self.lock(SHARE_ROW_EXCLUSIVE, &rt),
                ],
            ));
        }
        if let Some(d) = &o.default {
            let v = d
                .as_deref()
                .map(|d| format!("SET DEFAULT {d}"))
                .unwrap_or("DROP DEFAULT".into());
            start.push(Statement::new(
                format!("ALTER TABLE {qt} ALTER COLUMN {col} {v}"),
                lock(),
            ));
        }
        Ok(())
    }
}
