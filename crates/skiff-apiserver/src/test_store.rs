//! A store for tests: it forwards to another and can fail creates as if the name were taken,
//! or commit a write and hold its answer back.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use skiff_store::{
    DynStore, KeyValue, ListOptions, ListResult, ReadAt, Revision, Store, StoreError, Watch,
};
use tokio::sync::Notify;

pub(crate) struct Hooked {
    inner: DynStore,
    /// Creates of keys under this prefix fail as if the name were taken, `collisions` times.
    collide_under: &'static str,
    pub collisions: AtomicUsize,
    /// While set, the next create or update submitted is committed (readers and watchers see it) but
    /// not answered until `release` is notified: as when the writing task has not run again.
    pub hold: AtomicBool,
    pub release: Notify,
}

impl Hooked {
    pub fn new(inner: DynStore) -> Hooked {
        Hooked {
            inner,
            collide_under: "",
            collisions: AtomicUsize::new(0),
            hold: AtomicBool::new(false),
            release: Notify::new(),
        }
    }

    /// The first `n` creates of keys under `prefix` fail with AlreadyExists.
    pub fn colliding(inner: DynStore, prefix: &'static str, n: usize) -> Hooked {
        let mut h = Hooked::new(inner);
        h.collide_under = prefix;
        h.collisions = AtomicUsize::new(n);
        h
    }

    /// Runs `write`, and holds its answer if it is the first write submitted since `hold`
    /// was set. The hold is taken when the write is submitted, not when it is answered: the
    /// write's commit is visible before its task runs again, and a later write submitted in
    /// that gap must not take the hold meant for this one (it did, and the test waiting for
    /// that later write never released it).
    async fn held<T>(
        &self,
        write: impl std::future::Future<Output = skiff_store::Result<T>>,
    ) -> skiff_store::Result<T> {
        let held = self.hold.swap(false, Ordering::SeqCst);
        let r = write.await;
        if held {
            self.release.notified().await;
        }
        r
    }
}

#[async_trait::async_trait]
impl Store for Hooked {
    async fn create(&self, key: &str, value: Bytes) -> skiff_store::Result<Revision> {
        if key.starts_with(self.collide_under)
            && self
                .collisions
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(StoreError::AlreadyExists(key.to_string()));
        }
        self.held(self.inner.create(key, value)).await
    }
    async fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
    ) -> skiff_store::Result<Revision> {
        self.held(self.inner.update(key, expected, value)).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> skiff_store::Result<KeyValue> {
        self.inner.delete(key, expected).await
    }
    async fn get(
        &self,
        key: &str,
        at: ReadAt,
    ) -> skiff_store::Result<(Option<KeyValue>, Revision)> {
        self.inner.get(key, at).await
    }
    async fn list(&self, opts: ListOptions) -> skiff_store::Result<ListResult> {
        self.inner.list(opts).await
    }
    async fn count(&self, prefix: &str) -> skiff_store::Result<usize> {
        self.inner.count(prefix).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> skiff_store::Result<Watch> {
        self.inner.watch(prefix, after).await
    }
    fn current_revision(&self) -> Revision {
        self.inner.current_revision()
    }
    fn compacted_revision(&self) -> Revision {
        self.inner.compacted_revision()
    }
    async fn compact(&self, revision: Revision) -> skiff_store::Result<()> {
        self.inner.compact(revision).await
    }
}
