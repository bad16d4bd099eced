//! A1 `add-column-volatile-default`.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::ast;
use crate::rule::Diagnostic;
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER TABLE … ADD COLUMN … DEFAULT <expr>` on an existing table where the default is
    /// volatile: `random()`, `gen_random_uuid()`, `clock_timestamp()`, `nextval()` or any
    /// function not known to be stable or immutable (user functions are assumed volatile).
    /// On PostgreSQL < 11, any non-NULL default.
    ///
    /// ## Why it is dangerous
    /// A volatile default must be evaluated per row, so PostgreSQL rewrites the whole table
    /// (and rebuilds its indexes) under an ACCESS EXCLUSIVE lock: no reads or writes until it
    /// finishes. Since PG 11 constant and stable defaults (including `now()`) are stored in
    /// the catalog ("fast default") and need no rewrite; before PG 11 every default rewrites.
    ///
    /// ## What to do instead
    /// Add the column without a default, `ALTER COLUMN … SET DEFAULT` for new rows, backfill
    /// existing rows in batches, then make it NOT NULL with the CHECK pattern (A8). The
    /// ratchet operation `add_column` with an `up` expression does exactly this.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: rewrites `orders`
    /// ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();
    /// -- good
    /// ALTER TABLE orders ADD COLUMN token uuid;
    /// ALTER TABLE orders ALTER COLUMN token SET DEFAULT gen_random_uuid();
    /// -- then backfill in batches
    /// ```
    code: "A1",
    name: "add-column-volatile-default",
    severity: Error,
    summary: "ADD COLUMN with a volatile default (any default before PG 11) rewrites the table under ACCESS EXCLUSIVE",
    check: check,
}

/// Functions whose result is fixed per statement (stable or immutable), so a default
/// calling them is a "fast default" on PG ≥ 11.
const NON_VOLATILE: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_timestamp",
    "localtimestamp",
    "current_date",
    "lower",
    "upper",
    "btrim",
    "trim",
    "concat",
    "concat_ws",
    "length",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "to_jsonb",
    "to_json",
    "jsonb_build_object",
    "jsonb_build_array",
    "json_build_object",
    "json_build_array",
    "array_to_json",
    "row_to_json",
    "make_interval",
    "make_date",
    "make_timestamp",
    "make_timestamptz",
    "to_timestamp",
    "to_date",
    "to_char",
    "date_trunc",
    "abs",
    "round",
    "floor",
    "ceil",
    "md5",
    "encode",
    "decode",
    "replace",
    "substring",
    "substr",
    "format",
    "current_user",
    "current_schema",
    "current_setting",
    "array_fill",
    "int4range",
    "int8range",
    "tstzrange",
    "daterange",
    "numrange",
    "point",
    "timezone",
];

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let fast_defaults = cx.pg_version().at_least(11);
    for c in common::cmds_of(cx, AlterTableType::AtAddColumn) {
        let Some(col) = c.column_def() else { continue };
        let Some(default) = ast::column_default(col) else {
            continue;
        };
        if is_null(default)
            || col
                .type_name
                .as_ref()
                .is_some_and(|t| ast::type_base_name(t).ends_with("serial"))
        {
            continue;
        }
        let volatile: Vec<String> = ast::called_functions(default)
            .into_iter()
            .filter(|f| !NON_VOLATILE.contains(&f.as_str()))
            .collect();
        let why = match (fast_defaults, volatile.first()) {
            (true, None) => continue,
            (true, Some(f)) => format!("the volatile DEFAULT {f}() is evaluated per row and"),
            (false, _) => format!("on PostgreSQL {} any non-NULL DEFAULT", cx.pg_version()),
        };
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("ADD COLUMN `{}`: {why} rewrites table `{}`{} under an {AEL}", col.colname, c.table, cx.size_note(&c.table)),
            )
            .help(
                "add the column without a default, SET DEFAULT for new rows, backfill existing rows in batches, then \
                 NOT NULL via a validated CHECK. ratchet operation: `add_column` with `up`",
            )
            .maybe_severity(cx.size_severity(&c.table)),
        );
    }
}

fn is_null(node: &NodeEnum) -> bool {
    matches!(node, NodeEnum::AConst(c) if c.isnull)
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_on_gen_random_uuid() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();"
        ));
    }

    #[test]
    fn fires_on_any_default_before_pg11() {
        insta::assert_snapshot!(lint_errors_with(
            &RULE,
            "ALTER TABLE orders ADD COLUMN n int DEFAULT 0;",
            &pg(10),
            None
        ));
    }

    #[test]
    fn constant_and_now_are_fast_defaults() {
        lint_ok(&RULE, "ALTER TABLE orders ADD COLUMN n int DEFAULT 0;\nALTER TABLE orders ADD COLUMN t timestamptz DEFAULT now();");
    }

    #[test]
    fn new_table_is_fine() {
        lint_ok(&RULE, "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN token uuid DEFAULT gen_random_uuid();");
    }
}
