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

/// For rules whose findings the engine produces (syntax errors, unused suppressions).
pub fn no_check(_cx: &crate::Context<'_>, _sink: &mut crate::Sink) {}
