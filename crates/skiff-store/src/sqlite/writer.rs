//! The writer thread: group commit over the one write connection.
//!
//! Requests queue on a channel. The writer takes everything queued (up to a cap) into one
//! transaction in three steps:
//! 1. **Plan in memory.** Each request is checked (exists, compare-and-swap) against the
//!    in-memory index plus the batch's own earlier changes, and a request that passes gets the
//!    next revision, in queue order and with no gaps. A request that fails here (a logical
//!    failure: already exists, not found, conflict) takes no revision and writes nothing, so it
//!    fails alone without any SQL, let alone a savepoint.
//! 2. **Write.** The planned rows are appended with one prepared statement. A row that passed
//!    the plan cannot fail for a logical reason (`rev` is new, no other constraint), so an SQL
//!    error here is the database failing (I/O, disk full): the whole transaction is rolled back
//!    and every request of the batch that would have written gets the error. Nothing is
//!    half-written and the revision counter goes back to where it was.
//! 3. **Commit** once (one fsync for the batch), then publish the batch to the in-memory index
//!    and watch window, and only then answer callers.
//!
//! Only the log rows are written per batch: the current revision is the newest row's (see
//! `log::load`), so no counter row is updated on every commit.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::log::{self, backend};
use super::{Entry, Live, Shared};
use crate::{Event, EventKind, KeyValue, Revision, StoreError};

/// One write request.
pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        expected: Revision,
        value: Bytes,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    /// Persists a new compaction point.
    SetCompactPoint(Revision),
    /// Removes one step of superseded rows below the compaction point.
    CompactStep,
    /// Runs SQL on the write connection inside the batch's transaction (tests inject faults).
    #[cfg(test)]
    Sql(String),
}

pub(crate) enum Reply {
    Revision(Revision),
    Deleted(KeyValue),
    Done,
    /// A compaction step ran; `true` when nothing is left below the compaction point.
    Stepped(bool),
}

pub(crate) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Reply, StoreError>>,
}

/// The writer's own view of counters, restored if a batch fails.
#[derive(Clone, Copy)]
struct Counters {
    rev: Revision,
    compact_point: Revision,
    compact_done: Revision,
}

/// A multiply-rotate hash of the batch's keys (at most `max_batch` of them: no flooding
/// concern, and SipHash showed up in profiles).
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
}

/// The hash of `key` that the overlay is indexed by.
fn key_hash(key: &str) -> u64 {
    let mut h = FastHasher::default();
    h.write(key.as_bytes());
    let h = h.finish();
    h ^ (h >> 32)
}

/// Passes a [`key_hash`] through.
#[derive(Default)]
struct KeyHashHasher(u64);

impl Hasher for KeyHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed; anything else still gets a hash.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn write_u64(&mut self, h: u64) {
        self.0 = h;
    }
}

/// Keys written earlier in the batch, by [`key_hash`]: the index in `events` of the newest
/// event of a key with that hash. Keyed by hash so that no key is copied for it; a lookup
/// checks the event's key, and on the (rare) collision looks through the batch's events.
type Overlay = HashMap<u64, usize, BuildHasherDefault<KeyHashHasher>>;

/// What the plan decided for one request.
enum Planned {
    /// Writes `events[i]`.
    Write(usize),
    /// Failed validation; nothing to write.
    Failed(StoreError),
    SetCompactPoint(Revision),
    /// Remove superseded rows with `lo <= rev < hi` (`n` rows, once written).
    CompactStep {
        lo: Revision,
        hi: Revision,
        point: Revision,
        n: usize,
    },
    /// Nothing left to compact.
    CompactDone,
    #[cfg(test)]
    Sql(String),
}

/// The state of the batch being gathered.
struct Batch {
    /// The counters before it, restored if it fails.
    before: Counters,
    /// Its transaction has begun.
    open: bool,
    /// The SQL error that fails it.
    error: Option<rusqlite::Error>,
}

impl Batch {
    fn new(before: Counters) -> Self {
        Batch {
            before,
            open: false,
            error: None,
        }
    }
}

pub(crate) struct Writer {
    conn: Connection,
    state: State,
}

