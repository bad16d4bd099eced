//! `create_constraint`: on a new table as written; on an existing one over duplicates
//! (`NOT VALID` then validated, unique keys from concurrent indexes), or a foreign key over
//! the columns' own values in place.

use ratchet_spec::{ConstraintType, CreateConstraint, TableForeignKeyReference};

use crate::error::EngineError;
use crate::plan::{Lock, Phase, Statement, ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE};
use crate::planner::ddl::ConstraintDef;
use crate::planner::expand::{is_identity, temp_column, temp_name, Dup, Work};
use crate::planner::Planner;
use crate::sql::{ident, ident_list};

impl Planner<'_> {
    pub(in crate::planner) fn create_constraint(
        &mut self,
        o: &CreateConstraint,
    ) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let mut cols = Vec::new();
        for c in &o.columns {
            cols.push(self.column(&t, c)?.clone());
        }
        if let Some(ch) = &o.check {
            self.expr("check", ch)?;
        }
        let refs = match &o.references {
            Some(r) => {
                let rt = self.table(&r.table)?.clone();
                let mut rc = Vec::new();
                for c in &r.columns {
                    rc.push(self.column(&rt, c)?.physical.clone());
                }
                Some((self.q(&rt.physical), r, rc, rt.physical))
            }
            None => None,
        };
        let qt = self.q(&t.physical);
        let lt = format!("{}.{}", self.schema, t.physical);
        let lock = |m: &str| vec![Lock::new(m, lt.clone())];
        if t.created {
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
                references: refs
                    .as_ref()
                    .map(|(q, r, rc, _)| (q.as_str(), *r, rc.as_slice())),
                exclude: o.exclude.as_ref(),
                index_params: o.index_parameters.as_ref(),
                nulls_not_distinct: o.nulls_not_distinct,
                no_inherit: o.no_inherit,
                ..ConstraintDef::new(o.type_, &phys).deferrable(o.deferrable, o.initially_deferred)
            }
            .body()
            .map_err(|e| self.invalid(e, "see create_constraint in docs/operations.md"))?;
            self.start.push(self.tx(
                Phase::Start,
                format!("add constraint {} to new table {}", o.name, o.table),
                vec![Statement::new(
                    format!("ALTER TABLE {qt} ADD CONSTRAINT {} {body}", ident(&o.name)),
                    lock(ACCESS_EXCLUSIVE),
                )],
            ));
            return Ok(());
        }
        if o.type_ == ConstraintType::Exclude {
            return Err(self.unsupported(
                "create_constraint of type exclude on an existing table",
                "an exclusion constraint can be neither NOT VALID nor built concurrently; create a new table and copy the data",
            ));
        }
        if let (ConstraintType::ForeignKey, Some((rq, r, rc, rphys))) = (o.type_, &refs) {
            let identity = cols.iter().all(|c| {
                is_identity(o.up.get(&c.logical).map(String::as_str), &c.logical)
                    && is_identity(o.down.get(&c.logical).map(String::as_str), &c.logical)
            });
            if identity {
                let phys: Vec<String> = cols.iter().map(|c| c.physical.clone()).collect();
                let body = fk_body(o, &phys, (rq, r, rc))
                    .map_err(|e| self.invalid(e, "add references: {table, columns}"))?;
                self.foreign_key_in_place(&t.physical, &o.name, &body, rphys);
                return Ok(());
            }
        }
        let mut dups = Vec::new();
        for c in &cols {
            dups.push(Dup {
                logical: c.logical.clone(),
                old: c.physical.clone(),
                new: temp_column(&c.physical),
                new_type: c.type_name.clone(),
                up: o.up.get(&c.logical).cloned().unwrap_or(c.logical.clone()),
                down: o.down.get(&c.logical).cloned().unwrap_or(c.logical.clone()),
            });
        }
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
                let Some((rq, r, rc, rphys)) = &refs else {
                    return Err(self.invalid(
                        "a foreign_key constraint needs `references`",
                        "add references: {table, columns}",
                    ));
                };
                let body = fk_body(o, &new_cols, (rq, r, rc))
                    .map_err(|e| self.invalid(e, "add references: {table, columns}"))?;
                work.tx1.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} {body} NOT VALID",
                        ident(&temp)
                    ),
                    vec![
                        self.lock(SHARE_ROW_EXCLUSIVE, &t.physical),
                        self.lock(SHARE_ROW_EXCLUSIVE, rphys),
                    ],
                ));
                work.validate.push(temp.clone());
                work.finish.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} RENAME CONSTRAINT {} TO {}",
                        ident(&temp),
                        ident(&o.name)
                    ),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            ConstraintType::Unique | ConstraintType::PrimaryKey => {
                let mut sql = format!(
                    "CREATE UNIQUE INDEX CONCURRENTLY {} ON {qt} ({})",
                    ident(&temp),
                    ident_list(&new_cols)
                );
                if o.nulls_not_distinct {
                    sql.push_str(" NULLS NOT DISTINCT");
                }
                work.indexes.push((temp.clone(), sql));
                let kind = if o.type_ == ConstraintType::PrimaryKey {
                    "PRIMARY KEY"
                } else {
                    "UNIQUE"
                };
                if o.type_ == ConstraintType::PrimaryKey {
                    for d in &dups {
                        work.not_null_check(&qt, &d.new, lock(ACCESS_EXCLUSIVE));
                    }
                }
                work.finish.push(Statement::new(
                    format!(
                        "ALTER TABLE {qt} ADD CONSTRAINT {} {kind} USING INDEX {}",
                        ident(&o.name),
                        ident(&temp)
                    ),
                    lock(ACCESS_EXCLUSIVE),
                ));
            }
            ConstraintType::Exclude => {}
        }
        self.duplicate(
            &o.table,
            &format!("create constraint {}", o.name),
            dups,
            None,
            work,
        )
    }
}

/// The foreign key of `create_constraint` `o` over `cols`, referencing `(table, reference,
/// columns)`.
pub(in crate::planner) fn fk_body(
    o: &CreateConstraint,
    cols: &[String],
    (table, r, ref_cols): (&String, &&TableForeignKeyReference, &Vec<String>),
) -> Result<String, String> {
    ConstraintDef {
        references: Some((table.as_str(), *r, ref_cols.as_slice())),
        ..ConstraintDef::new(o.type_, cols).deferrable(o.deferrable, o.initially_deferred)
    }
    .body()
}
