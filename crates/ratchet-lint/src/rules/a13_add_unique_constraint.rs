//! A13 `add-unique-constraint`.

use pg_query::protobuf::ConstrType;

use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD [CONSTRAINT …] UNIQUE (…)` without `USING INDEX`, and
    /// `ADD COLUMN … UNIQUE`, on an existing table.
    ///
    /// ## Why it is dangerous
    /// The unique index is built while an ACCESS EXCLUSIVE lock is held: no reads or writes
    /// for the whole build. It also fails if production has duplicates.
    ///
    /// ## What to do instead
    /// `CREATE UNIQUE INDEX CONCURRENTLY`, check that it is valid (`pg_index.indisvalid`),
    /// then `ADD CONSTRAINT … UNIQUE USING INDEX …` (PG ≥ 9.1; brief lock, no build). ratchet
    /// operation: `create_constraint` with `type: unique` (or `alter_column` with `unique`).
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
    /// -- good
    /// CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
    /// ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;
    /// ```
    code: "A13",
    name: "add-unique-constraint",
    severity: Error,
    summary: "ADD UNIQUE builds its index under ACCESS EXCLUSIVE; build it concurrently and attach USING INDEX",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let added = common::added_constraints(cx, ConstrType::ConstrUnique)
        .into_iter()
        .filter(|c| c.constraint().is_some_and(|k| k.indexname.is_empty()));
    for c in added.chain(common::added_columns_with(cx, ConstrType::ConstrUnique)) {
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("adding a UNIQUE constraint builds its index on `{}`{} while holding an {AEL}", c.table, cx.size_note(&c.table)),
            )
            .help(
                "CREATE UNIQUE INDEX CONCURRENTLY, check it is valid, then ADD CONSTRAINT … UNIQUE USING INDEX. ratchet \
                 operation: `create_constraint` with `type: unique`",
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
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);"
        ));
    }

    #[test]
    fn using_index_is_fine() {
        lint_ok(
            &RULE,
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;",
        );
    }
}
