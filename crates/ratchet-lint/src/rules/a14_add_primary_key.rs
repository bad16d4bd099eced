//! A14 `add-primary-key`.

use pg_query::protobuf::ConstrType;

use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD PRIMARY KEY (…)` without `USING INDEX`, and
    /// `ADD COLUMN … PRIMARY KEY`, on an existing table.
    ///
    /// ## Why it is dangerous
    /// The unique index is built under an ACCESS EXCLUSIVE lock (no reads or writes), plus
    /// an implicit `SET NOT NULL` scan of each key column.
    ///
    /// ## What to do instead
    /// `CREATE UNIQUE INDEX CONCURRENTLY`, make the columns NOT NULL with the CHECK pattern
    /// (A8), then `ADD PRIMARY KEY USING INDEX`. ratchet operation: `create_constraint` with
    /// `type: primary_key`.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE events ADD PRIMARY KEY (id);
    /// -- good
    /// CREATE UNIQUE INDEX CONCURRENTLY events_pkey ON events (id);
    /// ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;
    /// ```
    code: "A14",
    name: "add-primary-key",
    severity: Error,
    summary: "ADD PRIMARY KEY builds an index and scans for NULLs under ACCESS EXCLUSIVE",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let added = common::added_constraints(cx, ConstrType::ConstrPrimary)
        .into_iter()
        .filter(|c| c.constraint().is_some_and(|k| k.indexname.is_empty()));
    for c in added.chain(common::added_columns_with(cx, ConstrType::ConstrPrimary)) {
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("adding a PRIMARY KEY builds its index and checks for NULLs on `{}`{} while holding an {AEL}", c.table, cx.size_note(&c.table)),
            )
            .help(
                "CREATE UNIQUE INDEX CONCURRENTLY, make the columns NOT NULL via a validated CHECK, then ADD PRIMARY KEY USING \
                 INDEX. ratchet operation: `create_constraint` with `type: primary_key`",
            )
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
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE events ADD PRIMARY KEY (id);"
        ));
    }

    #[test]
    fn using_index_is_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;",
        );
    }

    #[test]
    fn primary_key_in_create_table_is_fine() {
        lint_ok(&RULE, "CREATE TABLE events (id bigint PRIMARY KEY);");
    }
}
