//! PodDisruptionBudget status (upstream's disruption controller): how many selected pods are
//! healthy, how many must stay healthy, and so how many voluntary disruptions (evictions) are
//! allowed now. The eviction subresource reads `disruptionsAllowed` and records evicted pods in
//! `disruptedPods`, which this controller expires after two minutes.
//!
//! The expected pod count comes from the pods themselves for an integer `minAvailable`, and
//! from the scale of the pods' controllers (Deployment through its ReplicaSet, ReplicaSet,
//! StatefulSet, ReplicationController) for a percentage or `maxUnavailable`, as upstream does;
//! a pod without a controller then makes the budget allow nothing (event `NoControllers`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_core::ApiError;
use skiff_runtime::cache::{key_of, split_key};
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::events::Recorder;
use skiff_runtime::{selector, Client, Clock, Informer, Runtime, WorkQueue};

use crate::pods;

/// How long an evicted pod is counted as disrupted before the controller forgets it.
pub const DISRUPTED_POD_TIMEOUT: Duration = Duration::from_secs(120);

/// `value` of `total`: an integer as is, a percentage of `total` rounded up (upstream's
/// `GetScaledValueFromIntOrPercent(…, true)`).
pub fn scaled(value: &IntOrString, total: i32) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok(((pct * total as i64) as f64 / 100.0).ceil() as i32)
        }
    }
}

/// The budget's numbers: (expected pods, desired healthy).
pub fn desired(
    pdb: &PodDisruptionBudget,
    pod_count: i32,
    controller_scale: Option<i32>,
) -> Result<(i32, i32), String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    match (&spec.min_available, &spec.max_unavailable) {
        (Some(IntOrString::Int(n)), _) => Ok((pod_count, *n)),
        (Some(pct @ IntOrString::String(_)), _) => {
            let expected = controller_scale.ok_or("found no controllers for pods")?;
            Ok((expected, scaled(pct, expected)?))
        }
        (None, Some(mu)) => {
            let expected = controller_scale.ok_or("found no controllers for pods")?;
            Ok((expected, (expected - scaled(mu, expected)?).max(0)))
        }
        (None, None) => Ok((pod_count, 0)),
    }
}

struct Controller {
    budgets: Informer<PodDisruptionBudget>,
    pods: Informer<Pod>,
    replicasets: Informer<ReplicaSet>,
    deployments: Informer<Deployment>,
    statefulsets: Informer<StatefulSet>,
    rcs: Informer<ReplicationController>,
    client: Client,
    recorder: Recorder,
    clock: Clock,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller {
        budgets: rt.cache.informer(),
        pods: rt.cache.informer(),
        replicasets: rt.cache.informer(),
        deployments: rt.cache.informer(),
        statefulsets: rt.cache.informer(),
        rcs: rt.cache.informer(),
        client: rt.client(crate::MANAGER),
        recorder: rt.recorder("controllermanager"),
        clock: rt.clock,
    });
    let queue = WorkQueue::new();
    let workers = opts.workers.min(2);
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.budgets.synced().await;
        ctl.pods.synced().await;
        let resync = |c: Arc<Controller>, q: WorkQueue| move || c.enqueue_all(&q);
        let q = queue.clone();
        ctl.budgets.for_each_change(
            &rt2.tasks,
            move |ch| q.add(key_of(&ch.object().metadata)),
            resync(ctl.clone(), queue.clone()),
        );
        let (c, q) = (ctl.clone(), queue.clone());
        ctl.pods.for_each_change(
            &rt2.tasks,
            move |ch| {
                for p in [&ch.old, &ch.new].into_iter().flatten() {
                    c.enqueue_for_pod(p, &q);
                }
            },
            resync(ctl.clone(), queue.clone()),
        );
        ctl.enqueue_all(&queue);
        controller::run(ctl, queue, workers).await;
    });
}

fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    // policy/v1: a missing selector selects nothing, an empty one every pod.
    pdb.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|sel| selector::matches(sel, pod.metadata.labels.as_ref()))
}

impl Controller {
    fn enqueue_all(&self, q: &WorkQueue) {
        for b in self.budgets.list() {
            q.add(key_of(&b.metadata));
        }
    }

