//! The scheduler as a control loop over Skiff's in-process runtime, after kube-scheduler's
//! `scheduleOne`: it keeps the snapshot in step with the shared informer cache (nodes, pods,
//! namespaces, and Services for default spreading), pops pods from the scheduling queue, assumes each decision in the snapshot and
//! binds through `pods/binding` in the background (a `Scheduled` event on success), and when
//! nothing fits sets `PodScheduled=False` (reason `Unschedulable`, the FitError as message)
//! and records a `FailedScheduling` warning. Preemption nominates the pod
//! (`status.nominatedNodeName`) and deletes its victims, marking them with a
//! `DisruptionTarget` condition first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, PodCondition, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use skiff_runtime::cache::{Change, Informer, Notification};
use skiff_runtime::{Client, Recorder, Runtime};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::framework::{Config, FitError, Scheduler};
use crate::metrics::SchedulerMetrics;
use crate::plugins::{inter_pod_affinity as ipa, pod_topology_spread as pts, PodCtx};
use crate::preemption::{self, Candidate, NoPreemption, Pdb};
use crate::queue::{responsible, Queue, QueuedPod, SCHEDULER_NAME};
use crate::snapshot::{node_changed, pod_key, split_pod_key, PodKey};

/// The field manager of the scheduler's writes.
pub const FIELD_MANAGER: &str = "kube-scheduler";
/// Binding and failure writes in flight at once.
const MAX_IN_FLIGHT: usize = 512;
/// How long a binding may take before the loop stops waiting for it and tries the pod again,
/// as upstream bounds a binding cycle's API calls by its context: a write that never answers
/// must not keep a pod assumed and out of the queue for good. If the binding did land, the
/// next attempt finds the pod bound.
const BIND_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the loop checks that every pending pod it is responsible for is queued, assumed
/// or bound (a pod missing from all three would never be scheduled).
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Starts the scheduler on the runtime; it stops with the runtime. Should the loop ever
/// panic, it is restarted from a fresh snapshot rather than leaving pods unscheduled. Its
/// metrics are served on the API server's `/metrics`.
///
/// On a multi-threaded runtime (the server) the loop runs on an operating-system thread of
/// its own, so the kernel schedules it apart from the other tasks (see [`LoopThread`]); its
/// binding and event writes run on the control loops' runtime (the server's control-plane
/// threads, see `skiff_runtime::threads`). On a current-thread runtime (tests
/// with paused time) it is a task like any other.
pub fn start(rt: &Runtime, config: Config) {
    let metrics = Arc::new(SchedulerMetrics::default());
    let m = metrics.clone();
    rt.api
        .metrics()
        .add_source(Arc::new(move |out| m.render(out)));
    // The control loops' runtime: the server's control-plane threads, else the current one.
    let main = rt.tasks.handle();
    let own_thread = main.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread;
    let r = rt.clone();
    rt.spawn(async move {
        loop {
            // Informers and the event recorder start their tasks here, on the runtime.
            let inputs = Inputs::new(&r);
            let writes = main.clone();
            let fut = run_with(r.clone(), config, metrics.clone(), inputs, writes);
            let panicked = if own_thread {
                match LoopThread::spawn(fut) {
                    Ok(t) => t.finished().await,
                    Err(e) => {
                        tracing::warn!(error = %e, "no thread for the scheduler; running it as a task");
                        let fut = run_with(
                            r.clone(),
                            config,
                            metrics.clone(),
                            Inputs::new(&r),
                            main.clone(),
                        );
                        task_finished(fut).await
                    }
                }
            } else {
                task_finished(fut).await
            };
            if !panicked {
                break;
            }
            tracing::error!("scheduler loop panicked; restarting");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}

/// Runs `fut` as a task and says whether it panicked.
async fn task_finished(fut: impl std::future::Future<Output = ()> + Send + 'static) -> bool {
    let mut task = AbortOnDrop(tokio::spawn(fut));
    matches!((&mut task.0).await, Err(e) if e.is_panic())
}

/// Aborts the task when dropped (the runtime stopping aborts the supervisor, and with it the
/// loop).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The scheduling loop on a thread of its own, with a current-thread runtime for its
/// timers and channels. A decision is not interrupted by the API's tasks, which on a shared
/// worker thread would queue behind it or it behind them; the kernel still shares the cores
/// among threads. Dropping the handle (the supervisor being aborted) stops the loop.
struct LoopThread {
    done: tokio::sync::oneshot::Receiver<bool>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl LoopThread {
    fn spawn(fut: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<Self> {
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || {
                skiff_runtime::threads::set_own_nice(LOOP_THREAD_NICE, "scheduler");
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    rt.block_on(async {
                        tokio::select! {
                            _ = fut => {}
                            _ = stop_rx => {}
                        }
                    })
                }));
                let _ = done_tx.send(ran.is_err());
            })?;
        Ok(LoopThread { done, _stop: stop })
    }

    /// Waits for the loop to end; whether it panicked.
    async fn finished(self) -> bool {
        let LoopThread { done, _stop } = self;
        done.await.unwrap_or(false)
    }
}

/// The loop thread's nice value, when the process may raise priority (root or
/// `CAP_SYS_NICE`): ten steps above the control plane's threads (about nine times their weight
/// in the kernel's fair scheduler; they are five above the API's), so a decision is rarely
/// preempted halfway by the loops' writes or the clients' requests. At ten steps above the API
/// only, the decision p99 with anti-affinity on 5,000 nodes rose from about 0.2 ms to 0.5–1.3 ms
/// once the control plane's threads had five. The loop uses little CPU (a few per cent of a
/// pod's), so this costs the rest next to nothing.
pub const LOOP_THREAD_NICE: i32 = skiff_runtime::threads::CONTROL_PLANE_NICE - 10;

/// The informers the loop reads, and its writers, made on the runtime that runs their tasks.
pub struct Inputs {
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    namespaces: Informer<Namespace>,
    pdbs: Informer<PodDisruptionBudget>,
    services: Informer<Service>,
    recorder: Recorder,
}

impl Inputs {
    pub fn new(rt: &Runtime) -> Inputs {
        Inputs {
            nodes: rt.cache.informer::<Node>(),
            pods: rt.cache.informer::<Pod>(),
            namespaces: rt.cache.informer::<Namespace>(),
            pdbs: rt.cache.informer::<PodDisruptionBudget>(),
            services: rt.cache.informer::<Service>(),
            recorder: rt.recorder(SCHEDULER_NAME),
        }
    }
}

/// What a background write reports back to the loop.
enum Outcome {
    Bound(QueuedPod, Result<(), skiff_core::ApiError>),
    Recorded,
}

struct Loop {
    sched: Scheduler,
    queue: Queue,
    /// Pods assumed on a node while their binding is in flight.
    assumed: HashMap<PodKey, String>,
    /// The pod each binding task is for, so a task that panics still gives its pod back.
    binding_tasks: HashMap<tokio::task::Id, QueuedPod>,
    /// Pods the last sweep found neither queued, assumed nor bound (see [`lost_pods`]).
    suspects: HashSet<PodKey>,
    client: Client,
    recorder: Recorder,
    rt: Runtime,
    metrics: Arc<SchedulerMetrics>,
    /// Where binding and event writes run (the control loops' runtime).
    writes_on: tokio::runtime::Handle,
}

/// Runs the scheduler until the runtime stops it, on the current runtime.
pub async fn run(rt: Runtime, config: Config, metrics: Arc<SchedulerMetrics>) {
    let inputs = Inputs::new(&rt);
    let here = tokio::runtime::Handle::current();
    run_with(rt, config, metrics, inputs, here).await
}

/// Runs the scheduler until the runtime stops it; its binding and event writes run on
/// `writes_on`.
pub async fn run_with(
    rt: Runtime,
    config: Config,
    metrics: Arc<SchedulerMetrics>,
    inputs: Inputs,
    writes_on: tokio::runtime::Handle,
) {
    let Inputs {
        nodes,
        pods,
        namespaces,
        pdbs,
        services,
        recorder,
    } = inputs;
    let mut node_sub = nodes.subscribe();
    let mut pod_sub = pods.subscribe();
    let mut ns_sub = namespaces.subscribe();
    let mut svc_sub = services.subscribe();
    nodes.synced().await;
    pods.synced().await;
    namespaces.synced().await;
    pdbs.synced().await;
    services.synced().await;
    let mut lp = Loop {
        sched: Scheduler::new(config),
        queue: Queue::new(),
        assumed: HashMap::new(),
        binding_tasks: HashMap::new(),
        suspects: HashSet::new(),
        client: rt.client(FIELD_MANAGER),
        recorder,
        rt: rt.clone(),
        metrics,
        writes_on,
    };
    lp.resync(&nodes, &pods, &namespaces, &services);
    tracing::info!(nodes = lp.sched.snapshot.num_nodes(), "scheduler started");
    let mut writes: JoinSet<Outcome> = JoinSet::new();
    let sweep = tokio::time::sleep(SWEEP_EVERY);
    tokio::pin!(sweep);
    loop {
        let ready = writes.len() < MAX_IN_FLIGHT && lp.queue.has_ready(Instant::now());
        let wake = lp.queue.next_wakeup();
        tokio::select! {
            n = node_sub.recv() => match n {
                Some(Notification::Changed(c)) => lp.on_node(&c),
                Some(Notification::Resync) => lp.resync(&nodes, &pods, &namespaces, &services),
                None => break,
            },
            n = pod_sub.recv() => match n {
                Some(Notification::Changed(c)) => lp.on_pod(&c),
                Some(Notification::Resync) => lp.resync(&nodes, &pods, &namespaces, &services),
                None => break,
            },
            n = ns_sub.recv() => match n {
                Some(Notification::Changed(c)) => lp.on_namespace(&c),
                Some(Notification::Resync) => lp.resync(&nodes, &pods, &namespaces, &services),
                None => break,
            },
            n = svc_sub.recv() => match n {
                Some(Notification::Changed(c)) => lp.on_service(&c),
                Some(Notification::Resync) => lp.resync(&nodes, &pods, &namespaces, &services),
                None => break,
            },
            Some(done) = writes.join_next_with_id(), if !writes.is_empty() => {
                lp.on_joined(done, &pods);
            }
            _ = &mut sweep => {
                lp.sweep(&pods);
                sweep.as_mut().reset(Instant::now() + SWEEP_EVERY);
            }
            _ = std::future::ready(()), if ready => lp.schedule_one(&pods, &pdbs, &mut writes),
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() && !ready => {}
        }
    }
}

fn service_selector(s: &Service) -> (&str, &str, std::collections::BTreeMap<String, String>) {
    (
        s.metadata.namespace.as_deref().unwrap_or(""),
        s.metadata.name.as_deref().unwrap_or(""),
        s.spec
            .as_ref()
            .and_then(|sp| sp.selector.clone())
            .unwrap_or_default(),
    )
}

fn node_of(p: &Pod) -> Option<&str> {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn nominated_of(p: &Pod) -> Option<&str> {
    p.status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Whether two versions of a placed pod look the same to the scheduler (only status details
/// it does not use differ).
fn same_for_scheduling(a: &Pod, b: &Pod) -> bool {
    let phase = |p: &Pod| {
        matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded") | Some("Failed")
        )
    };
    let start = |p: &Pod| p.status.as_ref().and_then(|s| s.start_time.clone());
    a.spec == b.spec
        && a.metadata.labels == b.metadata.labels
        && a.metadata.deletion_timestamp == b.metadata.deletion_timestamp
        && a.metadata.owner_references == b.metadata.owner_references
        && phase(a) == phase(b)
        && start(a) == start(b)
}

/// Whether a failure depended on other pods' placement.
fn waits_for_pods(fit: &FitError) -> bool {
    fit.statuses.iter().any(|(_, f)| {
        f.reasons.iter().any(|r| {
            let r: &str = r;
            [
                ipa::AFFINITY_REASON,
                ipa::ANTI_AFFINITY_REASON,
                ipa::EXISTING_ANTI_AFFINITY_REASON,
                pts::REASON,
            ]
            .contains(&r)
        })
    })
}

impl Loop {
    fn resync(
        &mut self,
        nodes: &Informer<Node>,
        pods: &Informer<Pod>,
        nss: &Informer<Namespace>,
        services: &Informer<Service>,
    ) {
        let now = Instant::now();
        let mut snap = crate::snapshot::Snapshot::new();
        for s in services.list() {
            let (ns, name, selector) = service_selector(&s);
            snap.upsert_service(ns, name, selector);
        }
        for n in nodes.list() {
            snap.upsert_node(n);
        }
        for ns in nss.list() {
            if let Some(name) = &ns.metadata.name {
                snap.namespace_labels
                    .insert(name.clone(), ns.metadata.labels.clone().unwrap_or_default());
            }
        }
        for p in pods.list() {
            let key = pod_key(&p);
            if node_of(&p).is_some() {
                snap.upsert_pod(p);
                self.queue.delete(&key);
            } else if let Some(node) = self.assumed.get(&key) {
                let mut assumed = (*p).clone();
                assumed.spec.get_or_insert_with(Default::default).node_name = Some(node.clone());
                snap.upsert_pod(Arc::new(assumed));
            } else if responsible(&p) {
                if let Some(n) = nominated_of(&p) {
                    snap.nominate(Arc::new(crate::snapshot::PodInfo::new(p.clone())), n);
                }
                self.queue.add(p, now);
            }
        }
        self.sched.snapshot = snap;
        self.queue.move_all(now);
    }

    fn on_node(&mut self, c: &Change<Node>) {
        let now = Instant::now();
        match (&c.old, &c.new) {
            (_, None) => {
                if let Some(n) = c.old.as_ref().and_then(|o| o.metadata.name.as_deref()) {
                    self.sched.snapshot.remove_node(n);
                }
            }
            (old, Some(new)) => {
                if self.sched.snapshot.holds_node(new) {
                    // A heartbeat: nothing the scheduler reads changed.
                    return;
                }
                let changed = old.as_ref().is_none_or(|o| node_changed(o, new));
                self.sched.snapshot.upsert_node(new.clone());
                if changed {
                    self.queue.move_all(now);
                }
            }
        }
    }

    fn on_namespace(&mut self, c: &Change<Namespace>) {
        let ns = c.object();
        let Some(name) = ns.metadata.name.clone() else {
            return;
        };
        match &c.new {
            Some(n) => {
                self.sched
                    .snapshot
                    .namespace_labels
                    .insert(name, n.metadata.labels.clone().unwrap_or_default());
            }
            None => {
                self.sched.snapshot.namespace_labels.remove(&name);
            }
        }
    }

    /// Services only change how pods spread (a score), so nothing is re-queued.
    fn on_service(&mut self, c: &Change<Service>) {
        let (ns, name, selector) = service_selector(c.object());
        match &c.new {
            Some(_) => self.sched.snapshot.upsert_service(ns, name, selector),
            None => self.sched.snapshot.remove_service(ns, name),
        }
    }

    fn on_pod(&mut self, c: &Change<Pod>) {
        let now = Instant::now();
        let key = pod_key(c.object());
        let Some(new) = &c.new else {
            // Deleted.
            self.queue.delete(&key);
            self.assumed.remove(&key);
            self.sched.snapshot.clear_nomination(&key);
            if self.sched.snapshot.remove_pod(&key).is_some() {
                self.queue.move_all(now);
            }
            return;
        };
        if let Some(node) = node_of(new) {
            if c.old.as_ref().is_some_and(|o| same_for_scheduling(o, new))
                && self.sched.snapshot.pod_node(&key) == Some(node)
            {
                // A status heartbeat of a placed pod: nothing the scheduler uses changed.
                return;
            }
            self.assumed.remove(&key);
            self.queue.delete(&key);
            let was_placed = c.old.as_ref().and_then(|o| node_of(o)).is_some();
            let labels_changed = c
                .old
                .as_ref()
                .is_some_and(|o| o.metadata.labels != new.metadata.labels);
            let phase = new.status.as_ref().and_then(|s| s.phase.as_deref());
            let finished = matches!(phase, Some("Succeeded") | Some("Failed"));
            let before = self.sched.snapshot.pod_node(&key).map(str::to_string);
            self.sched.snapshot.upsert_pod(new.clone());
            if finished && before.is_some() || labels_changed {
                self.queue.move_all(now);
            } else if !was_placed && before.as_deref() != Some(node) {
                self.queue.move_waiting_for_pods(now);
            }
            return;
        }
        if self.assumed.contains_key(&key) {
            return;
        }
        if responsible(new) {
            if let Some(n) = nominated_of(new) {
                self.sched
                    .snapshot
                    .nominate(Arc::new(crate::snapshot::PodInfo::new(new.clone())), n);
            }
            if self.queue.add(new.clone(), now) {
                self.metrics
                    .incoming_added
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        } else {
            self.queue.delete(&key);
            self.sched.snapshot.clear_nomination(&key);
        }
    }

    /// A background write ended (or its task panicked).
    fn on_joined(
        &mut self,
        done: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>,
        pods: &Informer<Pod>,
    ) {
        match done {
            Ok((id, o)) => {
                if matches!(o, Outcome::Bound(..)) {
                    self.binding_tasks.remove(&id);
                }
                self.on_outcome(o, pods);
            }
            Err(e) => {
                if let Some(qp) = self.binding_tasks.remove(&e.id()) {
                    tracing::error!(pod = %qp.key, error = %e, "binding task failed; the pod is tried again");
                    let err = skiff_core::ApiError::internal("the binding task failed");
                    self.on_outcome(Outcome::Bound(qp, Err(err)), pods);
                }
            }
        }
    }

    fn on_outcome(&mut self, o: Outcome, pods: &Informer<Pod>) {
        let now = Instant::now();
        match o {
            Outcome::Bound(qp, Ok(())) => self.queue.done(&qp.key),
            Outcome::Bound(qp, Err(e)) => {
                if self.assumed.remove(&qp.key).is_some() {
                    self.sched.snapshot.remove_pod(&qp.key);
                }
                // As upstream's failure handler: a pod gone from the cache is forgotten;
                // one still pending goes to back-off, whatever the error said.
                let (ns, name) = split_pod_key(&qp.key);
                let pending = pods.get(Some(ns), name).is_some_and(|p| responsible(&p));
                if pending {
                    if e.code == 404 || e.code >= 500 {
                        tracing::warn!(pod = %qp.key, code = e.code, error = %e.message, "binding failed for a pod still pending; it is tried again");
                    } else {
                        tracing::debug!(pod = %qp.key, error = %e.message, "binding failed");
                    }
                    self.queue.error(&qp, now);
                } else {
                    self.queue.delete(&qp.key);
                }
            }
            Outcome::Recorded => {}
        }
    }

    /// Puts back pods that fell out of the loop's hands: pending, this scheduler's, and in
    /// neither the queue nor the assumed set for two sweeps running (one sweep could see a
    /// pod whose notification is still on its way). Each is a bug worth a warning.
    fn sweep(&mut self, pods: &Informer<Pod>) {
        let now = Instant::now();
        let all = pods.list();
        let (lost, suspects) = lost_pods(&all, &self.suspects, |k| {
            self.queue.contains(k) || self.assumed.contains_key(k)
        });
        self.suspects = suspects;
        for p in lost {
            tracing::warn!(pod = %pod_key(&p), "a pending pod was in no scheduling queue; queueing it");
            self.queue.add(p, now);
        }
    }

    fn schedule_one(
        &mut self,
        pods: &Informer<Pod>,
        pdbs: &Informer<PodDisruptionBudget>,
        writes: &mut JoinSet<Outcome>,
    ) {
        let now = Instant::now();
        let Some(qp) = self.queue.pop(now) else {
            return;
        };
        let (ns, name) = split_pod_key(&qp.key);
        let pod = match pods.get(Some(ns), name) {
            Some(p) if responsible(&p) => p,
            _ => {
                self.queue.delete(&qp.key);
                return;
            }
        };
        // Real time, not the runtime's clock: this measures the work (see `metrics`).
        let started = std::time::Instant::now();
        let ctx = PodCtx::new(pod.clone());
        let decision = self.sched.schedule_ctx(&ctx);
        if decision.is_ok() {
            self.metrics.algorithm_duration.observe(started.elapsed());
        }
        match decision {
            Ok(r) => {
                self.sched.assume_info(ctx.info.clone(), &r.node);
                self.assumed.insert(qp.key.clone(), r.node.clone());
                let client = self.client.clone();
                let recorder = self.recorder.clone();
                let metrics = self.metrics.clone();
                let for_task = qp.clone();
                let task = writes.spawn_on(
                    async move {
                        let (ns, name) = split_pod_key(&qp.key);
                        let uid = pod.metadata.uid.as_deref().unwrap_or("");
                        let res = match tokio::time::timeout(
                            BIND_TIMEOUT,
                            client.bind_uid(ns, name, uid, &r.node),
                        )
                        .await
                        {
                            Ok(res) => res,
                            Err(_) => {
                                tracing::warn!(pod = %qp.key, "binding did not answer in {BIND_TIMEOUT:?}");
                                Err(skiff_core::ApiError::timeout(
                                    "the binding did not answer in time",
                                ))
                            }
                        };
                        // Counted here, as the persisted binding returns, not when the loop
                        // later reads the outcome: readers see when pods were bound.
                        let counter = if res.is_ok() {
                            &metrics.scheduled
                        } else {
                            &metrics.errors
                        };
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if res.is_ok() {
                            recorder.normal(
                                &*pod,
                                "Scheduled",
                                format!("Successfully assigned {ns}/{name} to {}", r.node),
                            );
                        }
                        Outcome::Bound(qp, res)
                    },
                    &self.writes_on,
                );
                self.binding_tasks.insert(task.id(), for_task);
            }
            Err(failed) => {
                self.metrics
                    .unschedulable
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let crate::framework::Failed { mut fit, state } = *failed;
                let mut candidate = None;
                if fit.num_all_nodes > 0 {
                    let budgets: Vec<Pdb> = pdbs.list().iter().map(|p| Pdb::new(p)).collect();
                    match preemption::preempt(&ctx, &state, &self.sched.snapshot, &fit, &budgets) {
                        Ok(c) => candidate = Some(c),
                        Err(NoPreemption(m)) => fit.post_filter_msg = m,
                    }
                }
                // Lower-priority pods nominated to the chosen node lose the nomination
                // (upstream's getLowerPriorityNominatedPods).
                let mut displaced = Vec::new();
                if let Some(c) = &candidate {
                    displaced = self
                        .sched
                        .snapshot
                        .nominated_on(&c.node)
                        .iter()
                        .filter(|p| p.priority < ctx.info.priority)
                        .map(|p| (p.namespace.clone(), p.name.clone(), p.key.clone()))
                        .collect();
                    for (_, _, key) in &displaced {
                        self.sched.snapshot.clear_nomination(key);
                    }
                    self.sched.snapshot.nominate(ctx.info.clone(), &c.node);
                    if !displaced.is_empty() {
                        self.queue.move_all(now);
                    }
                }
                self.queue.unschedulable(&qp, now, waits_for_pods(&fit));
                let msg = fit.to_string();
                tracing::debug!(pod = %qp.key, %msg, "unschedulable");
                let client = self.client.clone();
                let recorder = self.recorder.clone();
                let clock = self.rt.clock;
                writes.spawn_on(
                    async move {
                        record_failure(&client, &recorder, clock, &pod, &msg, candidate).await;
                        for (ns, name, _) in displaced {
                            let _ = client
                                .modify_status::<Pod>(Some(&ns), &name, |p| {
                                    let st = p.status.get_or_insert_with(Default::default);
                                    st.nominated_node_name.take().is_some()
                                })
                                .await;
                        }
                        Outcome::Recorded
                    },
                    &self.writes_on,
                );
            }
        }
    }
}

/// The pods of `all` this scheduler should place that `held` does not know, and were already
/// suspects at the last sweep (returned first); and those seen missing for the first time
/// (the next sweep's suspects).
fn lost_pods(
    all: &[Arc<Pod>],
    suspects: &HashSet<PodKey>,
    held: impl Fn(&str) -> bool,
) -> (Vec<Arc<Pod>>, HashSet<PodKey>) {
    let mut lost = Vec::new();
    let mut next = HashSet::new();
    for p in all {
        if !responsible(p) {
            continue;
        }
        let key = pod_key(p);
        if held(&key) {
            continue;
        }
        if suspects.contains(&key) {
            lost.push(p.clone());
        } else {
            next.insert(key);
        }
    }
    (lost, next)
}

fn set_condition(pod: &mut Pod, cond: PodCondition) -> bool {
    let status = pod.status.get_or_insert_with(Default::default);
    let conds = status.conditions.get_or_insert_with(Vec::new);
    match conds.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(c) => {
            if c.status == cond.status && c.reason == cond.reason && c.message == cond.message {
                return false;
            }
            let transition = if c.status == cond.status {
                c.last_transition_time.clone()
            } else {
                cond.last_transition_time.clone()
            };
            *c = PodCondition {
                last_transition_time: transition,
                ..cond
            };
        }
        None => conds.push(cond),
    }
    true
}

async fn record_failure(
    client: &Client,
    recorder: &Recorder,
    clock: skiff_runtime::Clock,
    pod: &Pod,
    msg: &str,
    candidate: Option<Candidate>,
) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if let Some(c) = &candidate {
        for v in &c.victims {
            let cond = PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                reason: Some("PreemptionByScheduler".into()),
                message: Some(format!(
                    "{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"
                )),
                last_transition_time: Some(clock.now_k8s()),
                ..Default::default()
            };
            let _ = client
                .modify_status::<Pod>(Some(&v.namespace), &v.name, |p| {
                    set_condition(p, cond.clone())
                })
                .await;
            match client
                .delete_uid::<Pod>(Some(&v.namespace), &v.name, &v.uid)
                .await
            {
                Ok(_) => recorder.normal(
                    &*v.pod,
                    "Preempted",
                    format!("Preempted by pod {uid} on node {}", c.node),
                ),
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(victim = %v.key, error = %e.message, "preemption delete failed")
                }
            }
        }
    }
    recorder.warning(pod, "FailedScheduling", msg.to_string());
    let cond = PodCondition {
        type_: "PodScheduled".into(),
        status: "False".into(),
        reason: Some("Unschedulable".into()),
        message: Some(msg.to_string()),
        last_transition_time: Some(clock.now_k8s()),
        ..Default::default()
    };
    let nominated = candidate.as_ref().map(|c| c.node.clone());
    let r = client
        .modify_status::<Pod>(Some(ns), name, |p| {
            if p.metadata.uid.as_deref() != Some(uid.as_str()) || node_of(p).is_some() {
                return false;
            }
            let mut changed = set_condition(p, cond.clone());
            if let Some(n) = &nominated {
                let st = p.status.get_or_insert_with(Default::default);
                if st.nominated_node_name.as_ref() != Some(n) {
                    st.nominated_node_name = Some(n.clone());
                    changed = true;
                }
            }
            changed
        })
        .await;
    if let Err(e) = r {
        if e.code != 404 {
            tracing::debug!(pod = %name, error = %e.message, "could not record the scheduling failure");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(name: &str, node: Option<&str>) -> Arc<Pod> {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap();
        p.spec.as_mut().unwrap().node_name = node.map(str::to_string);
        Arc::new(p)
    }

    #[test]
    fn a_pod_missing_from_queue_and_assumed_is_lost_at_its_second_sweep() {
        let all = vec![
            pending("queued", None),
            pending("missing", None),
            pending("bound", Some("n1")),
        ];
        let held = |k: &str| k == "default/queued";
        let (lost, suspects) = lost_pods(&all, &HashSet::new(), held);
        assert!(
            lost.is_empty(),
            "one sweep is not enough to call a pod lost"
        );
        assert_eq!(
            suspects,
            HashSet::from(["default/missing".to_string()]),
            "bound pods and queued pods are no suspects"
        );
        let (lost, suspects) = lost_pods(&all, &suspects, held);
        let names: Vec<_> = lost.iter().map(|p| pod_key(p)).collect();
        assert_eq!(names, ["default/missing"]);
        assert!(suspects.is_empty());
    }

    #[test]
    fn a_suspect_that_reached_the_queue_is_not_lost() {
        let all = vec![pending("late", None)];
        let suspects = HashSet::from(["default/late".to_string()]);
        let (lost, next) = lost_pods(&all, &suspects, |k| k == "default/late");
        assert!(lost.is_empty());
        assert!(next.is_empty());
    }
}
