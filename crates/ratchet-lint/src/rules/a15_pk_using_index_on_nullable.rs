//! A15 `pk-using-index-on-nullable`.

use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::NodeEnum;

use crate::ast::{self, QualifiedName};
use crate::context::Statement;
use crate::rule::{Diagnostic, Severity};
use crate::rules::common::{self, AEL};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ADD PRIMARY KEY USING INDEX idx` where a column of `idx` may be nullable. The index
    /// columns are known when the index was created earlier in the file or from the catalog
    /// (`--database-url`); a column counts as NOT NULL when the catalog says so or the file
    /// (or an earlier file of the run) ran `SET NOT NULL` on it; an index built by an earlier
    /// file of the run is known too. When the index is neither in the run nor in the
    /// catalog (built by an earlier migration, no `--database-url`), a warning says that the
    /// statement scans unless the columns are already NOT NULL.
    ///
    /// ## Why it is dangerous
    /// PRIMARY KEY implies NOT NULL: PostgreSQL runs an implicit `SET NOT NULL`, a full scan
    /// under the ACCESS EXCLUSIVE lock (no reads or writes), defeating the point of building
    /// the index concurrently.
    ///
    /// ## What to do instead
    /// Make the columns NOT NULL first with the CHECK pattern (A8), then attach the index.
    /// ratchet operation: `create_constraint` with `type: primary_key`.
    ///
    /// ## Example
    /// ```sql
    /// CREATE UNIQUE INDEX CONCURRENTLY events_pkey ON events (id);
    /// ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;  -- id nullable: scan
    /// ```
    code: "A15",
    name: "pk-using-index-on-nullable",
    severity: Error,
    summary: "ADD PRIMARY KEY USING INDEX over nullable columns runs an implicit SET NOT NULL scan",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::added_constraints(cx, ConstrType::ConstrPrimary) {
        let Some(k) = c.constraint() else { continue };
        if k.indexname.is_empty() {
            continue;
        }
        let Some(columns) = index_columns(cx, &c.table, &k.indexname, c.stmt) else {
            // Issue #10: an index from an earlier migration was skipped silently.
            sink.push(unknown_columns(cx, &c, &k.indexname));
            continue;
        };
        let nullable: Vec<&String> = columns
            .iter()
            .filter(|col| !known_not_null(cx, &c.table, col, c.stmt))
            .collect();
        let Some(first) = nullable.first() else {
            continue;
        };
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!("PRIMARY KEY USING INDEX `{}` makes `{}.{first}` NOT NULL with a full scan under an {AEL}", k.indexname, c.table),
            )
            .help(HELP)
            .maybe_severity(cx.size_severity(&c.table)),
        );
    }
}

const HELP: &str = "SET NOT NULL first via a validated CHECK (col IS NOT NULL), then attach the index. ratchet operation: `create_constraint`";

/// The index is not in this file nor (without `--database-url`) known: say what happens
/// unless its columns are NOT NULL already, as a warning.
fn unknown_columns(cx: &Context<'_>, c: &common::Cmd<'_>, index: &str) -> Diagnostic {
    let check = if cx.catalog.is_some() {
        "the database does not list this index"
    } else {
        "run with --database-url to check"
    };
    Diagnostic::new(
        c.stmt.span,
        format!("PRIMARY KEY USING INDEX `{index}` sets NOT NULL on its columns: a full scan of `{}` under an {AEL} unless they are already NOT NULL ({check})", c.table),
    )
    .help(HELP)
    .severity(Severity::Warning)
}

fn index_columns(
    cx: &Context<'_>,
    table: &QualifiedName,
    index: &str,
    stmt: &Statement,
) -> Option<Vec<String>> {
    let in_file = cx.before(stmt).iter().find_map(|s| match &s.node {
        NodeEnum::IndexStmt(i) if i.idxname == index => Some(ast::key_names(&i.index_params)),
        _ => None,
    });
    in_file
        .or_else(|| {
            cx.table_info(table)?
                .indexes
                .iter()
                .find(|i| i.name == index)
                .map(|i| i.columns.clone())
        })
        .or_else(|| {
            // Built by an earlier file of the run.
            let (file, on, columns) = cx.prior.indexes.get(index)?;
            (*file < cx.file_index && *on == table.name).then(|| columns.clone())
        })
}

fn known_not_null(cx: &Context<'_>, table: &QualifiedName, column: &str, stmt: &Statement) -> bool {
    cx.table_info(table)
        .and_then(|t| t.column(column))
        .is_some_and(|c| c.not_null)
        || cx
            .prior
            .not_null
            .get(&(table.name.clone(), column.to_string()))
            .is_some_and(|f| *f < cx.file_index)
        || cx.before(stmt).iter().any(|s| {
            ast::alter_table(&s.node).is_some_and(|a| {
                ast::alter_table_name(a).is_some_and(|t| t.same_as(table))
                    && ast::alter_cmds(a).any(|cmd| {
                        ast::cmd_type(cmd) == AlterTableType::AtSetNotNull && cmd.name == column
                    })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;

    #[test]
    fn fires_when_index_from_file_is_nullable() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE UNIQUE INDEX CONCURRENTLY events_pkey ON events (id);\nALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;"
        ));
    }

    // Issue #10: an index built by an earlier migration got no finding at all.
    #[test]
    fn index_from_earlier_migration_warns() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;"
        ));
    }

    // The recommended pattern across migrations: NOT NULL and the index in earlier files.
    #[test]
    fn not_null_and_index_from_earlier_files_are_fine() {
        let settings = crate::Settings::default();
        let report = crate::Linter::single(&RULE, &settings, None).lint_inputs(vec![
            crate::Input::sql("001.sql", "ALTER TABLE events ALTER COLUMN id SET NOT NULL;"),
            crate::Input::sql("002.sql", "CREATE UNIQUE INDEX CONCURRENTLY events_pkey ON events (id);"),
            crate::Input::sql("003.sql", "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;"),
        ]);
        assert!(report.findings().next().is_none(), "{:?}", report.files[2].findings);
        // Without the NOT NULL, the index from 002 is known and its column nullable.
        let report = crate::Linter::single(&RULE, &settings, None).lint_inputs(vec![
            crate::Input::sql("002.sql", "CREATE UNIQUE INDEX CONCURRENTLY events_pkey ON events (id);"),
            crate::Input::sql("003.sql", "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;"),
        ]);
        let found: Vec<_> = report.findings().map(|(_, f)| f.message.clone()).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("`events.id` NOT NULL with a full scan"), "{found:?}");
    }

    #[test]
    fn not_null_first_is_fine() {
        lint_ok(
            &RULE,
            "CREATE UNIQUE INDEX CONCURRENTLY events_pkey ON events (id);\nALTER TABLE events ALTER COLUMN id SET NOT NULL;\n\
             ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;",
        );
    }
}
