//! The pod garbage collector, after upstream's `pkg/controller/podgc`.
//!
//! Every `pod_gc_period` (upstream: 20 s) it force-deletes (grace period 0):
//! - terminated pods (Succeeded or Failed) beyond `--terminated-pod-gc-threshold`, oldest
//!   first (0 disables this);
//! - pods bound to a node that no longer exists, once the node has been missing for a
//!   quarantine of two periods (upstream: 40 s) and a read of the store confirms it is gone;
//!   running ones are first marked Failed with the `DisruptionTarget` condition (reason
//!   `DeletionByPodGC`);
//! - terminating pods on a node that is not Ready and carries the
//!   `node.kubernetes.io/out-of-service` taint (the non-graceful node shutdown path);
//! - terminating pods that were never scheduled.
//!
//! Upstream never force-deletes terminating pods merely because their node is unreachable (a
//! StatefulSet must not get two pods with one identity while the old one might still run);
//! neither does Skiff: those wait for the node to come back, to be deleted, or to be tainted
//! out-of-service.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use parking_lot::Mutex;
use skiff_apiserver::objects::DeleteOptions;
use skiff_core::ApiError;
use skiff_runtime::{Client, Clock, Informer, Object, Runtime};

use crate::pods::is_terminal;

/// The taint of the non-graceful node shutdown path.
pub const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// Why a pod is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Beyond the terminated-pod threshold.
    Terminated,
    /// Its node no longer exists.
    Orphaned,
    /// Terminating on an out-of-service node.
    OutOfService,
    /// Terminating and never scheduled.
    UnscheduledTerminating,
}

impl Reason {
    /// The DisruptionTarget message a running pod gets before it goes (upstream's).
    fn message(self) -> Option<&'static str> {
        match self {
            Reason::Orphaned => Some("PodGC: node no longer exists"),
            Reason::OutOfService => Some("PodGC: node is out-of-service"),
            _ => None,
        }
    }
}

/// The terminated pods to collect: the oldest (by creation) beyond `threshold`.
pub fn excess_terminated(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut done: Vec<&Arc<Pod>> = pods.iter().filter(|p| is_terminal(p)).collect();
    if done.len() <= threshold {
        return Vec::new();
    }
    let n = done.len() - threshold;
    done.sort_by(|a, b| {
        let ca = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let cb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
        ca.cmp(&cb)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    done.into_iter().take(n).cloned().collect()
}

/// Whether a node is out of service: not Ready and tainted `out-of-service` with NoExecute.
pub fn out_of_service(node: &Node) -> bool {
    let ready = crate::nodelifecycle::ready_status(node) == Some("True");
    let tainted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t.key == OUT_OF_SERVICE && t.effect == "NoExecute")
        });
    !ready && tainted
}

/// Names of nodes pods are bound to that have been missing since before `now - quarantine`;
/// `missing` remembers since when each was missing (updated here).
pub fn quarantined_missing(
    bound_to: impl IntoIterator<Item = String>,
    exists: impl Fn(&str) -> bool,
    missing: &mut HashMap<String, Timestamp>,
    now: Timestamp,
    quarantine: Duration,
) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    for n in bound_to {
        if !exists(&n) {
            missing.entry(n.clone()).or_insert(now);
            seen.insert(n);
        }
    }
    missing.retain(|n, _| seen.contains(n));
    let q = jiff::SignedDuration::try_from(quarantine).unwrap_or_default();
    let mut out: Vec<String> = missing
        .iter()
        .filter(|(_, since)| **since + q <= now)
        .map(|(n, _)| n.clone())
        .collect();
    out.sort();
    out
}

struct Gc {
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    client: Client,
    clock: Clock,
    threshold: usize,
    quarantine: Duration,
    missing: Mutex<HashMap<String, Timestamp>>,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let gc = Arc::new(Gc {
        nodes: rt.cache.informer::<Node>(),
        pods: rt.cache.informer::<Pod>(),
        client: rt.client(crate::MANAGER),
        clock: rt.clock,
        threshold: opts.terminated_pod_gc_threshold,
        quarantine: opts.pod_gc_period * 2,
        missing: Mutex::new(HashMap::new()),
    });
    let period = opts.pod_gc_period.max(Duration::from_millis(10));
    rt.spawn(async move {
        gc.nodes.synced().await;
        gc.pods.synced().await;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            gc.pass().await;
        }
    });
}

