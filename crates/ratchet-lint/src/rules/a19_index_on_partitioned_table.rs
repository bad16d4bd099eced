//! A19 `index-on-partitioned-table`.

use pg_query::NodeEnum;

use crate::ast;
use crate::rule::Diagnostic;
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `CREATE INDEX` (with or without `CONCURRENTLY`) on a partitioned parent table, known as
    /// partitioned from an earlier file of the run (`CREATE TABLE … PARTITION BY`) or from the
    /// catalog (`--database-url`). `CREATE INDEX … ON ONLY parent` is the safe first step and
    /// is not reported; a parent created in the same file is empty and exempt.
    ///
    /// ## Why it is dangerous
    /// `CONCURRENTLY` is not supported on partitioned tables (the statement fails), and a
    /// plain build takes a SHARE lock on every partition, blocking writes to all of them
    /// for the whole build.
    ///
    /// ## What to do instead
    /// `CREATE INDEX idx ON ONLY parent (…)` (an invalid, empty parent index), then
    /// `CREATE INDEX CONCURRENTLY` on each partition and `ALTER INDEX idx ATTACH PARTITION
    /// part_idx` for each; the parent index becomes valid when all are attached.
    ///
    /// ## Example
    /// ```sql
    /// CREATE INDEX measurement_logdate_idx ON measurement (logdate);  -- locks every partition
    /// ```
    code: "A19",
    name: "index-on-partitioned-table",
    severity: Error,
    summary: "CREATE INDEX on a partitioned parent locks every partition (CONCURRENTLY is not supported)",
    check: check,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::IndexStmt(index) = &stmt.node else {
            continue;
        };
        let Some(rel) = &index.relation else { continue };
        let table = ast::range_var_name(rel);
        if !rel.inh || cx.is_new_table(&table, stmt) || !cx.is_partitioned(&table, stmt) {
            continue;
        }
        let message = if index.concurrent {
            format!("CREATE INDEX CONCURRENTLY is not supported on partitioned table `{table}`: the migration fails")
        } else {
            format!("CREATE INDEX on partitioned table `{table}` takes a SHARE lock on every partition (blocks writes) for the whole build")
        };
        sink.push(Diagnostic::new(stmt.span, message).help(
            "CREATE INDEX … ON ONLY the parent, CREATE INDEX CONCURRENTLY on each partition, then ALTER INDEX … ATTACH PARTITION for each",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::*;
    use crate::{Input, Linter, Settings};

    #[test]
    fn fires_on_parent_from_earlier_file() {
        let settings = Settings::default();
        let report = Linter::single(&RULE, &settings, None).lint_inputs(vec![
            Input::sql(
                "001.sql",
                "CREATE TABLE measurement (logdate date) PARTITION BY RANGE (logdate);",
            ),
            Input::sql(
                "002.sql",
                "CREATE INDEX measurement_logdate_idx ON measurement (logdate);",
            ),
        ]);
        insta::assert_snapshot!(render_report(&report.files[1]));
    }

    #[test]
    fn on_only_is_fine() {
        lint_ok(
            &RULE,
            "CREATE INDEX measurement_logdate_idx ON ONLY measurement (logdate);",
        );
    }

    #[test]
    fn new_parent_in_same_file_is_fine() {
        lint_ok(
            &RULE,
            "CREATE TABLE m (d date) PARTITION BY RANGE (d);\nCREATE INDEX m_d ON m (d);",
        );
    }
}
