//! `ratchet convert`: turn a plain SQL migration into a ratchet migration file.
//!
//! Teams arrive with folders of hand-written (or ORM-generated) SQL. Rewriting each
//! change as expand/contract operations by hand is tedious and error-prone, so this
//! module reads the SQL with the real PostgreSQL parser (`pg_query`) and maps every
//! statement it recognises onto the equivalent ratchet operation, filling `up`/`down`
//! where the SQL determines them (a type change is a cast and back, a new NOT NULL is an
//! identity that fails on NULLs exactly as the SQL would). Everything else is kept, in
//! order, as a `sql` operation whose text starts with a comment saying why.
//!
//! Sub-expressions (types, defaults, check expressions, predicates) are rendered with
//! pg_query's deparser, never by pattern matching on the text: the node is placed into a
//! statement that the real parser produced (`SELECT 1`, `SELECT NULL::int`) and that
//! statement is deparsed. Building protobuf trees from scratch is avoided on purpose —
//! libpg_query asserts on enum fields left at their protobuf default.

use std::collections::HashMap;
use std::fmt;

use pg_query::protobuf::{self, node::Node as N};
use ratchet_spec::model::*;

/// PostgreSQL's NAMEDATALEN - 1: the longest identifier it keeps.
const MAX_IDENT: usize = 63;

/// The prefix of the comment put in front of statements kept as raw SQL.
pub const RAW_SQL_COMMENT: &str = "-- ratchet convert: kept as raw SQL:";

/// The result of converting one SQL file.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The migration file, ready for [`ratchet_spec::to_string`].
    pub file: MigrationFile,
    /// What the user should review: statements kept as SQL or dropped, guards lost,
    /// `up`/`down` expressions that could not be derived.
    pub notes: Vec<Note>,
}

/// How a note relates to the statement it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteKind {
    /// The statement has no ratchet operation and was kept as a `sql` operation.
    KeptAsSql,
    /// The statement was left out because ratchet does that job itself (BEGIN, COMMIT,
    /// `SET lock_timeout`, `VALIDATE CONSTRAINT` of a constraint this file adds).
    Dropped,
    /// The statement was converted, but something in the result deserves a look.
    Review,
}

impl fmt::Display for NoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoteKind::KeptAsSql => "kept as sql",
            NoteKind::Dropped => "dropped",
            NoteKind::Review => "review",
        })
    }
}

/// One remark about one statement of the input, at the statement's first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub file: String,
    /// 1-based line of the statement.
    pub line: usize,
    /// 1-based column (in characters) of the statement.
    pub column: usize,
    pub kind: NoteKind,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.kind, self.message
        )
    }
}

/// Why a file could not be converted at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The SQL does not parse; nothing is converted rather than half of it.
    #[error("{file}:{line}:{column}: syntax error: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file holds no statement, so there is no operation to write.
    #[error("{file}: no SQL statements to convert")]
    Empty { file: String },
}

/// Converts the SQL text of `file_name` into a ratchet migration file.
///
/// Statements are converted in order; a statement ratchet has no operation for becomes
/// a `sql` operation (with a leading comment giving the reason) so the result does
/// everything the input did. Returns an error only when the SQL does not parse or
/// contains no statement.
pub fn convert(sql: &str, file_name: &str) -> Result<Conversion, ConvertError> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)
        .map_err(|e| syntax_error(sql, file_name, &e))?;
    let mut converter = Converter::new(sql, file_name);
    for raw in &parsed.protobuf.stmts {
        converter.statement(raw);
    }
    if converter.ops.is_empty() && converter.notes.is_empty() {
        return Err(ConvertError::Empty {
            file: file_name.to_string(),
        });
    }
    Ok(Conversion {
        file: MigrationFile {
            version_schema: None,
            name: None,
            operations: converter.ops,
        },
        notes: converter.notes,
    })
}

/// A statement the converter cannot express as an operation, and why.
#[derive(Debug)]
struct Unsupported(String);

type Conv<T> = Result<T, Unsupported>;

fn unsupported<T>(reason: impl Into<String>) -> Conv<T> {
    Err(Unsupported(reason.into()))
}

/// What one statement turns into.
enum Outcome {
    Ops(Vec<Operation>),
    /// Left out on purpose, with the reason.
    Drop(String),
}

/// What earlier statements of the same file established, so later ones can use it
/// (the old type of a column for `down`, the columns of a constraint being dropped).
#[derive(Default)]
struct Known {
    /// (table, column) → type.
    types: HashMap<(String, String), String>,
    /// (table, constraint) → constrained columns.
    constraints: HashMap<(String, String), Vec<String>>,
}

struct Converter<'a> {
    sql: &'a str,
    file: &'a str,
    known: Known,
    ops: Vec<Operation>,
    notes: Vec<Note>,
    /// Review notes of the statement being converted; kept only if it converts.
    pending: Vec<String>,
}

