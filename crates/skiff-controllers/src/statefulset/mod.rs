//! The StatefulSet controller, after upstream's `pkg/controller/statefulset`.
//!
//! For each StatefulSet: find or create the ControllerRevision of its template (the update
//! revision; the current revision is the one `status.currentRevision` names), claim its pods
//! (matching the selector and named `<set>-<ordinal>`), keep their claims' owner references
//! in line with the persistentVolumeClaimRetentionPolicy, then take the steps
//! [`plan::plan`] decides: create pods (claims first, `<template>-<set>-<ordinal>`, created
//! at the current revision below a RollingUpdate partition and at the update revision
//! otherwise), delete finished pods, scale down, replace old pods. Then prune revisions
//! beyond revisionHistoryLimit that no pod uses and write status (replicas, readyReplicas,
//! availableReplicas, currentReplicas, updatedReplicas, currentRevision, updateRevision,
//! collisionCount, observedGeneration) so `kubectl rollout status|history|undo sts/x` work.
//! Events as upstream words them: `create Pod web-0 in StatefulSet web successful`,
//! `create Claim www-web-0 Pod web-0 in StatefulSet web success`, and their failures.

pub mod identity;
#[cfg(test)]
mod paused;
pub mod plan;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use skiff_core::ApiError;
use skiff_runtime::cache::{key, key_of, split_key, Notification};
use skiff_runtime::client::revision_of;
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::events::Recorder;
use skiff_runtime::{selector, Client, Clock, Informer, Runtime, WorkQueue};

use crate::daemonset::claim_pods;
use crate::daemonset::plan::scaled_value;
use crate::history::{self, History, Stored, HASH_LABEL};
use crate::pods::{self, controller_of};
use crate::replicaset::slow_start_batches;
use plan::{At, Step, Strategy, Why};

/// The event source of this controller.
pub const COMPONENT: &str = "statefulset-controller";

fn selects(set: &StatefulSet, labels: Option<&BTreeMap<String, String>>) -> bool {
    set.spec
        .as_ref()
        .is_some_and(|s| !selector::is_empty(&s.selector) && selector::matches(&s.selector, labels))
}

/// The StatefulSet loop.
pub struct Controller {
    sets: Informer<StatefulSet>,
    pods: Informer<Pod>,
    claims: Informer<PersistentVolumeClaim>,
    history: History,
    client: Client,
    recorder: Recorder,
    clock: Clock,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let client = rt.client(crate::MANAGER);
    let ctl = Arc::new(Controller {
        sets: rt.cache.informer::<StatefulSet>(),
        pods: rt.cache.informer::<Pod>(),
        claims: rt.cache.informer::<PersistentVolumeClaim>(),
        history: History {
            client: client.clone(),
            revisions: rt.cache.informer::<ControllerRevision>(),
        },
        client,
        recorder: rt.recorder(COMPONENT),
        clock: rt.clock,
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.sets.synced().await;
        ctl.pods.synced().await;
        ctl.claims.synced().await;
        ctl.history.revisions.synced().await;
        watch(&rt2, ctl.clone(), queue.clone());
        enqueue_all(&ctl, &queue);
        controller::run(ctl, queue, workers).await;
    });
}

fn enqueue_all(ctl: &Controller, queue: &WorkQueue) {
    for s in ctl.sets.list() {
        queue.add(key_of(&s.metadata));
    }
}

/// Queues the sets of a namespace whose selector matches `labels`.
fn enqueue_matching(
    ctl: &Controller,
    queue: &WorkQueue,
    ns: Option<&str>,
    labels: Option<&BTreeMap<String, String>>,
) {
    for s in ctl.sets.list_namespace(ns.unwrap_or("")) {
        if selects(&s, labels) {
            queue.add(key_of(&s.metadata));
        }
    }
}