    fn enqueue_for_pod(&self, pod: &Pod, q: &WorkQueue) {
        for b in self
            .budgets
            .list_namespace(pod.metadata.namespace.as_deref().unwrap_or(""))
        {
            if selects(&b, pod) {
                q.add(key_of(&b.metadata));
            }
        }
    }

    /// The summed scale of the controllers of `pods`; `None` if some pod has none.
    fn controller_scale(&self, ns: &str, pods: &[Arc<Pod>]) -> Option<i32> {
        let mut seen: HashMap<String, i32> = HashMap::new();
        for p in pods {
            let r = pods::controller_of(&p.metadata)?;
            if seen.contains_key(&r.uid) {
                continue;
            }
            let scale = match r.kind.as_str() {
                "ReplicaSet" => {
                    let rs = self.replicasets.get(Some(ns), &r.name)?;
                    // A ReplicaSet of a Deployment: the Deployment's scale counts.
                    match pods::controller_of(&rs.metadata).filter(|o| o.kind == "Deployment") {
                        Some(d) => {
                            if seen.contains_key(&d.uid) {
                                seen.insert(r.uid.clone(), 0);
                                continue;
                            }
                            let dep = self.deployments.get(Some(ns), &d.name)?;
                            let n = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                            seen.insert(d.uid.clone(), n);
                            0
                        }
                        None => rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    }
                }
                "StatefulSet" => self
                    .statefulsets
                    .get(Some(ns), &r.name)?
                    .spec
                    .as_ref()
                    .and_then(|s| s.replicas)
                    .unwrap_or(1),
                "ReplicationController" => self
                    .rcs
                    .get(Some(ns), &r.name)?
                    .spec
                    .as_ref()
                    .and_then(|s| s.replicas)
                    .unwrap_or(1),
                _ => return None,
            };
            seen.insert(r.uid.clone(), scale);
        }
        Some(seen.values().sum())
    }
}

