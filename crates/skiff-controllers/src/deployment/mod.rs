//! The Deployment controller, after upstream's `pkg/controller/deployment`.
//!
//! For each Deployment, one level-triggered step (upstream's `syncDeployment`):
//! 1. claim ReplicaSets: adopt orphans its selector matches, release owned ones it no longer
//!    matches;
//! 2. being deleted: only refresh the status;
//! 3. show a pause or resume in the Progressing condition;
//! 4. paused, or `replicas` changed (a ReplicaSet's `desired-replicas` differs): scale only,
//!    proportionally when several ReplicaSets are active ([`rollout::scale`]);
//! 5. otherwise roll out: Recreate (old sets to 0, wait for their pods to be gone, then the
//!    new set) or RollingUpdate (grow the new set within maxSurge, shrink old ones within
//!    maxUnavailable), prune history once complete, and write the status with the
//!    Progressing condition ([`sync::rollout_status`]), looking again when the progress
//!    deadline would pass.
//!
//! The new ReplicaSet is `<name>-<pod-template-hash>` ([`revision`]); a hash that collides
//! with a foreign ReplicaSet bumps `status.collisionCount`. Scaling a ReplicaSet records
//! `ScalingReplicaSet` events with upstream's wording. The step math lives in [`rollout`]
//! and [`sync`], pure and unit-tested; this file only reads the cache and writes.
//!
//! One deviation in mechanism: upstream writes the Deployment's revision annotation through
//! the status subresource (its status strategy keeps metadata changes); Skiff's status
//! subresource keeps only `status`, so the annotation is written through the main resource.

#[cfg(test)]
mod paused;
pub mod revision;
pub mod rollout;
pub mod sync;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use skiff_core::ApiError;
use skiff_runtime::cache::{key, key_of, Notification};
use skiff_runtime::client::revision_of;
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::events::Recorder;
use skiff_runtime::{selector, Client, Clock, Informer, Runtime, WorkQueue};

use crate::pods::{controller_of, controller_ref};
use rollout::{replicas, size, ScalePlan};

/// Upstream's controller name, the source of its events.
pub const COMPONENT: &str = "deployment-controller";

pub struct Controller {
    deployments: Informer<Deployment>,
    sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    client: Client,
    recorder: Recorder,
    clock: Clock,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller {
        deployments: rt.cache.informer::<Deployment>(),
        sets: rt.cache.informer::<ReplicaSet>(),
        pods: rt.cache.informer::<Pod>(),
        client: rt.client(crate::MANAGER),
        recorder: rt.recorder(COMPONENT),
        clock: rt.clock,
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.deployments.synced().await;
        ctl.sets.synced().await;
        ctl.pods.synced().await;
        watch_deployments(&rt2, ctl.clone(), queue.clone());
        watch_sets(&rt2, ctl.clone(), queue.clone());
        watch_pods(&rt2, ctl.clone(), queue.clone());
        for d in ctl.deployments.list() {
            queue.add(key_of(&d.metadata));
        }
        controller::run(ctl, queue, workers).await;
    });
}

fn enqueue_all(ctl: &Controller, queue: &WorkQueue) {
    for d in ctl.deployments.list() {
        queue.add(key_of(&d.metadata));
    }
}

fn watch_deployments(rt: &Runtime, ctl: Arc<Controller>, queue: WorkQueue) {
    let mut sub = ctl.deployments.subscribe();
    rt.spawn(async move {
        while let Some(n) = sub.recv().await {
            match n {
                Notification::Changed(c) => queue.add(key_of(&c.object().metadata)),
                Notification::Resync => enqueue_all(&ctl, &queue),
            }
        }
    });
}

/// The Deployments that select `labels` in `ns`.
fn selecting(ctl: &Controller, ns: &str, labels: Option<&BTreeMap<String, String>>) -> Vec<String> {
    ctl.deployments
        .list_namespace(ns)
        .into_iter()
        .filter(|d| {
            d.spec.as_ref().is_some_and(|s| {
                !selector::is_empty(&s.selector) && selector::matches(&s.selector, labels)
            })
        })
        .map(|d| key_of(&d.metadata))
        .collect()
}

