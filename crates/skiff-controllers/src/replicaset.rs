//! The ReplicaSet controller (and the ReplicationController controller, the same loop over
//! the older kind), after upstream's `pkg/controller/replicaset`.
//!
//! For each ReplicaSet: claim pods (adopt orphans that match the selector, release owned pods
//! that no longer match), create or delete pods until the active ones number `replicas`
//! (slow-start batches of 1, 2, 4, … up to 500 a sync; surplus pods deleted in
//! [`crate::pods::deletion_order`]), then write status counts (replicas, fullyLabeled, ready,
//! available after minReadySeconds, observedGeneration) and the ReplicaFailure condition when
//! creates fail.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    Pod, PodTemplateSpec, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use skiff_core::ApiError;
use skiff_runtime::cache::{key_of, split_key};
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::events::Recorder;
use skiff_runtime::{selector, Client, Clock, Informer, Object, Runtime, WorkQueue};

use crate::podcontrol;
use crate::pods::{self, controller_of, deletion_order};

/// Most pods created or deleted in one sync (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// The status counts both kinds share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub fully_labeled: i32,
    pub ready: i32,
    pub available: i32,
    pub observed_generation: i64,
    /// The ReplicaFailure condition's message, when creating or deleting failed.
    pub failure: Option<(String, String)>,
}

/// What the loop needs of a ReplicaSet or a ReplicationController.
pub trait Replicated: Object {
    const COMPONENT: &'static str;
    fn replicas(&self) -> i32;
    /// Whether the selector selects `labels` (a missing selector selects nothing).
    fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn min_ready_seconds(&self) -> i32;
    fn counts(&self) -> Counts;
    fn set_counts(&mut self, c: &Counts, clock: &Clock);
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.spec.as_ref().is_some_and(|s| {
            !selector::is_empty(&s.selector) && selector::matches(&s.selector, labels)
        })
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn counts(&self) -> Counts {
        let s = self.status.clone().unwrap_or_default();
        Counts {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            failure: s
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
                .map(|c| {
                    (
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default(),
                    )
                }),
        }
    }
    fn set_counts(&mut self, c: &Counts, clock: &Clock) {
        let old = self.status.take().unwrap_or_default();
        let mut conditions: Vec<ReplicaSetCondition> = old
            .conditions
            .unwrap_or_default()
            .into_iter()
            .filter(|x| x.type_ != "ReplicaFailure")
            .collect();
        if let Some((reason, message)) = &c.failure {
            conditions.push(ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.clone()),
                message: Some(message.clone()),
                last_transition_time: Some(clock.now_k8s()),
            });
        }
        self.status = Some(ReplicaSetStatus {
            replicas: c.replicas,
            fully_labeled_replicas: Some(c.fully_labeled),
            ready_replicas: Some(c.ready),
            available_replicas: Some(c.available),
            observed_generation: Some(c.observed_generation),
            conditions: (!conditions.is_empty()).then_some(conditions),
        });
    }
}

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        // An RC without a selector selects its template's labels (defaulted by the server).
        self.spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_some_and(|sel| !sel.is_empty() && selector::matches_map(sel, labels))
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn counts(&self) -> Counts {
        let s = self.status.clone().unwrap_or_default();
        Counts {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            failure: s
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
                .map(|c| {
                    (
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default(),
                    )
                }),
        }
    }
    fn set_counts(&mut self, c: &Counts, clock: &Clock) {
        let old = self.status.take().unwrap_or_default();
        let mut conditions: Vec<ReplicationControllerCondition> = old
            .conditions
            .unwrap_or_default()
            .into_iter()
            .filter(|x| x.type_ != "ReplicaFailure")
            .collect();
        if let Some((reason, message)) = &c.failure {
            conditions.push(ReplicationControllerCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.clone()),
                message: Some(message.clone()),
                last_transition_time: Some(clock.now_k8s()),
            });
        }
        self.status = Some(ReplicationControllerStatus {
            replicas: c.replicas,
            fully_labeled_replicas: Some(c.fully_labeled),
            ready_replicas: Some(c.ready),
            available_replicas: Some(c.available),
            observed_generation: Some(c.observed_generation),
            conditions: (!conditions.is_empty()).then_some(conditions),
        });
    }
}

