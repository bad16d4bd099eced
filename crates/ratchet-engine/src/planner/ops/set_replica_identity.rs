//! `set_replica_identity`.

use ratchet_spec::SetReplicaIdentity;

use crate::error::EngineError;
use crate::plan::{Phase, Statement, ACCESS_EXCLUSIVE};
use crate::planner::Planner;
use crate::sql::ident;

impl Planner<'_> {
    pub(super) fn set_replica_identity(
        &mut self,
        o: &SetReplicaIdentity,
    ) -> Result<(), EngineError> {
        let t = self.table(&o.table)?.clone();
        let clause = match o.identity.type_.to_lowercase().as_str() {
            "default" => "DEFAULT".to_string(),
            "full" => "FULL".to_string(),
            "nothing" => "NOTHING".to_string(),
            "index" => {
                let Some(name) = &o.identity.index else {
                    return Err(self.invalid(
                        "identity type `index` needs `index:`",
                        "name a unique index of the table",
                    ));
                };
                let ok = self
                    .catalog()
                    .indexes
                    .get(name)
                    .is_some_and(|i| i.table == t.physical && i.unique);
                if !ok && !self.indexes.contains(name) {
                    return Err(self.invalid(
                        format!("`{name}` is not a unique index of table `{}`", o.table),
                        "create a unique index on NOT NULL columns first",
                    ));
                }
                format!("USING INDEX {}", ident(name))
            }
            other => {
                return Err(self.invalid(
                    format!("unknown replica identity type `{other}`"),
                    "use one of: default, full, nothing, index",
                ))
            }
        };
        let set = |clause: &str| {
            vec![Statement::new(
                format!(
                    "ALTER TABLE {} REPLICA IDENTITY {clause}",
                    self.q(&t.physical)
                ),
                vec![self.lock(ACCESS_EXCLUSIVE, &t.physical)],
            )]
        };
        let start = set(&clause);
        // Abort puts back what the table had (a table created by this migration goes
        // away on abort anyway).
        let abort = self
            .catalog()
            .tables
            .get(&t.physical)
            .map(|x| (x.replica_identity.clone(), set(&x.replica_identity)));
        self.start.push(self.tx(
            Phase::Start,
            format!(
                "set replica identity of {} to {}",
                o.table, o.identity.type_
            ),
            start,
        ));
        if let Some((before, statements)) = abort {
            self.abort.push(self.tx(
                Phase::Abort,
                format!("restore replica identity of {} to {before}", o.table),
                statements,
            ));
        }
        Ok(())
    }
}
