//! Identifiers and literals written into SQL. Names from migration files and catalogs are
//! data, never SQL: every one goes through a function here.
//!
//! Three quoting styles exist because their callers want different text, and each
//! caller's output must stay as it is:
//! - [`ident`] always quotes. The engine uses it for every statement it runs: a quoted
//!   name is never folded to lower case and never mistaken for a keyword.
//! - [`ident_if_needed`] quotes only what PostgreSQL would not read back as the same
//!   name: `ratchet convert` writes `up`/`down` expressions a person will read and edit.
//! - [`ident_unless_lowercase`] quotes anything but a plain lower-case name, keywords
//!   included: the linter's fix texts, which repeat names as the user wrote them.

/// PostgreSQL's NAMEDATALEN - 1: the longest identifier it keeps, in bytes. A longer
/// name is silently truncated (with a NOTICE), so two long names can collide.
pub const MAX_IDENT: usize = 63;

/// Whether PostgreSQL would truncate `name` (it counts bytes, not characters).
pub fn ident_too_long(name: &str) -> bool {
    name.len() > MAX_IDENT
}

/// A double-quoted identifier, with embedded quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A comma-separated list of quoted identifiers.
pub fn ident_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| ident(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A single-quoted string literal, embedded quotes doubled. Backslashes stay as they are:
/// `standard_conforming_strings` is on by default since PostgreSQL 9.1.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `[a-z_][a-z0-9_]*`: a name that unquoted case folding leaves unchanged.
fn is_lowercase_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The name as it is when it is a plain lower-case name, else quoted. Keywords are not
/// recognised (`select` stays bare); use [`ident_if_needed`] where that matters.
pub fn ident_unless_lowercase(name: &str) -> String {
    if is_lowercase_name(name) {
        name.to_string()
    } else {
        ident(name)
    }
}

/// The name bare when PostgreSQL reads it back as the same name — lower case and not a
/// keyword that would change the meaning (unreserved keywords such as `name` are fine as
/// column names) — else quoted.
#[cfg(feature = "parser")]
pub fn ident_if_needed(name: &str) -> String {
    use pg_query::protobuf::KeywordKind;
    let plain = is_lowercase_name(name)
        && pg_query::scan(name).is_ok_and(|r| {
            matches!(r.tokens.as_slice(), [t] if matches!(
                t.keyword_kind(),
                KeywordKind::NoKeyword | KeywordKind::UnreservedKeyword
            ))
        });
    if plain {
        name.to_string()
    } else {
        ident(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_quoted() {
        assert_eq!(ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(ident("users"), r#""users""#);
        assert_eq!(ident(""), r#""""#);
        assert_eq!(qualified("public", "T"), r#""public"."T""#);
        assert_eq!(
            ident_list(&["a".into(), "B".into()]),
            r#""a", "B""#.to_string()
        );
    }

    #[test]
    fn literals_double_their_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"C:\dir"), r"'C:\dir'");
        assert_eq!(literal("ünï"), "'ünï'");
    }

    #[cfg(feature = "parser")]
    #[test]
    fn mixed_case_unicode_and_quotes_are_quoted_by_both_minimal_styles() {
        for quote in [ident_unless_lowercase, ident_if_needed] {
            assert_eq!(quote("Order"), r#""Order""#);
            assert_eq!(quote("café"), r#""café""#);
            assert_eq!(quote(r#"we"ird"#), r#""we""ird""#);
            assert_eq!(quote("1st"), r#""1st""#);
            assert_eq!(quote("has space"), r#""has space""#);
            assert_eq!(quote(""), r#""""#);
            assert_eq!(quote("user_id2"), "user_id2");
            assert_eq!(quote("_tmp"), "_tmp");
        }
    }

    #[cfg(feature = "parser")]
    #[test]
    fn keywords_are_quoted_only_by_the_keyword_aware_style() {
        // Reserved (`select`, `user`) and column-name keywords (`between`) change the
        // meaning of an expression; unreserved ones (`name`, `status`) do not.
        assert_eq!(ident_if_needed("select"), r#""select""#);
        assert_eq!(ident_if_needed("user"), r#""user""#);
        assert_eq!(ident_if_needed("between"), r#""between""#);
        assert_eq!(ident_if_needed("name"), "name");
        assert_eq!(ident_if_needed("status"), "status");
        assert_eq!(ident_unless_lowercase("select"), "select");
        assert_eq!(ident_unless_lowercase("user"), "user");
    }

    #[test]
    fn length_counts_bytes() {
        assert!(!ident_too_long(&"a".repeat(MAX_IDENT)));
        assert!(ident_too_long(&"a".repeat(MAX_IDENT + 1)));
        // 32 two-byte characters are 64 bytes: too long although 32 characters.
        assert!(ident_too_long(&"é".repeat(32)));
        assert!(!ident_too_long(&"é".repeat(31)));
    }
}
