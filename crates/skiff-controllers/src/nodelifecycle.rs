//! The node lifecycle controller, after upstream's `pkg/controller/nodelifecycle`.
//!
//! A node is healthy while its kubelet keeps renewing its Lease in `kube-node-lease` (or
//! posting status). The controller notes, by its own clock, when it last saw either change
//! (upstream's probe timestamp, immune to clock skew between machines). When nothing changed for
//! `--node-monitor-grace-period` (a minute, upstream's node startup grace period, for a node
//! that never posted Ready), the kubelet's conditions become Unknown with reason
//! `NodeStatusUnknown` ("Kubelet stopped posting node status."), the node gets a `NodeNotReady`
//! event, and its pods get `Ready=False`.
//!
//! It also taints nodes by condition (upstream's TaintNodesByCondition and taint-based
//! eviction): Ready=Unknown → `node.kubernetes.io/unreachable` (NoExecute and NoSchedule),
//! Ready=False → `node.kubernetes.io/not-ready` (NoExecute and NoSchedule), `spec.unschedulable`
//! → `node.kubernetes.io/unschedulable:NoSchedule`; the taints go when the condition does.
//! Evicting pods for those NoExecute taints is the taint eviction controller's job
//! ([`crate::tainteviction`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use parking_lot::Mutex;
use skiff_core::ApiError;
use skiff_runtime::cache::Notification;
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::{Client, Clock, Informer, Object, Recorder, Runtime, WorkQueue};

use crate::daemonset::nodes::{TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE};

/// The event source (upstream's).
pub const COMPONENT: &str = "node-controller";
/// The Lease namespace kubelets heartbeat in.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// How long a node that never posted a Ready condition may take before it is marked Unknown
/// (upstream's `--node-startup-grace-period`).
pub const NODE_STARTUP_GRACE: Duration = Duration::from_secs(60);

/// The reason and message of conditions the controller marks Unknown.
pub const UNKNOWN_REASON: &str = "NodeStatusUnknown";
pub const UNKNOWN_MESSAGE: &str = "Kubelet stopped posting node status.";

/// What the controller last saw of a node's heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// When (by the controller's clock) a heartbeat last changed.
    pub observed_at: Timestamp,
    pub lease_renew: Option<Timestamp>,
    pub ready_heartbeat: Option<Timestamp>,
}

impl Probe {
    /// Records the heartbeats seen at `now`; the probe time moves only when one changed.
    pub fn observe(
        prev: Option<&Probe>,
        lease_renew: Option<Timestamp>,
        ready_heartbeat: Option<Timestamp>,
        now: Timestamp,
    ) -> Probe {
        match prev {
            Some(p) if p.lease_renew == lease_renew && p.ready_heartbeat == ready_heartbeat => {
                p.clone()
            }
            _ => Probe {
                observed_at: now,
                lease_renew,
                ready_heartbeat,
            },
        }
    }

    /// How long the node stays fresh from `now`; `None` once the grace period is over.
    pub fn remaining(&self, now: Timestamp, grace: Duration) -> Option<Duration> {
        let deadline = self.observed_at + jiff::SignedDuration::try_from(grace).ok()?;
        let left = deadline.duration_since(now);
        (left.is_positive()).then(|| Duration::try_from(left).unwrap_or(Duration::ZERO))
    }
}