/// The writer's state apart from its connection (which the prepared statements borrow).
struct State {
    shared: Arc<Shared>,
    counters: Counters,
    checkpoint: std::sync::mpsc::SyncSender<()>,
    /// Bytes of values written since the checkpoint thread was last nudged.
    unnudged_bytes: u64,
    // Per-batch buffers, kept to reuse their allocations.
    planned: Vec<Planned>,
    events: Vec<Arc<Event>>,
    /// Keys written earlier in this batch (see [`Overlay`]).
    overlay: Overlay,
    /// Rows this batch's compaction steps removed, taken out of the history once committed.
    compacted: Vec<(String, Revision)>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        shared: Arc<Shared>,
        rev: Revision,
        compact_point: Revision,
        compact_done: Revision,
        checkpoint: std::sync::mpsc::SyncSender<()>,
    ) -> Self {
        let cap = shared.opts.max_batch.max(1);
        let state = State {
            shared,
            counters: Counters {
                rev,
                compact_point,
                compact_done,
            },
            checkpoint,
            unnudged_bytes: 0,
            planned: Vec::with_capacity(cap),
            events: Vec::with_capacity(cap),
            overlay: Overlay::with_capacity_and_hasher(cap, Default::default()),
            compacted: Vec::new(),
        };
        Writer { conn, state }
    }

    /// Runs until every sender is gone.
    pub(crate) fn run(self, mut rx: mpsc::Receiver<Request>) {
        let Writer { conn, state: mut w } = self;
        w.shared.doorbell.serve(std::thread::current());
        if let Some(nice) = w.shared.opts.writer_nice {
            super::priority::set_own_nice(nice, "store writer");
        }
        // Prepared once and kept: a statement cache round trip per part of a batch would
        // cost more than a row.
        let mut sql = Statements::new(&conn);
        let cap = w.shared.opts.max_batch.max(1);
        let delay = w.shared.opts.commit_delay;
        let mut batch = Vec::with_capacity(cap);
        let mut last_len = 0usize;
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            let deadline = std::time::Instant::now() + delay;
            let mut batch_state = Batch::new(w.counters);
            // The batch that ends the wait below: twice the last one, at most `cap`.
            let target = (last_len.max(2) * 2).min(cap);
            loop {
                while batch.len() < cap {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                // Plan and append what has arrived right away, inside the open transaction,
                // so that the wait below overlaps the batch's own work instead of preceding
                // it: when the wait ends only the commit is left.
                w.advance(&mut sql, &mut batch, &mut batch_state);
                if batch_state.error.is_some() {
                    break;
                }
                // Concurrent writers: give the next ones a moment to join this commit, until
                // the batch is twice the last one or the delay is up. Clients that each wait
                // for their answer rarely double a batch, so under load the writer mostly
                // waits the whole delay: fewer, larger commits (each costs a WAL write and an
                // fsync, far more than a row) for at most `commit_delay` more latency.
                if last_len < 2 || batch.len() >= target {
                    break;
                }
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                // Asleep until the requests that double the batch are queued (the last
                // sender rings) or the delay is up: one wake-up per commit at most.
                w.shared
                    .doorbell
                    .wait(target - batch.len(), deadline - now, || rx.len());
            }
            last_len = batch.len();
            w.finish(&mut sql, &mut batch, batch_state);
            if let (Some(limit), true) = (w.shared.opts.wal_restart_bytes, rx.is_empty()) {
                // At most a quarter of the limit (or 1 MiB) left to copy (see `checkpoint`).
                let max_left = (limit / 4).max(1024 * 1024);
                super::checkpoint::finish_for_restart(&conn, &w.shared.wal, max_left);
            }
        }
    }
}

/// How a sender wakes the writer while it waits for its batch to fill. The writer says how
/// many queued requests end its wait and parks; the sender whose request makes the queue that
/// long unparks it. Polling the queue instead cost a context switch per poll, several per
/// commit, where this costs one at most. A ring that is missed (or never comes) costs no
/// more than the wait's timeout, the commit delay: the bell only ends waits early.
#[derive(Default)]
pub(crate) struct Doorbell {
    /// How many queued requests end the writer's wait; 0 while it is not waiting.
    want: AtomicUsize,
    writer: OnceLock<std::thread::Thread>,
}

impl Doorbell {
    /// Called by the writer thread once, before it first waits.
    fn serve(&self, writer: std::thread::Thread) {
        let _ = self.writer.set(writer);
    }

    /// The writer waits until `queued()` is at least `want` or `timeout` has passed (or
    /// sooner: the caller checks again).
    fn wait(&self, want: usize, timeout: Duration, queued: impl Fn() -> usize) {
        if want == 0 {
            return;
        }
        self.want.store(want, Ordering::SeqCst);
        // A request queued before the store above was not rung for: counted here.
        if queued() < want {
            std::thread::park_timeout(timeout);
        }
        self.want.store(0, Ordering::SeqCst);
    }

    /// Called by a sender after queueing a request, with the queue's length then.
    pub(crate) fn ring(&self, queued: impl FnOnce() -> usize) {
        let want = self.want.load(Ordering::SeqCst);
        if want != 0 && queued() >= want && self.want.swap(0, Ordering::SeqCst) != 0 {
            if let Some(t) = self.writer.get() {
                t.unpark();
            }
        }
    }
}