/// The loop for one kind.
pub struct Controller<R: Replicated> {
    owners: Informer<R>,
    pods: Informer<Pod>,
    client: Client,
    recorder: Recorder,
    clock: Clock,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    spawn::<ReplicaSet>(rt, opts);
    spawn::<ReplicationController>(rt, opts);
}

fn spawn<R: Replicated>(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller::<R> {
        owners: rt.cache.informer::<R>(),
        pods: rt.cache.informer::<Pod>(),
        client: rt.client(crate::MANAGER),
        recorder: rt.recorder(R::COMPONENT),
        clock: rt.clock,
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.owners.synced().await;
        ctl.pods.synced().await;
        watch_owners(&rt2, ctl.clone(), queue.clone());
        watch_pods(&rt2, ctl.clone(), queue.clone());
        for o in ctl.owners.list() {
            queue.add(key_of(o.metadata()));
        }
        controller::run(ctl, queue, workers).await;
    });
}

fn enqueue_all<R: Replicated>(ctl: &Controller<R>, queue: &WorkQueue) {
    for o in ctl.owners.list() {
        queue.add(key_of(o.metadata()));
    }
}

fn watch_owners<R: Replicated>(rt: &Runtime, ctl: Arc<Controller<R>>, queue: WorkQueue) {
    let q = queue.clone();
    let owners = ctl.owners.clone();
    owners.for_each_change(
        &rt.tasks,
        move |ch| q.add(key_of(ch.object().metadata())),
        move || enqueue_all(&ctl, &queue),
    );
}

fn watch_pods<R: Replicated>(rt: &Runtime, ctl: Arc<Controller<R>>, queue: WorkQueue) {
    let (c, q) = (ctl.clone(), queue.clone());
    let pods = ctl.pods.clone();
    pods.for_each_change(
        &rt.tasks,
        move |ch| {
            for p in [&ch.old, &ch.new].into_iter().flatten() {
                let ns = p.metadata.namespace.as_deref();
                match controller_of(&p.metadata) {
                    Some(r) if r.kind == R::KIND => {
                        queue.add(skiff_runtime::cache::key(ns, &r.name));
                    }
                    Some(_) => {}
                    // An orphan: any owner whose selector matches may adopt it.
                    None if p.metadata.deletion_timestamp.is_none() => {
                        for o in ctl.owners.list_namespace(ns.unwrap_or("")) {
                            if o.selects(p.metadata.labels.as_ref()) {
                                queue.add(key_of(o.metadata()));
                            }
                        }
                    }
                    None => {}
                }
            }
        },
        move || enqueue_all(&c, &q),
    );
}

/// Slow-start batch sizes for creating `n` pods: 1, 2, 4, … (upstream's `slowStartBatch`).
pub fn slow_start_batches(n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut left, mut size) = (n, 1usize);
    while left > 0 {
        let b = size.min(left);
        out.push(b);
        left -= b;
        size *= 2;
    }
    out
}

/// The status counts of `owner` over its active pods at `now`.
pub fn count<R: Replicated>(owner: &R, active: &[Arc<Pod>], now: jiff::Timestamp) -> Counts {
    let template_labels = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let min_ready = owner.min_ready_seconds();
    let mut c = Counts {
        replicas: active.len() as i32,
        observed_generation: owner.metadata().generation.unwrap_or(0),
        ..Default::default()
    };
    for p in active {
        let labels = p.metadata.labels.as_ref();
        if template_labels
            .into_iter()
            .flatten()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        {
            c.fully_labeled += 1;
        }
        let (ready, available) = pods::readiness(p, min_ready, now);
        c.ready += i32::from(ready);
        c.available += i32::from(available);
    }
    c
}

impl<R: Replicated> Controller<R> {
    /// Adopts matching orphans and releases owned pods that no longer match; returns the
    /// pods this owner controls afterwards.
    async fn claim(&self, owner: &R, all: Vec<Arc<Pod>>) -> Result<Vec<Arc<Pod>>, ApiError> {
        let uid = owner.metadata().uid.clone().unwrap_or_default();
        let deleting = owner.metadata().deletion_timestamp.is_some();
        let mut mine = Vec::new();
        for p in all {
            let matches = owner.selects(p.metadata.labels.as_ref());
            match controller_of(&p.metadata) {
                Some(r) if r.uid == uid => {
                    if matches || deleting {
                        mine.push(p);
                    } else {
                        self.release(&p, &uid).await?;
                    }
                }
                Some(_) => {}
                None => {
                    if matches && !deleting && p.metadata.deletion_timestamp.is_none() {
                        if let Some(adopted) = self.adopt(owner, &p).await? {
                            mine.push(Arc::new(adopted));
                        }
                    }
                }
            }
        }
        Ok(mine)
    }

