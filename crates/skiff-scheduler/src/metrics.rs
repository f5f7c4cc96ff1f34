//! The scheduler's metrics, after kube-scheduler's
//! `scheduler_scheduling_algorithm_duration_seconds`: how long each successful scheduling
//! decision took, in a lock-free histogram with fine buckets (ten per decade from 10 µs to
//! 100 ms, so percentiles are read within about 12 %), rendered in the Prometheus text format.
//!
//! What is timed: compiling the pod, pre-filter, filters, pre-score and scores, and choosing
//! the node (upstream's `SchedulePod`). Skiff keeps its snapshot up to date as informer events
//! arrive rather than refreshing it at the start of every cycle, so there is no per-pod
//! snapshot update to include; assuming the pod and binding come after and are not timed.
//! As upstream, failed attempts (and preemption) are not observed.
//!
//! Also `scheduler_schedule_attempts_total` by `result` (upstream's counter): `scheduled` once
//! a pod's binding is persisted (counted by the binding task as the write returns, so a reader
//! polling it sees when bindings happen), `unschedulable` when no node fits, `error` when the
//! binding write fails.
//!
//! And `scheduler_queue_incoming_pods_total{event="PodAdd",queue="active"}` (upstream's
//! counter and labels): pending pods the informer delivered to the queue, so a reader can
//! tell how long pods took to reach the scheduler from how long it took to bind them.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

/// The metric's name, as upstream names it.
pub const ALGORITHM_DURATION: &str = "scheduler_scheduling_algorithm_duration_seconds";

/// Buckets per decade.
const PER_DECADE: u32 = 10;
/// Upper bounds in nanoseconds: 10 µs · 10^(i/10) for i in 0..=40 (10 µs .. 100 ms).
static BOUNDS_NS: LazyLock<Vec<u64>> = LazyLock::new(|| {
    (0..=4 * PER_DECADE)
        .map(|i| (10_000.0 * 10f64.powf(f64::from(i) / f64::from(PER_DECADE))).round() as u64)
        .collect()
});

/// A histogram of durations that many threads may observe into without locks.
#[derive(Debug)]
pub struct Histogram {
    /// One counter per bound, then one for everything above the last.
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..=BOUNDS_NS.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.partition_point(|&b| b < ns);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends the histogram as a Prometheus family `name` (cumulative `le` buckets in
    /// seconds, `_sum`, `_count`).
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cum = 0u64;
        for (b, c) in BOUNDS_NS.iter().zip(&self.counts) {
            cum += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cum}", *b as f64 / 1e9);
        }
        cum += self.counts[BOUNDS_NS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cum}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cum}");
    }
}

/// The attempts counter's name, as upstream names it.
pub const SCHEDULE_ATTEMPTS: &str = "scheduler_schedule_attempts_total";

/// The scheduler's metrics.
#[derive(Debug, Default)]
pub struct SchedulerMetrics {
    pub algorithm_duration: Histogram,
    /// Pods whose binding was persisted.
    pub scheduled: AtomicU64,
    /// Attempts that found no node.
    pub unschedulable: AtomicU64,
    /// Binding writes that failed.
    pub errors: AtomicU64,
    /// Pending pods added to the active queue as the informer delivered them.
    pub incoming_added: AtomicU64,
}

/// The incoming pods counter's name, as upstream names it.
pub const QUEUE_INCOMING: &str = "scheduler_queue_incoming_pods_total";

impl SchedulerMetrics {
    pub fn render(&self, out: &mut String) {
        self.algorithm_duration.render(
            ALGORITHM_DURATION,
            "Scheduling algorithm latency in seconds (successful decisions)",
            out,
        );
        let _ = writeln!(
            out,
            "# HELP {SCHEDULE_ATTEMPTS} Scheduling attempts by result (scheduled: binding persisted)"
        );
        let _ = writeln!(out, "# TYPE {SCHEDULE_ATTEMPTS} counter");
        for (result, n) in [
            ("error", &self.errors),
            ("scheduled", &self.scheduled),
            ("unschedulable", &self.unschedulable),
        ] {
            let _ = writeln!(
                out,
                "{SCHEDULE_ATTEMPTS}{{profile=\"default-scheduler\",result=\"{result}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP {QUEUE_INCOMING} Pods added to the scheduling queues by event and queue"
        );
        let _ = writeln!(out, "# TYPE {QUEUE_INCOMING} counter");
        let _ = writeln!(
            out,
            "{QUEUE_INCOMING}{{event=\"PodAdd\",queue=\"active\"}} {}",
            self.incoming_added.load(Ordering::Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_span_ten_microseconds_to_a_hundred_milliseconds() {
        assert_eq!(BOUNDS_NS.first(), Some(&10_000));
        assert_eq!(BOUNDS_NS[20], 1_000_000);
        assert_eq!(BOUNDS_NS.last(), Some(&100_000_000));
    }

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(5));
        h.observe(Duration::from_micros(900));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_secs(1));
        assert_eq!(h.count(), 4);
        let mut out = String::new();
        h.render("x_seconds", "help", &mut out);
        assert!(
            out.contains("x_seconds_bucket{le=\"0.00001\"} 1\n"),
            "{out}"
        );
        // 900 µs falls in (794 µs, 1 ms]; 1 ms itself is at the bound.
        assert!(
            out.contains("x_seconds_bucket{le=\"0.000794328\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_bucket{le=\"0.001\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.1\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_seconds_count 4\n"), "{out}");
        assert!(out.contains("x_seconds_sum 1.001905\n"), "{out}");
    }

    #[test]
    fn attempts_are_counted_by_result() {
        let m = SchedulerMetrics::default();
        m.scheduled.fetch_add(3, Ordering::Relaxed);
        m.unschedulable.fetch_add(1, Ordering::Relaxed);
        m.incoming_added.fetch_add(5, Ordering::Relaxed);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains(
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 3\n"
        ), "{out}");
        assert!(out.contains(
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"unschedulable\"} 1\n"
        ), "{out}");
        assert!(out.contains(
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"error\"} 0\n"
        ), "{out}");
        assert!(
            out.contains(
                "scheduler_queue_incoming_pods_total{event=\"PodAdd\",queue=\"active\"} 5\n"
            ),
            "{out}"
        );
    }
}
