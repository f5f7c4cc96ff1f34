//! The Job controller, after upstream's `pkg/controller/job` (Kubernetes 1.32).
//!
//! For each Job: create pods up to what parallelism and the missing completions allow (Indexed
//! Jobs: one pod per pending index, named `<job>-<index>-<random>`, with the index annotation
//! and label, `JOB_COMPLETION_INDEX` and hostname `<job>-<index>`), with an exponential back-off
//! after failures; count finished pods exactly once through the `batch.kubernetes.io/job-tracking`
//! finalizer and `status.uncountedTerminatedPods`; fail the Job on backoffLimit,
//! activeDeadlineSeconds or a FailJob pod failure policy rule (FailureTarget first, Failed once
//! no pod is terminating), complete it when enough pods succeeded (SuccessCriteriaMet, then
//! Complete); delete active pods while suspended. Decisions are in [`logic`]; [`ttl`] deletes
//! finished Jobs after ttlSecondsAfterFinished.

pub mod logic;
#[cfg(test)]
mod paused;
pub mod ttl;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use parking_lot::Mutex;
use skiff_core::ApiError;
use skiff_runtime::cache::{key, key_of, split_key, Notification};
use skiff_runtime::client::revision_of;
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::events::Recorder;
use skiff_runtime::{selector, Client, Clock, Informer, Runtime, WorkQueue};

use crate::podcontrol;
use crate::pods::{self, controller_of};
use logic::*;

/// Upstream's controller name (event source).
pub const COMPONENT: &str = "job-controller";

/// Work queue keys for pods that carry the tracking finalizer but whose Job is gone.
const ORPHAN_PREFIX: &str = "orphan-pod:";

pub struct Controller {
    jobs: Informer<Job>,
    pods: Informer<Pod>,
    client: Client,
    recorder: Recorder,
    clock: Clock,
    /// Back-off records by Job uid.
    backoff: Mutex<HashMap<String, BackoffRecord>>,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller {
        jobs: rt.cache.informer::<Job>(),
        pods: rt.cache.informer::<Pod>(),
        client: rt.client(crate::MANAGER),
        recorder: rt.recorder(COMPONENT),
        clock: rt.clock,
        backoff: Mutex::default(),
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.jobs.synced().await;
        ctl.pods.synced().await;
        watch_jobs(&rt2, ctl.clone(), queue.clone());
        watch_pods(&rt2, ctl.clone(), queue.clone());
        for j in ctl.jobs.list() {
            queue.add(key_of(&j.metadata));
        }
        for p in ctl.pods.list() {
            if orphaned(&ctl.jobs, &p) {
                queue.add(format!("{ORPHAN_PREFIX}{}", key_of(&p.metadata)));
            }
        }
        controller::run(ctl, queue, workers).await;
    });
    ttl::start(rt, opts);
}

fn watch_jobs(rt: &Runtime, ctl: Arc<Controller>, queue: WorkQueue) {
    let mut sub = ctl.jobs.subscribe();
    rt.spawn(async move {
        while let Some(n) = sub.recv().await {
            match n {
                Notification::Changed(c) => {
                    let j = c.object();
                    queue.add(key_of(&j.metadata));
                    if c.new.is_none() {
                        // A deleted Job's pods may still carry the finalizer.
                        let uid = j.metadata.uid.clone().unwrap_or_default();
                        ctl.backoff.lock().remove(&uid);
                        for p in ctl.pods.owned_by(&uid) {
                            if has_tracking_finalizer(&p) {
                                queue.add(format!("{ORPHAN_PREFIX}{}", key_of(&p.metadata)));
                            }
                        }
                    }
                }
                Notification::Resync => {
                    for j in ctl.jobs.list() {
                        queue.add(key_of(&j.metadata));
                    }
                }
            }
        }
    });
}

/// A pod with the tracking finalizer whose controlling Job is not in the cache.
fn orphaned(jobs: &Informer<Job>, p: &Pod) -> bool {
    if !has_tracking_finalizer(p) {
        return false;
    }
    match controller_of(&p.metadata) {
        Some(r) if r.kind == "Job" => jobs
            .get(p.metadata.namespace.as_deref(), &r.name)
            .is_none_or(|j| j.metadata.uid.as_deref() != Some(r.uid.as_str())),
        _ => true,
    }
}