impl Gc {
    /// One collection pass.
    async fn pass(&self) {
        let pods = self.pods.list();
        let mut doomed: Vec<(Arc<Pod>, Reason)> = excess_terminated(&pods, self.threshold)
            .into_iter()
            .map(|p| (p, Reason::Terminated))
            .collect();

        // Orphans: pods on nodes that are gone (after the quarantine, confirmed by a read).
        let now = self.clock.now();
        let candidates = {
            let mut missing = self.missing.lock();
            quarantined_missing(
                pods.iter()
                    .filter_map(|p| p.node_name().map(str::to_string)),
                |n| self.nodes.get(None, n).is_some(),
                &mut missing,
                now,
                self.quarantine,
            )
        };
        let mut gone = std::collections::HashSet::new();
        for n in candidates {
            match self.client.get::<Node>(None, &n).await {
                Err(e) if e.code == 404 => {
                    gone.insert(n);
                }
                _ => {
                    self.missing.lock().remove(&n);
                }
            }
        }
        for p in &pods {
            let Some(node) = p.node_name() else {
                if p.metadata.deletion_timestamp.is_some() {
                    doomed.push((p.clone(), Reason::UnscheduledTerminating));
                }
                continue;
            };
            if gone.contains(node) {
                doomed.push((p.clone(), Reason::Orphaned));
            } else if p.metadata.deletion_timestamp.is_some()
                && self
                    .nodes
                    .get(None, node)
                    .is_some_and(|n| out_of_service(&n))
            {
                doomed.push((p.clone(), Reason::OutOfService));
            }
        }
        for (p, reason) in doomed {
            if let Err(e) = self.collect(&p, reason).await {
                tracing::warn!(pod = ?p.metadata.name, error = %e.message, "pod GC could not delete a pod");
            }
        }
    }

    /// Marks a still-running pod Failed with DisruptionTarget (when the reason has one) and
    /// force-deletes it.
    async fn collect(&self, pod: &Pod, reason: Reason) -> Result<(), ApiError> {
        let ns = pod.metadata.namespace.as_deref();
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        tracing::info!(namespace = ?ns, pod = name, ?reason, "pod GC deleting a pod");
        if let (Some(msg), false) = (reason.message(), is_terminal(pod)) {
            let now = self.clock.now_k8s();
            let res = self
                .client
                .modify_status::<Pod>(ns, name, |p| {
                    if p.metadata.uid.as_deref() != Some(uid.as_str()) {
                        return false;
                    }
                    let st = p.status.get_or_insert_with(Default::default);
                    if !matches!(st.phase.as_deref(), Some("Succeeded" | "Failed")) {
                        st.phase = Some("Failed".into());
                    }
                    let conds = st.conditions.get_or_insert_with(Vec::new);
                    conds.retain(|c| c.type_ != "DisruptionTarget");
                    conds.push(PodCondition {
                        type_: "DisruptionTarget".into(),
                        status: "True".into(),
                        reason: Some("DeletionByPodGC".into()),
                        message: Some(msg.into()),
                        last_transition_time: Some(now.clone()),
                        last_probe_time: None,
                    });
                    true
                })
                .await;
            match res {
                Ok(_) => {}
                Err(e) if e.code == 404 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: Some(uid),
            ..Default::default()
        };
        match self.client.delete::<Pod>(ns, name, &opts).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, phase: &str, created: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "creationTimestamp": format!("2026-01-01T00:{created}Z")},
                "spec": {"containers": []},
                "status": {"phase": phase}
            }))
            .unwrap(),
        )
    }

    fn names(v: &[Arc<Pod>]) -> Vec<&str> {
        v.iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn terminated_pods_beyond_the_threshold_go_oldest_first() {
        let pods = vec![
            pod("new-done", "Succeeded", "05:00"),
            pod("running", "Running", "00:00"),
            pod("old-failed", "Failed", "01:00"),
            pod("mid-done", "Succeeded", "03:00"),
        ];
        assert_eq!(
            names(&excess_terminated(&pods, 1)),
            vec!["old-failed", "mid-done"]
        );
        assert!(excess_terminated(&pods, 3).is_empty());
        assert!(excess_terminated(&pods, 0).is_empty(), "0 disables");
    }

    #[test]
    fn missing_nodes_wait_out_the_quarantine() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let q = Duration::from_secs(40);
        let mut missing = HashMap::new();
        let exists = |n: &str| n == "alive";
        let bound = || vec!["alive".to_string(), "gone".to_string(), "gone".to_string()];
        assert!(quarantined_missing(bound(), exists, &mut missing, t0, q).is_empty());
        let t1 = t0 + jiff::SignedDuration::from_secs(39);
        assert!(quarantined_missing(bound(), exists, &mut missing, t1, q).is_empty());
        let t2 = t0 + jiff::SignedDuration::from_secs(40);
        assert_eq!(
            quarantined_missing(bound(), exists, &mut missing, t2, q),
            vec!["gone"]
        );
        // Once no pod points at it, it is forgotten.
        assert!(quarantined_missing(vec![], exists, &mut missing, t2, q).is_empty());
        assert!(missing.is_empty());
    }

    #[test]
    fn out_of_service_needs_the_taint_and_a_not_ready_node() {
        let node = |ready: &str, taint: bool| -> Node {
            let mut v = json!({
                "metadata": {"name": "n"},
                "spec": {},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}
            });
            if taint {
                v["spec"]["taints"] = json!([{"key": OUT_OF_SERVICE, "effect": "NoExecute", "value": "nodeshutdown"}]);
            }
            serde_json::from_value(v).unwrap()
        };
        assert!(out_of_service(&node("False", true)));
        assert!(out_of_service(&node("Unknown", true)));
        assert!(!out_of_service(&node("True", true)));
        assert!(!out_of_service(&node("Unknown", false)));
    }
}

