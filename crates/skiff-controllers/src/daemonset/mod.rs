//! The DaemonSet controller, after upstream's `pkg/controller/daemon`.
//!
//! For each DaemonSet: find or create the ControllerRevision of its template
//! ([`crate::history`]), claim its pods (adopt orphans its selector matches, release pods that
//! no longer match), then take the next step: a pod for every eligible node
//! ([`nodes::node_should_run`]) created with `matchFields metadata.name In [node]` affinity
//! and the automatic DaemonSet tolerations for the scheduler to bind; pods deleted where they
//! may no longer run, failed pods replaced (with a per-node back-off), duplicates removed
//! ([`plan::manage`]); for RollingUpdate, old pods replaced within maxUnavailable or maxSurge
//! ([`plan::rolling_update`]); OnDelete waits for users to delete pods. Old revisions beyond
//! revisionHistoryLimit are pruned and the status counts written, so that
//! `kubectl rollout status|history|undo daemonset/x` work. Events: SuccessfulCreate,
//! SuccessfulDelete, FailedCreate, FailedDelete, FailedDaemonPod, SelectingAll.

pub mod nodes;
pub mod plan;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use parking_lot::Mutex;
use skiff_core::ApiError;
use skiff_runtime::cache::{key, key_of, split_key, Notification};
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::events::Recorder;
use skiff_runtime::{selector, Client, Clock, Informer, Object, Runtime, WorkQueue};
use tokio::time::Instant;

use crate::history::{self, History, Stored, REVISION_HASH_LABEL};
use crate::podcontrol;
use crate::pods::{self, controller_of};
use crate::replicaset::slow_start_batches;
use plan::{Current, NodeFit, PodsByNode};

/// The event source of this controller.
pub const COMPONENT: &str = "daemonset-controller";
/// Most pods created or deleted in one sync (upstream's `BurstReplicas` for DaemonSets).
pub const BURST_REPLICAS: usize = 250;
/// The annotation upstream's API server keeps the template generation in.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// Failed-pod back-off per (DaemonSet, node): 1 s doubling to 15 minutes.
const FAILED_BACKOFF_BASE: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

fn selects(ds: &DaemonSet, labels: Option<&BTreeMap<String, String>>) -> bool {
    ds.spec
        .as_ref()
        .is_some_and(|s| !selector::is_empty(&s.selector) && selector::matches(&s.selector, labels))
}

