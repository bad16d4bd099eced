//! D8 `column-alignment-padding`: a new table whose column order wastes alignment
//! padding in every row.

use pg_query::protobuf::TypeName;
use pg_query::NodeEnum;

use crate::ast;
use crate::{Context, Diagnostic, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// Opt-in (enable `column-alignment-padding`): `CREATE TABLE` whose fixed-width columns
    /// are ordered so that PostgreSQL must insert alignment padding, or that places
    /// 4- and 8-byte-aligned columns after variable-length ones. Tables with types the
    /// rule does not know are skipped.
    ///
    /// ## Why it is dangerous
    /// Not dangerous, wasteful (`info`): every `bigint`, `timestamptz` or `float8` starts
    /// at a multiple of 8 bytes, so `(flag boolean, id bigint, n int4, at timestamptz)`
    /// pads 7 + 4 bytes per row. On a large table that is gigabytes of disk, cache and
    /// backup; it can only be fixed later by rewriting the table.
    ///
    /// ## What to do instead
    /// Order columns by alignment: 8-byte types first, then 4, 2, 1, then variable-length
    /// types (`text`, `numeric`, `jsonb`). The message lists the order.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE t (active boolean, id bigint, name text, created_at timestamptz);
    /// -- instead
    /// CREATE TABLE t (id bigint, created_at timestamptz, active boolean, name text);
    /// ```
    code: "D8",
    name: "column-alignment-padding",
    severity: Info,
    category: Policy,
    enabled_by_default: false,
    summary: "column order that wastes alignment padding in a new table",
    check: check,
}

/// (alignment, size) of a fixed-width type; `None` for variable-length, `Err` for unknown.
fn layout(t: &TypeName) -> Result<Option<(usize, usize)>, ()> {
    if !t.array_bounds.is_empty() {
        return Ok(None);
    }
    Ok(Some(match ast::type_base_name(t).as_str() {
        "bool" | "boolean" => (1, 1),
        "int2" | "smallint" | "smallserial" | "serial2" => (2, 2),
        "int4" | "int" | "integer" | "serial" | "serial4" | "float4" | "real" | "date" | "oid" => {
            (4, 4)
        }
        "int8" | "bigint" | "bigserial" | "serial8" | "float8" | "money" | "timestamp"
        | "timestamptz" | "time" => (8, 8),
        "timetz" => (8, 12),
        "interval" => (8, 16),
        "uuid" => (1, 16),
        "text" | "varchar" | "bpchar" | "numeric" | "json" | "jsonb" | "bytea" | "inet"
        | "cidr" | "xml" | "tsvector" | "citext" => return Ok(None),
        _ => return Err(()),
    }))
}

struct Col {
    name: String,
    layout: Option<(usize, usize)>,
}

/// Padding bytes of the fixed-width columns in this order.
fn padding(cols: &[&Col]) -> usize {
    let mut offset = 0;
    let mut pad = 0;
    for (align, size) in cols.iter().filter_map(|c| c.layout) {
        let gap = (align - offset % align) % align;
        pad += gap;
        offset += gap + size;
    }
    pad
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for stmt in cx.statements() {
        let NodeEnum::CreateStmt(create) = &stmt.node else {
            continue;
        };
        let mut cols = Vec::new();
        let mut known = true;
        for elt in &create.table_elts {
            let Some(NodeEnum::ColumnDef(def)) = ast::inner(elt) else {
                continue;
            };
            let Some(layout) = def.type_name.as_ref().map(layout) else {
                continue;
            };
            match layout {
                Ok(layout) => cols.push(Col {
                    name: def.colname.clone(),
                    layout,
                }),
                Err(()) => known = false,
            }
        }
        if !known || cols.len() < 2 {
            continue;
        }
        let current: Vec<&Col> = cols.iter().collect();
        let mut best = current.clone();
        // Stable: 8-byte first … 1-byte, variable-length last.
        best.sort_by_key(|c| std::cmp::Reverse(c.layout.map_or(0, |(a, _)| a)));
        let fixed_waste = padding(&current).saturating_sub(padding(&best));
        let mut seen_var = false;
        let mut after_var = 0;
        for c in &current {
            match c.layout {
                None => seen_var = true,
                Some((align, _)) if seen_var && align > 1 => after_var += align - 1,
                _ => {}
            }
        }
        if fixed_waste == 0 && after_var == 0 {
            continue;
        }
        let order: Vec<&str> = best.iter().map(|c| c.name.as_str()).collect();
        sink.push(
            Diagnostic::new(
                stmt.span,
                format!(
                    "this column order wastes up to {} bytes of alignment padding per row",
                    fixed_waste + after_var
                ),
            )
            .help(format!(
                "order the columns by alignment: {}",
                order.join(", ")
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::testing::{lint_errors, lint_ok};

    #[test]
    fn fires_on_a_padded_layout() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "CREATE TABLE t (active boolean, id bigint, name text, created_at timestamptz);"
        ));
    }

    #[test]
    fn ignores_an_aligned_layout() {
        lint_ok(
            &RULE,
            "CREATE TABLE t (id bigint, created_at timestamptz, n int, active boolean, name text);",
        );
    }
}
