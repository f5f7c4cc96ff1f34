//! InterPodAffinity: required pod affinity and anti-affinity by topology key, both the
//! incoming pod's and the existing pods' anti-affinity against the incoming pod; preferred
//! terms (and existing pods' required affinity, at weight 1) score topology domains.
//!
//! As upstream, a pre-filter pass counts matching pods per topology pair once per pod, the
//! per-node filter then only looks up the node's pairs, and preemption adjusts the counts as
//! it removes and re-adds victims. The pairs come from counts the snapshot keeps: existing
//! pods' anti-affinity terms grouped when identical (so a pod is checked against each
//! distinct term once, not against every pod that has it), and the domains of pods with one
//! `key=value` label for the incoming pod's own terms ([`register`]). Pods and clusters
//! without affinity terms cost nothing.

use std::collections::BTreeMap;

use crate::fasthash::{Map, Set};

use super::{Failure, FilterResult, PodCtx, TopoCounts, MAX_NODE_SCORE};
use std::sync::Arc;

use crate::snapshot::{AffinityTerm, NodeInfo, PairCounts, PodInfo, Snapshot, HOSTNAME_LABEL};

pub const AFFINITY_REASON: &str = "node(s) didn't match pod affinity rules";
pub const ANTI_AFFINITY_REASON: &str = "node(s) didn't match pod anti-affinity rules";
pub const EXISTING_ANTI_AFFINITY_REASON: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// Upstream's default `hardPodAffinityWeight`.
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

type NsLabels = Map<String, BTreeMap<String, String>>;

/// What the filter needs, computed once per pod.
#[derive(Debug, Clone, Default)]
pub struct PreFilterState {
    /// Pairs where an existing pod's required anti-affinity selects the incoming pod.
    existing_anti: TopoCounts,
    /// Pairs with pods matching all of the incoming pod's required affinity terms.
    affinity: TopoCounts,
    /// Pairs with pods matching one of the incoming pod's required anti-affinity terms.
    anti: TopoCounts,
    active: bool,
    /// When every count is by hostname, straight from the snapshot, and the pod has no
    /// required affinity (hostname anti-affinity, the common shape): the layers to read at
    /// the node's hostname, so the filter looks that value up once and hashes it once per
    /// layer. Dropped when the counts are adjusted ([`PreFilterState::update`]).
    by_hostname: Option<HostnamePlan>,
}

#[derive(Debug, Clone, Default)]
struct HostnamePlan {
    /// Pods matching one of the incoming pod's anti-affinity terms.
    anti: Vec<Arc<PairCounts>>,
    /// Existing pods whose anti-affinity selects the incoming pod.
    existing: Vec<Arc<PairCounts>>,
    /// No two nodes share a hostname, so a node without pods is in no counted domain.
    unique: bool,
}

impl HostnamePlan {
    fn of(pod: &PodCtx, s: &PreFilterState, snap: &Snapshot) -> Option<HostnamePlan> {
        if !pod.info.required_affinity.is_empty()
            || pod
                .info
                .required_anti_affinity
                .iter()
                .any(|t| t.topology_key != HOSTNAME_LABEL)
        {
            return None;
        }
        Some(HostnamePlan {
            anti: s.anti.only_layers(HOSTNAME_LABEL)?.to_vec(),
            existing: s.existing_anti.only_layers(HOSTNAME_LABEL)?.to_vec(),
            unique: snap.hostnames_unique(),
        })
    }

    fn hits(layers: &[Arc<PairCounts>], value: &str) -> bool {
        layers
            .iter()
            .any(|m| m.get(value).is_some_and(|c| c.all > 0))
    }
}

/// Slots of the nodes whose pods may match the terms (from the snapshot's pod label index),
/// or `None` when some term has no `key=value` to look up (then every node is a candidate).
fn candidate_nodes<'a>(
    snap: &'a Snapshot,
    terms: impl Iterator<Item = &'a AffinityTerm>,
) -> Option<Set<u32>> {
    let mut out = Set::default();
    for t in terms {
        if t.namespace_selector.is_some() {
            return None;
        }
        let (k, v) = t.selector.equality_hint()?;
        for ns in &t.namespaces {
            if let Some(m) = snap.nodes_with_pod_label(ns, k, v) {
                out.extend(m.keys().copied());
            }
        }
    }
    Some(out)
}