impl<'a> Converter<'a> {
    fn new(sql: &'a str, file: &'a str) -> Self {
        Converter {
            sql,
            file,
            known: Known::default(),
            ops: Vec::new(),
            notes: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn statement(&mut self, raw: &protobuf::RawStmt) {
        let (start, text) = statement_text(self.sql, raw);
        let (line, column) = line_col(self.sql, start);
        let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            return;
        };
        self.pending.clear();
        let outcome = self.translate(node);
        let mut note = |kind, message| {
            self.notes.push(Note {
                file: self.file.to_string(),
                line,
                column,
                kind,
                message,
            })
        };
        match outcome {
            Ok(Outcome::Ops(ops)) => {
                // A statement whose every part ratchet does by itself (a VALIDATE of a
                // constraint added above) turns into nothing.
                let kind = if ops.is_empty() {
                    NoteKind::Dropped
                } else {
                    NoteKind::Review
                };
                for message in std::mem::take(&mut self.pending) {
                    note(kind, message);
                }
                self.learn(&ops);
                self.ops.extend(ops);
            }
            Ok(Outcome::Drop(reason)) => note(NoteKind::Dropped, reason),
            Err(Unsupported(reason)) => {
                note(NoteKind::KeptAsSql, reason.clone());
                self.ops.push(Operation::Sql(Sql {
                    up: format!("{RAW_SQL_COMMENT} {reason}\n{text}"),
                    down: None,
                    on_complete: false,
                }));
            }
        }
    }

    fn review(&mut self, message: impl Into<String>) {
        self.pending.push(message.into());
    }

    fn translate(&mut self, node: &N) -> Conv<Outcome> {
        let ops = match node {
            N::RenameStmt(s) => self.rename(s)?,
            N::AlterTableStmt(s) => self.alter_table(s)?,
            N::IndexStmt(s) => vec![self.create_index(s)?],
            N::DropStmt(s) => self.drop(s)?,
            N::CreateStmt(s) => vec![self.create_table(s)?],
            N::TransactionStmt(s) => return transaction(s),
            N::VariableSetStmt(s) => return set_variable(s),
            other => return unsupported(no_operation(other)),
        };
        Ok(Outcome::Ops(ops))
    }

    // ---- renames ------------------------------------------------------------------

    fn rename(&mut self, s: &protobuf::RenameStmt) -> Conv<Vec<Operation>> {
        use protobuf::ObjectType as O;
        let rename_type = s.rename_type();
        if !matches!(
            rename_type,
            O::ObjectColumn | O::ObjectTable | O::ObjectTabconstraint
        ) || (rename_type == O::ObjectColumn && s.relation_type() != O::ObjectTable)
        {
            return unsupported(
                "ratchet has no rename operation for this kind of object; rename it in a later \
                 migration once no client uses the old name",
            );
        }
        let table = table_name(s.relation.as_ref())?;
        if s.missing_ok {
            self.review("`IF EXISTS` dropped: ratchet checks that the table exists when it plans");
        }
        let op = match rename_type {
            O::ObjectColumn => Operation::RenameColumn(RenameColumn {
                table,
                from: s.subname.clone(),
                to: s.newname.clone(),
            }),
            O::ObjectTable => Operation::RenameTable(RenameTable {
                from: table,
                to: s.newname.clone(),
            }),
            _ => Operation::RenameConstraint(RenameConstraint {
                table,
                from: s.subname.clone(),
                to: s.newname.clone(),
            }),
        };
        Ok(vec![op])
    }

    // ---- ALTER TABLE ---------------------------------------------------------------

    fn alter_table(&mut self, s: &protobuf::AlterTableStmt) -> Conv<Vec<Operation>> {
        if s.objtype() != protobuf::ObjectType::ObjectTable {
            return unsupported("ALTER of an object other than a table has no ratchet operation");
        }
        let table = table_name(s.relation.as_ref())?;
        if s.relation.as_ref().is_some_and(|r| !r.inh) {
            return unsupported("`ALTER TABLE ONLY` has no ratchet operation");
        }
        if s.missing_ok {
            self.review("`IF EXISTS` dropped: ratchet checks that the table exists when it plans");
        }
        let mut ops: Vec<Operation> = Vec::new();
        for cmd in &s.cmds {
            let Some(N::AlterTableCmd(cmd)) = &cmd.node else {
                return unsupported("unexpected ALTER TABLE subcommand");
            };
            for op in self.alter_cmd(&table, cmd)? {
                push_merged(&mut ops, op);
            }
        }
        Ok(ops)
    }

    fn alter_cmd(&mut self, table: &str, cmd: &protobuf::AlterTableCmd) -> Conv<Vec<Operation>> {
        use protobuf::AlterTableType as T;
        let col = cmd.name.clone();
        let cascade = cmd.behavior() == protobuf::DropBehavior::DropCascade;
        let op = match cmd.subtype() {
            T::AtAddColumn => {
                let Some(N::ColumnDef(def)) = node_of(&cmd.def) else {
                    return unsupported("ADD COLUMN without a column definition");
                };
                if cmd.missing_ok {
                    self.review("`ADD COLUMN IF NOT EXISTS`: the guard is dropped");
                }
                self.add_column(table, def)?
            }
            T::AtDropColumn => {
                if cascade {
                    return unsupported(
                        "`DROP COLUMN … CASCADE` also drops dependent objects, which drop_column does not",
                    );
                }
                if cmd.missing_ok {
                    self.review("`DROP COLUMN IF EXISTS`: the guard is dropped");
                }
                self.review(format!(
                    "drop_column `{table}.{col}`: set `down` if the old application version needs a value \
                     in `{col}` for rows written through the new version"
                ));
                Operation::DropColumn(DropColumn {
                    table: table.to_string(),
                    column: col,
                    down: None,
                })
            }
            T::AtAlterColumnType => self.alter_type(table, &col, cmd)?,
            T::AtSetNotNull => {
                let ident = quote_ident(&col);
                self.review(format!(
                    "`up: {ident}` fails on rows where `{col}` is NULL, as SET NOT NULL would; \
                     write e.g. `COALESCE({ident}, <value>)` to fill them instead"
                ));
                Operation::AlterColumn(AlterColumn {
                    nullable: Some(false),
                    up: Some(ident.clone()),
                    down: Some(ident),
                    ..alter_column(table, &col)
                })
            }
            T::AtDropNotNull => {
                let ident = quote_ident(&col);
                self.review(format!(
                    "`down: {ident}` fails when the new version writes NULL into `{col}`, which is still \
                     NOT NULL for the old version; write e.g. `COALESCE({ident}, <value>)`"
                ));
                Operation::AlterColumn(AlterColumn {
                    nullable: Some(true),
                    up: Some(ident.clone()),
                    down: Some(ident),
                    ..alter_column(table, &col)
                })
            }
            T::AtColumnDefault => {
                let default = match cmd.def.as_deref() {
                    Some(expr) => Some(deparse_expr(expr)?),
                    None => None,
                };
                Operation::AlterColumn(AlterColumn {
                    default: Some(default),
                    ..alter_column(table, &col)
                })
            }
            T::AtAddConstraint => {
                let Some(N::Constraint(c)) = node_of(&cmd.def) else {
                    return unsupported("ADD CONSTRAINT without a constraint");
                };
                self.add_constraint(table, c)?
            }
            T::AtDropConstraint => {
                if cascade {
                    return unsupported(
                        "`DROP CONSTRAINT … CASCADE` also drops dependent objects, which drop_constraint does not",
                    );
                }
                if cmd.missing_ok {
                    self.review("`DROP CONSTRAINT IF EXISTS`: the guard is dropped");
                }
                self.drop_constraint(table, &col)
            }
            T::AtValidateConstraint => {
                let key = (table.to_string(), col.clone());
                if self.known.constraints.contains_key(&key) {
                    self.review(format!(
                        "VALIDATE CONSTRAINT `{col}`: the create_constraint of this file validates it"
                    ));
                    return Ok(Vec::new());
                }
                return unsupported(
                    "VALIDATE CONSTRAINT of a constraint this file does not add; ratchet's \
                     create_constraint validates the constraints it adds by itself",
                );
            }
            T::AtReplicaIdentity => {
                let Some(N::ReplicaIdentityStmt(r)) = node_of(&cmd.def) else {
                    return unsupported("REPLICA IDENTITY without an identity");
                };
                replica_identity(table, r)?
            }
            other => {
                return unsupported(format!(
                    "{} has no ratchet operation",
                    subcommand_name(other)
                ))
            }
        };
        Ok(vec![op])
    }

    fn add_column(&mut self, table: &str, def: &protobuf::ColumnDef) -> Conv<Operation> {
        let column = self.column(table, def)?;
        if !column.nullable && column.default.is_none() && column.generated.is_none() && !column.pk
        {
            self.review(format!(
                "`{table}.{}` is NOT NULL without a default: existing rows need a value, give it in `up` \
                 (the SQL fails on a non-empty table)",
                column.name
            ));
        }
        Ok(Operation::AddColumn(AddColumn {
            table: table.to_string(),
            column,
            up: None,
        }))
    }

    fn alter_type(
        &mut self,
        table: &str,
        col: &str,
        cmd: &protobuf::AlterTableCmd,
    ) -> Conv<Operation> {
        let Some(N::ColumnDef(def)) = node_of(&cmd.def) else {
            return unsupported("ALTER COLUMN TYPE without a type");
        };
        if def.coll_clause.is_some() {
            return unsupported("a COLLATE clause on a type change has no ratchet equivalent");
        }
        let new_type = deparse_type(def.type_name.as_ref())?;
        let ident = quote_ident(col);
        let up = match def.raw_default.as_deref() {
            Some(using) => deparse_expr(using)?,
            None => format!("CAST({ident} AS {new_type})"),
        };
        let key = (table.to_string(), col.to_string());
        let down = match self.known.types.get(&key) {
            Some(old) => Some(format!("CAST({ident} AS {old})")),
            None => {
                self.review(format!(
                    "the old type of `{table}.{col}` is not in this file: set `down` to \
                     `CAST({ident} AS <old type>)` so the old version can read what the new one writes"
                ));
                None
            }
        };
        Ok(Operation::AlterColumn(AlterColumn {
            type_: Some(new_type),
            up: Some(up),
            down,
            ..alter_column(table, col)
        }))
    }

    fn drop_constraint(&mut self, table: &str, name: &str) -> Operation {
        let key = (table.to_string(), name.to_string());
        let Some(columns) = self.known.constraints.get(&key) else {
            return Operation::DropConstraint(DropConstraint {
                table: table.to_string(),
                name: name.to_string(),
                up: None,
                down: None,
            });
        };
        Operation::DropMulticolumnConstraint(DropMulticolumnConstraint {
            table: table.to_string(),
            name: name.to_string(),
            up: identity_map(columns),
            down: identity_map(columns),
        })
    }

    // ---- constraints ---------------------------------------------------------------

    fn add_constraint(&mut self, table: &str, c: &protobuf::Constraint) -> Conv<Operation> {
        let shape = self.constraint_shape(table, c)?;
        if c.skip_validation {
            self.review(
                "`NOT VALID` dropped: ratchet adds the constraint NOT VALID and validates it in a \
                 separate step by itself",
            );
        }
        // Identity `up`/`down`: existing values are kept, and rows that violate the
        // constraint stop the migration, exactly as the SQL would fail.
        let (up, down) = (identity_map(&shape.columns), identity_map(&shape.columns));
        Ok(Operation::CreateConstraint(CreateConstraint {
            table: table.to_string(),
            name: shape.name,
            type_: shape.type_,
            columns: shape.columns,
            check: shape.check,
            references: shape.references,
            exclude: None,
            index_parameters: shape.index_parameters,
            nulls_not_distinct: c.nulls_not_distinct,
            deferrable: c.deferrable,
            initially_deferred: c.initdeferred,
            no_inherit: c.is_no_inherit,
            up,
            down,
        }))
    }

    /// The parts of a table-level constraint shared by CREATE TABLE and ADD CONSTRAINT.
    fn constraint_shape(&mut self, table: &str, c: &protobuf::Constraint) -> Conv<Shape> {
        use protobuf::ConstrType as C;
        if !c.indexname.is_empty() {
            return unsupported(
                "`USING INDEX` has no ratchet operation (create_constraint builds its own index concurrently)",
            );
        }
        let (type_, columns, suffix) = match c.contype() {
            C::ConstrCheck => {
                let columns = column_refs(c.raw_expr.as_deref());
                (ConstraintType::Check, columns, "check")
            }
            C::ConstrUnique => (ConstraintType::Unique, names(&c.keys)?, "key"),
            C::ConstrPrimary => (ConstraintType::PrimaryKey, names(&c.keys)?, "pkey"),
            C::ConstrForeign => (ConstraintType::ForeignKey, names(&c.fk_attrs)?, "fkey"),
            C::ConstrExclusion => {
                return unsupported("EXCLUDE constraints have no ratchet conversion yet");
            }
            _ => return unsupported("this kind of table constraint has no ratchet operation"),
        };
        let name = if c.conname.is_empty() {
            let name = default_constraint_name(table, &columns, type_, suffix);
            self.review(format!(
                "the constraint had no name; it is named `{name}`, as PostgreSQL would name it"
            ));
            name
        } else {
            c.conname.clone()
        };
        let check = match type_ {
            ConstraintType::Check => Some(deparse_expr_opt(c.raw_expr.as_deref())?),
            _ => None,
        };
        let references = match type_ {
            ConstraintType::ForeignKey => Some(table_fk(c)?),
            _ => None,
        };
        Ok(Shape {
            name,
            type_,
            columns,
            check,
            references,
            index_parameters: index_parameters(c)?,
        })
    }

    // ---- CREATE INDEX ----------------------------------------------------------------

    fn create_index(&mut self, s: &protobuf::IndexStmt) -> Conv<Operation> {
        let table = table_name(s.relation.as_ref())?;
        if s.relation.as_ref().is_some_and(|r| !r.inh) {
            return unsupported(
                "`CREATE INDEX ON ONLY` builds an index for a partitioned table, which create_index does not",
            );
        }
        if !s.index_including_params.is_empty() {
            return unsupported("create_index has no INCLUDE columns");
        }
        if !s.table_space.is_empty() {
            return unsupported("create_index has no TABLESPACE");
        }
        if s.nulls_not_distinct {
            return unsupported("create_index has no NULLS NOT DISTINCT");
        }
        let mut columns = Vec::new();
        for param in &s.index_params {
            let Some(N::IndexElem(elem)) = &param.node else {
                return unsupported("unexpected index element");
            };
            columns.push(index_column(elem)?);
        }
        let name = if s.idxname.is_empty() {
            let cols: Vec<String> = columns.iter().map(|c| c.column.clone()).collect();
            let name = object_name(&table, &cols.join("_"), "idx");
            self.review(format!(
                "the index had no name; it is named `{name}`, as PostgreSQL would name it"
            ));
            name
        } else {
            s.idxname.clone()
        };
        if s.if_not_exists {
            self.review("`IF NOT EXISTS` dropped: ratchet's create_index is idempotent by itself");
        }
        let method = match s.access_method.as_str() {
            "" | "btree" => None,
            other => Some(other.to_string()),
        };
        Ok(Operation::CreateIndex(CreateIndex {
            name,
            table,
            columns,
            unique: s.unique,
            predicate: s.where_clause.as_deref().map(deparse_expr).transpose()?,
            method,
            storage_parameters: storage_parameters(&s.options)?,
        }))
    }

    // ---- DROP ------------------------------------------------------------------------

    fn drop(&mut self, s: &protobuf::DropStmt) -> Conv<Vec<Operation>> {
        use protobuf::ObjectType as O;
        let kind = s.remove_type();
        if !matches!(kind, O::ObjectTable | O::ObjectIndex) {
            return unsupported(
                "ratchet has no drop operation for this kind of object; drop it in a contract \
                 migration once nothing uses it",
            );
        }
        if s.behavior() == protobuf::DropBehavior::DropCascade {
            return unsupported(
                "`CASCADE` also drops dependent objects, which ratchet's drop operations do not",
            );
        }
        if s.missing_ok {
            self.review("`IF EXISTS` dropped: ratchet checks that the object exists when it plans");
        }
        let mut ops = Vec::new();
        for object in &s.objects {
            let name = qualified_name(object)?;
            ops.push(match kind {
                O::ObjectTable => Operation::DropTable(DropTable { name }),
                _ => Operation::DropIndex(DropIndex { name }),
            });
        }
        Ok(ops)
    }

    // ---- CREATE TABLE ----------------------------------------------------------------

    fn create_table(&mut self, s: &protobuf::CreateStmt) -> Conv<Operation> {
        let rel = s.relation.as_ref();
        let table = table_name(rel)?;
        if rel.is_some_and(|r| r.relpersistence != "p") {
            return unsupported(
                "create_table makes ordinary tables, not TEMPORARY or UNLOGGED ones",
            );
        }
        if !s.inh_relations.is_empty() || s.partbound.is_some() || s.partspec.is_some() {
            return unsupported("create_table has no inheritance or partitioning");
        }
        if s.of_typename.is_some() || !s.options.is_empty() || !s.tablespacename.is_empty() {
            return unsupported("create_table has no OF type, WITH options or TABLESPACE");
        }
        if !s.access_method.is_empty() {
            return unsupported("create_table has no USING access method");
        }
        if s.if_not_exists {
            self.review(
                "`IF NOT EXISTS` dropped: ratchet checks that the table is new when it plans",
            );
        }
        let mut columns = Vec::new();
        let mut constraints = Vec::new();
        for elt in &s.table_elts {
            match &elt.node {
                Some(N::ColumnDef(def)) => columns.push(self.column(&table, def)?),
                Some(N::Constraint(c)) => constraints.push(self.table_constraint(&table, c)?),
                _ => return unsupported("create_table has no LIKE clause"),
            }
        }
        promote_primary_key(&mut columns, &mut constraints);
        Ok(Operation::CreateTable(CreateTable {
            name: table,
            columns,
            constraints,
            comment: None,
        }))
    }

    fn table_constraint(&mut self, table: &str, c: &protobuf::Constraint) -> Conv<TableConstraint> {
        let named = !c.conname.is_empty();
        let shape = self.constraint_shape(table, c)?;
        if !named {
            // PostgreSQL names them at CREATE TABLE just the same; no need to ask for review.
            self.pending.pop();
        }
        Ok(TableConstraint {
            name: shape.name,
            type_: shape.type_,
            columns: shape.columns,
            check: shape.check,
            references: shape.references,
            exclude: None,
            index_parameters: shape.index_parameters,
            nulls_not_distinct: c.nulls_not_distinct,
            deferrable: c.deferrable,
            initially_deferred: c.initdeferred,
            no_inherit: c.is_no_inherit,
        })
    }

    // ---- columns ---------------------------------------------------------------------

    fn column(&mut self, table: &str, def: &protobuf::ColumnDef) -> Conv<Column> {
        if def.coll_clause.is_some() {
            return unsupported("a column COLLATE clause has no ratchet equivalent");
        }
        if !def.compression.is_empty() || !def.storage_name.is_empty() {
            return unsupported("column COMPRESSION or STORAGE has no ratchet equivalent");
        }
        let name = def.colname.clone();
        let mut column = Column {
            name: name.clone(),
            type_: deparse_type(def.type_name.as_ref())?,
            pk: false,
            unique: false,
            nullable: true,
            default: None,
            check: None,
            references: None,
            comment: None,
            generated: None,
        };
        let mut last_fk = false;
        for constraint in &def.constraints {
            let Some(N::Constraint(c)) = &constraint.node else {
                return unsupported("unexpected column constraint");
            };
            last_fk = self.column_constraint(table, &mut column, c, last_fk)?;
        }
        Ok(column)
    }

    /// Applies one column constraint; returns whether it was a foreign key (the
    /// DEFERRABLE attributes that may follow apply to it).
    fn column_constraint(
        &mut self,
        table: &str,
        column: &mut Column,
        c: &protobuf::Constraint,
        last_fk: bool,
    ) -> Conv<bool> {
        use protobuf::ConstrType as C;
        let col = column.name.clone();
        match c.contype() {
            C::ConstrNotnull => column.nullable = false,
            C::ConstrNull => column.nullable = true,
            C::ConstrDefault => column.default = Some(deparse_expr_opt(c.raw_expr.as_deref())?),
            C::ConstrPrimary => {
                no_index_options(c)?;
                column.pk = true;
                column.nullable = false;
            }
            C::ConstrUnique => {
                no_index_options(c)?;
                if c.nulls_not_distinct || c.deferrable {
                    return unsupported("a column UNIQUE has no NULLS NOT DISTINCT or DEFERRABLE; use a table constraint");
                }
                column.unique = true;
            }
            C::ConstrCheck => {
                let name = or_default(&c.conname, || object_name(table, &col, "check"));
                column.check = Some(CheckConstraint {
                    name,
                    constraint: deparse_expr_opt(c.raw_expr.as_deref())?,
                    no_inherit: c.is_no_inherit,
                });
            }
            C::ConstrForeign => {
                column.references = Some(column_fk(table, &col, c)?);
                return Ok(true);
            }
            C::ConstrGenerated => {
                if c.generated_kind == "v" {
                    // A migration file's generated column is STORED; converting would change it.
                    return unsupported("VIRTUAL generated columns have no ratchet conversion yet");
                }
                column.generated = Some(Generated {
                    expression: Some(deparse_expr_opt(c.raw_expr.as_deref())?),
                    identity: None,
                });
            }
            C::ConstrIdentity => {
                if !c.options.is_empty() {
                    return unsupported("identity sequence options have no ratchet conversion yet");
                }
                let when = if c.generated_when == "a" {
                    "ALWAYS"
                } else {
                    "BY DEFAULT"
                };
                column.nullable = false;
                column.generated = Some(Generated {
                    expression: None,
                    identity: Some(Identity {
                        user_specified_values: Some(when.to_string()),
                        sequence_options: None,
                    }),
                });
            }
            C::ConstrAttrDeferrable | C::ConstrAttrDeferred if last_fk => {
                if let Some(fk) = column.references.as_mut() {
                    fk.deferrable = true;
                    fk.initially_deferred |= c.contype() == C::ConstrAttrDeferred;
                }
                return Ok(true);
            }
            C::ConstrAttrNotDeferrable | C::ConstrAttrImmediate => return Ok(last_fk),
            _ => return unsupported("this column constraint has no ratchet equivalent"),
        }
        Ok(false)
    }

    // ---- knowledge -------------------------------------------------------------------

    /// Records what the converted operations establish for later statements.
    fn learn(&mut self, ops: &[Operation]) {
        for op in ops {
            self.learn_one(op);
        }
    }

    fn learn_one(&mut self, op: &Operation) {
        let known = &mut self.known;
        match op {
            Operation::CreateTable(t) => {
                for c in &t.columns {
                    known.learn_column(&t.name, c);
                }
                for c in &t.constraints {
                    known.constraint(&t.name, &c.name, c.columns.clone());
                }
            }
            Operation::AddColumn(a) => known.learn_column(&a.table, &a.column),
            Operation::AlterColumn(a) => {
                if let Some(t) = &a.type_ {
                    known.types.insert(key(&a.table, &a.column), t.clone());
                }
            }
            Operation::CreateConstraint(c) => {
                known.constraint(&c.table, &c.name, c.columns.clone())
            }
            Operation::RenameColumn(r) => known.rename_column(&r.table, &r.from, &r.to),
            Operation::RenameTable(r) => known.rename_table(&r.from, &r.to),
            Operation::RenameConstraint(r) => {
                if let Some(cols) = known.constraints.remove(&key(&r.table, &r.from)) {
                    known.constraints.insert(key(&r.table, &r.to), cols);
                }
            }
            Operation::DropColumn(d) => {
                known.types.remove(&key(&d.table, &d.column));
            }
            Operation::DropTable(d) => known.rename_table(&d.name, ""),
            Operation::DropConstraint(d) => {
                known.constraints.remove(&key(&d.table, &d.name));
            }
            Operation::DropMulticolumnConstraint(d) => {
                known.constraints.remove(&key(&d.table, &d.name));
            }
            _ => {}
        }
    }
}

impl Known {
    fn learn_column(&mut self, table: &str, c: &Column) {
        self.types.insert(key(table, &c.name), c.type_.clone());
        if let Some(check) = &c.check {
            self.constraint(table, &check.name, vec![c.name.clone()]);
        }
        if let Some(fk) = &c.references {
            self.constraint(table, &fk.name, vec![c.name.clone()]);
        }
    }

