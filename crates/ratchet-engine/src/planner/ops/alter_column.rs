//! `alter_column`: a duplicate column for changes the data must be checked against (type,
//! NOT NULL, check, unique, foreign key), metadata in place otherwise.

use ratchet_spec::AlterColumn;

use crate::error::EngineError;
use crate::plan::{
    Lock, Phase, Statement, ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE,
};
use crate::planner::ddl::column_reference;
use crate::planner::expand::{is_identity, omitted_not_null, temp_column, temp_name, Dup, Work};
use crate::planner::{Planner, VColumn, VTable};
use crate::sql::{ident, literal};

impl Planner<'_> {
    pub(in crate::planner) fn alter_column(&mut self, o: &AlterColumn) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let c = self.column(&t, &o.column)?.clone();
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
        let qt = self.q(&t.physical);
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: &str| vec![Lock::new(m, lt.clone())];
        if !needs_dup {
            return self.alter_metadata(o, &t, &c, &logical);
        }
        let new = temp_column(&c.physical);
        let new_type = o.type_.clone().unwrap_or(c.type_name.clone());
        let mut work = Work {
            drop_not_null: o.nullable == Some(true),
            ..Work::default()
        };
        if becomes_not_null {
            work.not_null_check(&qt, &new, lock(ACCESS_EXCLUSIVE));
            let has_default = match &o.default {
                Some(d) => d.is_some(),
                None => self
                    .catalog_table(&t)
                    .and_then(|ct| ct.column(&c.physical))
                    .is_some_and(|ci| ci.default.is_some()),
            };
            if !has_default {
                self.warnings.push(omitted_not_null(&o.table, &logical));
                self.count_omitted.push((o.table.clone(), logical.clone()));
            }
        }
        // The operation's own constraints, over the duplicate.
        let on_new = [
            (o.column.clone(), new.clone()),
            (logical.clone(), new.clone()),
        ];
        if let Some(ch) = &o.check {
            self.expr("check", &ch.constraint)?;
            let e = self.rewrite(&ch.constraint, &on_new)?;
            work.check(&qt, &ch.name, &e, lock(ACCESS_EXCLUSIVE));
        }
        if let Some(u) = &o.unique {
            let temp = temp_name(&u.name);
            work.indexes.push((
                temp.clone(),
                format!(
                    "CREATE UNIQUE INDEX CONCURRENTLY {} ON {qt} ({})",
                    ident(&temp),
                    ident(&new)
                ),
            ));
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} UNIQUE USING INDEX {}",
                    ident(&u.name),
                    ident(&temp)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        if let Some(r) = &o.references {
            let (rt, rc) = self.resolve_reference(&r.table, &r.column)?;
            let temp = temp_name(&r.name);
            work.tx1.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ADD CONSTRAINT {} FOREIGN KEY ({}) {} NOT VALID",
                    ident(&temp),
                    ident(&new),
                    column_reference(&self.schema, &rt, &rc, r)
                ),
                vec![
                    self.lock(SHARE_ROW_EXCLUSIVE, &t.physical),
                    self.lock(SHARE_ROW_EXCLUSIVE, &rt),
                ],
            ));
            work.validate.push(temp.clone());
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} RENAME CONSTRAINT {} TO {}",
                    ident(&temp),
                    ident(&r.name)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        // Default and comment end up on the duplicate. A default kept across a type change
        // is tried on the duplicate inside the start transaction (set and dropped again:
        // the duplicate must stay without one while the old version writes), so a default
        // the new type cannot take fails at start, not at complete (`default: null` drops
        // it instead). Without it, inserts that leave the column out would work during
        // the expand and fail after complete.
        let default = match (&o.default, &o.type_) {
            (Some(d), _) => d.clone(),
            (None, ty) => self
                .catalog_table(&t)
                .and_then(|ct| ct.column(&c.physical))
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
                    ident(&new)
                ),
                format!("ALTER TABLE {qt} ALTER COLUMN {} DROP DEFAULT", ident(&new)),
            ] {
                work.tx1.push(Statement::new(sql, lock(ACCESS_EXCLUSIVE)));
            }
        }
        if let Some(d) = &default {
            work.finish.push(Statement::new(
                format!(
                    "ALTER TABLE {qt} ALTER COLUMN {} SET DEFAULT {d}",
                    ident(&new)
                ),
                lock(ACCESS_EXCLUSIVE),
            ));
        }
        let comment = match &o.comment {
            Some(cm) => cm.clone(),
            None => self
                .catalog_table(&t)
                .and_then(|ct| ct.column(&c.physical))
                .and_then(|ci| ci.comment.clone()),
        };
        if let Some(cm) = comment {
            work.tx1.push(Statement::new(
                format!("COMMENT ON COLUMN {qt}.{} IS {}", ident(&new), literal(&cm)),
                vec![],
            ));
        }
        let dup = Dup {
            logical: logical.clone(),
            old: c.physical.clone(),
            new: new.clone(),
            new_type,
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

    /// alter_column without a duplicate: comment, default, rename, dropping NOT NULL, or
    /// any change to a table created in the same migration.
    pub(in crate::planner) fn alter_metadata(
        &mut self,
        o: &AlterColumn,
        t: &VTable,
        c: &VColumn,
        logical: &str,
    ) -> Result<(), EngineError> {
        let qt = self.q(&t.physical);
        let col = ident(&c.physical);
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: &str| vec![Lock::new(m, lt.clone())];
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
        // On a table created by this migration nothing runs against it yet: change it directly.
        if t.created {
            if let Some(ty) = &o.type_ {
                start.push(Statement::new(
                    format!("ALTER TABLE {qt} ALTER COLUMN {col} TYPE {ty}"),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            if o.nullable == Some(false) {
                start.push(Statement::new(
                    format!("ALTER TABLE {qt} ALTER COLUMN {col} SET NOT NULL"),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            if let Some(ch) = &o.check {
                start.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} CHECK ({})",
                        ident(&ch.name),
                        ch.constraint
                    ),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            if let Some(u) = &o.unique {
                start.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} UNIQUE ({col})",
                        ident(&u.name)
                    ),
                    lock(ACCESS_EXCLUSIVE),
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
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
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
            self.foreign_key_in_place(&t.physical, &r.name, &body, &rt);
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
}
