//! The SQLite backend: a revision log with group commit, an in-memory index and watch window.
//!
//! Follows the etcd MVCC model the Kubernetes API server expects (global revisions, reads at a
//! revision, watch from a revision, compaction), built on one SQLite file in WAL mode with
//! `synchronous=FULL`:
//! - writes go through one writer thread that commits everything queued as one transaction
//!   (group commit, see `writer`), so an acknowledged write is on disk;
//! - reads at the newest revision are served from an in-memory index of live keys; reads at an
//!   older revision find each key's revision there in an in-memory history of every key's
//!   revisions and read those rows by revision on a pool of read connections;
//! - watches follow a window of recent events in memory and read the log when behind it
//!   (see `watcher`);
//! - compaction runs in small steps that never hold the write lock for long, and WAL
//!   checkpoints run in the background and keep the WAL bounded without stalling writers
//!   (see `checkpoint`).

mod checkpoint;
mod log;
pub mod priority;
mod watcher;
mod writer;

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};

use self::log::{backend, Role};
use self::writer::{Op, Reply, Request};
use crate::{
    Event, KeyValue, ListOptions, ListResult, ReadAt, Result, Revision, Store, StoreError, Watch,
};

/// Tuning for [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Largest accepted value in bytes; bigger ones get [`StoreError::TooLarge`].
    pub max_value_size: usize,
    /// How many recent events the in-memory watch window keeps at most.
    pub watch_window: usize,
    /// How many bytes of keys and values (new and previous) the window's events may hold;
    /// the oldest go first, the newest stays whatever its size. The window serves watchers that keep up
    /// (a watcher behind it reads the log), and without this bound it would hold the last
    /// `watch_window` versions whatever their size: 16,384 pod writes of 2-3 KB with their
    /// previous values kept ~60 MB alive in a 5,000-pod burst, and as many 1 MB ConfigMaps
    /// would keep gigabytes.
    pub watch_window_bytes: usize,
    /// Capacity (in batches) of each watcher's channel.
    pub watch_channel_capacity: usize,
    /// Most events in one watch batch (and one log read for a catching-up watcher).
    pub watch_batch_limit: usize,
    /// Most write requests committed in one transaction.
    pub max_batch: usize,
    /// Group commit delay, as PostgreSQL's `commit_delay`: when the previous transaction
    /// carried more than one write (writers are concurrent), the writer waits up to this long
    /// for more writes to join the next one, so that one sync serves more of them. A lone
    /// writer never waits.
    pub commit_delay: Duration,
    /// Revisions examined per compaction transaction.
    pub compact_step: i64,
    /// Background compaction; `None` compacts only on request.
    pub auto_compact: Option<AutoCompact>,
    /// How often a passive WAL checkpoint runs (it also runs every 64 commits).
    pub checkpoint_interval: Duration,
    /// When the WAL holds more than this many bytes, checkpoints run back to back and the
    /// writer, between batches, finishes one so that the WAL starts over instead of growing
    /// (see `checkpoint`). `None`: the WAL only starts over when writes pause.
    pub wal_restart_bytes: Option<u64>,
    /// Page size of a new database (existing databases keep theirs). 16 KiB: a stored pod
    /// (2.5-3 KB) takes most of a 4 KiB page, and larger pages mean fewer WAL frames, so
    /// fewer writes per commit; measured in docs/datastore.md.
    pub page_size: u32,
    /// Idle read connections kept open.
    pub read_connections: usize,
    /// Nice value for the writer thread, if the process may raise priority (root or
    /// `CAP_SYS_NICE`; otherwise it keeps the default). Every write waits on the writer's
    /// short bursts of CPU (appending, committing, answering), and at equal priority a writer
    /// woken by a request or by the end of a sync waits for a core behind the API's threads;
    /// measured in docs/datastore.md. `None` leaves the priority alone.
    pub writer_nice: Option<i32>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            max_value_size: 3 * 1024 * 1024 + 256 * 1024,
            watch_window: 16_384,
            watch_window_bytes: 16 * 1024 * 1024,
            watch_channel_capacity: 256,
            watch_batch_limit: 1024,
            max_batch: 256,
            commit_delay: Duration::from_micros(300),
            compact_step: 500,
            auto_compact: None,
            checkpoint_interval: Duration::from_secs(1),
            wal_restart_bytes: Some(16 * 1024 * 1024),
            page_size: 16 * 1024,
            read_connections: 4,
            writer_nice: Some(-10),
        }
    }
}