fn watch(rt: &Runtime, ctl: Arc<Controller>, queue: WorkQueue) {
    let mut sets = ctl.sets.subscribe();
    let q = queue.clone();
    rt.spawn(async move {
        while let Some(n) = sets.recv().await {
            if let Notification::Changed(c) = n {
                q.add(key_of(&c.object().metadata));
            }
        }
    });
    let mut pods = ctl.pods.subscribe();
    let (c2, q) = (ctl.clone(), queue.clone());
    rt.spawn(async move {
        while let Some(n) = pods.recv().await {
            let c = match n {
                Notification::Changed(c) => c,
                Notification::Resync => {
                    enqueue_all(&c2, &q);
                    continue;
                }
            };
            for p in [&c.old, &c.new].into_iter().flatten() {
                let ns = p.metadata.namespace.as_deref();
                match controller_of(&p.metadata) {
                    Some(r) if r.kind == "StatefulSet" => q.add(key(ns, &r.name)),
                    Some(_) => {}
                    None => enqueue_matching(&c2, &q, ns, p.metadata.labels.as_ref()),
                }
            }
        }
    });
    // Claims carry the selector's labels: a claim going away may unblock a pod.
    let mut claims = ctl.claims.subscribe();
    let (c2, q) = (ctl.clone(), queue.clone());
    rt.spawn(async move {
        while let Some(n) = claims.recv().await {
            match n {
                Notification::Changed(c) => {
                    let o = c.object();
                    enqueue_matching(
                        &c2,
                        &q,
                        o.metadata.namespace.as_deref(),
                        o.metadata.labels.as_ref(),
                    );
                }
                Notification::Resync => enqueue_all(&c2, &q),
            }
        }
    });
    let mut revs = ctl.history.revisions.subscribe();
    let (c2, q) = (ctl, queue);
    rt.spawn(async move {
        while let Some(n) = revs.recv().await {
            match n {
                Notification::Changed(c) => {
                    let r = c.object();
                    if let Some(o) = controller_of(&r.metadata).filter(|o| o.kind == "StatefulSet")
                    {
                        q.add(key(r.metadata.namespace.as_deref(), &o.name));
                    }
                }
                Notification::Resync => enqueue_all(&c2, &q),
            }
        }
    });
}

/// The template a revision restores (its data's `spec.template` without `$patch`).
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

