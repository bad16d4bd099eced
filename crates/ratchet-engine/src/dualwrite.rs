//! Dual writes: triggers that keep an old and a new physical column in sync while both
//! application versions run.
//!
//! The direction is decided from the row, never from the session (`search_path`, pooler
//! settings): on INSERT, a new column left NULL means the statement did not write it
//! (old-version views do not have it, and during the migration it has no physical
//! default), so it is computed with `up`; otherwise the old column is computed with
//! `down`. On UPDATE, whichever of the two the statement changed wins. The triggers fire
//! only for `UPDATE OF` the columns involved, and skip the backfill's own updates
//! (`ratchet.backfill = on`), so unrelated writes pay nothing.

use serde::{Deserialize, Serialize};

use crate::fragment;
use crate::sql::{ident, qualified};

/// One pair of physical columns kept in sync, or one side alone (`add_column` with `up`
/// has no old column; `drop_column` with `down` has no new one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub schema: String,
    /// Physical table.
    pub table: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// `up` over the old version's column names.
    pub up: Option<String>,
    /// `down` over the new version's column names.
    pub down: Option<String>,
    /// The old version's columns: `(logical, physical)`.
    pub old_names: Vec<(String, String)>,
    /// The new version's columns: `(logical, physical)`.
    pub new_names: Vec<(String, String)>,
    /// Base name of the trigger function and triggers.
    pub name: String,
    /// Whether the table has a key: without one, the backfill walks `ctid` ranges and a
    /// row moved by any update must be recomputed, so the update trigger fires on every
    /// update.
    pub keyed: bool,
}

fn physical_of(names: &[(String, String)], logical: &str) -> Option<String> {
    names
        .iter()
        .find(|(l, _)| l == logical)
        .map(|(_, p)| p.clone())
}

impl Pair {
    /// `up` with its column references turned into `<prefix>"physical"`.
    pub fn up_sql(&self, prefix: &str) -> Result<Option<String>, String> {
        let Some(up) = &self.up else {
            return Ok(None);
        };
        fragment::rewrite_columns(up, |n| {
            physical_of(&self.old_names, n).map(|p| format!("{prefix}{}", ident(&p)))
        })
        .map(Some)
    }

    /// `down` with its column references turned into `<prefix>"physical"`.
    pub fn down_sql(&self, prefix: &str) -> Result<Option<String>, String> {
        let Some(down) = &self.down else {
            return Ok(None);
        };
        fragment::rewrite_columns(down, |n| {
            physical_of(&self.new_names, n).map(|p| format!("{prefix}{}", ident(&p)))
        })
        .map(Some)
    }

    /// Physical columns whose change must re-run the trigger.
    pub fn relevant_columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = self.old.iter().chain(self.new.iter()).cloned().collect();
        let mut add = |expr: &Option<String>, names: &[(String, String)]| {
            if let Some(e) = expr {
                for (n, _, _) in fragment::column_refs(e).unwrap_or_default() {
                    if let Some(p) = physical_of(names, &n) {
                        if !cols.contains(&p) {
                            cols.push(p);
                        }
                    }
                }
            }
        };
        add(&self.up, &self.old_names);
        add(&self.down, &self.new_names);
        cols
    }

    fn function(&self) -> String {
        qualified(&self.schema, &self.name)
    }

    /// `CREATE FUNCTION` and `CREATE TRIGGER` statements.
    pub fn create_sql(&self) -> Result<Vec<String>, String> {
        let up = self.up_sql("NEW.")?;
        let down = self.down_sql("NEW.")?;
        let assign_new = match (&self.new, &up) {
            (Some(n), Some(u)) => format!("NEW.{} := {u};", ident(n)),
            _ => "NULL;".into(),
        };
        let assign_old = match (&self.old, &down) {
            (Some(o), Some(d)) => format!("NEW.{} := {d};", ident(o)),
            _ => "NULL;".into(),
        };
        let body = match (&self.old, &self.new) {
            (Some(o), Some(n)) => format!(
                "IF TG_OP = 'INSERT' THEN
    IF NEW.{n} IS NULL THEN {assign_new} ELSE {assign_old} END IF;
  ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} THEN
    IF NEW.{o} IS NOT DISTINCT FROM OLD.{o} THEN {assign_old} END IF;
  ELSE
    {assign_new}
  END IF;",
                n = ident(n),
                o = ident(o)
            ),
            (None, Some(n)) => format!(
                "IF TG_OP = 'INSERT' THEN
    IF NEW.{n} IS NULL THEN {assign_new} END IF;
  ELSIF NEW.{n} IS NOT DISTINCT FROM OLD.{n} THEN
    {assign_new}
  END IF;",
                n = ident(n)
            ),
            (Some(o), None) => format!(
                "IF TG_OP = 'INSERT' THEN
    IF NEW.{o} IS NULL THEN {assign_old} END IF;
  ELSIF NEW.{o} IS NOT DISTINCT FROM OLD.{o} THEN
    {assign_old}
  END IF;",
                o = ident(o)
            ),
            (None, None) => return Err("a dual write needs at least one column".into()),
        };
        let function = format!(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $ratchet$
BEGIN
  {body}
  RETURN NEW;
END
$ratchet$",
            self.function()
        );
        let table = qualified(&self.schema, &self.table);
        let when = "WHEN (current_setting('ratchet.backfill', true) IS DISTINCT FROM 'on')";
        let of = if self.keyed {
            format!(" OF {}", crate::sql::ident_list(&self.relevant_columns()))
        } else {
            String::new()
        };
        Ok(vec![
            function,
            format!(
                "CREATE TRIGGER {} BEFORE INSERT ON {table} FOR EACH ROW {when} EXECUTE FUNCTION {}()",
                ident(&format!("{}_ins", self.name)),
                self.function()
            ),
            format!(
                "CREATE TRIGGER {} BEFORE UPDATE{of} ON {table} FOR EACH ROW {when} EXECUTE FUNCTION {}()",
                ident(&format!("{}_upd", self.name)),
                self.function()
            ),
        ])
    }

    /// Statements that remove the triggers and their function.
    pub fn drop_sql(&self) -> Vec<String> {
        let table = qualified(&self.schema, &self.table);
        vec![
            format!(
                "DROP TRIGGER IF EXISTS {} ON {table}",
                ident(&format!("{}_ins", self.name))
            ),
            format!(
                "DROP TRIGGER IF EXISTS {} ON {table}",
                ident(&format!("{}_upd", self.name))
            ),
            format!("DROP FUNCTION IF EXISTS {}()", self.function()),
        ]
    }
}

/// A trigger/function name within PostgreSQL's 63 bytes, unique per table and column.
pub fn trigger_name(table: &str, column: &str) -> String {
    use sha2::Digest;
    let h = hex::encode(&sha2::Sha256::digest(format!("{table}.{column}").as_bytes())[..4]);
    let mut base = String::new();
    for ch in format!("_ratchet_dw_{table}_{column}").chars() {
        if base.len() + ch.len_utf8() > 44 {
            break;
        }
        base.push(ch);
    }
    format!("{base}_{h}")
}
