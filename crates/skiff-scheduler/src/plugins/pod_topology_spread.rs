//! PodTopologySpread: `topologySpreadConstraints` with `DoNotSchedule` filter nodes where the
//! skew (matching pods in the node's domain, plus the pod itself, minus the emptiest domain,
//! or 0 while fewer than `minDomains` domains exist) would exceed `maxSkew`; those with
//! `ScheduleAnyway` score nodes by how few matching pods their domains hold, weighted by
//! `log(domains + 2)`. `nodeAffinityPolicy` defaults to Honor and `nodeTaintsPolicy` to
//! Ignore. Pods with no constraints of their own get upstream's system defaults (hostname
//! maxSkew 3, zone maxSkew 5, both ScheduleAnyway) when a Service, ReplicationController,
//! ReplicaSet or StatefulSet selects them. Upstream's selector for those is the Services'
//! selectors merged, narrowed by the controller's selector; here a pod of such a controller
//! counts "pods of the same controller" (siblings share the template's labels, so the
//! Services selecting one select all of them and add nothing), and a pod of no such
//! controller counts the pods matching the merged selectors of the Services that select it.

use crate::fasthash::{Map, Set};

use super::{node_affinity, Failure, FilterResult, PodCtx, TopoCounts, MAX_NODE_SCORE};
use crate::selector::{Op, Requirement, Selector};
use crate::snapshot::{
    Effect, NodeCounts, NodeInfo, PairCounts, PodInfo, Snapshot, CONTROLLER_KEY,
};

pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const MISSING_LABEL_REASON: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

static EMPTY: std::sync::LazyLock<NodeCounts> = std::sync::LazyLock::new(NodeCounts::default);

pub const HOSTNAME: &str = "kubernetes.io/hostname";
pub const ZONE: &str = "topology.kubernetes.io/zone";

/// Which pods a constraint counts.
#[derive(Debug, Clone)]
pub enum SpreadSelector {
    Labels(Selector),
    /// Pods of the controller with this uid (the system default constraints).
    Controller(String),
}

/// Which of the two well-known keys a topology key is, read from the node's own memory
/// rather than its label map for every node filtered and scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Hostname,
    Zone,
    Other,
}

impl KeyKind {
    fn of(key: &str) -> KeyKind {
        match key {
            HOSTNAME => KeyKind::Hostname,
            ZONE => KeyKind::Zone,
            _ => KeyKind::Other,
        }
    }
}

/// One compiled constraint.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub max_skew: i64,
    pub topology_key: String,
    kind: KeyKind,
    pub selector: SpreadSelector,
    pub min_domains: i64,
    pub honor_node_affinity: bool,
    pub honor_node_taints: bool,
}

impl Constraint {
    /// The node's value of the constraint's topology key.
    #[inline]
    fn label<'n>(&self, node: &'n NodeInfo) -> Option<&'n str> {
        match self.kind {
            KeyKind::Hostname => node.hostname_label(),
            KeyKind::Zone => node.zone_label(),
            KeyKind::Other => node.label(&self.topology_key),
        }
    }

    #[inline]
    fn is_hostname(&self) -> bool {
        self.kind == KeyKind::Hostname
    }

    fn selects(&self, p: &PodInfo) -> bool {
        match &self.selector {
            SpreadSelector::Labels(s) => s.matches(p.labels()),
            SpreadSelector::Controller(uid) => p.controller_uid.as_deref() == Some(uid.as_str()),
        }
    }

    /// A label every counted pod carries, to look candidates up in the snapshot's index.
    fn hint(&self) -> Option<(&str, &str)> {
        match &self.selector {
            SpreadSelector::Labels(s) => s.equality_hint(),
            SpreadSelector::Controller(uid) => Some((CONTROLLER_KEY, uid.as_str())),
        }
    }

    /// The one label that selects exactly the counted pods (or the controller).
    fn exact(&self) -> Option<(&str, &str)> {
        match &self.selector {
            SpreadSelector::Labels(s) => s.single_equality(),
            SpreadSelector::Controller(uid) => Some((CONTROLLER_KEY, uid.as_str())),
        }
    }

    /// Whether every node with the key counts (no node affinity or taint makes one skip).
    fn unfiltered(&self, pod: &PodCtx) -> bool {
        !self.honor_node_taints
            && (!self.honor_node_affinity
                || (pod.node_selector.is_none() && pod.required_node_affinity.is_none()))
    }

    /// Matching pods per domain as the snapshot keeps them, when registered (not for
    /// hostnames, whose domains are the nodes themselves).
    fn domain_counts<'s>(&self, snap: &'s Snapshot, namespace: &str) -> Option<&'s PairCounts> {
        if self.topology_key == HOSTNAME {
            return None;
        }
        let (k, v) = self.exact()?;
        snap.topology_counts(namespace, k, v, &self.topology_key)
            .map(|c| &**c)
    }

    /// Matching pods on a node: straight from the index when the selector is one label,
    /// else a scan the index may prove unnecessary.
    fn count_in(&self, snap: &Snapshot, node: &NodeInfo, namespace: &str) -> i64 {
        let exact = match &self.selector {
            SpreadSelector::Labels(s) => s.single_equality().is_some(),
            SpreadSelector::Controller(_) => true,
        };
        if let Some((k, v)) = self.hint() {
            let n = snap.pod_label_count(namespace, k, v, node);
            if n == 0 || (exact && node.terminating == 0) {
                return i64::from(n);
            }
        }
        self.count(node, namespace)
    }

    fn count(&self, node: &NodeInfo, namespace: &str) -> i64 {
        node.pods
            .iter()
            .filter(|p| !p.terminating && p.namespace == namespace && self.selects(p))
            .count() as i64
    }

    fn includes(&self, pod: &PodCtx, node: &NodeInfo) -> bool {
        (!self.honor_node_affinity || node_affinity::matches(pod, node))
            && (!self.honor_node_taints
                || node.taints.iter().all(|t| {
                    !matches!(t.effect, Effect::NoSchedule | Effect::NoExecute) || pod.tolerates(t)
                }))
    }
}