/// The statements the writer runs for every batch, prepared on first use and kept.
struct Statements<'c> {
    conn: &'c Connection,
    begin: Option<rusqlite::Statement<'c>>,
    append: Option<rusqlite::Statement<'c>>,
    commit: Option<rusqlite::Statement<'c>>,
}

impl<'c> Statements<'c> {
    fn new(conn: &'c Connection) -> Self {
        Statements {
            conn,
            begin: None,
            append: None,
            commit: None,
        }
    }

    fn run(
        conn: &'c Connection,
        slot: &mut Option<rusqlite::Statement<'c>>,
        text: &str,
        params: impl rusqlite::Params,
    ) -> rusqlite::Result<()> {
        let stmt = match slot {
            Some(s) => s,
            None => slot.insert(conn.prepare(text)?),
        };
        stmt.execute(params).map(|_| ())
    }

    fn begin(&mut self) -> rusqlite::Result<()> {
        Self::run(self.conn, &mut self.begin, "BEGIN IMMEDIATE", [])
    }

    fn commit(&mut self) -> rusqlite::Result<()> {
        Self::run(self.conn, &mut self.commit, "COMMIT", [])
    }

    /// Appends `ev`'s row to the log.
    fn append(&mut self, ev: &Event) -> rusqlite::Result<()> {
        let deleted = ev.kind == EventKind::Delete;
        let value: &[u8] = if deleted { &[] } else { &ev.kv.value };
        Self::run(
            self.conn,
            &mut self.append,
            log::APPEND,
            rusqlite::params![
                ev.kv.mod_revision,
                ev.kv.key,
                ev.kv.create_revision,
                ev.prev.as_ref().map(|p| p.mod_revision),
                value,
                deleted as i64,
            ],
        )
    }
}

impl State {
    /// Steps 1 and 2 for the requests of `batch` not yet planned: decides them against
    /// memory, then runs their SQL in the batch's transaction (begun with the first request
    /// that has any). After an SQL error nothing more is run: the batch will fail as a whole.
    fn advance(&mut self, sql: &mut Statements<'_>, batch: &mut [Request], state: &mut Batch) {
        let from = self.planned.len();
        if from == batch.len() {
            return;
        }
        self.plan(&mut batch[from..]);
        if state.error.is_some() {
            return;
        }
        let result = self.write(sql, from, &mut state.open);
        if let Err(e) = result {
            state.error = Some(e);
        }
    }

    /// Step 3: commits the batch (or rolls it back after an error), publishes it and answers
    /// every request of it.
    fn finish(&mut self, sql: &mut Statements<'_>, batch: &mut Vec<Request>, state: Batch) {
        let before = state.before;
        let written = match state.error {
            Some(e) => Err(e),
            None if state.open => sql.commit(),
            None => Ok(()),
        };
        if let Err(e) = written {
            // The transaction may already be gone (SQLite rolls back on some I/O errors).
            if !sql.conn.is_autocommit() {
                let _ = sql.conn.execute_batch("ROLLBACK");
            }
            self.counters = before;
            let err = backend("writing the batch", e);
            for (req, p) in batch.drain(..).zip(self.planned.drain(..)) {
                let result = match p {
                    Planned::Failed(e) => Err(e),
                    _ => Err(err.clone()),
                };
                let _ = req.reply.send(result);
            }
            self.events.clear();
            self.overlay.clear();
            self.compacted.clear();
            return;
        }
        let writes = self.events.len() as u64;
        if writes > 0 {
            let stats = &self.shared.stats;
            let commits = stats.commits.fetch_add(1, Ordering::Relaxed) + 1;
            stats.writes.fetch_add(writes, Ordering::Relaxed);
            stats.largest_batch.fetch_max(writes, Ordering::Relaxed);
            // Nudge the checkpoint thread every 64 commits, and whenever a quarter of the WAL
            // limit has been written, so that no checkpoint pass has much to copy.
            let bytes = self
                .events
                .iter()
                .map(|e| e.kv.value.len() as u64 + e.kv.key.len() as u64)
                .sum::<u64>();
            self.shared.wal.written.fetch_add(bytes, Ordering::Release);
            self.unnudged_bytes += bytes;
            let quarter = self
                .shared
                .opts
                .wal_restart_bytes
                .map_or(u64::MAX, |b| b / 4);
            if commits.is_multiple_of(64) || self.unnudged_bytes >= quarter {
                self.unnudged_bytes = 0;
                let _ = self.checkpoint.try_send(());
            }
        }
        self.publish(before);
        for (req, p) in batch.drain(..).zip(self.planned.drain(..)) {
            let result = match p {
                Planned::Write(i) => {
                    let ev = &self.events[i];
                    Ok(match ev.kind {
                        EventKind::Put => Reply::Revision(ev.kv.mod_revision),
                        EventKind::Delete => Reply::Deleted(ev.kv.clone()),
                    })
                }
                Planned::Failed(e) => Err(e),
                Planned::SetCompactPoint(_) => Ok(Reply::Done),
                Planned::CompactStep { hi, point, n, .. } => {
                    self.shared
                        .stats
                        .compacted_rows
                        .fetch_add(n as u64, Ordering::Relaxed);
                    Ok(Reply::Stepped(hi >= point))
                }
                Planned::CompactDone => Ok(Reply::Stepped(true)),
                #[cfg(test)]
                Planned::Sql(_) => Ok(Reply::Done),
            };
            let _ = req.reply.send(result);
        }
        self.events.clear();
    }

