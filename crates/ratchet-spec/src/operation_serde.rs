//! Serde for [`Operation`]: a map with exactly one key, as pgroll writes it.
//!
//! The derived enum impls are not used because (a) serde_norway writes enums as YAML tags
//! (`!create_table`), which pgroll cannot read, and (b) the derived errors for a list entry
//! with two keys or a misspelled operation say nothing useful. Here both cases get their own
//! message, which [`crate::error`] turns into `OperationKeys` / `UnknownOperation`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::error::OPERATION_KEYS_PREFIX;
use crate::model::Operation;

/// Every operation key, in the order the docs list them.
pub const OPERATION_NAMES: &[&str] = &[
    "create_table",
    "drop_table",
    "rename_table",
    "add_column",
    "drop_column",
    "rename_column",
    "alter_column",
    "create_index",
    "drop_index",
    "create_constraint",
    "drop_constraint",
    "drop_multicolumn_constraint",
    "rename_constraint",
    "set_replica_identity",
    "sql",
];

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Operation::CreateTable(op) => map.serialize_entry(self.kind(), op)?,
            Operation::DropTable(op) => map.serialize_entry(self.kind(), op)?,
            Operation::RenameTable(op) => map.serialize_entry(self.kind(), op)?,
            Operation::AddColumn(op) => map.serialize_entry(self.kind(), op)?,
            Operation::DropColumn(op) => map.serialize_entry(self.kind(), op)?,
            Operation::RenameColumn(op) => map.serialize_entry(self.kind(), op)?,
            Operation::AlterColumn(op) => map.serialize_entry(self.kind(), op)?,
            Operation::CreateIndex(op) => map.serialize_entry(self.kind(), op)?,
            Operation::DropIndex(op) => map.serialize_entry(self.kind(), op)?,
            Operation::CreateConstraint(op) => map.serialize_entry(self.kind(), op)?,
            Operation::DropConstraint(op) => map.serialize_entry(self.kind(), op)?,
            Operation::DropMulticolumnConstraint(op) => map.serialize_entry(self.kind(), op)?,
            Operation::RenameConstraint(op) => map.serialize_entry(self.kind(), op)?,
            Operation::SetReplicaIdentity(op) => map.serialize_entry(self.kind(), op)?,
            Operation::Sql(op) => map.serialize_entry(self.kind(), op)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OperationVisitor)
    }
}

struct OperationVisitor;

impl<'de> Visitor<'de> for OperationVisitor {
    type Value = Operation;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an operation (a map with one key such as `create_table`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Operation, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "{OPERATION_KEYS_PREFIX}, found 0"
            )));
        };
        let op = operation_body(&key, &mut map)?;
        let Some(second) = map.next_key::<String>()? else {
            return Ok(op);
        };
        let mut keys = vec![key, second];
        map.next_value::<IgnoredAny>()?;
        while let Some(more) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.push(more);
        }
        Err(de::Error::custom(format!(
            "{OPERATION_KEYS_PREFIX}, found {}: {}",
            keys.len(),
            keys.join(", ")
        )))
    }
}

/// Reads the value under `key` as the body of that operation.
fn operation_body<'de, A: MapAccess<'de>>(key: &str, map: &mut A) -> Result<Operation, A::Error> {
    Ok(match key {
        "create_table" => Operation::CreateTable(map.next_value()?),
        "drop_table" => Operation::DropTable(map.next_value()?),
        "rename_table" => Operation::RenameTable(map.next_value()?),
        "add_column" => Operation::AddColumn(map.next_value()?),
        "drop_column" => Operation::DropColumn(map.next_value()?),
        "rename_column" => Operation::RenameColumn(map.next_value()?),
        "alter_column" => Operation::AlterColumn(map.next_value()?),
        "create_index" => Operation::CreateIndex(map.next_value()?),
        "drop_index" => Operation::DropIndex(map.next_value()?),
        "create_constraint" => Operation::CreateConstraint(map.next_value()?),
        "drop_constraint" => Operation::DropConstraint(map.next_value()?),
        "drop_multicolumn_constraint" => Operation::DropMulticolumnConstraint(map.next_value()?),
        "rename_constraint" => Operation::RenameConstraint(map.next_value()?),
        "set_replica_identity" => Operation::SetReplicaIdentity(map.next_value()?),
        "sql" => Operation::Sql(map.next_value()?),
        other => return Err(de::Error::unknown_variant(other, OPERATION_NAMES)),
    })
}
