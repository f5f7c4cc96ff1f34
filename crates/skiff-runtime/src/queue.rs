//! A work queue of object keys with client-go's semantics.
//!
//! - A key waiting in the queue is there once, however often it is added.
//! - A key being worked on is never handed to a second worker; if it is added meanwhile it is
//!   queued again when the worker calls [`WorkQueue::done`].
//! - [`WorkQueue::add_after`] delays an add (the earliest pending time wins);
//!   [`WorkQueue::add_rate_limited`] delays by a per-key exponential back-off (5 ms doubling to
//!   1000 s, upstream's default controller rate limiter) until [`WorkQueue::forget`].
//!
//! Time is tokio's, so tests pause and advance it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Keys are object keys, hashed with foldhash (seeded per process) like the cache's maps:
/// every add and every finished item looks its key up two or three times.
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

const BACKOFF_BASE: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1000);

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    /// Keys that need processing: queued, or added while being processed.
    dirty: HashSet<String>,
    processing: HashSet<String>,
    /// Delayed adds: key → when.
    waiting: HashMap<String, Instant>,
    failures: HashMap<String, u32>,
    shut_down: bool,
}

/// A de-duplicating, delaying work queue. Cheap to clone.
#[derive(Clone, Default)]
pub struct WorkQueue {
    state: Arc<Mutex<State>>,
    ready: Arc<Notify>,
}

impl WorkQueue {
    pub fn new() -> WorkQueue {
        WorkQueue::default()
    }

    /// Queues `key` now.
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let mut st = self.state.lock();
        if st.shut_down || st.dirty.contains(&key) {
            return;
        }
        st.dirty.insert(key.clone());
        if !st.processing.contains(&key) {
            st.queue.push_back(key);
            drop(st);
            self.ready.notify_one();
        }
    }

    /// Queues `key` after `delay` (at once for a zero delay).
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        if delay.is_zero() {
            return self.add(key);
        }
        let at = Instant::now() + delay;
        {
            let mut st = self.state.lock();
            if st.shut_down {
                return;
            }
            match st.waiting.get(&key) {
                Some(t) if *t <= at => return,
                _ => {}
            }
            st.waiting.insert(key.clone(), at);
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let due = {
                let mut st = q.state.lock();
                match st.waiting.get(&key) {
                    Some(t) if *t == at => {
                        st.waiting.remove(&key);
                        true
                    }
                    _ => false,
                }
            };
            if due {
                q.add(key);
            }
        });
    }

    /// Queues `key` after its back-off, which doubles with every call until
    /// [`Self::forget`].
    pub fn add_rate_limited(&self, key: impl Into<String>) {
        let key = key.into();
        let n = {
            let mut st = self.state.lock();
            let n = st.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.add_after(key, backoff(n));
    }

    /// Clears the back-off of `key` (after it was processed successfully).
    pub fn forget(&self, key: &str) {
        self.state.lock().failures.remove(key);
    }

    /// How many times `key` was re-queued by [`Self::add_rate_limited`] since it was forgotten.
    pub fn failures(&self, key: &str) -> u32 {
        self.state.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to work on; `None` after [`Self::shut_down`]. Call [`Self::done`] after.
    pub async fn get(&self) -> Option<String> {
        loop {
            let notified = self.ready.notified();
            {
                let mut st = self.state.lock();
                if let Some(key) = st.queue.pop_front() {
                    st.dirty.remove(&key);
                    st.processing.insert(key.clone());
                    // Wake another worker if more is queued.
                    if !st.queue.is_empty() {
                        self.ready.notify_one();
                    }
                    return Some(key);
                }
                if st.shut_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` finished; it is queued again if it was added while being worked on.
    pub fn done(&self, key: &str) {
        let mut st = self.state.lock();
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.queue.push_back(key.to_string());
            drop(st);
            self.ready.notify_one();
        }
    }

    /// Keys queued now (not delayed, not being processed).
    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops handing out keys; workers' `get` returns `None`.
    pub fn shut_down(&self) {
        self.state.lock().shut_down = true;
        self.ready.notify_waiters();
    }
}

/// The back-off after `failures` consecutive failures.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(40);
    BACKOFF_BASE
        .checked_mul(1u32.checked_shl(exp).unwrap_or(u32::MAX))
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_and_requeues_keys_added_while_processing() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        let k = q.get().await.unwrap();
        assert_eq!(k, "a");
        q.add("a"); // changed while being processed: not handed out twice
        assert_eq!(q.get().await.unwrap(), "b");
        assert_eq!(q.len(), 0);
        q.done("a");
        assert_eq!(q.get().await.unwrap(), "a");
        q.done("a");
        q.done("b");
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_adds_keep_the_earliest_time() {
        let q = WorkQueue::new();
        q.add_after("a", Duration::from_secs(10));
        q.add_after("a", Duration::from_secs(2));
        q.add_after("a", Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await.unwrap(), "a");
        q.done("a");
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(q.is_empty(), "later duplicates were dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_adds_back_off_exponentially() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(5), Duration::from_millis(80));
        assert_eq!(backoff(100), BACKOFF_MAX);
        let q = WorkQueue::new();
        for _ in 0..3 {
            q.add_rate_limited("k");
            let k = q.get().await.unwrap();
            q.done(&k);
        }
        assert_eq!(q.failures("k"), 3);
        q.forget("k");
        assert_eq!(q.failures("k"), 0);
    }

    #[tokio::test]
    async fn shut_down_releases_waiting_workers() {
        let q = WorkQueue::new();
        let q2 = q.clone();
        let w = tokio::spawn(async move { q2.get().await });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(w.await.unwrap(), None);
    }
}