/// Background compaction: every `interval`, compact to the revision that was current one
/// interval ago, but keep at least the last `keep_revisions` revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoCompact {
    pub interval: Duration,
    pub keep_revisions: i64,
}

impl Default for AutoCompact {
    fn default() -> Self {
        AutoCompact {
            interval: Duration::from_secs(300),
            keep_revisions: 10_000,
        }
    }
}

/// Counters since open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Write transactions committed (each is one fsync of the WAL).
    pub commits: u64,
    /// Revisions written.
    pub writes: u64,
    /// Most revisions written by one commit.
    pub largest_batch: u64,
    /// Log rows removed by compaction.
    pub compacted_rows: u64,
    /// Log reads made by watchers that were behind the in-memory window.
    pub watch_log_reads: u64,
    /// Passive WAL checkpoints run by the checkpoint thread.
    pub checkpoints: u64,
    /// Times the WAL was seen to have started over.
    pub wal_restarts: u64,
    /// Most frames (pages) the WAL held at any checkpoint.
    pub wal_max_frames: u64,
    /// Checkpoints the writer ran between batches to let the WAL start over, and the
    /// longest of them.
    pub writer_checkpoints: u64,
    pub writer_checkpoint_max: Duration,
}

#[derive(Default)]
pub(crate) struct Stats {
    commits: AtomicU64,
    writes: AtomicU64,
    largest_batch: AtomicU64,
    compacted_rows: AtomicU64,
    watch_log_reads: AtomicU64,
    checkpoints: AtomicU64,
}

/// The newest state: every live key and the revision it is at, and every revision of every
/// key the log still holds.
pub(crate) struct Live {
    index: BTreeMap<String, Entry>,
    history: History,
    current: Revision,
}

/// Each key's revisions in the log, oldest first, a tombstone's negated (revisions are
/// positive): what reads at an older revision look up instead of an SQLite index on the key.
/// Updated with the live index when a batch is published, and as compaction removes rows.
pub(crate) type History = BTreeMap<String, Vec<Revision>>;

/// The entry of `revs` (a key's [`History`]) in effect at revision `rev`: the newest at or
/// below it, negative for a tombstone; `None` if the key had none yet.
pub(crate) fn revision_at(revs: &[Revision], rev: Revision) -> Option<Revision> {
    let n = revs.partition_point(|r| r.abs() <= rev);
    n.checked_sub(1).map(|i| revs[i])
}

/// A live key's newest value; the key itself is the index's (not kept twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    value: Bytes,
    create_revision: Revision,
    mod_revision: Revision,
}

