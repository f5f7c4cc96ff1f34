//! Integration tests of the SQLite backend, in one test binary: the conformance suite,
//! persistence across restarts, group commit, slow watchers, compaction, crash durability
//! (kill -9 of a child process) and property tests against an in-memory model.

mod compaction;
mod conformance;
mod crash;
mod group_commit;
mod persistence;
mod props;
mod watch;

use std::path::Path;
use std::sync::Arc;

use skiff_store::sqlite::{SqliteOptions, SqliteStore};

/// Opens a store in `dir` with default options.
pub fn open(dir: &Path) -> Arc<SqliteStore> {
    open_with(dir, SqliteOptions::default())
}

pub fn open_with(dir: &Path, opts: SqliteOptions) -> Arc<SqliteStore> {
    SqliteStore::open(&dir.join("store.db"), opts).expect("open store")
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}
