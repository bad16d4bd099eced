//! D9 `naming-convention`: names that do not match the project's configured patterns.

use pg_query::protobuf::{AlterTableType, ConstrType, Constraint, ObjectType};
use pg_query::NodeEnum;
use regex::Regex;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// Opt-in (enable `naming-convention`): new schemas, tables, columns, indexes,
    /// foreign keys and check constraints (CREATE, ADD, RENAME) whose names do not match
    /// a pattern. Default for every kind: `^[a-z_][a-z0-9_]*$` (snake_case, no quoting
    /// needed). Configure per kind (a regular expression, matched against the whole
    /// name):
    ///
    /// ```toml
    /// [lint.rules.naming-convention]
    /// table = "^[a-z][a-z0-9_]*s$"
    /// index = "^[a-z0-9_]+_idx$"
    /// foreign_key = "^fk_[a-z0-9_]+$"
    /// check = "^ck_[a-z0-9_]+$"
    /// column = "^[a-z][a-z0-9_]*$"
    /// schema = "^[a-z]+$"
    /// ```
    ///
    /// ## Why it is dangerous
    /// Consistency only (`info`): mixed-case names must be quoted forever, and names that
    /// do not say what they are make incident work slower.
    ///
    /// ## What to do instead
    /// Rename the object in the migration that creates it.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE "UserAccounts" (id bigint);
    /// ```
    code: "D9",
    name: "naming-convention",
    severity: Info,
    category: Policy,
    enabled_by_default: false,
    summary: "names that do not match the configured naming patterns",
    check: check,
}

const DEFAULT_PATTERN: &str = "^[a-z_][a-z0-9_]*$";
const KINDS: &[&str] = &["schema", "table", "column", "index", "foreign_key", "check"];

fn named(out: &mut Vec<(&'static str, String)>, kind: &'static str, name: &str) {
    if !name.is_empty() {
        out.push((kind, name.to_string()));
    }
}

fn constraint_names(out: &mut Vec<(&'static str, String)>, c: &Constraint) {
    match ast::constr_type(c) {
        ConstrType::ConstrForeign => named(out, "foreign_key", &c.conname),
        ConstrType::ConstrCheck => named(out, "check", &c.conname),
        _ => {}
    }
}

/// The (kind, name) pairs a statement introduces.
fn new_names(node: &NodeEnum) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match node {
        NodeEnum::CreateSchemaStmt(s) => named(&mut out, "schema", &s.schemaname),
        NodeEnum::CreateStmt(c) => {
            if let Some(rv) = &c.relation {
                named(&mut out, "table", &rv.relname);
            }
            for elt in &c.table_elts {
                match ast::inner(elt) {
                    Some(NodeEnum::ColumnDef(d)) => {
                        named(&mut out, "column", &d.colname);
                        ast::column_constraints(d).for_each(|k| constraint_names(&mut out, k));
                    }
                    Some(NodeEnum::Constraint(k)) => constraint_names(&mut out, k),
                    _ => {}
                }
            }
        }
        NodeEnum::IndexStmt(i) => named(&mut out, "index", &i.idxname),
        NodeEnum::AlterTableStmt(_) => {
            let Some(a) = ast::alter_table(node) else {
                return out;
            };
            for cmd in ast::alter_cmds(a) {
                match ast::cmd_type(cmd) {
                    AlterTableType::AtAddColumn => {
                        if let Some(d) = ast::cmd_column_def(cmd) {
                            named(&mut out, "column", &d.colname);
                            ast::column_constraints(d).for_each(|k| constraint_names(&mut out, k));
                        }
                    }
                    AlterTableType::AtAddConstraint => {
                        if let Some(k) = ast::cmd_constraint(cmd) {
                            constraint_names(&mut out, k);
                        }
                    }
                    _ => {}
                }
            }
        }
        NodeEnum::RenameStmt(r) => {
            let kind = match ast::object_type(r.rename_type) {
                ObjectType::ObjectTable => "table",
                ObjectType::ObjectColumn => "column",
                ObjectType::ObjectIndex => "index",
                ObjectType::ObjectSchema => "schema",
                _ => return out,
            };
            named(&mut out, kind, &r.newname);
        }
        _ => {}
    }
    out
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    let mut patterns = Vec::new();
    for kind in KINDS {
        let configured = cx
            .settings
            .rule_option(&RULE, kind)
            .and_then(|v| v.as_str());
        let source = configured.unwrap_or(DEFAULT_PATTERN);
        match Regex::new(source) {
            Ok(re) => patterns.push((*kind, re, source.to_string())),
            Err(e) => {
                let span = cx.statements().first().map(|s| s.span).unwrap_or_default();
                sink.push(
                    Diagnostic::new(
                        span,
                        format!("naming-convention: invalid `{kind}` pattern `{source}`: {e}"),
                    )
                    .help("fix the pattern in [lint.rules.naming-convention]"),
                );
                return;
            }
        }
    }
    for stmt in cx.statements() {
        for (kind, name) in new_names(&stmt.node) {
            let Some((_, re, source)) = patterns.iter().find(|(k, _, _)| *k == kind) else {
                continue;
            };
            if re.is_match(&name) {
                continue;
            }
            sink.push(
                Diagnostic::new(stmt.span, format!("{} name `{name}` does not match the naming convention `{source}`", kind.replace('_', " ")))
                    .help("rename it in the migration that creates it, or adjust [lint.rules.naming-convention]"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_errors_with, lint_ok};
    use crate::Settings;

    #[test]
    fn fires_on_a_quoted_mixed_case_table() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE TABLE \"UserAccounts\" (id bigint, \"createdAt\" timestamptz);"
        ));
    }

    #[test]
    fn uses_configured_patterns() {
        let mut settings = Settings::default();
        let options: toml::Table = toml::from_str("index = \"_idx$\"").unwrap_or_default();
        settings.options.insert("naming-convention".into(), options);
        insta::assert_snapshot!(lint_errors_with(
            &RULE,
            "CREATE INDEX orders_user ON orders (user_id);",
            &settings,
            None
        ));
    }

    #[test]
    fn ignores_snake_case() {
        lint_ok(&RULE, "CREATE TABLE user_accounts (id bigint, created_at timestamptz);\nCREATE INDEX user_accounts_id_idx ON user_accounts (id);");
    }
}
