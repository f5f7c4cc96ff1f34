//! One watcher: a task with a cursor (the last revision it has looked at).
//!
//! Nothing is broadcast, so nothing is lost. The writer publishes events to a window of recent
//! events (revisions are contiguous, so the window is indexed by revision) and bumps a
//! `tokio::sync::watch` of the newest revision. Each watcher wakes, copies the events after its
//! cursor that match its prefix into its bounded channel, and moves the cursor. A watcher whose
//! cursor is older than the window (it started early, or its reader was slow and the window
//! moved on) reads the log from SQLite until it reaches the window; below the compaction point
//! it gets [`StoreError::Compacted`] and ends. Like an etcd watch, but per-watcher cursors
//! instead of etcd's synced/unsynced watcher groups.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{log, Shared};
use crate::{Event, Result, Revision, StoreError};

/// Where the next events come from.
enum Step {
    /// From the window: the events found, the revision looked at up to, and whether the
    /// batch limit cut the scan short.
    Window(Vec<Arc<Event>>, Revision, bool),
    /// The cursor is older than the window: read the log.
    Log,
}

pub(crate) struct Watcher {
    shared: Arc<Shared>,
    prefix: String,
    cursor: Revision,
    tx: mpsc::Sender<Result<Vec<Arc<Event>>>>,
}

impl Watcher {
    pub(crate) fn new(
        shared: Arc<Shared>,
        prefix: String,
        after: Revision,
        tx: mpsc::Sender<Result<Vec<Arc<Event>>>>,
    ) -> Self {
        Watcher {
            shared,
            prefix,
            cursor: after,
            tx,
        }
    }

    fn step(&self) -> Step {
        let w = self.shared.window.read();
        if self.cursor + 1 < w.first {
            return Step::Log;
        }
        let start = (self.cursor + 1 - w.first) as usize;
        let limit = self.shared.opts.watch_batch_limit.max(1);
        let mut found = Vec::new();
        let mut last = self.cursor;
        for ev in w.events.range(start.min(w.events.len())..) {
            last = ev.revision();
            if ev.kv.key.starts_with(&self.prefix) {
                found.push(ev.clone());
                if found.len() >= limit {
                    break;
                }
            }
        }
        let cut = found.len() >= limit;
        Step::Window(found, last, cut)
    }

    /// Reads one chunk of the log after the cursor.
    async fn read_log(&self) -> Result<(Vec<Arc<Event>>, Revision)> {
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        if self.cursor < compacted {
            return Err(StoreError::Compacted {
                requested: self.cursor,
                compacted,
            });
        }
        let upto = self.shared.live.read().current;
        let shared = self.shared.clone();
        let prefix = self.prefix.clone();
        let after = self.cursor;
        let limit = self.shared.opts.watch_batch_limit.max(1);
        let out = tokio::task::spawn_blocking(move || {
            shared.with_reader(|c| log::events_between(c, &prefix, after, upto, limit))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("watch log reader failed: {e}")))??;
        self.shared
            .stats
            .watch_log_reads
            .fetch_add(1, Ordering::Relaxed);
        // Compaction may have removed rows while we read: then the answer is not trustworthy.
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        if self.cursor < compacted {
            return Err(StoreError::Compacted {
                requested: self.cursor,
                compacted,
            });
        }
        Ok(out)
    }

    pub(crate) async fn run(mut self) {
        let mut newest = self.shared.notify.subscribe();
        loop {
            if self.shared.closed.load(Ordering::SeqCst) {
                return;
            }
            newest.borrow_and_update();
            let (events, scanned, again) = match self.step() {
                Step::Window(events, scanned, cut) => (events, scanned, cut),
                Step::Log => match self.read_log().await {
                    Ok((events, scanned)) => (events, scanned, true),
                    Err(e) => {
                        let _ = self.tx.send(Err(e)).await;
                        return;
                    }
                },
            };
            let moved = scanned > self.cursor;
            self.cursor = scanned;
            let again = again && moved;
            if !events.is_empty() && self.tx.send(Ok(events)).await.is_err() {
                return;
            }
            if again {
                continue;
            }
            tokio::select! {
                r = newest.changed() => if r.is_err() { return },
                _ = self.tx.closed() => return,
            }
        }
    }
}
