//! The tasks of the control loops, stopped together when the server stops.
//!
//! Every loop (informers, controllers, event writers, the scheduler, simulated nodes) is
//! spawned through [`Tasks::spawn`], so [`Tasks::shutdown`] ends them all: nothing keeps
//! writing to a datastore after its server has stopped (a restart in the same process opens
//! it again).

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::task::JoinSet;

/// A set of running tasks. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tasks {
    set: Arc<Mutex<Option<JoinSet<()>>>>,
    /// Where the tasks run; `None`: on the runtime of whoever spawns them.
    on: Option<Handle>,
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks {
            set: Arc::new(Mutex::new(Some(JoinSet::new()))),
            on: None,
        }
    }

    /// A set whose tasks all run on `handle`'s runtime, wherever they are spawned from.
    pub fn on(handle: Handle) -> Tasks {
        Tasks {
            on: Some(handle),
            ..Tasks::new()
        }
    }

    /// The same set (stopped with it), whose tasks spawned through the copy run on `handle`'s
    /// runtime.
    pub fn elsewhere(&self, handle: Handle) -> Tasks {
        Tasks {
            set: self.set.clone(),
            on: Some(handle),
        }
    }

    /// The runtime the tasks run on. Must be called inside a tokio runtime when the set has
    /// none of its own.
    pub fn handle(&self) -> Handle {
        self.on.clone().unwrap_or_else(Handle::current)
    }

    /// Runs `fut` until it ends or the set shuts down. After shutdown, nothing new starts.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut guard = self.set.lock();
        if let Some(set) = guard.as_mut() {
            // Reap finished tasks so the set does not grow without bound.
            while set.try_join_next().is_some() {}
            match &self.on {
                Some(h) => {
                    set.spawn_on(fut, h);
                }
                None => {
                    set.spawn(fut);
                }
            }
        }
    }

    /// Aborts every task and waits until they are gone.
    pub async fn shutdown(&self) {
        let set = self.set.lock().take();
        if let Some(mut set) = set {
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_stops_everything_and_refuses_new_tasks() {
        let tasks = Tasks::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let t = tx.clone();
        tasks.spawn(async move {
            let _keep = t;
            std::future::pending::<()>().await;
        });
        tasks.shutdown().await;
        let t = tx.clone();
        tasks.spawn(async move {
            let _ = t.send(()).await;
        });
        drop(tx);
        // Every sender is gone: the pending task was dropped and the late one never ran.
        assert!(rx.recv().await.is_none());
    }
}