fn matches_all(terms: &[crate::snapshot::AffinityTerm], p: &PodInfo, ns: &NsLabels) -> bool {
    terms.iter().all(|t| t.matches(p, ns))
}

/// The incoming pod's required terms whose pods the snapshot can count by domain: one
/// `key=value` selector in listed namespaces (and at most one affinity term, whose pods then
/// carry that label); `None` when some term needs a scan.
fn exact_terms(pod: &PodCtx) -> Option<impl Iterator<Item = (usize, &AffinityTerm)>> {
    let req = &pod.info.required_affinity;
    let anti = &pod.info.required_anti_affinity;
    let exact =
        |t: &AffinityTerm| t.namespace_selector.is_none() && t.selector.single_equality().is_some();
    if req.len() > 1 || !req.iter().chain(anti.iter()).all(exact) {
        return None;
    }
    Some(req.iter().chain(anti.iter()).enumerate())
}

/// Asks the snapshot to count, by domain, the pods the incoming pod's required terms select
/// (before [`PreFilterState::compute`]).
pub fn register(pod: &PodCtx, snap: &mut Snapshot) {
    let Some(terms) = exact_terms(pod) else {
        return;
    };
    for (_, t) in terms {
        let (k, v) = t.selector.single_equality().expect("exact");
        for ns in &t.namespaces {
            snap.register_topology(ns, k, v, &t.topology_key);
        }
    }
}

impl PreFilterState {
    pub fn compute(pod: &PodCtx, snap: &Snapshot) -> PreFilterState {
        let mut s = PreFilterState::default();
        let ns = &snap.namespace_labels;
        let own =
            !pod.info.required_affinity.is_empty() || !pod.info.required_anti_affinity.is_empty();
        // Existing pods' anti-affinity: each distinct term once, with its domains.
        for g in snap.anti_groups() {
            if g.term.matches(&pod.info, ns) {
                s.existing_anti
                    .add_base(&g.term.topology_key, g.pairs.clone());
            }
        }
        s.active = own || s.existing_anti.any_positive();
        if !own {
            s.by_hostname = HostnamePlan::of(pod, &s, snap);
            return s;
        }
        if s.count_exact(pod, snap) {
            s.by_hostname = HostnamePlan::of(pod, &s, snap);
            return s;
        }
        // Pods matching all affinity terms carry the first term's label; anti-affinity
        // terms each need their own.
        let cands = candidate_nodes(
            snap,
            pod.info
                .required_affinity
                .first()
                .into_iter()
                .chain(pod.info.required_anti_affinity.iter()),
        );
        let mut visit = |node: &NodeInfo| {
            if node.node.is_some() {
                for p in &node.pods {
                    s.account_own(pod, p, node, ns, 1);
                }
            }
        };
        match cands {
            Some(slots) => slots
                .iter()
                .map(|&slot| &snap.nodes()[slot as usize])
                .for_each(&mut visit),
            None => snap.nodes().iter().for_each(&mut visit),
        }
        s
    }

    /// Counts the incoming pod's own terms from the index when each term is one label in
    /// listed namespaces (and there is at most one affinity term); false when a scan is
    /// needed.
    fn count_exact(&mut self, pod: &PodCtx, snap: &Snapshot) -> bool {
        let Some(terms) = exact_terms(pod) else {
            return false;
        };
        let req = &pod.info.required_affinity;
        for (i, t) in terms {
            let (k, v) = t.selector.single_equality().expect("exact");
            for ns in &t.namespaces {
                if let Some(counts) = snap.topology_counts(ns, k, v, &t.topology_key) {
                    let target = if i < req.len() {
                        &mut self.affinity
                    } else {
                        &mut self.anti
                    };
                    target.add_base(&t.topology_key, counts.clone());
                    continue;
                }
                // Not registered: count from the nodes holding such pods.
                let Some(by_node) = snap.nodes_with_pod_label(ns, k, v) else {
                    continue;
                };
                for (&slot, n) in by_node {
                    let node = &snap.nodes()[slot as usize];
                    if node.node.is_none() {
                        continue;
                    }
                    if let Some(val) = node.label(&t.topology_key) {
                        let target = if i < req.len() {
                            &mut self.affinity
                        } else {
                            &mut self.anti
                        };
                        target.add(&t.topology_key, val, i64::from(*n));
                    }
                }
            }
        }
        true
    }