/// A pod's constraints, split by `whenUnsatisfiable`.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    pub hard: Vec<Constraint>,
    pub soft: Vec<Constraint>,
    /// The soft constraints are the system defaults.
    pub system_defaulted: bool,
}

impl Constraints {
    pub fn of(pod: &PodCtx, snap: &Snapshot) -> Constraints {
        let info = &pod.info;
        let explicit = info
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .filter(|c| !c.is_empty());
        let mut out = Constraints::default();
        let Some(list) = explicit else {
            let owned = matches!(
                info.controller_kind.as_deref(),
                Some("ReplicaSet" | "StatefulSet" | "ReplicationController")
            );
            let selector = match (owned, info.controller_uid.as_ref()) {
                (true, Some(uid)) => Some(SpreadSelector::Controller(uid.clone())),
                _ => snap
                    .services_selecting(info)
                    .map(|m| SpreadSelector::Labels(Selector::from_map(&m))),
            };
            if let Some(selector) = selector {
                for (key, skew) in [(HOSTNAME, 3), (ZONE, 5)] {
                    out.soft.push(Constraint {
                        max_skew: skew,
                        topology_key: key.into(),
                        kind: KeyKind::of(key),
                        selector: selector.clone(),
                        min_domains: 1,
                        honor_node_affinity: true,
                        honor_node_taints: false,
                    });
                }
                out.system_defaulted = true;
            }
            return out;
        };
        for c in list {
            let mut sel = Selector::from_label_selector(c.label_selector.as_ref());
            for k in c.match_label_keys.iter().flatten() {
                if let Some(v) = info.labels().get(k) {
                    sel.push(Requirement {
                        key: k.clone(),
                        op: Op::In,
                        values: vec![v.clone()],
                    });
                }
            }
            let cons = Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                kind: KeyKind::of(&c.topology_key),
                selector: SpreadSelector::Labels(sel),
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            };
            if c.when_unsatisfiable == "ScheduleAnyway" {
                out.soft.push(cons);
            } else {
                out.hard.push(cons);
            }
        }
        out
    }
}

/// Asks the snapshot to count, by domain, the pods the constraints select (before the
/// pre-filter and pre-score states are computed).
pub fn register(pod: &PodCtx, cons: &Constraints, snap: &mut Snapshot) {
    for c in cons.hard.iter().chain(&cons.soft) {
        if c.is_hostname() {
            continue;
        }
        if let Some((k, v)) = c.exact() {
            snap.register_topology(&pod.info.namespace, k, v, &c.topology_key);
        }
    }
}

fn has_all_keys(cs: &[Constraint], node: &NodeInfo) -> bool {
    cs.iter().all(|c| c.label(node).is_some())
}

/// Matching pods per domain for each hard constraint.
#[derive(Debug, Clone, Default)]
pub struct PreFilterState {
    constraints: Vec<Constraint>,
    counts: Vec<Map<String, i64>>,
    mins: Vec<i64>,
    /// Per constraint: 1 when it selects the incoming pod itself.
    self_match: Vec<i64>,
    /// Per constraint on the zone: whether a node of each zone (by the snapshot's number,
    /// [`NodeInfo::zone_id`]) would exceed the skew, decided once per pod rather than per
    /// node. Empty once the counts are adjusted ([`PreFilterState::update`]).
    by_zone: Vec<Option<Vec<bool>>>,
}