    fn constraint(&mut self, table: &str, name: &str, columns: Vec<String>) {
        self.constraints.insert(key(table, name), columns);
    }

    fn rename_column(&mut self, table: &str, from: &str, to: &str) {
        if let Some(t) = self.types.remove(&key(table, from)) {
            self.types.insert(key(table, to), t);
        }
        for ((t, _), cols) in self.constraints.iter_mut() {
            if t == table {
                cols.iter_mut()
                    .filter(|c| *c == from)
                    .for_each(|c| *c = to.to_string());
            }
        }
    }

    /// Moves everything known about `from` to `to`; an empty `to` forgets it.
    fn rename_table(&mut self, from: &str, to: &str) {
        fn moved<V>(
            map: HashMap<(String, String), V>,
            from: &str,
            to: &str,
        ) -> HashMap<(String, String), V> {
            map.into_iter()
                .filter_map(|((t, n), v)| match t == from {
                    false => Some(((t, n), v)),
                    true if to.is_empty() => None,
                    true => Some(((to.to_string(), n), v)),
                })
                .collect()
        }
        self.types = moved(std::mem::take(&mut self.types), from, to);
        self.constraints = moved(std::mem::take(&mut self.constraints), from, to);
    }
}

fn key(table: &str, name: &str) -> (String, String) {
    (table.to_string(), name.to_string())
}

/// A constraint's parts before they go into a `create_constraint` or a `create_table`.
struct Shape {
    name: String,
    type_: ConstraintType,
    columns: Vec<String>,
    check: Option<String>,
    references: Option<TableForeignKeyReference>,
    index_parameters: Option<IndexParameters>,
}

// ---- statements that need no operation ---------------------------------------------------

fn transaction(s: &protobuf::TransactionStmt) -> Conv<Outcome> {
    use protobuf::TransactionStmtKind as K;
    match s.kind() {
        K::TransStmtBegin | K::TransStmtStart | K::TransStmtCommit => Ok(Outcome::Drop(
            "transaction control: ratchet runs each phase of a migration in transactions of its own".into(),
        )),
        _ => unsupported("this transaction statement has no ratchet equivalent"),
    }
}

fn set_variable(s: &protobuf::VariableSetStmt) -> Conv<Outcome> {
    match s.name.as_str() {
        "lock_timeout" | "statement_timeout" => Ok(Outcome::Drop(format!(
            "`SET {}`: ratchet sets lock_timeout on every DDL statement and retries on timeout by itself",
            s.name
        ))),
        _ => unsupported("a session setting has no ratchet operation"),
    }
}

/// The reason a statement of this kind is kept as SQL.
fn no_operation(node: &N) -> String {
    let what = match node {
        N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_) => {
            return "a data change; for a backfill of a new or changed column, put the expression in \
                    the operation's `up` instead"
                .into()
        }
        N::SelectStmt(_) => "SELECT",
        N::CreateFunctionStmt(_) => "CREATE FUNCTION",
        N::DoStmt(_) => "DO",
        N::CreateEnumStmt(_) => "CREATE TYPE … AS ENUM",
        N::AlterEnumStmt(_) => "ALTER TYPE … ADD VALUE",
        N::CompositeTypeStmt(_) => "CREATE TYPE",
        N::CreateExtensionStmt(_) => "CREATE EXTENSION",
        N::ViewStmt(_) => "CREATE VIEW",
        N::CreateTrigStmt(_) => "CREATE TRIGGER",
        N::CreateSeqStmt(_) => "CREATE SEQUENCE",
        N::AlterSeqStmt(_) => "ALTER SEQUENCE",
        N::CreateSchemaStmt(_) => "CREATE SCHEMA",
        N::CommentStmt(_) => "COMMENT",
        N::GrantStmt(_) => "GRANT/REVOKE",
        N::TruncateStmt(_) => "TRUNCATE",
        N::CreateDomainStmt(_) => "CREATE DOMAIN",
        N::CreatePolicyStmt(_) => "CREATE POLICY",
        N::CreateTableAsStmt(_) => "CREATE TABLE AS / CREATE MATERIALIZED VIEW",
        N::RefreshMatViewStmt(_) => "REFRESH MATERIALIZED VIEW",
        N::ReindexStmt(_) => "REINDEX",
        N::VacuumStmt(_) => "VACUUM/ANALYZE",
        N::ClusterStmt(_) => "CLUSTER",
        _ => "this statement",
    };
    format!("{what} has no ratchet operation")
}

