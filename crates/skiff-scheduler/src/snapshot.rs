//! The scheduler's view of the cluster, after upstream's scheduler cache and `NodeInfo`: per
//! node its Node, the pods bound or assumed to it with their summed requests (exact and
//! non-zero), used host ports, and which of its pods carry affinity terms. It is kept up to
//! date incrementally as nodes and pods come and go, so nothing is rebuilt per scheduled pod.
//!
//! Beyond upstream's lists of nodes with affinity pods, it keeps the counts the affinity and
//! spreading plugins would otherwise gather per pod: placed pods by label and node, the same
//! counted by topology domain for the `(label, topology key)` pairs plugins asked for
//! ([`Snapshot::register_topology`]), and existing pods' required anti-affinity terms grouped
//! when identical, each group counted by domain ([`Snapshot::anti_groups`]).

use std::collections::BTreeMap;

use crate::fasthash::Map;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::resources::{pod_requests, Resources};
use crate::selector::{Requirement, Selector, NO_LABELS};

/// `namespace/name`.
pub type PodKey = String;

/// The key of a pod.
pub fn pod_key(pod: &Pod) -> PodKey {
    skiff_core::concat(&[
        pod.metadata.namespace.as_deref().unwrap_or(""),
        "/",
        pod.metadata.name.as_deref().unwrap_or(""),
    ])
}

/// The namespace and name a [`pod_key`] was made of.
pub fn split_pod_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// A taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
    Other,
}

impl Effect {
    pub fn parse(s: &str) -> Effect {
        match s {
            "NoSchedule" => Effect::NoSchedule,
            "PreferNoSchedule" => Effect::PreferNoSchedule,
            "NoExecute" => Effect::NoExecute,
            _ => Effect::Other,
        }
    }
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: Effect,
}

/// A host port in use: (host IP, protocol, port). An empty or `0.0.0.0` IP is every address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    fn wildcard(&self) -> bool {
        self.ip.is_empty() || self.ip == "0.0.0.0"
    }

    /// Whether two host ports collide (upstream's `HostPortInfo.CheckConflict`).
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.port == o.port
            && self.protocol == o.protocol
            && (self.wildcard() || o.wildcard() || self.ip == o.ip)
    }
}

/// A pod affinity term, compiled (upstream's `AffinityTerm`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AffinityTerm {
    pub namespaces: Vec<String>,
    pub namespace_selector: Option<Selector>,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn compile(owner: &Pod, t: &PodAffinityTerm) -> AffinityTerm {
        let mut selector = Selector::from_label_selector(t.label_selector.as_ref());
        let labels = owner.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
        // matchLabelKeys / mismatchLabelKeys (upstream merges them in at creation).
        if t.label_selector.is_some() {
            for k in t.match_label_keys.iter().flatten() {
                if let Some(v) = labels.get(k) {
                    selector.push(Requirement {
                        key: k.clone(),
                        op: crate::selector::Op::In,
                        values: vec![v.clone()],
                    });
                }
            }
            for k in t.mismatch_label_keys.iter().flatten() {
                if let Some(v) = labels.get(k) {
                    selector.push(Requirement {
                        key: k.clone(),
                        op: crate::selector::Op::NotIn,
                        values: vec![v.clone()],
                    });
                }
            }
        }
        let namespaces = t.namespaces.clone().unwrap_or_default();
        let namespace_selector = t
            .namespace_selector
            .as_ref()
            .map(|s| Selector::from_label_selector(Some(s)));
        let namespaces = if namespaces.is_empty() && namespace_selector.is_none() {
            vec![owner.metadata.namespace.clone().unwrap_or_default()]
        } else {
            namespaces
        };
        AffinityTerm {
            namespaces,
            namespace_selector,
            selector,
            topology_key: t.topology_key.clone(),
        }
    }

    /// Whether the term selects `pod` (namespace, then labels).
    pub fn matches(
        &self,
        pod: &PodInfo,
        ns_labels: &Map<String, BTreeMap<String, String>>,
    ) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.matches(ns_labels.get(&pod.namespace).unwrap_or(&NO_LABELS)));
        ns_ok && self.selector.matches(pod.labels())
    }
}

/// What the scheduler needs to know of one pod, computed once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: PodKey,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub priority: i32,
    pub requests: Resources,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub host_ports: Vec<HostPort>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<(i64, AffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i64, AffinityTerm)>,
    /// The uid of the controller that owns the pod, if any.
    pub controller_uid: Option<String>,
    pub controller_kind: Option<String>,
    pub terminating: bool,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let req = pod_requests(&pod, false);
        let nz = pod_requests(&pod, true);
        let spec = pod.spec.as_ref();
        let mut host_ports = Vec::new();
        if let Some(spec) = spec {
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for c in spec.containers.iter().chain(sidecars) {
                for p in c.ports.iter().flatten() {
                    let hp = p.host_port.unwrap_or(0);
                    if hp > 0 {
                        host_ports.push(HostPort {
                            ip: p.host_ip.clone().unwrap_or_default(),
                            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                            port: hp,
                        });
                    }
                }
            }
        }
        let aff = spec.and_then(|s| s.affinity.as_ref());
        let pa = aff.and_then(|a| a.pod_affinity.as_ref());
        let paa = aff.and_then(|a| a.pod_anti_affinity.as_ref());
        let compile = |ts: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            ts.into_iter()
                .flatten()
                .map(|t| AffinityTerm::compile(&pod, t))
                .collect()
        };
        let required_affinity = compile(pa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let required_anti_affinity = compile(paa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let weighted = |ts: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            ts.into_iter()
                .flatten()
                .map(|w| {
                    (
                        i64::from(w.weight),
                        AffinityTerm::compile(&pod, &w.pod_affinity_term),
                    )
                })
                .collect::<Vec<_>>()
        };
        let preferred_affinity = weighted(pa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_anti_affinity = weighted(paa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        PodInfo {
            key: pod_key(&pod),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            requests: req,
            non_zero_cpu: nz.milli_cpu,
            non_zero_memory: nz.memory,
            host_ports,
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            controller_uid: owner.map(|o| o.uid.clone()),
            controller_kind: owner.map(|o| o.kind.clone()),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            pod,
        }
    }

    /// This pod's information for a newer version of the same pod, when nothing it is derived
    /// from changed (the spec, labels, owner references and whether it is being deleted; a
    /// status write changes none of them): only the object is new. `None` otherwise.
    pub fn renewed(&self, pod: &Arc<Pod>) -> Option<PodInfo> {
        let (a, b) = (&self.pod.metadata, &pod.metadata);
        // A binding changes the node name: checked first, as the cheapest difference.
        let same = self.pod.spec.as_ref().map(|s| &s.node_name)
            == pod.spec.as_ref().map(|s| &s.node_name)
            && a.uid == b.uid
            && a.namespace == b.namespace
            && a.name == b.name
            && a.deletion_timestamp.is_some() == b.deletion_timestamp.is_some()
            && a.labels == b.labels
            && a.owner_references == b.owner_references
            && self.pod.spec == pod.spec;
        same.then(|| PodInfo {
            pod: pod.clone(),
            ..self.clone()
        })
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
    }

    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// Whether the pod has terms that score other pods (required affinity, at the hard
    /// weight, and preferred terms; required anti-affinity only filters).
    pub fn has_scoring_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// When the pod started (status.startTime, else its creation), for preemption order.
    pub fn start_time(&self) -> Option<&Time> {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .or(self.pod.metadata.creation_timestamp.as_ref())
    }

    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }
}