fn watch_pods(rt: &Runtime, ctl: Arc<Controller>, queue: WorkQueue) {
    let mut sub = ctl.pods.subscribe();
    rt.spawn(async move {
        while let Some(n) = sub.recv().await {
            let c = match n {
                Notification::Changed(c) => c,
                Notification::Resync => {
                    for j in ctl.jobs.list() {
                        queue.add(key_of(&j.metadata));
                    }
                    continue;
                }
            };
            for p in [&c.old, &c.new].into_iter().flatten() {
                match controller_of(&p.metadata) {
                    Some(r) if r.kind == "Job" => {
                        queue.add(key(p.metadata.namespace.as_deref(), &r.name));
                    }
                    Some(_) => {}
                    None if p.metadata.deletion_timestamp.is_none() => {
                        // An orphan: a Job whose selector matches may adopt it.
                        let ns = p.metadata.namespace.as_deref().unwrap_or("");
                        for j in ctl.jobs.list_namespace(ns) {
                            let sel = j.spec.as_ref().and_then(|s| s.selector.as_ref());
                            if sel.is_some_and(|s| {
                                !selector::is_empty(s)
                                    && selector::matches(s, p.metadata.labels.as_ref())
                            }) {
                                queue.add(key_of(&j.metadata));
                            }
                        }
                    }
                    None => {}
                }
            }
            if let Some(p) = &c.new {
                if orphaned(&ctl.jobs, p) {
                    queue.add(format!("{ORPHAN_PREFIX}{}", key_of(&p.metadata)));
                }
            }
        }
    });
}

