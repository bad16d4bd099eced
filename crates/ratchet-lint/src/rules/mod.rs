//! The registry: one file per rule in this folder, discovered by `build.rs` (a file named
//! `<code>_<name>.rs`, e.g. `a18_create_index_non_concurrently.rs`, defining
//! `pub static RULE`). Adding a rule is adding its file; nothing else to edit.
//!
//! Shared advice strings live here so that every rule points at the same ratchet
//! operations.

include!(concat!(env!("OUT_DIR"), "/rules_gen.rs"));

pub mod common;

use crate::rule::Rule;

/// The name of D12, whose findings the suppression machinery produces.
pub const UNUSED_IGNORE: &str = "unused-ignore";

/// A rule by code (`A18`, any case) or name.
pub fn find(name: &str) -> Option<&'static Rule> {
    ALL.iter().copied().find(|r| r.matches(name))
}

/// The rule name closest to an unknown `name` (`create-index-nonconcurrently`, `A81`),
/// when one is an obvious typo; a typo of a code suggests the code.
pub fn suggest(name: &str) -> Option<&'static str> {
    let names: Vec<String> = ALL.iter().map(|r| r.name.to_string()).collect();
    let codes: Vec<String> = ALL.iter().map(|r| r.code.to_string()).collect();
    let close = |valid: &[String]| {
        let best = ratchet_spec::closest(name, valid)?;
        ALL.iter().copied().find(|r| r.matches(best))
    };
    close(&names)
        .map(|r| r.name)
        .or_else(|| close(&codes).map(|r| r.code))
}

/// "; did you mean `x`?" for an unknown rule name, or nothing.
pub fn did_you_mean(name: &str) -> String {
    suggest(name)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// For rules whose findings the engine produces (syntax errors, unused suppressions).
pub fn no_check(_cx: &crate::Context<'_>, _sink: &mut crate::Sink) {}