impl Controller {
    /// Upstream's `getStatefulSetRevisions`: the current and update revisions, all revisions
    /// and the collision count.
    async fn revisions(
        &self,
        set: &StatefulSet,
    ) -> Result<
        (
            Arc<ControllerRevision>,
            Arc<ControllerRevision>,
            Vec<Arc<ControllerRevision>>,
            i32,
        ),
        ApiError,
    > {
        let mut revs = self.history.claim(set, |l| selects(set, l)).await?;
        history::sort_by_revision(&mut revs);
        let template = set
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let patch = history::template_patch(&template);
        let next = revs.last().map_or(1, |r| r.revision + 1);
        let mut collisions = set
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let equal: Vec<&Arc<ControllerRevision>> = revs
            .iter()
            .filter(|r| history::data_matches(r, &patch))
            .collect();
        let update = match equal.last() {
            Some(e)
                if Some(e.metadata.name.as_ref())
                    == revs.last().map(|r| r.metadata.name.as_ref()) =>
            {
                (*e).clone()
            }
            Some(e) => Arc::new(self.history.renumber(e, next).await?),
            None => {
                let mut tries = 0;
                loop {
                    let bytes = history::patch_bytes(&patch);
                    let hash = history::hash(&bytes, Some(collisions));
                    let mut labels = template
                        .metadata
                        .as_ref()
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    labels.insert(HASH_LABEL.into(), hash.clone());
                    let name =
                        history::revision_name(set.metadata.name.as_deref().unwrap_or(""), &hash);
                    let rev = history::new_revision(set, name, labels, patch.clone(), next);
                    match self.history.create(&rev).await? {
                        Stored::Done(r) => break Arc::new(*r),
                        Stored::Collision => {
                            collisions += 1;
                            tries += 1;
                            if tries > 10 {
                                return Err(ApiError::internal(
                                    "too many revision hash collisions",
                                ));
                            }
                        }
                    }
                }
            }
        };
        // Read it again: renumbering or creating changed the list.
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let mut all = self.history.revisions.owned_by(&uid);
        if !all.iter().any(|r| r.metadata.name == update.metadata.name) {
            all.push(update.clone());
        }
        history::sort_by_revision(&mut all);
        let current_name = set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.clone())
            .unwrap_or_default();
        let current = all
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(current_name.as_str()))
            .cloned()
            .unwrap_or_else(|| update.clone());
        Ok((current, update, all, collisions))
    }

    /// The set's pods by ordinal (claimed: selector and name).
    fn pods_by_ordinal(&self, set: &StatefulSet) -> BTreeMap<i32, Arc<Pod>> {
        let uid = set.metadata.uid.clone().unwrap_or_default();
        self.pods
            .owned_by(&uid)
            .into_iter()
            .filter_map(|p| identity::ordinal_of(set, &p).map(|o| (o, p)))
            .collect()
    }

    /// Makes the claims of `ordinal` exist (created with the owners the policy asks for).
    async fn create_claims(&self, set: &StatefulSet, ordinal: i32) -> Result<i64, ApiError> {
        let ns = set.metadata.namespace.clone();
        let pod_name = identity::pod_name(set, ordinal);
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let mut newest = 0;
        for (_, mut claim) in identity::claims(set, ordinal) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            if self.claims.get(ns.as_deref(), &name).is_some() {
                continue;
            }
            if let Some(refs) = identity::claim_owner_refs(&claim, set, None, false) {
                claim.metadata.owner_references = Some(refs).filter(|r| !r.is_empty());
            }
            match self.client.create(&claim).await {
                Ok(c) => {
                    newest = newest.max(revision_of(&c));
                    self.recorder.normal(
                        set,
                        "SuccessfulCreate",
                        format!(
                            "create Claim {name} Pod {pod_name} in StatefulSet {set_name} success"
                        ),
                    );
                }
                Err(e) if e.code == 409 => {}
                Err(e) => {
                    self.recorder.warning(
                        set,
                        "FailedCreate",
                        format!(
                            "create Claim {name} for Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                            e.message
                        ),
                    );
                    return Err(e);
                }
            }
        }
        Ok(newest)
    }

    /// Creates the pod of `ordinal` (claims first).
    async fn create_pod(
        &self,
        set: &StatefulSet,
        template: &PodTemplateSpec,
        revision: &str,
        ordinal: i32,
    ) -> Result<i64, ApiError> {
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let pod = identity::new_pod(set, template, ordinal, revision);
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let newest = match self.create_claims(set, ordinal).await {
            Ok(n) => n,
            Err(e) => {
                self.recorder.warning(
                    set,
                    "FailedCreate",
                    format!(
                        "create Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                        e.message
                    ),
                );
                return Err(e);
            }
        };
        if newest > 0 {
            self.claims
                .wait_for_revision_timeout(newest, Duration::from_secs(5))
                .await;
        }
        match self.client.create(&pod).await {
            Ok(p) => {
                self.recorder.normal(
                    set,
                    "SuccessfulCreate",
                    format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                );
                Ok(revision_of(&p))
            }
            Err(e) => {
                self.recorder.warning(
                    set,
                    "FailedCreate",
                    format!(
                        "create Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                        e.message
                    ),
                );
                Err(e)
            }
        }
    }

    async fn delete_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<i64, ApiError> {
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let res = self
            .client
            .delete_uid::<Pod>(
                pod.metadata.namespace.as_deref(),
                &name,
                pod.metadata.uid.as_deref().unwrap_or(""),
            )
            .await;
        match res {
            Ok(left) => {
                self.recorder.normal(
                    set,
                    "SuccessfulDelete",
                    format!("delete Pod {name} in StatefulSet {set_name} successful"),
                );
                Ok(left.map(|l| revision_of(&l)).unwrap_or(0))
            }
            Err(e) if e.code == 404 || e.code == 409 => Ok(0),
            Err(e) => {
                self.recorder.warning(
                    set,
                    "FailedDelete",
                    format!(
                        "delete Pod {name} in StatefulSet {set_name} failed error: {}",
                        e.message
                    ),
                );
                Err(e)
            }
        }
    }

    /// Keeps pod identity labels and claim ownership in line for existing pods; creates
    /// missing claims of pending pods in range.
    async fn fix_pods(
        &self,
        set: &StatefulSet,
        pods: &BTreeMap<i32, Arc<Pod>>,
    ) -> Result<i64, ApiError> {
        let ns = set.metadata.namespace.clone();
        let mut newest = 0;
        for (ord, p) in pods {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let pname = p.metadata.name.clone().unwrap_or_default();
            let puid = p.metadata.uid.clone().unwrap_or_default();
            let in_range = identity::in_range(set, *ord);
            if in_range {
                if let Some(patch) = identity::identity_patch(set, p, *ord) {
                    match self
                        .client
                        .merge_patch::<Pod>(ns.as_deref(), &pname, &patch)
                        .await
                    {
                        Ok(x) => newest = newest.max(revision_of(&x)),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                // Like upstream, missing claims are made again only for pods not yet
                // running (a running pod's volume is in use).
                if pods::phase(p) == "Pending" {
                    newest = newest.max(self.create_claims(set, *ord).await?);
                }
            }
            for (_, want) in identity::claims(set, *ord) {
                let cname = want.metadata.name.clone().unwrap_or_default();
                let Some(claim) = self.claims.get(ns.as_deref(), &cname) else {
                    continue;
                };
                if claim.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                // Nothing to change (or not ours to change): no write.
                if identity::claim_owner_refs(&claim, set, Some((&pname, &puid)), !in_range)
                    .is_none()
                {
                    continue;
                }
                let set2 = set.clone();
                let res = self
                    .client
                    .modify::<PersistentVolumeClaim>(ns.as_deref(), &cname, |c| {
                        // Recompute on the newest claim.
                        match identity::claim_owner_refs(c, &set2, Some((&pname, &puid)), !in_range)
                        {
                            Some(r) => {
                                c.metadata.owner_references = Some(r);
                                true
                            }
                            None => false,
                        }
                    })
                    .await;
                match res {
                    Ok(c) => newest = newest.max(revision_of(&c)),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(newest)
    }
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn reconcile(&self, k: &str) -> Result<Action, ApiError> {
        let Some(set) = self.sets.get_key(k) else {
            return Ok(Action::Done);
        };
        let (ns, name) = split_key(k);
        let Some(spec) = set.spec.as_ref() else {
            return Ok(Action::Done);
        };
        if selector::is_empty(&spec.selector) {
            return Ok(Action::Done);
        }
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let (current, update, all_revs, collisions) = self.revisions(&set).await?;
        let cur_name = current.metadata.name.clone().unwrap_or_default();
        let upd_name = update.metadata.name.clone().unwrap_or_default();

        let all = self.pods.list_namespace(ns.unwrap_or(""));
        claim_pods(&self.client, set.as_ref(), all, |p| {
            selects(&set, p.metadata.labels.as_ref()) && identity::ordinal_of(&set, p).is_some()
        })
        .await?;
        let mut pods_now = self.pods_by_ordinal(&set);
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let mut requeue = None;
        let mut first_err = None;

        if set.metadata.deletion_timestamp.is_none() {
            let newest = self.fix_pods(&set, &pods_now).await?;
            if newest > 0 {
                self.pods
                    .wait_for_revision_timeout(newest, Duration::from_secs(5))
                    .await;
                pods_now = self.pods_by_ordinal(&set);
            }
            let start = identity::start_ordinal(&set);
            let replicas = identity::replicas(&set);
            // Ordinals whose claims still belong to an earlier pod.
            let mut stale = HashSet::new();
            for ord in start..start + replicas {
                if pods_now.contains_key(&ord) {
                    continue;
                }
                let pname = identity::pod_name(&set, ord);
                let blocked = identity::claims(&set, ord).values().any(|c| {
                    let cname = c.metadata.name.as_deref().unwrap_or("");
                    self.claims
                        .get(ns, cname)
                        .is_some_and(|c| identity::claim_is_stale(&c, &pname, None))
                });
                if blocked {
                    stale.insert(ord);
                }
            }
            if !stale.is_empty() {
                requeue = Some(Duration::from_secs(1));
            }
            let rolling = spec
                .update_strategy
                .as_ref()
                .and_then(|u| u.type_.as_deref())
                .unwrap_or("RollingUpdate")
                == "RollingUpdate";
            let strategy = if rolling {
                let ru = spec
                    .update_strategy
                    .as_ref()
                    .and_then(|u| u.rolling_update.as_ref());
                let max_unavailable = match ru.and_then(|r| r.max_unavailable.as_ref()) {
                    Some(v) => Some(
                        scaled_value(Some(v), replicas, true)
                            .map_err(ApiError::internal)?
                            .max(1),
                    ),
                    None => None,
                };
                Strategy::RollingUpdate {
                    partition: ru.and_then(|r| r.partition).unwrap_or(0),
                    max_unavailable,
                }
            } else {
                Strategy::OnDelete
            };
            let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
            let steps = plan::plan(&plan::Input {
                start,
                replicas,
                monotonic,
                strategy,
                pods: &pods_now,
                stale_claims: &stale,
                update_revision: &upd_name,
                min_ready_seconds: min_ready,
                now: self.clock.now(),
            });
            let cur_template = template_of(&current).unwrap_or_else(|| spec.template.clone());
            let creates: Vec<(i32, At)> = steps
                .iter()
                .filter_map(|s| match s {
                    Step::Create { ordinal, at } => Some((*ordinal, *at)),
                    _ => None,
                })
                .collect();
            let mut newest = 0;
            // Creates (in slow-start batches when Parallel), then deletes.
            let mut rest = &creates[..];
            for batch in slow_start_batches(creates.len()) {
                let (now, later) = rest.split_at(batch);
                rest = later;
                let results = futures::future::join_all(now.iter().map(|(ord, at)| {
                    let (t, r) = match at {
                        At::Current => (&cur_template, cur_name.as_str()),
                        At::Update => (&spec.template, upd_name.as_str()),
                    };
                    self.create_pod(&set, t, r, *ord)
                }))
                .await;
                for r in results {
                    match r {
                        Ok(n) => newest = newest.max(n),
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                }
                if first_err.is_some() {
                    break;
                }
            }
            if first_err.is_none() {
                for s in &steps {
                    let Step::Delete { ordinal, why, .. } = s else {
                        continue;
                    };
                    let Some(p) = pods_now.get(ordinal) else {
                        continue;
                    };
                    if *why == Why::ScaleDown {
                        tracing::debug!(pod = ?p.metadata.name, "statefulset scale down");
                    }
                    match self.delete_pod(&set, p).await {
                        Ok(n) => newest = newest.max(n),
                        Err(e) => {
                            first_err = Some(e);
                            break;
                        }
                    }
                }
            }
            if newest > 0 {
                self.pods
                    .wait_for_revision_timeout(newest, Duration::from_secs(5))
                    .await;
            }
            pods_now = self.pods_by_ordinal(&set);

            // History: keep what pods use and the current and update revisions.
            let limit = spec.revision_history_limit.unwrap_or(10);
            let live: HashSet<String> = pods_now
                .values()
                .map(|p| plan::revision_of(p).to_string())
                .chain([cur_name.clone(), upd_name.clone()])
                .collect();
            let old: Vec<Arc<ControllerRevision>> = all_revs
                .iter()
                .filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or("")))
                .cloned()
                .collect();
            let prune = history::to_prune(&old, limit, |_| false);
            if !prune.is_empty() {
                self.history.delete(ns.unwrap_or(""), &prune).await?;
            }
        }

        // Status.
        let now = self.clock.now();
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let c = plan::counts(&pods_now, &cur_name, &upd_name, rolling, min_ready, now);
        let old = set.status.clone().unwrap_or_default();
        let want = StatefulSetStatus {
            available_replicas: Some(c.available),
            collision_count: (collisions > 0)
                .then_some(collisions)
                .or(old.collision_count),
            conditions: old.conditions.clone(),
            current_replicas: Some(c.current),
            current_revision: Some(c.current_revision.clone()),
            observed_generation: set.metadata.generation,
            ready_replicas: Some(c.ready),
            replicas: c.replicas,
            update_revision: Some(upd_name.clone()),
            updated_replicas: Some(c.updated),
        };
        if set.status.as_ref() != Some(&want) {
            let res = self
                .client
                .modify_status::<StatefulSet>(ns, name, |o| {
                    if o.metadata.uid.as_deref() != Some(uid.as_str()) {
                        return false;
                    }
                    let mut w = want.clone();
                    w.conditions = o.status.as_ref().and_then(|s| s.conditions.clone());
                    o.status = Some(w);
                    true
                })
                .await;
            match res {
                Ok(_) => {}
                Err(e) if e.code == 404 => return Ok(Action::Done),
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let next = pods::next_available(pods_now.values(), min_ready, &self.clock);
        Ok(match next.into_iter().chain(requeue).min() {
            Some(d) => Action::RequeueAfter(d),
            None => Action::Done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_gives_back_its_template() {
        let t: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}
        }))
        .unwrap();
        let rev = ControllerRevision {
            data: Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(
                history::template_patch(&t),
            )),
            metadata: Default::default(),
            revision: 1,
        };
        assert_eq!(template_of(&rev), Some(t));
        assert_eq!(template_of(&ControllerRevision::default()), None);
    }
}
