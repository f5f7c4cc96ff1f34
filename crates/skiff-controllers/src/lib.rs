//! Skiff's controller manager: upstream's kube-controller-manager loops, in process.
//!
//! Each module is one upstream controller: a [`skiff_runtime::controller::Reconciler`] over the
//! shared informer cache, fed by a work queue, writing through the in-process client as
//! `kube-controller-manager`. Decisions that need no I/O (which pods to delete, how far a
//! rollout may go) are pure functions with unit tests beside them.

use std::time::Duration;

use skiff_runtime::Runtime;

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod history;
pub mod job;
pub mod nodelifecycle;
#[cfg(test)]
mod paused_clock;
pub mod podcontrol;
pub mod podgc;
pub mod pods;
pub mod replicaset;
pub mod serviceaccount;
pub mod statefulset;
pub mod tainteviction;

/// The field manager and event source of every controller here (upstream's).
pub const MANAGER: &str = "kube-controller-manager";

/// Settings of the controllers (upstream's kube-controller-manager flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--node-monitor-grace-period`: how long a node may go without a heartbeat before it is
    /// marked unknown.
    pub node_monitor_grace_period: Duration,
    /// Workers per controller (`--concurrent-*-syncs`).
    pub workers: usize,
    /// `--terminated-pod-gc-threshold`: terminated pods kept before the pod GC deletes the
    /// oldest (0: never).
    pub terminated_pod_gc_threshold: usize,
    /// How often the pod GC runs (upstream: 20 s); pods of a deleted node wait twice this.
    pub pod_gc_period: Duration,
    /// The CronJob controller's clock, when not the runtime's (tests: an accelerated clock).
    pub cronjob_clock: Option<skiff_runtime::Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            node_monitor_grace_period: Duration::from_secs(50),
            workers: 5,
            terminated_pod_gc_threshold: 12500,
            pod_gc_period: Duration::from_secs(20),
            cronjob_clock: None,
        }
    }
}

/// Starts every controller; they run until the runtime's store closes.
pub fn start(rt: &Runtime, opts: &Options) {
    deployment::start(rt, opts);
    replicaset::start(rt, opts);
    statefulset::start(rt, opts);
    daemonset::start(rt, opts);
    endpoints::start(rt, opts);
    disruption::start(rt, opts);
    serviceaccount::start(rt, opts);
    nodelifecycle::start(rt, opts);
    tainteviction::start(rt, opts);
    podgc::start(rt, opts);
    job::start(rt, opts);
    cronjob::start(rt, opts);
}
