//! The per-file view a rule works on: the statement list (parsed once), where each
//! statement sits in a transaction, which timeouts are in effect, the lock it takes, and
//! what the file (and earlier files of the same run) already did.

use std::collections::HashMap;

use pg_query::protobuf::{AlterTableType, ConstrType, TransactionStmtKind, VariableSetKind};
use pg_query::NodeEnum;

use crate::ast::{self, QualifiedName};
use crate::catalog::{Catalog, TableInfo};
use crate::locks::{self, Lock};
use crate::rule::{Severity, Span};
use crate::settings::{PgVersion, Settings};
use crate::source::{LineIndex, ParsedSource, Token};

/// Where a statement runs relative to transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tx {
    /// Inside a transaction (explicit BEGIN, or the runner's wrapper).
    pub in_transaction: bool,
    /// Inside an explicit `BEGIN … COMMIT` written in the file.
    pub explicit: bool,
    /// Statements with the same id commit together.
    pub id: usize,
}

/// One top-level statement with everything rules commonly need.
#[derive(Debug, Clone)]
pub struct Statement {
    pub index: usize,
    pub node: NodeEnum,
    /// First to last token, without the `;`.
    pub span: Span,
    pub tx: Tx,
    /// The lock taken on an existing table, if any (see [`crate::locks`]).
    pub lock: Option<Lock>,
    /// A non-zero `lock_timeout` is in effect for this statement.
    pub lock_timeout: bool,
    /// A non-zero `statement_timeout` is in effect for this statement.
    pub statement_timeout: bool,
}

/// `(file index, base type, type modifiers)` of one column declaration.
pub type TypeDecl = (usize, String, Vec<i64>);

/// Facts from files linted earlier in the same run (in path order), e.g. a CHECK
/// validated in an earlier migration.
#[derive(Debug, Clone, Default)]
pub struct PriorFacts {
    /// `(table, constraint)` → index of the first file that validated it (or added it valid).
    pub validated: HashMap<(String, String), usize>,
    /// `(table, constraint)` → `(file index, column)` for `CHECK (col IS NOT NULL)`.
    pub not_null_checks: HashMap<(String, String), (usize, String)>,
    /// `(table, constraint)` → index of the first file that added it `NOT VALID`.
    pub not_valid: HashMap<(String, String), usize>,
    /// Partitioned tables (`CREATE TABLE … PARTITION BY`) → index of the file that created them.
    pub partitioned: HashMap<String, usize>,
    /// `(table, column)` → `(file index, base type, type modifiers)` of every declaration
    /// (CREATE TABLE, ADD COLUMN, ALTER COLUMN TYPE), in file order.
    pub column_types: HashMap<(String, String), Vec<TypeDecl>>,
    /// Index name → `(file index, table, key columns)` of `CREATE INDEX` statements.
    pub indexes: HashMap<String, (usize, String, Vec<String>)>,
    /// `(table, column)` → index of the first file that made it NOT NULL (`SET NOT NULL`).
    pub not_null: HashMap<(String, String), usize>,
}

