//! C3 `non-idempotent-ddl`: DDL outside a transaction that cannot simply be rerun after a
//! partial failure.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::ast;
use crate::context::Statement;
use crate::{Context, Diagnostic, Edit, Fix, Severity, Sink, Span};

crate::declare_rule! {
    /// ## What it detects
    /// Statements that run outside a transaction (no BEGIN, no runner wrapper) and would
    /// fail on a rerun: `CREATE TABLE/INDEX/SCHEMA/SEQUENCE/EXTENSION` without
    /// `IF NOT EXISTS`, `DROP …` without `IF EXISTS`, `ADD COLUMN` without
    /// `IF NOT EXISTS`, `DROP COLUMN/CONSTRAINT` without `IF EXISTS`. Not a bare
    /// `CREATE INDEX CONCURRENTLY`: it is the recommended form, and `IF NOT EXISTS` there
    /// would keep the INVALID index a failed build leaves behind.
    ///
    /// ## Why it is dangerous
    /// Without a transaction, a failure halfway leaves the earlier statements applied, and
    /// rerunning the file then fails on the first of them. This matters most for
    /// `DROP INDEX CONCURRENTLY` (`warning`), which cannot run in a transaction at all;
    /// for the rest it is `info`, since most runners wrap files in a transaction (say so
    /// with `--assume-in-transaction`). Beware: after a failed `CREATE INDEX
    /// CONCURRENTLY`, `IF NOT EXISTS` silently accepts the INVALID index it left behind.
    ///
    /// ## What to do instead
    /// Run the file in a transaction, or add the guards (the autofix). To retry a failed
    /// concurrent build, `DROP INDEX CONCURRENTLY IF EXISTS` the INVALID index first. ratchet's operations are idempotent and checkpointed: a rerun
    /// finishes the job, and a failed concurrent build is cleaned up.
    ///
    /// ## Example
    /// ```sql
    /// -- ratchet:no-transaction
    /// DROP INDEX CONCURRENTLY orders_user_id_idx;
    /// -- instead
    /// DROP INDEX CONCURRENTLY IF EXISTS orders_user_id_idx;
    /// ```
    code: "C3",
    name: "non-idempotent-ddl",
    severity: Warning,
    summary: "DDL outside a transaction without IF [NOT] EXISTS fails on a rerun",
    check: check,
}

/// Words between DROP and the object name (`DROP MATERIALIZED VIEW`, `DROP INDEX CONCURRENTLY`).
const DROP_KIND_WORDS: &[&str] = &[
    "table",
    "index",
    "concurrently",
    "view",
    "materialized",
    "sequence",
    "schema",
    "type",
    "domain",
    "extension",
    "function",
    "procedure",
    "routine",
    "trigger",
    "policy",
    "foreign",
    "aggregate",
    "collation",
    "publication",
    "statistics",
    "server",
    "rule",
];

struct Finding {
    what: String,
    concurrent: bool,
    edit: Option<Edit>,
}

fn word(cx: &Context<'_>, span: Span) -> String {
    cx.text(span).to_ascii_lowercase()
}

/// Insert `text` right after the first token spelled `after` (or after CONCURRENTLY when
/// it follows).
fn after_keyword(cx: &Context<'_>, stmt: &Statement, after: &str, text: &str) -> Option<Edit> {
    let tokens: Vec<Span> = cx.tokens_in(stmt.span).map(|t| t.span).collect();
    let i = tokens.iter().position(|t| word(cx, *t) == after)?;
    let anchor = match tokens.get(i + 1) {
        Some(next) if word(cx, *next) == "concurrently" => *next,
        _ => tokens[i],
    };
    Some(Edit::insert(anchor.end, text))
}

fn drop_edit(cx: &Context<'_>, stmt: &Statement) -> Option<Edit> {
    let mut tokens = cx.tokens_in(stmt.span).map(|t| t.span);
    let first = tokens.next().filter(|t| word(cx, *t) == "drop")?;
    let mut last = first;
    for t in tokens {
        if !DROP_KIND_WORDS.contains(&word(cx, t).as_str()) {
            break;
        }
        last = t;
    }
    (last != first).then(|| Edit::insert(last.end, " IF EXISTS"))
}

/// `IF EXISTS` after `DROP [COLUMN|CONSTRAINT]` of a single-command ALTER TABLE.
fn alter_drop_edit(cx: &Context<'_>, stmt: &Statement, keyword: &str) -> Option<Edit> {
    let tokens: Vec<Span> = cx.tokens_in(stmt.span).map(|t| t.span).collect();
    let i = tokens.iter().position(|t| word(cx, *t) == "drop")?;
    let anchor = match tokens.get(i + 1) {
        Some(next) if word(cx, *next) == keyword => *next,
        _ if keyword == "column" => tokens[i],
        _ => return None,
    };
    Some(Edit::insert(anchor.end, " IF EXISTS"))
}