/// The conditions the kubelet reports, which the controller marks Unknown
/// (NetworkUnavailable and others are not the kubelet's and stay as they are).
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The conditions of a node whose kubelet went silent: the kubelet's conditions Unknown (added,
/// with reason `NodeStatusNeverUpdated`, if never posted), others untouched. `None` when they are
/// Unknown already.
pub fn unknown_conditions(conds: &[NodeCondition], now: &Time) -> Option<Vec<NodeCondition>> {
    let mut out = conds.to_vec();
    let mut changed = false;
    for t in KUBELET_CONDITIONS {
        match out.iter_mut().find(|c| c.type_ == t) {
            None => {
                out.push(NodeCondition {
                    type_: t.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: None,
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".into();
                c.reason = Some(UNKNOWN_REASON.into());
                c.message = Some(UNKNOWN_MESSAGE.into());
                c.last_transition_time = Some(now.clone());
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed.then_some(out)
}

/// The status of the Ready condition (`None`: never posted).
pub fn ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

fn ready_heartbeat(node: &Node) -> Option<Timestamp> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_heartbeat_time
        .as_ref()
        .map(|t| t.0)
}

/// The taints the controller manages: (key, effect).
const MANAGED: [(&str, &str); 5] = [
    (TAINT_NOT_READY, "NoExecute"),
    (TAINT_NOT_READY, "NoSchedule"),
    (TAINT_UNREACHABLE, "NoExecute"),
    (TAINT_UNREACHABLE, "NoSchedule"),
    (TAINT_UNSCHEDULABLE, "NoSchedule"),
];

/// The node's taints given its Ready status and `spec.unschedulable`: managed taints added or
/// removed, others untouched (new NoExecute taints carry `timeAdded`). `None`: no change.
pub fn desired_taints(
    current: &[Taint],
    ready: Option<&str>,
    unschedulable: bool,
    now: &Time,
) -> Option<Vec<Taint>> {
    let want: Vec<(&str, &str)> = MANAGED
        .iter()
        .copied()
        .filter(|(key, _)| match *key {
            TAINT_NOT_READY => ready == Some("False"),
            TAINT_UNREACHABLE => ready == Some("Unknown"),
            _ => unschedulable,
        })
        .collect();
    let managed = |t: &Taint| MANAGED.contains(&(t.key.as_str(), t.effect.as_str()));
    let has = |k: &str, e: &str| current.iter().any(|t| t.key == k && t.effect == e);
    let stale = current
        .iter()
        .any(|t| managed(t) && !want.contains(&(t.key.as_str(), t.effect.as_str())));
    let missing: Vec<&(&str, &str)> = want.iter().filter(|(k, e)| !has(k, e)).collect();
    if !stale && missing.is_empty() {
        return None;
    }
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !managed(t) || want.contains(&(t.key.as_str(), t.effect.as_str())))
        .cloned()
        .collect();
    for (k, e) in missing {
        out.push(Taint {
            key: k.to_string(),
            value: None,
            effect: e.to_string(),
            time_added: (*e == "NoExecute").then(|| now.clone()),
        });
    }
    Some(out)
}

struct Controller {
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<Pod>,
    client: Client,
    recorder: Recorder,
    clock: Clock,
    grace: Duration,
    probes: Mutex<HashMap<String, Probe>>,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller {
        nodes: rt.cache.informer::<Node>(),
        leases: rt.cache.informer::<Lease>(),
        pods: rt.cache.informer::<Pod>(),
        client: rt.client(crate::MANAGER),
        recorder: rt.recorder(COMPONENT),
        clock: rt.clock,
        grace: opts.node_monitor_grace_period,
        probes: Mutex::new(HashMap::new()),
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.nodes.synced().await;
        ctl.leases.synced().await;
        ctl.pods.synced().await;
        let mut node_sub = ctl.nodes.subscribe();
        let mut lease_sub = ctl.leases.subscribe();
        let mut pod_sub = ctl.pods.subscribe();
        let (c, q) = (ctl.clone(), queue.clone());
        rt2.spawn(async move {
            while let Some(n) = node_sub.recv().await {
                match n {
                    Notification::Changed(ch) => {
                        if let Some(name) = ch.object().metadata.name.clone() {
                            if ch.new.is_none() {
                                c.probes.lock().remove(&name);
                            }
                            q.add(name);
                        }
                    }
                    Notification::Resync => c.enqueue_all(&q),
                }
            }
        });
        let (c, q) = (ctl.clone(), queue.clone());
        rt2.spawn(async move {
            while let Some(n) = lease_sub.recv().await {
                match n {
                    Notification::Changed(ch) => {
                        let m = &ch.object().metadata;
                        if m.namespace.as_deref() == Some(LEASE_NAMESPACE) {
                            if let Some(name) = m.name.clone() {
                                q.add(name);
                            }
                        }
                    }
                    Notification::Resync => c.enqueue_all(&q),
                }
            }
        });
        let (c, q) = (ctl.clone(), queue.clone());
        rt2.spawn(async move {
            while let Some(n) = pod_sub.recv().await {
                if let Notification::Changed(ch) = n {
                    // A ready pod on a node that is not ready must be marked.
                    let p = ch.object();
                    let Some(node) = p.node_name() else { continue };
                    if ch.new.is_some() && crate::pods::is_ready(p) {
                        // A node without a Ready condition has not reported yet: left alone
                        // until the grace period marks it.
                        let unready = c
                            .nodes
                            .get(None, node)
                            .is_some_and(|n| ready_status(&n).is_some_and(|s| s != "True"));
                        if unready {
                            q.add(node.to_string());
                        }
                    }
                }
            }
        });
        ctl.enqueue_all(&queue);
        controller::run(ctl, queue, workers).await;
    });
}

impl Controller {
    fn enqueue_all(&self, q: &WorkQueue) {
        for n in self.nodes.list() {
            if let Some(name) = n.metadata.name.clone() {
                q.add(name);
            }
        }
    }

    /// Marks the ready pods on `node` not ready (upstream's MarkPodsNotReady).
    async fn mark_pods_not_ready(&self, node: &str) -> Result<(), ApiError> {
        let now = self.clock.now_k8s();
        for p in self.pods.on_node(node) {
            if !crate::pods::is_ready(&p) || p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let ns = p.metadata.namespace.clone();
            let name = p.metadata.name.clone().unwrap_or_default();
            let res = self
                .client
                .modify_status::<Pod>(ns.as_deref(), &name, |pod| {
                    let Some(conds) = pod.status.as_mut().and_then(|s| s.conditions.as_mut())
                    else {
                        return false;
                    };
                    let mut changed = false;
                    for c in conds.iter_mut().filter(|c| c.type_ == "Ready") {
                        if c.status != "False" {
                            c.status = "False".into();
                            c.last_transition_time = Some(now.clone());
                            changed = true;
                        }
                    }
                    changed
                })
                .await;
            match res {
                Ok(_) => self
                    .recorder
                    .warning(p.as_ref(), "NodeNotReady", "Node is not ready"),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        "node-lifecycle-controller"
    }

    async fn reconcile(&self, name: &str) -> Result<Action, ApiError> {
        let Some(node) = self.nodes.get(None, name) else {
            self.probes.lock().remove(name);
            return Ok(Action::Done);
        };
        let now = self.clock.now();
        let renew = self
            .leases
            .get(Some(LEASE_NAMESPACE), name)
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
        let (probe, first) = {
            let mut probes = self.probes.lock();
            let prev = probes.get(name).cloned();
            let p = Probe::observe(prev.as_ref(), renew, ready_heartbeat(&node), now);
            probes.insert(name.to_string(), p.clone());
            (p, prev.is_none())
        };
        if first {
            self.recorder.normal(
                node.as_ref(),
                "RegisteredNode",
                format!("Node {name} event: Registered Node {name} in Controller"),
            );
        }
        // A node that never posted Ready gets upstream's startup grace period instead.
        let grace = match ready_status(&node) {
            None => NODE_STARTUP_GRACE,
            Some(_) => self.grace,
        };
        let remaining = probe.remaining(now, grace);
        let now_k8s = self.clock.now_k8s();
        let mut current = node.clone();

        if remaining.is_none() {
            let conds = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            if unknown_conditions(&conds, &now_k8s).is_some() {
                let was_ready = ready_status(&node) == Some("True");
                let updated = self
                    .client
                    .modify_status::<Node>(None, name, |n| {
                        let st = n.status.get_or_insert_with(Default::default);
                        let conds = st.conditions.clone().unwrap_or_default();
                        match unknown_conditions(&conds, &now_k8s) {
                            Some(c) => {
                                st.conditions = Some(c);
                                true
                            }
                            None => false,
                        }
                    })
                    .await?;
                tracing::info!(node = %name, "node stopped posting status; marked Unknown");
                if was_ready {
                    self.recorder.normal(
                        node.as_ref(),
                        "NodeNotReady",
                        format!("Node {name} status is now: NodeNotReady"),
                    );
                }
                current = Arc::new(updated);
            }
        }

        let ready = ready_status(&current).map(str::to_string);
        let unschedulable = current.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
        let taints = current
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if desired_taints(&taints, ready.as_deref(), unschedulable, &now_k8s).is_some() {
            self.client
                .modify::<Node>(None, name, |n| {
                    let spec = n.spec.get_or_insert_with(Default::default);
                    let cur = spec.taints.clone().unwrap_or_default();
                    let ready = ready_status_of(n.status.as_ref());
                    let uns = spec.unschedulable == Some(true);
                    match desired_taints(&cur, ready.as_deref(), uns, &now_k8s) {
                        Some(t) => {
                            spec.taints = (!t.is_empty()).then_some(t);
                            true
                        }
                        None => false,
                    }
                })
                .await?;
        }
        // Pods on a node that reports (or was marked) not ready are not ready either; a node
        // that never reported is left alone until the grace period marks it Unknown.
        if ready.as_deref().is_some_and(|s| s != "True") {
            self.mark_pods_not_ready(name).await?;
        }
        Ok(match remaining {
            Some(left) => Action::RequeueAfter(left + Duration::from_millis(10)),
            None => Action::Done,
        })
    }
}

fn ready_status_of(st: Option<&k8s_openapi::api::core::v1::NodeStatus>) -> Option<String> {
    st?.conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        format!("2026-01-01T00:{s}Z").parse().unwrap()
    }

    fn cond(t: &str, s: &str) -> NodeCondition {
        NodeCondition {
            type_: t.into(),
            status: s.into(),
            reason: Some("KubeletReady".into()),
            last_transition_time: Some(Time(ts("00:00"))),
            last_heartbeat_time: Some(Time(ts("00:00"))),
            ..Default::default()
        }
    }

    fn taint(k: &str, e: &str) -> Taint {
        Taint {
            key: k.into(),
            effect: e.into(),
            value: None,
            time_added: None,
        }
    }

    #[test]
    fn the_probe_moves_only_when_a_heartbeat_changes() {
        let grace = Duration::from_secs(40);
        let p = Probe::observe(None, Some(ts("00:00")), None, ts("00:00"));
        assert_eq!(
            p.remaining(ts("00:10"), grace),
            Some(Duration::from_secs(30))
        );
        // Same lease seen later: still the old probe.
        let same = Probe::observe(Some(&p), Some(ts("00:00")), None, ts("00:30"));
        assert_eq!(same.observed_at, ts("00:00"));
        assert_eq!(same.remaining(ts("00:40"), grace), None);
        assert_eq!(same.remaining(ts("00:50"), grace), None);
        // A renewal (or a status heartbeat) resets it.
        let renewed = Probe::observe(Some(&same), Some(ts("00:45")), None, ts("00:50"));
        assert_eq!(renewed.observed_at, ts("00:50"));
        assert!(renewed.remaining(ts("00:50"), grace).is_some());
        let status = Probe::observe(
            Some(&renewed),
            Some(ts("00:45")),
            Some(ts("00:55")),
            ts("00:56"),
        );
        assert_eq!(status.observed_at, ts("00:56"));
    }

    #[test]
    fn silent_nodes_get_every_condition_unknown() {
        let now = Time(ts("01:00"));
        let conds = vec![
            cond("MemoryPressure", "False"),
            cond("Ready", "True"),
            cond("NetworkUnavailable", "False"),
        ];
        let out = unknown_conditions(&conds, &now).unwrap();
        let network = out
            .iter()
            .find(|c| c.type_ == "NetworkUnavailable")
            .unwrap();
        assert_eq!(network.status, "False", "not the kubelet's: untouched");
        let never: Vec<&str> = out
            .iter()
            .filter(|c| c.reason.as_deref() == Some("NodeStatusNeverUpdated"))
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(never, vec!["DiskPressure", "PIDPressure"]);
        for c in out
            .iter()
            .filter(|c| c.type_ == "MemoryPressure" || c.type_ == "Ready")
        {
            assert_eq!(c.status, "Unknown");
            assert_eq!(c.reason.as_deref(), Some(UNKNOWN_REASON));
            assert_eq!(c.message.as_deref(), Some(UNKNOWN_MESSAGE));
            assert_eq!(c.last_transition_time.as_ref(), Some(&now));
            assert_eq!(c.last_heartbeat_time, Some(Time(ts("00:00"))), "kept");
        }
        assert!(unknown_conditions(&out, &now).is_none(), "already unknown");
        let never = unknown_conditions(&[], &now).unwrap();
        assert_eq!(never[0].reason.as_deref(), Some("NodeStatusNeverUpdated"));
    }

    #[test]
    fn taints_follow_the_ready_condition_and_cordon() {
        let now = Time(ts("01:00"));
        let user = taint("dedicated", "NoSchedule");
        assert!(desired_taints(std::slice::from_ref(&user), Some("True"), false, &now).is_none());
        // A node that never posted status is not tainted before the grace period marks it.
        assert!(desired_taints(std::slice::from_ref(&user), None, false, &now).is_none());

        let t = desired_taints(std::slice::from_ref(&user), Some("Unknown"), false, &now).unwrap();
        let keys: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("dedicated", "NoSchedule"),
                (TAINT_UNREACHABLE, "NoExecute"),
                (TAINT_UNREACHABLE, "NoSchedule")
            ]
        );
        assert_eq!(t[1].time_added.as_ref(), Some(&now));
        assert!(t[2].time_added.is_none());
        assert!(desired_taints(&t, Some("Unknown"), false, &now).is_none());

        // Unknown → False swaps unreachable for not-ready.
        let f = desired_taints(&t, Some("False"), false, &now).unwrap();
        assert!(f.iter().all(|t| t.key != TAINT_UNREACHABLE));
        assert!(f
            .iter()
            .any(|t| t.key == TAINT_NOT_READY && t.effect == "NoExecute"));

        // Back to True: only the user's taint stays; cordon adds unschedulable.
        let back = desired_taints(&f, Some("True"), true, &now).unwrap();
        let keys: Vec<&str> = back.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, vec!["dedicated", TAINT_UNSCHEDULABLE]);
        let un = desired_taints(&back, Some("True"), false, &now).unwrap();
        assert_eq!(un, vec![user]);
    }
}