impl PriorFacts {
    /// Records what file `file_index` did.
    pub fn absorb<'n>(&mut self, file_index: usize, nodes: impl Iterator<Item = &'n NodeEnum>) {
        for node in nodes {
            for (table, column, ty) in declared_types(node) {
                self.column_types
                    .entry((table.name, column))
                    .or_default()
                    .push((file_index, ast::type_base_name(ty), ast::type_mods(ty)));
            }
            if let NodeEnum::IndexStmt(i) = node {
                if let (false, Some(rel)) = (i.idxname.is_empty(), &i.relation) {
                    self.indexes.entry(i.idxname.clone()).or_insert((
                        file_index,
                        rel.relname.clone(),
                        ast::key_names(&i.index_params),
                    ));
                }
            }
            if let NodeEnum::CreateStmt(c) = node {
                if let (Some(_), Some(rel)) = (&c.partspec, &c.relation) {
                    self.partitioned
                        .entry(rel.relname.clone())
                        .or_insert(file_index);
                }
            }
            let Some(a) = ast::alter_table(node) else {
                continue;
            };
            let Some(table) = ast::alter_table_name(a) else {
                continue;
            };
            for cmd in ast::alter_cmds(a) {
                match ast::cmd_type(cmd) {
                    AlterTableType::AtAddConstraint => {
                        let Some(c) = ast::cmd_constraint(cmd) else {
                            continue;
                        };
                        let key = (table.name.clone(), c.conname.clone());
                        if let Some(col) = c
                            .raw_expr
                            .as_deref()
                            .and_then(ast::inner)
                            .and_then(ast::is_not_null_check)
                        {
                            self.not_null_checks
                                .entry(key.clone())
                                .or_insert((file_index, col));
                        }
                        let map = if c.skip_validation {
                            &mut self.not_valid
                        } else {
                            &mut self.validated
                        };
                        map.entry(key).or_insert(file_index);
                    }
                    AlterTableType::AtValidateConstraint => {
                        self.validated
                            .entry((table.name.clone(), cmd.name.clone()))
                            .or_insert(file_index);
                    }
                    AlterTableType::AtSetNotNull => {
                        self.not_null
                            .entry((table.name.clone(), cmd.name.clone()))
                            .or_insert(file_index);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Everything a rule sees about one file.
#[derive(Debug)]
pub struct Context<'a> {
    pub path: &'a str,
    pub source: &'a str,
    pub settings: &'a Settings,
    pub catalog: Option<&'a Catalog>,
    pub prior: &'a PriorFacts,
    /// Position of this file in the run (facts of files with a smaller index are "earlier").
    pub file_index: usize,
    /// The file's `-- ratchet:transaction` (`Some(true)`) / `-- ratchet:no-transaction` directive.
    pub directive: Option<bool>,
    /// The runner wraps the whole file in one transaction.
    pub wrapped: bool,
    statements: Vec<Statement>,
    tokens: Vec<Token>,
    lines: LineIndex,
}

impl<'a> Context<'a> {
    /// Builds the context from a parsed file.
    pub fn new(
        path: &'a str,
        source: &'a str,
        parsed: ParsedSource,
        settings: &'a Settings,
        catalog: Option<&'a Catalog>,
        prior: &'a PriorFacts,
        file_index: usize,
    ) -> Context<'a> {
        let directive = transaction_directive(source, &parsed.tokens);
        let wrapped = directive.unwrap_or(settings.assume_in_transaction);
        let statements = annotate(parsed.statements, wrapped);
        Context {
            path,
            source,
            settings,
            catalog,
            prior,
            file_index,
            directive,
            wrapped,
            statements,
            tokens: parsed.tokens,
            lines: LineIndex::new(source),
        }
    }

    /// The file's statements in order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The statements before `stmt`.
    pub fn before(&self, stmt: &Statement) -> &[Statement] {
        &self.statements[..stmt.index.min(self.statements.len())]
    }

    /// The statements after `stmt`.
    pub fn after(&self, stmt: &Statement) -> &[Statement] {
        self.statements.get(stmt.index + 1..).unwrap_or(&[])
    }

    /// Text of a span (empty if out of range).
    pub fn text(&self, span: Span) -> &'a str {
        self.source.get(span.start..span.end).unwrap_or("")
    }

    /// The statement's SQL.
    pub fn sql(&self, stmt: &Statement) -> &'a str {
        self.text(stmt.span)
    }

    /// All tokens of the file (comments included).
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The non-comment tokens inside `span`.
    pub fn tokens_in(&self, span: Span) -> impl Iterator<Item = &Token> {
        let first = self.tokens.partition_point(|t| t.span.start < span.start);
        self.tokens[first..]
            .iter()
            .take_while(move |t| t.span.end <= span.end)
            .filter(|t| !t.is_comment())
    }

    /// The first token inside `span` spelled `word` (case-insensitive), e.g. a keyword to
    /// anchor an autofix.
    pub fn find_word(&self, span: Span, word: &str) -> Option<Span> {
        self.tokens_in(span)
            .find(|t| self.text(t.span).eq_ignore_ascii_case(word))
            .map(|t| t.span)
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        self.lines.line_col(self.source, offset)
    }

    /// The target server version.
    pub fn pg_version(&self) -> PgVersion {
        self.settings.pg_version
    }

    /// The earlier statement of this file that created `table`, if any.
    pub fn created_in_file(&self, table: &QualifiedName, before: &Statement) -> Option<&Statement> {
        self.before(before)
            .iter()
            .find(|s| created_table(&s.node).is_some_and(|t| t.same_as(table)))
    }

    /// `table` was created earlier in this file, so it is empty and unseen by the application:
    /// locks on it block nobody.
    pub fn is_new_table(&self, table: &QualifiedName, stmt: &Statement) -> bool {
        self.created_in_file(table, stmt).is_some()
    }

    /// Catalog facts about `table` (only with `--database-url`).
    pub fn table_info(&self, table: &QualifiedName) -> Option<&'a TableInfo> {
        self.catalog?.table(table)
    }

    /// With a database: `info` for a tiny table, `error` for a large one, `None` otherwise
    /// (keep the rule's default). Use for findings whose harm grows with the table.
    pub fn size_severity(&self, table: &QualifiedName) -> Option<Severity> {
        let info = self.table_info(table)?;
        if info.rows < self.settings.small_table_rows {
            Some(Severity::Info)
        } else if info.rows >= self.settings.large_table_rows {
            Some(Severity::Error)
        } else {
            None
        }
    }

    /// A short note on the table's size when the catalog knows it, e.g. " (~50000000 rows)".
    pub fn size_note(&self, table: &QualifiedName) -> String {
        match self.table_info(table) {
            Some(t) => format!(" (~{} rows)", t.rows.round()),
            None => String::new(),
        }
    }

    /// A CHECK `(column IS NOT NULL)` on `table` that is validated before `stmt` (earlier in
    /// this file, or in an earlier file of the run), so `SET NOT NULL` skips its scan (PG≥12).
    pub fn has_validated_not_null_check(
        &self,
        table: &QualifiedName,
        column: &str,
        stmt: &Statement,
    ) -> bool {
        let mut local = PriorFacts::default();
        local.absorb(usize::MAX, self.before(stmt).iter().map(|s| &s.node));
        let checks = local.not_null_checks.iter().chain(
            self.prior
                .not_null_checks
                .iter()
                .filter(|(_, (f, _))| *f < self.file_index),
        );
        checks
            .filter(|(k, (_, col))| k.0 == table.name && col == column)
            .any(|(k, _)| {
                local.validated.contains_key(k)
                    || self
                        .prior
                        .validated
                        .get(k)
                        .is_some_and(|f| *f < self.file_index)
            })
            || self.table_info(table).is_some_and(|t| {
                t.checks.iter().any(|(_, def, valid)| {
                    *valid
                        && def.replace(['(', ')', '"'], "").trim()
                            == format!("CHECK {column} IS NOT NULL")
                })
            })
    }

    /// The type a column was last declared with before `stmt`: earlier in this file (CREATE
    /// TABLE, ADD COLUMN, ALTER COLUMN TYPE) or in an earlier file of the run.
    pub fn declared_column_type(
        &self,
        table: &QualifiedName,
        column: &str,
        stmt: &Statement,
    ) -> Option<(String, Vec<i64>)> {
        let here = self.before(stmt).iter().rev().find_map(|s| {
            declared_types(&s.node)
                .into_iter()
                .find(|(t, c, _)| t.same_as(table) && c == column)
                .map(|(_, _, ty)| (ast::type_base_name(ty), ast::type_mods(ty)))
        });
        here.or_else(|| {
            let history = self
                .prior
                .column_types
                .get(&(table.name.clone(), column.to_string()))?;
            history
                .iter()
                .rev()
                .find(|(f, _, _)| *f < self.file_index)
                .map(|(_, base, mods)| (base.clone(), mods.clone()))
        })
    }

    /// `table` is partitioned: per the catalog, an earlier file, or earlier in this file.
    pub fn is_partitioned(&self, table: &QualifiedName, stmt: &Statement) -> bool {
        self.table_info(table).is_some_and(|t| t.partitioned)
            || self
                .prior
                .partitioned
                .get(&table.name)
                .is_some_and(|f| *f < self.file_index)
            || self.before(stmt).iter().any(|s| match &s.node {
                NodeEnum::CreateStmt(c) => {
                    c.partspec.is_some()
                        && c.relation
                            .as_ref()
                            .is_some_and(|r| ast::range_var_name(r).same_as(table))
                }
                _ => false,
            })
    }

    /// The earlier statement of this file that added constraint `name` on `table` `NOT VALID`.
    pub fn not_valid_added_in_file(
        &self,
        table: &QualifiedName,
        name: &str,
        stmt: &Statement,
    ) -> Option<&Statement> {
        self.before(stmt).iter().find(|s| {
            let Some(a) = ast::alter_table(&s.node) else {
                return false;
            };
            ast::alter_table_name(a).is_some_and(|t| t.same_as(table))
                && ast::alter_cmds(a).any(|c| {
                    ast::cmd_type(c) == AlterTableType::AtAddConstraint
                        && ast::cmd_constraint(c)
                            .is_some_and(|k| k.skip_validation && k.conname == name)
                })
        })
    }
}