fn subcommand_name(t: protobuf::AlterTableType) -> &'static str {
    use protobuf::AlterTableType as T;
    match t {
        T::AtSetLogged | T::AtSetUnLogged => "SET LOGGED/UNLOGGED",
        T::AtSetTableSpace => "SET TABLESPACE",
        T::AtSetAccessMethod => "SET ACCESS METHOD",
        T::AtSetRelOptions | T::AtResetRelOptions => "SET/RESET storage parameters",
        T::AtEnableTrig
        | T::AtDisableTrig
        | T::AtEnableTrigAll
        | T::AtDisableTrigAll
        | T::AtEnableTrigUser
        | T::AtDisableTrigUser
        | T::AtEnableAlwaysTrig
        | T::AtEnableReplicaTrig => "ENABLE/DISABLE TRIGGER",
        T::AtAttachPartition => "ATTACH PARTITION",
        T::AtDetachPartition | T::AtDetachPartitionFinalize => "DETACH PARTITION",
        T::AtAddIdentity | T::AtSetIdentity | T::AtDropIdentity => "an identity change",
        T::AtSetExpression | T::AtDropExpression => "a generated expression change",
        T::AtEnableRowSecurity
        | T::AtDisableRowSecurity
        | T::AtForceRowSecurity
        | T::AtNoForceRowSecurity => "a ROW LEVEL SECURITY change",
        T::AtChangeOwner => "OWNER TO",
        T::AtAlterConstraint => "ALTER CONSTRAINT",
        T::AtAddInherit | T::AtDropInherit => "INHERIT/NO INHERIT",
        T::AtSetStatistics => "SET STATISTICS",
        T::AtSetStorage | T::AtSetCompression => "SET STORAGE/COMPRESSION",
        T::AtClusterOn | T::AtDropCluster => "CLUSTER ON",
        _ => "this ALTER TABLE subcommand",
    }
}

