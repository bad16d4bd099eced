//! `create_index`: built `CONCURRENTLY`, reads and writes go on (on a partitioned table,
//! partition by partition: `planner::partitions`).

use ratchet_spec::CreateIndex;

use crate::error::EngineError;
use crate::planner::Planner;
use crate::sql::ident;

impl Planner<'_> {
    pub(super) fn create_index(&mut self, o: &CreateIndex) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        self.ensure_index_name_free(&o.name)?;
        let mut cols = Vec::new();
        let mut physical = Vec::new();
        for ic in &o.columns {
            let c = self.column(&t, &ic.column)?;
            physical.push(c.physical.clone());
            self.built_on.push((
                t.physical.clone(),
                c.physical.clone(),
                format!("index {}", o.name),
            ));
            let mut s = ident(&c.physical);
            if let Some(coll) = &ic.collate {
                s.push_str(&format!(" COLLATE {}", ident(coll)));
            }
            if let Some(op) = &ic.opclass {
                s.push_str(&format!(" {}", ident(&op.name)));
                if !op.params.is_empty() {
                    s.push_str(&format!(" ({})", op.params.join(", ")));
                }
            }
            if let Some(sort) = &ic.sort {
                s.push_str(&format!(" {}", sort.to_uppercase()));
            }
            if let Some(n) = &ic.nulls {
                s.push_str(&format!(" NULLS {}", n.to_uppercase()));
            }
            cols.push(s);
        }
        let mut sql = format!(
            "CREATE {}INDEX CONCURRENTLY {} ON {}",
            if o.unique { "UNIQUE " } else { "" },
            ident(&o.name),
            self.q(&t.physical)
        );
        if let Some(m) = &o.method {
            sql.push_str(&format!(" USING {}", ident(&m.to_lowercase())));
        }
        sql.push_str(&format!(" ({})", cols.join(", ")));
        if let Some(sp) = &o.storage_parameters {
            sql.push_str(&format!(" WITH ({sp})"));
        }
        if let Some(p) = &o.predicate {
            self.expr("predicate", p)?;
            sql.push_str(&format!(" WHERE {p}"));
        }
        if let (true, Some(p)) = (o.unique, self.partitioning_of(&t.physical)) {
            self.check_unique_on_partitioned((&t.logical, &o.name), &physical, p)?;
        }
        self.push_create_index(
            &o.name,
            sql,
            &t.physical,
            format!("build index {} without blocking writes", o.name),
        )
    }
}
