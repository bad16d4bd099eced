//! D11 `syntax-error`: reported by the engine (see `crate::source`), registered here so it
//! has an id, documentation and a place in `docs/rules/`.

crate::declare_rule! {
    /// ## What it detects
    /// SQL that the PostgreSQL parser (the real one, through `pg_query`) rejects.
    ///
    /// ## Why it is dangerous
    /// Nothing in a statement that does not parse can be checked, and the migration will
    /// fail when it runs. The error is reported with its line and column (the token where
    /// the parser gave up) under `errors` in the JSON output and makes `ratchet lint` exit
    /// with code 2. The other statements of the file and the other files are still checked.
    ///
    /// ## What to do instead
    /// Fix the SQL. For PL/pgSQL bodies only the outer statement is parsed.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE users ADD COLUM email text;  -- syntax error at or near "text"
    /// ```
    code: "D11",
    name: "syntax-error",
    severity: Error,
    summary: "SQL that does not parse (reported as an error, exit code 2)",
    check: crate::rules::no_check,
}
