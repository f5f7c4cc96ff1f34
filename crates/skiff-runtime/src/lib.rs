//! What Skiff's control loops share, in one process with the API server.
//!
//! Upstream's controller manager, scheduler and kubelet each talk to the API server over HTTP
//! and keep their own informer caches. In Skiff they run beside the API server, so they share:
//!
//! - [`cache::Cache`]: one informer per kind, fed by the store's watch (not by HTTP), holding
//!   typed objects (k8s-openapi) behind `Arc`s, with namespace, owner and node indexes and
//!   change subscriptions;
//! - [`client::Client`]: writes through the API server's own storage path (admission,
//!   defaulting, validation, managedFields under the client's field manager), skipping only
//!   HTTP and TLS;
//! - [`queue::WorkQueue`]: upstream's work queue semantics (a key is queued once, never handed
//!   to two workers at a time, re-queued if it changed while being worked on, delayed and
//!   rate-limited adds);
//! - [`events::Recorder`]: core/v1 Events with upstream's de-duplication (count, lastTimestamp);
//! - [`clock::Clock`]: wall time that follows tokio's clock, so tests pause and advance time;
//! - [`controller`]: the loop that drives a [`controller::Reconciler`] from a queue;
//! - [`tasks::Tasks`]: every loop's task, so that stopping the server stops them all;
//! - [`threads`]: the server's control-plane threads, which run the loops apart from (and at a
//!   higher priority than) the API server's request tasks.

use std::sync::Arc;

use skiff_apiserver::ApiServer;

pub mod cache;
pub mod client;
pub mod clock;
pub mod controller;
pub mod events;
pub mod queue;
pub mod selector;
pub mod tasks;
pub mod threads;
mod trim;

pub use cache::{Cache, Change, Informer, Object};
pub use client::Client;
pub use clock::Clock;
pub use events::Recorder;
pub use queue::WorkQueue;
pub use tasks::Tasks;

/// Everything a control loop needs; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub api: Arc<ApiServer>,
    pub cache: Cache,
    pub clock: Clock,
    pub tasks: Tasks,
}

impl Runtime {
    pub fn new(api: Arc<ApiServer>) -> Runtime {
        let tasks = Tasks::new();
        Runtime::with(api, tasks.clone(), tasks)
    }

    /// A runtime whose loops run on the control plane's threads, and its informers on their
    /// own thread (see [`threads`]).
    pub fn on(api: Arc<ApiServer>, threads: &threads::ControlPlaneThreads) -> Runtime {
        let tasks = Tasks::on(threads.loops.handle());
        let informers = tasks.elsewhere(threads.informers.handle());
        Runtime::with(api, tasks, informers)
    }

    /// Loops spawned through `tasks`, informers through `informers` (both stopped together).
    fn with(api: Arc<ApiServer>, tasks: Tasks, informers: Tasks) -> Runtime {
        Runtime {
            cache: Cache::of(api.clone(), informers),
            clock: Clock::system(),
            tasks,
            api,
        }
    }

    /// The same runtime (cache, clock, and stopped with it), except that the loops started
    /// through the copy run on `handle`'s runtime: simulated nodes on threads of a lower
    /// priority than the control plane (see [`threads`]).
    pub fn elsewhere(&self, handle: tokio::runtime::Handle) -> Runtime {
        Runtime {
            tasks: self.tasks.elsewhere(handle),
            ..self.clone()
        }
    }

    /// Runs a control loop until [`Self::shutdown`]. Loops must be started this way, never
    /// with a bare `tokio::spawn`.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(fut);
    }

    /// Stops every loop started through this runtime.
    pub async fn shutdown(&self) {
        self.tasks.shutdown().await;
    }

    /// A client writing as `manager` (the field manager upstream's component uses, such as
    /// `kube-controller-manager` or `kube-scheduler`).
    pub fn client(&self, manager: &'static str) -> Client {
        Client::new(self.api.clone(), manager)
    }

    /// An event recorder reporting as `component`.
    pub fn recorder(&self, component: &'static str) -> Recorder {
        Recorder::new(self.client(component), component, self.clock, &self.tasks)
    }
}