    fn account(
        &mut self,
        pod: &PodCtx,
        p: &PodInfo,
        node: &NodeInfo,
        ns: &NsLabels,
        delta: i64,
        own: bool,
    ) {
        self.account_existing(pod, p, node, ns, delta);
        if own {
            self.account_own(pod, p, node, ns, delta);
        }
    }

    fn account_existing(
        &mut self,
        pod: &PodCtx,
        p: &PodInfo,
        node: &NodeInfo,
        ns: &NsLabels,
        delta: i64,
    ) {
        for t in &p.required_anti_affinity {
            if let Some(v) = node.label(&t.topology_key) {
                if t.matches(&pod.info, ns) {
                    self.existing_anti.add(&t.topology_key, v, delta);
                }
            }
        }
    }

    fn account_own(
        &mut self,
        pod: &PodCtx,
        p: &PodInfo,
        node: &NodeInfo,
        ns: &NsLabels,
        delta: i64,
    ) {
        let req = &pod.info.required_affinity;
        if !req.is_empty() && matches_all(req, p, ns) {
            for t in req {
                if let Some(v) = node.label(&t.topology_key) {
                    self.affinity.add(&t.topology_key, v, delta);
                }
            }
        }
        for t in &pod.info.required_anti_affinity {
            if let Some(v) = node.label(&t.topology_key) {
                if t.matches(p, ns) {
                    self.anti.add(&t.topology_key, v, delta);
                }
            }
        }
    }

    /// Adjusts the counts for a pod added to (`delta` 1) or removed from (-1) a node.
    pub fn update(
        &mut self,
        pod: &PodCtx,
        p: &PodInfo,
        node: &NodeInfo,
        ns: &NsLabels,
        delta: i64,
    ) {
        let own =
            !pod.info.required_affinity.is_empty() || !pod.info.required_anti_affinity.is_empty();
        self.account(pod, p, node, ns, delta, own);
        self.active = true;
        self.by_hostname = None;
    }
}

#[inline]
pub fn filter(
    state: &PreFilterState,
    pod: &PodCtx,
    ns: &NsLabels,
    node: &NodeInfo,
) -> FilterResult {
    if !state.active {
        return Ok(());
    }
    if let Some(plan) = &state.by_hostname {
        if plan.unique && node.pods.is_empty() {
            return Ok(());
        }
        // Same verdicts as below: a node without the label is in no hostname domain.
        let Some(v) = node.label(HOSTNAME_LABEL) else {
            return Ok(());
        };
        if HostnamePlan::hits(&plan.anti, v) {
            return Err(Failure::unschedulable(ANTI_AFFINITY_REASON));
        }
        if HostnamePlan::hits(&plan.existing, v) {
            return Err(Failure::unschedulable(EXISTING_ANTI_AFFINITY_REASON));
        }
        return Ok(());
    }
    let req = &pod.info.required_affinity;
    if !req.is_empty() {
        let mut pods_exist = true;
        for t in req {
            match node.label(&t.topology_key) {
                Some(v) => {
                    if state.affinity.get(&t.topology_key, v) <= 0 {
                        pods_exist = false;
                    }
                }
                None => return Err(Failure::unresolvable(AFFINITY_REASON)),
            }
        }
        // The first pod of a group whose terms select itself may go anywhere with the keys.
        if !pods_exist && (state.affinity.any_positive() || !matches_all(req, &pod.info, ns)) {
            return Err(Failure::unresolvable(AFFINITY_REASON));
        }
    }
    for t in &pod.info.required_anti_affinity {
        if let Some(v) = node.label(&t.topology_key) {
            if state.anti.get(&t.topology_key, v) > 0 {
                return Err(Failure::unschedulable(ANTI_AFFINITY_REASON));
            }
        }
    }
    if state.existing_anti.node_hits(node) {
        return Err(Failure::unschedulable(EXISTING_ANTI_AFFINITY_REASON));
    }
    Ok(())
}

