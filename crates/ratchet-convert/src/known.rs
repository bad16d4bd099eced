//! What earlier statements of the same file established, so later ones can use it: the
//! old type of a column for a type change's `down`, the columns of a constraint that is
//! dropped or validated later.

use std::collections::HashMap;

use ratchet_spec::model::{Column, Operation};

use crate::converter::Converter;

/// What earlier statements of the same file established, so later ones can use it
/// (the old type of a column for `down`, the columns of a constraint being dropped).
#[derive(Default)]
pub(crate) struct Known {
    /// (table, column) → type.
    pub(crate) types: HashMap<(String, String), String>,
    /// (table, constraint) → constrained columns.
    pub(crate) constraints: HashMap<(String, String), Vec<String>>,
}

impl Converter<'_> {
    /// Records what the converted operations establish for later statements.
    pub(crate) fn learn(&mut self, ops: &[Operation]) {
        for op in ops {
            self.learn_one(op);
        }
    }

    pub(crate) fn learn_one(&mut self, op: &Operation) {
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
