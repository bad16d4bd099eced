//! Helpers shared by the integration tests: where the pgroll examples live.

use std::path::PathBuf;

/// `/work/shared/compat/pgroll-examples`: `shared/` sits beside the repository.
#[allow(dead_code)]
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat/pgroll-examples")
}

/// Fixtures of this crate (`tests/data`).
#[allow(dead_code)]
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}
