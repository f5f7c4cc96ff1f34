//! Skiff's datastore: a revision log with MVCC reads and watches.
//!
//! Every write gets the next global revision inside its own transaction: revisions have no gaps
//! and never go backwards. A key's value is opaque bytes. Reads name a revision (or the newest);
//! watches replay every event after a revision exactly once, in order, then follow new writes.
//! Revisions below the compaction point are gone and answer [`StoreError::Compacted`].
//!
//! The [`Store`] trait is what the API server uses; [`sqlite::SqliteStore`] is the default
//! backend. Any backend must pass the suite in [`conformance`].

use std::sync::Arc;

use bytes::Bytes;

pub mod conformance;
pub mod sqlite;

/// A global revision. The first write is revision 1.
pub type Revision = i64;

/// A key's value at some revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// The revision that created this key (since its last deletion).
    pub create_revision: Revision,
    /// The revision of the last write to this key.
    pub mod_revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated; `kv` is the new value.
    Put,
    /// The key was deleted; `kv` holds the deleted value with `mod_revision` set to the
    /// revision of the deletion.
    Delete,
}

/// One change, as a watch delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The value before this change; `None` for a create.
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// The result of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: Revision,
    /// More keys follow the last one returned (the limit cut the list).
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// A compare-and-swap failed: the key's current revision is not the expected one. Carries
    /// the current value when the key exists.
    #[error("key {key} was modified (expected revision {expected})")]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision is older than the compaction point.
    #[error("required revision {requested} has been compacted (compacted at {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is newer than the store's current revision.
    #[error("required revision {requested} is in the future (current {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("value of {key} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        key: String,
        size: usize,
        limit: usize,
    },
    #[error("store closed")]
    Closed,
    #[error("datastore error: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// How far a read may look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadAt {
    /// The newest revision.
    #[default]
    Latest,
    /// Exactly this revision (must be ≥ the compaction point and ≤ current).
    Exact(Revision),
}

/// A list request over a key prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOptions {
    pub prefix: String,
    pub at: ReadAt,
    /// Only keys strictly greater than this one (pagination).
    pub start_after: Option<String>,
    /// At most this many items; 0 means no limit.
    pub limit: usize,
}

/// A stream of watch events for a key prefix. Dropping it ends the watch.
pub struct Watch {
    pub(crate) rx: tokio::sync::mpsc::Receiver<Result<Vec<Arc<Event>>>>,
}

impl Watch {
    /// The next batch of events (in revision order, never empty); `None` when the store
    /// closed. An `Err` (for example [`StoreError::Compacted`] when this watcher fell behind
    /// the compaction point) ends the watch.
    pub async fn next(&mut self) -> Option<Result<Vec<Arc<Event>>>> {
        self.rx.recv().await
    }

    /// Builds a watch from a channel; for backends.
    pub fn from_channel(rx: tokio::sync::mpsc::Receiver<Result<Vec<Arc<Event>>>>) -> Self {
        Watch { rx }
    }
}

/// The datastore interface. All methods are cancel-safe in the sense that a write that was
/// acknowledged is durable, and a write whose future was dropped may or may not have happened.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates `key` if it does not exist; returns the new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision>;

    /// Replaces `key`'s value if its current `mod_revision` is `expected` (compare-and-swap);
    /// returns the new revision. [`StoreError::NotFound`] if absent.
    async fn update(&self, key: &str, expected: Revision, value: Bytes) -> Result<Revision>;

    /// Deletes `key` if its current `mod_revision` is `expected` (or unconditionally with
    /// `None`); returns the deleted value with `mod_revision` set to the deletion's revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// The value of `key` at a revision, and the revision read at.
    async fn get(&self, key: &str, at: ReadAt) -> Result<(Option<KeyValue>, Revision)>;

    /// Keys under a prefix in key order.
    async fn list(&self, opts: ListOptions) -> Result<ListResult>;

    /// Counts the keys under a prefix at the newest revision.
    async fn count(&self, prefix: &str) -> Result<usize>;

    /// Every event under `prefix` with revision > `after`, then new ones as they happen.
    /// [`StoreError::Compacted`] if `after` is below the compaction point.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch>;

    /// The newest revision.
    fn current_revision(&self) -> Revision;

    /// The compaction point: reads and watches below it fail.
    fn compacted_revision(&self) -> Revision;

    /// Drops history older than `revision` (the newest value of each live key stays).
    async fn compact(&self, revision: Revision) -> Result<()>;
}

/// A shared store handle.
pub type DynStore = Arc<dyn Store>;

pub use async_trait::async_trait;