impl Entry {
    pub(crate) fn of(kv: &KeyValue) -> Entry {
        Entry {
            value: kv.value.clone(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
        }
    }

    pub(crate) fn to_kv(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

/// Recent events; `events[i]` has revision `first + i`. At most `cap` events holding at most
/// `max_bytes` (counted by [`event_bytes`]), but never fewer than the newest.
pub(crate) struct Window {
    first: Revision,
    events: VecDeque<Arc<Event>>,
    cap: usize,
    /// What the events hold, by [`event_bytes`].
    bytes: usize,
    max_bytes: usize,
}

/// The bytes an event keeps alive, for the window's bound: its key and value, and its
/// previous value (shared with the event before it, when that is still in the window, or
/// with nothing: counted whole either way).
fn event_bytes(ev: &Event) -> usize {
    ev.kv.key.len() + ev.kv.value.len() + ev.prev.as_ref().map_or(0, |p| p.value.len())
}

impl Window {
    fn new(first: Revision, cap: usize, max_bytes: usize) -> Window {
        Window {
            first,
            events: VecDeque::new(),
            cap: cap.max(1),
            bytes: 0,
            max_bytes,
        }
    }

    /// Appends the events of a committed batch (the revisions after the newest; `next` is the
    /// one after the batch's last) and drops the oldest beyond the bounds, keeping the newest.
    pub(crate) fn extend(&mut self, batch: &[Arc<Event>], next: Revision) {
        for ev in batch {
            self.bytes += event_bytes(ev);
            self.events.push_back(ev.clone());
        }
        while self.events.len() > self.cap || (self.bytes > self.max_bytes && self.events.len() > 1)
        {
            let Some(ev) = self.events.pop_front() else {
                break;
            };
            self.bytes -= event_bytes(&ev);
        }
        self.first = self.events.front().map_or(next, |e| e.revision());
    }
}

/// State shared by the store handle, the writer thread and watcher tasks.
pub(crate) struct Shared {
    path: PathBuf,
    opts: SqliteOptions,
    live: RwLock<Live>,
    window: RwLock<Window>,
    compacted: AtomicI64,
    notify: watch::Sender<Revision>,
    readers: Mutex<Vec<Connection>>,
    closed: AtomicBool,
    stats: Stats,
    wal: checkpoint::WalState,
    doorbell: writer::Doorbell,
}

impl Shared {
    /// Runs `f` on a pooled read connection (blocking: call from `spawn_blocking`).
    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().pop();
        let conn = match pooled {
            Some(c) => c,
            None => log::open_connection(&self.path, Role::Reader)
                .map_err(|e| backend("opening a read connection", e))?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock();
        if pool.len() < self.opts.read_connections {
            pool.push(conn);
        }
        out
    }
}

/// The SQLite-backed [`Store`]. Dropping the last handle finishes queued writes, stops the
/// background threads and ends every watch.
pub struct SqliteStore {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    /// Dropped on close: stops the compactor thread.
    _stop: std::sync::mpsc::Sender<()>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, rebuilds the index from it and starts the
    /// writer, checkpoint and (if configured) compaction threads.
    pub fn open(path: &Path, opts: SqliteOptions) -> Result<Arc<SqliteStore>> {
        let conn = log::open_writer(path, opts.page_size)
            .map_err(|e| backend(&format!("opening {}", path.display()), e))?;
        let loaded = log::load(&conn).map_err(|e| backend("loading the log", e))?;
        let (notify, _) = watch::channel(loaded.current);
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            live: RwLock::new(Live {
                index: loaded.index,
                history: loaded.history,
                current: loaded.current,
            }),
            window: RwLock::new(Window::new(
                loaded.current + 1,
                opts.watch_window,
                opts.watch_window_bytes,
            )),
            compacted: AtomicI64::new(loaded.compacted),
            notify,
            readers: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            stats: Stats::default(),
            wal: checkpoint::WalState::default(),
            doorbell: writer::Doorbell::default(),
            opts,
        });

        let checkpoint_conn = log::open_connection(path, Role::Checkpointer)
            .map_err(|e| backend("opening the checkpoint connection", e))?;
        let (nudge_tx, nudge_rx) = std::sync::mpsc::sync_channel(1);
        let ck_shared = shared.clone();
        std::thread::Builder::new()
            .name("skiff-store-checkpoint".into())
            .spawn(move || checkpoint::run(checkpoint_conn, nudge_rx, ck_shared))
            .map_err(|e| StoreError::Backend(format!("starting the checkpoint thread: {e}")))?;

        let (tx, rx) = mpsc::channel(shared.opts.max_batch.max(1) * 4);
        let w = writer::Writer::new(
            conn,
            shared.clone(),
            loaded.current,
            loaded.compacted,
            loaded.compact_done,
            nudge_tx,
        );
        let handle = std::thread::Builder::new()
            .name("skiff-store-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| StoreError::Backend(format!("starting the writer thread: {e}")))?;

        let (stop_tx, stop_rx) = std::sync::mpsc::channel();
        let auto = shared.opts.auto_compact;
        let store = Arc::new(SqliteStore {
            shared,
            tx: Some(tx),
            writer: Some(handle),
            _stop: stop_tx,
        });
        if let Some(auto) = auto {
            let weak = Arc::downgrade(&store);
            std::thread::Builder::new()
                .name("skiff-store-compact".into())
                .spawn(move || compactor(weak, auto, stop_rx))
                .map_err(|e| StoreError::Backend(format!("starting the compaction thread: {e}")))?;
        }
        Ok(store)
    }

    /// Counters since open.
    pub fn stats(&self) -> StoreStats {
        let s = &self.shared.stats;
        StoreStats {
            commits: s.commits.load(Ordering::Relaxed),
            writes: s.writes.load(Ordering::Relaxed),
            largest_batch: s.largest_batch.load(Ordering::Relaxed),
            compacted_rows: s.compacted_rows.load(Ordering::Relaxed),
            watch_log_reads: s.watch_log_reads.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
            wal_restarts: self.shared.wal.restarts.load(Ordering::Relaxed),
            wal_max_frames: self.shared.wal.max_frames.load(Ordering::Relaxed),
            writer_checkpoints: self.shared.wal.writer_checkpoints.load(Ordering::Relaxed),
            writer_checkpoint_max: Duration::from_nanos(
                self.shared
                    .wal
                    .writer_checkpoint_max_ns
                    .load(Ordering::Relaxed),
            ),
        }
    }

    /// The number of rows in the revision log (reads the database).
    pub async fn log_rows(&self) -> Result<i64> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            shared.with_reader(|c| log::row_count(c).map_err(|e| backend("counting the log", e)))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    fn sender(&self) -> Result<&mpsc::Sender<Request>> {
        self.tx.as_ref().ok_or(StoreError::Closed)
    }

    /// Wakes the writer if it waits for as many queued requests as `tx` now holds.
    fn rang(&self, tx: &mpsc::Sender<Request>) {
        self.shared
            .doorbell
            .ring(|| tx.max_capacity() - tx.capacity());
    }

    async fn submit(&self, op: Op) -> Result<Reply> {
        let (reply, rx) = oneshot::channel();
        let tx = self.sender()?;
        tx.send(Request { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        self.rang(tx);
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Self::submit`] for threads outside the runtime.
    fn submit_blocking(&self, op: Op) -> Result<Reply> {
        let (reply, rx) = oneshot::channel();
        let tx = self.sender()?;
        tx.blocking_send(Request { op, reply })
            .map_err(|_| StoreError::Closed)?;
        self.rang(tx);
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    fn check_size(&self, key: &str, value: &Bytes) -> Result<()> {
        let limit = self.shared.opts.max_value_size;
        if value.len() > limit {
            return Err(StoreError::TooLarge {
                key: key.to_owned(),
                size: value.len(),
                limit,
            });
        }
        Ok(())
    }

    /// Fails unless `rev` is readable: not compacted, not in the future.
    fn check_readable(&self, rev: Revision) -> Result<()> {
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        if rev < compacted {
            return Err(StoreError::Compacted {
                requested: rev,
                compacted,
            });
        }
        let current = self.shared.live.read().current;
        if rev > current {
            return Err(StoreError::FutureRevision {
                requested: rev,
                current,
            });
        }
        Ok(())
    }

    /// Runs a read of the log at `rev` on a read connection.
    async fn read_at<T: Send + 'static>(
        &self,
        rev: Revision,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_readable(rev)?;
        let shared = self.shared.clone();
        let out = tokio::task::spawn_blocking(move || {
            shared.with_reader(|c| f(c).map_err(|e| backend("reading the log", e)))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))??;
        // A compaction that started during the read may have removed rows it needed.
        self.check_readable(rev)?;
        Ok(out)
    }

    fn compact_target(&self, revision: Revision) -> Result<Option<Op>> {
        let current = self.current_revision();
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        Ok((revision > self.compacted_revision()).then_some(Op::SetCompactPoint(revision)))
    }

    /// [`Store::compact`] for threads outside the runtime.
    fn compact_blocking(&self, revision: Revision) -> Result<()> {
        if let Some(op) = self.compact_target(revision)? {
            self.submit_blocking(op)?;
        }
        while let Reply::Stepped(false) = self.submit_blocking(Op::CompactStep)? {}
        Ok(())
    }
}

/// A row the history names but the log lacks, although its revision is still readable.
fn missing_row(rev: Revision) -> StoreError {
    StoreError::Backend(format!(
        "sqlite: the row of revision {rev} is missing from the log"
    ))
}

/// Newest-state list: keys under the prefix after `start_after`, up to `limit`.
fn list_live(live: &Live, opts: &ListOptions) -> (Vec<KeyValue>, bool) {
    let lower = match &opts.start_after {
        Some(s) if s.as_str() >= opts.prefix.as_str() => Bound::Excluded(s.clone()),
        _ => Bound::Included(opts.prefix.clone()),
    };
    let mut items = Vec::new();
    let mut more = false;
    for (key, kv) in live.index.range((lower, Bound::Unbounded)) {
        if !key.starts_with(&opts.prefix) {
            break;
        }
        if opts.limit > 0 && items.len() == opts.limit {
            more = true;
            break;
        }
        items.push(kv.to_kv(key));
    }
    (items, more)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        self.check_size(key, &value)?;
        match self
            .submit(Op::Create {
                key: key.to_owned(),
                value,
            })
            .await?
        {
            Reply::Revision(r) => Ok(r),
            _ => Err(StoreError::Backend(
                "writer answered create with the wrong reply".into(),
            )),
        }
    }

    async fn update(&self, key: &str, expected: Revision, value: Bytes) -> Result<Revision> {
        self.check_size(key, &value)?;
        match self
            .submit(Op::Update {
                key: key.to_owned(),
                expected,
                value,
            })
            .await?
        {
            Reply::Revision(r) => Ok(r),
            _ => Err(StoreError::Backend(
                "writer answered update with the wrong reply".into(),
            )),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        match self
            .submit(Op::Delete {
                key: key.to_owned(),
                expected,
            })
            .await?
        {
            Reply::Deleted(kv) => Ok(kv),
            _ => Err(StoreError::Backend(
                "writer answered delete with the wrong reply".into(),
            )),
        }
    }

    async fn get(&self, key: &str, at: ReadAt) -> Result<(Option<KeyValue>, Revision)> {
        let (rev, mod_rev) = {
            let live = self.shared.live.read();
            match at {
                ReadAt::Exact(rev) if rev != live.current => {
                    (rev, live.history.get(key).and_then(|r| revision_at(r, rev)))
                }
                _ => return Ok((live.index.get(key).map(|e| e.to_kv(key)), live.current)),
            }
        };
        // The history read is good for `rev` only if `rev` was readable when it was read: a
        // compaction takes rows out of it only after its compaction point is published.
        self.check_readable(rev)?;
        let Some(mod_rev) = mod_rev.filter(|r| *r > 0) else {
            return Ok((None, rev));
        };
        let key = key.to_owned();
        let kv = self
            .read_at(rev, move |c| log::get_at(c, &key, mod_rev))
            .await?;
        Ok((Some(kv.ok_or_else(|| missing_row(mod_rev))?), rev))
    }

    async fn list(&self, opts: ListOptions) -> Result<ListResult> {
        let (rev, keys, more) = {
            let live = self.shared.live.read();
            match opts.at {
                ReadAt::Exact(rev) if rev != live.current => {
                    let (keys, more) = log::list_at(
                        &live.history,
                        &opts.prefix,
                        opts.start_after.as_deref(),
                        opts.limit,
                        rev,
                    );
                    (rev, keys, more)
                }
                _ => {
                    let (items, more) = list_live(&live, &opts);
                    return Ok(ListResult {
                        items,
                        revision: live.current,
                        more,
                    });
                }
            }
        };
        self.check_readable(rev)?;
        let items = self.read_at(rev, move |c| log::rows_at(c, keys)).await?;
        Ok(ListResult {
            items: items.map_err(missing_row)?,
            revision: rev,
            more,
        })
    }

    async fn count(&self, prefix: &str) -> Result<usize> {
        let live = self.shared.live.read();
        Ok(live
            .index
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count())
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch> {
        if self.tx.is_none() {
            return Err(StoreError::Closed);
        }
        let compacted = self.compacted_revision();
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let (tx, rx) = mpsc::channel(self.shared.opts.watch_channel_capacity.max(1));
        let w = watcher::Watcher::new(self.shared.clone(), prefix.to_owned(), after, tx);
        tokio::spawn(w.run());
        Ok(Watch::from_channel(rx))
    }

    fn current_revision(&self) -> Revision {
        self.shared.live.read().current
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::SeqCst)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if let Some(op) = self.compact_target(revision)? {
            self.submit(op).await?;
        }
        // Finish the physical removal (also any left over from before a restart).
        while let Reply::Stepped(false) = self.submit(Op::CompactStep).await? {
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.notify.send_modify(|_| {});
        // Closing the queue lets the writer finish what is queued and exit.
        self.tx = None;
        if let Some(handle) = self.writer.take() {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

/// Compacts in the background; see [`AutoCompact`].
fn compactor(store: Weak<SqliteStore>, auto: AutoCompact, stop: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut previous = store.upgrade().map_or(0, |s| s.current_revision());
    loop {
        match stop.recv_timeout(auto.interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(store) = store.upgrade() else { return };
        let current = store.current_revision();
        let target = previous.min(current - auto.keep_revisions);
        previous = current;
        if target > store.compacted_revision() {
            if let Err(e) = store.compact_blocking(target) {
                tracing::warn!(error = %e, revision = target, "sqlite: background compaction failed");
            }
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use crate::conformance::next_events;

    /// The window keeps no more than its bytes (but the newest event, however large);
    /// watchers behind it read the log and get what one that kept up got, previous values
    /// included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_window_holds_at_most_its_bytes_and_watchers_behind_it_read_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions {
            watch_window_bytes: 10_000,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(&dir.path().join("w.db"), opts).unwrap();
        let mut live = store.watch("/w/", 0).await.unwrap();
        let value = |i: usize, n: usize| Bytes::from(vec![b'a' + (i % 26) as u8; n]);
        let mut rev = 0;
        for i in 0..40 {
            let key = format!("/w/{}", i % 5);
            rev = match i < 5 {
                true => store.create(&key, value(i, 1000)).await.unwrap(),
                false => store.update(&key, rev - 4, value(i, 1000)).await.unwrap(),
            };
            let w = store.shared.window.read();
            assert!(w.bytes <= 10_000, "{} bytes kept", w.bytes);
            assert_eq!(w.bytes, w.events.iter().map(|e| event_bytes(e)).sum());
            assert_eq!(w.first + w.events.len() as i64, rev + 1);
        }
        // An update carries its previous value: 2,004 bytes an event, four fit.
        assert_eq!(store.shared.window.read().events.len(), 4);
        // One event over the bound alone stays, as the newest.
        let big = store.update("/w/4", rev, value(0, 50_000)).await.unwrap();
        {
            let w = store.shared.window.read();
            assert_eq!((w.events.len(), w.first), (1, big));
        }

        let kept_up = next_events(&mut live, 41).await;
        let reads = store.stats().watch_log_reads;
        let mut behind = store.watch("/w/", 0).await.unwrap();
        let replayed = next_events(&mut behind, 41).await;
        assert_eq!(replayed, kept_up);
        assert!(store.stats().watch_log_reads > reads);
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[test]
    fn revision_at_finds_the_newest_entry_at_or_below() {
        let revs = [2, 5, -7, 9];
        assert_eq!(revision_at(&revs, 1), None);
        assert_eq!(revision_at(&revs, 2), Some(2));
        assert_eq!(revision_at(&revs, 6), Some(5));
        assert_eq!(revision_at(&revs, 7), Some(-7));
        assert_eq!(revision_at(&revs, 8), Some(-7));
        assert_eq!(revision_at(&revs, 100), Some(9));
    }

    /// The history holds what the log holds: every revision written, and after compaction
    /// only each key's newest at or below the point (a key deleted below it, nothing), so it
    /// does not grow with the writes a compacted store has seen; reopening rebuilds the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_history_follows_writes_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let history = |s: &SqliteStore| s.shared.live.read().history.clone();
        let v = || Bytes::from_static(b"v");
        let compacted_history;
        {
            let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
            let mut rev = store.create("/h/a", v()).await.unwrap();
            for _ in 0..5 {
                rev = store.update("/h/a", rev, v()).await.unwrap();
            }
            let b = store.create("/h/b", v()).await.unwrap();
            let gone = store.delete("/h/b", Some(b)).await.unwrap();
            let c = store.create("/h/c", v()).await.unwrap();
            let h = history(&store);
            assert_eq!(h["/h/a"], vec![1, 2, 3, 4, 5, 6]);
            assert_eq!(h["/h/b"], vec![b, -(b + 1)]);
            assert_eq!(gone.mod_revision, b + 1, "the deletion's revision");
            assert_eq!(h["/h/c"], vec![c]);
            store.compact(c).await.unwrap();
            compacted_history = history(&store);
            assert_eq!(compacted_history.get("/h/a"), Some(&vec![6]));
            assert_eq!(compacted_history.get("/h/b"), None);
            assert_eq!(compacted_history.get("/h/c"), Some(&vec![c]));
            assert_eq!(store.log_rows().await.unwrap(), 2);
        }
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(history(&store), compacted_history);
        let (a, _) = store.get("/h/a", ReadAt::Latest).await.unwrap();
        assert_eq!(a.unwrap().mod_revision, 6);
    }
}