/// The table a statement creates (CREATE TABLE, CREATE TABLE AS, SELECT INTO).
pub fn created_table(node: &NodeEnum) -> Option<QualifiedName> {
    match node {
        NodeEnum::CreateStmt(c) => c.relation.as_ref().map(ast::range_var_name),
        NodeEnum::CreateTableAsStmt(c) => c.into.as_ref()?.rel.as_ref().map(ast::range_var_name),
        _ => None,
    }
}

/// Column types a statement declares: `(table, column, type)`.
pub fn declared_types(
    node: &NodeEnum,
) -> Vec<(QualifiedName, String, &pg_query::protobuf::TypeName)> {
    let mut out = Vec::new();
    match node {
        NodeEnum::CreateStmt(c) => {
            let Some(table) = c.relation.as_ref().map(ast::range_var_name) else {
                return out;
            };
            for e in c.table_elts.iter().filter_map(ast::inner) {
                if let NodeEnum::ColumnDef(d) = e {
                    if let Some(t) = &d.type_name {
                        out.push((table.clone(), d.colname.clone(), t));
                    }
                }
            }
        }
        node => {
            let Some(a) = ast::alter_table(node) else {
                return out;
            };
            let Some(table) = ast::alter_table_name(a) else {
                return out;
            };
            for cmd in ast::alter_cmds(a) {
                let Some(d) = ast::cmd_column_def(cmd) else {
                    continue;
                };
                let Some(t) = &d.type_name else { continue };
                match ast::cmd_type(cmd) {
                    AlterTableType::AtAddColumn => out.push((table.clone(), d.colname.clone(), t)),
                    AlterTableType::AtAlterColumnType => {
                        out.push((table.clone(), cmd.name.clone(), t))
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// Reads `-- ratchet:no-transaction` / `-- ratchet:transaction` from the comments.
fn transaction_directive(source: &str, tokens: &[Token]) -> Option<bool> {
    tokens.iter().filter(|t| t.is_comment()).find_map(|t| {
        let text = source.get(t.span.start..t.span.end)?;
        let body = text.trim_start_matches('-').trim_start_matches("/*").trim();
        let word = body.strip_prefix("ratchet:")?.split_whitespace().next()?;
        match word {
            "no-transaction" => Some(false),
            "transaction" => Some(true),
            _ => None,
        }
    })
}

fn annotate(parsed: Vec<crate::source::ParsedStatement>, wrapped: bool) -> Vec<Statement> {
    let mut out = Vec::with_capacity(parsed.len());
    let mut explicit = false;
    let mut tx_id = 0usize;
    let mut timeouts = Timeouts::default();
    // The runner's transaction ends at the first COMMIT/ROLLBACK the file runs (issue #10:
    // `COMMIT; CREATE INDEX CONCURRENTLY …; BEGIN;` runs the index build outside it).
    let mut wrapped = wrapped;
    for (index, p) in parsed.into_iter().enumerate() {
        let kind = match &p.node {
            NodeEnum::TransactionStmt(t) => TransactionStmtKind::try_from(t.kind).ok(),
            _ => None,
        };
        let tx = match kind {
            Some(TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart) => {
                tx_id += 1;
                explicit = true;
                Tx {
                    in_transaction: true,
                    explicit: true,
                    id: tx_id,
                }
            }
            Some(
                TransactionStmtKind::TransStmtCommit
                | TransactionStmtKind::TransStmtRollback
                | TransactionStmtKind::TransStmtPrepare,
            ) => {
                let tx = Tx {
                    in_transaction: explicit || wrapped,
                    explicit,
                    id: tx_id,
                };
                explicit = false;
                wrapped = false;
                timeouts.end_transaction();
                tx_id += 1;
                tx
            }
            _ if explicit => Tx {
                in_transaction: true,
                explicit: true,
                id: tx_id,
            },
            _ if wrapped => Tx {
                in_transaction: true,
                explicit: false,
                id: tx_id,
            },
            _ => {
                tx_id += 1;
                Tx {
                    in_transaction: false,
                    explicit: false,
                    id: tx_id,
                }
            }
        };
        if let NodeEnum::VariableSetStmt(v) = &p.node {
            timeouts.apply(v, tx_id);
        }
        let lock = locks::statement_lock(&p.node);
        out.push(Statement {
            index,
            node: p.node,
            span: p.span,
            tx,
            lock,
            lock_timeout: timeouts.lock.is_active(tx_id),
            statement_timeout: timeouts.statement.is_active(tx_id),
        });
        if !tx.in_transaction {
            // An autocommit statement's SET LOCAL ends with it.
            timeouts.end_transaction();
        }
    }
    out
}

#[derive(Debug, Default, Clone, Copy)]
struct Timeout {
    session: bool,
    local_tx: Option<usize>,
}

impl Timeout {
    fn is_active(&self, tx_id: usize) -> bool {
        self.session || self.local_tx == Some(tx_id)
    }
}

#[derive(Debug, Default)]
struct Timeouts {
    lock: Timeout,
    statement: Timeout,
}

impl Timeouts {
    fn apply(&mut self, v: &pg_query::protobuf::VariableSetStmt, tx_id: usize) {
        let kind = VariableSetKind::try_from(v.kind).unwrap_or(VariableSetKind::Undefined);
        if kind == VariableSetKind::VarResetAll {
            *self = Timeouts::default();
            return;
        }
        let target = match v.name.to_ascii_lowercase().as_str() {
            "lock_timeout" => &mut self.lock,
            "statement_timeout" => &mut self.statement,
            _ => return,
        };
        let on = kind == VariableSetKind::VarSetValue && !v.args.iter().any(is_zero);
        if v.is_local {
            target.local_tx = on.then_some(tx_id);
        } else {
            target.session = on;
            target.local_tx = None;
        }
    }

    fn end_transaction(&mut self) {
        self.lock.local_tx = None;
        self.statement.local_tx = None;
    }
}

fn is_zero(arg: &pg_query::Node) -> bool {
    match ast::inner(arg) {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(pg_query::protobuf::a_const::Val::Ival(i)) => i.ival == 0,
            Some(pg_query::protobuf::a_const::Val::Sval(s)) => {
                s.sval.trim().trim_end_matches("ms").trim() == "0"
            }
            _ => false,
        },
        _ => false,
    }
}

/// Whether a constraint is a FOREIGN KEY.
pub fn is_foreign_key(c: &pg_query::protobuf::Constraint) -> bool {
    ast::constr_type(c) == ConstrType::ConstrForeign
}
