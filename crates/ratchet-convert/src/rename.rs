//! `ALTER TABLE … RENAME`: columns, tables and constraints have rename operations.

use pg_query::protobuf;
use ratchet_spec::model::{Operation, RenameColumn, RenameConstraint, RenameTable};

use crate::converter::{unsupported, Conv, Converter};
use crate::names::table_name;

impl Converter<'_> {
    pub(crate) fn rename(&mut self, s: &protobuf::RenameStmt) -> Conv<Vec<Operation>> {
        use protobuf::ObjectType as O;
        let rename_type = s.rename_type();
        if !matches!(
            rename_type,
            O::ObjectColumn | O::ObjectTable | O::ObjectTabconstraint
        ) || (rename_type == O::ObjectColumn && s.relation_type() != O::ObjectTable)
        {
            return unsupported(
                "ratchet has no rename operation for this kind of object; rename it in a later \
                 migration once no client uses the old name",
            );
        }
        let table = table_name(s.relation.as_ref())?;
        if s.missing_ok {
            self.review("`IF EXISTS` dropped: ratchet checks that the table exists when it plans");
        }
        let op = match rename_type {
            O::ObjectColumn => Operation::RenameColumn(RenameColumn {
                table,
                from: s.subname.clone(),
                to: s.newname.clone(),
            }),
            O::ObjectTable => Operation::RenameTable(RenameTable {
                from: table,
                to: s.newname.clone(),
            }),
            _ => Operation::RenameConstraint(RenameConstraint {
                table,
                from: s.subname.clone(),
                to: s.newname.clone(),
            }),
        };
        Ok(vec![op])
    }
}
