//! `create_constraint`: on a new table as written; on an existing one over duplicates
//! (`NOT VALID` then validated, unique keys from concurrent indexes), or a foreign key over
//! the columns' own values in place.

use ratchet_spec::{ConstraintType, CreateConstraint, TableForeignKeyReference};

use crate::error::EngineError;
use crate::plan::{Lock, LockMode, Phase, Statement, ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE};
use crate::planner::ddl::ConstraintDef;
use crate::planner::expand::{is_identity, temp_column, temp_name, Dup, Work};
use crate::planner::{Planner, VColumn, VTable};
use crate::sql::{ident, ident_list};

/// The referenced side of a foreign key, resolved to physical names.
struct Referenced<'a> {
    /// The quoted referenced table.
    qt: String,
    r: &'a TableForeignKeyReference,
    /// Its physical key columns.
    columns: Vec<String>,
    /// Its physical name (for the locks).
    physical: String,
}

impl Planner<'_> {
    pub(super) fn create_constraint(&mut self, o: &CreateConstraint) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let mut cols = Vec::new();
        for c in &o.columns {
            cols.push(self.column(&t, c)?.clone());
        }
        if let Some(ch) = &o.check {
            self.expr("check", ch)?;
        }
        let refs = match &o.references {
            Some(r) => Some(self.referenced(r)?),
            None => None,
        };
        if t.created {
            return self.constraint_on_new_table(o, &t, &cols, refs.as_ref());
        }
        if o.type_ == ConstraintType::Exclude {
            return Err(self.unsupported(
                "create_constraint of type exclude on an existing table",
                "an exclusion constraint can be neither NOT VALID nor built concurrently; create a new table and copy the data",
            ));
        }
        if let (ConstraintType::ForeignKey, Some(rf)) = (o.type_, &refs) {
            let identity = cols.iter().all(|c| {
                is_identity(o.up.get(&c.logical).map(String::as_str), &c.logical)
                    && is_identity(o.down.get(&c.logical).map(String::as_str), &c.logical)
            });
            if identity {
                let phys: Vec<String> = cols.iter().map(|c| c.physical.clone()).collect();
                let body = fk_body(o, &phys, rf)
                    .map_err(|e| self.invalid(e, "add references: {table, columns}"))?;
                self.foreign_key_in_place(&t.physical, &o.name, &body, &rf.physical)?;
                for c in &phys {
                    self.built_on.push((
                        t.physical.clone(),
                        c.clone(),
                        format!("foreign key {}", o.name),
                    ));
                }
                return Ok(());
            }
        }
        let dups: Vec<Dup> = cols
            .iter()
            .map(|c| Dup {
                logical: c.logical.clone(),
                old: c.physical.clone(),
                new: temp_column(&c.physical),
                new_type: c.type_name.clone(),
                up: o.up.get(&c.logical).cloned().unwrap_or(c.logical.clone()),
                down: o.down.get(&c.logical).cloned().unwrap_or(c.logical.clone()),
            })
            .collect();
        let work = self.constraint_on_duplicates(o, &t, &dups, refs.as_ref())?;
        self.duplicate(
            &o.table,
            &format!("create constraint {}", o.name),
            dups,
            None,
            work,
        )
    }

    /// The referenced table and columns of a foreign key, checked and resolved.
    fn referenced<'r>(
        &self,
        r: &'r TableForeignKeyReference,
    ) -> Result<Referenced<'r>, EngineError> {
        let rt = self.table(&r.table)?.clone();
        let mut columns = Vec::new();
        for c in &r.columns {
            columns.push(self.column(&rt, c)?.physical.clone());
        }
        Ok(Referenced {
            qt: self.q(&rt.physical),
            r,
            columns,
            physical: rt.physical,
        })
    }

    /// On a table created by this migration: the constraint as written, at start.
    fn constraint_on_new_table(
        &mut self,
        o: &CreateConstraint,
        t: &VTable,
        cols: &[VColumn],
        refs: Option<&Referenced<'_>>,
    ) -> Result<(), EngineError> {
        let phys: Vec<String> = cols.iter().map(|c| c.physical.clone()).collect();
        let check = match &o.check {
            Some(ch) => Some(
                self.rewrite(
                    ch,
                    &cols
                        .iter()
                        .map(|c| (c.logical.clone(), c.physical.clone()))
                        .collect::<Vec<_>>(),
                )?,
            ),
            None => None,
        };
        let body = ConstraintDef {
            check: check.as_deref(),
            references: refs.map(|rf| (rf.qt.as_str(), rf.r, rf.columns.as_slice())),
            exclude: o.exclude.as_ref(),
            index_params: o.index_parameters.as_ref(),
            nulls_not_distinct: o.nulls_not_distinct,
            no_inherit: o.no_inherit,
            ..ConstraintDef::new(o.type_, &phys).deferrable(o.deferrable, o.initially_deferred)
        }
        .body()
        .map_err(|e| self.invalid(e, "see create_constraint in docs/operations.md"))?;
        let qt = self.q(&t.physical);
        self.start.push(self.tx(
            Phase::Start,
            format!("add constraint {} to new table {}", o.name, o.table),
            vec![Statement::new(
                format!("ALTER TABLE {qt} ADD CONSTRAINT {} {body}", ident(&o.name)),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            )],
        ));
        Ok(())
    }

    /// The constraint over the duplicates of its columns: a check or foreign key `NOT
    /// VALID` and validated at complete, a unique or primary key from a concurrent index
    /// build attached at complete.
    fn constraint_on_duplicates(
        &self,
        o: &CreateConstraint,
        t: &VTable,
        dups: &[Dup],
        refs: Option<&Referenced<'_>>,
    ) -> Result<Work, EngineError> {
        let qt = self.q(&t.physical);
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: LockMode| vec![Lock::new(m, lt.clone())];
        let new_cols: Vec<String> = dups.iter().map(|d| d.new.clone()).collect();
        let mut work = Work::default();
        let temp = temp_name(&o.name);
        match o.type_ {
            ConstraintType::Check => {
                let map: Vec<(String, String)> = dups
                    .iter()
                    .map(|d| (d.logical.clone(), d.new.clone()))
                    .collect();
                let mut e = self.rewrite(o.check.as_deref().unwrap_or("true"), &map)?;
                if o.no_inherit {
                    e.push_str(" NO INHERIT");
                }
                work.check(&qt, &o.name, &e, lock(ACCESS_EXCLUSIVE));
            }
            ConstraintType::ForeignKey => {
                let Some(rf) = refs else {
                    return Err(self.invalid(
                        "a foreign_key constraint needs `references`",
                        "add references: {table, columns}",
                    ));
                };
                let body = fk_body(o, &new_cols, rf)
                    .map_err(|e| self.invalid(e, "add references: {table, columns}"))?;
                let locks = vec![
                    self.lock(SHARE_ROW_EXCLUSIVE, &t.physical),
                    self.lock(SHARE_ROW_EXCLUSIVE, &rf.physical),
                ];
                self.foreign_key_on_duplicates(
                    &mut work,
                    &t.physical,
                    (&temp, &o.name),
                    &body,
                    (locks, lock(ACCESS_EXCLUSIVE)),
                    &rf.physical,
                )?;
            }
            ConstraintType::Unique | ConstraintType::PrimaryKey => {
                self.refuse_unique_constraint_on_partitioned(
                    t,
                    "a unique or primary key constraint",
                )?;
                let mut columns = format!("({})", ident_list(&new_cols));
                if o.nulls_not_distinct {
                    columns.push_str(" NULLS NOT DISTINCT");
                }
                let kind = if o.type_ == ConstraintType::PrimaryKey {
                    for d in dups {
                        let route = self.not_null_route(&t.physical, &d.logical, Some(&d.old));
                        work.add_not_null(&qt, &d.new, lock(ACCESS_EXCLUSIVE), route);
                    }
                    "PRIMARY KEY"
                } else {
                    "UNIQUE"
                };
                work.unique_key(
                    &qt,
                    (&temp, &o.name, kind),
                    &columns,
                    lock(ACCESS_EXCLUSIVE),
                );
            }
            ConstraintType::Exclude => {}
        }
        Ok(work)
    }
}

/// The foreign key of `create_constraint` `o` over `cols`, referencing `rf`.
fn fk_body(o: &CreateConstraint, cols: &[String], rf: &Referenced<'_>) -> Result<String, String> {
    ConstraintDef {
        references: Some((rf.qt.as_str(), rf.r, rf.columns.as_slice())),
        ..ConstraintDef::new(o.type_, cols).deferrable(o.deferrable, o.initially_deferred)
    }
    .body()
}
