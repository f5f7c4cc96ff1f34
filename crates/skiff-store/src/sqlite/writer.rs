//! The writer thread: group commit over the one write connection.
//!
//! Requests queue on a channel. The writer takes everything queued (up to a cap) into one
//! transaction, runs each request inside its own SAVEPOINT (a failing request rolls back alone),
//! assigns revisions in queue order with no gaps, commits once (one fsync for the batch), then
//! publishes the batch to the in-memory index and watch window, and only then answers callers.
//! Validation (exists, compare-and-swap) is checked against the in-memory index plus the
//! batch's own earlier changes, so the database is only written, never read, on this path.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::log::{self, backend};
use super::Shared;
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

/// The writer's own view of counters, restored if a commit fails.
#[derive(Clone, Copy)]
struct Counters {
    rev: Revision,
    compact_point: Revision,
    compact_done: Revision,
}

pub(crate) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    counters: Counters,
    checkpoint: std::sync::mpsc::SyncSender<()>,
}

/// What one request did inside the batch, published after commit.
struct Applied {
    event: Option<Arc<Event>>,
    result: Result<Reply, StoreError>,
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
        Writer {
            conn,
            shared,
            counters: Counters {
                rev,
                compact_point,
                compact_done,
            },
            checkpoint,
        }
    }

    /// Runs until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let cap = self.shared.opts.max_batch.max(1);
        let delay = self.shared.opts.commit_delay;
        let mut batch = Vec::with_capacity(cap);
        let mut last_len = 0usize;
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            let deadline = std::time::Instant::now() + delay;
            loop {
                while batch.len() < cap {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                // Concurrent writers: give the next ones a moment to join this commit, until
                // the batch is as large as the last one or the delay is up.
                if last_len < 2 || batch.len() >= cap || batch.len() >= last_len.max(2) * 2 {
                    break;
                }
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::sleep((deadline - now).min(std::time::Duration::from_micros(50)));
            }
            last_len = batch.len();
            self.run_batch(&mut batch);
        }
    }

    fn run_batch(&mut self, batch: &mut Vec<Request>) {
        let before = self.counters;
        if let Err(e) = self
            .conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
            let err = backend("beginning a transaction", e);
            for req in batch.drain(..) {
                let _ = req.reply.send(Err(err.clone()));
            }
            return;
        }
        // Keys changed earlier in this batch: their newest value (None: deleted).
        let mut overlay: HashMap<String, Option<KeyValue>> = HashMap::new();
        let mut applied = Vec::with_capacity(batch.len());
        let mut wrote = false;
        for req in batch.iter() {
            let a = self.apply(&req.op, &mut overlay);
            wrote |= a.result.is_ok();
            applied.push(a);
        }
        let commit = if wrote {
            log::set_meta(&self.conn, "current_rev", self.counters.rev).and_then(|()| self.commit())
        } else {
            self.commit()
        };
        if let Err(e) = commit {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.counters = before;
            let err = backend("committing", e);
            for (req, a) in batch.drain(..).zip(applied) {
                let result = match a.result {
                    Ok(_) => Err(err.clone()),
                    Err(e) => Err(e),
                };
                let _ = req.reply.send(result);
            }
            return;
        }
        if wrote {
            let commits = self.shared.stats.commits.fetch_add(1, Ordering::Relaxed) + 1;
            let events = applied.iter().filter(|a| a.event.is_some()).count() as u64;
            self.shared
                .stats
                .writes
                .fetch_add(events, Ordering::Relaxed);
            self.shared
                .stats
                .largest_batch
                .fetch_max(events, Ordering::Relaxed);
            if commits.is_multiple_of(64) {
                let _ = self.checkpoint.try_send(());
            }
        }
        self.publish(&applied, overlay, before);
        for (req, a) in batch.drain(..).zip(applied) {
            let _ = req.reply.send(a.result);
        }
    }

    /// Makes a committed batch visible: window first (so a watch started from a revision read
    /// in the index finds its events), then the index and current revision, then wakes watchers.
    fn publish(
        &self,
        applied: &[Applied],
        overlay: HashMap<String, Option<KeyValue>>,
        before: Counters,
    ) {
        let rev = self.counters.rev;
        if rev != before.rev {
            let mut w = self.shared.window.write();
            for ev in applied.iter().filter_map(|a| a.event.as_ref()) {
                w.events.push_back(ev.clone());
            }
            while w.events.len() > w.cap {
                w.events.pop_front();
            }
            w.first = w.events.front().map_or(rev + 1, |e| e.revision());
        }
        {
            let mut live = self.shared.live.write();
            for (key, kv) in overlay {
                match kv {
                    Some(kv) => {
                        live.index.insert(key, kv);
                    }
                    None => {
                        live.index.remove(&key);
                    }
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

    fn lookup(&self, key: &str, overlay: &HashMap<String, Option<KeyValue>>) -> Option<KeyValue> {
        match overlay.get(key) {
            Some(kv) => kv.clone(),
            None => self.shared.live.read().index.get(key).cloned(),
        }
    }

    /// Runs one request inside its own savepoint.
    fn apply(&mut self, op: &Op, overlay: &mut HashMap<String, Option<KeyValue>>) -> Applied {
        // Validate against memory first: no SQL for a request that fails.
        let next = self.counters.rev + 1;
        let planned = match op {
            Op::Create { key, value } => match self.lookup(key, overlay) {
                Some(_) => Err(StoreError::AlreadyExists(key.clone())),
                None => Ok(Event {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: next,
                        mod_revision: next,
                    },
                    prev: None,
                }),
            },
            Op::Update {
                key,
                expected,
                value,
            } => match self.lookup(key, overlay) {
                None => Err(StoreError::NotFound(key.clone())),
                Some(cur) if cur.mod_revision != *expected => Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    current: Some(Box::new(cur)),
                }),
                Some(cur) => Ok(Event {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: cur.create_revision,
                        mod_revision: next,
                    },
                    prev: Some(cur),
                }),
            },
            Op::Delete { key, expected } => match self.lookup(key, overlay) {
                None => Err(StoreError::NotFound(key.clone())),
                Some(cur) if expected.is_some_and(|e| e != cur.mod_revision) => {
                    Err(StoreError::Conflict {
                        key: key.clone(),
                        expected: expected.unwrap_or_default(),
                        current: Some(Box::new(cur)),
                    })
                }
                Some(cur) => Ok(Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        mod_revision: next,
                        ..cur.clone()
                    },
                    prev: Some(cur),
                }),
            },
            Op::SetCompactPoint(point) => {
                let point = (*point).max(self.counters.compact_point);
                let r = self.in_savepoint(|c| log::set_meta(c, "compact_rev", point));
                return match r {
                    Ok(()) => {
                        self.counters.compact_point = point;
                        Applied {
                            event: None,
                            result: Ok(Reply::Done),
                        }
                    }
                    Err(e) => Applied {
                        event: None,
                        result: Err(backend("setting the compaction point", e)),
                    },
                };
            }
            Op::CompactStep => {
                let Counters {
                    compact_point,
                    compact_done,
                    ..
                } = self.counters;
                if compact_done >= compact_point {
                    return Applied {
                        event: None,
                        result: Ok(Reply::Stepped(true)),
                    };
                }
                let hi = (compact_done + self.shared.opts.compact_step.max(1)).min(compact_point);
                let r = self.in_savepoint(|c| {
                    let n = log::compact_range(c, compact_done, hi, compact_point)?;
                    log::set_meta(c, "compact_done", hi)?;
                    Ok(n)
                });
                return match r {
                    Ok(n) => {
                        self.counters.compact_done = hi;
                        self.shared
                            .stats
                            .compacted_rows
                            .fetch_add(n as u64, Ordering::Relaxed);
                        Applied {
                            event: None,
                            result: Ok(Reply::Stepped(hi >= compact_point)),
                        }
                    }
                    Err(e) => Applied {
                        event: None,
                        result: Err(backend("compacting", e)),
                    },
                };
            }
        };
        let event = match planned {
            Ok(ev) => ev,
            Err(e) => {
                return Applied {
                    event: None,
                    result: Err(e),
                }
            }
        };
        let deleted = event.kind == EventKind::Delete;
        let prev_rev = event.prev.as_ref().map(|p| p.mod_revision);
        let value: &[u8] = if deleted { &[] } else { &event.kv.value };
        let r = self.in_savepoint(|c| {
            log::append(
                c,
                next,
                &event.kv.key,
                event.kv.create_revision,
                prev_rev,
                value,
                deleted,
            )
        });
        if let Err(e) = r {
            return Applied {
                event: None,
                result: Err(backend("appending to the log", e)),
            };
        }
        self.counters.rev = next;
        overlay.insert(event.kv.key.clone(), (!deleted).then(|| event.kv.clone()));
        let result = if deleted {
            Reply::Deleted(event.kv.clone())
        } else {
            Reply::Revision(next)
        };
        Applied {
            event: Some(Arc::new(event)),
            result: Ok(result),
        }
    }

    fn commit(&self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([]).map(|_| ())
    }

    fn in_savepoint<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        // Cached statements: these run twice per write, and parsing them each time showed up
        // in profiles.
        self.conn.prepare_cached("SAVEPOINT op")?.execute([])?;
        match f(&self.conn) {
            Ok(v) => {
                self.conn.prepare_cached("RELEASE op")?.execute([])?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK TO op; RELEASE op");
                Err(e)
            }
        }
    }
}