// ---- building blocks -------------------------------------------------------------------

fn node_of(def: &Option<Box<protobuf::Node>>) -> Option<&N> {
    def.as_deref().and_then(|n| n.node.as_ref())
}

fn alter_column(table: &str, column: &str) -> AlterColumn {
    AlterColumn {
        table: table.to_string(),
        column: column.to_string(),
        name: None,
        type_: None,
        nullable: None,
        default: None,
        comment: None,
        check: None,
        unique: None,
        references: None,
        up: None,
        down: None,
    }
}

/// Adds `op` to `ops`, folding it into the previous `alter_column` of the same column
/// when the two change different things (`TYPE bigint, ALTER c SET NOT NULL` is one
/// operation, as in a hand-written file).
fn push_merged(ops: &mut Vec<Operation>, op: Operation) {
    let (Some(Operation::AlterColumn(prev)), Operation::AlterColumn(next)) = (ops.last_mut(), &op)
    else {
        ops.push(op);
        return;
    };
    if let Some(merged) = merge_alter(prev, next) {
        *prev = merged;
    } else {
        ops.push(op);
    }
}

fn merge_alter(a: &AlterColumn, b: &AlterColumn) -> Option<AlterColumn> {
    if a.table != b.table || a.column != b.column {
        return None;
    }
    let ident = quote_ident(&a.column);
    // A type change's `up`/`down` win: an identity from SET NOT NULL must not hide that
    // the type change's `down` is still missing. Otherwise identities give way.
    let pick = |x: &Option<String>, y: &Option<String>| -> Option<Option<String>> {
        if a.type_.is_some() {
            return Some(x.clone());
        }
        if b.type_.is_some() {
            return Some(y.clone());
        }
        match (x, y) {
            (None, v) | (v, None) => Some(v.clone()),
            (Some(x), Some(y)) if x == y || *y == ident => Some(Some(x.clone())),
            (Some(x), Some(y)) if *x == ident => Some(Some(y.clone())),
            _ => None,
        }
    };
    fn one<T: Clone>(x: &Option<T>, y: &Option<T>) -> Option<Option<T>> {
        match (x, y) {
            (Some(_), Some(_)) => None,
            (Some(v), None) | (None, Some(v)) => Some(Some(v.clone())),
            (None, None) => Some(None),
        }
    }
    Some(AlterColumn {
        table: a.table.clone(),
        column: a.column.clone(),
        name: one(&a.name, &b.name)?,
        type_: one(&a.type_, &b.type_)?,
        nullable: one(&a.nullable, &b.nullable)?,
        default: one(&a.default, &b.default)?,
        comment: one(&a.comment, &b.comment)?,
        check: one(&a.check, &b.check)?,
        unique: one(&a.unique, &b.unique)?,
        references: one(&a.references, &b.references)?,
        up: pick(&a.up, &b.up)?,
        down: pick(&a.down, &b.down)?,
    })
}

