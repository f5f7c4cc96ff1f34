//! The taint eviction controller, after upstream's `pkg/controller/tainteviction` (the
//! "taint manager").
//!
//! A pod bound to a node with `NoExecute` taints is deleted at once if some taint is not
//! tolerated; if every one is tolerated, after the smallest `tolerationSeconds` of the
//! tolerations used (never, if none of them has one), counted from when the controller first saw
//! the pod needing eviction. A taint that goes away before then cancels the eviction. Before
//! deleting, the pod gets the `DisruptionTarget` condition (reason `DeletionByTaintManager`);
//! events `TaintManagerEviction` say "Marking for deletion Pod ns/name" and "Cancelling deletion
//! of Pod ns/name". DaemonSet pods stay because their controller gives them tolerations without
//! `tolerationSeconds`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition, Taint, Toleration};
use parking_lot::Mutex;
use skiff_apiserver::objects::DeleteOptions;
use skiff_core::ApiError;
use skiff_runtime::cache::{key_of, Notification};
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::{Client, Clock, Informer, Object, Recorder, Runtime, WorkQueue};

use crate::daemonset::nodes::tolerates;

/// The event source (upstream's).
pub const COMPONENT: &str = "taint-eviction-controller";
pub const REASON: &str = "DeletionByTaintManager";
pub const MESSAGE: &str = "Taint manager: deleting due to NoExecute taint";

/// What to do about a pod given its node's taints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No NoExecute taint, or every one tolerated for good.
    Keep,
    /// Some NoExecute taint is not tolerated.
    EvictNow,
    /// Every NoExecute taint is tolerated, the shortest for this long.
    EvictAfter(Duration),
}

