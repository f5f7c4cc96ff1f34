//! Simulated nodes: kubelets without containers, like KWOK but inside the server.
//!
//! `skiff server --fake-nodes N` registers Nodes `fake-node-0` … `fake-node-(N-1)` ([`node`]),
//! keeps their Leases in `kube-node-lease` renewed every 10 s (or a quarter of a shorter
//! `--node-monitor-grace-period`) and their status reported every
//! 5 minutes (upstream's `nodeStatusReportFrequency`; sooner when the status is not what a
//! healthy kubelet reports, such as after the node lifecycle controller marked it Unknown), and
//! moves the pods bound to them through their lives ([`pod`]): Pending → Running with an IP
//! from the node's pod CIDR ([`ipam`]) → Ready, finishing, failing at activeDeadlineSeconds or
//! crash-looping as scripted, and graceful deletion: the pod reported terminal, then deleted
//! with grace period 0 and a uid precondition, as the kubelet's status manager does.
//!
//! Cost: one task ticks (every 20 ms, or every 1/500 of a renewal interval over 10 s) for
//! every node's heartbeats (renewals and status reports spread evenly over their periods, so a
//! tick writes a few, never a second's worth at once; at most 64 at a time), and one
//! work queue with a pool of workers serves every pod; per node the simulator keeps 72 bytes
//! ([`NodeSim`]), per pod its [`pod::Life`] and IP (about 250 bytes). A node annotated `sim.skiff.dev/heartbeat: stopped` behaves like a
//! dead kubelet: no Lease renewals, no status reports, no pod updates, until the annotation
//! goes.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use parking_lot::Mutex;
use skiff_apiserver::objects::DeleteOptions;
use skiff_core::ApiError;
use skiff_runtime::cache::{key_of, Notification};
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::{Client, Clock, Informer, Object, Recorder, Runtime, WorkQueue};
use tokio::time::Instant;

pub mod ipam;
pub mod node;
pub mod pod;
mod status_json;

pub use node::OptionError;

use ipam::Ipam;
use pod::{Life, Placement, RestartPolicy};

