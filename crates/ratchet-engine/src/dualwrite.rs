//! Dual writes: triggers that keep an old and a new physical column in sync while both
//! application versions run.
//!
//! The direction is decided from the row, never from the session (`search_path`, pooler
//! settings): on INSERT, a new column left NULL means the statement did not write it
//! (old-version views do not have it, and during the migration it has no physical
//! default), so it is computed with `up`; otherwise the old column is computed with
//! `down`. On UPDATE, whichever of the two the statement changed wins. The update
//! trigger fires on every UPDATE (an unrelated update of a row not backfilled yet fills
//! it), and both skip the backfill's own updates (`ratchet.backfill` names the pair).

use crate::fragment;
pub use crate::plan::Pair;
use crate::sql::{ident, qualified};

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

    fn function(&self) -> String {
        qualified(&self.schema, &self.name)
    }

    /// `NEW.c IS DISTINCT FROM OLD.c OR …` over the physical columns `expr` reads (without
    /// `skip`): whether an UPDATE changed an input of `up` or `down`. `false` when it
    /// reads none.
    fn inputs_changed(
        expr: &Option<String>,
        names: &[(String, String)],
        skip: Option<&String>,
    ) -> String {
        let mut cols: Vec<String> = Vec::new();
        if let Some(e) = expr {
            for (n, _, _) in fragment::column_refs(e).unwrap_or_default() {
                if let Some(p) = physical_of(names, &n) {
                    if Some(&p) != skip && !cols.contains(&p) {
                        cols.push(p);
                    }
                }
            }
        }
        if cols.is_empty() {
            return "false".into();
        }
        cols.iter()
            .map(|c| format!("NEW.{c} IS DISTINCT FROM OLD.{c}", c = ident(c)))
            .collect::<Vec<_>>()
            .join(" OR ")
    }

    /// `CREATE FUNCTION` and `CREATE TRIGGER` statements.
    ///
    /// The update trigger fires on every UPDATE, whatever columns it sets: a row the
    /// backfill has not reached yet gets its new column computed by the first write that
    /// touches it, so the temporary `CHECK (new IS NOT NULL) NOT VALID` never rejects an
    /// update the old version is allowed to make (it once failed 46% of the updates of
    /// unrelated columns during a backfill). A new column the statement did not write is
    /// recomputed only when it is still empty or an input of `up` changed, so what the
    /// new version wrote is kept.
    ///
    /// The function runs with a fixed `search_path` (`pg_catalog`, the managed schema), so
    /// names in `up`/`down` resolve the same whatever the writing session's path is.
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
        let up_inputs = Self::inputs_changed(&self.up, &self.old_names, self.new.as_ref());
        let down_inputs = Self::inputs_changed(&self.down, &self.new_names, self.old.as_ref());
        let body = match (&self.old, &self.new) {
            (Some(o), Some(n)) => format!(
                "IF TG_OP = 'INSERT' THEN
    IF NEW.{n} IS NULL THEN {assign_new} ELSE {assign_old} END IF;
  ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} THEN
    IF NEW.{o} IS NOT DISTINCT FROM OLD.{o} THEN {assign_old} END IF;
  ELSIF NEW.{n} IS NULL OR {up_inputs} THEN
    {assign_new}
  END IF;",
                n = ident(n),
                o = ident(o)
            ),
            (None, Some(n)) => format!(
                "IF TG_OP = 'INSERT' THEN
    IF NEW.{n} IS NULL THEN {assign_new} END IF;
  ELSIF NEW.{n} IS NOT DISTINCT FROM OLD.{n} AND (NEW.{n} IS NULL OR {up_inputs}) THEN
    {assign_new}
  END IF;",
                n = ident(n)
            ),
            (Some(o), None) => format!(
                "IF TG_OP = 'INSERT' THEN
    IF NEW.{o} IS NULL THEN {assign_old} END IF;
  ELSIF NEW.{o} IS NOT DISTINCT FROM OLD.{o} AND ({down_inputs}) THEN
    {assign_old}
  END IF;",
                o = ident(o)
            ),
            (None, None) => return Err("a dual write needs at least one column".into()),
        };
        let function = format!(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, {}, pg_temp AS $ratchet$
BEGIN
  {body}
  RETURN NEW;
END
$ratchet$",
            self.function(),
            ident(&self.schema)
        );
        let table = qualified(&self.schema, &self.table);
        // The backfill of this pair names it in `ratchet.backfill` and computes the column
        // itself; the triggers of other pairs on the table still fire for its updates, so
        // a row it writes gets their new columns filled too (their NOT NULL checks hold).
        let when = format!(
            "WHEN (coalesce(current_setting('ratchet.backfill', true), '') NOT IN ('on', {}))",
            crate::sql::literal(&self.name)
        );
        Ok(vec![
            function,
            format!(
                "CREATE TRIGGER {} BEFORE INSERT ON {table} FOR EACH ROW {when} EXECUTE FUNCTION {}()",
                ident(&format!("{}_ins", self.name)),
                self.function()
            ),
            format!(
                "CREATE TRIGGER {} BEFORE UPDATE ON {table} FOR EACH ROW {when} EXECUTE FUNCTION {}()",
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