fn findings(cx: &Context<'_>, stmt: &Statement) -> Vec<Finding> {
    let one = |what: &str, concurrent: bool, edit: Option<Edit>| {
        vec![Finding {
            what: what.to_string(),
            concurrent,
            edit,
        }]
    };
    match &stmt.node {
        NodeEnum::CreateStmt(c) if !c.if_not_exists => one(
            "CREATE TABLE without IF NOT EXISTS",
            false,
            after_keyword(cx, stmt, "table", " IF NOT EXISTS"),
        ),
        // A bare CREATE INDEX CONCURRENTLY is the recommended form: IF NOT EXISTS would accept
        // the INVALID index a failed build leaves behind (issue #10).
        NodeEnum::IndexStmt(i) if !i.if_not_exists && !i.concurrent => {
            // IF NOT EXISTS needs an index name.
            let edit = if i.idxname.is_empty() {
                None
            } else {
                after_keyword(cx, stmt, "index", " IF NOT EXISTS")
            };
            one("CREATE INDEX without IF NOT EXISTS", i.concurrent, edit)
        }
        NodeEnum::CreateSchemaStmt(s) if !s.if_not_exists => one(
            "CREATE SCHEMA without IF NOT EXISTS",
            false,
            after_keyword(cx, stmt, "schema", " IF NOT EXISTS"),
        ),
        NodeEnum::CreateSeqStmt(s) if !s.if_not_exists => one(
            "CREATE SEQUENCE without IF NOT EXISTS",
            false,
            after_keyword(cx, stmt, "sequence", " IF NOT EXISTS"),
        ),
        NodeEnum::CreateExtensionStmt(e) if !e.if_not_exists => one(
            "CREATE EXTENSION without IF NOT EXISTS",
            false,
            after_keyword(cx, stmt, "extension", " IF NOT EXISTS"),
        ),
        NodeEnum::DropStmt(d) if !d.missing_ok => {
            one("DROP without IF EXISTS", d.concurrent, drop_edit(cx, stmt))
        }
        NodeEnum::AlterTableStmt(a) => {
            let single = a.cmds.len() == 1;
            let mut out = Vec::new();
            for cmd in ast::alter_cmds(a).filter(|c| !c.missing_ok) {
                match ast::cmd_type(cmd) {
                    AlterTableType::AtAddColumn => {
                        let edit = ast::cmd_column_def(cmd).and_then(|d| {
                            let at = usize::try_from(d.location).ok()?;
                            let token = cx.tokens_in(Span::new(at, stmt.span.end)).next()?;
                            let name = cx.text(token.span).trim_matches('"');
                            (token.span.start == at && name.eq_ignore_ascii_case(&d.colname))
                                .then(|| Edit::insert(at, "IF NOT EXISTS "))
                        });
                        out.push(Finding {
                            what: "ADD COLUMN without IF NOT EXISTS".into(),
                            concurrent: false,
                            edit,
                        });
                    }
                    AlterTableType::AtDropColumn => out.push(Finding {
                        what: "DROP COLUMN without IF EXISTS".into(),
                        concurrent: false,
                        edit: single
                            .then(|| alter_drop_edit(cx, stmt, "column"))
                            .flatten(),
                    }),
                    AlterTableType::AtDropConstraint => out.push(Finding {
                        what: "DROP CONSTRAINT without IF EXISTS".into(),
                        concurrent: false,
                        edit: single
                            .then(|| alter_drop_edit(cx, stmt, "constraint"))
                            .flatten(),
                    }),
                    _ => {}
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        if stmt.tx.in_transaction {
            continue;
        }
        let found = findings(cx, stmt);
        if found.is_empty() {
            continue;
        }
        let concurrent = found.iter().any(|f| f.concurrent);
        let what: Vec<String> = found.iter().map(|f| f.what.clone()).collect();
        let mut help = "add the guard, or run the file in a transaction; ratchet's operations are idempotent and resume after a failure".to_string();
        if concurrent {
            help.push_str(
                "; after a failed CONCURRENTLY build, IF NOT EXISTS accepts the INVALID index left behind: check pg_index.indisvalid or DROP INDEX CONCURRENTLY IF EXISTS before retrying",
            );
        }
        let mut diagnostic = Diagnostic::new(
            stmt.span,
            format!(
                "{} outside a transaction: if the file fails after this statement, rerunning it fails here",
                what.join(", ")
            ),
        )
        .help(help)
        .maybe_severity((!concurrent).then_some(Severity::Info));
        let edits: Vec<Edit> = found.into_iter().filter_map(|f| f.edit).collect();
        if edits.len() == what.len() {
            let guarded = what.iter().filter(|w| w.contains("NOT EXISTS")).count();
            let title = match guarded {
                0 => "add IF EXISTS",
                n if n == what.len() => "add IF NOT EXISTS",
                _ => "add IF [NOT] EXISTS",
            };
            diagnostic = diagnostic.fix(Fix::new(title, edits));
        }
        sink.push(diagnostic);
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{in_transaction, lint_errors, lint_ok, lint_ok_with};

    #[test]
    fn concurrent_drop_is_a_warning() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "DROP INDEX CONCURRENTLY orders_user_id_idx;"
        ));
    }

    // Issue #10: IF NOT EXISTS would keep the INVALID index of a failed build.
    #[test]
    fn bare_create_index_concurrently_is_fine() {
        lint_ok(
            &RULE,
            "-- ratchet:no-transaction\nCREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);\nCREATE UNIQUE INDEX CONCURRENTLY orders_ref_idx ON orders (ref);",
        );
    }

    #[test]
    fn plain_ddl_is_info_with_fixes() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE TABLE t (a int);\nALTER TABLE users ADD COLUMN nickname text;\nDROP MATERIALIZED VIEW stats;\nALTER TABLE users DROP CONSTRAINT users_x_check;"
        ));
    }

    #[test]
    fn ignores_guarded_ddl() {
        lint_ok(
            &RULE,
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON orders (user_id);\nDROP TABLE IF EXISTS t;\nALTER TABLE users ADD COLUMN IF NOT EXISTS nickname text;",
        );
    }

    #[test]
    fn ignores_ddl_in_a_transaction() {
        lint_ok_with(
            &RULE,
            "CREATE TABLE t (a int);\nDROP TABLE old;",
            &in_transaction(),
            None,
        );
        lint_ok(&RULE, "BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;");
    }
}
