//! Planner snapshot tests that need no database: a catalog read from a JSON fixture
//! (`fixtures/catalogs/`, dumped from a real server), a migration file from
//! `fixtures/migrations/` loaded through ratchet-spec's loader, and the plan rendered as
//! text (or JSON) and compared with the `.snap` files under `planner_snapshots/snapshots/`.
//!
//! The snapshots document what the planner does today, step by step: phase, kind, the
//! operation it comes from, every statement and the locks it claims. A change to any of
//! them shows up as a snapshot diff (`cargo insta review`, or `INSTA_UPDATE=always` to
//! rewrite them).

// A crate root's `mod x;` looks beside it, not in `planner_snapshots/`: hence the paths.
#[macro_use]
#[path = "planner_snapshots/support.rs"]
mod support;

#[path = "planner_snapshots/errors.rs"]
mod errors;
#[path = "planner_snapshots/operations.rs"]
mod operations;
#[path = "planner_snapshots/partitioned.rs"]
mod partitioned;
#[path = "planner_snapshots/regenerate.rs"]
mod regenerate;
#[path = "planner_snapshots/tricky.rs"]
mod tricky;
