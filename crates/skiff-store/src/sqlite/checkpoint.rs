//! WAL checkpoints that keep the WAL bounded under sustained writes without stalling writers.
//!
//! SQLite's WAL mode (see <https://sqlite.org/wal.html>) appends every commit's pages to the
//! WAL; a checkpoint copies them back into the database file. The WAL only starts over from
//! its beginning (reusing the file instead of growing it) when a write transaction begins
//! while every frame has been copied back and no reader uses the WAL. A PASSIVE checkpoint on
//! another connection never blocks the writer, but under sustained writes it never catches up:
//! by the time it has copied what it saw, the writer has committed more, so the WAL grows
//! without bound. RESTART and TRUNCATE checkpoints would catch up by taking the write lock
//! while they copy, stalling every writer for the whole copy and a sync.
//!
//! So the work is split:
//! - the **checkpoint thread** runs PASSIVE checkpoints (when the writer nudges it, every
//!   `checkpoint_interval`, and back to back while the WAL is over `wal_restart_bytes`), which
//!   copy almost everything without blocking anyone;
//! - once the WAL is over the limit, it asks the **writer**, which between two batches, only
//!   when no write is queued, runs one more PASSIVE checkpoint on its own connection. That one
//!   copies only what was committed during the checkpoint thread's last pass, and since the
//!   writer is not writing meanwhile, it leaves nothing uncopied, so the writer's next
//!   transaction starts the WAL over. A write that arrives during it waits as it would for a
//!   commit already under way, never for the bulk of the copying.
//!
//! Every checkpoint syncs the database file before the WAL may be reused (SQLite's rule with
//! `synchronous=FULL`), so durability is unchanged.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::Connection;

use super::Shared;

/// What the checkpoint thread and the writer share.
#[derive(Default)]
pub(crate) struct WalState {
    /// The checkpoint thread asks the writer to finish a checkpoint so the WAL restarts.
    pub restart_wanted: AtomicBool,
    /// Bytes (keys and values) the writer has committed since open.
    pub written: AtomicU64,
    /// `written` as it was when the last complete checkpoint pass started: what is left to
    /// copy is about what was written since.
    pub covered: AtomicU64,
    /// Frames in the WAL at the last checkpoint.
    pub frames: AtomicU64,
    /// Most frames the WAL held at any checkpoint since open.
    pub max_frames: AtomicU64,
    /// Times the WAL was seen to have started over.
    pub restarts: AtomicU64,
    /// Checkpoints the writer ran, and the time they took (ns).
    pub writer_checkpoints: AtomicU64,
    pub writer_checkpoint_ns: AtomicU64,
    /// Longest writer checkpoint (ns).
    pub writer_checkpoint_max_ns: AtomicU64,
}

/// The result of `PRAGMA wal_checkpoint`: whether it was blocked, frames in the WAL, frames
/// copied back into the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpointed {
    pub busy: bool,
    pub log: i64,
    pub copied: i64,
}

/// Runs a PASSIVE checkpoint on `conn`.
pub(crate) fn passive(conn: &Connection) -> rusqlite::Result<Checkpointed> {
    conn.prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")?
        .query_row([], |r| {
            Ok(Checkpointed {
                busy: r.get::<_, i64>(0)? != 0,
                log: r.get(1)?,
                copied: r.get(2)?,
            })
        })
}

/// The database's page size in bytes (a WAL frame holds one page).
pub(crate) fn page_size(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("PRAGMA page_size", [], |r| r.get(0))
}

/// The checkpoint thread: runs PASSIVE checkpoints when nudged by the writer and every
/// `checkpoint_interval`, back to back while the WAL is over the limit, and then asks the
/// writer to finish the job (see the module docs).
pub(crate) fn run(conn: Connection, nudges: std::sync::mpsc::Receiver<()>, shared: Arc<Shared>) {
    use std::sync::mpsc::RecvTimeoutError;
    let limit_frames = shared.opts.wal_restart_bytes.map(|bytes| {
        let page = page_size(&conn).unwrap_or(4096).max(512);
        (bytes / page).max(1) as i64
    });
    let wal = &shared.wal;
    let mut again = false;
    let mut last_log = 0i64;
    loop {
        if !again {
            match nudges.recv_timeout(shared.opts.checkpoint_interval) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        again = false;
        let before = wal.written.load(Ordering::Acquire);
        let r = match passive(&conn) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "sqlite: passive wal checkpoint failed");
                continue;
            }
        };
        shared.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        if !r.busy {
            wal.covered.store(before, Ordering::Release);
        }
        note_frames(wal, r.log, &mut last_log);
        let Some(limit) = limit_frames else { continue };
        if r.log < limit {
            continue;
        }
        // Over the limit: keep copying back to back, so that each pass (and the writer's
        // final one) has only what was committed during the previous pass to copy, and ask
        // the writer to finish.
        again = true;
        if !r.busy {
            wal.restart_wanted.store(true, Ordering::Release);
            // Stay out of the writer's way for a moment: its checkpoint would find this
            // thread's in progress and have to try again after its next batch.
            for _ in 0..10 {
                std::thread::sleep(std::time::Duration::from_micros(500));
                if !wal.restart_wanted.load(Ordering::Acquire) {
                    break;
                }
            }
        } else {
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
    }
}