/// The node lifecycle and taint eviction controllers together against an in-process API
/// server on tokio's paused clock, with upstream's default timers (50 s grace, 300 s
/// tolerations): the test plays the kubelet.
///
/// A store write blocks on a thread outside the runtime, and paused time jumps to the next
/// timer whenever the runtime is idle. So the test waits for writes by busy-polling (the
/// runtime never idles, time stands still) and lets time pass only by its own sleeps, which no
/// controller timer is due before.
#[cfg(test)]
mod paused {
    use std::time::Duration;

    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Event, Node, Pod};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use serde_json::json;
    use skiff_runtime::{Client, Runtime};

    async fn runtime() -> (Runtime, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = skiff_store::sqlite::SqliteStore::open(
            &dir.path().join("state.db"),
            Default::default(),
        )
        .unwrap();
        let api = skiff_apiserver::ApiServer::new(store, Default::default());
        api.bootstrap().await.unwrap();
        (Runtime::new(api), dir)
    }

    /// Waits, without letting paused time move, until `check` holds.
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

    async fn bound_ready_pod(
        rt: &Runtime,
        client: &Client,
        name: &str,
        tolerations: serde_json::Value,
    ) {
        on_node_ready_pod(rt, client, "n1", name, tolerations).await
    }

    async fn on_node_ready_pod(
        rt: &Runtime,
        client: &Client,
        node: &str,
        name: &str,
        tolerations: serde_json::Value,
    ) {
        let mut spec = json!({"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]});
        if !tolerations.is_null() {
            spec["tolerations"] = tolerations;
        }
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
        )
        .unwrap();
        client.create(&p).await.unwrap();
        let now = rt.clock.now_k8s();
        client
            .modify_status::<Pod>(Some("default"), name, |p| {
                let st = p.status.get_or_insert_with(Default::default);
                st.phase = Some("Running".into());
                st.conditions = Some(vec![serde_json::from_value(
                    json!({"type": "Ready", "status": "True", "lastTransitionTime": now}),
                )
                .unwrap()]);
                true
            })
            .await
            .unwrap();
    }

    fn pod(rt: &Runtime, name: &str) -> Option<std::sync::Arc<Pod>> {
        rt.cache.informer::<Pod>().get(Some("default"), name)
    }

    fn terminating(rt: &Runtime, name: &str) -> bool {
        pod(rt, name).is_none_or(|p| p.metadata.deletion_timestamp.is_some())
    }

    fn node(rt: &Runtime) -> std::sync::Arc<Node> {
        rt.cache.informer::<Node>().get(None, "n1").unwrap()
    }

    fn has_taint(rt: &Runtime, key: &str, effect: &str) -> bool {
        node(rt)
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| t.key == key && t.effect == effect))
    }

    fn node_events(rt: &Runtime) -> Vec<String> {
        rt.cache
            .informer::<Event>()
            .list()
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some("n1"))
            .filter_map(|e| e.reason.clone())
            .collect()
    }

    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

    #[tokio::test(start_paused = true)]
    async fn a_silent_node_goes_unknown_and_its_pods_leave_by_their_tolerations() {
        let (rt, _dir) = runtime().await;
        let client = rt.client("test");
        let pods = rt.cache.synced::<Pod>().await;
        rt.cache.synced::<Event>().await;
        rt.cache.synced::<Node>().await;

        // The kubelet registers, heartbeats once and runs three pods, then goes silent.
        let now = rt.clock.now_k8s();
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "lastHeartbeatTime": now, "lastTransitionTime": now}]}
        }))
        .unwrap();
        client.create(&n).await.unwrap();
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": "n1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                     "renewTime": MicroTime(rt.clock.now())}
        }))
        .unwrap();
        client.create(&lease).await.unwrap();
        bound_ready_pod(&rt, &client, "plain", serde_json::Value::Null).await;
        bound_ready_pod(
            &rt,
            &client,
            "short",
            json!([{"key": UNREACHABLE, "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 60}]),
        )
        .await;
        bound_ready_pod(
            &rt,
            &client,
            "daemon",
            json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
                   {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]),
        )
        .await;
        // A node that has not reported yet (no Ready condition) and a ready pod on it.
        let fresh: Node = serde_json::from_value(json!({"metadata": {"name": "fresh"}})).unwrap();
        client.create(&fresh).await.unwrap();
        on_node_ready_pod(&rt, &client, "fresh", "newbie", serde_json::Value::Null).await;
        until("pods cached", || {
            pods.len() == 4
                && ["plain", "short", "daemon"]
                    .iter()
                    .all(|p| crate::pods::is_ready(&pod(&rt, p).unwrap()))
        })
        .await;

        // The controllers start and see the node.
        let opts = crate::Options::default();
        super::start(&rt, &opts);
        crate::tainteviction::start(&rt, &opts);
        until("RegisteredNode", || {
            node_events(&rt).contains(&"RegisteredNode".to_string())
        })
        .await;
        assert_eq!(super::ready_status(&node(&rt)), Some("True"));

        // Still Ready within the 50 s grace period; the fresh node's pod is left alone.
        tokio::time::sleep(Duration::from_secs(45)).await;
        assert_eq!(super::ready_status(&node(&rt)), Some("True"));
        assert!(crate::pods::is_ready(&pod(&rt, "newbie").unwrap()));
        assert!(!has_taint(&rt, UNREACHABLE, "NoExecute"));

        // Past it: Unknown, tainted, pods not ready, an event.
        tokio::time::sleep(Duration::from_secs(10)).await;
        until("tainted", || {
            has_taint(&rt, UNREACHABLE, "NoExecute") && has_taint(&rt, UNREACHABLE, "NoSchedule")
        })
        .await;
        assert_eq!(super::ready_status(&node(&rt)), Some("Unknown"));
        let fresh = || rt.cache.informer::<Node>().get(None, "fresh").unwrap();
        assert_eq!(
            super::ready_status(&fresh()),
            None,
            "startup grace is a minute"
        );
        until("pods not ready", || {
            ["plain", "short", "daemon"]
                .iter()
                .all(|p| !crate::pods::is_ready(&pod(&rt, p).unwrap()))
        })
        .await;
        until("NodeNotReady", || {
            node_events(&rt).contains(&"NodeNotReady".to_string())
        })
        .await;

        // 60 s toleration: gone after a minute (counted from the taint, at 50-55 s), not before.
        tokio::time::sleep(Duration::from_secs(45)).await; // 100 s
        assert!(!terminating(&rt, "short"));
        tokio::time::sleep(Duration::from_secs(20)).await; // 120 s
        until("short evicted", || terminating(&rt, "short")).await;
        let never = fresh()
            .status
            .clone()
            .and_then(|s| s.conditions)
            .and_then(|cs| cs.into_iter().find(|c| c.type_ == "Ready"))
            .expect("fresh marked");
        assert_eq!(
            (never.status.as_str(), never.reason.as_deref()),
            ("Unknown", Some("NodeStatusNeverUpdated"))
        );
        let dt = pod(&rt, "short")
            .and_then(|p| p.status.clone()?.conditions)
            .and_then(|cs| cs.into_iter().find(|c| c.type_ == "DisruptionTarget"));
        assert_eq!(
            dt.unwrap().reason.as_deref(),
            Some(crate::tainteviction::REASON)
        );

        // The DefaultTolerationSeconds pod stays five minutes, the daemon pod for good.
        assert_eq!(
            pod(&rt, "plain")
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .tolerations
                .as_ref()
                .unwrap()
                .iter()
                .find(|t| t.key.as_deref() == Some(UNREACHABLE))
                .and_then(|t| t.toleration_seconds),
            Some(300)
        );
        tokio::time::sleep(Duration::from_secs(220)).await; // 340 s
        assert!(!terminating(&rt, "plain"));
        tokio::time::sleep(Duration::from_secs(30)).await; // 370 s
        until("plain evicted", || terminating(&rt, "plain")).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!terminating(&rt, "daemon"));

        // The kubelet comes back: Ready again, taints gone.
        client
            .merge_patch::<Lease>(
                Some("kube-node-lease"),
                "n1",
                &json!({"spec": {"renewTime": MicroTime(rt.clock.now())}}),
            )
            .await
            .unwrap();
        let now = rt.clock.now_k8s();
        client
            .modify_status::<Node>(None, "n1", |n| {
                n.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(json!({
                    "type": "Ready", "status": "True", "reason": "KubeletReady",
                    "lastHeartbeatTime": now, "lastTransitionTime": now}))
                .unwrap()]);
                true
            })
            .await
            .unwrap();
        until("untainted", || {
            super::ready_status(&node(&rt)) == Some("True")
                && !has_taint(&rt, UNREACHABLE, "NoExecute")
        })
        .await;
    }
}