/// What one sync found and decided, before counting finished pods.
struct SyncCtx {
    pods: Vec<Arc<Pod>>,
    active: Vec<Arc<Pod>>,
    ready: i32,
    terminating: i32,
    succeeded: i32,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    prev_indexes: BTreeSet<i32>,
    indexes: BTreeSet<i32>,
    /// Indexes failed for good (backoffLimitPerIndex).
    failed_indexes: BTreeSet<i32>,
    new_backoff: BackoffRecord,
    /// FailureTarget, Failed, SuccessCriteriaMet or Complete, once decided.
    finished: Option<JobCondition>,
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

impl Controller {
    async fn remove_finalizer(&self, p: &Pod) -> Result<i64, ApiError> {
        let want = p.metadata.uid.clone();
        let r = self
            .client
            .modify::<Pod>(
                p.metadata.namespace.as_deref(),
                p.metadata.name.as_deref().unwrap_or(""),
                |x| {
                    if x.metadata.uid != want {
                        return false;
                    }
                    let Some(f) = x.metadata.finalizers.as_mut() else {
                        return false;
                    };
                    let before = f.len();
                    f.retain(|n| n != TRACKING_FINALIZER);
                    let changed = f.len() != before;
                    if f.is_empty() {
                        x.metadata.finalizers = None;
                    }
                    changed
                },
            )
            .await;
        match r {
            Ok(p) => Ok(revision_of(&p)),
            Err(e) if e.code == 404 => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Removes the finalizer from a pod whose Job is gone.
    async fn clean_orphan(&self, pod_key: &str) -> Result<Action, ApiError> {
        let Some(p) = self.pods.get_key(pod_key) else {
            return Ok(Action::Done);
        };
        if !orphaned(&self.jobs, &p) {
            return Ok(Action::Done);
        }
        // Confirm against the store, not only the cache.
        if let Some(r) = controller_of(&p.metadata).filter(|r| r.kind == "Job") {
            match self
                .client
                .get::<Job>(p.metadata.namespace.as_deref(), &r.name)
                .await
            {
                Ok(j) if j.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                    return Ok(Action::Done)
                }
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        self.remove_finalizer(&p).await?;
        Ok(Action::Done)
    }

    /// Deletes pods (keeping their finalizers, so they are counted as they finish); returns
    /// how many deletes succeeded and how many of those were ready.
    async fn delete_active(
        &self,
        job: &Job,
        victims: &[Arc<Pod>],
        drop_finalizer: bool,
    ) -> (i32, i32, i64, Option<ApiError>) {
        let results = futures::future::join_all(victims.iter().map(|p| async move {
            let mut rev = 0;
            if drop_finalizer {
                rev = self.remove_finalizer(p).await?;
            }
            let ns = p.metadata.namespace.as_deref();
            let name = p.metadata.name.as_deref().unwrap_or("");
            match self.client.delete_uid::<Pod>(ns, name, &uid(p)).await {
                Ok(left) => Ok(left.map(|l| revision_of(&l)).unwrap_or(rev).max(rev)),
                Err(e) if e.code == 404 => Ok(rev),
                Err(e) => Err(e),
            }
        }))
        .await;
        let (mut deleted, mut ready, mut newest, mut err) = (0, 0, 0, None);
        for (p, r) in victims.iter().zip(results) {
            let name = p.metadata.name.as_deref().unwrap_or("");
            match r {
                Ok(rev) => {
                    deleted += 1;
                    if pods::is_ready(p) {
                        ready += 1;
                    }
                    newest = newest.max(rev);
                    self.recorder
                        .normal(job, "SuccessfulDelete", format!("Deleted pod: {name}"));
                }
                Err(e) => {
                    self.recorder.warning(
                        job,
                        "FailedDelete",
                        format!("Error deleting: {}", e.message),
                    );
                    err.get_or_insert(e);
                }
            }
        }
        (deleted, ready, newest, err)
    }

    /// Creates pods for `n` more completions (`indexes` for Indexed Jobs) in slow-start
    /// batches; returns how many were created, the newest revision and the first error.
    async fn create_pods(
        &self,
        job: &Job,
        n: usize,
        indexes: &[i32],
        failure_counts: &HashMap<i32, (i32, i32)>,
    ) -> (i32, i64, Option<ApiError>) {
        let Some(spec) = job.spec.as_ref() else {
            return (0, 0, None);
        };
        let name = job.metadata.name.clone().unwrap_or_default();
        let mut base = pods::pod_from_template(&spec.template, job, &format!("{name}-"));
        let fin = base.metadata.finalizers.get_or_insert_with(Vec::new);
        if !fin.iter().any(|f| f == TRACKING_FINALIZER) {
            fin.push(TRACKING_FINALIZER.to_string());
        }
        if is_indexed(job) {
            if let Some(ps) = base.spec.as_mut() {
                for c in ps
                    .containers
                    .iter_mut()
                    .chain(ps.init_containers.iter_mut().flatten())
                {
                    let env = c.env.get_or_insert_with(Vec::new);
                    if !env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
                        env.push(EnvVar {
                            name: COMPLETION_INDEX_ENV.to_string(),
                            value: None,
                            value_from: Some(EnvVarSource {
                                field_ref: Some(ObjectFieldSelector {
                                    api_version: None,
                                    field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                                }),
                                ..Default::default()
                            }),
                        });
                    }
                }
            }
        }
        let make = |i: usize| -> Pod {
            let mut p = base.clone();
            if let Some(ix) = indexes.get(i) {
                let v = ix.to_string();
                p.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(COMPLETION_INDEX.to_string(), v.clone());
                p.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert(COMPLETION_INDEX.to_string(), v);
                p.metadata.generate_name = Some(format!("{name}-{ix}-"));
                if backoff_limit_per_index(job).is_some() {
                    let (f, ig) = failure_counts.get(ix).copied().unwrap_or((0, 0));
                    let a = p.metadata.annotations.get_or_insert_with(Default::default);
                    a.insert(INDEX_FAILURE_COUNT.to_string(), f.to_string());
                    if ig > 0 {
                        a.insert(INDEX_IGNORED_FAILURE_COUNT.to_string(), ig.to_string());
                    }
                }
                if let Some(s) = p.spec.as_mut() {
                    s.hostname = Some(format!("{name}-{ix}"));
                }
            }
            p
        };
        let total = if is_indexed(job) { indexes.len() } else { n };
        let (mut created, mut newest, mut done) = (0, 0, 0usize);
        for batch in crate::replicaset::slow_start_batches(total) {
            let results = futures::future::join_all((done..done + batch).map(|i| {
                let p = make(i);
                async move { self.client.create_summary(&p).await }
            }))
            .await;
            done += batch;
            let mut failed = None;
            for r in results {
                if podcontrol::record_create(&self.recorder, job, r, &mut newest, &mut failed) {
                    created += 1;
                }
            }
            if failed.is_some() {
                return (created, newest, failed);
            }
        }
        (created, newest, None)
    }

    /// Upstream's `manageJob`: deletes pods while suspended or beyond what is wanted, else
    /// creates what is missing once the back-off allows. Returns the active count, the
    /// newest revision written, a delay to look again and the first error.
    async fn manage(
        &self,
        job: &Job,
        cx: &mut SyncCtx,
    ) -> (i32, i64, Option<Duration>, Option<ApiError>) {
        let mut active = cx.active.len() as i32;
        let mut colocated: HashMap<String, usize> = HashMap::new();
        for p in &cx.active {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                *colocated.entry(n).or_default() += 1;
            }
        }
        if is_suspended(job) {
            let victims = pods_for_removal(job, &cx.active, cx.active.len(), &colocated);
            let (deleted, ready, rev, err) = self.delete_active(job, &victims, true).await;
            cx.terminating += deleted;
            cx.ready -= ready;
            return (active - deleted, rev, None, err);
        }
        let want = want_active(job, active, cx.succeeded);
        let at_least = (active - want).max(0) as usize;
        let mut victims = pods_for_removal(job, &cx.active, at_least, &colocated);
        victims.truncate(MAX_CREATE_DELETE);
        if !victims.is_empty() {
            let (deleted, ready, rev, err) = self.delete_active(job, &victims, true).await;
            cx.terminating += deleted;
            cx.ready -= ready;
            return (active - deleted, rev, None, err);
        }
        let terminating = if only_replace_failed(job) {
            cx.terminating
        } else {
            0
        };
        let diff = want - terminating - active;
        if diff <= 0 {
            return (active, 0, None, None);
        }
        let per_index = backoff_limit_per_index(job).is_some();
        if !per_index {
            let wait = cx.new_backoff.remaining(self.clock.now());
            if !wait.is_zero() {
                return (active, 0, Some(wait), None);
            }
        }
        let n = (diff as usize).min(MAX_CREATE_DELETE);
        let comps = completions(job).unwrap_or(0);
        let mut counts = HashMap::new();
        let indexes = if is_indexed(job) {
            let mut skip = cx.indexes.clone();
            skip.extend(cx.failed_indexes.iter().copied());
            let pending = first_pending_indexes(&skip, &cx.active, n, comps);
            if per_index {
                // Each index waits out its own back-off; its replacement carries the count.
                let last = last_failed_per_index(job, &cx.pods, comps);
                let now = self.clock.now();
                let mut ready = Vec::new();
                let mut soonest: Option<Duration> = None;
                for i in pending {
                    match last.get(&i) {
                        Some(p) => {
                            let wait = index_backoff_remaining(job, p, now);
                            if wait.is_zero() {
                                counts.insert(i, replacement_counts(job, p));
                                ready.push(i);
                            } else {
                                soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
                            }
                        }
                        None => ready.push(i),
                    }
                }
                if ready.is_empty() {
                    return (active, 0, soonest, None);
                }
                ready
            } else {
                pending
            }
        } else {
            Vec::new()
        };
        let (created, rev, err) = self.create_pods(job, n, &indexes, &counts).await;
        active += created;
        (active, rev, None, err)
    }

    /// Upstream's pod claiming: the pods this Job controls, after adopting orphans its
    /// selector matches (not while the Job is being deleted) and releasing controlled pods it
    /// no longer matches.
    async fn claim(&self, job: &Job) -> Result<Vec<Arc<Pod>>, ApiError> {
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let ns = job.metadata.namespace.as_deref().unwrap_or("");
        let selector = job.spec.as_ref().and_then(|s| s.selector.as_ref());
        let selects = |p: &Pod| {
            selector.is_some_and(|sel| {
                !selector::is_empty(sel) && selector::matches(sel, p.metadata.labels.as_ref())
            })
        };
        let deleting = job.metadata.deletion_timestamp.is_some();
        let mut mine = Vec::new();
        for p in self.pods.list_namespace(ns) {
            match controller_of(&p.metadata) {
                Some(r) if r.uid == uid => {
                    if selects(&p) || deleting || selector.is_none() {
                        mine.push(p);
                    } else {
                        self.release(&p, &uid).await?;
                    }
                }
                Some(_) => {}
                None => {
                    if !deleting && p.metadata.deletion_timestamp.is_none() && selects(&p) {
                        if let Some(adopted) = self.adopt(job, &p).await? {
                            mine.push(Arc::new(adopted));
                        }
                    }
                }
            }
        }
        Ok(mine)
    }

    async fn adopt(&self, job: &Job, pod: &Pod) -> Result<Option<Pod>, ApiError> {
        let want = pod.metadata.uid.clone();
        let r = pods::controller_ref(job);
        let res = self
            .client
            .modify::<Pod>(
                pod.metadata.namespace.as_deref(),
                pod.metadata.name.as_deref().unwrap_or(""),
                |p| {
                    if p.metadata.uid != want || controller_of(&p.metadata).is_some() {
                        return false;
                    }
                    p.metadata
                        .owner_references
                        .get_or_insert_with(Vec::new)
                        .push(r.clone());
                    true
                },
            )
            .await;
        match res {
            Ok(p) if controller_of(&p.metadata).is_some_and(|c| c.uid == r.uid) => {
                self.pods
                    .wait_for_revision_timeout(revision_of(&p), Duration::from_secs(5))
                    .await;
                Ok(Some(p))
            }
            Ok(_) => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, pod: &Pod, uid: &str) -> Result<(), ApiError> {
        let res = self
            .client
            .modify::<Pod>(
                pod.metadata.namespace.as_deref(),
                pod.metadata.name.as_deref().unwrap_or(""),
                |p| {
                    let Some(refs) = p.metadata.owner_references.as_mut() else {
                        return false;
                    };
                    let before = refs.len();
                    refs.retain(|r| r.uid != uid);
                    refs.len() != before
                },
            )
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn write_status(&self, job: &mut Job) -> Result<(), ApiError> {
        let stored = self.client.update_status(job).await?;
        self.jobs
            .wait_for_revision_timeout(revision_of(&stored), Duration::from_secs(5))
            .await;
        *job = stored;
        Ok(())
    }

    async fn sync(&self, cached: Arc<Job>) -> Result<Action, ApiError> {
        let mut job = (*cached).clone();
        let job_uid = job.metadata.uid.clone().unwrap_or_default();
        let now = self.clock.now();
        if is_finished(&job) {
            self.backoff.lock().remove(&job_uid);
            // Pods left with the finalizer (a crash between steps) are released.
            for p in self.pods.owned_by(&job_uid) {
                if has_tracking_finalizer(&p) {
                    self.remove_finalizer(&p).await?;
                }
            }
            return Ok(Action::Done);
        }
        if let Some(mode) = job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) {
            if mode != "NonIndexed" && mode != "Indexed" {
                self.recorder.warning(
                    &job,
                    "UnknownCompletionMode",
                    "Skipped Job sync because completion mode is unknown",
                );
                return Ok(Action::Done);
            }
        }
        let status = job.status.get_or_insert_with(JobStatus::default);
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self.claim(&job).await?;
        let active: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| pods::is_active(p))
            .cloned()
            .collect();
        let mut cx = SyncCtx {
            ready: active.iter().filter(|p| pods::is_ready(p)).count() as i32,
            terminating: pods.iter().filter(|p| is_terminating(p)).count() as i32,
            active,
            succeeded: 0,
            uncounted_succeeded: uncounted
                .succeeded
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            uncounted_failed: uncounted
                .failed
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            prev_indexes: BTreeSet::new(),
            indexes: BTreeSet::new(),
            failed_indexes: BTreeSet::new(),
            new_backoff: BackoffRecord::default(),
            finished: None,
            pods,
        };
        let indexed = is_indexed(&job);
        let comps = completions(&job).unwrap_or(0);
        let counted = |p: &Pod, uncounted: &HashSet<String>| {
            has_tracking_finalizer(p)
                && !uncounted.contains(&uid(p))
                && (!indexed || valid_index(p, comps).is_some())
        };
        let new_succeeded: Vec<Arc<Pod>> = cx
            .pods
            .iter()
            .filter(|p| counted(p, &cx.uncounted_succeeded) && pods::phase(p) == "Succeeded")
            .cloned()
            .collect();
        let new_failed: Vec<Arc<Pod>> = cx
            .pods
            .iter()
            .filter(|p| counted(p, &cx.uncounted_failed) && is_pod_failed(p, &job))
            .cloned()
            .collect();
        let policy = failure_policy(&job).cloned();
        let status = job.status.as_ref().expect("status set above");
        cx.succeeded = status.succeeded.unwrap_or(0)
            + new_succeeded.len() as i32
            + cx.uncounted_succeeded.len() as i32;
        let non_ignored = new_failed
            .iter()
            .filter(|p| {
                policy
                    .as_ref()
                    .is_none_or(|pol| match_failure_policy(pol, p).counts)
            })
            .count() as i32;
        let failed = status.failed.unwrap_or(0) + non_ignored + cx.uncounted_failed.len() as i32;

        if status.start_time.is_none() && !is_suspended(&job) {
            job.status.as_mut().expect("status").start_time = Some(self.clock.now_k8s());
        }
        cx.new_backoff = self
            .backoff
            .lock()
            .get(&job_uid)
            .cloned()
            .unwrap_or_default()
            .advance(&new_succeeded, &new_failed);

        let now_k8s = self.clock.now_k8s();
        let mut requeue: Option<Duration> = None;
        cx.finished = condition(&job, "SuccessCriteriaMet").cloned();
        if cx.finished.is_none() {
            if let Some(ft) = condition(&job, "FailureTarget") {
                cx.finished = Some(new_condition(
                    "Failed",
                    ft.reason.as_deref().unwrap_or(""),
                    ft.message.as_deref().unwrap_or(""),
                    now_k8s.clone(),
                ));
            } else if let Some(pol) = &policy {
                if let Some(msg) = cx
                    .pods
                    .iter()
                    .filter(|p| is_pod_failed(p, &job))
                    .find_map(|p| match_failure_policy(pol, p).fail_job)
                {
                    cx.finished = Some(new_condition(
                        "FailureTarget",
                        "PodFailurePolicy",
                        &msg,
                        now_k8s.clone(),
                    ));
                }
            }
        }
        if cx.finished.is_none() {
            let start = job
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0);
            let deadline = job
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .filter(|_| !is_suspended(&job));
            if failed > backoff_limit(&job) || past_backoff_limit_on_failure(&job, &cx.pods) {
                cx.finished = Some(new_condition(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now_k8s.clone(),
                ));
            } else if let (Some(d), Some(start)) = (deadline, start) {
                let end = start + jiff::SignedDuration::from_secs(d);
                if now >= end {
                    cx.finished = Some(new_condition(
                        "FailureTarget",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                        now_k8s.clone(),
                    ));
                } else {
                    requeue = Some(self.clock.until(end) + Duration::from_millis(10));
                }
            }
        }
        if indexed {
            let prev = job
                .status
                .as_ref()
                .and_then(|s| s.completed_indexes.as_deref())
                .unwrap_or("");
            cx.prev_indexes = parse_indexes(prev, comps);
            cx.indexes = cx.prev_indexes.clone();
            for p in &cx.pods {
                if pods::phase(p) == "Succeeded" {
                    if let Some(i) = valid_index(p, comps) {
                        cx.indexes.insert(i);
                    }
                }
            }
            cx.succeeded = cx.indexes.len() as i32;
            if backoff_limit_per_index(&job).is_some() {
                let prev = job
                    .status
                    .as_ref()
                    .and_then(|s| s.failed_indexes.as_deref())
                    .unwrap_or("");
                cx.failed_indexes = parse_indexes(prev, comps);
                for p in &cx.pods {
                    if has_tracking_finalizer(p) && is_index_failed(&job, p) {
                        if let Some(i) = valid_index(p, comps) {
                            cx.failed_indexes.insert(i);
                        }
                    }
                }
                let max = job.spec.as_ref().and_then(|s| s.max_failed_indexes);
                let nfailed = cx.failed_indexes.len() as i32;
                if cx.finished.is_none() {
                    if max.is_some_and(|m| nfailed > m) {
                        cx.finished = Some(new_condition(
                            "FailureTarget",
                            "MaxFailedIndexesExceeded",
                            "Job has exceeded the specified maximal number of failed indexes",
                            now_k8s.clone(),
                        ));
                    } else if nfailed > 0 && nfailed + cx.succeeded >= comps {
                        cx.finished = Some(new_condition(
                            "FailureTarget",
                            "FailedIndexes",
                            "Job has failed indexes",
                            now_k8s.clone(),
                        ));
                    }
                }
            }
        }

        let mut newest = 0;
        let mut manage_err = None;
        let mut suspend_changed = false;
        let active;
        if cx.finished.is_some() {
            let all = cx.active.clone();
            let (deleted, ready, rev, err) = self.delete_active(&job, &all, false).await;
            newest = rev;
            if deleted != all.len() as i32 {
                cx.finished = None;
            }
            cx.terminating += deleted;
            cx.ready -= ready;
            active = all.len() as i32 - deleted;
            manage_err = err;
        } else {
            let mut a = cx.active.len() as i32;
            let managed = job.metadata.deletion_timestamp.is_none();
            if managed {
                let (n, rev, wait, err) = self.manage(&job, &mut cx).await;
                a = n;
                newest = rev;
                manage_err = err;
                if let Some(w) = wait {
                    requeue = Some(requeue.map_or(w, |r| r.min(w)));
                }
            }
            let complete = match completions(&job) {
                None => cx.succeeded > 0 && a == 0,
                Some(c) => cx.succeeded >= c && a == 0,
            };
            if complete {
                cx.finished = Some(new_condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now_k8s.clone(),
                ));
            } else if managed {
                let suspended = is_suspended(&job);
                let st = job.status.as_mut().expect("status");
                let conds = st.conditions.get_or_insert_with(Vec::new);
                let (status, reason, message) = if suspended {
                    ("True", "JobSuspended", "Job suspended")
                } else {
                    ("False", "JobResumed", "Job resumed")
                };
                if ensure_condition(conds, "Suspended", status, reason, message, now_k8s.clone()) {
                    suspend_changed = true;
                    if !suspended {
                        // The deadline counts from the resume.
                        st.start_time = Some(now_k8s.clone());
                    }
                    let event = if suspended { "Suspended" } else { "Resumed" };
                    self.recorder.normal(&job, event, message);
                }
            }
            active = a;
        }
        if newest > 0 {
            self.pods
                .wait_for_revision_timeout(newest, Duration::from_secs(5))
                .await;
        }