fn identity_map<M: FromIterator<(String, String)>>(columns: &[String]) -> M {
    columns
        .iter()
        .map(|c| (c.clone(), quote_ident(c)))
        .collect()
}

/// A table name from a `RangeVar`, refusing other schemas: ratchet's operations act
/// on the schema the migration runs against.
fn table_name(rel: Option<&protobuf::RangeVar>) -> Conv<String> {
    let Some(rel) = rel else {
        return unsupported("statement without a table");
    };
    check_schema(&rel.catalogname, &rel.schemaname)?;
    Ok(rel.relname.clone())
}

fn check_schema(catalog: &str, schema: &str) -> Conv<()> {
    if !catalog.is_empty() || !matches!(schema, "" | "public") {
        return unsupported(format!(
            "names an object in schema `{schema}`; ratchet's operations act on the schema the migration runs against"
        ));
    }
    Ok(())
}

/// `[schema.]name` from the `List` of `String`s a DROP statement carries.
fn qualified_name(node: &protobuf::Node) -> Conv<String> {
    let Some(N::List(list)) = &node.node else {
        return unsupported("unexpected object name");
    };
    let parts = names(&list.items)?;
    match parts.as_slice() {
        [name] => Ok(name.clone()),
        [schema, name] => check_schema("", schema).map(|()| name.clone()),
        _ => unsupported("names an object in another database"),
    }
}

/// The strings of a list of `String` nodes (column lists, qualified names).
fn names(nodes: &[protobuf::Node]) -> Conv<Vec<String>> {
    nodes
        .iter()
        .map(|n| match &n.node {
            Some(N::String(s)) => Ok(s.sval.clone()),
            _ => unsupported("an expression where a column name was expected"),
        })
        .collect()
}

/// The distinct column names an expression refers to, in order of appearance.
///
/// pg_query's own walker skips some expression kinds (CASE, COALESCE, arrays), so the
/// tree is walked through its serde form, which reaches every node.
fn column_refs(expr: Option<&protobuf::Node>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(Ok(value)) = expr.map(serde_json::to_value) else {
        return out;
    };
    let mut stack = vec![&value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(name) = map.get("ColumnRef").and_then(last_field) {
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
                stack.extend(map.values().rev());
            }
            serde_json::Value::Array(items) => stack.extend(items.iter().rev()),
            _ => {}
        }
    }
    out
}

/// `c` from the serde form of `ColumnRef { fields: [.., String { sval: "c" }] }`.
fn last_field(column_ref: &serde_json::Value) -> Option<String> {
    let last = column_ref.get("fields")?.as_array()?.last()?;
    let sval = last.get("node")?.get("String")?.get("sval")?;
    sval.as_str().map(str::to_string)
}

fn or_default(name: &str, default: impl FnOnce() -> String) -> String {
    if name.is_empty() {
        default()
    } else {
        name.to_string()
    }
}

/// PostgreSQL's `makeObjectName`: `table_part_label`, shortening the longer of the two
/// parts until the whole fits in 63 bytes, so a generated name matches the server's.
fn object_name(table: &str, part: &str, label: &str) -> String {
    let mut a = table.to_string();
    let mut b = part.to_string();
    let overhead = label.len() + 1 + usize::from(!b.is_empty());
    while a.len() + b.len() + overhead > MAX_IDENT && !(a.is_empty() && b.is_empty()) {
        let longer = if a.len() > b.len() { &mut a } else { &mut b };
        longer.pop();
    }
    if b.is_empty() {
        format!("{a}_{label}")
    } else {
        format!("{a}_{b}_{label}")
    }
}