fn watch_sets(rt: &Runtime, ctl: Arc<Controller>, queue: WorkQueue) {
    let mut sub = ctl.sets.subscribe();
    rt.spawn(async move {
        while let Some(n) = sub.recv().await {
            let c = match n {
                Notification::Changed(c) => c,
                Notification::Resync => {
                    enqueue_all(&ctl, &queue);
                    continue;
                }
            };
            for rs in [&c.old, &c.new].into_iter().flatten() {
                let ns = rs.metadata.namespace.as_deref();
                match controller_of(&rs.metadata) {
                    Some(r) if r.kind == "Deployment" => queue.add(key(ns, &r.name)),
                    Some(_) => {}
                    None => {
                        for k in selecting(&ctl, ns.unwrap_or(""), rs.metadata.labels.as_ref()) {
                            queue.add(k);
                        }
                    }
                }
            }
        }
    });
}

/// The Deployment (key) that controls the ReplicaSet controlling `pod`, if any.
fn deployment_of_pod(ctl: &Controller, pod: &Pod) -> Option<(String, Arc<Deployment>)> {
    let ns = pod.metadata.namespace.as_deref();
    let r = controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet")?;
    let rs = ctl.sets.get(ns, &r.name)?;
    let dr = controller_of(&rs.metadata).filter(|r| r.kind == "Deployment")?;
    let d = ctl.deployments.get(ns, &dr.name)?;
    Some((key(ns, &dr.name), d))
}

/// Pods matter to a Recreate rollout only when they go away or finish: that is when the new
/// ReplicaSet may start (upstream's `deletePod`).
fn watch_pods(rt: &Runtime, ctl: Arc<Controller>, queue: WorkQueue) {
    let mut sub = ctl.pods.subscribe();
    rt.spawn(async move {
        while let Some(n) = sub.recv().await {
            let c = match n {
                Notification::Changed(c) => c,
                Notification::Resync => {
                    enqueue_all(&ctl, &queue);
                    continue;
                }
            };
            let relevant = match (&c.old, &c.new) {
                (Some(_), None) => true,
                (Some(o), Some(n)) => !crate::pods::is_terminal(o) && crate::pods::is_terminal(n),
                _ => false,
            };
            if !relevant {
                continue;
            }
            if let Some((k, d)) = deployment_of_pod(&ctl, c.object()) {
                if rollout::is_recreate(&d) {
                    queue.add(k);
                }
            }
        }
    });
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(d) = self.deployments.get_key(key) else {
            return Ok(Action::Done);
        };
        let Some(spec) = d.spec.as_ref() else {
            return Ok(Action::Done);
        };
        let now = self.clock.now_k8s().0;
        let mut step = Step {
            ctl: self,
            d: (*d).clone(),
            sets: Vec::new(),
            now,
            newest_rs: 0,
            newest_d: 0,
        };
        if selector::is_empty(&spec.selector) {
            self.recorder.warning(
                d.as_ref(),
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            );
            let mut s = d.status.clone().unwrap_or_default();
            if s.observed_generation < d.metadata.generation {
                s.observed_generation = d.metadata.generation;
                step.write_status(s).await?;
            }
            return Ok(Action::Done);
        }
        step.sets = self.claim(&d).await?;
        let result = step.run().await;
        step.settle().await;
        result
    }
}

impl Controller {
    /// Adopts orphan ReplicaSets the selector matches and releases owned ones it no longer
    /// matches (upstream's ReplicaSet ControllerRefManager); returns the owned ones.
    async fn claim(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, ApiError> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let sel = &d.spec.as_ref().expect("checked").selector;
        let deleting = d.metadata.deletion_timestamp.is_some();
        let mut mine = Vec::new();
        for rs in self.sets.list_namespace(&ns) {
            let matches = selector::matches(sel, rs.metadata.labels.as_ref());
            let name = rs.metadata.name.clone().unwrap_or_default();
            match controller_of(&rs.metadata) {
                Some(r) if r.uid == uid => {
                    if matches {
                        mine.push((*rs).clone());
                    } else if !deleting {
                        self.release(&ns, &name, &uid).await?;
                    }
                }
                Some(_) => {}
                None => {
                    if matches && !deleting && rs.metadata.deletion_timestamp.is_none() {
                        if let Some(adopted) = self.adopt(d, &rs).await? {
                            mine.push(adopted);
                        }
                    }
                }
            }
        }
        Ok(mine)
    }

