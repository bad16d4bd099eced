//! Small accessors over the `pg_query` protobuf tree, so the code that inspects statements
//! (lint rules, the statement → lock table) reads like the SQL it checks.
//!
//! The protobuf model keeps enums as `i32` and wraps every child in `Node { node: Option<…> }`;
//! these helpers hide both.

use pg_query::protobuf::{
    self, AlterTableCmd, AlterTableStmt, AlterTableType, ColumnDef, ConstrType, Constraint,
    ObjectType, RangeVar, TypeName,
};
use pg_query::{Node, NodeEnum, NodeRef};

/// A possibly schema-qualified name, lowercased as PostgreSQL folds unquoted names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName {
    pub schema: Option<String>,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: Option<&str>, name: &str) -> QualifiedName {
        QualifiedName {
            schema: schema.filter(|s| !s.is_empty()).map(str::to_string),
            name: name.to_string(),
        }
    }

    /// Same object, treating a missing schema as "whatever the search_path finds".
    pub fn same_as(&self, other: &QualifiedName) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// Parses `schema.table` or `table` (as written in a migration file).
    pub fn parse(s: &str) -> QualifiedName {
        let s = s.trim().trim_matches('"');
        match s.split_once('.') {
            Some((schema, name)) => {
                QualifiedName::new(Some(schema.trim_matches('"')), name.trim_matches('"'))
            }
            None => QualifiedName::new(None, s),
        }
    }
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The table a `RangeVar` names.
pub fn range_var_name(rv: &RangeVar) -> QualifiedName {
    QualifiedName::new(Some(&rv.schemaname), &rv.relname)
}

/// The inner node of a `Node`.
pub fn inner(node: &Node) -> Option<&NodeEnum> {
    node.node.as_ref()
}

/// Whether the utility option `name` (`VACUUM (FULL …)`, `REINDEX (CONCURRENTLY …)`) is on,
/// read the way PostgreSQL's `defGetBoolean` reads it: a bare option is true, then
/// `true`/`on`/`1` and `false`/`off`/`0` (case-insensitive). Issue #10: `(FULL false)` was
/// taken for FULL. The last occurrence wins, as in PostgreSQL's option loops.
pub fn option_on(options: &[Node], name: &str) -> bool {
    options
        .iter()
        .rev()
        .find_map(|o| match inner(o)? {
            NodeEnum::DefElem(d) if d.defname.eq_ignore_ascii_case(name) => Some(def_bool(d)),
            _ => None,
        })
        .unwrap_or(false)
}

/// A `DefElem`'s boolean value (see [`option_on`]); an unreadable value counts as true,
/// since PostgreSQL rejects it and the strict reading keeps the warning.
pub fn def_bool(d: &protobuf::DefElem) -> bool {
    let Some(arg) = d.arg.as_deref().and_then(inner) else {
        return true;
    };
    let text = match arg {
        NodeEnum::Integer(i) => return i.ival != 0,
        NodeEnum::Boolean(b) => return b.boolval,
        NodeEnum::String(s) => s.sval.to_ascii_lowercase(),
        NodeEnum::AConst(c) => match c.val.as_ref() {
            Some(protobuf::a_const::Val::Ival(i)) => return i.ival != 0,
            Some(protobuf::a_const::Val::Boolval(b)) => return b.boolval,
            Some(protobuf::a_const::Val::Sval(s)) => s.sval.to_ascii_lowercase(),
            _ => return true,
        },
        _ => return true,
    };
    !matches!(text.as_str(), "false" | "off")
}

/// The string value of a `String` node (identifiers in name lists).
pub fn node_string(node: &Node) -> Option<&str> {
    match inner(node)? {
        NodeEnum::String(s) => Some(&s.sval),
        _ => None,
    }
}

/// The strings of a name list such as `TypeName::names` or `DropStmt` objects.
pub fn string_list(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(node_string)
        .map(str::to_string)
        .collect()
}

/// A name list (`[schema, name]` or `[name]`) as a qualified name.
pub fn qualified_from_list(nodes: &[Node]) -> Option<QualifiedName> {
    let parts = string_list(nodes);
    match parts.as_slice() {
        [name] => Some(QualifiedName::new(None, name)),
        [.., schema, name] => Some(QualifiedName::new(Some(schema), name)),
        [] => None,
    }
}

/// The objects of a `DROP` statement as qualified names (tables, indexes, views, …).
pub fn drop_objects(drop: &protobuf::DropStmt) -> Vec<QualifiedName> {
    drop.objects
        .iter()
        .filter_map(|o| match inner(o)? {
            NodeEnum::List(l) => qualified_from_list(&l.items),
            NodeEnum::String(s) => Some(QualifiedName::new(None, &s.sval)),
            NodeEnum::TypeName(t) => qualified_from_list(&t.names),
            _ => None,
        })
        .collect()
}

pub fn object_type(v: i32) -> ObjectType {
    ObjectType::try_from(v).unwrap_or(ObjectType::Undefined)
}

pub fn constr_type(c: &Constraint) -> ConstrType {
    ConstrType::try_from(c.contype).unwrap_or(ConstrType::Undefined)
}