/// The field manager and event source of simulated kubelets.
pub const COMPONENT: &str = "kubelet";
/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often a node renews its Lease by default (the kubelet's: a quarter of the 40 s
/// duration).
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
/// The Lease duration a node announces (the kubelet's default).
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// How often an unchanged node status is reported (upstream's nodeStatusReportFrequency).
pub const STATUS_REPORT: Duration = Duration::from_secs(300);
/// Concurrent writes of the heartbeat loop.
const HEARTBEAT_CONCURRENCY: usize = 64;
/// How soon a failed Lease renewal or status report is tried again.
const HEARTBEAT_RETRY: Duration = Duration::from_secs(1);

/// The heartbeat loop's tick for a renewal interval: fine enough that the renewals of
/// thousands of nodes, spread evenly over the interval, go out a few per tick (5,000 nodes
/// renewing every 10 s: 10 per 20 ms tick). A one-second tick wrote 500 Leases back to back,
/// a burst that held up every other write and watch for tens of milliseconds each second;
/// real kubelets, started at different times, never line up like that.
fn heartbeat_tick(renew: Duration) -> Duration {
    (renew / 500).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

/// When node `i` of `count` first renews its Lease and first reports its status after
/// `now`: renewals spread evenly over the renewal interval, first status reports over the
/// second half of their five minutes, as kubelets started at different times are.
fn first_heartbeats(i: usize, count: usize, now: Instant, renew: Duration) -> (Instant, Instant) {
    let share = i as f64 / count.max(1) as f64;
    (
        now + renew.mul_f64(share).max(Duration::from_millis(1)),
        now + STATUS_REPORT.mul_f64(0.5 + share / 2.0),
    )
}
/// Pod workers: how many pods' status writes may wait for their commit at once. Each kubelet
/// writes its own pods' statuses, so a thousand nodes' kubelets have as many writes in flight
/// as there are nodes with pods starting; a small pool made them queue behind each other's
/// commits instead. With 32, the last pods of a 10,000-replica rollout on 1,000 nodes came
/// Ready 180-360 ms after the last was created, as the pool drained a backlog of a thousand
/// and more status writes 32 commits at a time; with 128, 20-50 ms (`skiff bench --only
/// rollout`, docs/architecture.md, session 22).
const POD_WORKERS: usize = 128;

/// How simulated nodes are made (`--fake-nodes`, `--fake-node-capacity`, …).
#[derive(Debug, Clone)]
pub struct Options {
    /// How many nodes: `fake-node-0` … `fake-node-(count-1)`.
    pub count: usize,
    /// Capacity (and allocatable) of each node, as quantities: `cpu=4,memory=16Gi,pods=110`.
    pub capacity: BTreeMap<String, String>,
    /// Extra labels on every node.
    pub labels: BTreeMap<String, String>,
    /// Taints on every node: `key=value:Effect` or `key:Effect`.
    pub taints: Vec<String>,
    /// How long after a pod is seen on its node its containers start (the
    /// `sim.skiff.dev/start-delay` annotation overrides it per pod).
    pub pod_start_delay: Duration,
    /// How long containers take to stop when their pod is deleted (at most its grace period).
    pub pod_stop_delay: Duration,
    /// How often each node renews its Lease (10 s; the server shortens it to a quarter of a
    /// shortened `--node-monitor-grace-period`).
    pub lease_renew_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            count: 0,
            capacity: [("cpu", "4"), ("memory", "16Gi"), ("pods", "110")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            pod_start_delay: Duration::ZERO,
            pod_stop_delay: Duration::from_millis(500),
            lease_renew_interval: LEASE_RENEW,
        }
    }
}

impl Options {
    /// Checks the settings and turns them into a node template.
    pub fn template(&self) -> Result<node::Template, OptionError> {
        node::check_capacity(&self.capacity)?;
        node::check_labels(&self.labels)?;
        let taints = self
            .taints
            .iter()
            .map(|t| node::parse_taint(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(node::Template {
            capacity: self.capacity.clone(),
            labels: self.labels.clone(),
            taints,
        })
    }
}

/// Starts the simulated nodes; they run until the runtime shuts down. Fails at once on bad
/// options (a malformed taint, capacity or label).
pub fn start(rt: &Runtime, opts: &Options) -> Result<(), OptionError> {
    let tpl = opts.template()?;
    if opts.count == 0 {
        return Ok(());
    }
    let sim = Arc::new(Simulator::new(rt, opts, tpl));
    let rt2 = rt.clone();
    rt.spawn(async move { sim.run(rt2).await });
    Ok(())
}

/// What the simulator keeps per node.
#[derive(Debug, Clone)]
pub struct NodeSim {
    ipam: Ipam,
    /// The Node exists and was registered or taken over by this simulator.
    registered: bool,
    /// `sim.skiff.dev/heartbeat: stopped`: the kubelet plays dead.
    stopped: bool,
    /// The Node was deleted; its pods are left to the pod GC.
    gone: bool,
    next_lease: Instant,
    next_status: Instant,
}

impl NodeSim {
    fn new(now: Instant) -> NodeSim {
        NodeSim {
            ipam: Ipam::default(),
            registered: false,
            stopped: false,
            gone: false,
            next_lease: now,
            next_status: now + STATUS_REPORT,
        }
    }

    fn alive(&self) -> bool {
        self.registered && !self.stopped && !self.gone
    }
}

/// What the simulator keeps per pod.
#[derive(Debug)]
struct PodSim {
    uid: Box<str>,
    node: u32,
    /// Host octet of the pod's IP in its node's `/24`, while held.
    ip: Option<u8>,
    life: Life,
    /// When the simulator first saw the pod terminating.
    terminating_since: Option<Timestamp>,
    /// Whether a warning about its annotations was reported.
    warned: bool,
    /// The revision of the status this simulator last wrote for the pod's current life: a
    /// pod still at that revision shows what a render would give again (nobody else wrote
    /// it since, and the life has not moved), so its sync needs no render.
    written: Option<i64>,
}

struct Simulator {
    tpl: node::Template,
    count: usize,
    start_delay: Duration,
    stop_delay: Duration,
    renew: Duration,
    /// The heartbeat loop's tick: 1/500 of the renewal interval, from 20 ms to 1 s.
    tick: Duration,
    client: Client,
    recorder: Recorder,
    clock: Clock,
    nodes_inf: Informer<Node>,
    pods_inf: Informer<Pod>,
    nodes: Mutex<Vec<NodeSim>>,
    pods: Mutex<HashMap<String, PodSim>>,
    queue: WorkQueue,
}

fn is_stopped(n: &Node) -> bool {
    n.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(node::HEARTBEAT_ANNOTATION))
        .is_some_and(|v| v == "stopped")
}

impl Simulator {
    fn new(rt: &Runtime, opts: &Options, tpl: node::Template) -> Simulator {
        let now = Instant::now();
        let renew = opts.lease_renew_interval.max(Duration::from_millis(100));
        let nodes = (0..opts.count)
            .map(|i| {
                let mut n = NodeSim::new(now);
                (n.next_lease, n.next_status) = first_heartbeats(i, opts.count, now, renew);
                n
            })
            .collect();
        Simulator {
            tpl,
            count: opts.count,
            start_delay: opts.pod_start_delay,
            stop_delay: opts.pod_stop_delay,
            renew,
            tick: heartbeat_tick(renew),
            client: rt.client(COMPONENT),
            recorder: rt.recorder(COMPONENT),
            clock: rt.clock,
            nodes_inf: rt.cache.informer::<Node>(),
            pods_inf: rt.cache.informer::<Pod>(),
            nodes: Mutex::new(nodes),
            pods: Mutex::new(HashMap::new()),
            queue: WorkQueue::new(),
        }
    }

    async fn run(self: Arc<Self>, rt: Runtime) {
        self.nodes_inf.synced().await;
        self.pods_inf.synced().await;
        let node_sub = self.nodes_inf.subscribe();
        let pod_sub = self.pods_inf.subscribe();

        // Register (or take over) every node, a bounded number at a time.
        let me = self.clone();
        futures::stream::iter(0..self.count)
            .for_each_concurrent(HEARTBEAT_CONCURRENCY, |i| {
                let me = me.clone();
                async move {
                    if let Err(e) = me.register(i).await {
                        tracing::warn!(node = %node::name(i), error = %e, "registering a simulated node failed");
                    }
                }
            })
            .await;
        tracing::info!(nodes = self.count, "simulated nodes registered");

        // Pods already on our nodes keep their addresses and pick up where they are.
        self.adopt_existing_pods();

        let me = self.clone();
        rt.spawn(async move { me.follow_nodes(node_sub).await });
        let me = self.clone();
        rt.spawn(async move { me.follow_pods(pod_sub).await });
        let me = self.clone();
        rt.spawn(async move { me.heartbeats().await });
        for p in self.pods_inf.list() {
            if self.ours(&p).is_some() {
                self.queue.add(key_of(&p.metadata));
            }
        }
        let worker = Arc::new(PodWorker { sim: self.clone() });
        controller::run(worker, self.queue.clone(), POD_WORKERS).await;
    }

    /// The index of the node `pod` is bound to, if it is one of ours.
    fn ours(&self, pod: &Pod) -> Option<usize> {
        node::index_of(pod.node_name()?, self.count)
    }

    /// Creates node `i`, or takes over the existing Node of that name (keeping what users
    /// changed: labels, taints, unschedulable), then reports its status and Lease.
    async fn register(&self, i: usize) -> Result<(), ApiError> {
        let name = node::name(i);
        let now = self.clock.now_k8s();
        let want = node::node(&self.tpl, i, &now);
        // A new Node is created with its status (one write); a Node taken over has its
        // status reported after.
        let (created, fresh) = match self.client.create(&want).await {
            Ok(n) => (n, true),
            Err(e) if e.code == 409 => {
                let labels = node::labels(&self.tpl, &name);
                let cidr = node::pod_cidr(i);
                let n = self
                    .client
                    .modify::<Node>(None, &name, |n| {
                        let mut changed = false;
                        let l = n.metadata.labels.get_or_insert_with(BTreeMap::new);
                        for (k, v) in &labels {
                            if !l.contains_key(k) {
                                l.insert(k.clone(), v.clone());
                                changed = true;
                            }
                        }
                        let spec = n.spec.get_or_insert_with(Default::default);
                        if spec.pod_cidr.as_deref().unwrap_or("").is_empty() {
                            spec.pod_cidr = Some(cidr.clone());
                            spec.pod_cidrs = Some(vec![cidr.clone()]);
                            changed = true;
                        }
                        changed
                    })
                    .await?;
                (n, false)
            }
            Err(e) => return Err(e),
        };
        let stopped = is_stopped(&created);
        let node_uid = created.metadata.uid.clone().unwrap_or_default();
        {
            let mut nodes = self.nodes.lock();
            let n = &mut nodes[i];
            n.registered = true;
            n.gone = false;
            n.stopped = stopped;
        }
        if stopped {
            return Ok(());
        }
        let reported = created
            .status
            .as_ref()
            .is_some_and(|s| node::conditions_healthy(s.conditions.as_deref()));
        if !fresh || !reported {
            self.report_status(i).await?;
        }
        self.renew_lease(i, Some(&node_uid)).await
    }

    /// Writes node `i`'s status as a healthy kubelet reports it.
    async fn report_status(&self, i: usize) -> Result<(), ApiError> {
        let now = self.clock.now_k8s();
        let tpl = &self.tpl;
        match self
            .client
            .modify_status::<Node>(None, &node::name(i), |n| {
                n.status = Some(node::status(tpl, i, n.status.as_ref(), &now));
                true
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => {
                self.nodes.lock()[i].gone = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Renews node `i`'s Lease, creating it if it is missing.
    async fn renew_lease(&self, i: usize, node_uid: Option<&str>) -> Result<(), ApiError> {
        let name = node::name(i);
        let now = MicroTime(self.clock.now());
        let patch = serde_json::json!({"spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": now,
        }});
        match self
            .client
            .merge_patch::<Lease>(Some(LEASE_NAMESPACE), &name, &patch)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => {
                let uid = match node_uid {
                    Some(u) => Some(u.to_string()),
                    None => self
                        .nodes_inf
                        .get(None, &name)
                        .and_then(|n| n.metadata.uid.clone()),
                };
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(LEASE_NAMESPACE.to_string()),
                        owner_references: uid.map(|uid| {
                            vec![OwnerReference {
                                api_version: "v1".into(),
                                kind: "Node".into(),
                                name: name.clone(),
                                uid,
                                controller: None,
                                block_owner_deletion: None,
                            }]
                        }),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(name.clone()),
                        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                        renew_time: Some(now),
                        ..Default::default()
                    }),
                };
                match self.client.create(&lease).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.code == 409 => Ok(()), // renewed next tick
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Reserves the addresses of pods already running on our nodes (a restart) and
    /// remembers where their lives are.
    fn adopt_existing_pods(&self) {
        let now = self.clock.now();
        let mut nodes = self.nodes.lock();
        let mut pods = self.pods.lock();
        for p in self.pods_inf.list() {
            let Some(i) = self.ours(&p) else { continue };
            let life = Life::from_status(&p, now);
            let mut ip = None;
            if !life.is_finished() {
                if let Some(octet) = pod_octet(&p, i) {
                    if nodes[i].ipam.reserve(octet) {
                        ip = Some(octet);
                    }
                }
            }
            pods.insert(
                key_of(&p.metadata),
                PodSim {
                    uid: p.metadata.uid.clone().unwrap_or_default().into(),
                    node: i as u32,
                    ip,
                    life,
                    terminating_since: None,
                    warned: false,
                    written: None,
                },
            );
        }
    }

    /// Follows Node changes: the heartbeat annotation, deletions, status that needs
    /// re-reporting.
    async fn follow_nodes(&self, mut sub: skiff_runtime::cache::Subscription<Node>) {
        while let Some(n) = sub.recv().await {
            match n {
                Notification::Changed(c) => {
                    let name = c.object().metadata.name.as_deref().unwrap_or("");
                    if let Some(i) = node::index_of(name, self.count) {
                        self.node_changed(i, c.new.as_deref());
                    }
                }
                Notification::Resync => {
                    for i in 0..self.count {
                        let n = self.nodes_inf.get(None, &node::name(i));
                        self.node_changed(i, n.as_deref());
                    }
                }
            }
        }
    }

    fn node_changed(&self, i: usize, now: Option<&Node>) {
        let resumed = {
            let mut nodes = self.nodes.lock();
            let sim = &mut nodes[i];
            match now {
                None => {
                    if sim.registered {
                        sim.gone = true;
                    }
                    false
                }
                Some(n) => {
                    let was_alive = sim.alive();
                    sim.stopped = is_stopped(n);
                    if sim.registered {
                        sim.gone = false;
                    }
                    let healthy = node::conditions_healthy(
                        n.status.as_ref().and_then(|s| s.conditions.as_deref()),
                    );
                    if sim.alive() && (!was_alive || !healthy) {
                        let t = Instant::now();
                        sim.next_lease = sim.next_lease.min(t);
                        if !healthy || !was_alive {
                            sim.next_status = t;
                        }
                    }
                    !was_alive && sim.alive()
                }
            }
        };
        if resumed {
            for p in self.pods_inf.on_node(&node::name(i)) {
                self.queue.add(key_of(&p.metadata));
            }
        }
    }

    /// Follows Pod changes on our nodes.
    async fn follow_pods(&self, mut sub: skiff_runtime::cache::Subscription<Pod>) {
        while let Some(n) = sub.recv().await {
            match n {
                Notification::Changed(c) => {
                    let p = c.object();
                    let ours = self.ours(p).is_some()
                        || c.old.as_deref().is_some_and(|o| self.ours(o).is_some());
                    if ours {
                        self.queue.add(key_of(&p.metadata));
                    }
                }
                Notification::Resync => {
                    for p in self.pods_inf.list() {
                        if self.ours(&p).is_some() {
                            self.queue.add(key_of(&p.metadata));
                        }
                    }
                    // Pods deleted meanwhile: forget them.
                    let gone: Vec<String> = self
                        .pods
                        .lock()
                        .keys()
                        .filter(|k| self.pods_inf.get_key(k).is_none())
                        .cloned()
                        .collect();
                    for k in gone {
                        self.queue.add(k);
                    }
                }
            }
        }
    }

    /// One task for every node's heartbeats: each tick, renew the Leases and report the
    /// statuses that are due, concurrently.
    async fn heartbeats(&self) {
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let mut due: Vec<(usize, bool, bool)> = Vec::new();
            {
                let mut nodes = self.nodes.lock();
                for (i, n) in nodes.iter_mut().enumerate() {
                    if !n.alive() {
                        continue;
                    }
                    let lease = n.next_lease <= now;
                    let status = n.next_status <= now;
                    if lease {
                        n.next_lease = now + self.renew;
                    }
                    if status {
                        n.next_status = now + STATUS_REPORT;
                    }
                    if lease || status {
                        due.push((i, lease, status));
                    }
                }
            }
            futures::stream::iter(due)
                .for_each_concurrent(HEARTBEAT_CONCURRENCY, |(i, lease, status)| async move {
                    if status {
                        if let Err(e) = self.report_status(i).await {
                            tracing::debug!(node = i, error = %e, "node status report failed");
                            self.nodes.lock()[i].next_status = Instant::now() + HEARTBEAT_RETRY;
                        }
                    }
                    if lease {
                        if let Err(e) = self.renew_lease(i, None).await {
                            tracing::debug!(node = i, error = %e, "lease renewal failed");
                            self.nodes.lock()[i].next_lease = Instant::now() + HEARTBEAT_RETRY;
                        }
                    }
                })
                .await;
        }
    }

    /// Forgets a pod (deleted, or moved off our nodes), releasing its address.
    fn forget(&self, key: &str) {
        let Some(p) = self.pods.lock().remove(key) else {
            return;
        };
        if let Some(octet) = p.ip {
            if let Some(n) = self.nodes.lock().get_mut(p.node as usize) {
                n.ipam.release(octet);
            }
        }
    }

    async fn sync_pod(&self, key: &str) -> Result<Action, ApiError> {
        let Some(pod) = self.pods_inf.get_key(key) else {
            self.forget(key);
            return Ok(Action::Done);
        };
        let Some(i) = self.ours(&pod) else {
            self.forget(key);
            return Ok(Action::Done);
        };
        if !self.nodes.lock()[i].alive() {
            // A dead (or unregistered, or deleted) node's kubelet does nothing.
            return Ok(Action::Done);
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let now = self.clock.now();
        let (script, problems) = pod::script(&pod, self.start_delay);
        let policy = RestartPolicy::of(&pod);

        // Advance the pod's life and find its address.
        let (shown, life, ip, wake, warn, terminating_since, backed_off, no_ip) = {
            let mut nodes = self.nodes.lock();
            let mut pods = self.pods.lock();
            if pods.get(key).is_some_and(|p| *p.uid != *uid) {
                if let Some(old) = pods.remove(key) {
                    if let Some(octet) = old.ip {
                        nodes[old.node as usize].ipam.release(octet);
                    }
                }
            }
            let sim = pods.entry(key.to_string()).or_insert_with(|| PodSim {
                uid: uid.clone().into(),
                node: i as u32,
                ip: None,
                life: Life::from_status(&pod, now),
                terminating_since: None,
                warned: false,
                written: None,
            });
            let restarts_before = sim.life.restarts;
            let before = sim.life.clone();
            let wake = sim.life.advance(&script, policy, now);
            if sim.life != before {
                sim.written = None;
            }
            let backed_off = sim.life.restarts > restarts_before
                && matches!(sim.life.stage, pod::Stage::BackOff { .. });
            let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
            if sim.life.is_finished() {
                if let Some(octet) = sim.ip.take() {
                    nodes[i].ipam.release(octet);
                }
            } else if sim.ip.is_none() && !host_network {
                let kept = pod_octet(&pod, i).filter(|o| nodes[i].ipam.reserve(*o));
                sim.ip = kept.or_else(|| nodes[i].ipam.allocate());
            }
            let warn = !problems.is_empty() && !sim.warned;
            sim.warned |= warn;
            if pod.metadata.deletion_timestamp.is_some() && sim.terminating_since.is_none() {
                sim.terminating_since = Some(now);
            }
            let no_ip = sim.ip.is_none() && !host_network && !sim.life.is_finished();
            let shown = sim.written == Some(skiff_runtime::client::revision_of(pod.as_ref()))
                && sim.terminating_since.is_none();
            (
                shown,
                sim.life.clone(),
                sim.ip,
                wake,
                warn,
                sim.terminating_since,
                backed_off,
                no_ip,
            )
        };
        if warn {
            for p in &problems {
                self.recorder
                    .warning(pod.as_ref(), "InvalidSimulationAnnotation", p.to_string());
            }
        }

        if backed_off {
            let containers = pod
                .spec
                .as_ref()
                .map(|s| s.containers.as_slice())
                .unwrap_or(&[]);
            for c in containers {
                self.recorder.warning(
                    pod.as_ref(),
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {} in pod {}_{}({uid})",
                        c.name,
                        name_of(&pod),
                        pod.metadata.namespace.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        if no_ip && terminating_since.is_none() {
            // The node's pod range is full: the sandbox cannot be made; try again later.
            self.recorder.warning(
                pod.as_ref(),
                "FailedCreatePodSandBox",
                format!(
                    "Failed to create pod sandbox: no free address in {}",
                    node::pod_cidr(i)
                ),
            );
            return Ok(Action::RequeueAfter(Duration::from_secs(5)));
        }

        let node_octets = node::pod_network(i).octets();
        let place = Placement {
            host_ip: node::internal_ip(i),
            pod_ip: ip.map(|o| Ipv4Addr::new(node_octets[0], node_octets[1], node_octets[2], o)),
        };

        // Graceful deletion: containers stop (the pod is reported terminal), then the pod goes
        // for good, as the kubelet's status manager does.
        if let Some(since) = terminating_since {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(0)
                .max(0) as u64;
            let stop = self.stop_delay.min(Duration::from_secs(grace));
            let due = since + jiff::SignedDuration::try_from(stop).unwrap_or_default();
            if !life.is_finished() && due > now {
                return Ok(Action::RequeueAfter(self.clock.until(due)));
            }
            if !life.is_finished() {
                let killed = life.killed(policy, now);
                let released = {
                    let mut pods = self.pods.lock();
                    match pods.get_mut(key).filter(|p| *p.uid == *uid) {
                        Some(p) => {
                            p.life = killed.clone();
                            p.ip.take()
                        }
                        None => None,
                    }
                };
                if let Some(octet) = released {
                    self.nodes.lock()[i].ipam.release(octet);
                }
                if self
                    .write_status(&pod, &uid, &killed, &script, &place, now)
                    .await?
                    .is_none()
                {
                    return Ok(Action::Done);
                }
            }
            let opts = DeleteOptions {
                grace_period_seconds: Some(0),
                precondition_uid: Some(uid),
                ..Default::default()
            };
            return match self
                .client
                .delete::<Pod>(pod.metadata.namespace.as_deref(), name_of(&pod), &opts)
                .await
            {
                Ok(_) => Ok(Action::Done),
                Err(e) if e.code == 404 || e.code == 409 => Ok(Action::Done),
                Err(e) => Err(e),
            };
        }

        if !shown {
            let Some(rev) = self
                .write_status(&pod, &uid, &life, &script, &place, now)
                .await?
            else {
                return Ok(Action::Done);
            };
            if let Some(p) = self.pods.lock().get_mut(key).filter(|p| *p.uid == *uid) {
                if p.life == life {
                    p.written = Some(rev);
                }
            }
        }
        Ok(match wake {
            Some(at) => Action::RequeueAfter(self.clock.until(at).max(Duration::from_millis(1))),
            None => Action::Done,
        })
    }

    /// Writes the status `life` renders to, unless the pod already shows it. Returns the
    /// revision the pod is at afterwards, or `None` when the pod is gone (or replaced by
    /// another of the same name).
    async fn write_status(
        &self,
        pod: &Pod,
        uid: &str,
        life: &Life,
        script: &pod::Script,
        place: &Placement,
        now: Timestamp,
    ) -> Result<Option<i64>, ApiError> {
        let mut desired = pod::status(pod, life, script, place, now);
        if pod.status.as_ref() == Some(&desired) {
            return Ok(Some(skiff_runtime::client::revision_of(pod)));
        }
        // As the kubelet's status manager: the status it wants, for the pod with this uid.
        self.client
            .replace_status_with::<Pod>(
                pod.metadata.namespace.as_deref(),
                name_of(pod),
                uid,
                || status_json::status_value(&mut desired),
            )
            .await
    }
}

fn name_of(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

/// The host octet of `pod`'s status podIP if it lies in node `i`'s pod CIDR.
fn pod_octet(pod: &Pod, i: usize) -> Option<u8> {
    let ip: Ipv4Addr = pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
    let net = node::pod_network(i).octets();
    let o = ip.octets();
    (o[..3] == net[..3]).then_some(o[3])
}

struct PodWorker {
    sim: Arc<Simulator>,
}

#[async_trait::async_trait]
impl Reconciler for PodWorker {
    fn name(&self) -> &'static str {
        "simulated-kubelet"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        self.sim.sync_pod(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory the simulator keeps per node (its [`NodeSim`] entry; the Node object itself
    /// lives in the shared informer cache, as any node's would).
    #[test]
    fn node_state_is_small() {
        let per_node = std::mem::size_of::<NodeSim>();
        println!("simulator state per node: {per_node} bytes");
        assert!(per_node <= 4096);
        // Per pod: the entry plus its key and uid on the heap (typical lengths).
        let per_pod = std::mem::size_of::<PodSim>() + std::mem::size_of::<String>() + 40 + 36;
        println!("simulator state per pod: about {per_pod} bytes");
        assert!(per_pod <= 512);
    }

    /// 5,000 nodes renewing every 10 s: each tick of the heartbeat loop has about ten Leases
    /// and at most one status report due, never a second's worth.
    #[test]
    fn heartbeats_are_spread_over_ticks() {
        let (count, renew) = (5000, LEASE_RENEW);
        let tick = heartbeat_tick(renew);
        assert_eq!(tick, Duration::from_millis(20));
        assert_eq!(
            heartbeat_tick(Duration::from_secs(1)),
            Duration::from_millis(20)
        );
        assert_eq!(
            heartbeat_tick(Duration::from_secs(3600)),
            Duration::from_secs(1)
        );
        let now = Instant::now();
        let mut leases: HashMap<u128, usize> = HashMap::new();
        let mut statuses: HashMap<u128, usize> = HashMap::new();
        for i in 0..count {
            let (lease, status) = first_heartbeats(i, count, now, renew);
            assert!(lease > now && lease <= now + renew);
            assert!(status >= now + STATUS_REPORT / 2 && status <= now + STATUS_REPORT);
            *leases
                .entry((lease - now).as_millis() / tick.as_millis())
                .or_default() += 1;
            *statuses
                .entry((status - now).as_millis() / tick.as_millis())
                .or_default() += 1;
        }
        let most = |m: &HashMap<u128, usize>| m.values().copied().max().unwrap_or(0);
        assert!(
            most(&leases) <= 11,
            "{} leases due in one tick",
            most(&leases)
        );
        assert!(
            most(&statuses) <= 1,
            "{} statuses due in one tick",
            most(&statuses)
        );
        assert_eq!(leases.values().sum::<usize>(), count);
    }

    #[test]
    fn bad_options_are_refused() {
        let mut o = Options {
            taints: vec!["dedicated=gpu".into()],
            ..Default::default()
        };
        assert!(o.template().is_err());
        o.taints = vec!["dedicated=gpu:NoSchedule".into(), "spot:NoExecute".into()];
        assert_eq!(o.template().unwrap().taints.len(), 2);
        o.capacity.insert("cpu".into(), "lots".into());
        assert!(matches!(o.template(), Err(OptionError::Capacity { .. })));
    }

    #[test]
    fn pod_addresses_are_matched_to_their_node() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"podIP": "10.42.3.17"}
        }))
        .unwrap();
        assert_eq!(pod_octet(&p, 3), Some(17));
        assert_eq!(pod_octet(&p, 4), None);
    }
}
