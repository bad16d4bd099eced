//! A5 `alter-column-type-rewrite`.

use pg_query::protobuf::AlterTableType;

use crate::ast::{self, QualifiedName};
use crate::context::Statement;
use crate::rule::{Diagnostic, Severity};
use crate::rules::common::{self, AEL, EXPAND_CONTRACT};
use crate::{Context, Sink};

crate::declare_rule! {
    /// ## What it detects
    /// `ALTER COLUMN … TYPE` on an existing table unless the change is known to be
    /// binary-coercible. Known safe: `varchar(n)` → larger `varchar` or `text` (PG ≥ 9.2),
    /// `text` → unbounded `varchar`, `numeric(p,s)` → larger precision at the same scale or
    /// unbounded `numeric`, `cidr` → `inet`, an unchanged type. Without `--database-url` the
    /// old type is unknown unless the file declared the column: a change to `bigint`,
    /// `integer` etc. is reported as an error (int → bigint always rewrites), a change to
    /// `text`/`varchar`/`numeric`/`timestamptz` as a warning (safe only from a compatible type).
    /// A `USING` clause or a collation change always rewrites.
    ///
    /// ## Why it is dangerous
    /// A rewrite of the table and every index under an ACCESS EXCLUSIVE lock: no reads or
    /// writes for its whole duration. Old application code may also break on the new type.
    /// `timestamp` → `timestamptz` avoids the rewrite only on PG ≥ 12 with a UTC session.
    ///
    /// ## What to do instead
    /// Expand/contract: add the new column, keep both in sync with a trigger, backfill in
    /// batches, switch reads, drop the old column later — the ratchet operation
    /// `alter_column` with `type`, `up` and `down`.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: rewrites `orders`
    /// ALTER TABLE orders ALTER COLUMN id TYPE bigint;
    /// -- fine: metadata only
    /// ALTER TABLE orders ALTER COLUMN note TYPE text;  -- note was varchar(200)
    /// ```
    code: "A5",
    name: "alter-column-type-rewrite",
    severity: Error,
    summary: "ALTER COLUMN … TYPE that is not binary-coercible rewrites the table under ACCESS EXCLUSIVE",
    check: check,
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Safe,
    Rewrite,
    Unknown,
}

fn check(cx: &Context<'_>, sink: &mut Sink) {
    for c in common::cmds_of(cx, AlterTableType::AtAlterColumnType) {
        let Some(def) = c.column_def() else { continue };
        let Some(new) = def.type_name.as_ref() else {
            continue;
        };
        let new_ty = (ast::type_base_name(new), ast::type_mods(new));
        let using = def.raw_default.is_some();
        let collate = def.coll_clause.is_some();
        let old = old_type(cx, &c.table, &c.cmd.name, c.stmt);
        let verdict = if using || collate {
            Verdict::Rewrite
        } else {
            judge(old.as_ref(), &new_ty, cx)
        };
        let shown = ast::type_display(new);
        let (severity, what) = match verdict {
            Verdict::Safe => continue,
            Verdict::Rewrite => (
                cx.size_severity(&c.table).unwrap_or(Severity::Error),
                match &old {
                    Some((o, m)) => format!("changing `{}` from {} to {shown} rewrites", c.cmd.name, show(o, m)),
                    None => format!("changing `{}` to {shown} rewrites", c.cmd.name),
                },
            ),
            Verdict::Unknown => (Severity::Warning, format!("unless the current type is binary-coercible to {shown}, changing `{}` rewrites", c.cmd.name)),
        };
        sink.push(
            Diagnostic::new(
                c.stmt.span,
                format!(
                    "{what} table `{}`{} and its indexes under an {AEL}",
                    c.table,
                    cx.size_note(&c.table)
                ),
            )
            .help(format!(
                "{EXPAND_CONTRACT}. Run with --database-url to check the real column type"
            ))
            .severity(severity),
        );
    }
}