/// Claims the pods `owner` controls among `all` (upstream's `ClaimPods`): owned pods that
/// still match stay, owned pods that no longer match are released, orphans that match (and
/// pass `extra`) are adopted.
pub(crate) async fn claim_pods<K: Object>(
    client: &Client,
    owner: &K,
    all: Vec<Arc<Pod>>,
    matches: impl Fn(&Pod) -> bool,
) -> Result<Vec<Arc<Pod>>, ApiError> {
    let uid = owner.metadata().uid.clone().unwrap_or_default();
    let deleting = owner.metadata().deletion_timestamp.is_some();
    let mut mine = Vec::new();
    for p in all {
        let ok = matches(&p);
        let ns = p.metadata.namespace.as_deref();
        let name = p.metadata.name.clone().unwrap_or_default();
        match controller_of(&p.metadata) {
            Some(r) if r.uid == uid => {
                if ok || deleting {
                    mine.push(p);
                    continue;
                }
                let res = client
                    .modify::<Pod>(ns, &name, |cur| {
                        let Some(refs) = cur.metadata.owner_references.as_mut() else {
                            return false;
                        };
                        let before = refs.len();
                        refs.retain(|r: &OwnerReference| r.uid != uid);
                        refs.len() != before
                    })
                    .await;
                match res {
                    Ok(_) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Some(_) => {}
            None => {
                if !ok || deleting || p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let want = p.metadata.uid.clone();
                let cref = pods::controller_ref(owner);
                let res = client
                    .modify::<Pod>(ns, &name, |cur| {
                        if cur.metadata.uid != want || controller_of(&cur.metadata).is_some() {
                            return false;
                        }
                        cur.metadata
                            .owner_references
                            .get_or_insert_with(Vec::new)
                            .push(cref.clone());
                        true
                    })
                    .await;
                match res {
                    Ok(a) if controller_of(&a.metadata).is_some_and(|c| c.uid == uid) => {
                        mine.push(Arc::new(a))
                    }
                    Ok(_) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(mine)
}

/// The DaemonSet loop.
pub struct Controller {
    sets: Informer<DaemonSet>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    history: History,
    client: Client,
    recorder: Recorder,
    clock: Clock,
    /// (DaemonSet uid, node) → (not before, next delay) for failed pods.
    backoff: Mutex<HashMap<(String, String), (Instant, Duration)>>,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let client = rt.client(crate::MANAGER);
    let ctl = Arc::new(Controller {
        sets: rt.cache.informer::<DaemonSet>(),
        pods: rt.cache.informer::<Pod>(),
        nodes: rt.cache.informer::<Node>(),
        history: History {
            client: client.clone(),
            revisions: rt.cache.informer::<ControllerRevision>(),
        },
        client,
        recorder: rt.recorder(COMPONENT),
        clock: rt.clock,
        backoff: Mutex::default(),
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.sets.synced().await;
        ctl.pods.synced().await;
        ctl.nodes.synced().await;
        ctl.history.revisions.synced().await;
        watch(&rt2, ctl.clone(), queue.clone());
        for s in ctl.sets.list() {
            queue.add(key_of(&s.metadata));
        }
        controller::run(ctl, queue, workers).await;
    });
}

fn enqueue_all(ctl: &Controller, queue: &WorkQueue) {
    for s in ctl.sets.list() {
        queue.add(key_of(&s.metadata));
    }
}

/// Whether a node change can change where DaemonSets run (upstream's
/// `shouldIgnoreNodeUpdate` inverted): labels, taints, unschedulable or readiness.
fn node_changed(old: &Node, new: &Node) -> bool {
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone())
    };
    let taints = |n: &Node| n.spec.as_ref().and_then(|s| s.taints.clone());
    let unsched = |n: &Node| n.spec.as_ref().and_then(|s| s.unschedulable);
    old.metadata.labels != new.metadata.labels
        || taints(old) != taints(new)
        || unsched(old) != unsched(new)
        || ready(old) != ready(new)
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
                    Some(r) if r.kind == "DaemonSet" => q.add(key(ns, &r.name)),
                    Some(_) => {}
                    None => {
                        for s in c2.sets.list_namespace(ns.unwrap_or("")) {
                            if selects(&s, p.metadata.labels.as_ref()) {
                                q.add(key_of(&s.metadata));
                            }
                        }
                    }
                }
            }
        }
    });
    let mut nodes = ctl.nodes.subscribe();
    let (c2, q) = (ctl.clone(), queue.clone());
    rt.spawn(async move {
        while let Some(n) = nodes.recv().await {
            let relevant = match &n {
                Notification::Changed(c) => match (&c.old, &c.new) {
                    (Some(o), Some(n)) => node_changed(o, n),
                    _ => true,
                },
                Notification::Resync => true,
            };
            if relevant {
                enqueue_all(&c2, &q);
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
                    if let Some(o) = controller_of(&r.metadata).filter(|o| o.kind == "DaemonSet") {
                        q.add(key(r.metadata.namespace.as_deref(), &o.name));
                    }
                }
                Notification::Resync => enqueue_all(&c2, &q),
            }
        }
    });
}

/// The template hash of a DaemonSet (upstream's `ComputeHash` of the template with the
/// collision count).
pub fn template_hash(ds: &DaemonSet, collision_count: Option<i32>) -> String {
    let t = ds
        .spec
        .as_ref()
        .map(|s| history::canonical(serde_json::to_value(&s.template).unwrap_or_default()))
        .unwrap_or_default();
    history::hash(&history::patch_bytes(&t), collision_count)
}

