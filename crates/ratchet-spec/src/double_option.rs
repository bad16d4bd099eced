//! Serde helper that keeps "not given" apart from "given as null".
//!
//! `alter_column` uses `default: null` to *drop* a default and `comment: null` to remove a
//! comment, which is not the same as leaving the field out. With `#[serde(default, with =
//! "crate::double_option")]` on an `Option<Option<String>>`:
//!
//! - field absent → `None` (through `#[serde(default)]`; this module is not called),
//! - `null` → `Some(None)`,
//! - `"x"` → `Some(Some("x"))`.
//!
//! TOML has no null, so there an empty inline table (`default = {}`) means null; YAML and
//! JSON reject `{}` here because their deserializers never offer a map for a string.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::Serializer;

/// Writes `Some(None)` as null (`{}` in TOML, see [`crate::to_string`]) and `Some(Some(x))` as `x`.
pub fn serialize<S: Serializer>(value: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(Some(text)) => s.serialize_str(text),
        Some(None) | None => s.serialize_none(),
    }
}

/// Reads a present field: null (or TOML's `{}`) → `Some(None)`, a string → `Some(Some(_))`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    d.deserialize_option(OuterVisitor).map(Some)
}

struct OuterVisitor;

impl<'de> Visitor<'de> for OuterVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SQL expression string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // `deserialize_string`, not `deserialize_any`: YAML then accepts a plain `100` as
        // the string "100", exactly as for the non-null string fields.
        d.deserialize_string(InnerVisitor)
    }
}

struct InnerVisitor;

impl<'de> Visitor<'de> for InnerVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SQL expression string or null")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    /// TOML's stand-in for null: an empty table.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key::<de::IgnoredAny>()? {
            None => Ok(None),
            Some(_) => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
        }
    }
}