/// Preferred-term scores per topology pair, computed once per pod over every node.
#[derive(Debug, Default)]
pub struct PreScoreState {
    topo: TopoCounts,
    active: bool,
}

impl PreScoreState {
    pub fn compute(pod: &PodCtx, snap: &Snapshot) -> PreScoreState {
        let me = &pod.info;
        let has_own = !me.preferred_affinity.is_empty() || !me.preferred_anti_affinity.is_empty();
        let ns = &snap.namespace_labels;
        let mut topo = TopoCounts::default();
        let mut active = false;
        let cands = if has_own {
            candidate_nodes(
                snap,
                me.preferred_affinity
                    .iter()
                    .chain(me.preferred_anti_affinity.iter())
                    .map(|(_, t)| t),
            )
        } else {
            Some(Set::default())
        };
        // Without preferred terms of its own, only nodes with pods whose terms score count.
        let nodes: Box<dyn Iterator<Item = &NodeInfo>> = if has_own {
            Box::new(snap.nodes().iter())
        } else {
            Box::new(snap.nodes_with_scoring_affinity())
        };
        for node in nodes {
            if node.node.is_none() {
                continue;
            }
            let own_here = has_own && cands.as_ref().is_none_or(|c| c.contains(&node.slot()));
            if !own_here && node.pods_with_scoring_affinity == 0 {
                continue;
            }
            for p in &node.pods {
                if !own_here && !p.has_scoring_affinity() {
                    continue;
                }
                active = true;
                let mut add = |key: &str, w: i64| {
                    if let Some(v) = node.label(key) {
                        topo.add(key, v, w);
                    }
                };
                if own_here {
                    for (w, t) in &me.preferred_affinity {
                        if t.matches(p, ns) {
                            add(&t.topology_key, *w);
                        }
                    }
                    for (w, t) in &me.preferred_anti_affinity {
                        if t.matches(p, ns) {
                            add(&t.topology_key, -*w);
                        }
                    }
                }
                for t in &p.required_affinity {
                    if t.matches(me, ns) {
                        add(&t.topology_key, HARD_POD_AFFINITY_WEIGHT);
                    }
                }
                for (w, t) in &p.preferred_affinity {
                    if t.matches(me, ns) {
                        add(&t.topology_key, *w);
                    }
                }
                for (w, t) in &p.preferred_anti_affinity {
                    if t.matches(me, ns) {
                        add(&t.topology_key, -*w);
                    }
                }
            }
        }
        // With preferred terms of its own the pod is scored even if nothing matched.
        active |= has_own;
        PreScoreState { topo, active }
    }

    pub fn active(&self) -> bool {
        self.active
    }

    pub fn score(&self, node: &NodeInfo) -> i64 {
        self.topo.node_sum(node)
    }
}