pub fn cmd_type(cmd: &AlterTableCmd) -> AlterTableType {
    AlterTableType::try_from(cmd.subtype).unwrap_or(AlterTableType::Undefined)
}

/// `ALTER TABLE` on a table (not an index, view or sequence).
pub fn alter_table(node: &NodeEnum) -> Option<&AlterTableStmt> {
    match node {
        NodeEnum::AlterTableStmt(a) if object_type(a.objtype) == ObjectType::ObjectTable => Some(a),
        _ => None,
    }
}

/// The table an `ALTER TABLE` changes.
pub fn alter_table_name(a: &AlterTableStmt) -> Option<QualifiedName> {
    a.relation.as_ref().map(range_var_name)
}

/// The sub-commands of an `ALTER TABLE`.
pub fn alter_cmds(a: &AlterTableStmt) -> impl Iterator<Item = &AlterTableCmd> {
    a.cmds.iter().filter_map(|c| match inner(c)? {
        NodeEnum::AlterTableCmd(cmd) => Some(&**cmd),
        _ => None,
    })
}

/// The column definition of `ADD COLUMN` (or a `ColumnDef` table element).
pub fn cmd_column_def(cmd: &AlterTableCmd) -> Option<&ColumnDef> {
    match inner(cmd.def.as_deref()?)? {
        NodeEnum::ColumnDef(c) => Some(c),
        _ => None,
    }
}

/// The constraint of `ADD CONSTRAINT`.
pub fn cmd_constraint(cmd: &AlterTableCmd) -> Option<&Constraint> {
    node_constraint(cmd.def.as_deref()?)
}

pub fn node_constraint(node: &Node) -> Option<&Constraint> {
    match inner(node)? {
        NodeEnum::Constraint(c) => Some(c),
        _ => None,
    }
}

/// The inline constraints of a column definition.
pub fn column_constraints(col: &ColumnDef) -> impl Iterator<Item = &Constraint> {
    col.constraints.iter().filter_map(node_constraint)
}

/// The `DEFAULT` expression of a column definition.
pub fn column_default(col: &ColumnDef) -> Option<&NodeEnum> {
    if let Some(d) = col.raw_default.as_deref().and_then(inner) {
        return Some(d);
    }
    column_constraints(col)
        .find(|c| constr_type(c) == ConstrType::ConstrDefault)
        .and_then(|c| c.raw_expr.as_deref())
        .and_then(inner)
}

/// A type as PostgreSQL names it internally, lowercased: `int4`, `varchar`, `timestamptz`,
/// `serial` (the last element of the name, without `pg_catalog.`).
pub fn type_base_name(t: &TypeName) -> String {
    let names = string_list(&t.names);
    names
        .last()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Integer type modifiers (`varchar(20)` → `[20]`, `numeric(10,2)` → `[10, 2]`).
pub fn type_mods(t: &TypeName) -> Vec<i64> {
    t.typmods
        .iter()
        .filter_map(|m| integer_value(inner(m)?))
        .collect()
}

/// The value of an integer constant (also inside `A_Const`).
pub fn integer_value(node: &NodeEnum) -> Option<i64> {
    match node {
        NodeEnum::Integer(i) => Some(i64::from(i.ival)),
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            protobuf::a_const::Val::Ival(i) => Some(i64::from(i.ival)),
            _ => None,
        },
        _ => None,
    }
}

/// A type written back as SQL, e.g. `varchar(20)`, `int4[]`.
pub fn type_display(t: &TypeName) -> String {
    let mut s = type_base_name(t);
    let mods = type_mods(t);
    if !mods.is_empty() {
        let mods: Vec<String> = mods.iter().map(i64::to_string).collect();
        s.push_str(&format!("({})", mods.join(",")));
    }
    for _ in &t.array_bounds {
        s.push_str("[]");
    }
    s
}

/// Every function called anywhere inside `node` (lowercased last name part).
pub fn called_functions(node: &NodeEnum) -> Vec<String> {
    node.nodes()
        .into_iter()
        .filter_map(|(n, _, _, _)| match n {
            NodeRef::FuncCall(f) => string_list(&f.funcname)
                .last()
                .map(|s| s.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Whether `node` contains a sub-node matching `pred` (walks the whole tree).
pub fn contains(node: &NodeEnum, pred: impl Fn(&NodeRef<'_>) -> bool) -> bool {
    node.nodes().iter().any(|(n, _, _, _)| pred(n))
}

/// Column names referenced by an index or constraint key list (`IndexElem` or `String`).
pub fn key_names(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match inner(n)? {
            NodeEnum::String(s) => Some(s.sval.clone()),
            NodeEnum::IndexElem(e) if !e.name.is_empty() => Some(e.name.clone()),
            _ => None,
        })
        .collect()
}

/// The `CHECK (col IS NOT NULL)` column, if the expression is exactly that.
pub fn is_not_null_check(expr: &NodeEnum) -> Option<String> {
    let NodeEnum::NullTest(t) = expr else {
        return None;
    };
    // NullTestType: IS_NULL = 1, IS_NOT_NULL = 2.
    if t.nulltesttype != 2 {
        return None;
    }
    match inner(t.arg.as_deref()?)? {
        NodeEnum::ColumnRef(c) => c.fields.last().and_then(node_string).map(str::to_string),
        _ => None,
    }
}