/// Upstream's `GetMatchingTolerations` and `getMinTolerationTime` over the NoExecute taints.
pub fn decide(taints: &[Taint], tolerations: &[Toleration]) -> Decision {
    let mut min: Option<i64> = None;
    let mut any = false;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        any = true;
        let used: Vec<&Toleration> = tolerations
            .iter()
            .filter(|tol| tolerates(tol, taint))
            .collect();
        if used.is_empty() {
            return Decision::EvictNow;
        }
        for tol in used {
            if let Some(s) = tol.toleration_seconds {
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
    }
    match (any, min) {
        (false, _) | (true, None) => Decision::Keep,
        (true, Some(s)) if s <= 0 => Decision::EvictNow,
        (true, Some(s)) => Decision::EvictAfter(Duration::from_secs(s as u64)),
    }
}

fn no_execute(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .filter(|t| t.effect == "NoExecute")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

struct Controller {
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    client: Client,
    recorder: Recorder,
    clock: Clock,
    /// Pods with a timed eviction: key → (uid, when it was first scheduled).
    scheduled: Mutex<HashMap<String, (String, Timestamp)>>,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller {
        nodes: rt.cache.informer::<Node>(),
        pods: rt.cache.informer::<Pod>(),
        client: rt.client(crate::MANAGER),
        recorder: rt.recorder(COMPONENT),
        clock: rt.clock,
        scheduled: Mutex::new(HashMap::new()),
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.nodes.synced().await;
        ctl.pods.synced().await;
        let mut node_sub = ctl.nodes.subscribe();
        let mut pod_sub = ctl.pods.subscribe();
        let (c, q) = (ctl.clone(), queue.clone());
        rt2.spawn(async move {
            while let Some(n) = node_sub.recv().await {
                match n {
                    Notification::Changed(ch) => {
                        let before = ch.old.as_deref().map(no_execute).unwrap_or_default();
                        let after = ch.new.as_deref().map(no_execute).unwrap_or_default();
                        if before != after {
                            if let Some(name) = ch.object().metadata.name.as_deref() {
                                c.enqueue_node(&q, name);
                            }
                        }
                    }
                    Notification::Resync => c.enqueue_tainted(&q),
                }
            }
        });
        let (c, q) = (ctl.clone(), queue.clone());
        rt2.spawn(async move {
            while let Some(n) = pod_sub.recv().await {
                match n {
                    Notification::Changed(ch) => {
                        let p = ch.object();
                        let key = key_of(&p.metadata);
                        let tainted = p
                            .node_name()
                            .and_then(|n| c.nodes.get(None, n))
                            .is_some_and(|n| !no_execute(&n).is_empty());
                        if tainted || c.scheduled.lock().contains_key(&key) {
                            q.add(key);
                        }
                    }
                    Notification::Resync => c.enqueue_tainted(&q),
                }
            }
        });
        ctl.enqueue_tainted(&queue);
        controller::run(ctl, queue, workers).await;
    });
}

impl Controller {
    fn enqueue_node(&self, q: &WorkQueue, node: &str) {
        for p in self.pods.on_node(node) {
            q.add(key_of(&p.metadata));
        }
    }

    fn enqueue_tainted(&self, q: &WorkQueue) {
        for n in self.nodes.list() {
            if !no_execute(&n).is_empty() {
                if let Some(name) = n.metadata.name.as_deref() {
                    self.enqueue_node(q, name);
                }
            }
        }
        for k in self.scheduled.lock().keys() {
            q.add(k.clone());
        }
    }

    fn cancel(&self, key: &str, pod: Option<&Pod>) {
        let was = self.scheduled.lock().remove(key).is_some();
        if let (true, Some(p)) = (was, pod) {
            self.recorder.normal(
                p,
                "TaintManagerEviction",
                format!("Cancelling deletion of Pod {key}"),
            );
        }
    }

    /// Marks the pod as a disruption target and deletes it.
    async fn evict(&self, key: &str, pod: &Pod) -> Result<(), ApiError> {
        self.scheduled.lock().remove(key);
        let ns = pod.metadata.namespace.as_deref();
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.recorder.normal(
            pod,
            "TaintManagerEviction",
            format!("Marking for deletion Pod {key}"),
        );
        let now = self.clock.now_k8s();
        let marked = self
            .client
            .modify_status::<Pod>(ns, name, |p| {
                if p.metadata.uid.as_deref() != Some(uid.as_str()) {
                    return false;
                }
                let st = p.status.get_or_insert_with(Default::default);
                let conds = st.conditions.get_or_insert_with(Vec::new);
                if conds
                    .iter()
                    .any(|c| c.type_ == "DisruptionTarget" && c.status == "True")
                {
                    return false;
                }
                conds.retain(|c| c.type_ != "DisruptionTarget");
                conds.push(PodCondition {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                    reason: Some(REASON.into()),
                    message: Some(MESSAGE.into()),
                    last_transition_time: Some(now.clone()),
                    last_probe_time: None,
                });
                true
            })
            .await;
        match marked {
            Ok(_) => {}
            Err(e) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        }
        let opts = DeleteOptions {
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

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        "taint-eviction-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(pod) = self.pods.get_key(key) else {
            self.cancel(key, None);
            return Ok(Action::Done);
        };
        if pod.metadata.deletion_timestamp.is_some() {
            self.scheduled.lock().remove(key);
            return Ok(Action::Done);
        }
        let Some(node) = pod.node_name().and_then(|n| self.nodes.get(None, n)) else {
            self.cancel(key, Some(&pod));
            return Ok(Action::Done);
        };
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match decide(&no_execute(&node), &tolerations) {
            Decision::Keep => {
                self.cancel(key, Some(&pod));
                Ok(Action::Done)
            }
            Decision::EvictNow => {
                self.evict(key, &pod).await?;
                Ok(Action::Done)
            }
            Decision::EvictAfter(d) => {
                let now = self.clock.now();
                let since = {
                    let mut s = self.scheduled.lock();
                    let e = s.entry(key.to_string()).or_insert((uid.clone(), now));
                    if e.0 != uid {
                        *e = (uid, now);
                    }
                    e.1
                };
                let at = since + jiff::SignedDuration::try_from(d).unwrap_or_default();
                if at <= now {
                    self.evict(key, &pod).await?;
                    return Ok(Action::Done);
                }
                Ok(Action::RequeueAfter(self.clock.until(at)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(k: &str, e: &str) -> Taint {
        Taint {
            key: k.into(),
            effect: e.into(),
            value: None,
            time_added: None,
        }
    }

    fn tol(k: &str, e: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(k.into()),
            operator: Some("Exists".into()),
            effect: Some(e.into()),
            toleration_seconds: secs,
            value: None,
        }
    }

    const UNREACH: &str = "node.kubernetes.io/unreachable";
    const NOT_READY: &str = "node.kubernetes.io/not-ready";

    #[test]
    fn no_noexecute_taint_keeps_the_pod() {
        assert_eq!(decide(&[], &[]), Decision::Keep);
        assert_eq!(
            decide(&[taint("dedicated", "NoSchedule")], &[]),
            Decision::Keep
        );
    }

    #[test]
    fn an_intolerated_taint_evicts_at_once() {
        assert_eq!(
            decide(&[taint("dedicated", "NoExecute")], &[]),
            Decision::EvictNow
        );
        // Tolerating one taint is not enough when another is not tolerated.
        assert_eq!(
            decide(
                &[taint(UNREACH, "NoExecute"), taint("x", "NoExecute")],
                &[tol(UNREACH, "NoExecute", Some(300))]
            ),
            Decision::EvictNow
        );
        // A NoSchedule toleration does not tolerate a NoExecute taint.
        assert_eq!(
            decide(&[taint("x", "NoExecute")], &[tol("x", "NoSchedule", None)]),
            Decision::EvictNow
        );
    }

    #[test]
    fn toleration_seconds_delay_the_eviction_by_the_smallest() {
        // DefaultTolerationSeconds' pair: 300 s on an unreachable node.
        let defaults = [
            tol(NOT_READY, "NoExecute", Some(300)),
            tol(UNREACH, "NoExecute", Some(300)),
        ];
        assert_eq!(
            decide(&[taint(UNREACH, "NoExecute")], &defaults),
            Decision::EvictAfter(Duration::from_secs(300))
        );
        assert_eq!(
            decide(
                &[taint(UNREACH, "NoExecute"), taint(NOT_READY, "NoExecute")],
                &[
                    tol(NOT_READY, "NoExecute", Some(30)),
                    tol(UNREACH, "NoExecute", Some(300))
                ]
            ),
            Decision::EvictAfter(Duration::from_secs(30))
        );
        assert_eq!(
            decide(
                &[taint(UNREACH, "NoExecute")],
                &[tol(UNREACH, "NoExecute", Some(0))]
            ),
            Decision::EvictNow
        );
    }

    #[test]
    fn tolerations_without_seconds_keep_the_pod_for_good() {
        // What the DaemonSet controller adds.
        assert_eq!(
            decide(
                &[taint(UNREACH, "NoExecute")],
                &[tol(UNREACH, "NoExecute", None)]
            ),
            Decision::Keep
        );
        // An empty key with Exists tolerates everything.
        let all = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert_eq!(decide(&[taint("x", "NoExecute")], &[all]), Decision::Keep);
    }
}

/// The taint eviction controller against an in-process API server on tokio's paused clock.
/// Writes are awaited by busy-polling so that paused time moves only by the test's own sleeps
/// (see `nodelifecycle::paused`).
#[cfg(test)]
mod paused {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::{Event, Node, Pod};
    use serde_json::json;
    use skiff_runtime::Runtime;

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

    #[tokio::test(start_paused = true)]
    async fn a_taint_removed_in_time_cancels_the_eviction() {
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
        let nodes = rt.cache.synced::<Node>().await;
        let events = rt.cache.synced::<Event>().await;
        let n: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
        client.create(&n).await.unwrap();
        for (name, secs) in [("patient", 60), ("hasty", 10)] {
            let p: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}],
                         "tolerations": [{"key": "maintenance", "operator": "Exists",
                                          "effect": "NoExecute", "tolerationSeconds": secs}]}
            }))
            .unwrap();
            client.create(&p).await.unwrap();
        }
        until("cached", || pods.len() == 2 && nodes.len() == 1).await;
        super::start(&rt, &crate::Options::default());

        let taint = json!({"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}});
        client
            .merge_patch::<Node>(None, "n1", &taint)
            .await
            .unwrap();
        let gone = |n: &str| {
            pods.get(Some("default"), n)
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
        };
        let messages = || -> Vec<String> {
            events
                .list()
                .iter()
                .filter(|e| e.reason.as_deref() == Some("TaintManagerEviction"))
                .filter_map(|e| e.message.clone())
                .collect()
        };
        // 10 s: the hasty pod goes; the patient one stays.
        tokio::time::sleep(Duration::from_secs(15)).await;
        until("hasty evicted", || gone("hasty")).await;
        assert!(!gone("patient"));
        // The taint goes at 30 s: the patient pod's eviction is cancelled.
        tokio::time::sleep(Duration::from_secs(15)).await;
        // Awaiting the write would let paused time jump to the pending eviction: poll instead.
        let c = client.clone();
        let write = tokio::spawn(async move {
            c.merge_patch::<Node>(None, "n1", &json!({"spec": {"taints": null}}))
                .await
                .unwrap();
        });
        until("taint removed", || write.is_finished()).await;
        until("cancel event", || {
            messages().contains(&"Cancelling deletion of Pod default/patient".to_string())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(!gone("patient"));
        assert!(messages().contains(&"Marking for deletion Pod default/hasty".to_string()));
        assert!(!messages().contains(&"Marking for deletion Pod default/patient".to_string()));
    }
}