/// The status a budget should have.
pub fn status(
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
    expected: i32,
    desired_healthy: i32,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let old = pdb.status.clone().unwrap_or_default();
    // Evicted pods stay counted as disrupted until they are gone or the entry expires.
    let mut disrupted: BTreeMap<String, Time> = BTreeMap::new();
    for (name, t) in old.disrupted_pods.clone().unwrap_or_default() {
        let live = pods.iter().any(|p| {
            p.metadata.name.as_deref() == Some(name.as_str())
                && p.metadata.deletion_timestamp.is_none()
        });
        let fresh =
            t.0 + jiff::SignedDuration::try_from(DISRUPTED_POD_TIMEOUT).unwrap_or_default() > now;
        if live && fresh {
            disrupted.insert(name, t);
        }
    }
    let healthy = pods
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && pods::is_ready(p)
                && !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or(""))
        })
        .count() as i32;
    let allowed = (healthy - desired_healthy).max(0);
    let (cstatus, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let generation = pdb.metadata.generation.unwrap_or(0);
    let prev = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed");
    let transition = match prev {
        Some(c) if c.status == cstatus => c.last_transition_time.clone(),
        _ => Time(now),
    };
    PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy,
        disruptions_allowed: allowed,
        expected_pods: expected,
        observed_generation: Some(generation),
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        conditions: Some(vec![Condition {
            type_: "DisruptionAllowed".into(),
            status: cstatus.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(generation),
            last_transition_time: transition,
        }]),
    }
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        "disruption-controller"
    }

    async fn reconcile(&self, k: &str) -> Result<Action, ApiError> {
        let (ns, name) = split_key(k);
        let Some(pdb) = self.budgets.get(ns, name) else {
            return Ok(Action::Done);
        };
        let ns = ns.unwrap_or("");
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| selects(&pdb, p) && !pods::is_terminal(p))
            .collect();
        let now = self.clock.now();
        let scale = self.controller_scale(ns, &pods);
        let st = match desired(&pdb, pods.len() as i32, scale) {
            Ok((expected, want)) => status(&pdb, &pods, expected, want, now),
            Err(msg) => {
                self.recorder.warning(pdb.as_ref(), "NoControllers", msg);
                // Allow nothing while the budget cannot be computed.
                let mut s = status(&pdb, &pods, 0, i32::MAX, now);
                s.desired_healthy = 0;
                s.disruptions_allowed = 0;
                s
            }
        };
        let same = pdb.status.as_ref().is_some_and(|cur| {
            cur.current_healthy == st.current_healthy
                && cur.desired_healthy == st.desired_healthy
                && cur.disruptions_allowed == st.disruptions_allowed
                && cur.expected_pods == st.expected_pods
                && cur.observed_generation == st.observed_generation
                && cur.disrupted_pods == st.disrupted_pods
        });
        if !same {
            let uid = pdb.metadata.uid.clone();
            let result = self
                .client
                .modify_status::<PodDisruptionBudget>(Some(ns), name, |b| {
                    if b.metadata.uid != uid {
                        return false;
                    }
                    b.status = Some(st.clone());
                    true
                })
                .await;
            match result {
                Ok(_) => {}
                Err(e) if e.code == 404 => return Ok(Action::Done),
                Err(e) => return Err(e),
            }
        }
        // Look again when a disrupted-pod entry expires.
        let next = st
            .disrupted_pods
            .iter()
            .flatten()
            .map(|(_, t)| {
                t.0 + jiff::SignedDuration::try_from(DISRUPTED_POD_TIMEOUT).unwrap_or_default()
            })
            .min();
        Ok(match next {
            Some(t) => Action::RequeueAfter(self.clock.until(t) + Duration::from_millis(10)),
            None => Action::Done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::{pod, ts};
    use serde_json::json;

    fn pdb(spec: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({"metadata": {"name": "b", "generation": 2}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn desired_healthy_from_min_available_and_max_unavailable() {
        assert_eq!(
            desired(&pdb(json!({"minAvailable": 2})), 3, None),
            Ok((3, 2))
        );
        assert_eq!(
            desired(&pdb(json!({"minAvailable": "50%"})), 3, Some(5)),
            Ok((5, 3))
        );
        assert_eq!(
            desired(&pdb(json!({"maxUnavailable": 1})), 3, Some(4)),
            Ok((4, 3))
        );
        assert_eq!(
            desired(&pdb(json!({"maxUnavailable": "30%"})), 3, Some(4)),
            Ok((4, 2))
        );
        assert!(desired(&pdb(json!({"maxUnavailable": 1})), 3, None).is_err());
        assert!(scaled(&IntOrString::String("x".into()), 4).is_err());
    }

    #[test]
    fn disruptions_allowed_counts_ready_pods_minus_disrupted_ones() {
        let now = ts("2026-01-01T00:10:00Z");
        let t = "2026-01-01T00:00:00Z";
        let pods: Vec<Arc<Pod>> = vec![
            Arc::new(pod("a", "n", "Running", Some(t), t)),
            Arc::new(pod("b", "n", "Running", Some(t), t)),
            Arc::new(pod("c", "n", "Running", Some(t), t)),
            Arc::new(pod("d", "n", "Running", None, t)),
        ];
        let mut b = pdb(json!({"minAvailable": 1}));
        b.status = Some(serde_json::from_value(json!({
            "currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0,
            "disruptedPods": {"a": "2026-01-01T00:09:30Z", "gone": "2026-01-01T00:09:30Z", "c": "2026-01-01T00:01:00Z"}
        })).unwrap());
        let st = status(&b, &pods, 4, 1, now);
        // a is still disrupted; c's entry expired; d is not ready.
        assert_eq!(st.current_healthy, 2);
        assert_eq!(st.disruptions_allowed, 1);
        assert_eq!(
            st.disrupted_pods
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(st.observed_generation, Some(2));
        assert_eq!(st.conditions.as_ref().unwrap()[0].reason, "SufficientPods");
        let st = status(&b, &pods, 4, 3, now);
        assert_eq!(st.disruptions_allowed, 0);
        assert_eq!(
            st.conditions.as_ref().unwrap()[0].reason,
            "InsufficientPods"
        );
    }
}