/// The pods `ds` runs, by the node they are for; `include_gone` keeps pods that finished and
/// are being deleted (for history pruning).
fn group(pods: &[Arc<Pod>], include_gone: bool) -> PodsByNode {
    let mut m = PodsByNode::new();
    for p in pods {
        if !include_gone && pods::is_terminal(p) && p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(n) = nodes::target_node(p) {
            m.entry(n).or_default().push(p.clone());
        }
    }
    m
}

impl Controller {
    /// Upstream's `constructHistory`: the revision of the current template (created, or
    /// renumbered to the newest) and the old ones.
    async fn construct_history(
        &self,
        ds: &DaemonSet,
    ) -> Result<(Arc<ControllerRevision>, Vec<Arc<ControllerRevision>>, i32), ApiError> {
        let mut revs = self.history.claim(ds, |l| selects(ds, l)).await?;
        // Revisions without the hash label get their name as one (upstream does the same, so
        // that a collision never matters).
        for r in revs.iter_mut() {
            let has = r
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(REVISION_HASH_LABEL));
            if has {
                continue;
            }
            let name = r.metadata.name.clone().unwrap_or_default();
            let patch = serde_json::json!({"metadata": {"labels": {REVISION_HASH_LABEL: name}}});
            match self
                .client
                .merge_patch::<ControllerRevision>(r.metadata.namespace.as_deref(), &name, &patch)
                .await
            {
                Ok(updated) => *r = Arc::new(updated),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let patch = history::template_patch(&template);
        let (mut current, old): (Vec<_>, Vec<_>) = revs
            .into_iter()
            .partition(|r| history::data_matches(r, &patch));
        let next = history::max_revision(old.iter().map(|r| r.as_ref())) + 1;
        let mut collisions = ds
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let ns = ds.metadata.namespace.clone().unwrap_or_default();
        let cur = if current.is_empty() {
            let mut tries = 0;
            loop {
                let count = (collisions > 0).then_some(collisions);
                let hash = template_hash(ds, count);
                let mut labels = template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                labels.insert(REVISION_HASH_LABEL.into(), hash.clone());
                let name = history::revision_name(ds.metadata.name.as_deref().unwrap_or(""), &hash);
                let rev = history::new_revision(ds, name, labels, patch.clone(), next);
                match self.history.create(&rev).await? {
                    Stored::Done(r) => break Arc::new(*r),
                    Stored::Collision => {
                        collisions += 1;
                        tries += 1;
                        if tries > 10 {
                            return Err(ApiError::internal("too many revision hash collisions"));
                        }
                    }
                }
            }
        } else {
            // Keep the newest duplicate; move pods of the others onto it.
            current.sort_by_key(|r| r.revision);
            let keep = current.pop().expect("not empty");
            let keep_hash = keep
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_HASH_LABEL))
                .cloned()
                .unwrap_or_default();
            if !current.is_empty() {
                let uid = ds.metadata.uid.clone().unwrap_or_default();
                for p in self.pods.owned_by(&uid) {
                    let h = p
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(REVISION_HASH_LABEL));
                    if h != Some(&keep_hash) {
                        let patch = serde_json::json!({"metadata": {"labels": {REVISION_HASH_LABEL: keep_hash}}});
                        let name = p.metadata.name.clone().unwrap_or_default();
                        match self
                            .client
                            .merge_patch::<Pod>(Some(&ns), &name, &patch)
                            .await
                        {
                            Ok(_) => {}
                            Err(e) if e.code == 404 => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                let names: Vec<String> = current
                    .iter()
                    .filter_map(|r| r.metadata.name.clone())
                    .collect();
                self.history.delete(&ns, &names).await?;
            }
            if keep.revision < next {
                Arc::new(self.history.renumber(&keep, next).await?)
            } else {
                keep
            }
        };
        Ok((cur, old, collisions))
    }

    /// The pods `ds` controls now, from the cache.
    fn owned(&self, ds: &DaemonSet) -> Vec<Arc<Pod>> {
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        self.pods.owned_by(&uid)
    }

    /// Creates daemon pods on `on` (slow start); returns the newest revision written.
    async fn create_pods(
        &self,
        ds: &DaemonSet,
        on: &[String],
        hash: &str,
        generation: Option<&str>,
    ) -> (i64, Option<ApiError>) {
        let Some(mut template) = ds.spec.as_ref().map(|s| s.template.clone()) else {
            return (0, Some(ApiError::internal("no pod template")));
        };
        if let Some(spec) = template.spec.as_mut() {
            nodes::add_daemon_tolerations(spec);
        }
        let labels = template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new);
        labels.insert(REVISION_HASH_LABEL.into(), hash.into());
        if let Some(g) = generation {
            labels.insert(plan::TEMPLATE_GENERATION_LABEL.into(), g.into());
        }
        let prefix = format!("{}-", ds.metadata.name.as_deref().unwrap_or(""));
        let base = pods::pod_from_template(&template, ds, &prefix);
        let mut newest = 0;
        let mut rest = on;
        for batch in slow_start_batches(on.len()) {
            let (now, later) = rest.split_at(batch);
            rest = later;
            let results = futures::future::join_all(now.iter().map(|node| {
                let mut p = base.clone();
                if let Some(spec) = p.spec.as_mut() {
                    spec.affinity = Some(nodes::with_node_affinity(spec.affinity.take(), node));
                }
                async move { self.client.create_summary(&p).await }
            }))
            .await;
            let mut failed = None;
            for r in results {
                podcontrol::record_create(&self.recorder, ds, r, &mut newest, &mut failed);
            }
            if failed.is_some() {
                return (newest, failed);
            }
        }
        (newest, None)
    }