    async fn adopt(&self, d: &Deployment, rs: &ReplicaSet) -> Result<Option<ReplicaSet>, ApiError> {
        let ns = rs.metadata.namespace.as_deref();
        let name = rs.metadata.name.as_deref().unwrap_or("");
        let rs_uid = rs.metadata.uid.clone();
        let owner = controller_ref(d);
        let result = self
            .client
            .modify::<ReplicaSet>(ns, name, |o| {
                if o.metadata.uid != rs_uid || controller_of(&o.metadata).is_some() {
                    return false;
                }
                o.metadata
                    .owner_references
                    .get_or_insert_with(Vec::new)
                    .push(owner.clone());
                true
            })
            .await;
        match result {
            Ok(o)
                if controller_of(&o.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref()) =>
            {
                Ok(Some(o))
            }
            Ok(_) => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, ns: &str, name: &str, uid: &str) -> Result<(), ApiError> {
        let result = self
            .client
            .modify::<ReplicaSet>(Some(ns), name, |o| {
                let Some(refs) = o.metadata.owner_references.as_mut() else {
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
}

/// One sync of one Deployment: the Deployment and its ReplicaSets as this sync last wrote
/// or read them.
struct Step<'a> {
    ctl: &'a Controller,
    d: Deployment,
    sets: Vec<ReplicaSet>,
    now: Timestamp,
    /// Newest revisions written, to read our own writes before the next sync.
    newest_rs: i64,
    newest_d: i64,
}

fn name_of(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

impl Step<'_> {
    fn ns(&self) -> Option<String> {
        self.d.metadata.namespace.clone()
    }

    async fn run(&mut self) -> Result<Action, ApiError> {
        if self.d.metadata.deletion_timestamp.is_some() {
            let new = self.new_rs(false).await?;
            self.sync_status(new).await?;
            return Ok(Action::Done);
        }
        if let Some(s) = sync::paused_condition(&self.d, self.now) {
            self.write_status(s).await?;
        }
        if rollout::is_paused(&self.d) {
            return self.scale_only().await;
        }
        let new = self.new_rs(false).await?;
        let olds = self.old_sets(new.as_ref());
        let mut active: Vec<ReplicaSet> = olds;
        active.extend(new);
        if rollout::is_scaling_event(&self.d, &active) {
            return self.scale_only().await;
        }
        if rollout::is_recreate(&self.d) {
            self.recreate().await
        } else {
            self.rolling().await
        }
    }

    /// Waits (briefly) until the cache holds what this sync wrote.
    async fn settle(&self) {
        if self.newest_rs > 0 {
            self.ctl
                .sets
                .wait_for_revision_timeout(self.newest_rs, Duration::from_secs(5))
                .await;
        }
        if self.newest_d > 0 {
            self.ctl
                .deployments
                .wait_for_revision_timeout(self.newest_d, Duration::from_secs(5))
                .await;
        }
    }

    fn old_sets(&self, new: Option<&ReplicaSet>) -> Vec<ReplicaSet> {
        let new_uid = new.and_then(|n| n.metadata.uid.clone());
        self.sets
            .iter()
            .filter(|rs| new_uid.is_none() || rs.metadata.uid != new_uid)
            .cloned()
            .collect()
    }

    fn find(&self, name: &str) -> Option<&ReplicaSet> {
        self.sets.iter().find(|r| name_of(r) == name)
    }

    fn remember(&mut self, rs: ReplicaSet) {
        self.newest_rs = self.newest_rs.max(revision_of(&rs));
        match self
            .sets
            .iter_mut()
            .find(|r| r.metadata.uid == rs.metadata.uid)
        {
            Some(slot) => *slot = rs,
            None => self.sets.push(rs),
        }
    }

    /// Writes `status` if it differs from the Deployment's.
    async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), ApiError> {
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut next = self.d.clone();
        next.status = Some(status);
        let stored = self.ctl.client.update_status(&next).await?;
        self.newest_d = self.newest_d.max(revision_of(&stored));
        self.d = stored;
        Ok(())
    }

    /// Sets the Deployment's revision annotation.
    async fn set_revision(&mut self, rev: &str) -> Result<(), ApiError> {
        let has = self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(revision::REVISION));
        if has.map(String::as_str) == Some(rev) {
            return Ok(());
        }
        let uid = self.d.metadata.uid.clone();
        let name = self.d.metadata.name.clone().unwrap_or_default();
        let ns = self.ns();
        let stored = self
            .ctl
            .client
            .modify::<Deployment>(ns.as_deref(), &name, |o| {
                if o.metadata.uid != uid {
                    return false;
                }
                let a = o.metadata.annotations.get_or_insert_with(BTreeMap::new);
                if a.get(revision::REVISION).map(String::as_str) == Some(rev) {
                    return false;
                }
                a.insert(revision::REVISION.to_string(), rev.to_string());
                true
            })
            .await?;
        if stored.metadata.uid != uid {
            return Err(ApiError::internal(format!(
                "deployment {name} was replaced"
            )));
        }
        self.newest_d = self.newest_d.max(revision_of(&stored));
        // Keep the status this sync works from (it wrote it, or it is what is stored).
        self.d = stored;
        Ok(())
    }

    /// Upstream's `getNewReplicaSet`: finds the ReplicaSet of the current template (bringing
    /// its revision and annotations up to date) or, with `create`, makes it.
    async fn new_rs(&mut self, create: bool) -> Result<Option<ReplicaSet>, ApiError> {
        let existing = rollout::find_new(&self.d, &self.sets).cloned();
        let olds = self.old_sets(existing.as_ref());
        let new_revision = revision::max_revision(olds.iter()) + 1;
        let r = replicas(&self.d);
        let surge = rollout::max_surge(&self.d);
        let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        let annotations = self.d.metadata.annotations.clone();
        if let Some(rs) = existing {
            let mut copy = rs.clone();
            let ann_changed = revision::set_new_rs_annotations(
                annotations.as_ref(),
                r,
                surge,
                &mut copy,
                new_revision,
                true,
            );
            let min_ready_of = |x: &ReplicaSet| {
                x.spec
                    .as_ref()
                    .and_then(|s| s.min_ready_seconds)
                    .unwrap_or(0)
            };
            let ready_changed = min_ready_of(&copy) != min_ready.unwrap_or(0);
            let mut current = rs.clone();
            if ann_changed || ready_changed {
                let uid = rs.metadata.uid.clone();
                let stored = self
                    .ctl
                    .client
                    .modify::<ReplicaSet>(rs.metadata.namespace.as_deref(), name_of(&rs), |o| {
                        if o.metadata.uid != uid {
                            return false;
                        }
                        let mut changed = revision::set_new_rs_annotations(
                            annotations.as_ref(),
                            r,
                            surge,
                            o,
                            new_revision,
                            true,
                        );
                        if let Some(spec) = o.spec.as_mut() {
                            if spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0) {
                                spec.min_ready_seconds = min_ready;
                                changed = true;
                            }
                        }
                        changed
                    })
                    .await?;
                self.remember(stored.clone());
                current = stored;
            }
            if let Some(rev) = current
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(revision::REVISION))
                .cloned()
            {
                self.set_revision(&rev).await?;
            }
            let st = self.d.status.clone().unwrap_or_default();
            if sync::get(&st, sync::PROGRESSING).is_none() {
                let mut st = st;
                sync::set(
                    &mut st,
                    sync::condition(
                        sync::PROGRESSING,
                        "True",
                        sync::FOUND_NEW_RS,
                        format!("Found new replica set {:?}", name_of(&current)),
                        self.now,
                    ),
                );
                self.write_status(st).await?;
            }
            return Ok(Some(current));
        }
        if !create {
            return Ok(None);
        }
        self.create_new_rs(olds, new_revision).await.map(Some)
    }

