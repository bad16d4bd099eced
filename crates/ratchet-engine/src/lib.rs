//! ratchet's engine: catalog introspection, the planner (migration file + catalog →
//! ordered steps with SQL, lock and phase) and the executor (state schema, migration
//! lock, lock timeouts and retries, versioned views, gates).
//!
//! Data flows one way: file (`ratchet-spec`) → [`planner`] → [`plan::Plan`] →
//! [`executor`] → database, behind the façade [`Engine`]. The library never prints:
//! progress goes through a [`Reporter`].

pub mod backfill;
pub mod catalog;
pub mod config;
pub mod control;
pub mod doctor;
pub mod dualwrite;
pub mod error;
pub mod executor;
pub mod fragment;
pub mod gates;
pub mod lifecycle;
pub mod monitor;
pub mod plan;
pub mod planner;
pub mod report;
pub(crate) mod retry;
pub(crate) mod session;
pub mod sql;
pub mod state;
pub mod validate;
pub mod views;

pub use config::Config;
pub use error::EngineError;
pub use lifecycle::Engine;
pub use lifecycle::{MigrateOutcome, StartOutcome, Status};
pub use plan::{Phase, Plan};
pub use report::{Event, Reporter, Silent};
