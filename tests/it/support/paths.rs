//! Paths the integration tests share: the repository, shipped captures and a scratch
//! directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root (where `captures/`, `docs/` and `tests/data/` are).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A capture shipped in `captures/`.
pub fn capture(name: &str) -> PathBuf {
    root().join("captures").join(name)
}

/// A scratch directory for one test file's outputs, under cargo's target tmp dir.
pub fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}