    /// Step 1: decides requests against memory, assigning revisions.
    fn plan(&mut self, requests: &mut [Request]) {
        let live = self.shared.live.read();
        for req in requests.iter_mut() {
            let p = plan_one(
                &mut req.op,
                &live,
                &mut self.overlay,
                &mut self.events,
                &mut self.counters,
                self.shared.opts.compact_step.max(1),
            );
            self.planned.push(p);
        }
    }

    /// Step 2: runs the SQL of the plan from `planned[from..]`, beginning the transaction
    /// first if `open` says it is not yet. Any error fails the whole batch.
    fn write(
        &mut self,
        sql: &mut Statements<'_>,
        from: usize,
        open: &mut bool,
    ) -> rusqlite::Result<()> {
        for p in self.planned[from..].iter_mut() {
            if matches!(p, Planned::Failed(_) | Planned::CompactDone) {
                continue;
            }
            if !*open {
                sql.begin()?;
                *open = true;
            }
            match p {
                Planned::Write(i) => sql.append(&self.events[*i])?,
                Planned::SetCompactPoint(point) => log::set_meta(sql.conn, "compact_rev", *point)?,
                Planned::CompactStep { lo, hi, point, n } => {
                    let live = self.shared.live.read();
                    let removed = log::compact_range(sql.conn, *lo, *hi, *point, &live.history)?;
                    drop(live);
                    *n = removed.len();
                    self.compacted.extend(removed);
                    log::set_meta(sql.conn, "compact_done", *hi)?;
                }
                #[cfg(test)]
                Planned::Sql(text) => sql.conn.execute_batch(text)?,
                Planned::Failed(_) | Planned::CompactDone => {}
            }
        }
        Ok(())
    }

    /// Makes a committed batch visible: window first (so a watch started from a revision read
    /// in the index finds its events), then the index and current revision, then wakes watchers.
    fn publish(&mut self, before: Counters) {
        let rev = self.counters.rev;
        if rev != before.rev {
            self.shared.window.write().extend(&self.events, rev + 1);
        }
        {
            self.overlay.clear();
            let mut guard = self.shared.live.write();
            let live = &mut *guard;
            // In revision order, so a key written twice in the batch ends at its newest value.
            for ev in &self.events {
                let key = ev.kv.key.as_str();
                let entry = match ev.kind {
                    EventKind::Put => ev.kv.mod_revision,
                    EventKind::Delete => -ev.kv.mod_revision,
                };
                match live.history.get_mut(key) {
                    Some(revs) => revs.push(entry),
                    None => {
                        live.history.insert(key.to_owned(), vec![entry]);
                    }
                }
                match ev.kind {
                    EventKind::Put => {
                        let entry = Entry::of(&ev.kv);
                        // An update finds its key; only a create copies the key.
                        let slot = match ev.prev {
                            Some(_) => live.index.get_mut(key),
                            None => None,
                        };
                        match slot {
                            Some(slot) => *slot = entry,
                            None => {
                                live.index.insert(key.to_owned(), entry);
                            }
                        }
                    }
                    EventKind::Delete => {
                        live.index.remove(key);
                    }
                }
            }
            for (key, rev) in self.compacted.drain(..) {
                let Some(revs) = live.history.get_mut(&key) else {
                    continue;
                };
                if let Ok(i) = revs.binary_search_by_key(&rev, |r| r.abs()) {
                    revs.remove(i);
                }
                if revs.is_empty() {
                    live.history.remove(&key);
                }
            }
            live.current = rev;
        }
        if self.counters.compact_point != before.compact_point {
            self.shared
                .compacted
                .fetch_max(self.counters.compact_point, Ordering::SeqCst);
        }
        if rev != before.rev {
            self.shared.notify.send_replace(rev);
        }
    }
}