fn show(base: &str, mods: &[i64]) -> String {
    if mods.is_empty() {
        base.to_string()
    } else {
        format!(
            "{base}({})",
            mods.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

/// The column's current type: from the catalog, or as declared earlier in this file or an
/// earlier file of the run.
fn old_type(
    cx: &Context<'_>,
    table: &QualifiedName,
    column: &str,
    stmt: &Statement,
) -> Option<(String, Vec<i64>)> {
    if let Some(col) = cx.table_info(table).and_then(|t| t.column(column)) {
        return Some((col.base_type.clone(), mods_of(&col.type_name)));
    }
    cx.declared_column_type(table, column, stmt)
}

/// `character varying(20)` → `[20]`, `numeric(10,2)` → `[10, 2]`.
fn mods_of(formatted: &str) -> Vec<i64> {
    let Some(start) = formatted.find('(') else {
        return Vec::new();
    };
    let inner = formatted[start + 1..].split(')').next().unwrap_or("");
    inner
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

fn judge(old: Option<&(String, Vec<i64>)>, new: &(String, Vec<i64>), cx: &Context<'_>) -> Verdict {
    let (nb, nm) = (new.0.as_str(), new.1.as_slice());
    let Some((ob, om)) = old else {
        return match nb {
            "text" | "varchar" | "numeric" | "inet" | "citext" | "timestamptz" | "varbit" => {
                Verdict::Unknown
            }
            _ => Verdict::Rewrite,
        };
    };
    let (ob, om) = (ob.as_str(), om.as_slice());
    let wider = |o: &[i64], n: &[i64]| n.is_empty() || (!o.is_empty() && n[0] >= o[0]);
    match (ob, nb) {
        _ if ob == nb && om == nm => Verdict::Safe,
        ("varchar", "varchar") | ("varbit", "varbit") => {
            if wider(om, nm) {
                Verdict::Safe
            } else {
                Verdict::Rewrite
            }
        }
        ("varchar", "text") | ("text", "varchar") if nm.is_empty() || ob == "varchar" => {
            Verdict::Safe
        }
        ("numeric", "numeric") => {
            let same_scale = om.get(1).copied().unwrap_or(0) == nm.get(1).copied().unwrap_or(0);
            if nm.is_empty() || (wider(om, nm) && same_scale) {
                Verdict::Safe
            } else {
                Verdict::Rewrite
            }
        }
        ("cidr", "inet") => Verdict::Safe,
        ("text", "citext") | ("citext", "text") => Verdict::Unknown,
        ("timestamp", "timestamptz") if cx.pg_version().at_least(12) => Verdict::Unknown,
        _ => Verdict::Rewrite,
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::catalog::{Catalog, ColumnInfo, TableInfo};
    use crate::testing::*;
    use crate::Settings;

    fn catalog(ty: &str, base: &str) -> Catalog {
        let col = ColumnInfo {
            name: "note".into(),
            type_name: ty.into(),
            base_type: base.into(),
            not_null: false,
        };
        Catalog::from_tables(
            None,
            vec![TableInfo {
                schema: "public".into(),
                name: "orders".into(),
                rows: 5e6,
                columns: vec![col],
                ..TableInfo::default()
            }],
        )
    }

    #[test]
    fn int_to_bigint_fires() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders ALTER COLUMN id TYPE bigint;"
        ));
    }

    #[test]
    fn to_text_without_catalog_is_a_warning() {
        insta::assert_snapshot!(lint_errors(
            &RULE,
            "ALTER TABLE orders ALTER COLUMN note TYPE text;"
        ));
    }

    #[test]
    fn varchar_widening_known_from_catalog_is_fine() {
        let cat = catalog("character varying(20)", "varchar");
        lint_ok_with(
            &RULE,
            "ALTER TABLE orders ALTER COLUMN note TYPE varchar(50);",
            &Settings::default(),
            Some(&cat),
        );
        lint_ok_with(
            &RULE,
            "ALTER TABLE orders ALTER COLUMN note TYPE text;",
            &Settings::default(),
            Some(&cat),
        );
    }

    #[test]
    fn varchar_shrink_known_from_catalog_fires() {
        let cat = catalog("character varying(20)", "varchar");
        insta::assert_snapshot!(lint_errors_with(
            &RULE,
            "ALTER TABLE orders ALTER COLUMN note TYPE varchar(10);",
            &Settings::default(),
            Some(&cat)
        ));
    }

    #[test]
    fn widening_a_column_declared_in_the_file_is_fine() {
        lint_ok(&RULE, "ALTER TABLE orders ADD COLUMN note varchar(20);\nALTER TABLE orders ALTER COLUMN note TYPE varchar(40);");
    }
}
