//! Checks of the user's SQL fragments and references against the virtual schema, before
//! anything is planned from them.

use crate::error::EngineError;
use crate::fragment;
use crate::planner::{check_ident_len, Planner};

impl Planner<'_> {
    /// Check a user SQL expression with the PostgreSQL parser.
    /// An error points at the fragment's own line and column in the file, not at the
    /// operation (issue 9).
    pub(in crate::planner) fn expr(&self, what: &str, sql: &str) -> Result<(), EngineError> {
        let Some((message, offset)) = fragment::expression_error(sql) else {
            return Ok(());
        };
        Err(EngineError::Invalid {
            location: self.input.migration.fragment_location(self.op, sql, offset),
            message: format!("{what} `{sql}` is not a valid SQL expression: {message}"),
            hint: "write a single SQL expression (pgroll's `SELECT CASE …` form is accepted too)"
                .into(),
        })
    }

    pub(in crate::planner) fn type_name(&self, ty: &str) -> Result<(), EngineError> {
        fragment::check_type(ty).map_err(|e| {
            self.invalid(
                format!("`{ty}` is not a valid type name: {e}"),
                "use a PostgreSQL type, e.g. `text`, `bigint`, `varchar(255)`, `numeric(10,2)`",
            )
        })
    }

    pub(in crate::planner) fn column_fragments(
        &self,
        c: &ratchet_spec::Column,
    ) -> Result<(), EngineError> {
        check_ident_len(&c.name).map_err(|m| self.invalid(m, "use a shorter column name"))?;
        self.type_name(&c.type_)?;
        if let Some(d) = &c.default {
            self.expr("default", d)?;
        }
        if let Some(ch) = &c.check {
            self.expr("check", &ch.constraint)?;
        }
        if let Some(g) = c.generated.as_ref().and_then(|g| g.expression.as_ref()) {
            self.expr("generated expression", g)?;
        }
        if let Some(g) = c.generated.as_ref().filter(|g| g.is_virtual) {
            if g.expression.is_none() || g.identity.is_some() {
                return Err(self.invalid(
                    format!(
                        "column `{}`: `virtual` applies to a generated expression only",
                        c.name
                    ),
                    "give `generated: {expression: …, virtual: true}`, or drop `virtual`",
                ));
            }
            if self.catalog().server_version_num < 180000 {
                return Err(self.unsupported(
                    format!(
                        "virtual generated column `{}` on PostgreSQL {}",
                        c.name,
                        self.major()
                    ),
                    "virtual generated columns need PostgreSQL 18; add a plain column with `up` instead (filled by dual writes and a batched backfill)",
                ));
            }
            if c.unique || c.pk {
                return Err(self.invalid(
                    format!("virtual generated column `{}` cannot be a key", c.name),
                    "PostgreSQL cannot index virtual generated columns: drop `unique`/`pk`, or make it a plain column with `up`",
                ));
            }
            self.route(format!(
                "PostgreSQL {}: generated column `{}` is VIRTUAL: computed when read, nothing stored, no rewrite and no backfill",
                self.major(),
                c.name
            ));
        }
        Ok(())
    }

    /// Resolve a referenced `table.column` to physical names.
    pub(in crate::planner) fn resolve_reference(
        &self,
        table: &str,
        column: &str,
    ) -> Result<(String, String), EngineError> {
        let t = self.table(table)?;
        let c = self.column(t, column)?;
        Ok((t.physical.clone(), c.physical.clone()))
    }
}
