//! Driving a reconcile function from a work queue (kube-runtime's `Controller`, client-go's
//! worker loops).
//!
//! A controller is level-triggered: it is handed a key, reads the current state from the
//! cache, and takes the next step towards the desired state. The loop here runs `workers`
//! reconciles at a time (never two for the same key), re-queues with back-off on errors and
//! after the delay a reconcile asks for. Each loop counts its reconciles
//! ([`reconcile_counts`]), a process-wide figure for profiling (how many times a pod's life
//! makes each loop look).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::queue::WorkQueue;

/// What to do after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the next change.
    Done,
    /// Look again after this long (a deadline, a back-off, a schedule).
    RequeueAfter(Duration),
}

/// One controller's reconcile step.
#[async_trait::async_trait]
pub trait Reconciler: Send + Sync + 'static {
    /// Upstream's controller name (for logs and metrics).
    fn name(&self) -> &'static str;

    /// Brings the object under `key` one step closer to its desired state.
    async fn reconcile(&self, key: &str) -> Result<Action, skiff_core::ApiError>;
}

/// Reconciles run so far in this process, per loop (by [`Reconciler::name`]).
static COUNTS: Mutex<Vec<(&'static str, Arc<AtomicU64>)>> = Mutex::new(Vec::new());

fn counter(name: &'static str) -> Arc<AtomicU64> {
    let mut all = COUNTS.lock();
    if let Some((_, c)) = all.iter().find(|(n, _)| *n == name) {
        return c.clone();
    }
    let c = Arc::new(AtomicU64::new(0));
    all.push((name, c.clone()));
    c
}

/// How many reconciles each loop has run in this process (loops of the same name, in several
/// runtimes, add up), in the order the loops first started.
pub fn reconcile_counts() -> Vec<(&'static str, u64)> {
    COUNTS
        .lock()
        .iter()
        .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
        .collect()
}

/// Runs `reconciler` over `queue` with `workers` concurrent workers until the queue is shut
/// down. Errors re-queue the key with exponential back-off; success clears it.
pub async fn run<R: Reconciler>(reconciler: Arc<R>, queue: WorkQueue, workers: usize) {
    let count = counter(reconciler.name());
    // Workers live in a JoinSet: when this future is dropped (the runtime shuts down), they
    // are aborted with it.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let r = reconciler.clone();
        let q = queue.clone();
        let count = count.clone();
        tasks.spawn(async move {
            while let Some(key) = q.get().await {
                count.fetch_add(1, Ordering::Relaxed);
                match r.reconcile(&key).await {
                    Ok(action) => {
                        q.forget(&key);
                        if let Action::RequeueAfter(d) = action {
                            q.add_after(key.clone(), d);
                        }
                    }
                    Err(e) => {
                        // Conflicts are the normal race with another writer: retry soon.
                        if e.code != 409 {
                            tracing::warn!(controller = r.name(), key = %key, error = %e.message, "reconcile failed");
                        }
                        q.add_rate_limited(key.clone());
                    }
                }
                q.done(&key);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use skiff_core::ApiError;

    struct Flaky {
        calls: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Reconciler for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
            let n = {
                let mut c = self.calls.lock();
                c.push(key.to_string());
                c.len()
            };
            if n < 3 {
                Err(ApiError::internal("not yet"))
            } else {
                Ok(Action::Done)
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_retried_with_backoff_until_success() {
        let r = Arc::new(Flaky {
            calls: Mutex::default(),
        });
        let q = WorkQueue::new();
        tokio::spawn(run(r.clone(), q.clone(), 2));
        q.add("ns/a");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(r.calls.lock().len(), 3);
        let counted = reconcile_counts();
        assert_eq!(counted.iter().find(|(n, _)| *n == "flaky").unwrap().1, 3);
        assert_eq!(q.failures("ns/a"), 0, "success forgets the back-off");
        q.shut_down();
    }
}