/// One node and what is placed on it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    /// `None` for a placeholder holding pods bound to a node not (yet) seen.
    pub node: Option<Arc<Node>>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    pub requested: Resources,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub pods: Vec<Arc<PodInfo>>,
    pub pods_with_affinity: usize,
    pub pods_with_scoring_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    /// Pods being deleted (still counted for resources, not for spreading).
    pub terminating: usize,
    pub used_ports: Vec<HostPort>,
    /// The hostname and zone labels, the keys looked up for every node a pod is filtered
    /// and scored on, kept in the node's own memory.
    hostname: CachedLabel,
    zone: CachedLabel,
    /// The snapshot's number for the zone value ([`Snapshot::zone_values`]); `NO_ZONE` when
    /// the node has no zone or was not numbered by a snapshot.
    zone_id: u32,
    /// Where the snapshot keeps the node ([`Snapshot::nodes`]), the key of its pod label
    /// index: looked up for every node scored, an integer costs far less than the name.
    slot: u32,
}

const NO_ZONE: u32 = u32::MAX;

/// A hostname or zone label value kept where a scan over thousands of nodes reads it
/// cheaply: the hostname is nearly always the node's name, which the scan reads anyway, and
/// zone values are shared by every node of the zone (interned by the snapshot), so a few
/// allocations stay in the cache however many nodes there are. Reading one validates
/// nothing (an inline byte buffer would need a UTF-8 check per read, which cost more than
/// the lookups the value is read for).
#[derive(Debug, Clone, Default)]
enum CachedLabel {
    #[default]
    Absent,
    /// The value is the node's name.
    Name,
    Value(Arc<str>),
}

impl CachedLabel {
    fn new(value: Option<&String>, name: &str) -> CachedLabel {
        match value {
            None => CachedLabel::Absent,
            Some(v) if v == name => CachedLabel::Name,
            Some(v) => CachedLabel::Value(Arc::from(v.as_str())),
        }
    }

    #[inline]
    fn get<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        match self {
            CachedLabel::Absent => None,
            CachedLabel::Name => Some(name),
            CachedLabel::Value(v) => Some(v),
        }
    }
}

/// The well-known label of a node's hostname.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// The well-known label of a node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut ni = NodeInfo::default();
        ni.set_node(node);
        ni
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.name = node.metadata.name.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.taints = spec
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .map(|t| Taint {
                key: t.key.clone(),
                value: t.value.clone().unwrap_or_default(),
                effect: Effect::parse(&t.effect),
            })
            .collect();
        self.allocatable =
            Resources::from_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        let labels = node.metadata.labels.as_ref();
        self.hostname = CachedLabel::new(labels.and_then(|l| l.get(HOSTNAME_LABEL)), &self.name);
        self.zone = CachedLabel::new(labels.and_then(|l| l.get(ZONE_LABEL)), &self.name);
        self.zone_id = NO_ZONE;
        self.node = Some(node);
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&NO_LABELS)
    }

    /// The node's place in [`Snapshot::nodes`] (0 for a node no snapshot holds).
    #[inline]
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The `kubernetes.io/hostname` label, from the node's own memory.
    #[inline]
    pub fn hostname_label(&self) -> Option<&str> {
        self.cached(&self.hostname)
    }

    /// The `topology.kubernetes.io/zone` label, from the node's own memory.
    #[inline]
    pub fn zone_label(&self) -> Option<&str> {
        self.cached(&self.zone)
    }

    /// A label kept in the node's memory; a placeholder has none.
    #[inline]
    fn cached<'a>(&'a self, label: &'a CachedLabel) -> Option<&'a str> {
        self.node.as_ref().and_then(|_| label.get(&self.name))
    }

    /// The snapshot's number for the node's zone (`topology.kubernetes.io/zone`), so that
    /// per-zone verdicts are read by index; `None` when it has none (or is not a snapshot's).
    pub fn zone_id(&self) -> Option<u32> {
        (self.node.is_some() && self.zone_id != NO_ZONE).then_some(self.zone_id)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        match key {
            HOSTNAME_LABEL => self.hostname_label(),
            ZONE_LABEL => self.zone_label(),
            _ => self.labels().get(key).map(String::as_str),
        }
    }

    /// Accounts for a pod placed here.
    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.non_zero_cpu += p.non_zero_cpu;
        self.non_zero_memory += p.non_zero_memory;
        if p.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if p.has_scoring_affinity() {
            self.pods_with_scoring_affinity += 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        if p.terminating {
            self.terminating += 1;
        }
        self.used_ports.extend(p.host_ports.iter().cloned());
        self.pods.push(p);
    }

    /// Removes a pod (by uid, else key); returns it if it was here.
    pub fn remove_pod(&mut self, uid: &str, key: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| {
            if uid.is_empty() {
                p.key == key
            } else {
                p.uid == uid
            }
        })?;
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.requests);
        self.non_zero_cpu -= p.non_zero_cpu;
        self.non_zero_memory -= p.non_zero_memory;
        if p.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if p.has_scoring_affinity() {
            self.pods_with_scoring_affinity -= 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        if p.terminating {
            self.terminating -= 1;
        }
        for hp in &p.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        Some(p)
    }
}