impl PreFilterState {
    pub fn compute(pod: &PodCtx, cons: &Constraints, snap: &Snapshot) -> PreFilterState {
        let cs = cons.hard.clone();
        let mut counts: Vec<Map<String, i64>> = vec![Map::default(); cs.len()];
        let ns = &pod.info.namespace;
        let fast = (cs.len() == 1 && cs[0].unfiltered(pod))
            .then(|| cs[0].domain_counts(snap, ns))
            .flatten();
        if let Some(domains) = fast {
            // Every node with the key counts, and the snapshot counts the pods by domain.
            let c = &cs[0];
            if let Some(values) = snap.node_label_values(&c.topology_key) {
                for v in values.keys() {
                    let n = domains.get(v).map_or(0, |p| i64::from(p.live()));
                    counts[0].insert(v.clone(), n);
                }
            }
        } else if cs.len() == 1 && cs[0].unfiltered(pod) {
            // Every node with the key counts: domains come from the node label index and
            // matching pods from the pod label index.
            let c = &cs[0];
            if let Some(values) = snap.node_label_values(&c.topology_key) {
                for v in values.keys() {
                    counts[0].insert(v.clone(), 0);
                }
            }
            let mut add = |node: &NodeInfo| {
                if let Some(v) = c.label(node) {
                    let n = c.count_in(snap, node, ns);
                    if let Some(x) = counts[0].get_mut(v) {
                        *x += n;
                    }
                }
            };
            match c
                .hint()
                .and_then(|(k, v)| snap.nodes_with_pod_label(ns, k, v).map(|m| (k, v, m)))
            {
                Some((_, _, nodes)) => {
                    for &slot in nodes.keys() {
                        let node = &snap.nodes()[slot as usize];
                        if node.node.is_some() {
                            add(node);
                        }
                    }
                }
                None if c.hint().is_some() => {}
                None => snap
                    .nodes()
                    .iter()
                    .filter(|n| n.node.is_some())
                    .for_each(add),
            }
        } else if !cs.is_empty() {
            for node in snap.nodes() {
                if node.node.is_none() || !has_all_keys(&cs, node) {
                    continue;
                }
                for (i, c) in cs.iter().enumerate() {
                    if !c.includes(pod, node) {
                        continue;
                    }
                    let v = c.label(node).unwrap_or_default();
                    let n = c.count_in(snap, node, ns);
                    match counts[i].get_mut(v) {
                        Some(x) => *x += n,
                        None => {
                            counts[i].insert(v.to_string(), n);
                        }
                    }
                }
            }
        }
        let self_match = cs.iter().map(|c| i64::from(c.selects(&pod.info))).collect();
        let mut s = PreFilterState {
            constraints: cs,
            counts,
            mins: Vec::new(),
            self_match,
            by_zone: Vec::new(),
        };
        s.recompute_mins();
        s.by_zone = (0..s.constraints.len())
            .map(|i| {
                (s.constraints[i].topology_key == ZONE)
                    .then(|| snap.zone_values().iter().map(|z| s.exceeds(i, z)).collect())
            })
            .collect();
        s
    }

    /// Whether a node in domain `value` of constraint `i` would exceed its skew.
    fn exceeds(&self, i: usize, value: &str) -> bool {
        let c = &self.constraints[i];
        let min = if (self.counts[i].len() as i64) < c.min_domains {
            0
        } else {
            self.mins[i]
        };
        let matched = self.counts[i].get(value).copied().unwrap_or(0);
        matched + self.self_match[i] - min > c.max_skew
    }

    fn recompute_mins(&mut self) {
        self.mins = self
            .counts
            .iter()
            .map(|m| m.values().copied().min().unwrap_or(i64::from(i32::MAX)))
            .collect();
    }

    /// Adjusts the counts for a pod added to (`delta` 1) or removed from (-1) a node.
    pub fn update(&mut self, pod: &PodCtx, p: &PodInfo, node: &NodeInfo, delta: i64) {
        if self.constraints.is_empty()
            || p.terminating
            || p.namespace != pod.info.namespace
            || !has_all_keys(&self.constraints, node)
        {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if c.includes(pod, node) && c.selects(p) {
                let v = c.label(node).unwrap_or_default();
                *self.counts[i].entry(v.to_string()).or_insert(0) += delta;
            }
        }
        self.recompute_mins();
        self.by_zone.clear();
    }
}

