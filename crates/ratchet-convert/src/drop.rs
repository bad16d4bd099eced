//! `DROP TABLE` and `DROP INDEX`: one operation per object.

use pg_query::protobuf;
use ratchet_spec::model::{DropIndex, DropTable, Operation};

use crate::converter::{unsupported, Conv, Converter};
use crate::names::qualified_name;

impl Converter<'_> {
    pub(crate) fn drop(&mut self, s: &protobuf::DropStmt) -> Conv<Vec<Operation>> {
        use protobuf::ObjectType as O;
        let kind = s.remove_type();
        if !matches!(kind, O::ObjectTable | O::ObjectIndex) {
            return unsupported(
                "ratchet has no drop operation for this kind of object; drop it in a contract \
                 migration once nothing uses it",
            );
        }
        if s.behavior() == protobuf::DropBehavior::DropCascade {
            return unsupported(
                "`CASCADE` also drops dependent objects, which ratchet's drop operations do not",
            );
        }
        if s.missing_ok {
            self.review("`IF EXISTS` dropped: ratchet checks that the object exists when it plans");
        }
        let mut ops = Vec::new();
        for object in &s.objects {
            let name = qualified_name(object)?;
            ops.push(match kind {
                O::ObjectTable => Operation::DropTable(DropTable { name }),
                _ => Operation::DropIndex(DropIndex { name }),
            });
        }
        Ok(ops)
    }
}