fn default_constraint_name(
    table: &str,
    columns: &[String],
    type_: ConstraintType,
    suffix: &str,
) -> String {
    match type_ {
        ConstraintType::PrimaryKey => object_name(table, "", suffix),
        // CHECK constraints are named after their first column only.
        ConstraintType::Check => {
            object_name(table, columns.first().map_or("", String::as_str), suffix)
        }
        _ => object_name(table, &columns.join("_"), suffix),
    }
}

/// `primary_key` constraints without a name or index options become `pk: true` on
/// their columns, the way pgroll files say it.
fn promote_primary_key(columns: &mut [Column], constraints: &mut Vec<TableConstraint>) {
    constraints.retain(|c| {
        let plain = c.type_ == ConstraintType::PrimaryKey
            && c.index_parameters.is_none()
            && !c.deferrable
            && c.columns
                .iter()
                .all(|name| columns.iter().any(|col| &col.name == name));
        if plain {
            for col in columns
                .iter_mut()
                .filter(|col| c.columns.contains(&col.name))
            {
                col.pk = true;
                col.nullable = false;
            }
        }
        !plain
    });
}

fn no_index_options(c: &protobuf::Constraint) -> Conv<()> {
    if !c.indexname.is_empty()
        || !c.including.is_empty()
        || !c.options.is_empty()
        || !c.indexspace.is_empty()
    {
        return unsupported(
            "column PRIMARY KEY/UNIQUE with index options has no ratchet equivalent",
        );
    }
    Ok(())
}

fn index_parameters(c: &protobuf::Constraint) -> Conv<Option<IndexParameters>> {
    if c.including.is_empty() && c.options.is_empty() && c.indexspace.is_empty() {
        return Ok(None);
    }
    Ok(Some(IndexParameters {
        include_columns: names(&c.including)?,
        storage_parameters: storage_parameters(&c.options)?,
        tablespace: (!c.indexspace.is_empty()).then(|| c.indexspace.clone()),
    }))
}

/// `WITH (fillfactor = 70, …)` as the raw text the model keeps.
fn storage_parameters(options: &[protobuf::Node]) -> Conv<Option<String>> {
    if options.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::new();
    for option in options {
        let Some(N::DefElem(d)) = &option.node else {
            return unsupported("unexpected storage parameter");
        };
        let value = match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
            Some(N::Integer(i)) => i.ival.to_string(),
            Some(N::Float(f)) => f.fval.clone(),
            Some(N::Boolean(b)) => b.boolval.to_string(),
            Some(N::String(s)) => quote_literal(&s.sval),
            Some(N::TypeName(t)) => deparse_type(Some(t))?,
            None => "true".to_string(),
            _ => return unsupported("a storage parameter value that cannot be converted"),
        };
        parts.push(format!("{} = {value}", d.defname));
    }
    Ok(Some(parts.join(", ")))
}

fn index_column(elem: &protobuf::IndexElem) -> Conv<IndexColumn> {
    if elem.name.is_empty() {
        return unsupported("create_index takes column names, not expressions");
    }
    if !elem.opclassopts.is_empty() {
        return unsupported("operator class parameters have no ratchet conversion yet");
    }
    let sort = match elem.ordering() {
        protobuf::SortByDir::SortbyAsc => Some("ASC"),
        protobuf::SortByDir::SortbyDesc => Some("DESC"),
        protobuf::SortByDir::SortbyUsing => {
            return unsupported("`USING operator` ordering in an index")
        }
        _ => None,
    };
    let nulls = match elem.nulls_ordering() {
        protobuf::SortByNulls::SortbyNullsFirst => Some("FIRST"),
        protobuf::SortByNulls::SortbyNullsLast => Some("LAST"),
        _ => None,
    };
    let collate = match elem.collation.as_slice() {
        [] => None,
        names_ => Some(names(names_)?.join(".")),
    };
    let opclass = match elem.opclass.as_slice() {
        [] => None,
        names_ => Some(OpClass {
            name: names(names_)?.join("."),
            params: Vec::new(),
        }),
    };
    Ok(IndexColumn {
        column: elem.name.clone(),
        collate,
        sort: sort.map(str::to_string),
        nulls: nulls.map(str::to_string),
        opclass,
    })
}

/// PostgreSQL's one-letter foreign key action codes.
fn fk_action(code: &str) -> Conv<Option<String>> {
    Ok(match code {
        "" | "a" => None,
        "r" => Some("RESTRICT".into()),
        "c" => Some("CASCADE".into()),
        "n" => Some("SET NULL".into()),
        "d" => Some("SET DEFAULT".into()),
        _ => return unsupported("unknown foreign key action"),
    })
}

fn fk_match(code: &str) -> Conv<Option<String>> {
    Ok(match code {
        "" | "s" => None,
        "f" => Some("FULL".into()),
        _ => return unsupported("MATCH PARTIAL is not implemented by PostgreSQL"),
    })
}

fn referenced_table(c: &protobuf::Constraint) -> Conv<String> {
    let table = table_name(c.pktable.as_ref())?;
    if c.pk_attrs.is_empty() {
        return unsupported(
            "the foreign key references the primary key implicitly; name the referenced columns",
        );
    }
    Ok(table)
}

fn table_fk(c: &protobuf::Constraint) -> Conv<TableForeignKeyReference> {
    Ok(TableForeignKeyReference {
        table: referenced_table(c)?,
        columns: names(&c.pk_attrs)?,
        on_delete: fk_action(&c.fk_del_action)?,
        on_update: fk_action(&c.fk_upd_action)?,
        match_type: fk_match(&c.fk_matchtype)?,
        on_delete_set_columns: names(&c.fk_del_set_cols)?,
    })
}

fn column_fk(table: &str, column: &str, c: &protobuf::Constraint) -> Conv<ForeignKeyReference> {
    let referenced = referenced_table(c)?;
    let [target] = names(&c.pk_attrs)?
        .try_into()
        .map_err(|_| Unsupported("a column REFERENCES must name exactly one column".to_string()))?;
    if !c.fk_del_set_cols.is_empty() {
        return unsupported("`ON DELETE SET NULL (columns)` on a column reference");
    }
    Ok(ForeignKeyReference {
        name: or_default(&c.conname, || object_name(table, column, "fkey")),
        table: referenced,
        column: target,
        on_delete: fk_action(&c.fk_del_action)?,
        on_update: fk_action(&c.fk_upd_action)?,
        match_type: fk_match(&c.fk_matchtype)?,
        deferrable: c.deferrable,
        initially_deferred: c.initdeferred,
    })
}

fn replica_identity(table: &str, r: &protobuf::ReplicaIdentityStmt) -> Conv<Operation> {
    let (type_, index) = match r.identity_type.as_str() {
        "d" => ("default", None),
        "f" => ("full", None),
        "n" => ("nothing", None),
        "i" => ("index", Some(r.name.clone())),
        _ => return unsupported("unknown replica identity"),
    };
    Ok(Operation::SetReplicaIdentity(SetReplicaIdentity {
        table: table.to_string(),
        identity: ReplicaIdentity {
            type_: type_.to_string(),
            index,
        },
    }))
}

// ---- deparsing -----------------------------------------------------------------------

