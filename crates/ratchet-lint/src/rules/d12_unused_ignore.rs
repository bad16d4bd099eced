//! D12 `unused-ignore`: the suppression machinery (`crate::suppress`) reports these after
//! every other rule has run.

crate::declare_rule! {
    /// ## What it detects
    /// A `-- ratchet:ignore <rule>` or `-- ratchet:ignore-file <rule>` comment that
    /// silenced nothing, or that names a rule that does not exist.
    ///
    /// ## Why it is dangerous
    /// A stale suppression hides the next real problem of that kind on the statement it sits
    /// on. A misspelt rule name silently suppresses nothing.
    ///
    /// ## What to do instead
    /// Remove the comment (the autofix does), or correct the rule name.
    ///
    /// ## Example
    /// ```sql
    /// -- ratchet:ignore create-index-non-concurrently built concurrently now
    /// CREATE INDEX CONCURRENTLY users_email_idx ON users (email);
    /// ```
    code: "D12",
    name: "unused-ignore",
    severity: Warning,
    category: Policy,
    summary: "a ratchet:ignore comment that suppresses nothing",
    check: crate::rules::no_check,
}

#[cfg(test)]
mod tests {
    use crate::testing::*;
    use crate::{Linter, Settings};

    fn all(sql: &str) -> String {
        let settings = Settings::default();
        render_report(&Linter::new(&settings, None).lint_sql(TEST_PATH, sql))
    }

    #[test]
    fn stale_ignore_is_reported() {
        insta::assert_snapshot!(all(
            "-- ratchet:ignore create-index-non-concurrently built concurrently now\nCREATE INDEX CONCURRENTLY i ON users (email);"
        ));
    }

    #[test]
    fn used_ignore_is_silent() {
        let out = all("-- ratchet:ignore A18 small lookup table\nCREATE INDEX i ON users (email);");
        assert!(!out.contains("create-index-non-concurrently"), "{out}");
        assert!(!out.contains("unused-ignore"), "{out}");
    }

    #[test]
    fn unknown_rule_is_reported() {
        insta::assert_snapshot!(all("-- ratchet:ignore no-such-rule because\nSELECT 1;"));
    }
}