/// The pod GC against an in-process API server on tokio's paused clock, with upstream's
/// timers (a pass every 20 s, a 40 s quarantine). Writes are awaited by busy-polling so that
/// paused time moves only by the test's own sleeps (see `nodelifecycle::paused`).
#[cfg(test)]
mod paused {
    use std::sync::Arc;
    use std::time::Duration;

    use k8s_openapi::api::core::v1::Pod;
    use parking_lot::Mutex;
    use serde_json::json;
    use skiff_runtime::cache::Notification;
    use skiff_runtime::{Client, Runtime};

    async fn until(what: &str, check: impl Fn() -> bool) {
        for _ in 0..20_000 {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_micros(500));
            tokio::task::yield_now().await;
        }
        panic!("never: {what}");
    }

    async fn pod(client: &Client, name: &str, node: Option<&str>, phase: &str) {
        let mut spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
        )
        .unwrap();
        client.create(&p).await.unwrap();
        client
            .modify_status::<Pod>(Some("default"), name, |p| {
                p.status.get_or_insert_with(Default::default).phase = Some(phase.into());
                true
            })
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn terminated_pods_beyond_the_threshold_and_orphans_after_the_quarantine() {
        let dir = tempfile::tempdir().unwrap();
        let store = skiff_store::sqlite::SqliteStore::open(
            &dir.path().join("state.db"),
            Default::default(),
        )
        .unwrap();
        let api = skiff_apiserver::ApiServer::new(store, Default::default());
        api.bootstrap().await.unwrap();
        let rt = Runtime::new(api);
        let client = rt.client("test");
        let pods = rt.cache.synced::<Pod>().await;
        for name in ["done-1", "done-2", "done-3", "done-4"] {
            pod(&client, name, Some("n1"), "Succeeded").await;
        }
        pod(&client, "orphan", Some("ghost"), "Running").await;
        pod(&client, "pending", None, "Pending").await;
        until("cached", || pods.len() == 6).await;
        // Remember the last state of "orphan" before it goes.
        let last: Arc<Mutex<Option<Pod>>> = Arc::default();
        let mut sub = pods.subscribe();
        let seen = last.clone();
        rt.spawn(async move {
            while let Some(Notification::Changed(c)) = sub.recv().await {
                if let Some(p) = &c.new {
                    if p.metadata.name.as_deref() == Some("orphan") {
                        *seen.lock() = Some((**p).clone());
                    }
                }
            }
        });

        let opts = crate::Options {
            terminated_pod_gc_threshold: 2,
            ..Default::default()
        };
        super::start(&rt, &opts);
        let exists = |n: &str| pods.get(Some("default"), n).is_some();

        // The first pass (20 s) removes the two oldest terminated pods.
        tokio::time::sleep(Duration::from_secs(25)).await;
        until("two terminated pods collected", || {
            !exists("done-1") && !exists("done-2")
        })
        .await;
        assert!(exists("done-3") && exists("done-4"));
        // The orphan waits out the 40 s quarantine from when its node was first missed, at the
        // first pass or the second (0 s or 20 s, depending on when the cache had it), so it is
        // still there now (25 s) and gone after both possible ends of the quarantine.
        assert!(exists("orphan"));
        tokio::time::sleep(Duration::from_secs(60)).await; // 85 s
        until("orphan collected", || !exists("orphan")).await;
        let before = last.lock().clone().expect("orphan seen");
        let st = before.status.unwrap();
        assert_eq!(st.phase.as_deref(), Some("Failed"));
        let dt = st
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "DisruptionTarget")
            .unwrap();
        assert_eq!(dt.reason.as_deref(), Some("DeletionByPodGC"));
        assert_eq!(dt.message.as_deref(), Some("PodGC: node no longer exists"));
        // Unscheduled, not terminating: left alone.
        assert!(exists("pending"));
    }
}