impl PreFilterState {
    /// Whether the node's zone, by the per-zone verdicts, exceeds a constraint's skew (false
    /// when that is not decided per zone; see [`filter`]).
    pub fn rejects_by_zone(&self, node: &NodeInfo) -> bool {
        let Some(id) = node.zone_id() else {
            return false;
        };
        self.by_zone
            .iter()
            .flatten()
            .any(|table| table.get(id as usize).copied().unwrap_or(false))
    }
}

#[inline]
pub fn filter(state: &PreFilterState, _pod: &PodCtx, node: &NodeInfo) -> FilterResult {
    for (i, c) in state.constraints.iter().enumerate() {
        let decided = match (state.by_zone.get(i), node.zone_id()) {
            (Some(Some(table)), Some(id)) => table.get(id as usize).copied(),
            _ => None,
        };
        let exceeds = match decided {
            Some(x) => x,
            None => {
                let Some(v) = c.label(node) else {
                    return Err(Failure::unresolvable(MISSING_LABEL_REASON));
                };
                state.exceeds(i, v)
            }
        };
        if exceeds {
            return Err(Failure::unschedulable(REASON));
        }
    }
    Ok(())
}

/// Soft-constraint scoring state over the feasible nodes.
#[derive(Debug, Default)]
pub struct PreScoreState<'a> {
    constraints: Vec<Constraint>,
    ignored: Vec<bool>,
    weights: Vec<f64>,
    pairs: TopoCounts,
    namespace: String,
    /// Per constraint whose selector is exactly one label (or a controller): matching pods
    /// per node, straight from the snapshot's index.
    direct: Vec<Option<&'a NodeCounts>>,
    /// Per constraint whose domains the snapshot counts (and no node is left out): those
    /// counts, used instead of `pairs`.
    domains: Vec<Option<&'a PairCounts>>,
}