/// A key's newest value as the plan sees it: written earlier in the batch, or in the index.
#[derive(Clone, Copy)]
enum Current<'a> {
    Batch(&'a KeyValue),
    Index(&'a str, &'a Entry),
}

impl Current<'_> {
    fn mod_revision(self) -> Revision {
        match self {
            Current::Batch(kv) => kv.mod_revision,
            Current::Index(_, e) => e.mod_revision,
        }
    }

    fn create_revision(self) -> Revision {
        match self {
            Current::Batch(kv) => kv.create_revision,
            Current::Index(_, e) => e.create_revision,
        }
    }

    fn to_kv(self) -> KeyValue {
        match self {
            Current::Batch(kv) => kv.clone(),
            Current::Index(key, e) => e.to_kv(key),
        }
    }
}

/// The newest value of `key` (whose [`key_hash`] is `hash`): this batch's own change, else
/// the index.
fn lookup<'a>(
    key: &str,
    hash: u64,
    live: &'a Live,
    overlay: &Overlay,
    events: &'a [Arc<Event>],
) -> Option<Current<'a>> {
    let newest = match overlay.get(&hash) {
        None => None,
        Some(&i) if events[i].kv.key == key => Some(&*events[i]),
        // Another key with the same hash: look through the batch.
        Some(_) => events.iter().rev().find(|e| e.kv.key == key).map(|e| &**e),
    };
    match newest {
        Some(ev) => match ev.kind {
            EventKind::Put => Some(Current::Batch(&ev.kv)),
            EventKind::Delete => None,
        },
        None => live
            .index
            .get_key_value(key)
            .map(|(k, e)| Current::Index(k, e)),
    }
}

/// Plans one request (see the module docs); a write gets the next revision.
fn plan_one(
    op: &mut Op,
    live: &Live,
    overlay: &mut Overlay,
    events: &mut Vec<Arc<Event>>,
    counters: &mut Counters,
    compact_step: Revision,
) -> Planned {
    let next = counters.rev + 1;
    let hash = match op {
        Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key_hash(key),
        _ => 0,
    };
    let event = match op {
        Op::Create { key, value } => match lookup(key, hash, live, overlay, events) {
            Some(_) => return Planned::Failed(StoreError::AlreadyExists(std::mem::take(key))),
            None => Event {
                kind: EventKind::Put,
                kv: KeyValue {
                    key: std::mem::take(key),
                    value: std::mem::take(value),
                    create_revision: next,
                    mod_revision: next,
                },
                prev: None,
            },
        },
        Op::Update {
            key,
            expected,
            value,
        } => match lookup(key, hash, live, overlay, events) {
            None => return Planned::Failed(StoreError::NotFound(std::mem::take(key))),
            Some(cur) if cur.mod_revision() != *expected => {
                return Planned::Failed(StoreError::Conflict {
                    key: std::mem::take(key),
                    expected: *expected,
                    current: Some(Box::new(cur.to_kv())),
                })
            }
            Some(cur) => Event {
                kind: EventKind::Put,
                kv: KeyValue {
                    key: std::mem::take(key),
                    value: std::mem::take(value),
                    create_revision: cur.create_revision(),
                    mod_revision: next,
                },
                prev: Some(cur.to_kv()),
            },
        },
        Op::Delete { key, expected } => match lookup(key, hash, live, overlay, events) {
            None => return Planned::Failed(StoreError::NotFound(std::mem::take(key))),
            Some(cur) if expected.is_some_and(|e| e != cur.mod_revision()) => {
                return Planned::Failed(StoreError::Conflict {
                    key: std::mem::take(key),
                    expected: expected.unwrap_or_default(),
                    current: Some(Box::new(cur.to_kv())),
                })
            }
            Some(cur) => {
                let prev = cur.to_kv();
                Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        mod_revision: next,
                        ..prev.clone()
                    },
                    prev: Some(prev),
                }
            }
        },
        Op::SetCompactPoint(point) => {
            let point = (*point).max(counters.compact_point);
            counters.compact_point = point;
            return Planned::SetCompactPoint(point);
        }
        Op::CompactStep => {
            let Counters {
                compact_point,
                compact_done,
                ..
            } = *counters;
            if compact_done >= compact_point {
                return Planned::CompactDone;
            }
            let hi = (compact_done + compact_step).min(compact_point);
            counters.compact_done = hi;
            return Planned::CompactStep {
                lo: compact_done,
                hi,
                point: compact_point,
                n: 0,
            };
        }
        #[cfg(test)]
        Op::Sql(sql) => return Planned::Sql(std::mem::take(sql)),
    };
    counters.rev = next;
    let i = events.len();
    overlay.insert(hash, i);
    events.push(Arc::new(event));
    Planned::Write(i)
}