    async fn create_new_rs(
        &mut self,
        olds: Vec<ReplicaSet>,
        new_revision: i64,
    ) -> Result<ReplicaSet, ApiError> {
        let spec = self.d.spec.clone().expect("checked");
        let collisions = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = revision::compute_hash(&spec.template, collisions);
        let mut template = spec.template.clone();
        let tm = template.metadata.get_or_insert_with(Default::default);
        tm.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(revision::POD_TEMPLATE_HASH.into(), hash.clone());
        let labels = tm.labels.clone();
        let mut sel = spec.selector.clone();
        sel.match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(revision::POD_TEMPLATE_HASH.into(), hash.clone());
        let dname = self.d.metadata.name.clone().unwrap_or_default();
        let name = format!("{dname}-{hash}");
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.ns(),
                labels,
                owner_references: Some(vec![controller_ref(&self.d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector: sel,
                template: Some(template),
            }),
            status: None,
        };
        let mut all: Vec<&ReplicaSet> = olds.iter().collect();
        all.push(&rs);
        let n = rollout::new_rs_new_replicas(&self.d, &all, &rs);
        rs.spec.as_mut().expect("set").replicas = Some(n);
        revision::set_new_rs_annotations(
            self.d.metadata.annotations.as_ref(),
            replicas(&self.d),
            rollout::max_surge(&self.d),
            &mut rs,
            new_revision,
            false,
        );
        let (created, already) = match self.ctl.client.create(&rs).await {
            Ok(c) => (c, false),
            Err(e) if e.code == 409 && e.reason == "AlreadyExists" => {
                let found: ReplicaSet = self.ctl.client.get(self.ns().as_deref(), &name).await?;
                let ours = controller_of(&found.metadata)
                    .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
                let same = found
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| revision::equal_ignore_hash(t, &spec.template));
                if !(ours && same) {
                    // A hash collision: the next hash includes a higher count.
                    let mut st = self.d.status.clone().unwrap_or_default();
                    st.collision_count = Some(collisions.unwrap_or(0) + 1);
                    self.write_status(st).await?;
                    return Err(e);
                }
                (found, true)
            }
            Err(e) => {
                let msg = format!("Failed to create new replica set {name:?}: {}", e.message);
                if sync::has_progress_deadline(&self.d) {
                    let mut st = self.d.status.clone().unwrap_or_default();
                    sync::set(
                        &mut st,
                        sync::condition(
                            sync::PROGRESSING,
                            "False",
                            sync::FAILED_RS_CREATE,
                            msg.clone(),
                            self.now,
                        ),
                    );
                    let _ = self.write_status(st).await;
                }
                self.ctl
                    .recorder
                    .warning(&self.d, sync::FAILED_RS_CREATE, msg);
                return Err(e);
            }
        };
        self.remember(created.clone());
        if !already && n > 0 {
            self.ctl.recorder.normal(
                &self.d,
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {n}"),
            );
        }
        self.set_revision(&new_revision.to_string()).await?;
        if !already && sync::has_progress_deadline(&self.d) {
            let mut st = self.d.status.clone().unwrap_or_default();
            sync::set(
                &mut st,
                sync::condition(
                    sync::PROGRESSING,
                    "True",
                    sync::NEW_RS_CREATED,
                    format!("Created new replica set {name:?}"),
                    self.now,
                ),
            );
            self.write_status(st).await?;
        }
        Ok(created)
    }

    /// Sets a ReplicaSet's size (and its replica annotations); `annotate` also refreshes the
    /// annotations when the size stays. Records `ScalingReplicaSet` when the size changes.
    async fn scale_rs(&mut self, name: &str, to: i32, annotate: bool) -> Result<bool, ApiError> {
        let Some(rs) = self.find(name).cloned() else {
            return Ok(false);
        };
        let from = size(&rs);
        let r = replicas(&self.d);
        let max = r + rollout::max_surge(&self.d);
        let mut probe = rs.clone();
        let ann_changed = revision::set_replicas_annotations(&mut probe, r, max);
        if from == to && !(annotate && ann_changed) {
            return Ok(false);
        }
        let uid = rs.metadata.uid.clone();
        let stored = self
            .ctl
            .client
            .modify::<ReplicaSet>(rs.metadata.namespace.as_deref(), name, |o| {
                if o.metadata.uid != uid {
                    return false;
                }
                let mut changed = revision::set_replicas_annotations(o, r, max);
                if let Some(spec) = o.spec.as_mut() {
                    if spec.replicas != Some(to) {
                        spec.replicas = Some(to);
                        changed = true;
                    }
                }
                changed
            })
            .await?;
        self.remember(stored);
        if from != to {
            let op = if from < to { "up" } else { "down" };
            self.ctl.recorder.normal(
                &self.d,
                "ScalingReplicaSet",
                format!("Scaled {op} replica set {name} to {to} from {from}"),
            );
            return Ok(true);
        }
        Ok(false)
    }

    /// Upstream's `sync`: scaling only (a paused Deployment, or `replicas` changed), then the
    /// counts.
    async fn scale_only(&mut self) -> Result<Action, ApiError> {
        let new = self.new_rs(false).await?;
        let olds = self.old_sets(new.as_ref());
        let status_replicas = self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        if let ScalePlan::Sizes(sizes) =
            rollout::scale(&self.d, new.as_ref(), &olds, status_replicas)
        {
            for (name, to) in sizes {
                self.scale_rs(&name, to, true).await?;
            }
        }
        if rollout::is_paused(&self.d) {
            let olds = self.old_sets(new.as_ref());
            self.prune(&olds).await?;
        }
        let new = new.and_then(|n| self.find(name_of(&n)).cloned());
        self.sync_status(new).await?;
        Ok(Action::Done)
    }

    async fn sync_status(&mut self, new: Option<ReplicaSet>) -> Result<(), ApiError> {
        let all: Vec<&ReplicaSet> = self.sets.iter().collect();
        let s = sync::calculate_status(&self.d, &all, new.as_ref(), self.now);
        self.write_status(s).await
    }

    /// Deletes old ReplicaSets beyond the history limit.
    async fn prune(&mut self, olds: &[ReplicaSet]) -> Result<(), ApiError> {
        for rs in rollout::history_to_prune(&self.d, olds) {
            let uid = rs.metadata.uid.clone().unwrap_or_default();
            match self
                .ctl
                .client
                .delete_uid::<ReplicaSet>(rs.metadata.namespace.as_deref(), name_of(&rs), &uid)
                .await
            {
                Ok(_) => self
                    .sets
                    .retain(|r| r.metadata.uid.as_deref() != Some(uid.as_str())),
                Err(e) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Upstream's `rolloutRolling`.
    async fn rolling(&mut self) -> Result<Action, ApiError> {
        let new = self.new_rs(true).await?.expect("created");
        let new_name = name_of(&new).to_string();
        let r = replicas(&self.d);
        let target = match size(&new).cmp(&r) {
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(r),
            std::cmp::Ordering::Less => {
                let all: Vec<&ReplicaSet> = self.sets.iter().collect();
                Some(rollout::new_rs_new_replicas(&self.d, &all, &new))
            }
        };
        if let Some(t) = target {
            if self.scale_rs(&new_name, t, true).await? {
                return self.rollout_status(&new_name).await;
            }
        }
        let new = self.find(&new_name).cloned();
        let active_old: Vec<ReplicaSet> = self
            .old_sets(new.as_ref())
            .into_iter()
            .filter(|rs| size(rs) > 0)
            .collect();
        let mut scaled = false;
        for (name, to) in rollout::scale_down_old(&self.d, &active_old, new.as_ref()) {
            scaled |= self.scale_rs(&name, to, true).await?;
        }
        if scaled {
            return self.rollout_status(&new_name).await;
        }
        if let Some(st) = self.d.status.clone() {
            if sync::complete(&self.d, &st) {
                let olds = self.old_sets(new.as_ref());
                self.prune(&olds).await?;
            }
        }
        self.rollout_status(&new_name).await
    }

    /// Upstream's `rolloutRecreate`.
    async fn recreate(&mut self) -> Result<Action, ApiError> {
        let new = self.new_rs(false).await?;
        let new_name = new.as_ref().map(|n| name_of(n).to_string());
        let active_old: Vec<String> = self
            .old_sets(new.as_ref())
            .iter()
            .filter(|rs| size(rs) > 0)
            .map(|rs| name_of(rs).to_string())
            .collect();
        let mut scaled = false;
        for name in active_old {
            scaled |= self.scale_rs(&name, 0, true).await?;
        }
        if scaled {
            return self.rollout_status_opt(new_name.as_deref()).await;
        }
        let olds = self.old_sets(new.as_ref());
        let old_pods: Vec<Arc<Pod>> = olds
            .iter()
            .filter_map(|rs| rs.metadata.uid.as_deref())
            .flat_map(|uid| self.ctl.pods.owned_by(uid))
            .collect();
        let refs: Vec<&Pod> = old_pods.iter().map(|p| p.as_ref()).collect();
        if rollout::old_pods_running(&olds, &refs) {
            return self.rollout_status_opt(new_name.as_deref()).await;
        }
        let new = match new {
            Some(n) => n,
            None => self.new_rs(true).await?.expect("created"),
        };
        let new_name = name_of(&new).to_string();
        let r = replicas(&self.d);
        if size(&new) != r {
            self.scale_rs(&new_name, r, true).await?;
        }
        if let Some(st) = self.d.status.clone() {
            if sync::complete(&self.d, &st) {
                let olds = self.old_sets(Some(&new));
                self.prune(&olds).await?;
            }
        }
        self.rollout_status(&new_name).await
    }

    async fn rollout_status(&mut self, new: &str) -> Result<Action, ApiError> {
        self.rollout_status_opt(Some(new)).await
    }

    /// Upstream's `syncRolloutStatus` (and `requeueStuckDeployment`).
    async fn rollout_status_opt(&mut self, new: Option<&str>) -> Result<Action, ApiError> {
        let new = new.and_then(|n| self.find(n)).cloned();
        let all: Vec<&ReplicaSet> = self.sets.iter().collect();
        let s = sync::rollout_status(&self.d, &all, new.as_ref(), self.now);
        let before = self.d.clone();
        self.write_status(s.clone()).await?;
        Ok(match sync::recheck_after(&before, &s, self.now) {
            Some(after) => Action::RequeueAfter(after),
            None => Action::Done,
        })
    }
}