/// Every node and the pods placed on them.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: Map<String, usize>,
    /// pod key → (node name, uid) of every placed pod.
    placed: Map<PodKey, (String, String)>,
    /// Namespace labels, for affinity terms with a namespaceSelector.
    pub namespace_labels: Map<String, BTreeMap<String, String>>,
    real_nodes: usize,
    /// Pods nominated to nodes by preemption, waiting for their victims to go.
    nominated: Map<String, Vec<Arc<PodInfo>>>,
    nominated_node: Map<PodKey, String>,
    /// Placed pods by label: namespace → key → value → pods per node and per registered
    /// topology domain (controllers under [`CONTROLLER_KEY`]), so selectors find the few
    /// nodes or domains with matching pods.
    pod_labels: Map<String, LabelIndex>,
    /// Real nodes by label: key → value → how many nodes (topology domains).
    node_labels: Map<String, Map<String, u32>>,
    /// Existing pods' required anti-affinity terms, identical ones grouped (free slots
    /// `None`).
    anti_groups: Vec<Option<AntiGroup>>,
    anti_index: Map<AffinityTerm, usize>,
    anti_free: Vec<usize>,
    /// Nodes holding pods with scoring affinity terms, and how many.
    scoring_affinity_nodes: Map<String, u32>,
    /// Services' selectors: namespace → name → selector (for default spreading).
    services: Map<String, Map<String, BTreeMap<String, String>>>,
    /// Zone values, one allocation each, shared by the nodes of the zone, and numbered in
    /// the order first seen (values are never forgotten: zones are few).
    zones: Map<Arc<str>, u32>,
    zone_values: Vec<Arc<str>>,
    /// Hostname label values carried by more than one node.
    shared_hostnames: usize,
}

/// key → value → the pods so labelled.
type LabelIndex = Map<String, Map<String, LabelEntry>>;

/// How many placed pods of one topology domain match; terminating pods are counted apart
/// (topology spreading leaves them out, inter-pod affinity counts them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairCount {
    pub all: u32,
    pub terminating: u32,
}

impl PairCount {
    /// Pods not being deleted.
    pub fn live(&self) -> u32 {
        self.all - self.terminating
    }
}

/// Topology value → matching pods (no zero entries).
pub type PairCounts = Map<String, PairCount>;

/// Node slot ([`NodeInfo::slot`]) → how many pods there are counted (no zero entries).
pub type NodeCounts = Map<u32, u32>;

/// Placed pods of one namespace labelled `key=value`.
#[derive(Debug, Clone, Default)]
pub struct LabelEntry {
    /// Node slot ([`NodeInfo::slot`]) → pods.
    nodes: NodeCounts,
    /// The same pods by domain, for each topology key registered for this label. Shared with
    /// the pre-filter state of the attempt under way (which is gone before the next change).
    topo: Vec<(String, Arc<PairCounts>)>,
}

/// Identical required anti-affinity terms of placed pods, and the domains they cover.
#[derive(Debug, Clone)]
pub struct AntiGroup {
    pub term: AffinityTerm,
    /// Pods carrying the term.
    pub pods: u32,
    /// Topology value (of the term's key) → pods there with the term.
    pub pairs: Arc<PairCounts>,
}

fn bump_pair(m: &mut PairCounts, value: &str, delta: i64, terminating: bool) {
    let adjust = |x: u32| (i64::from(x) + delta).max(0) as u32;
    match m.get_mut(value) {
        Some(c) => {
            c.all = adjust(c.all);
            if terminating {
                c.terminating = adjust(c.terminating);
            }
            if c.all == 0 {
                m.remove(value);
            }
        }
        None if delta > 0 => {
            let n = delta as u32;
            m.insert(
                value.to_string(),
                PairCount {
                    all: n,
                    terminating: if terminating { n } else { 0 },
                },
            );
        }
        None => {}
    }
}

/// The pseudo label under which pods are indexed by their controller's uid.
pub const CONTROLLER_KEY: &str = "\u{0}controller";

fn bump_slot(m: &mut NodeCounts, slot: u32, delta: i64) {
    match m.get_mut(&slot) {
        Some(c) => {
            *c = (i64::from(*c) + delta).max(0) as u32;
            if *c == 0 {
                m.remove(&slot);
            }
        }
        None if delta > 0 => {
            m.insert(slot, delta as u32);
        }
        None => {}
    }
}

fn bump(m: &mut Map<String, u32>, k: &str, delta: i64) {
    match m.get_mut(k) {
        Some(c) => {
            *c = (i64::from(*c) + delta).max(0) as u32;
            if *c == 0 {
                m.remove(k);
            }
        }
        None if delta > 0 => {
            m.insert(k.to_string(), delta as u32);
        }
        None => {}
    }
}

