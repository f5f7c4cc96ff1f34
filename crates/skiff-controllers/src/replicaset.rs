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

use jiff::Timestamp;
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

mod memo;

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
    /// The selector, made ready for matching (a missing or empty selector selects nothing).
    fn selector(&self) -> selector::Matcher<'_>;
    /// Whether the selector selects `labels`.
    fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.selector().matches(labels)
    }
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
    fn selector(&self) -> selector::Matcher<'_> {
        match &self.spec {
            Some(s) if !selector::is_empty(&s.selector) => selector::Matcher::new(&s.selector),
            _ => selector::Matcher::nothing(),
        }
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
    fn selector(&self) -> selector::Matcher<'_> {
        // An RC without a selector selects its template's labels (defaulted by the server).
        match self.spec.as_ref().and_then(|s| s.selector.as_ref()) {
            Some(sel) if !sel.is_empty() => selector::Matcher::from_map(sel),
            _ => selector::Matcher::nothing(),
        }
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
    memos: Arc<memo::Memos>,
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
        memos: Arc::default(),
    });
    // Marks each changed pod in its controller's memo as the cache applies the change, so
    // that a sync reading the cache finds every change since its memo was made marked.
    let memos = ctl.memos.clone();
    ctl.pods.on_apply(move |old, new| {
        for p in [old, new].into_iter().flatten() {
            if let Some(r) = controller_of(&p.metadata).filter(|r| r.kind == R::KIND) {
                let ns = p.metadata.namespace.as_deref();
                let name = p.metadata.name.as_deref().unwrap_or("");
                memos.mark(&r.uid, &skiff_runtime::cache::key(ns, name));
            }
        }
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
    let c = ctl.clone();
    owners.for_each_change(
        &rt.tasks,
        move |ch| {
            if ch.new.is_none() {
                if let Some(uid) = ch.object().metadata().uid.as_deref() {
                    c.memos.forget(uid);
                }
            }
            q.add(key_of(ch.object().metadata()))
        },
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

/// What a sync reads of its owner once, to go over the owner's pods with: the selector and
/// the template's labels made ready for matching, and what availability is judged by.
///
/// A ReplicaSet of 10,000 pods goes over them on every sync, and a rollout syncs it about a
/// hundred times: the walk borrows each pod from the informer, matches it against the
/// prepared selector, and reads its activity and Ready condition once, keeping (cloning) only
/// the pods to release or adopt.
pub(crate) struct Look<'a> {
    deleting: bool,
    selector: selector::Matcher<'a>,
    /// The template's labels: a pod carrying all of them is fully labeled.
    template_labels: selector::Matcher<'a>,
    /// Whether a pod the selector matches carries the template's labels (the selector
    /// requires them all, as a Deployment's ReplicaSets' does): one match tells both.
    selected_is_full: bool,
    min_ready: i32,
    now: Timestamp,
}

/// The status counts of the active pods an owner controls, gathered one pod at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub active: usize,
    pub fully_labeled: i32,
    pub ready: i32,
    pub available: i32,
    /// When the first ready pod that is not yet available becomes available.
    pub next_available: Option<Timestamp>,
}

/// What one walk over an owner's pods and its namespace's orphans found: the counts of the
/// active pods it keeps, the pods it controls that it must let go (their labels no longer
/// match), and the orphans it may adopt.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub tally: Tally,
    pub release: Vec<Arc<Pod>>,
    pub adopt: Vec<Arc<Pod>>,
}

