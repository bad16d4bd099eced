//! `CREATE INDEX`: becomes `create_index`, which ratchet builds CONCURRENTLY.

use pg_query::protobuf::{self, node::Node as N};
use ratchet_spec::model::{CreateIndex, IndexColumn, OpClass, Operation};

use crate::converter::{unsupported, Conv, Converter};
use crate::deparse::{deparse_expr, deparse_type};
use crate::names::{names, object_name, table_name};

impl Converter<'_> {
    pub(crate) fn create_index(&mut self, s: &protobuf::IndexStmt) -> Conv<Operation> {
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

/// `WITH (fillfactor = 70, …)` as the raw text the model keeps.
pub(crate) fn storage_parameters(options: &[protobuf::Node]) -> Conv<Option<String>> {
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
            Some(N::String(s)) => ratchet_sql::literal(&s.sval),
            Some(N::TypeName(t)) => deparse_type(Some(t))?,
            None => "true".to_string(),
            _ => return unsupported("a storage parameter value that cannot be converted"),
        };
        parts.push(format!("{} = {value}", d.defname));
    }
    Ok(Some(parts.join(", ")))
}