impl Snapshot {
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// Nodes in a stable order (placeholders included; see [`NodeInfo::node`]).
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The number of real nodes.
    pub fn num_nodes(&self) -> usize {
        self.real_nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// Whether the snapshot already holds `node` as far as scheduling goes: it has a node of
    /// that name whose labels, spec and allocatable are the same, so [`Self::upsert_node`]
    /// would change nothing a plugin reads (a kubelet's heartbeat changes only conditions and
    /// times). False for a node the snapshot lacks.
    pub fn holds_node(&self, node: &Node) -> bool {
        node.metadata
            .name
            .as_deref()
            .and_then(|n| self.node(n))
            .and_then(|ni| ni.node.as_deref())
            .is_some_and(|old| !node_changed(old, node))
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.nodes.push(NodeInfo {
            name: name.to_string(),
            slot: self.nodes.len() as u32,
            ..Default::default()
        });
        self.index.insert(name.to_string(), self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    /// Adds or replaces a node.
    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let i = self.slot(&name);
        let relabelled = self.nodes[i]
            .node
            .as_ref()
            .is_none_or(|o| o.metadata.labels != node.metadata.labels)
            && !self.nodes[i].pods.is_empty();
        // Counts by domain follow the node's labels: its pods leave the old domains.
        let pods = if relabelled {
            self.nodes[i].pods.clone()
        } else {
            Vec::new()
        };
        for p in &pods {
            self.index_pod(p, i, -1);
        }
        if let Some(old) = self.nodes[i].node.take() {
            self.index_node(&old, -1);
        } else {
            self.real_nodes += 1;
        }
        self.index_node(&node, 1);
        self.nodes[i].set_node(node);
        let zone = match &self.nodes[i].zone {
            CachedLabel::Value(v) => Some(v.clone()),
            CachedLabel::Name => Some(Arc::from(self.nodes[i].name.as_str())),
            CachedLabel::Absent => None,
        };
        if let Some(v) = zone {
            let id = match self.zones.get(&*v) {
                Some(&id) => id,
                None => {
                    let id = self.zone_values.len() as u32;
                    self.zones.insert(v.clone(), id);
                    self.zone_values.push(v.clone());
                    id
                }
            };
            let shared = self.zone_values[id as usize].clone();
            let ni = &mut self.nodes[i];
            if let CachedLabel::Value(_) = ni.zone {
                ni.zone = CachedLabel::Value(shared);
            }
            ni.zone_id = id;
        }
        for p in &pods {
            self.index_pod(p, i, 1);
        }
    }

    fn index_node(&mut self, node: &Node, delta: i64) {
        for (k, v) in node.metadata.labels.iter().flatten() {
            let m = match self.node_labels.get_mut(k) {
                Some(m) => m,
                None => self.node_labels.entry(k.clone()).or_default(),
            };
            let before = m.get(v).copied().unwrap_or(0);
            bump(m, v, delta);
            if k == HOSTNAME_LABEL {
                let after = m.get(v).copied().unwrap_or(0);
                match (before > 1, after > 1) {
                    (false, true) => self.shared_hostnames += 1,
                    (true, false) => self.shared_hostnames -= 1,
                    _ => {}
                }
            }
        }
    }

    /// Whether no two nodes carry the same `kubernetes.io/hostname` (as always in practice):
    /// then a node's hostname domain is the node alone, and a node without pods has no pod
    /// in its domain.
    pub fn hostnames_unique(&self) -> bool {
        self.shared_hostnames == 0
    }

    /// Accounts for a pod placed on (`delta` 1) or leaving (-1) node slot `i`, in the label
    /// index, its registered domain counts, the anti-affinity groups and the affinity lists.
    fn index_pod(&mut self, p: &PodInfo, i: usize, delta: i64) {
        let Snapshot {
            nodes,
            pod_labels,
            anti_groups,
            anti_index,
            anti_free,
            scoring_affinity_nodes,
            ..
        } = self;
        let node = &nodes[i];
        let ctl = p
            .controller_uid
            .as_ref()
            .map(|u| (CONTROLLER_KEY, u.as_str()));
        let labels = p.labels().iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let by_key = match pod_labels.get_mut(&p.namespace) {
            Some(m) => m,
            None => pod_labels.entry(p.namespace.clone()).or_default(),
        };
        for (k, v) in labels.chain(ctl) {
            let by_value = match by_key.get_mut(k) {
                Some(m) => m,
                None => by_key.entry(k.to_string()).or_default(),
            };
            let entry = match by_value.get_mut(v) {
                Some(m) => m,
                None if delta > 0 => by_value.entry(v.to_string()).or_default(),
                None => continue,
            };
            bump_slot(&mut entry.nodes, node.slot, delta);
            for (key, counts) in &mut entry.topo {
                if let Some(tv) = node.label(key) {
                    bump_pair(Arc::make_mut(counts), tv, delta, p.terminating);
                }
            }
            if entry.nodes.is_empty() {
                by_value.remove(v);
            }
        }
        for t in &p.required_anti_affinity {
            let g = match anti_index.get(t) {
                Some(&g) => g,
                None if delta > 0 => {
                    let group = AntiGroup {
                        term: t.clone(),
                        pods: 0,
                        pairs: Arc::default(),
                    };
                    let g = match anti_free.pop() {
                        Some(g) => {
                            anti_groups[g] = Some(group);
                            g
                        }
                        None => {
                            anti_groups.push(Some(group));
                            anti_groups.len() - 1
                        }
                    };
                    anti_index.insert(t.clone(), g);
                    g
                }
                None => continue,
            };
            let Some(group) = anti_groups[g].as_mut() else {
                continue;
            };
            group.pods = (i64::from(group.pods) + delta).max(0) as u32;
            if let Some(tv) = node.label(&t.topology_key) {
                bump_pair(Arc::make_mut(&mut group.pairs), tv, delta, false);
            }
            if group.pods == 0 {
                anti_groups[g] = None;
                anti_index.remove(t);
                anti_free.push(g);
            }
        }
        if p.has_scoring_affinity() {
            bump(scoring_affinity_nodes, &node.name, delta);
        }
    }

    /// Keeps the placed pods of `namespace` labelled `key=value` counted by the domains of
    /// `topology_key` from now on (plugins call this before an attempt, then read
    /// [`Snapshot::topology_counts`]).
    pub fn register_topology(
        &mut self,
        namespace: &str,
        key: &str,
        value: &str,
        topology_key: &str,
    ) {
        let registered = self
            .pod_labels
            .get(namespace)
            .and_then(|m| m.get(key))
            .and_then(|m| m.get(value))
            .is_some_and(|e| e.topo.iter().any(|(k, _)| k == topology_key));
        if registered {
            return;
        }
        let mut counts = PairCounts::default();
        let entry = self
            .pod_labels
            .entry(namespace.to_string())
            .or_default()
            .entry(key.to_string())
            .or_default()
            .entry(value.to_string())
            .or_default();
        for (&slot, n) in &entry.nodes {
            let node = &self.nodes[slot as usize];
            let Some(tv) = node.label(topology_key) else {
                continue;
            };
            bump_pair(&mut counts, tv, i64::from(*n), false);
            if node.terminating > 0 {
                let dying = node
                    .pods
                    .iter()
                    .filter(|p| p.terminating && p.namespace == namespace)
                    .filter(|p| {
                        if key == CONTROLLER_KEY {
                            p.controller_uid.as_deref() == Some(value)
                        } else {
                            p.labels().get(key).map(String::as_str) == Some(value)
                        }
                    })
                    .count() as u32;
                if let Some(c) = counts.get_mut(tv) {
                    c.terminating += dying;
                }
            }
        }
        entry
            .topo
            .push((topology_key.to_string(), Arc::new(counts)));
    }

    /// The placed pods of `namespace` labelled `key=value` per domain of `topology_key`;
    /// `None` unless registered ([`Snapshot::register_topology`]).
    pub fn topology_counts(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        topology_key: &str,
    ) -> Option<&Arc<PairCounts>> {
        self.pod_labels
            .get(namespace)?
            .get(key)?
            .get(value)?
            .topo
            .iter()
            .find(|(k, _)| k == topology_key)
            .map(|(_, c)| c)
    }

    /// Placed pods' required anti-affinity terms, identical terms counted together.
    pub fn anti_groups(&self) -> impl Iterator<Item = &AntiGroup> {
        self.anti_groups.iter().flatten()
    }

    /// Records a Service's selector (an empty one selects no pod for spreading).
    pub fn upsert_service(
        &mut self,
        namespace: &str,
        name: &str,
        selector: BTreeMap<String, String>,
    ) {
        self.services
            .entry(namespace.to_string())
            .or_default()
            .insert(name.to_string(), selector);
    }

    pub fn remove_service(&mut self, namespace: &str, name: &str) {
        if let Some(m) = self.services.get_mut(namespace) {
            m.remove(name);
            if m.is_empty() {
                self.services.remove(namespace);
            }
        }
    }

    /// The selectors of the Services of the pod's namespace that select it, merged (upstream's
    /// `GetPodServices` then `labels.Merge`); `None` when no Service with a selector does.
    pub fn services_selecting(&self, pod: &PodInfo) -> Option<BTreeMap<String, String>> {
        let labels = pod.labels();
        let mut merged = BTreeMap::new();
        for sel in self.services.get(&pod.namespace)?.values() {
            if sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                merged.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        (!merged.is_empty()).then_some(merged)
    }

    /// Whether any placed pod has required anti-affinity terms.
    pub fn has_anti_affinity_pods(&self) -> bool {
        !self.anti_index.is_empty()
    }

    /// Nodes holding pods with scoring affinity terms (required affinity, preferred terms).
    pub fn nodes_with_scoring_affinity(&self) -> impl Iterator<Item = &NodeInfo> {
        self.scoring_affinity_nodes
            .keys()
            .filter_map(|n| self.node(n))
    }

    /// The nodes holding placed pods of `namespace` labelled `key=value`, with how many.
    pub fn nodes_with_pod_label(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
    ) -> Option<&NodeCounts> {
        self.pod_labels
            .get(namespace)
            .and_then(|m| m.get(key))
            .and_then(|m| m.get(value))
            .map(|e| &e.nodes)
    }

    /// How many placed pods of `namespace` on `node` are labelled `key=value`.
    pub fn pod_label_count(&self, namespace: &str, key: &str, value: &str, node: &NodeInfo) -> u32 {
        self.nodes_with_pod_label(namespace, key, value)
            .and_then(|m| m.get(&node.slot))
            .copied()
            .unwrap_or(0)
    }

    /// The zone values numbered so far, indexed by [`NodeInfo::zone_id`] (some may no
    /// longer be any node's).
    pub fn zone_values(&self) -> &[Arc<str>] {
        &self.zone_values
    }

    /// The values of a node label key and how many nodes carry each (topology domains).
    pub fn node_label_values(&self, key: &str) -> Option<&Map<String, u32>> {
        self.node_labels.get(key)
    }

    /// Removes a node; pods still bound to it keep a placeholder until they go.
    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        // Pods left behind leave their domains with the node's labels.
        let pods = self.nodes[i].pods.clone();
        for p in &pods {
            self.index_pod(p, i, -1);
        }
        if let Some(old) = self.nodes[i].node.take() {
            self.index_node(&old, -1);
            self.real_nodes -= 1;
        }
        for p in &pods {
            self.index_pod(p, i, 1);
        }
        if self.nodes[i].pods.is_empty() {
            self.drop_slot(i);
        }
    }

    /// Frees slot `i` (a node with no pods): the last node moves into it, and its pods are
    /// counted under the new slot.
    fn drop_slot(&mut self, i: usize) {
        let last = self.nodes.len() - 1;
        let moved = if i < last {
            self.nodes[last].pods.clone()
        } else {
            Vec::new()
        };
        for p in &moved {
            self.index_pod(p, last, -1);
        }
        let name = self.nodes[i].name.clone();
        self.index.remove(&name);
        self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            self.nodes[i].slot = i as u32;
            let moved_name = self.nodes[i].name.clone();
            self.index.insert(moved_name, i);
        }
        for p in &moved {
            self.index_pod(p, i, 1);
        }
    }

    /// Adds, updates or removes a pod by its current state: a pod with a node name that is
    /// not finished is placed there; anything else is removed.
    pub fn upsert_pod(&mut self, pod: Arc<Pod>) {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let done = matches!(phase, Some("Succeeded") | Some("Failed"));
        let key = pod_key(&pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        if node.is_some() || done {
            self.clear_nomination(&key);
        }
        if let (Some(node), false) = (&node, done) {
            if self.renew_in_place(&key, node, &pod) {
                return;
            }
        }
        self.remove_pod(&key);
        if let (Some(node), false) = (node, done) {
            self.place(Arc::new(PodInfo::new(pod)), &node);
        }
    }

    /// Puts a newer version of a pod already placed on `node` in the place of the old one when
    /// everything the snapshot counts of it is unchanged ([`PodInfo::renewed`]): its node's
    /// sums and the label indexes stay as they are. Whether it did.
    fn renew_in_place(&mut self, key: &str, node: &str, pod: &Arc<Pod>) -> bool {
        let Some((placed_on, uid)) = self.placed.get(key) else {
            return false;
        };
        if placed_on != node || pod.metadata.uid.as_deref() != Some(uid.as_str()) {
            return false;
        }
        let Some(&i) = self.index.get(node) else {
            return false;
        };
        let Some(slot) = self.nodes[i].pods.iter_mut().find(|p| p.uid == *uid) else {
            return false;
        };
        match slot.renewed(pod) {
            Some(info) => {
                *slot = Arc::new(info);
                true
            }
            None => false,
        }
    }

    /// Places a pod on a node (binding or assuming it).
    pub fn place(&mut self, p: Arc<PodInfo>, node: &str) {
        self.remove_pod(&p.key);
        let i = self.slot(node);
        self.placed
            .insert(p.key.clone(), (node.to_string(), p.uid.clone()));
        self.index_pod(&p, i, 1);
        self.nodes[i].add_pod(p);
    }

    /// Removes a pod by key.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let (node, uid) = self.placed.remove(key)?;
        let i = *self.index.get(&node)?;
        let p = self.nodes[i].remove_pod(&uid, key);
        if let Some(p) = &p {
            self.index_pod(p, i, -1);
        }
        if self.nodes[i].node.is_none() && self.nodes[i].pods.is_empty() {
            self.drop_slot(i);
        }
        p
    }

    /// Records that a pending pod is nominated to a node (preemption).
    pub fn nominate(&mut self, p: Arc<PodInfo>, node: &str) {
        self.clear_nomination(&p.key);
        self.nominated_node.insert(p.key.clone(), node.to_string());
        self.nominated.entry(node.to_string()).or_default().push(p);
    }

    /// Forgets a pod's nomination.
    pub fn clear_nomination(&mut self, key: &str) {
        if let Some(node) = self.nominated_node.remove(key) {
            if let Some(v) = self.nominated.get_mut(&node) {
                v.retain(|p| p.key != key);
                if v.is_empty() {
                    self.nominated.remove(&node);
                }
            }
        }
    }

    /// Whether any pod is nominated to a node.
    pub fn any_nominated(&self) -> bool {
        !self.nominated.is_empty()
    }

    /// The pods nominated to a node.
    pub fn nominated_on(&self, node: &str) -> &[Arc<PodInfo>] {
        self.nominated.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The node a pod is placed on.
    pub fn pod_node(&self, key: &str) -> Option<&str> {
        self.placed.get(key).map(|(n, _)| n.as_str())
    }
}

/// Whether a node changed in what the scheduler reads of it: labels, spec (taints,
/// cordon) or allocatable. Conditions, addresses, images and heartbeat times are not read.
pub fn node_changed(old: &Node, new: &Node) -> bool {
    old.metadata.labels != new.metadata.labels
        || old.spec != new.spec
        || old.status.as_ref().and_then(|s| s.allocatable.as_ref())
            != new.status.as_ref().and_then(|s| s.allocatable.as_ref())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders for tests of the scheduler.
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, NodeSpec, NodeStatus, PodSpec, ResourceRequirements, Taint as KTaint,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub fn node(name: &str, cpu: &str, mem: &str, pods: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([(
                    "kubernetes.io/hostname".to_string(),
                    name.to_string(),
                )])),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(BTreeMap::from([
                    ("cpu".to_string(), Quantity(cpu.into())),
                    ("memory".to_string(), Quantity(mem.into())),
                    ("pods".to_string(), Quantity(pods.into())),
                ])),
                ..Default::default()
            }),
        }
    }

    pub fn label(mut n: Node, k: &str, v: &str) -> Node {
        n.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        n
    }

    pub fn taint(mut n: Node, k: &str, v: &str, effect: &str) -> Node {
        n.spec
            .get_or_insert_with(Default::default)
            .taints
            .get_or_insert_with(Default::default)
            .push(KTaint {
                key: k.into(),
                value: Some(v.into()),
                effect: effect.into(),
                time_added: None,
            });
        n
    }

    pub fn pod(name: &str, cpu: &str, mem: &str) -> Pod {
        let mut req = BTreeMap::new();
        if !cpu.is_empty() {
            req.insert("cpu".to_string(), Quantity(cpu.into()));
        }
        if !mem.is_empty() {
            req.insert("memory".to_string(), Quantity(mem.into()));
        }
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some(req),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        }
    }

    pub fn with_labels(mut p: Pod, pairs: &[(&str, &str)]) -> Pod {
        let l = p.metadata.labels.get_or_insert_with(Default::default);
        for (k, v) in pairs {
            l.insert(k.to_string(), v.to_string());
        }
        p
    }

    pub fn on(mut p: Pod, node: &str) -> Pod {
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        p
    }

    pub fn priority(mut p: Pod, prio: i32) -> Pod {
        p.spec.as_mut().unwrap().priority = Some(prio);
        p
    }

    pub fn snapshot(nodes: Vec<Node>, pods: Vec<Pod>) -> Snapshot {
        let mut s = Snapshot::new();
        for n in nodes {
            s.upsert_node(Arc::new(n));
        }
        for p in pods {
            s.upsert_pod(Arc::new(p));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn incremental_accounting() {
        let mut s = snapshot(vec![node("n1", "4", "8Gi", "110")], vec![]);
        s.upsert_pod(Arc::new(on(pod("a", "1", "1Gi"), "n1")));
        s.upsert_pod(Arc::new(on(pod("b", "500m", ""), "n1")));
        let n = s.node("n1").unwrap();
        assert_eq!(n.requested.milli_cpu, 1500);
        assert_eq!(n.requested.memory, 1 << 30);
        assert_eq!(
            n.non_zero_memory,
            (1 << 30) + crate::resources::DEFAULT_MEMORY_REQUEST
        );
        assert_eq!(n.pods.len(), 2);
        s.remove_pod("default/a");
        let n = s.node("n1").unwrap();
        assert_eq!(n.requested.milli_cpu, 500);
        assert_eq!(n.pods.len(), 1);
        // A finished pod leaves the node.
        let mut done = on(pod("b", "500m", ""), "n1");
        done.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        s.upsert_pod(Arc::new(done));
        assert_eq!(s.node("n1").unwrap().requested.milli_cpu, 0);
    }

    #[test]
    fn a_heartbeat_leaves_the_snapshot_as_upserting_it_would() {
        use k8s_openapi::api::core::v1::NodeCondition;
        let nodes = || {
            (0..3)
                .map(|i| label(node(&format!("n{i}"), "4", "8Gi", "110"), ZONE_LABEL, "z"))
                .collect::<Vec<_>>()
        };
        let pods = vec![on(pod("a", "1", "1Gi"), "n1")];
        let mut skipped = snapshot(nodes(), pods.clone());
        let mut upserted = snapshot(nodes(), pods);
        let mut beat = label(node("n1", "4", "8Gi", "110"), ZONE_LABEL, "z");
        beat.status.as_mut().unwrap().conditions = Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }]);
        assert!(skipped.holds_node(&beat));
        upserted.upsert_node(Arc::new(beat.clone()));
        // The general path leaves every node as the shortcut (doing nothing) does.
        let strip = |ni: &NodeInfo| {
            let mut c = ni.clone();
            c.node = None;
            format!("{c:?}")
        };
        for n in ["n0", "n1", "n2"] {
            assert_eq!(
                strip(skipped.node(n).unwrap()),
                strip(upserted.node(n).unwrap())
            );
        }
        for s in [&mut skipped, &mut upserted] {
            s.upsert_pod(Arc::new(on(pod("b", "2", "1Gi"), "n2")));
        }
        assert_eq!(
            strip(skipped.node("n2").unwrap()),
            strip(upserted.node("n2").unwrap())
        );
        // What the scheduler reads does count.
        let changed = [
            label(beat.clone(), "pool", "gpu"),
            taint(beat.clone(), "dedicated", "gpu", "NoSchedule"),
            {
                let mut n = beat.clone();
                n.spec.as_mut().unwrap().unschedulable = Some(true);
                n
            },
            label(node("n1", "8", "8Gi", "110"), ZONE_LABEL, "z"),
        ];
        for n in &changed {
            assert!(!skipped.holds_node(n), "{n:?}");
        }
        assert!(!skipped.holds_node(&node("n9", "4", "8Gi", "110")));
    }

    #[test]
    fn a_status_write_renews_the_pod_in_place_as_placing_it_again_would() {
        use k8s_openapi::api::core::v1::PodStatus;
        let nodes = || {
            (0..2)
                .map(|i| label(node(&format!("n{i}"), "4", "8Gi", "110"), ZONE_LABEL, "z"))
                .collect::<Vec<_>>()
        };
        let web = |name: &str| on(with_labels(pod(name, "1", "1Gi"), &[("app", "web")]), "n1");
        let pods = vec![web("a"), web("b"), web("c")];
        let mut renewed = snapshot(nodes(), pods.clone());
        let mut placed = snapshot(nodes(), pods);
        for s in [&mut renewed, &mut placed] {
            s.register_topology("default", "app", "web", ZONE_LABEL);
        }
        // Each pod's node, sums and indexes, the pods in key order (the general path puts a
        // pod it places again at the end of its node's list).
        let state = |s: &Snapshot| {
            let mut out = Vec::new();
            for n in ["n0", "n1"] {
                let mut ni = s.node(n).unwrap().clone();
                ni.node = None;
                ni.pods.sort_by(|a, b| a.key.cmp(&b.key));
                out.push(format!("{ni:?}"));
                out.push(format!(
                    "{}",
                    s.pod_label_count("default", "app", "web", s.node(n).unwrap())
                ));
            }
            out.push(format!(
                "{:?}",
                s.topology_counts("default", "app", "web", ZONE_LABEL)
            ));
            out
        };
        let mut running = web("a");
        running.status = Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some("10.0.1.5".into()),
            ..Default::default()
        });
        let running = Arc::new(running);
        renewed.upsert_pod(running.clone());
        placed.remove_pod("default/a");
        placed.upsert_pod(running.clone());
        assert_eq!(state(&renewed), state(&placed));
        // The renewed pod kept its place in the node's list and holds the new object.
        let first = &renewed.node("n1").unwrap().pods[0];
        assert_eq!(first.key, "default/a");
        assert!(Arc::ptr_eq(&first.pod, &running));
        // What the snapshot counts of a pod goes the general way.
        let changes = [
            with_labels(web("b"), &[("app", "api")]),
            on(pod("b", "2", "1Gi"), "n1"),
            on(web("b"), "n0"),
            {
                let mut p = web("b");
                p.metadata.deletion_timestamp = Some(
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
                );
                p
            },
        ];
        for p in changes {
            let p = Arc::new(p);
            let mut via_renew = renewed.clone();
            let mut via_place = renewed.clone();
            via_renew.upsert_pod(p.clone());
            via_place.remove_pod("default/b");
            via_place.upsert_pod(p.clone());
            assert_eq!(state(&via_renew), state(&via_place), "{p:?}");
            assert!(PodInfo::new(web("b").into()).renewed(&p).is_none(), "{p:?}");
        }
    }

    #[test]
    fn pods_on_unknown_nodes_wait_in_a_placeholder() {
        let mut s = Snapshot::new();
        s.upsert_pod(Arc::new(on(pod("a", "1", ""), "later")));
        assert_eq!(s.num_nodes(), 0);
        s.upsert_node(Arc::new(node("later", "2", "1Gi", "10")));
        assert_eq!(s.num_nodes(), 1);
        assert_eq!(s.node("later").unwrap().requested.milli_cpu, 1000);
        s.remove_node("later");
        assert_eq!(s.num_nodes(), 0);
        s.remove_pod("default/a");
        assert!(s.node("later").is_none());
    }

    #[test]
    fn label_indexes_follow_pods_and_nodes() {
        let mut s = snapshot(
            vec![
                label(node("n1", "4", "8Gi", "110"), "zone", "a"),
                label(node("n2", "4", "8Gi", "110"), "zone", "a"),
            ],
            vec![
                on(with_labels(pod("a", "", ""), &[("app", "web")]), "n1"),
                on(with_labels(pod("b", "", ""), &[("app", "web")]), "n1"),
            ],
        );
        let n1 = |s: &Snapshot| s.pod_label_count("default", "app", "web", s.node("n1").unwrap());
        assert_eq!(n1(&s), 2);
        assert_eq!(s.node_label_values("zone").unwrap()["a"], 2);
        s.remove_pod("default/a");
        assert_eq!(n1(&s), 1);
        s.remove_pod("default/b");
        assert!(s
            .nodes_with_pod_label("default", "app", "web")
            .is_none_or(|m| m.is_empty()));
        s.upsert_node(Arc::new(label(node("n2", "4", "8Gi", "110"), "zone", "b")));
        assert_eq!(s.node_label_values("zone").unwrap()["a"], 1);
        s.remove_node("n2");
        assert!(!s.node_label_values("zone").unwrap().contains_key("b"));
    }

    #[test]
    fn a_node_moved_to_a_freed_slot_keeps_its_pod_counts() {
        let mut s = snapshot(
            vec![
                node("n1", "4", "8Gi", "110"),
                node("n2", "4", "8Gi", "110"),
                label(node("n3", "4", "8Gi", "110"), "zone", "c"),
            ],
            vec![
                on(with_labels(pod("a", "", ""), &[("app", "web")]), "n3"),
                on(with_labels(pod("b", "", ""), &[("app", "web")]), "n3"),
                on(with_labels(pod("c", "", ""), &[("app", "web")]), "n2"),
            ],
        );
        s.register_topology("default", "app", "web", "zone");
        // n1 holds no pods: its slot is freed and the last node, n3, moves into it.
        s.remove_node("n1");
        let n3 = s.node("n3").unwrap();
        assert_eq!(n3.slot(), 0);
        assert_eq!(s.nodes()[0].name, "n3");
        assert_eq!(s.pod_label_count("default", "app", "web", n3), 2);
        let n2 = s.node("n2").unwrap();
        assert_eq!(s.pod_label_count("default", "app", "web", n2), 1);
        let by_slot = s.nodes_with_pod_label("default", "app", "web").unwrap();
        assert_eq!(by_slot.len(), 2);
        assert_eq!(by_slot.get(&0), Some(&2));
        assert_eq!(by_slot.get(&n2.slot()), Some(&1));
        let zones = s.topology_counts("default", "app", "web", "zone").unwrap();
        assert_eq!(zones["c"].all, 2);
        s.remove_pod("default/a");
        assert_eq!(
            s.pod_label_count("default", "app", "web", s.node("n3").unwrap()),
            1
        );
    }

    fn anti(mut p: Pod, app: &str, key: &str) -> Pod {
        use k8s_openapi::api::core::v1::{Affinity, PodAffinityTerm, PodAntiAffinity};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([("app".into(), app.into())])),
                        match_expressions: None,
                    }),
                    topology_key: key.into(),
                    ..Default::default()
                }]),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        });
        p
    }

    #[test]
    fn registered_domain_counts_follow_pods_and_node_labels() {
        let mut s = snapshot(
            vec![
                label(node("n1", "4", "8Gi", "110"), "zone", "a"),
                label(node("n2", "4", "8Gi", "110"), "zone", "a"),
                label(node("n3", "4", "8Gi", "110"), "zone", "b"),
            ],
            vec![
                on(with_labels(pod("w0", "", ""), &[("app", "web")]), "n1"),
                on(with_labels(pod("w1", "", ""), &[("app", "web")]), "n2"),
            ],
        );
        assert!(s.topology_counts("default", "app", "web", "zone").is_none());
        s.register_topology("default", "app", "web", "zone");
        let get = |s: &Snapshot, v: &str| {
            s.topology_counts("default", "app", "web", "zone")
                .and_then(|m| m.get(v).copied())
                .unwrap_or_default()
        };
        assert_eq!(get(&s, "a").all, 2);
        s.upsert_pod(Arc::new(on(
            with_labels(pod("w2", "", ""), &[("app", "web")]),
            "n3",
        )));
        assert_eq!(get(&s, "b").all, 1);
        // A pod being deleted still counts, apart.
        let mut dying = on(with_labels(pod("w0", "", ""), &[("app", "web")]), "n1");
        dying.metadata.deletion_timestamp = Some(Time(Default::default()));
        s.upsert_pod(Arc::new(dying));
        assert_eq!(
            get(&s, "a"),
            PairCount {
                all: 2,
                terminating: 1
            }
        );
        assert_eq!(get(&s, "a").live(), 1);
        // n2 moves to zone b: its pod moves with it.
        s.upsert_node(Arc::new(label(node("n2", "4", "8Gi", "110"), "zone", "b")));
        assert_eq!(
            get(&s, "a"),
            PairCount {
                all: 1,
                terminating: 1
            }
        );
        assert_eq!(get(&s, "b").all, 2);
        // A node going away takes its pods out of the domains.
        s.remove_node("n3");
        assert_eq!(get(&s, "b").all, 1);
        s.remove_pod("default/w2");
        s.remove_pod("default/w1");
        assert_eq!(get(&s, "b").all, 0);
        s.remove_pod("default/w0");
        assert!(s.nodes_with_pod_label("default", "app", "web").is_none());
    }

    #[test]
    fn identical_anti_affinity_terms_are_grouped_by_domain() {
        let host = "kubernetes.io/hostname";
        let mut s = snapshot(
            vec![node("n1", "4", "8Gi", "110"), node("n2", "4", "8Gi", "110")],
            vec![
                on(anti(pod("a", "", ""), "web", host), "n1"),
                on(anti(pod("b", "", ""), "web", host), "n2"),
                on(anti(pod("c", "", ""), "web", host), "n2"),
                on(anti(pod("d", "", ""), "db", host), "n1"),
            ],
        );
        assert!(s.has_anti_affinity_pods());
        let groups: Vec<&AntiGroup> = s.anti_groups().collect();
        assert_eq!(groups.len(), 2);
        let web = groups
            .iter()
            .find(|g| g.term.selector.single_equality() == Some(("app", "web")))
            .unwrap();
        assert_eq!(web.pods, 3);
        assert_eq!(web.pairs["n1"].all, 1);
        assert_eq!(web.pairs["n2"].all, 2);
        for k in ["default/a", "default/b", "default/c", "default/d"] {
            s.remove_pod(k);
        }
        assert!(!s.has_anti_affinity_pods());
        assert_eq!(s.anti_groups().count(), 0);
        // Freed slots are reused.
        s.upsert_pod(Arc::new(on(anti(pod("e", "", ""), "x", host), "n1")));
        assert_eq!(s.anti_groups.len(), 2);
        assert_eq!(s.anti_groups().count(), 1);
    }

    #[test]
    fn services_selecting_a_pod_merge_their_selectors() {
        let mut s = Snapshot::new();
        let p = PodInfo::new(Arc::new(with_labels(
            pod("p", "", ""),
            &[("app", "web"), ("tier", "front")],
        )));
        assert_eq!(s.services_selecting(&p), None);
        s.upsert_service(
            "default",
            "a",
            BTreeMap::from([("app".into(), "web".into())]),
        );
        s.upsert_service(
            "default",
            "b",
            BTreeMap::from([("tier".into(), "front".into())]),
        );
        s.upsert_service(
            "default",
            "c",
            BTreeMap::from([("tier".into(), "back".into())]),
        );
        s.upsert_service("default", "headless", BTreeMap::new());
        let m = s.services_selecting(&p).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["app"], "web");
        assert_eq!(m["tier"], "front");
        s.remove_service("default", "a");
        s.remove_service("default", "b");
        assert_eq!(s.services_selecting(&p), None);
    }

    #[test]
    fn hostname_and_zone_are_read_from_the_cache() {
        let long = "z".repeat(70);
        let n = NodeInfo::new(Arc::new(label(
            label(node("n1", "4", "8Gi", "110"), ZONE_LABEL, "zone-a"),
            "other",
            "x",
        )));
        assert_eq!(n.label(HOSTNAME_LABEL), Some("n1"));
        assert_eq!(n.label(ZONE_LABEL), Some("zone-a"));
        assert_eq!(n.label("other"), Some("x"));
        let n = NodeInfo::new(Arc::new(label(
            node("n2", "4", "8Gi", "110"),
            ZONE_LABEL,
            &long,
        )));
        assert_eq!(n.label(ZONE_LABEL), Some(long.as_str()));
        let bare = NodeInfo::new(Arc::new(Node::default()));
        assert_eq!(bare.label(ZONE_LABEL), None);
        // A hostname other than the node's name is kept as it is.
        let n = NodeInfo::new(Arc::new(label(
            node("n3", "4", "8Gi", "110"),
            HOSTNAME_LABEL,
            "host-3",
        )));
        assert_eq!(n.label(HOSTNAME_LABEL), Some("host-3"));
    }

    #[test]
    fn zones_are_numbered_and_shared() {
        let zoned = |n: &str, z: &str| label(node(n, "4", "8Gi", "110"), ZONE_LABEL, z);
        let mut s = snapshot(
            vec![zoned("a1", "a"), zoned("b1", "b"), zoned("a2", "a")],
            vec![],
        );
        s.upsert_node(Arc::new(node("x", "4", "8Gi", "110")));
        let id = |s: &Snapshot, n: &str| s.node(n).unwrap().zone_id();
        assert_eq!(id(&s, "a1"), id(&s, "a2"));
        assert_ne!(id(&s, "a1"), id(&s, "b1"));
        assert_eq!(id(&s, "x"), None);
        let zone = |s: &Snapshot, n: &str| s.zone_values()[id(s, n).unwrap() as usize].clone();
        assert_eq!(&*zone(&s, "b1"), "b");
        // One allocation per zone, whichever node it is read from.
        let (a1, a2) = (s.node("a1").unwrap(), s.node("a2").unwrap());
        assert!(std::ptr::eq(
            a1.label(ZONE_LABEL).unwrap().as_ptr(),
            a2.label(ZONE_LABEL).unwrap().as_ptr()
        ));
        // Relabelling moves the node to the other zone's number, or to none.
        s.upsert_node(Arc::new(zoned("a2", "b")));
        assert_eq!(id(&s, "a2"), id(&s, "b1"));
        s.upsert_node(Arc::new(zoned("x", "c")));
        assert_eq!(&*zone(&s, "x"), "c");
        s.upsert_node(Arc::new(node("a1", "4", "8Gi", "110")));
        assert_eq!(id(&s, "a1"), None);
        // Pods on a placeholder (node not seen yet) have no zone either.
        s.upsert_pod(Arc::new(on(pod("p", "", ""), "ghost")));
        assert_eq!(id(&s, "ghost"), None);
    }

    #[test]
    fn host_port_conflicts() {
        let any = HostPort {
            ip: String::new(),
            protocol: "TCP".into(),
            port: 80,
        };
        let one = HostPort {
            ip: "10.0.0.1".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let two = HostPort {
            ip: "10.0.0.2".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let udp = HostPort {
            ip: String::new(),
            protocol: "UDP".into(),
            port: 80,
        };
        assert!(any.conflicts(&one));
        assert!(!one.conflicts(&two));
        assert!(!any.conflicts(&udp));
    }
}