impl<'a> Look<'a> {
    pub(crate) fn new<R: Replicated>(owner: &'a R, now: Timestamp) -> Self {
        let template_labels = owner
            .template()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.as_ref());
        let selector = owner.selector();
        let template_labels =
            template_labels.map_or_else(selector::Matcher::everything, selector::Matcher::from_map);
        Look {
            deleting: owner.metadata().deletion_timestamp.is_some(),
            selected_is_full: selector.implies(&template_labels),
            selector,
            template_labels,
            min_ready: owner.min_ready_seconds(),
            now,
        }
    }

    /// Whether the owner keeps a pod it controls: while its selector matches the pod, or
    /// whatever the pod's labels while the owner is being deleted.
    pub(crate) fn keeps(&self, pod: &Pod) -> bool {
        self.deleting || self.selector.matches(pod.metadata.labels.as_ref())
    }

    /// Sorts a pod the owner controls: counted if kept, to release if not.
    /// With `judged`, each counted pod's contribution is also gathered there for a memo.
    pub(crate) fn owned(&self, pod: &Arc<Pod>, walk: &mut Walk, judged: Option<&mut memo::Judged>) {
        if self.deleting {
            self.count(pod, &mut walk.tally);
        } else if self.selector.matches(pod.metadata.labels.as_ref()) {
            let (bits, next) = self.judge(pod, true);
            walk.tally.add(bits, next);
            if let Some(j) = judged {
                j.add(pod, bits);
            }
        } else {
            walk.release.push(pod.clone());
        }
    }

    /// Sorts a pod without a controller: to adopt if the selector matches it, it is not being
    /// deleted, and neither is the owner.
    pub(crate) fn orphan(&self, pod: &Arc<Pod>, walk: &mut Walk) {
        if !self.deleting
            && pod.metadata.deletion_timestamp.is_none()
            && self.selector.matches(pod.metadata.labels.as_ref())
        {
            walk.adopt.push(pod.clone());
        }
    }

    /// Adds a pod to the counts, if it is active.
    pub(crate) fn count(&self, pod: &Pod, t: &mut Tally) {
        self.count_selected(pod, false, t);
    }

    /// As [`Look::count`], for a pod known to match the selector when `selected`.
    fn count_selected(&self, pod: &Pod, selected: bool, t: &mut Tally) {
        let (bits, next) = self.judge(pod, selected);
        t.add(bits, next);
    }

    /// What a pod adds to the counts (bits of [`memo`]), and when it becomes available if it
    /// is ready but not yet available; `selected` when the pod is known to match the selector.
    fn judge(&self, pod: &Pod, selected: bool) -> (u8, Option<Timestamp>) {
        if !pods::is_active(pod) {
            return (0, None);
        }
        let mut bits = memo::ACTIVE;
        if (selected && self.selected_is_full)
            || self.template_labels.matches(pod.metadata.labels.as_ref())
        {
            bits |= memo::FULLY_LABELED;
        }
        // Ready, and available once ready for minReadySeconds (as `pods::readiness` and
        // `pods::available_at` judge, from one look at the condition).
        let mut next = None;
        if let Some((true, since)) = pods::ready_condition(pod) {
            bits |= memo::READY;
            if self.min_ready <= 0 {
                bits |= memo::AVAILABLE;
            } else if let Some(since) = since {
                let at = since + jiff::SignedDuration::from_secs(i64::from(self.min_ready));
                if at <= self.now {
                    bits |= memo::AVAILABLE;
                } else {
                    next = Some(at);
                }
            }
        }
        (bits, next)
    }

    /// The status counts of `tally` (without a failure).
    pub(crate) fn counts<R: Replicated>(owner: &R, tally: &Tally) -> Counts {
        Counts {
            replicas: tally.active as i32,
            fully_labeled: tally.fully_labeled,
            ready: tally.ready,
            available: tally.available,
            observed_generation: owner.metadata().generation.unwrap_or(0),
            failure: None,
        }
    }
}

impl<R: Replicated> Controller<R> {
    /// Releases the pods `walk` found no longer matching and adopts the orphans it found
    /// matching; counts the adopted pods into `walk.tally` and returns them.
    async fn claim(
        &self,
        owner: &R,
        uid: &str,
        look: &Look<'_>,
        walk: &mut Walk,
    ) -> Result<Vec<Arc<Pod>>, ApiError> {
        for p in std::mem::take(&mut walk.release) {
            self.release(&p, uid).await?;
        }
        let mut adopted = Vec::new();
        for p in std::mem::take(&mut walk.adopt) {
            if let Some(p) = self.adopt(owner, &p).await? {
                look.count(&p, &mut walk.tally);
                adopted.push(Arc::new(p));
            }
        }
        Ok(adopted)
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
        // The pods this owner controls and the orphans of its namespace it may adopt, borrowed
        // from the informer's indexes in one walk; pods of other controllers are none of its
        // business (a ReplicaSet of a big namespace looks at its own pods only).
        let mut look = Look::new(owner.as_ref(), self.clock.now());
        let mut walk = Walk::default();
        // The counts from the memo when it serves (the pods changed since the last sync judged
        // again); otherwise a walk over every pod, which starts a new memo when one can serve.
        let generation = owner.metadata().generation.unwrap_or(0);
        let memo_serves = memo::serves(&look);
        let remembered = |look: &Look<'_>| {
            memo_serves
                .then(|| {
                    self.memos
                        .tally(&uid, generation, look, |k| self.pods.get_key(k))
                })
                .flatten()
        };
        if let Some(tally) = remembered(&look) {
            walk.tally = tally;
        } else if memo_serves {
            self.memos.begin(&uid, generation);
            let mut judged = memo::Judged::default();
            self.pods
                .for_each_owned_by(&uid, |p| look.owned(p, &mut walk, Some(&mut judged)));
            // A pod to release leaves the memo incomplete: the next sync walks again.
            if walk.release.is_empty() {
                self.memos.finish(&uid, generation, judged);
            }
        } else {
            self.pods
                .for_each_owned_by(&uid, |p| look.owned(p, &mut walk, None));
        }
        if !look.deleting {
            self.pods
                .for_each_orphan_in(ns.unwrap_or(""), |p| look.orphan(p, &mut walk));
        }
        let adopted = self.claim(&owner, &uid, &look, &mut walk).await?;
        let active = walk.tally.active;