/// Renders an expression with pg_query's deparser, by putting it into the target list
/// of a `SELECT 1` the real parser produced.
fn deparse_expr(expr: &protobuf::Node) -> Conv<String> {
    let failed = || Unsupported("an expression that could not be rendered back to SQL".to_string());
    let mut template = pg_query::parse("SELECT 1", pg_query::ParserOptions::DEFAULT)
        .map_err(|_| failed())?
        .protobuf;
    let target = template
        .stmts
        .first_mut()
        .and_then(|s| s.stmt.as_mut())
        .and_then(|s| match s.node.as_mut() {
            Some(N::SelectStmt(select)) => select.target_list.first_mut(),
            _ => None,
        })
        .and_then(|t| match t.node.as_mut() {
            Some(N::ResTarget(rt)) => Some(rt),
            _ => None,
        })
        .ok_or_else(failed)?;
    target.val = Some(Box::new(expr.clone()));
    let text = template
        .deparse(pg_query::DeparseOptions::default())
        .map_err(|_| failed())?;
    text.strip_prefix("SELECT ")
        .map(str::to_string)
        .ok_or_else(failed)
}

fn deparse_expr_opt(expr: Option<&protobuf::Node>) -> Conv<String> {
    match expr {
        Some(e) => deparse_expr(e),
        None => unsupported("a constraint without its expression"),
    }
}

/// Renders a type name the way `\d` would show it (`bigint`, `varchar(20)`,
/// `numeric(10, 2)`), through `SELECT NULL::<type>`.
fn deparse_type(type_name: Option<&protobuf::TypeName>) -> Conv<String> {
    let failed = || Unsupported("a type that could not be rendered back to SQL".to_string());
    let Some(type_name) = type_name else {
        return Err(failed());
    };
    if type_name.setof || type_name.pct_type {
        return unsupported("`%TYPE` and SETOF types have no ratchet equivalent");
    }
    let mut template = pg_query::parse("SELECT NULL::int", pg_query::ParserOptions::DEFAULT)
        .map_err(|_| failed())?
        .protobuf;
    let cast = template
        .stmts
        .first_mut()
        .and_then(|s| s.stmt.as_mut())
        .and_then(|s| match s.node.as_mut() {
            Some(N::SelectStmt(select)) => select.target_list.first_mut(),
            _ => None,
        })
        .and_then(|t| match t.node.as_mut() {
            Some(N::ResTarget(rt)) => rt.val.as_mut(),
            _ => None,
        })
        .and_then(|v| match v.node.as_mut() {
            Some(N::TypeCast(tc)) => Some(tc),
            _ => None,
        })
        .ok_or_else(failed)?;
    cast.type_name = Some(type_name.clone());
    let text = template
        .deparse(pg_query::DeparseOptions::default())
        .map_err(|_| failed())?;
    let rendered = text.strip_prefix("SELECT NULL::").ok_or_else(failed)?;
    // `json` and `varbit` come back qualified; the bare names mean the same types.
    Ok(rendered
        .strip_prefix("pg_catalog.")
        .unwrap_or(rendered)
        .to_string())
}

/// Quotes an identifier for use in an `up`/`down` expression when it needs it: anything
/// but a lower-case name that is not a keyword (unreserved keywords are fine).
pub fn quote_ident(name: &str) -> String {
    let simple = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let plain = simple
        && pg_query::scan(name).is_ok_and(|r| {
            matches!(r.tokens.as_slice(), [t] if matches!(
                t.keyword_kind(),
                protobuf::KeywordKind::NoKeyword | protobuf::KeywordKind::UnreservedKeyword
            ))
        });
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// ---- positions -----------------------------------------------------------------------

/// The statement's text, trimmed and without its `;`, and the byte offset where it
/// starts (after leading whitespace; leading comments stay with the statement).
fn statement_text<'s>(sql: &'s str, raw: &protobuf::RawStmt) -> (usize, &'s str) {
    let start = usize::try_from(raw.stmt_location).unwrap_or(0);
    let end = match usize::try_from(raw.stmt_len) {
        Ok(0) | Err(_) => sql.len(),
        Ok(len) => start.saturating_add(len).min(sql.len()),
    };
    let text = sql.get(start..end).unwrap_or("");
    let trimmed = text.trim_start();
    let start = start + (text.len() - trimmed.len()) + leading_comments_len(trimmed);
    let trimmed = trimmed.trim_end().trim_end_matches(';').trim_end();
    (start, trimmed)
}

/// Bytes of comments and whitespace at the start of `text`, so a note points at the
/// statement's first keyword rather than at the comment above it.
fn leading_comments_len(text: &str) -> usize {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        let skipped = if trimmed.starts_with("--") {
            trimmed.find('\n').map_or(trimmed.len(), |i| i + 1)
        } else if let Some(body) = trimmed.strip_prefix("/*") {
            body.find("*/").map_or(trimmed.len(), |i| i + 4)
        } else {
            return text.len() - trimmed.len();
        };
        rest = &trimmed[skipped..];
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(sql: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(sql.len());
    while !sql.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &sql[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A syntax error located at the offending token: the statement that fails to parse on
/// its own is found by splitting on `;` tokens, then the token the message names.
fn syntax_error(sql: &str, file: &str, error: &pg_query::Error) -> ConvertError {
    let message = match error {
        pg_query::Error::Parse(m) => m.clone(),
        other => other.to_string(),
    };
    let offset = error_offset(sql, &message).unwrap_or(0);
    let (line, column) = line_col(sql, offset);
    ConvertError::Syntax {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

fn error_offset(sql: &str, message: &str) -> Option<usize> {
    let tokens = pg_query::scan(sql).ok()?.tokens;
    let mut start = 0usize;
    let mut statements = Vec::new();
    for t in &tokens {
        if t.token() == protobuf::Token::Ascii59 {
            let end = usize::try_from(t.end).ok()?;
            statements.push((start, end));
            start = end;
        }
    }
    statements.push((start, sql.len()));
    let (from, to) = statements.into_iter().find(|(a, b)| {
        sql.get(*a..*b)
            .is_some_and(|s| pg_query::parse(s, pg_query::ParserOptions::DEFAULT).is_err())
    })?;
    let near = message
        .split_once("at or near \"")
        .and_then(|(_, rest)| rest.rsplit_once('"'))
        .map(|(token, _)| token);
    let in_statement =
        |t: &&protobuf::ScanToken| usize::try_from(t.start).is_ok_and(|s| s >= from && s < to);
    let token = match near {
        Some(near) => tokens
            .iter()
            .filter(in_statement)
            .find(|t| token_text(sql, t) == Some(near)),
        // "at end of input": just after the last token of the statement.
        None => {
            let last = tokens.iter().rev().find(in_statement)?;
            return usize::try_from(last.end).ok();
        }
    };
    let first = tokens.iter().find(in_statement);
    token.or(first).and_then(|t| usize::try_from(t.start).ok())
}

fn token_text<'s>(sql: &'s str, t: &protobuf::ScanToken) -> Option<&'s str> {
    sql.get(usize::try_from(t.start).ok()?..usize::try_from(t.end).ok()?)
}