    async fn adopt(&self, owner: &R, pod: &Pod) -> Result<Option<Pod>, ApiError> {
        let ns = pod.metadata.namespace.as_deref();
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let want_uid = pod.metadata.uid.clone();
        let r = pods::controller_ref(owner);
        let result = self
            .client
            .modify::<Pod>(ns, name, |p| {
                if p.metadata.uid != want_uid || controller_of(&p.metadata).is_some() {
                    return false;
                }
                p.metadata
                    .owner_references
                    .get_or_insert_with(Vec::new)
                    .push(r.clone());
                true
            })
            .await;
        match result {
            Ok(p)
                if controller_of(&p.metadata)
                    .is_some_and(|c| Some(&c.uid) == owner.metadata().uid.as_ref()) =>
            {
                Ok(Some(p))
            }
            Ok(_) => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, pod: &Pod, uid: &str) -> Result<(), ApiError> {
        let ns = pod.metadata.namespace.as_deref();
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let result = self
            .client
            .modify::<Pod>(ns, name, |p| {
                let Some(refs) = p.metadata.owner_references.as_mut() else {
                    return false;
                };
                let before = refs.len();
                refs.retain(|r: &OwnerReference| r.uid != uid);
                refs.len() != before
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates `n` pods in slow-start batches; returns the newest revision written and the
    /// first error.
    async fn create_pods(&self, owner: &R, n: usize) -> (i64, Option<ApiError>) {
        let Some(template) = owner.template() else {
            return (0, Some(ApiError::internal("no pod template")));
        };
        let prefix = format!("{}-", owner.metadata().name.as_deref().unwrap_or(""));
        let pod = pods::pod_from_template(template, owner, &prefix);
        let ns = pod.metadata.namespace.clone();
        // Every pod is the same JSON (the server names each): encoded once, copied by the
        // server for each create.
        let body = match serde_json::to_value(&pod) {
            Ok(v) => v,
            Err(e) => return (0, Some(ApiError::internal(format!("encoding a pod: {e}")))),
        };
        let mut newest = 0;
        for batch in slow_start_batches(n) {
            let results = futures::future::join_all(
                (0..batch).map(|_| self.client.create_value::<Pod>(ns.as_deref(), &body)),
            )
            .await;
            let mut failed = None;
            for r in results {
                podcontrol::record_create(&self.recorder, owner, r, &mut newest, &mut failed);
            }
            if failed.is_some() {
                return (newest, failed);
            }
        }
        (newest, None)
    }

    async fn delete_pods(&self, owner: &R, victims: &[Arc<Pod>]) -> (i64, Option<ApiError>) {
        podcontrol::delete_pods(&self.client, &self.recorder, owner, victims).await
    }
}

#[async_trait::async_trait]
impl<R: Replicated> Reconciler for Controller<R> {
    fn name(&self) -> &'static str {
        R::COMPONENT
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(owner) = self.owners.get_key(key) else {
            return Ok(Action::Done);
        };
        let (ns, _) = split_key(key);
        let uid = owner.metadata().uid.clone().unwrap_or_default();
        // The pods this owner controls and the orphans of its namespace it may adopt; pods of
        // other controllers are none of its business (a ReplicaSet of a big namespace looks at
        // its own pods only).
        let mut candidates = self.pods.owned_by(&uid);
        candidates.extend(self.pods.orphans_in(ns.unwrap_or("")));
        let mine = self.claim(&owner, candidates).await?;
        let mut active: Vec<Arc<Pod>> = mine.into_iter().filter(|p| pods::is_active(p)).collect();

        let mut failure = None;
        let mut newest = 0;
        if owner.metadata().deletion_timestamp.is_none() {
            let want = owner.replicas().max(0) as usize;
            if active.len() < want {
                let n = (want - active.len()).min(BURST_REPLICAS);
                let (rev, err) = self.create_pods(&owner, n).await;
                newest = rev;
                if let Some(e) = err {
                    failure = Some(("FailedCreate".to_string(), e.message.clone()));
                }
            } else if active.len() > want {
                let n = (active.len() - want).min(BURST_REPLICAS);
                let mut colocated: HashMap<String, usize> = HashMap::new();
                for p in &active {
                    if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                        *colocated.entry(node).or_default() += 1;
                    }
                }
                let mut ranked = active.clone();
                ranked.sort_by(|a, b| deletion_order(a, b, &colocated));
                let (rev, err) = self.delete_pods(&owner, &ranked[..n]).await;
                newest = rev;
                if let Some(e) = err {
                    failure = Some(("FailedDelete".to_string(), e.message.clone()));
                }
            }
        }
        // Read our own writes before counting, so the next sync sees what this one did;
        // without writes, the pods just claimed are the ones to count.
        if newest > 0 {
            self.pods
                .wait_for_revision_timeout(newest, Duration::from_secs(5))
                .await;
            active = self
                .pods
                .owned_by(&uid)
                .into_iter()
                .filter(|p| pods::is_active(p))
                .collect();
        }
        let now = self.clock.now();
        let mut counts = count(owner.as_ref(), &active, now);
        counts.failure = failure.clone();
        if counts != owner.counts() {
            let name = owner.metadata().name.clone().unwrap_or_default();
            let clock = self.clock;
            let result = self
                .client
                .modify_status::<R>(ns, &name, |o| {
                    if o.metadata().uid.as_deref() != Some(uid.as_str()) {
                        return false;
                    }
                    o.set_counts(&counts, &clock);
                    true
                })
                .await;
            match result {
                Ok(_) => {}
                Err(e) if e.code == 404 => return Ok(Action::Done),
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = failure {
            return Err(ApiError::internal(e.1));
        }
        // Look again when a ready pod becomes available.
        Ok(
            match pods::next_available(&active, owner.min_ready_seconds(), &self.clock) {
                Some(d) => Action::RequeueAfter(d),
                None => Action::Done,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::{pod, ts};

    #[test]
    fn slow_start_doubles() {
        assert_eq!(slow_start_batches(0), Vec::<usize>::new());
        assert_eq!(slow_start_batches(1), vec![1]);
        assert_eq!(slow_start_batches(10), vec![1, 2, 4, 3]);
    }

    #[test]
    fn counts_ready_and_available_after_min_ready_seconds() {
        let mut rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "rs", "generation": 3},
            "spec": {"replicas": 3, "minReadySeconds": 10,
                      "selector": {"matchLabels": {"app": "a"}},
                      "template": {"metadata": {"labels": {"app": "a", "tier": "x"}}}}
        }))
        .unwrap();
        let mut a = pod(
            "a",
            "n",
            "Running",
            Some("2026-01-01T00:00:00Z"),
            "2026-01-01T00:00:00Z",
        );
        a.metadata.labels = Some(
            [
                ("app".to_string(), "a".to_string()),
                ("tier".to_string(), "x".to_string()),
            ]
            .into(),
        );
        let b = pod(
            "b",
            "n",
            "Running",
            Some("2026-01-01T00:00:08Z"),
            "2026-01-01T00:00:00Z",
        );
        let c = pod("c", "n", "Pending", None, "2026-01-01T00:00:00Z");
        let active: Vec<Arc<Pod>> = vec![Arc::new(a), Arc::new(b), Arc::new(c)];
        let counts = count(&rs, &active, ts("2026-01-01T00:00:12Z"));
        assert_eq!(
            counts,
            Counts {
                replicas: 3,
                fully_labeled: 1,
                ready: 2,
                available: 1,
                observed_generation: 3,
                failure: None
            }
        );
        let clock = Clock::starting_at(ts("2026-01-01T00:00:12Z"));
        rs.set_counts(
            &Counts {
                failure: Some(("FailedCreate".into(), "quota".into())),
                ..counts.clone()
            },
            &clock,
        );
        let st = rs.status.as_ref().unwrap();
        assert_eq!(st.available_replicas, Some(1));
        assert_eq!(st.conditions.as_ref().unwrap()[0].type_, "ReplicaFailure");
        assert_eq!(rs.counts().failure.unwrap().1, "quota");
    }

    #[test]
    fn empty_selector_selects_nothing() {
        let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "rs"}, "spec": {"selector": {}}
        }))
        .unwrap();
        assert!(!rs.selects(Some(&[("a".to_string(), "b".to_string())].into())));
    }
}