/// Records the WAL's size; a smaller WAL than last time means it started over.
pub(crate) fn note_frames(wal: &WalState, log: i64, last: &mut i64) {
    let log = log.max(0);
    if log < *last {
        wal.restarts.fetch_add(1, Ordering::Relaxed);
    }
    *last = log;
    wal.frames.store(log as u64, Ordering::Relaxed);
    wal.max_frames.fetch_max(log as u64, Ordering::Relaxed);
}

/// The writer's part, between batches when nothing is queued: if the checkpoint thread asked
/// and at most `max_left` bytes were written since its last pass began, copy what is left so
/// that the next transaction starts the WAL over.
pub(crate) fn finish_for_restart(conn: &Connection, wal: &WalState, max_left: u64) {
    if !wal.restart_wanted.load(Ordering::Acquire) {
        return;
    }
    // Only when little is left to copy, so the writer never does the bulk of the work; if
    // more was written since the last pass, the next pass copies it first.
    let left = wal
        .written
        .load(Ordering::Acquire)
        .saturating_sub(wal.covered.load(Ordering::Acquire));
    if left > max_left {
        return;
    }
    let t0 = std::time::Instant::now();
    let r = passive(conn);
    let ns = t0.elapsed().as_nanos() as u64;
    wal.writer_checkpoints.fetch_add(1, Ordering::Relaxed);
    wal.writer_checkpoint_ns.fetch_add(ns, Ordering::Relaxed);
    wal.writer_checkpoint_max_ns
        .fetch_max(ns, Ordering::Relaxed);
    match r {
        // Everything copied: the next write transaction restarts the WAL.
        Ok(r) if !r.busy && r.copied >= r.log => {
            wal.restart_wanted.store(false, Ordering::Release);
        }
        // The checkpoint thread is mid-pass, or a reader holds old frames: try again later.
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "sqlite: writer's wal checkpoint failed"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use super::*;
    use crate::sqlite::{SqliteOptions, SqliteStore, StoreStats};
    use crate::{ReadAt, Store};

    /// What a long write run did.
    struct Run {
        wal_max_bytes: u64,
        /// Every write's latency, shortest first.
        latencies: Vec<Duration>,
        stats: StoreStats,
    }

    impl Run {
        /// The latency that 99% of writes stayed within.
        fn p99(&self) -> Duration {
            self.latencies[self.latencies.len() * 99 / 100]
        }

        fn longest(&self) -> Duration {
            *self.latencies.last().unwrap()
        }
    }

    /// 64 concurrent writers create `n` keys of 2.5 KB values (about the size of a stored pod)
    /// while the WAL file's size is sampled.
    async fn long_run(dir: &Path, wal_restart_bytes: Option<u64>, n: usize) -> Run {
        let opts = SqliteOptions {
            wal_restart_bytes,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(&dir.join("s.db"), opts).unwrap();
        let wal_path = dir.join("s.db-wal");
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            tokio::spawn(async move {
                let mut max = 0;
                while !done.load(Ordering::Relaxed) {
                    max = max.max(std::fs::metadata(&wal_path).map_or(0, |m| m.len()));
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                max
            })
        };
        let value = Bytes::from(vec![b'v'; 2500]);
        let writers = 64;
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let (store, value) = (store.clone(), value.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    for i in (w..n).step_by(writers) {
                        let t0 = Instant::now();
                        store
                            .create(&format!("/k/{i:06}"), value.clone())
                            .await
                            .unwrap();
                        latencies.push(t0.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(n);
        for t in tasks {
            latencies.extend(t.await.unwrap());
        }
        latencies.sort_unstable();
        done.store(true, Ordering::Relaxed);
        let wal_max_bytes = sampler.await.unwrap();
        assert_eq!(store.count("/k/").await.unwrap(), n);
        let last = format!("/k/{:06}", n - 1);
        assert!(store.get(&last, ReadAt::Latest).await.unwrap().0.is_some());
        Run {
            wal_max_bytes,
            latencies,
            stats: store.stats(),
        }
    }

    /// Whether the bounded run's writes and the writer's own checkpoints took about as long as
    /// the unbounded run's writes; the reason if not.
    fn stalls(bounded: &Run, unbounded: &Run) -> Option<String> {
        let slack = Duration::from_millis(100);
        // The writer's own checkpoints copy only the remainder: short, never the whole WAL.
        if bounded.stats.writer_checkpoint_max >= unbounded.longest() * 2 + slack {
            return Some(format!(
                "a writer checkpoint took {:?}, the longest unbounded write {:?}",
                bounded.stats.writer_checkpoint_max,
                unbounded.longest()
            ));
        }
        // And writes do not wait noticeably longer than when the WAL just grows. A checkpoint
        // that held writers up would delay every write queued behind it at each of the WAL's
        // restarts, hundreds of writes, so the 99th percentile shows it, where the longest
        // write alone can be one write caught by a disk or scheduler hiccup.
        if bounded.p99() >= unbounded.p99() * 3 + slack {
            return Some(format!(
                "99% of writes within {:?} with the limit, {:?} without",
                bounded.p99(),
                unbounded.p99()
            ));
        }
        None
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sustained_writes_keep_the_wal_bounded_without_stalling_writers() {
        const MIB: u64 = 1024 * 1024;
        let n = 8_000; // ~20 MiB of values, more with the index and page overhead

        // The sizes hold on every try. The times are judged against the unbounded run of the
        // same try, and a loaded machine can stretch one run and not the other, so they get
        // three tries: a checkpoint that stalls writers does so on every one.
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            let bounded_dir = tempfile::tempdir().unwrap();
            let bounded = long_run(bounded_dir.path(), Some(2 * MIB), n).await;
            let unbounded_dir = tempfile::tempdir().unwrap();
            let unbounded = long_run(unbounded_dir.path(), None, n).await;
            eprintln!(
                "try {attempt}: WAL limit 2 MiB: WAL at most {} KiB, started over {} times, {} \
                 writer checkpoints (longest {:?}), writes: 99% within {:?}, longest {:?}; \
                 no limit: WAL at most {} KiB, writes: 99% within {:?}, longest {:?}",
                bounded.wal_max_bytes / 1024,
                bounded.stats.wal_restarts,
                bounded.stats.writer_checkpoints,
                bounded.stats.writer_checkpoint_max,
                bounded.p99(),
                bounded.longest(),
                unbounded.wal_max_bytes / 1024,
                unbounded.p99(),
                unbounded.longest(),
            );
            // Without the limit the WAL grows with everything written.
            assert!(
                unbounded.wal_max_bytes > 20 * MIB,
                "{}",
                unbounded.wal_max_bytes
            );
            // With it, the WAL starts over again and again and stays within a few times the
            // limit.
            assert!(
                bounded.stats.wal_restarts >= 2,
                "{}",
                bounded.stats.wal_restarts
            );
            assert!(
                bounded.wal_max_bytes < 10 * MIB,
                "{}",
                bounded.wal_max_bytes
            );
            match stalls(&bounded, &unbounded) {
                None => return,
                Some(why) => failures.push(format!("try {attempt}: {why}")),
            }
        }
        panic!("writers stalled on every try: {failures:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_database_gets_the_page_size_and_an_existing_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let page_size_of = |path: &Path| {
            let c = Connection::open(path).unwrap();
            page_size(&c).unwrap()
        };
        let open = |size: u32| {
            let opts = SqliteOptions {
                page_size: size,
                ..SqliteOptions::default()
            };
            SqliteStore::open(&path, opts).unwrap()
        };
        let store = open(4096);
        store.create("/a", Bytes::from_static(b"1")).await.unwrap();
        drop(store);
        assert_eq!(page_size_of(&path), 4096);
        let store = open(16384);
        assert_eq!(
            store
                .get("/a", ReadAt::Latest)
                .await
                .unwrap()
                .0
                .unwrap()
                .value,
            Bytes::from_static(b"1")
        );
        store.create("/b", Bytes::from_static(b"2")).await.unwrap();
        drop(store);
        assert_eq!(page_size_of(&path), 4096);

        let other = dir.path().join("new.db");
        let store = SqliteStore::open(
            &other,
            SqliteOptions {
                page_size: 16384,
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        store.create("/a", Bytes::from_static(b"1")).await.unwrap();
        drop(store);
        assert_eq!(page_size_of(&other), 16384);
    }
}
