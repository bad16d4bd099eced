//! The client crate against a real PostgreSQL server (a fresh database per test, see
//! `ratchet_scratch::testing`), with migrations run by the real engine. One test binary,
//! so one scratch cluster serves every test.

mod common;
mod flags;
mod heartbeat;
mod privileges;
mod versions;
#[cfg(feature = "sqlx")]
mod with_sqlx;
