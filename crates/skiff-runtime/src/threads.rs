//! The threads the control loops run on, apart from the API server's.
//!
//! In one process, the API server's request tasks and the control loops would otherwise share
//! the worker threads of one tokio runtime, first come first served. Under a flood of client
//! requests a loop's wake-up (an informer's watch batch, a binding write) then waits in the run
//! queue behind every connection's request, and the cluster reacts late to the very objects
//! the clients create. Upstream avoids this with separate processes and API Priority and
//! Fairness, which serves the scheduler and the controllers ahead of ordinary clients. Skiff
//! runs them on threads of their own (a tokio runtime per group) whose priority tells the
//! kernel who goes first:
//!
//! | threads | runs | nice |
//! | --- | --- | --- |
//! | `informers` (one) | the shared cache's informers: watch batches decoded into the cache | [`CONTROL_PLANE_NICE`] |
//! | `control-plane` | controllers, the scheduler's binding and event writes, event recorders | [`CONTROL_PLANE_NICE`] |
//! | API server | requests of clients | default (0) |
//! | `simulated-nodes` | `--fake-nodes` kubelets | [`SIMULATED_NODES_NICE`] |
//!
//! The informers have a thread of their own so that a watch batch never waits behind the
//! loops' writes (hundreds of bindings may be in flight): every loop sees a change as soon as it
//! is committed. The loops' work is bounded by what the clients write, so raising it does not
//! starve the clients; it only makes the cluster react first. (The scheduler's decisions have
//! a thread of their own too, see skiff-scheduler; the store's writer another.)

use std::io;

pub use skiff_store::sqlite::priority::set_own_nice;

/// The nice value of the control plane's threads: five steps above the API server's threads,
/// about three times their weight in the kernel's fair scheduler.
pub const CONTROL_PLANE_NICE: i32 = -5;

/// The nice value of the simulated nodes' threads: five steps below the API server's. They
/// stand in for kubelets on other machines, whose work would not share the control plane's
/// cores; here it waits while the control plane and the API server have work (its share of a
/// busy core, about a tenth, keeps heartbeats and status updates going).
pub const SIMULATED_NODES_NICE: i32 = 5;

/// A group of threads: a multi-threaded tokio runtime whose workers have one name and, when
/// the process may set it (root or `CAP_SYS_NICE`; else they keep the default and a line says
/// so), one nice value. Dropping it stops the threads without waiting, so it may be dropped on
/// another runtime's thread; stop the tasks on it first ([`crate::Runtime::shutdown`]).
pub struct Threads(Option<tokio::runtime::Runtime>);

impl Threads {
    pub fn start(name: &'static str, threads: usize, nice: i32) -> io::Result<Threads> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .on_thread_start(move || {
                set_own_nice(nice, name);
            })
            .enable_all()
            .build()?;
        Ok(Threads(Some(rt)))
    }

    /// Threads for simulated nodes ([`SIMULATED_NODES_NICE`]).
    pub fn simulated_nodes(threads: usize) -> io::Result<Threads> {
        Self::start("simulated-nodes", threads, SIMULATED_NODES_NICE)
    }

    /// Where to spawn tasks.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.0.as_ref().expect("running").handle().clone()
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The control plane's threads: `informers` and `control-plane` (see the module's table).
pub struct ControlPlaneThreads {
    pub loops: Threads,
    pub informers: Threads,
}

impl ControlPlaneThreads {
    /// `loops` workers for the control loops (the machine's cores, say) and one for the
    /// informers.
    pub fn start(loops: usize) -> io::Result<ControlPlaneThreads> {
        Ok(ControlPlaneThreads {
            loops: Threads::start("control-plane", loops, CONTROL_PLANE_NICE)?,
            informers: Threads::start("informers", 1, CONTROL_PLANE_NICE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_store::sqlite::priority::nice_of;

    fn own_tid() -> String {
        rustix::thread::gettid().as_raw_nonzero().get().to_string()
    }

    /// The loops' tasks run on the control-plane threads and the informers' on their own;
    /// both carry the raised priority when the process may set it (root, as in CI) and the
    /// default otherwise.
    #[test]
    fn control_plane_threads_run_tasks_at_their_priority() {
        let threads = ControlPlaneThreads::start(2).unwrap();
        let loops = crate::Tasks::on(threads.loops.handle());
        let informers = loops.elsewhere(threads.informers.handle());
        let (tx, rx) = std::sync::mpsc::channel();
        for tasks in [&loops, &informers] {
            let tx = tx.clone();
            tasks.spawn(async move {
                let name = std::thread::current().name().map(str::to_string);
                let _ = tx.send((name, nice_of(&own_tid())));
            });
        }
        let may_raise = rustix::process::getuid().is_root();
        let expected = if may_raise { CONTROL_PLANE_NICE } else { 0 };
        let mut seen: Vec<_> = (0..2).map(|_| rx.recv().unwrap()).collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                (Some("control-plane".to_string()), Some(expected)),
                (Some("informers".to_string()), Some(expected)),
            ]
        );
    }

    /// Simulated nodes' threads weigh less than the API server's.
    #[test]
    fn simulated_nodes_threads_have_a_lower_priority() {
        let threads = Threads::simulated_nodes(1).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        threads.handle().spawn(async move {
            let _ = tx.send(nice_of(&own_tid()));
        });
        // Lowering priority needs no privilege.
        assert_eq!(rx.recv().unwrap(), Some(SIMULATED_NODES_NICE));
    }
}