    async fn delete_pods(&self, ds: &DaemonSet, victims: &[Arc<Pod>]) -> (i64, Option<ApiError>) {
        podcontrol::delete_pods(&self.client, &self.recorder, ds, victims).await
    }

    /// Applies the failed-pod back-off: the failed pods that may be deleted now, and how
    /// long until the next one may.
    fn failed_backoff(
        &self,
        uid: &str,
        failed: &[(Arc<Pod>, String)],
    ) -> (Vec<String>, Option<Duration>) {
        let now = Instant::now();
        let mut map = self.backoff.lock();
        map.retain(|_, (at, d)| now < *at + *d * 2 || now < *at);
        let (mut allowed, mut wait) = (Vec::new(), None::<Duration>);
        for (p, node) in failed {
            let k = (uid.to_string(), node.clone());
            match map.get(&k).copied() {
                Some((at, _)) if now < at => {
                    let left = at - now;
                    wait = Some(wait.map_or(left, |w| w.min(left)));
                }
                prev => {
                    let delay = prev.map_or(FAILED_BACKOFF_BASE, |(_, d)| {
                        (d * 2).min(FAILED_BACKOFF_MAX)
                    });
                    map.insert(k, (now + delay, delay));
                    allowed.push(p.metadata.name.clone().unwrap_or_default());
                }
            }
        }
        (allowed, wait)
    }
}

