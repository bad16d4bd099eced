//! A17 `add-exclusion-constraint`.

use pg_query::protobuf::ConstrType;

use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD CONSTRAINT … EXCLUDE USING …` on an existing table.
    ///
    /// ## Why it is dangerous
    /// The index is built and every row checked under an ACCESS EXCLUSIVE lock. EXCLUDE
    /// constraints support neither `NOT VALID` nor `USING INDEX`, so there is no online path
    /// on any PostgreSQL version (advice to add it NOT VALID does not apply).
    ///
    /// ## What to do instead
    /// A new table with the constraint, dual writes and a batched backfill (expand/contract),
    /// or an explicit maintenance window.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);
    /// ```
    code: "A17",
    name: "add-exclusion-constraint",
    severity: Error,
    summary: "ADD EXCLUDE builds an index and scans under ACCESS EXCLUSIVE with no online alternative",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::added_constraints(cx, ConstrType::ConstrExclusion) {
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("adding an EXCLUDE constraint builds an index and checks every row of `{}`{} under an {AEL}; it cannot be added NOT VALID", c.table, cx.size_note(&c.table)),
            )
            .help("create a new table with the constraint and move the data with dual writes and a batched backfill, or schedule a maintenance window")
            .maybe_severity(cx.size_severity(&c.table)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires() {
        insta::assert_snapshot!(lint_errors(&RULE, "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);"));
    }

    #[test]
    fn in_create_table_is_fine() {
        lint_ok(&RULE, "CREATE TABLE bookings (room int, during tstzrange, EXCLUDE USING gist (room WITH =, during WITH &&));");
    }
}