impl<'a> PreScoreState<'a> {
    /// `feasible` indexes `snap.nodes()`; `None` when there is nothing to score.
    pub fn compute(
        pod: &PodCtx,
        cons: &Constraints,
        snap: &'a Snapshot,
        feasible: &[usize],
    ) -> Option<PreScoreState<'a>> {
        if cons.soft.is_empty() || feasible.is_empty() {
            return None;
        }
        let require_all = !cons.system_defaulted;
        let mut cs = cons.soft.clone();
        if !require_all {
            // A key no node carries at all (the zone, in a cluster without zones) adds nothing
            // to any node's score; that needs no look at the feasible nodes (see below for
            // keys only some nodes carry).
            cs.retain(|c| {
                c.is_hostname()
                    || snap
                        .node_label_values(&c.topology_key)
                        .is_some_and(|m| !m.is_empty())
            });
        }
        let nodes = snap.nodes();
        let mut ignored = vec![false; feasible.len()];
        let mut sizes = vec![0usize; cs.len()];
        let mut pairs = TopoCounts::default();
        let mut seen: Map<(usize, &str), ()> = Map::default();
        // With only the hostname term left, nothing below needs a look at each node: its
        // domains are the feasible nodes themselves.
        let by_node = require_all || cs.iter().any(|c| !c.is_hostname());
        if by_node {
            for (j, &ix) in feasible.iter().enumerate() {
                let node = &nodes[ix];
                if require_all && !has_all_keys(&cs, node) {
                    ignored[j] = true;
                    continue;
                }
                for (i, c) in cs.iter().enumerate() {
                    if c.is_hostname() {
                        continue;
                    }
                    if let Some(v) = c.label(node) {
                        if seen.insert((i, v), ()).is_none() {
                            sizes[i] += 1;
                            pairs.add(&c.topology_key, v, 0);
                        }
                    }
                }
            }
        }
        if !require_all {
            // A key no feasible node carries adds nothing to any node's score: leave its
            // constraint out of the pass over them.
            (cs, sizes) = cs
                .into_iter()
                .zip(sizes)
                .filter(|(c, n)| c.is_hostname() || *n > 0)
                .unzip();
        }
        let n_ignored = ignored.iter().filter(|x| **x).count();
        let weights = cs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let sz = if c.is_hostname() {
                    feasible.len() - n_ignored
                } else {
                    sizes[i]
                };
                ((sz + 2) as f64).ln()
            })
            .collect();
        // Domains counted by the snapshot need no pass over the nodes.
        let whole = !require_all || cs.len() == 1;
        let domains: Vec<Option<&PairCounts>> = cs
            .iter()
            .map(|c| {
                (whole && c.unfiltered(pod))
                    .then(|| c.domain_counts(snap, &pod.info.namespace))
                    .flatten()
            })
            .collect();
        let count_node = |node: &NodeInfo, pairs: &mut TopoCounts| {
            if node.node.is_none() || (require_all && !has_all_keys(&cs, node)) {
                return;
            }
            for (i, c) in cs.iter().enumerate() {
                if c.is_hostname() || domains[i].is_some() || !c.includes(pod, node) {
                    continue;
                }
                let Some(v) = c.label(node) else {
                    continue;
                };
                if !pairs.contains(&c.topology_key, v) {
                    continue;
                }
                let n = c.count_in(snap, node, &pod.info.namespace);
                pairs.add(&c.topology_key, v, n);
            }
        };
        // Candidate nodes from the pod label index when every constraint has a hint.
        let hinted: Option<Vec<&NodeCounts>> = cs
            .iter()
            .zip(&domains)
            .filter(|(c, d)| !c.is_hostname() && d.is_none())
            .map(|(c, _)| c)
            .map(|c| {
                c.hint().map(|(k, v)| {
                    snap.nodes_with_pod_label(&pod.info.namespace, k, v)
                        .unwrap_or(&EMPTY)
                })
            })
            .collect();
        match hinted {
            Some(maps) => {
                let mut seen_nodes = Set::default();
                for m in maps {
                    for &slot in m.keys() {
                        if seen_nodes.insert(slot) {
                            count_node(&nodes[slot as usize], &mut pairs);
                        }
                    }
                }
            }
            None => nodes.iter().for_each(|n| count_node(n, &mut pairs)),
        }
        let direct = cs
            .iter()
            .map(|c| {
                let exact = match &c.selector {
                    SpreadSelector::Labels(s) => s.single_equality().is_some(),
                    SpreadSelector::Controller(_) => true,
                };
                let (k, v) = c.hint().filter(|_| exact)?;
                Some(
                    snap.nodes_with_pod_label(&pod.info.namespace, k, v)
                        .unwrap_or(&EMPTY),
                )
            })
            .collect();
        Some(PreScoreState {
            constraints: cs,
            ignored,
            weights,
            pairs,
            namespace: pod.info.namespace.clone(),
            direct,
            domains,
        })
    }

    /// The raw scores of the feasible nodes (`feasible` as given to [`Self::compute`]; lower
    /// is better before normalizing), written to `out` (whatever it held before).
    pub fn score_all(&self, snap: &Snapshot, feasible: &[usize], out: &mut Vec<i64>) {
        if let ([c], [Some(counts)]) = (self.constraints.as_slice(), self.direct.as_slice()) {
            if c.is_hostname() {
                return self.score_hostname(c, counts, snap, feasible, out);
            }
        }
        out.clear();
        out.resize(feasible.len(), 0);
        self.score_each_constraint(snap, feasible, out);
    }

    /// [`Self::score_all`] for any constraints (the reference its fast path is tested
    /// against). One pass per constraint, so what a constraint reads from (the snapshot's
    /// counts per node or per domain, or the counts gathered here) is decided once, not per
    /// node; each node's terms are added in the constraints' order, as a per-node sum would.
    pub(crate) fn score_each_constraint(
        &self,
        snap: &Snapshot,
        feasible: &[usize],
        out: &mut [i64],
    ) {
        let nodes = snap.nodes();
        let mut acc = vec![0.0f64; feasible.len()];
        for (i, c) in self.constraints.iter().enumerate() {
            let w = self.weights[i];
            let skew = (c.max_skew - 1) as f64;
            for ((a, &ix), &ignored) in acc.iter_mut().zip(feasible).zip(&self.ignored) {
                if ignored {
                    continue;
                }
                let node = &nodes[ix];
                let Some(v) = c.label(node) else {
                    continue;
                };
                let cnt = if c.is_hostname() {
                    match self.direct[i] {
                        Some(m) if node.terminating == 0 => {
                            i64::from(m.get(&node.slot()).copied().unwrap_or(0))
                        }
                        _ => c.count_in(snap, node, &self.namespace),
                    }
                } else if let Some(d) = self.domains[i] {
                    d.get(v).map_or(0, |p| i64::from(p.live()))
                } else {
                    self.pairs.get(&c.topology_key, v)
                };
                *a += cnt as f64 * w + skew;
            }
        }
        for ((o, a), &ignored) in out.iter_mut().zip(&acc).zip(&self.ignored) {
            *o = if ignored { 0 } else { a.round() as i64 };
        }
    }

    /// [`Self::score_all`] for a single constraint, on the hostname, counting pods by one
    /// label (the system default's term in a cluster without zones). A node's score then
    /// depends on its count alone, and counts are small: each count's score is worked out
    /// once, with the general path's arithmetic (whose sum starts at `0.0`, which adding
    /// changes no finite value but `-0.0`, and that rounds to 0 either way).
    fn score_hostname(
        &self,
        c: &Constraint,
        counts: &NodeCounts,
        snap: &Snapshot,
        feasible: &[usize],
        out: &mut Vec<i64>,
    ) {
        let nodes = snap.nodes();
        let w = self.weights[0];
        let skew = (c.max_skew - 1) as f64;
        let score = |cnt: i64| (cnt as f64 * w + skew).round() as i64;
        let mut known = [None; 16];
        out.clear();
        out.extend(feasible.iter().zip(&self.ignored).map(|(&ix, &ignored)| {
            let node = &nodes[ix];
            if ignored || c.label(node).is_none() {
                return 0;
            }
            let cnt = if node.terminating > 0 {
                c.count_in(snap, node, &self.namespace)
            } else if counts.is_empty() {
                0
            } else {
                i64::from(counts.get(&node.slot()).copied().unwrap_or(0))
            };
            match known.get_mut(cnt as usize) {
                Some(Some(s)) => *s,
                Some(slot) => *slot.insert(score(cnt)),
                None => score(cnt),
            }
        }));
    }

    /// [`Self::normalize`] and the weighted sum in one: adds each node's normalized score
    /// times `weight` to `total` (ignored nodes add nothing).
    pub fn add_normalized(&self, raw: &[i64], total: &mut [i64], weight: i64) {
        let (mut min, mut max) = (i64::MAX, 0);
        for (&s, &ignored) in raw.iter().zip(&self.ignored) {
            if !ignored {
                min = min.min(s);
                max = max.max(s);
            }
        }
        for ((t, &s), &ignored) in total.iter_mut().zip(raw).zip(&self.ignored) {
            if ignored {
                continue;
            }
            *t += weight
                * if max == 0 {
                    MAX_NODE_SCORE
                } else {
                    MAX_NODE_SCORE * (max + min - s) / max
                };
        }
    }

    /// Fewer matching pods score higher; ignored nodes score 0.
    pub fn normalize(&self, scores: &mut [i64]) {
        let mut min = i64::MAX;
        let mut max = 0;
        for (j, s) in scores.iter().enumerate() {
            if !self.ignored[j] {
                min = min.min(*s);
                max = max.max(*s);
            }
        }
        for (j, s) in scores.iter_mut().enumerate() {
            if self.ignored[j] {
                *s = 0;
            } else if max == 0 {
                *s = MAX_NODE_SCORE;
            } else {
                *s = MAX_NODE_SCORE * (max + min - *s) / max;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use k8s_openapi::api::core::v1::{Pod, TopologySpreadConstraint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn zoned(name: &str, zone: &str) -> k8s_openapi::api::core::v1::Node {
        label(node(name, "4", "8Gi", "110"), ZONE, zone)
    }

    fn spread(mut p: Pod, key: &str, skew: i32, when: &str, min_domains: Option<i32>) -> Pod {
        p.spec.as_mut().unwrap().topology_spread_constraints =
            Some(vec![TopologySpreadConstraint {
                label_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                    match_expressions: None,
                }),
                max_skew: skew,
                topology_key: key.into(),
                when_unsatisfiable: when.into(),
                min_domains,
                ..Default::default()
            }]);
        p
    }

    fn web(name: &str) -> Pod {
        with_labels(pod(name, "", ""), &[("app", "web")])
    }

    fn results(s: &Snapshot, p: Pod, names: &[&str]) -> Vec<Result<(), String>> {
        let ctx = PodCtx::new(Arc::new(p));
        let cons = Constraints::of(&ctx, s);
        let st = PreFilterState::compute(&ctx, &cons, s);
        names
            .iter()
            .map(|n| filter(&st, &ctx, s.node(n).unwrap()).map_err(|f| f.reasons[0].to_string()))
            .collect()
    }

    #[test]
    fn max_skew_across_zones() {
        let s = snapshot(
            vec![
                zoned("a1", "a"),
                zoned("b1", "b"),
                zoned("c1", "c"),
                node("x", "4", "8Gi", "110"),
            ],
            vec![on(web("w0"), "a1"), on(web("w1"), "b1")],
        );
        let r = results(
            &s,
            spread(web("w2"), ZONE, 1, "DoNotSchedule", None),
            &["a1", "b1", "c1", "x"],
        );
        assert_eq!(r[0], Err(REASON.to_string()));
        assert_eq!(r[1], Err(REASON.to_string()));
        assert_eq!(r[2], Ok(()));
        assert_eq!(r[3], Err(MISSING_LABEL_REASON.to_string()));
    }

    #[test]
    fn zone_verdicts_match_the_per_node_check() {
        // Zones a (3 pods), b (1), c (0), a node without a zone, and a zone relabelled in
        // after the first pods were counted: the per-zone table and the per-node lookup agree.
        let mut s = snapshot(
            vec![
                zoned("a1", "a"),
                zoned("a2", "a"),
                zoned("b1", "b"),
                zoned("c1", "c"),
                node("x", "4", "8Gi", "110"),
            ],
            vec![
                on(web("w0"), "a1"),
                on(web("w1"), "a2"),
                on(web("w2"), "a2"),
                on(web("w3"), "b1"),
            ],
        );
        s.upsert_node(Arc::new(zoned("x", "d")));
        let names = ["a1", "a2", "b1", "c1", "x"];
        for (skew, min_domains) in [(1, None), (2, None), (3, None), (1, Some(5))] {
            let ctx = PodCtx::new(Arc::new(spread(
                web("new"),
                ZONE,
                skew,
                "DoNotSchedule",
                min_domains,
            )));
            let cons = Constraints::of(&ctx, &s);
            let st = PreFilterState::compute(&ctx, &cons, &s);
            assert!(st.by_zone[0].is_some());
            let mut per_node = st.clone();
            per_node.by_zone.clear();
            for n in names {
                let node = s.node(n).unwrap();
                assert!(node.zone_id().is_some());
                assert_eq!(
                    filter(&st, &ctx, node),
                    filter(&per_node, &ctx, node),
                    "skew {skew} minDomains {min_domains:?} node {n}"
                );
            }
            // maxSkew 1: only the empty zones c and d take the pod.
            if skew == 1 && min_domains.is_none() {
                let ok: Vec<&str> = names
                    .into_iter()
                    .filter(|n| filter(&st, &ctx, s.node(n).unwrap()).is_ok())
                    .collect();
                assert_eq!(ok, vec!["c1", "x"]);
            }
        }
    }

    #[test]
    fn min_domains_forces_new_domains() {
        let s = snapshot(
            vec![zoned("a1", "a"), zoned("b1", "b")],
            vec![on(web("w0"), "a1"), on(web("w1"), "b1")],
        );
        // Two domains, both at 1: skew 1 is fine...
        let r = results(
            &s,
            spread(web("w2"), ZONE, 1, "DoNotSchedule", None),
            &["a1", "b1"],
        );
        assert!(r.iter().all(Result::is_ok));
        // ...but with minDomains 3 the global minimum counts as 0.
        let r = results(
            &s,
            spread(web("w2"), ZONE, 1, "DoNotSchedule", Some(3)),
            &["a1", "b1"],
        );
        assert!(r.iter().all(Result::is_err));
    }

    #[test]
    fn soft_spread_prefers_emptier_zone() {
        let s = snapshot(
            vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")],
            vec![on(web("w0"), "a1"), on(web("w1"), "a2")],
        );
        let ctx = PodCtx::new(Arc::new(spread(web("w2"), ZONE, 1, "ScheduleAnyway", None)));
        let cons = Constraints::of(&ctx, &s);
        let feasible: Vec<usize> = ["a1", "a2", "b1"]
            .iter()
            .map(|n| s.nodes().iter().position(|x| x.name == *n).unwrap())
            .collect();
        let st = PreScoreState::compute(&ctx, &cons, &s, &feasible).unwrap();
        let mut sc = vec![0; feasible.len()];
        st.score_all(&s, &feasible, &mut sc);
        st.normalize(&mut sc);
        assert!(sc[2] > sc[0], "{sc:?}");
        assert_eq!(sc[0], sc[1]);
    }

    #[test]
    fn system_defaults_for_controller_pods() {
        let p = of_rs(web("w"));
        let mut s = Snapshot::new();
        let c = Constraints::of(&PodCtx::new(Arc::new(p)), &s);
        assert!(c.hard.is_empty());
        assert_eq!(c.soft.len(), 2);
        assert!(c.system_defaulted);
        assert!(matches!(&c.soft[0].selector, SpreadSelector::Controller(u) if u == "rs-uid"));
        assert!(Constraints::of(&PodCtx::new(Arc::new(web("bare"))), &s)
            .soft
            .is_empty());
        // A Service selecting a bare pod gives it the defaults too, counting the pods its
        // selector (merged with other selecting Services') takes.
        s.upsert_service(
            "default",
            "web",
            BTreeMap::from([("app".into(), "web".into())]),
        );
        s.upsert_service("default", "all", BTreeMap::new());
        s.upsert_service(
            "default",
            "db",
            BTreeMap::from([("app".into(), "db".into())]),
        );
        s.upsert_service(
            "other",
            "web",
            BTreeMap::from([("tier".into(), "x".into())]),
        );
        let c = Constraints::of(&PodCtx::new(Arc::new(web("bare"))), &s);
        assert!(c.system_defaulted);
        assert_eq!(c.soft.len(), 2);
        assert_eq!(c.soft[0].topology_key, HOSTNAME);
        assert_eq!(c.soft[1].topology_key, ZONE);
        assert_eq!(c.soft[1].max_skew, 5);
        assert_eq!(c.soft[0].exact(), Some(("app", "web")));
        let other = with_labels(pod("x", "", ""), &[("app", "api")]);
        assert!(Constraints::of(&PodCtx::new(Arc::new(other)), &s)
            .soft
            .is_empty());
        s.remove_service("default", "web");
        assert!(Constraints::of(&PodCtx::new(Arc::new(web("bare"))), &s)
            .soft
            .is_empty());
    }

    fn of_rs(mut p: Pod) -> Pod {
        p.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web-1".into(),
            uid: "rs-uid".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        p
    }

    /// Normalized system-default spreading scores of a new pod of the ReplicaSet on n1..n3.
    fn default_scores(s: &mut Snapshot) -> Vec<i64> {
        let ctx = PodCtx::new(Arc::new(of_rs(web("new"))));
        let cons = Constraints::of(&ctx, s);
        assert!(cons.system_defaulted);
        register(&ctx, &cons, s);
        let feasible: Vec<usize> = ["n1", "n2", "n3"]
            .iter()
            .map(|n| s.nodes().iter().position(|x| x.name == *n).unwrap())
            .collect();
        let st = PreScoreState::compute(&ctx, &cons, s, &feasible).unwrap();
        let mut sc = vec![0; feasible.len()];
        st.score_all(s, &feasible, &mut sc);
        st.normalize(&mut sc);
        sc
    }

    #[test]
    fn system_default_scores_count_siblings_per_host_and_zone() {
        let pods = vec![
            on(of_rs(web("w0")), "n1"),
            on(of_rs(web("w1")), "n1"),
            on(of_rs(web("w2")), "n2"),
        ];
        let plain = |n| node(n, "4", "8Gi", "110");
        // No node has a zone: only the hostname term counts, weighted by ln(3 + 2) with
        // maxSkew 3: raw 2·1.609 + 2 → 5, 1.609 + 2 → 4, 2; normalized 100·(5 + 2 − s)/5.
        let mut s = snapshot(vec![plain("n1"), plain("n2"), plain("n3")], pods.clone());
        assert_eq!(default_scores(&mut s), vec![40, 60, 100]);
        // The same when only a node that is not feasible has a zone.
        let nodes = vec![plain("n1"), plain("n2"), plain("n3"), zoned("n4", "b")];
        let mut s = snapshot(nodes, pods.clone());
        assert_eq!(default_scores(&mut s), vec![40, 60, 100]);
        // n3 in a zone of its own, holding none of the pods: the zone term (ln(1 + 2), maxSkew
        // 5) adds 0·1.099 + 4 to n3 alone, and n3 scores lowest: raw 5, 4, 6.
        let mut s = snapshot(vec![plain("n1"), plain("n2"), zoned("n3", "a")], pods);
        assert_eq!(default_scores(&mut s), vec![83, 100, 66]);
    }

    #[test]
    fn service_pods_spread_across_zones() {
        // Zone a holds two pods of the Service, zone b none: a third goes to b, also when
        // the counts come from the snapshot's domain counts.
        let mut s = snapshot(
            vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")],
            vec![on(web("w0"), "a1"), on(web("w1"), "a2")],
        );
        s.upsert_service(
            "default",
            "web",
            BTreeMap::from([("app".into(), "web".into())]),
        );
        let ctx = PodCtx::new(Arc::new(web("w2")));
        let cons = Constraints::of(&ctx, &s);
        register(&ctx, &cons, &mut s);
        assert!(s.topology_counts("default", "app", "web", ZONE).is_some());
        let feasible: Vec<usize> = ["a1", "a2", "b1"]
            .iter()
            .map(|n| s.nodes().iter().position(|x| x.name == *n).unwrap())
            .collect();
        let st = PreScoreState::compute(&ctx, &cons, &s, &feasible).unwrap();
        let mut sc = vec![0; feasible.len()];
        st.score_all(&s, &feasible, &mut sc);
        st.normalize(&mut sc);
        assert!(sc[2] > sc[0] && sc[2] > sc[1], "{sc:?}");
    }
}