/// The status a DaemonSet should have.
fn status_of(ds: &DaemonSet, c: &plan::Counts, collisions: i32) -> DaemonSetStatus {
    let old = ds.status.clone().unwrap_or_default();
    DaemonSetStatus {
        collision_count: (collisions > 0)
            .then_some(collisions)
            .or(old.collision_count),
        conditions: old.conditions,
        current_number_scheduled: c.current,
        desired_number_scheduled: c.desired,
        number_available: Some(c.available),
        number_misscheduled: c.misscheduled,
        number_ready: c.ready,
        number_unavailable: Some(c.desired - c.available).filter(|n| *n != 0),
        observed_generation: ds.metadata.generation,
        updated_number_scheduled: Some(c.updated),
    }
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn reconcile(&self, k: &str) -> Result<Action, ApiError> {
        let Some(ds) = self.sets.get_key(k) else {
            return Ok(Action::Done);
        };
        let (ns, name) = split_key(k);
        let Some(spec) = ds.spec.as_ref() else {
            return Ok(Action::Done);
        };
        if selector::is_empty(&spec.selector) {
            self.recorder.warning(
                ds.as_ref(),
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.",
            );
            return Ok(Action::Done);
        }
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let (cur_rev, old_revs, collisions) = self.construct_history(&ds).await?;
        let hash = cur_rev
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_HASH_LABEL))
            .cloned()
            .unwrap_or_default();
        let generation = ds
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
            .cloned();
        let cur = Current {
            hash: &hash,
            generation: generation.as_deref(),
        };

        let all = self.pods.list_namespace(ns.unwrap_or(""));
        claim_pods(&self.client, ds.as_ref(), all, |p| {
            selects(&ds, p.metadata.labels.as_ref())
        })
        .await?;

        let mut template_spec = spec.template.spec.clone().unwrap_or_default();
        nodes::add_daemon_tolerations(&mut template_spec);
        let mut node_fits: Vec<NodeFit> = self
            .nodes
            .list()
            .iter()
            .map(|n| NodeFit {
                name: n.metadata.name.clone().unwrap_or_default(),
                fit: nodes::node_should_run(n, &template_spec),
            })
            .collect();
        node_fits.sort_by(|a, b| a.name.cmp(&b.name));

        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let ru = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref());
        let (max_surge, max_unavailable, _) = plan::budgets(
            &node_fits,
            ru.and_then(|r| r.max_surge.as_ref()),
            ru.and_then(|r| r.max_unavailable.as_ref()).or(Some(
                &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1),
            )),
        )
        .map_err(ApiError::internal)?;
        let surge = rolling && max_surge > 0;

        // Manage: the right number of pods on every node.
        let by_node = group(&self.owned(&ds), false);
        let m = plan::manage(&node_fits, &by_node, &cur, surge);
        let mut newest = 0;
        let mut first_err = None;
        let mut requeue: Option<Duration> = None;
        let failed_names: Vec<String> = m
            .failed
            .iter()
            .filter_map(|(p, _)| p.metadata.name.clone())
            .collect();
        let (allowed_failed, wait) = self.failed_backoff(&uid, &m.failed);
        if let Some(w) = wait {
            requeue = Some(w);
        }
        for (p, node) in &m.failed {
            if allowed_failed.contains(p.metadata.name.as_ref().unwrap_or(&String::new())) {
                self.recorder.warning(
                    ds.as_ref(),
                    "FailedDaemonPod",
                    format!(
                        "Found failed daemon pod {}/{} on node {node}, will try to kill it",
                        ns.unwrap_or(""),
                        p.metadata.name.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        let delete: Vec<Arc<Pod>> = m
            .delete
            .into_iter()
            .filter(|p| {
                let n = p.metadata.name.clone().unwrap_or_default();
                !failed_names.contains(&n) || allowed_failed.contains(&n)
            })
            .take(BURST_REPLICAS)
            .collect();
        let create_on: Vec<String> = m.create_on.into_iter().take(BURST_REPLICAS).collect();
        let (r1, e1) = self.delete_pods(&ds, &delete).await;
        let (r2, e2) = self
            .create_pods(&ds, &create_on, &hash, generation.as_deref())
            .await;
        newest = newest.max(r1).max(r2);
        first_err = first_err.or(e1).or(e2);
        if newest > 0 {
            self.pods
                .wait_for_revision_timeout(newest, Duration::from_secs(5))
                .await;
        }

        // Rolling update: replace old pods within the budgets.
        let now = self.clock.now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        if rolling && first_err.is_none() {
            let by_node = group(&self.owned(&ds), false);
            let r = plan::rolling_update(&plan::RolloutInput {
                nodes: &node_fits,
                by_node: &by_node,
                cur: &cur,
                max_surge,
                max_unavailable,
                min_ready_seconds: min_ready,
                now,
            });
            let owned = self.owned(&ds);
            let victims: Vec<Arc<Pod>> = owned
                .iter()
                .filter(|p| {
                    p.metadata
                        .name
                        .as_ref()
                        .is_some_and(|n| r.delete.contains(n))
                })
                .cloned()
                .collect();
            let (r1, e1) = self.delete_pods(&ds, &victims).await;
            let (r2, e2) = self
                .create_pods(&ds, &r.create_on, &hash, generation.as_deref())
                .await;
            let newest = r1.max(r2);
            first_err = first_err.or(e1).or(e2);
            if newest > 0 {
                self.pods
                    .wait_for_revision_timeout(newest, Duration::from_secs(5))
                    .await;
            }
        }

        // History: prune old revisions no live pod uses.
        let limit = spec.revision_history_limit.unwrap_or(10);
        let all_pods = self.owned(&ds);
        let live = history::live_hashes(all_pods.iter().map(|p| p.as_ref()));
        let prune = history::to_prune(&old_revs, limit, |r| {
            r.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_HASH_LABEL))
                .is_some_and(|h| live.contains(h))
        });
        if !prune.is_empty() {
            self.history.delete(ns.unwrap_or(""), &prune).await?;
        }

        // Status.
        let by_node = group(&all_pods, false);
        let counts = plan::counts(&node_fits, &by_node, &cur, min_ready, now);
        let want = status_of(&ds, &counts, collisions);
        if ds.status.as_ref() != Some(&want) {
            let res = self
                .client
                .modify_status::<DaemonSet>(ns, name, |o| {
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
        // Look again when a ready pod becomes available.
        let next = pods::next_available(&all_pods, min_ready, &self.clock);
        Ok(match next.into_iter().chain(requeue).min() {
            Some(d) => Action::RequeueAfter(d),
            None => Action::Done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_scheduling_relevant_node_changes_wake_daemonsets() {
        let base = json!({"metadata": {"name": "n", "labels": {"a": "1"}},
            "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z"}]}});
        let a = node(base.clone());
        let mut heartbeat = base.clone();
        heartbeat["status"]["conditions"][0]["lastHeartbeatTime"] = json!("2026-01-01T00:00:10Z");
        assert!(
            !node_changed(&a, &node(heartbeat)),
            "a heartbeat changes nothing"
        );
        let mut labels = base.clone();
        labels["metadata"]["labels"]["b"] = json!("2");
        assert!(node_changed(&a, &node(labels)));
        let mut taint = base.clone();
        taint["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
        assert!(node_changed(&a, &node(taint)));
        let mut cordon = base.clone();
        cordon["spec"]["unschedulable"] = json!(true);
        assert!(node_changed(&a, &node(cordon)));
        let mut unready = base;
        unready["status"]["conditions"][0]["status"] = json!("Unknown");
        assert!(node_changed(&a, &node(unready)));
    }

    #[test]
    fn template_hash_follows_the_template_and_collisions() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}
        }))
        .unwrap();
        let h = template_hash(&ds, None);
        assert_eq!(template_hash(&ds, None), h);
        assert_ne!(template_hash(&ds, Some(1)), h);
        let mut other = ds.clone();
        other
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("y".into());
        assert_ne!(template_hash(&other, None), h);
        // Labels and annotations of the DaemonSet itself do not matter.
        let mut relabelled = ds.clone();
        relabelled.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        assert_eq!(template_hash(&relabelled, None), h);
    }
}