        let mut failure = None;
        let mut newest = 0;
        if !look.deleting {
            let want = owner.replicas().max(0) as usize;
            if active < want {
                let n = (want - active).min(BURST_REPLICAS);
                let (rev, err) = self.create_pods(&owner, n).await;
                newest = rev;
                if let Some(e) = err {
                    failure = Some(("FailedCreate".to_string(), e.message.clone()));
                }
            } else if active > want {
                // The active pods kept, gathered only now that some are to go (most syncs
                // delete nothing): the ones it controlled, then the ones it just adopted (which
                // may be in the index by now), in that order, so that of pods the ranking
                // cannot tell apart the adopted ones stay.
                let just_adopted =
                    |p: &Pod| adopted.iter().any(|a| a.metadata.uid == p.metadata.uid);
                let mut active: Vec<Arc<Pod>> = Vec::new();
                self.pods.for_each_owned_by(&uid, |p| {
                    if look.keeps(p) && pods::is_active(p) && !just_adopted(p) {
                        active.push(p.clone());
                    }
                });
                active.extend(adopted.iter().filter(|a| pods::is_active(a)).cloned());
                let n = active.len().saturating_sub(want).min(BURST_REPLICAS);
                let mut colocated: HashMap<String, usize> = HashMap::new();
                for p in &active {
                    if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                        *colocated.entry(node).or_default() += 1;
                    }
                }
                let mut ranked = active;
                ranked.sort_by(|a, b| deletion_order(a, b, &colocated));
                if n > 0 {
                    let (rev, err) = self.delete_pods(&owner, &ranked[..n]).await;
                    newest = rev;
                    if let Some(e) = err {
                        failure = Some(("FailedDelete".to_string(), e.message.clone()));
                    }
                }
            }
        }
        // Read our own writes before counting, so the next sync sees what this one did;
        // without writes, the pods just claimed are the ones counted.
        let mut tally = walk.tally;
        if newest > 0 {
            self.pods
                .wait_for_revision_timeout(newest, Duration::from_secs(5))
                .await;
            look.now = self.clock.now();
            tally = remembered(&look).unwrap_or_else(|| {
                let mut t = Tally::default();
                self.pods.for_each_owned_by(&uid, |p| look.count(p, &mut t));
                t
            });
        }
        let mut counts = Look::counts(owner.as_ref(), &tally);
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
        Ok(match tally.next_available {
            Some(t) => Action::RequeueAfter(self.clock.until(t) + Duration::from_millis(10)),
            None => Action::Done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::{pod, ts};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use skiff_runtime::cache::controller_uid;

    /// The status counts of `owner` over `active`, by the plain rules: every pod's labels
    /// looked up one by one, its readiness read with `pods::readiness`.
    fn count<R: Replicated>(owner: &R, active: &[Arc<Pod>], now: Timestamp) -> Counts {
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

    /// What a sync finds, by the plain rules over every pod of the namespace: names released,
    /// names adopted, names of the active pods kept, their counts and the first time one
    /// becomes available.
    type Found = (
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Counts,
        Option<Timestamp>,
    );

    fn name(p: &Pod) -> String {
        p.metadata.name.clone().unwrap_or_default()
    }

    /// `pod` as adopting gives it back: with a controller reference to `rs`.
    fn adopted(rs: &ReplicaSet, pod: &Pod) -> Pod {
        let mut p = pod.clone();
        p.metadata
            .owner_references
            .get_or_insert_with(Vec::new)
            .push(pods::controller_ref(rs));
        p
    }

    fn by_the_rules(rs: &ReplicaSet, all: &[Arc<Pod>], now: Timestamp) -> Found {
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        let deleting = rs.metadata.deletion_timestamp.is_some();
        let sel = &rs.spec.as_ref().unwrap().selector;
        let (mut mine, mut released, mut adopts) = (Vec::new(), Vec::new(), Vec::new());
        for p in all {
            let matches =
                !selector::is_empty(sel) && selector::matches(sel, p.metadata.labels.as_ref());
            match controller_of(&p.metadata) {
                Some(r) if r.uid == uid => {
                    if matches || deleting {
                        mine.push(p.clone());
                    } else {
                        released.push(name(p));
                    }
                }
                Some(_) => {}
                None => {
                    if matches && !deleting && p.metadata.deletion_timestamp.is_none() {
                        adopts.push(name(p));
                        mine.push(Arc::new(adopted(rs, p)));
                    }
                }
            }
        }
        let active: Vec<Arc<Pod>> = mine.into_iter().filter(|p| pods::is_active(p)).collect();
        let next = active
            .iter()
            .filter_map(|p| pods::available_at(p, rs.min_ready_seconds(), now))
            .min();
        let mut kept: Vec<String> = active.iter().map(|p| name(p)).collect();
        let (mut r, mut a) = (released, adopts);
        r.sort();
        a.sort();
        kept.sort();
        (r, a, kept, count(rs, &active, now), next)
    }

    /// The same by the one walk a sync makes: the pods split as the informer's indexes hold
    /// them (by controller uid, orphans), the orphans to adopt adopted.
    fn by_the_walk(rs: &ReplicaSet, all: &[Arc<Pod>], now: Timestamp) -> Found {
        let uid = rs.metadata.uid.as_deref().unwrap_or_default();
        let look = Look::new(rs, now);
        let mut walk = Walk::default();
        for p in all {
            match controller_uid(&p.metadata) {
                Some(u) if u == uid => look.owned(p, &mut walk, None),
                Some(_) => {}
                None if !look.deleting => look.orphan(p, &mut walk),
                None => {}
            }
        }
        let mut kept: Vec<String> = all
            .iter()
            .filter(|p| controller_uid(&p.metadata) == Some(uid))
            .filter(|p| look.keeps(p) && pods::is_active(p))
            .map(|p| name(p))
            .collect();
        for p in &walk.adopt {
            let p = adopted(rs, p);
            look.count(&p, &mut walk.tally);
            if pods::is_active(&p) {
                kept.push(name(&p));
            }
        }
        let mut r: Vec<String> = walk.release.iter().map(|p| name(p)).collect();
        let mut a: Vec<String> = walk.adopt.iter().map(|p| name(p)).collect();
        r.sort();
        a.sort();
        kept.sort();
        assert_eq!(walk.tally.active, kept.len());
        let counts = Look::counts(rs, &walk.tally);
        (r, a, kept, counts, walk.tally.next_available)
    }

    /// A mix of pods a ReplicaSet meets: its own, matching or not, active or not, ready,
    /// available or not; orphans matching or not or being deleted; another controller's.
    fn mix(rs: &ReplicaSet) -> Vec<Arc<Pod>> {
        let t0 = "2026-01-01T00:00:00Z";
        let labels = |pairs: &[(&str, &str)]| -> Option<BTreeMap<String, String>> {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let full = labels(&[("app", "a"), ("tier", "x")]);
        let part = labels(&[("app", "a")]);
        let other = labels(&[("app", "b"), ("tier", "x")]);
        let mine = Some(vec![pods::controller_ref(rs)]);
        let theirs = Some(vec![OwnerReference {
            uid: "other".into(),
            controller: Some(true),
            ..pods::controller_ref(rs)
        }]);
        // Our uid, but not as controller: an orphan still.
        let not_controller = Some(vec![OwnerReference {
            controller: Some(false),
            ..pods::controller_ref(rs)
        }]);
        let gone = Some(Time(ts("2026-01-01T00:00:05Z")));
        #[allow(clippy::type_complexity)]
        let specs: Vec<(
            &str,
            &str,
            Option<&str>,
            &Option<BTreeMap<String, String>>,
            &Option<Vec<OwnerReference>>,
            bool,
        )> = vec![
            // name, phase, ready since, labels, owners, being deleted
            ("own-available", "Running", Some(t0), &full, &mine, false),
            (
                "own-ready-recent",
                "Running",
                Some("2026-01-01T00:00:08Z"),
                &full,
                &mine,
                false,
            ),
            (
                "own-ready-later",
                "Running",
                Some("2026-01-01T00:00:11Z"),
                &part,
                &mine,
                false,
            ),
            ("own-pending", "Pending", None, &full, &mine, false),
            ("own-part-labels", "Running", Some(t0), &part, &mine, false),
            ("own-no-match", "Running", Some(t0), &other, &mine, false),
            ("own-no-labels", "Running", None, &None, &mine, false),
            ("own-succeeded", "Succeeded", Some(t0), &full, &mine, false),
            ("own-failed-no-match", "Failed", None, &other, &mine, false),
            ("own-deleting", "Running", Some(t0), &full, &mine, true),
            ("orphan-match", "Running", Some(t0), &full, &None, false),
            ("orphan-match-pending", "Pending", None, &part, &None, false),
            ("orphan-deleting", "Running", Some(t0), &full, &None, true),
            ("orphan-no-match", "Running", Some(t0), &other, &None, false),
            (
                "orphan-not-controller",
                "Running",
                Some("2026-01-01T00:00:09Z"),
                &full,
                &not_controller,
                false,
            ),
            ("theirs-match", "Running", Some(t0), &full, &theirs, false),
        ];
        let mut out = Vec::new();
        for (n, phase, since, labels, owners, deleting) in specs {
            let mut p = pod(n, "n", phase, since, t0);
            p.metadata.labels = labels.clone();
            p.metadata.owner_references = owners.clone();
            p.metadata.uid = Some(format!("uid-{n}"));
            if deleting {
                p.metadata.deletion_timestamp = gone.clone();
            }
            out.push(Arc::new(p));
        }
        // A Ready condition without a transition time, and one that is False.
        let mut p = pod("own-ready-no-time", "n", "Running", Some(t0), t0);
        p.metadata.labels = full.clone();
        p.metadata.owner_references = mine.clone();
        p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time = None;
        out.push(Arc::new(p));
        let mut p = pod("own-not-ready", "n", "Running", Some(t0), t0);
        p.metadata.labels = full.clone();
        p.metadata.owner_references = mine.clone();
        p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
        out.push(Arc::new(p));
        out
    }

    fn rs(selector: serde_json::Value, min_ready: i32, deleting: bool) -> ReplicaSet {
        let mut rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "rs", "namespace": "ns", "uid": "rs-uid", "generation": 2},
            "spec": {"replicas": 3, "minReadySeconds": min_ready, "selector": selector,
                      "template": {"metadata": {"labels": {"app": "a", "tier": "x"}}}}
        }))
        .unwrap();
        if deleting {
            rs.metadata.deletion_timestamp = Some(Time(ts("2026-01-01T00:00:01Z")));
        }
        rs
    }

    /// The one walk a sync makes finds what the plain rules find (released, adopted, kept,
    /// counts, next availability), for selectors of both forms, with and without
    /// minReadySeconds, and for an owner being deleted.
    #[test]
    fn walk_finds_what_the_rules_find() {
        let now = ts("2026-01-01T00:00:10Z");
        let selectors = [
            serde_json::json!({"matchLabels": {"app": "a"}}),
            serde_json::json!({"matchLabels": {"app": "a", "tier": "x"}}),
            serde_json::json!({"matchExpressions": [
                {"key": "app", "operator": "In", "values": ["a", "c"]},
                {"key": "canary", "operator": "DoesNotExist"}]}),
            serde_json::json!({}),
        ];
        let mut seen_release = false;
        let mut seen_adopt = false;
        for sel in &selectors {
            for min_ready in [0, 5] {
                for deleting in [false, true] {
                    let owner = rs(sel.clone(), min_ready, deleting);
                    let all = mix(&owner);
                    let want = by_the_rules(&owner, &all, now);
                    let got = by_the_walk(&owner, &all, now);
                    assert_eq!(got, want, "{sel} minReady {min_ready} deleting {deleting}");
                    seen_release |= !want.0.is_empty();
                    seen_adopt |= !want.1.is_empty();
                    if min_ready > 0 && !deleting && sel == &selectors[0] {
                        // The mix has what it is meant to have.
                        assert_eq!(
                            want.0,
                            ["own-failed-no-match", "own-no-labels", "own-no-match"]
                        );
                        assert_eq!(
                            want.1,
                            [
                                "orphan-match",
                                "orphan-match-pending",
                                "orphan-not-controller"
                            ]
                        );
                        assert_eq!(
                            (want.3.replicas, want.3.fully_labeled, want.3.ready),
                            (10, 7, 7)
                        );
                        assert_eq!(want.3.available, 3);
                        assert_eq!(want.4, Some(ts("2026-01-01T00:00:13Z")));
                    }
                }
            }
        }
        assert!(seen_release && seen_adopt);
    }

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