#[cfg(test)]
mod tests {
    //! Failure handling of a batch when the database itself fails (here: the file may not
    //! grow, as on a full disk), which in-memory validation cannot foresee.

    use std::time::Duration;

    use super::*;
    use crate::sqlite::{SqliteOptions, SqliteStore};
    use crate::{ReadAt, Store};

    fn send(store: &SqliteStore, op: Op) -> oneshot::Receiver<Result<Reply, StoreError>> {
        let (reply, rx) = oneshot::channel();
        store
            .tx
            .as_ref()
            .expect("open store")
            .try_send(Request { op, reply })
            .unwrap_or_else(|_| panic!("queue full"));
        rx
    }

    fn create(key: String, size: usize) -> Op {
        Op::Create {
            key,
            value: Bytes::from(vec![b'v'; size]),
        }
    }

    fn put(key: &str, rev: Revision) -> Arc<Event> {
        Arc::new(Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: key.into(),
                value: Bytes::from(format!("{key}@{rev}")),
                create_revision: rev,
                mod_revision: rev,
            },
            prev: None,
        })
    }

    #[test]
    fn a_lookup_whose_hash_slot_names_another_key_finds_its_own_newest_write() {
        let mut index = std::collections::BTreeMap::new();
        index.insert("/c".to_owned(), Entry::of(&put("/c", 1).kv));
        let live = Live {
            index,
            history: Default::default(),
            current: 1,
        };
        let events = vec![put("/a", 2), put("/b", 3), put("/a", 4)];
        // As if "/b" and "/a" had the same hash and "/b" took the slot; "/c" likewise.
        let mut overlay = Overlay::default();
        overlay.insert(key_hash("/a"), 1);
        overlay.insert(key_hash("/c"), 0);
        let found = |overlay: &Overlay, key: &str| {
            lookup(key, key_hash(key), &live, overlay, &events).map(|c| c.to_kv().value)
        };
        assert_eq!(found(&overlay, "/a"), Some(Bytes::from("/a@4")));
        // Not written in the batch: the index, or nothing.
        assert_eq!(found(&overlay, "/c"), Some(Bytes::from("/c@1")));
        assert_eq!(found(&overlay, "/d"), None);
        // Without a collision, the slot's own event.
        overlay.insert(key_hash("/b"), 1);
        assert_eq!(found(&overlay, "/b"), Some(Bytes::from("/b@3")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_written_several_times_in_one_batch_ends_at_its_last_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_waiting(&dir.path().join("s.db"), Duration::from_secs(5)).await;
        let guard = store.shared.live.write();
        let gate = send(&store, create("/x/gate".into(), 1));
        std::thread::sleep(Duration::from_millis(50));
        // One batch: create, update, delete, create again, update; and a key deleted.
        let v = |s: &'static str| Bytes::from_static(s.as_bytes());
        let ops = vec![
            Op::Create {
                key: "/x/k".into(),
                value: v("1"),
            },
            Op::Update {
                key: "/x/k".into(),
                expected: 5,
                value: v("2"),
            },
            Op::Delete {
                key: "/x/k".into(),
                expected: Some(6),
            },
            Op::Create {
                key: "/x/k".into(),
                value: v("3"),
            },
            Op::Update {
                key: "/x/k".into(),
                expected: 8,
                value: v("4"),
            },
            Op::Delete {
                key: "/w/1".into(),
                expected: None,
            },
        ];
        let answers: Vec<_> = ops.into_iter().map(|op| send(&store, op)).collect();
        drop(guard);
        assert!(matches!(gate.await.unwrap(), Ok(Reply::Revision(4))));
        let mut got = Vec::new();
        for rx in answers {
            got.push(match rx.await.unwrap() {
                Ok(Reply::Revision(r)) => r,
                Ok(Reply::Deleted(kv)) => kv.mod_revision,
                other => panic!("{:?}", other.map(|_| ())),
            });
        }
        assert_eq!(got, [5, 6, 7, 8, 9, 10]);
        let (kv, rev) = store.get("/x/k", ReadAt::Latest).await.unwrap();
        assert_eq!(rev, 10);
        let kv = kv.unwrap();
        assert_eq!(
            (kv.value, kv.create_revision, kv.mod_revision),
            (v("4"), 8, 9)
        );
        assert_eq!(store.get("/w/1", ReadAt::Latest).await.unwrap().0, None);
        assert_eq!(store.count("/w/").await.unwrap(), 2);
        // The index after a restart agrees.
        drop(store);
        let store = SqliteStore::open(&dir.path().join("s.db"), SqliteOptions::default()).unwrap();
        let kv = store.get("/x/k", ReadAt::Latest).await.unwrap().0.unwrap();
        assert_eq!(
            (kv.value, kv.create_revision, kv.mod_revision),
            (v("4"), 8, 9)
        );
        assert_eq!(store.count("/w/").await.unwrap(), 2);
    }

    /// Opens a store whose writer waits up to `delay` for a batch to grow, and makes its last
    /// batch two writes long so that the next batch waits (for four, or the delay).
    async fn open_waiting(path: &std::path::Path, delay: Duration) -> Arc<SqliteStore> {
        let opts = SqliteOptions {
            commit_delay: delay,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(path, opts).unwrap();
        // Holding the index stops the writer in the first batch, so the next two queue up
        // and form the second batch together.
        let guard = store.shared.live.write();
        let first = send(&store, create("/w/0".into(), 8));
        std::thread::sleep(Duration::from_millis(50));
        let pair = [
            send(&store, create("/w/1".into(), 8)),
            send(&store, create("/w/2".into(), 8)),
        ];
        drop(guard);
        assert!(matches!(first.await.unwrap(), Ok(Reply::Revision(1))));
        for rx in pair {
            assert!(matches!(rx.await.unwrap(), Ok(Reply::Revision(_))));
        }
        store
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_arrive_while_a_batch_waits_are_appended_and_committed_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_waiting(&dir.path().join("s.db"), Duration::from_secs(5)).await;
        let commits = store.stats().commits;
        let mut watch = store.watch("/b/", 3).await.unwrap();

        // The first write opens the batch and is appended at once; the batch then waits.
        let mut early = send(&store, create("/b/early".into(), 8));
        std::thread::sleep(Duration::from_millis(100));
        assert!(early.try_recv().is_err(), "answered before its commit");
        assert_eq!(store.current_revision(), 3, "visible before its commit");
        // Its transaction is open meanwhile: another connection cannot begin a write.
        let other = Connection::open(dir.path().join("s.db")).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();
        match other.execute_batch("BEGIN IMMEDIATE") {
            Err(rusqlite::Error::SqliteFailure(e, _)) => {
                assert_eq!(e.code, rusqlite::ErrorCode::DatabaseBusy)
            }
            other => panic!("the waiting batch holds no write transaction: {other:?}"),
        }
        drop(other);
        // Three more double the last batch: all four commit together, in arrival order.
        let late: Vec<_> = (0..3)
            .map(|i| send(&store, create(format!("/b/late-{i}"), 8)))
            .collect();
        assert!(matches!(early.await.unwrap(), Ok(Reply::Revision(4))));
        for (i, rx) in late.into_iter().enumerate() {
            assert!(matches!(rx.await.unwrap(), Ok(Reply::Revision(r)) if r == 5 + i as i64));
        }
        assert_eq!(store.stats().commits, commits + 1);
        let mut revisions = Vec::new();
        while revisions.len() < 4 {
            revisions.extend(
                watch
                    .next()
                    .await
                    .unwrap()
                    .unwrap()
                    .iter()
                    .map(|e| e.revision()),
            );
        }
        assert_eq!(revisions, [4, 5, 6, 7]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_in_a_later_part_of_a_batch_fails_the_rows_already_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = open_waiting(&path, Duration::from_secs(5)).await;
        let commits = store.stats().commits;

        let early = send(&store, create("/e/early".into(), 8));
        std::thread::sleep(Duration::from_millis(100));
        // Appended in the open transaction; then the database fails on the next request.
        let broken = send(
            &store,
            Op::Sql("INSERT INTO no_such_table VALUES (1)".into()),
        );
        assert!(matches!(broken.await.unwrap(), Err(StoreError::Backend(_))));
        assert!(matches!(early.await.unwrap(), Err(StoreError::Backend(_))));
        assert_eq!(store.current_revision(), 3);
        assert_eq!(store.stats().commits, commits);
        assert_eq!(store.get("/e/early", ReadAt::Latest).await.unwrap().0, None);
        assert_eq!(store.log_rows().await.unwrap(), 3);

        // The revision the failed write had is taken by the next one.
        assert_eq!(store.create("/e/after", Bytes::new()).await.unwrap(), 4);
        drop(store);
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(store.current_revision(), 4);
        assert_eq!(store.get("/e/early", ReadAt::Latest).await.unwrap().0, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_error_fails_the_whole_batch_and_leaves_nothing_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let r1 = store
            .create("/f/existing", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(r1, 1);
        let mut watch = store.watch("/f/", 1).await.unwrap();
        let commits = store.stats().commits;

        // Hold the index so that the writer stops in the first batch (which forbids the file
        // to grow beyond its size) while everything else queues up behind it as one batch.
        let guard = store.shared.live.write();
        let limit = send(&store, Op::Sql("PRAGMA max_page_count = 1".into()));
        std::thread::sleep(Duration::from_millis(100));
        let mut small = Vec::new();
        let mut big = Vec::new();
        for i in 0..8 {
            small.push(send(&store, create(format!("/f/small-{i}"), 16)));
            big.push(send(&store, create(format!("/f/big-{i}"), 64 * 1024)));
        }
        let exists = send(&store, create("/f/existing".into(), 16));
        let conflict = send(
            &store,
            Op::Update {
                key: "/f/existing".into(),
                expected: 7,
                value: Bytes::new(),
            },
        );
        drop(guard);

        assert!(matches!(limit.await.unwrap(), Ok(Reply::Done)));
        // Logical failures keep their own answer.
        assert!(matches!(
            exists.await.unwrap(),
            Err(StoreError::AlreadyExists(k)) if k == "/f/existing"
        ));
        assert!(matches!(
            conflict.await.unwrap(),
            Err(StoreError::Conflict { expected: 7, current: Some(cur), .. }) if cur.mod_revision == 1
        ));
        // Every write of the batch fails, also the small ones that alone would have fit.
        for rx in small.into_iter().chain(big) {
            assert!(matches!(rx.await.unwrap(), Err(StoreError::Backend(_))));
        }
        assert_eq!(store.current_revision(), 1);
        assert_eq!(store.count("/f/").await.unwrap(), 1);
        assert_eq!(store.log_rows().await.unwrap(), 1);
        assert_eq!(store.stats().commits, commits);
        assert_eq!(
            store.get("/f/small-0", ReadAt::Latest).await.unwrap().0,
            None
        );

        // The writer goes on: the next write takes the next revision, and the watch sees it
        // right after revision 1, with nothing from the failed batch in between.
        store
            .submit(Op::Sql("PRAGMA max_page_count = 1073741823".into()))
            .await
            .unwrap();
        assert_eq!(store.create("/f/after", Bytes::new()).await.unwrap(), 2);
        let events = watch.next().await.unwrap().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].revision(), 2);
        assert_eq!(events[0].kv.key, "/f/after");
        drop(watch);
        drop(store);

        // And so does the database after a restart.
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(store.current_revision(), 2);
        assert_eq!(store.log_rows().await.unwrap(), 2);
        let keys: Vec<String> = store
            .list(crate::ListOptions {
                prefix: "/f/".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        assert_eq!(keys, ["/f/after", "/f/existing"]);
    }
}

#[cfg(test)]
mod doorbell_tests {
    use super::Doorbell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A writer waiting for two requests and a queue filled by a second thread.
    fn waiting_writer(
        queued: Arc<AtomicUsize>,
        timeout: Duration,
    ) -> (Arc<Doorbell>, std::thread::JoinHandle<Duration>) {
        let bell = Arc::new(Doorbell::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let b = bell.clone();
        let writer = std::thread::spawn(move || {
            b.serve(std::thread::current());
            ready_tx.send(()).unwrap();
            let start = Instant::now();
            // As the writer: parks may end early, so it looks again.
            while queued.load(Ordering::SeqCst) < 2 && start.elapsed() < timeout {
                b.wait(2, timeout.saturating_sub(start.elapsed()), || {
                    queued.load(Ordering::SeqCst)
                });
            }
            start.elapsed()
        });
        ready_rx.recv().unwrap();
        (bell, writer)
    }

    #[test]
    fn the_request_that_fills_the_batch_wakes_the_writer() {
        let queued = Arc::new(AtomicUsize::new(0));
        let (bell, writer) = waiting_writer(queued.clone(), Duration::from_secs(60));
        // Give the writer time to park (it also wakes if it has not yet).
        std::thread::sleep(Duration::from_millis(50));
        queued.store(1, Ordering::SeqCst);
        bell.ring(|| queued.load(Ordering::SeqCst));
        queued.store(2, Ordering::SeqCst);
        bell.ring(|| queued.load(Ordering::SeqCst));
        // Without the ring the writer would sleep out its minute.
        assert!(writer.join().unwrap() < Duration::from_secs(30));
    }

    #[test]
    fn a_waiting_writer_sleeps_out_its_timeout_when_no_one_rings() {
        let queued = Arc::new(AtomicUsize::new(0));
        let timeout = Duration::from_millis(200);
        let (_bell, writer) = waiting_writer(queued, timeout);
        assert!(writer.join().unwrap() >= timeout);
    }

    #[test]
    fn ringing_with_no_one_waiting_is_a_no_op() {
        let bell = Doorbell::default();
        bell.ring(|| unreachable!("no wait: the queue is not looked at"));
        bell.serve(std::thread::current());
        bell.ring(|| unreachable!("no wait: the queue is not looked at"));
    }
}