        let st = job.status.as_mut().expect("status");
        let mut needs_flush = suspend_changed
            || st.active.unwrap_or(0) != active
            || st.ready != Some(cx.ready)
            || st.terminating != Some(cx.terminating)
            || cached.status.as_ref().and_then(|s| s.start_time.as_ref()) != st.start_time.as_ref();
        st.active = Some(active);
        st.ready = Some(cx.ready);
        st.terminating = Some(cx.terminating);
        self.track_and_remove_finalizers(&mut job, cx, policy.as_ref(), &mut needs_flush)
            .await?;
        if let Some(e) = manage_err {
            return Err(e);
        }
        Ok(match requeue {
            Some(d) => Action::RequeueAfter(d),
            None => Action::Done,
        })
    }

    /// Upstream's `trackJobStatusAndRemoveFinalizers`: records finished pods in
    /// uncountedTerminatedPods, removes their finalizers, moves them into the counters, and
    /// adds the final condition once nothing is uncounted or terminating.
    async fn track_and_remove_finalizers(
        &self,
        job: &mut Job,
        mut cx: SyncCtx,
        policy: Option<&k8s_openapi::api::batch::v1::PodFailurePolicy>,
        needs_flush: &mut bool,
    ) -> Result<(), ApiError> {
        let indexed = is_indexed(job);
        let comps = completions(job).unwrap_or(0);
        let deleting = job.metadata.deletion_timestamp.is_some();
        let mut with_finalizer: HashSet<String> = cx
            .pods
            .iter()
            .filter(|p| has_tracking_finalizer(p))
            .map(|p| uid(p))
            .collect();
        let st = job.status.as_mut().expect("status");
        let mut uncounted = st.uncounted_terminated_pods.take().unwrap_or_default();
        if clean_uncounted(st, &mut uncounted, &with_finalizer) {
            *needs_flush = true;
        }
        let finishing_failed = cx
            .finished
            .as_ref()
            .is_some_and(|c| c.type_ != "SuccessCriteriaMet" && c.type_ != "Complete");
        let mut to_release: Vec<Arc<Pod>> = Vec::new();
        let mut new_indexes = Vec::new();
        for p in &cx.pods {
            if !has_tracking_finalizer(p) {
                continue;
            }
            let failed = is_pod_failed(p, job);
            let can_remove =
                deleting || cx.finished.is_some() || pods::phase(p) == "Succeeded" || failed;
            if !can_remove {
                continue;
            }
            to_release.push(p.clone());
            let id = uid(p);
            let uf = uncounted.failed.get_or_insert_with(Vec::new);
            if pods::phase(p) == "Succeeded" && !uf.contains(&id) {
                if indexed {
                    if let Some(i) = valid_index(p, comps) {
                        if !cx.prev_indexes.contains(&i) {
                            new_indexes.push(i);
                            *needs_flush = true;
                        }
                    }
                } else {
                    let us = uncounted.succeeded.get_or_insert_with(Vec::new);
                    if !us.contains(&id) {
                        us.push(id);
                        *needs_flush = true;
                    }
                }
            } else if failed || finishing_failed {
                let index_ok = !indexed || valid_index(p, comps).is_some();
                if !uf.contains(&id) && index_ok {
                    let counts = policy.is_none_or(|pol| match_failure_policy(pol, p).counts);
                    if counts {
                        uf.push(id);
                        *needs_flush = true;
                    }
                }
            }
        }
        let per_index = backoff_limit_per_index(job).is_some();
        let st = job.status.as_mut().expect("status");
        if indexed {
            cx.indexes.extend(new_indexes);
            let s = format_indexes(&cx.indexes);
            if st.completed_indexes.as_deref().unwrap_or("") != s {
                *needs_flush = true;
            }
            st.succeeded = Some(cx.indexes.len() as i32);
            st.completed_indexes = Some(s);
            if per_index {
                let f = Some(format_indexes(&cx.failed_indexes));
                if st.failed_indexes != f {
                    *needs_flush = true;
                    st.failed_indexes = f;
                }
            }
        }
        let mut finished = cx.finished.take();
        let conds = st.conditions.get_or_insert_with(Vec::new);
        if let Some(c) = finished.clone() {
            if c.type_ == "FailureTarget" {
                if !conds
                    .iter()
                    .any(|x| x.type_ == "FailureTarget" && x.status == "True")
                {
                    conds.push(c.clone());
                    *needs_flush = true;
                }
                finished = Some(new_condition(
                    "Failed",
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or(""),
                    self.clock.now_k8s(),
                ));
            } else if c.type_ == "SuccessCriteriaMet" {
                if !conds
                    .iter()
                    .any(|x| x.type_ == "SuccessCriteriaMet" && x.status == "True")
                {
                    conds.push(c.clone());
                    *needs_flush = true;
                }
                finished = Some(new_condition(
                    "Complete",
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or(""),
                    self.clock.now_k8s(),
                ));
            }
        }
        st.uncounted_terminated_pods = Some(uncounted);
        // 1. Record the newly finished pods before releasing them.
        if *needs_flush {
            self.write_status(job).await?;
            self.backoff.lock().insert(
                job.metadata.uid.clone().unwrap_or_default(),
                cx.new_backoff.clone(),
            );
            *needs_flush = false;
        }
        // 2. Release them.
        let results =
            futures::future::join_all(to_release.iter().map(|p| self.remove_finalizer(p))).await;
        let mut rm_err = None;
        let mut newest = 0;
        for (p, r) in to_release.iter().zip(results) {
            match r {
                Ok(rev) => {
                    with_finalizer.remove(&uid(p));
                    newest = newest.max(rev);
                }
                Err(e) => {
                    rm_err.get_or_insert(e);
                }
            }
        }
        if newest > 0 {
            self.pods
                .wait_for_revision_timeout(newest, Duration::from_secs(5))
                .await;
        }
        // 3. Count what was released.
        let st = job.status.as_mut().expect("status");
        let mut uncounted = st.uncounted_terminated_pods.take().unwrap_or_default();
        if clean_uncounted(st, &mut uncounted, &with_finalizer) {
            *needs_flush = true;
        }
        let nothing_uncounted = uncounted.succeeded.as_ref().is_none_or(|v| v.is_empty())
            && uncounted.failed.as_ref().is_none_or(|v| v.is_empty());
        st.uncounted_terminated_pods = Some(uncounted);
        if let Some(e) = rm_err {
            if *needs_flush {
                self.write_status(job).await?;
            }
            return Err(e);
        }
        // 4. Finish once every pod is counted and none is terminating.
        let mut done = None;
        if let Some(f) = finished {
            if nothing_uncounted && st.terminating.unwrap_or(0) == 0 {
                let conds = st.conditions.get_or_insert_with(Vec::new);
                ensure_condition(
                    conds,
                    &f.type_,
                    "True",
                    f.reason.as_deref().unwrap_or(""),
                    f.message.as_deref().unwrap_or(""),
                    self.clock.now_k8s(),
                );
                if f.type_ == "Complete" {
                    st.completion_time = Some(self.clock.now_k8s());
                }
                *needs_flush = true;
                done = Some(f);
            }
        }
        if *needs_flush {
            self.write_status(job).await?;
            if let Some(f) = done {
                if f.type_ == "Complete" {
                    let st = job.status.as_ref();
                    if let (Some(c), Some(s)) = (completions(job), st.and_then(|s| s.succeeded)) {
                        if s > c {
                            self.recorder.warning(
                                job,
                                "TooManySucceededPods",
                                "Too many succeeded pods running after completion count reached",
                            );
                        }
                    }
                    self.recorder.normal(job, "Completed", "Job completed");
                } else {
                    self.recorder.warning(
                        job,
                        f.reason.as_deref().unwrap_or("Failed"),
                        f.message.clone().unwrap_or_default(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Moves uncounted UIDs whose pods no longer carry the finalizer into the counters
/// (upstream's `cleanUncountedPodsWithoutFinalizers`).
fn clean_uncounted(
    st: &mut JobStatus,
    uncounted: &mut UncountedTerminatedPods,
    with_finalizer: &HashSet<String>,
) -> bool {
    let mut changed = false;
    if let Some(s) = uncounted.succeeded.as_mut() {
        let before = s.len();
        s.retain(|u| with_finalizer.contains(u));
        if s.len() != before {
            st.succeeded = Some(st.succeeded.unwrap_or(0) + (before - s.len()) as i32);
            changed = true;
        }
    }
    if let Some(f) = uncounted.failed.as_mut() {
        let before = f.len();
        f.retain(|u| with_finalizer.contains(u));
        if f.len() != before {
            st.failed = Some(st.failed.unwrap_or(0) + (before - f.len()) as i32);
            changed = true;
        }
    }
    changed
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        if let Some(pod_key) = key.strip_prefix(ORPHAN_PREFIX) {
            return self.clean_orphan(pod_key).await;
        }
        let Some(job) = self.jobs.get_key(key) else {
            return Ok(Action::Done);
        };
        let (_, _) = split_key(key);
        match self.sync(job).await {
            Err(e) if e.code == 404 => Ok(Action::Done),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_pods_move_from_uncounted_to_counters() {
        let mut st = JobStatus {
            succeeded: Some(2),
            failed: Some(1),
            ..Default::default()
        };
        let mut u = UncountedTerminatedPods {
            succeeded: Some(vec!["a".into(), "b".into()]),
            failed: Some(vec!["c".into()]),
        };
        let still: HashSet<String> = ["b".to_string()].into();
        assert!(clean_uncounted(&mut st, &mut u, &still));
        assert_eq!(st.succeeded, Some(3));
        assert_eq!(st.failed, Some(2));
        assert_eq!(u.succeeded, Some(vec!["b".to_string()]));
        assert_eq!(u.failed, Some(vec![]));
        assert!(!clean_uncounted(&mut st, &mut u, &still));
    }
}