/// Min-max scaling to 0..=100 (all equal: 0).
pub fn normalize(scores: &mut [i64]) {
    let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else {
        return;
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            MAX_NODE_SCORE * (*s - min) / diff
        } else {
            0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use k8s_openapi::api::core::v1::{
        Affinity, Pod, PodAffinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use std::sync::Arc;

    fn term(app: &str, key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("app".to_string(), app.to_string())])),
                match_expressions: None,
            }),
            topology_key: key.into(),
            ..Default::default()
        }
    }

    fn with_affinity(
        mut p: Pod,
        aff: Option<PodAffinityTerm>,
        anti: Option<PodAffinityTerm>,
    ) -> Pod {
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_affinity: aff.map(|t| PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![t]),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            pod_anti_affinity: anti.map(|t| PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![t]),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        });
        p
    }

    fn zoned(name: &str, zone: &str) -> k8s_openapi::api::core::v1::Node {
        label(
            node(name, "4", "8Gi", "110"),
            "topology.kubernetes.io/zone",
            zone,
        )
    }

    fn run(s: &Snapshot, p: Pod) -> Vec<Result<(), String>> {
        let ctx = PodCtx::new(Arc::new(p));
        let st = PreFilterState::compute(&ctx, s);
        ["a1", "a2", "b1"]
            .iter()
            .map(|n| {
                filter(&st, &ctx, &s.namespace_labels, s.node(n).unwrap())
                    .map_err(|f| f.reasons[0].to_string())
            })
            .collect()
    }

    #[test]
    fn required_affinity_by_zone() {
        let s = snapshot(
            vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")],
            vec![on(with_labels(pod("db", "", ""), &[("app", "db")]), "a1")],
        );
        let p = with_affinity(
            pod("web", "", ""),
            Some(term("db", "topology.kubernetes.io/zone")),
            None,
        );
        let r = run(&s, p);
        assert_eq!(r[0], Ok(()));
        assert_eq!(r[1], Ok(()));
        assert_eq!(r[2], Err(AFFINITY_REASON.to_string()));
    }

    #[test]
    fn first_pod_of_self_affine_group_goes_anywhere() {
        let s = snapshot(
            vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")],
            vec![],
        );
        let p = with_affinity(
            with_labels(pod("web", "", ""), &[("app", "web")]),
            Some(term("web", "topology.kubernetes.io/zone")),
            None,
        );
        assert!(run(&s, p).iter().all(Result::is_ok));
    }

    #[test]
    fn anti_affinity_both_ways() {
        let existing = with_affinity(
            with_labels(pod("x", "", ""), &[("app", "x")]),
            None,
            Some(term("web", "kubernetes.io/hostname")),
        );
        let s = snapshot(
            vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")],
            vec![
                on(with_labels(pod("web-0", "", ""), &[("app", "web")]), "a1"),
                on(existing, "b1"),
            ],
        );
        let p = with_affinity(
            with_labels(pod("web-1", "", ""), &[("app", "web")]),
            None,
            Some(term("web", "kubernetes.io/hostname")),
        );
        let r = run(&s, p);
        assert_eq!(r[0], Err(ANTI_AFFINITY_REASON.to_string()));
        assert_eq!(r[1], Ok(()));
        assert_eq!(r[2], Err(EXISTING_ANTI_AFFINITY_REASON.to_string()));
    }

    #[test]
    fn hostname_plan_gives_the_general_verdicts() {
        // Registered counts (as the scheduler's attempts have them) take the hostname plan;
        // its verdicts are the general path's, also for a node whose hostname label is not
        // its name and one without the label.
        let existing = with_affinity(
            with_labels(pod("x", "", ""), &[("app", "x")]),
            None,
            Some(term("web", "kubernetes.io/hostname")),
        );
        let mut renamed = zoned("r1", "b");
        renamed
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("kubernetes.io/hostname".into(), "other-host".into());
        let mut bare = zoned("n1", "b");
        bare.metadata
            .labels
            .as_mut()
            .unwrap()
            .remove("kubernetes.io/hostname");
        let mut s = snapshot(
            vec![
                zoned("a1", "a"),
                zoned("a2", "a"),
                zoned("b1", "b"),
                renamed,
                bare,
            ],
            vec![
                on(with_labels(pod("web-0", "", ""), &[("app", "web")]), "a1"),
                on(with_labels(pod("web-r", "", ""), &[("app", "web")]), "r1"),
                on(with_labels(pod("web-n", "", ""), &[("app", "web")]), "n1"),
                on(existing, "b1"),
            ],
        );
        assert_eq!(
            s.node("r1").unwrap().label("kubernetes.io/hostname"),
            Some("other-host")
        );
        let p = with_affinity(
            with_labels(pod("web-1", "", ""), &[("app", "web")]),
            None,
            Some(term("web", "kubernetes.io/hostname")),
        );
        let ctx = PodCtx::new(Arc::new(p));
        register(&ctx, &mut s);
        let st = PreFilterState::compute(&ctx, &s);
        assert!(st.by_hostname.is_some());
        let mut general = st.clone();
        general.by_hostname = None;
        let verdict = |st: &PreFilterState, n: &str| {
            filter(st, &ctx, &s.namespace_labels, s.node(n).unwrap())
                .map_err(|f| f.reasons[0].to_string())
        };
        let names = ["a1", "a2", "b1", "r1", "n1"];
        let planned: Vec<_> = names.iter().map(|n| verdict(&st, n)).collect();
        let expected: Vec<_> = names.iter().map(|n| verdict(&general, n)).collect();
        assert_eq!(planned, expected);
        assert_eq!(
            planned,
            vec![
                Err(ANTI_AFFINITY_REASON.to_string()),
                Ok(()),
                Err(EXISTING_ANTI_AFFINITY_REASON.to_string()),
                Err(ANTI_AFFINITY_REASON.to_string()),
                Ok(()),
            ]
        );
        // A pod with required affinity, or a zone term, takes the general path.
        let zone_anti = with_affinity(
            with_labels(pod("web-2", "", ""), &[("app", "web")]),
            None,
            Some(term("web", "topology.kubernetes.io/zone")),
        );
        let ctx = PodCtx::new(Arc::new(zone_anti));
        register(&ctx, &mut s);
        assert!(PreFilterState::compute(&ctx, &s).by_hostname.is_none());
    }

    #[test]
    fn empty_nodes_pass_unless_they_share_a_hostname() {
        let p = || {
            with_affinity(
                with_labels(pod("web-1", "", ""), &[("app", "web")]),
                None,
                Some(term("web", "kubernetes.io/hostname")),
            )
        };
        let mut s = snapshot(
            vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")],
            vec![on(
                with_labels(pod("web-0", "", ""), &[("app", "web")]),
                "a1",
            )],
        );
        let verdict = |s: &mut Snapshot, n: &str| {
            let ctx = PodCtx::new(Arc::new(p()));
            register(&ctx, s);
            let st = PreFilterState::compute(&ctx, s);
            let plan = st.by_hostname.as_ref().expect("hostname plan");
            (
                plan.unique,
                filter(&st, &ctx, &s.namespace_labels, s.node(n).unwrap()).is_ok(),
            )
        };
        assert!(s.hostnames_unique());
        assert_eq!(verdict(&mut s, "a2"), (true, true));
        assert_eq!(verdict(&mut s, "a1"), (true, false));
        // An empty node labelled with a1's hostname is in a1's domain.
        let mut twin = zoned("twin", "b");
        twin.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("kubernetes.io/hostname".into(), "a1".into());
        s.upsert_node(Arc::new(twin));
        assert!(!s.hostnames_unique());
        assert_eq!(verdict(&mut s, "twin"), (false, false));
        s.remove_node("twin");
        assert!(s.hostnames_unique());
    }

    #[test]
    fn selectors_without_an_index_key_are_scanned() {
        let s = snapshot(
            vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")],
            vec![on(
                with_labels(pod("api-0", "", ""), &[("app", "api")]),
                "a2",
            )],
        );
        let mut t = term("x", "topology.kubernetes.io/zone");
        t.label_selector = Some(LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                    key: "app".into(),
                    operator: "In".into(),
                    values: Some(vec!["web".into(), "api".into()]),
                },
            ]),
        });
        let p = with_affinity(pod("web-1", "", ""), None, Some(t.clone()));
        let r = run(&s, p);
        assert_eq!(r[0], Err(ANTI_AFFINITY_REASON.to_string()));
        assert_eq!(r[1], Err(ANTI_AFFINITY_REASON.to_string()));
        assert_eq!(r[2], Ok(()));
        let p = with_affinity(pod("web-2", "", ""), Some(t), None);
        let r = run(&s, p);
        assert_eq!(r, vec![Ok(()), Ok(()), Err(AFFINITY_REASON.to_string())]);
    }

    #[test]
    fn preferred_affinity_scores_the_zone() {
        let s = snapshot(
            vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")],
            vec![on(with_labels(pod("db", "", ""), &[("app", "db")]), "a1")],
        );
        let mut p = pod("web", "", "");
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: None,
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 10,
                        pod_affinity_term: term("db", "topology.kubernetes.io/zone"),
                    },
                ]),
            }),
            ..Default::default()
        });
        let ctx = PodCtx::new(Arc::new(p));
        let st = PreScoreState::compute(&ctx, &s);
        let mut sc: Vec<i64> = ["a1", "a2", "b1"]
            .iter()
            .map(|n| st.score(s.node(n).unwrap()))
            .collect();
        assert_eq!(sc, vec![10, 10, 0]);
        normalize(&mut sc);
        assert_eq!(sc, vec![100, 100, 0]);
    }
}
