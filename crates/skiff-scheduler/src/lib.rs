//! Skiff's scheduler, after kube-scheduler's default profile (Kubernetes 1.32).
//!
//! The core does no I/O: a [`snapshot::Snapshot`] of nodes and placed pods kept up to date
//! incrementally, filter and score [`plugins`] as pure functions, one scheduling attempt in
//! [`framework`], the scheduling [`queue`] (time passed in), and [`preemption`] decisions.

pub mod fasthash;
pub mod framework;
pub mod metrics;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod run;
pub mod selector;
pub mod snapshot;

pub use framework::{Config, FitError, ScheduleResult, Scheduler};
pub use plugins::node_resources_fit::ScoringStrategy;
pub use run::{run, start};
pub use snapshot::{NodeInfo, PodInfo, Snapshot};
