//! A37 `table-rewrite-observed` (trace).

crate::declare_rule! {
    /// ## What it detects
    /// Any statement that changes the relfilenode of a table or index (a rewrite) while
    /// holding a dangerous lock — whatever caused it, including causes the static rules miss.
    ///
    /// **Needs a trace.** A rewrite can only be observed by running the migration and
    /// comparing `pg_class.relfilenode` before and after each statement. `ratchet lint` never
    /// runs DDL (not even inside a rolled-back transaction: that would take the locks on the
    /// real database), so this rule reports nothing from `ratchet lint`, with or without
    /// `--database-url`. The static rules A1–A5, A27, A29 and A30 cover the known causes;
    /// `ratchet rehearse` runs migrations on a scratch copy and traces rewrites.
    ///
    /// ## Why it is dangerous
    /// A rewrite under ACCESS EXCLUSIVE blocks all reads and writes for a time proportional to
    /// the table's size.
    ///
    /// ## What to do instead
    /// Expand/contract: ratchet's operations never rewrite a table under a strong lock.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE t ALTER COLUMN c TYPE bigint;  -- relfilenode changes: a rewrite
    /// ```
    code: "A37",
    name: "table-rewrite-observed",
    severity: Error,
    summary: "a rewrite observed while running the migration (trace only: reported by rehearsal, not by lint)",
    check: crate::rules::no_check,
}
