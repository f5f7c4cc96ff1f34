//! One scheduling attempt, as upstream's `schedulePod`: pre-filter state, filters over the
//! nodes (starting where the previous attempt stopped, and stopping once enough feasible nodes
//! are found: `percentageOfNodesToScore`, adaptive by default), scores weighted as the default
//! profile weighs them, and the best node with a deterministic tie-break (the first in
//! evaluation order). When nothing fits, a [`FitError`] counts the reasons per node in
//! upstream's words.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::plugins::node_resources_fit::ScoringStrategy;
use crate::plugins::{
    balanced_allocation, inter_pod_affinity as ipa, node_affinity, node_name, node_ports,
    node_resources_fit as fit, node_unschedulable, pod_topology_spread as pts, taint_toleration,
    Failure, FilterResult, PodCtx, MAX_NODE_SCORE,
};
use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

/// Upstream's `minFeasibleNodesToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream's `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// Score plugin weights of upstream's default profile.
pub const WEIGHT_FIT: i64 = 1;
pub const WEIGHT_BALANCED: i64 = 1;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_TAINT_TOLERATION: i64 = 3;
pub const WEIGHT_INTER_POD_AFFINITY: i64 = 2;
pub const WEIGHT_TOPOLOGY_SPREAD: i64 = 2;

/// Scheduler settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Config {
    pub scoring: ScoringStrategy,
    /// 0: adaptive (50% minus 1% per 125 nodes, at least 5%); 100: every node.
    pub percentage_of_nodes_to_score: u32,
}

/// How many feasible nodes to find before scoring (`numFeasibleNodesToFind`).
pub fn num_feasible_nodes_to_find(percentage: u32, all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return all;
    }
    let pct = if percentage == 0 {
        (50usize.saturating_sub(all / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE)
    } else {
        percentage as usize
    };
    (all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why a pod fits no node, formatted as upstream's `FitError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// Each failing node and why.
    pub statuses: Vec<(String, Failure)>,
    /// Appended after the filter reasons (the preemption outcome).
    pub post_filter_msg: String,
}

impl FitError {
    /// The reasons counted and sorted as upstream does (`"<count> <reason>"`, sorted as
    /// strings).
    pub fn histogram(&self) -> Vec<String> {
        histogram(self.statuses.iter().map(|(_, f)| f))
    }
}

/// Counts reasons over failures and sorts `"<count> <reason>"` strings bytewise.
pub(crate) fn histogram<'a>(fails: impl Iterator<Item = &'a Failure>) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in fails {
        for r in &f.reasons {
            *counts.entry(r.as_ref()).or_default() += 1;
        }
    }
    let mut v: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    v.sort();
    v
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.num_all_nodes == 0 {
            return f.write_str("no nodes available to schedule pods");
        }
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        let h = self.histogram();
        if !h.is_empty() {
            write!(f, " {}.", h.join(", "))?;
        }
        if !self.post_filter_msg.is_empty() {
            write!(f, " {}", self.post_filter_msg)?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

/// Pre-filter state of one attempt.
#[derive(Debug, Clone)]
pub struct CycleState {
    pub constraints: pts::Constraints,
    pub ipa: ipa::PreFilterState,
    pub pts: pts::PreFilterState,
}

impl CycleState {
    pub fn compute(pod: &PodCtx, snap: &Snapshot) -> CycleState {
        CycleState::with_constraints(pod, pts::Constraints::of(pod, snap), snap)
    }

    /// Asks the snapshot for the counts by domain the pod's terms and constraints need, then
    /// computes the state from them.
    pub fn prepare(pod: &PodCtx, snap: &mut Snapshot) -> CycleState {
        let constraints = pts::Constraints::of(pod, snap);
        ipa::register(pod, snap);
        pts::register(pod, &constraints, snap);
        CycleState::with_constraints(pod, constraints, snap)
    }

    fn with_constraints(
        pod: &PodCtx,
        constraints: pts::Constraints,
        snap: &Snapshot,
    ) -> CycleState {
        CycleState {
            ipa: ipa::PreFilterState::compute(pod, snap),
            pts: pts::PreFilterState::compute(pod, &constraints, snap),
            constraints,
        }
    }

    /// Adjusts the state for a pod added to (`delta` 1) or removed from (-1) `node`.
    pub fn update(
        &mut self,
        pod: &PodCtx,
        p: &PodInfo,
        node: &NodeInfo,
        snap: &Snapshot,
        delta: i64,
    ) {
        self.ipa.update(pod, p, node, &snap.namespace_labels, delta);
        self.pts.update(pod, p, node, delta);
    }
}

/// Every filter plugin in the default profile's order; the first failure is the node's
/// status.
pub fn run_filters(
    pod: &PodCtx,
    state: &CycleState,
    snap: &Snapshot,
    node: &NodeInfo,
) -> FilterResult {
    node_unschedulable::filter(pod, node)?;
    node_name::filter(pod, node)?;
    taint_toleration::filter(pod, node)?;
    node_affinity::filter(pod, node)?;
    node_ports::filter(pod, node)?;
    fit::filter(pod, node)?;
    pts::filter(&state.pts, pod, node)?;
    ipa::filter(&state.ipa, pod, &snap.namespace_labels, node)?;
    Ok(())
}

/// Whether the node certainly fails the pod, from the verdicts its pre-filter state took per
/// zone (zone spreading): an index read instead of every filter. Which filter fails first
/// (the reason shown) is left to [`run_filters`], run for such nodes only when the reasons
/// are needed (no node fits).
pub fn quick_reject(state: &CycleState, node: &NodeInfo) -> bool {
    state.pts.rejects_by_zone(node)
}

/// Filters with the node's nominated pods of equal or higher priority counted too (then
/// without them, as upstream's `RunFilterPluginsWithNominatedPods`).
pub fn run_filters_with_nominated(
    pod: &PodCtx,
    state: &CycleState,
    snap: &Snapshot,
    node: &NodeInfo,
) -> FilterResult {
    // Nominations are rare (a preemption in progress): the common case looks no node up.
    let counts = |p: &&Arc<PodInfo>| p.priority >= pod.info.priority && p.key != pod.info.key;
    let on_node = if snap.any_nominated() {
        snap.nominated_on(&node.name)
    } else {
        &[]
    };
    if !on_node.iter().any(|p| counts(&p)) {
        return run_filters(pod, state, snap, node);
    }
    let mut with = node.clone();
    let mut st = state.clone();
    for p in on_node.iter().filter(counts) {
        with.add_pod(p.clone());
        st.update(pod, p, &with, snap, 1);
    }
    run_filters(pod, &st, snap, &with)?;
    run_filters(pod, state, snap, node)
}

/// A failed attempt: why, and the pre-filter state preemption starts from.
#[derive(Debug)]
pub struct Failed {
    pub fit: FitError,
    pub state: CycleState,
}

/// A successful attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleResult {
    pub node: String,
    pub evaluated: usize,
    pub feasible: usize,
}

/// The scheduler's decision core over a snapshot.
#[derive(Debug, Default)]
pub struct Scheduler {
    pub snapshot: Snapshot,
    pub config: Config,
    next_start: usize,
}

impl Scheduler {
    pub fn new(config: Config) -> Scheduler {
        Scheduler {
            snapshot: Snapshot::new(),
            config,
            next_start: 0,
        }
    }

    /// Picks a node for the pod (without placing it; see [`Scheduler::assume`]).
    pub fn schedule(&mut self, pod: Arc<Pod>) -> Result<ScheduleResult, FitError> {
        let ctx = PodCtx::new(pod);
        self.schedule_ctx(&ctx).map_err(|f| f.fit)
    }

    /// As [`Scheduler::schedule`], returning the cycle state with a failure (for preemption).
    pub fn schedule_ctx(&mut self, ctx: &PodCtx) -> Result<ScheduleResult, Box<Failed>> {
        let state = CycleState::prepare(ctx, &mut self.snapshot);
        let snap = &self.snapshot;
        let all = snap.num_nodes();
        if all == 0 {
            return Err(Box::new(Failed {
                fit: FitError {
                    num_all_nodes: 0,
                    statuses: Vec::new(),
                    post_filter_msg: String::new(),
                },
                state,
            }));
        }
        // A node nominated by an earlier preemption is tried first.
        let nominated = ctx
            .info
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty());
        if let Some(ni) = nominated.and_then(|n| snap.node(n)) {
            if ni.node.is_some() && run_filters_with_nominated(ctx, &state, snap, ni).is_ok() {
                return Ok(ScheduleResult {
                    node: ni.name.clone(),
                    evaluated: 1,
                    feasible: 1,
                });
            }
        }
        let want = num_feasible_nodes_to_find(self.config.percentage_of_nodes_to_score, all);
        let nodes = snap.nodes();
        let slots = nodes.len();
        let start = if slots == 0 {
            0
        } else {
            self.next_start % slots
        };
        let mut feasible: Vec<usize> = Vec::with_capacity(want.min(slots));
        // Failing nodes, with why (`None`: rejected by a domain verdict, reason not yet known).
        let mut statuses: Vec<(usize, Option<Failure>)> = Vec::new();
        let mut processed = 0;
        let mut evaluated = 0;
        // Nominations are rare (a preemption in progress): without any, no node is looked up
        // for them (the check is made once, not per node).
        let any_nominated = snap.any_nominated();
        while processed < slots && feasible.len() < want {
            let ix = if start + processed < slots {
                start + processed
            } else {
                start + processed - slots
            };
            processed += 1;
            let node = &nodes[ix];
            if node.node.is_none() {
                continue;
            }
            evaluated += 1;
            // Failing without the nominated pods fails with them too.
            if quick_reject(&state, node) {
                statuses.push((ix, None));
                continue;
            }
            let status = if any_nominated {
                run_filters_with_nominated(ctx, &state, snap, node)
            } else {
                run_filters(ctx, &state, snap, node)
            };
            match status {
                Ok(()) => feasible.push(ix),
                // Named only if the pod fits nowhere.
                Err(f) => statuses.push((ix, Some(f))),
            }
        }
        self.next_start = if slots == 0 {
            0
        } else {
            (start + processed) % slots
        };
        if feasible.is_empty() {
            let statuses = statuses
                .into_iter()
                .map(|(ix, f)| {
                    let f = f.unwrap_or_else(|| {
                        run_filters_with_nominated(ctx, &state, snap, &nodes[ix])
                            .expect_err("a node rejected by a domain verdict fails its filters")
                    });
                    (nodes[ix].name.clone(), f)
                })
                .collect();
            return Err(Box::new(Failed {
                fit: FitError {
                    num_all_nodes: all,
                    statuses,
                    post_filter_msg: String::new(),
                },
                state,
            }));
        }
        let best = if feasible.len() == 1 {
            feasible[0]
        } else {
            let scores = self.score(ctx, &state, &feasible);
            let mut best = 0;
            for j in 1..feasible.len() {
                if scores[j] > scores[best] {
                    best = j;
                }
            }
            feasible[best]
        };
        Ok(ScheduleResult {
            node: self.snapshot.nodes()[best].name.clone(),
            evaluated,
            feasible: feasible.len(),
        })
    }

    /// Weighted total scores of the feasible nodes (indexes into the snapshot's nodes).
    pub fn score(&self, ctx: &PodCtx, state: &CycleState, feasible: &[usize]) -> Vec<i64> {
        let snap = &self.snapshot;
        let nodes = snap.nodes();
        let n = feasible.len();
        // One pass adds the two resource scores (already 0..=100) and TaintToleration's
        // share as if no node had an untolerated `PreferNoSchedule` taint: normalized, a
        // node's share is `MAX - MAX * count / max_count`, or MAX everywhere when every count
        // is 0 (no such taints, the common case). The pass finds the largest count; only when
        // it is positive does a second pass take each node's part back off.
        let mut total = Vec::with_capacity(n);
        let mut max_untolerated = 0;
        for &ix in feasible {
            let node = &nodes[ix];
            if !node.taints.is_empty() {
                max_untolerated = max_untolerated.max(taint_toleration::score(ctx, node));
            }
            total.push(
                fit::score(self.config.scoring, ctx, node) * WEIGHT_FIT
                    + balanced_allocation::score(ctx, node) * WEIGHT_BALANCED
                    + MAX_NODE_SCORE * WEIGHT_TAINT_TOLERATION,
            );
        }
        if max_untolerated > 0 {
            for (t, &ix) in total.iter_mut().zip(feasible) {
                let count = taint_toleration::score(ctx, &nodes[ix]);
                *t -= MAX_NODE_SCORE * count / max_untolerated * WEIGHT_TAINT_TOLERATION;
            }
        }
        let mut buf: Vec<i64> = Vec::new();
        if !ctx.preferred_node_affinity.is_empty() {
            buf.extend(
                feasible
                    .iter()
                    .map(|&ix| node_affinity::score(ctx, &nodes[ix])),
            );
            node_affinity::normalize(&mut buf);
            add_weighted(&mut total, &buf, WEIGHT_NODE_AFFINITY);
        }
        if let Some(st) = pts::PreScoreState::compute(ctx, &state.constraints, snap, feasible) {
            st.score_all(snap, feasible, &mut buf);
            st.add_normalized(&buf, &mut total, WEIGHT_TOPOLOGY_SPREAD);
        }
        let ipa_state = ipa::PreScoreState::compute(ctx, snap);
        if ipa_state.active() {
            buf.clear();
            buf.extend(feasible.iter().map(|&ix| ipa_state.score(&nodes[ix])));
            ipa::normalize(&mut buf);
            add_weighted(&mut total, &buf, WEIGHT_INTER_POD_AFFINITY);
        }
        total
    }

    /// Places the pod on the node in the snapshot (before the binding is confirmed), so the
    /// next attempt sees it.
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        let mut p = pod.clone();
        p.spec.get_or_insert_with(Default::default).node_name = Some(node.to_string());
        self.assume_info(Arc::new(PodInfo::new(Arc::new(p))), node);
    }

    /// [`Scheduler::assume`] for a pod already described for its scheduling cycle (its
    /// [`PodCtx`]'s info): nothing is copied or derived again. The info's pod keeps the spec
    /// it was scheduled with (no nodeName): where a pod is placed is the snapshot's to say.
    pub fn assume_info(&mut self, info: Arc<PodInfo>, node: &str) {
        self.snapshot.clear_nomination(&info.key);
        self.snapshot.place(info, node);
    }
}

/// Adds one plugin's normalized scores, times its weight, to the totals.
fn add_weighted(total: &mut [i64], scores: &[i64], weight: i64) {
    for (t, s) in total.iter_mut().zip(scores) {
        *t += s * weight;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use std::borrow::Cow;

    /// `p` controlled by ReplicaSet `web` (uid `rs-1`).
    fn owned(mut p: k8s_openapi::api::core::v1::Pod) -> k8s_openapi::api::core::v1::Pod {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
        p.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web".into(),
            uid: "rs-1".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        p
    }

    #[test]
    fn feasible_nodes_to_find() {
        assert_eq!(num_feasible_nodes_to_find(0, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(0, 6000), 300);
        assert_eq!(num_feasible_nodes_to_find(100, 6000), 6000);
        assert_eq!(num_feasible_nodes_to_find(0, 150), 100);
    }

    #[test]
    fn fit_error_message_is_upstream_shaped() {
        let e = FitError {
            num_all_nodes: 3,
            statuses: vec![
                ("a".into(), Failure::unschedulable("Insufficient cpu")),
                ("b".into(), Failure::unresolvable(Cow::Owned("node(s) had untolerated taint {dedicated: gpu}".into()))),
                ("c".into(), Failure::unschedulable("Insufficient cpu")),
            ],
            post_filter_msg: "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.".into(),
        };
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn picks_the_least_allocated_node_and_assumes() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![node("n1", "4", "8Gi", "110"), node("n2", "4", "8Gi", "110")],
            vec![on(pod("busy", "3", "6Gi"), "n1")],
        );
        let p = Arc::new(pod("p", "500m", "1Gi"));
        assert_eq!(s.schedule(p.clone()).unwrap().node, "n2");
        s.assume(&p, "n2");
        assert_eq!(s.snapshot.node("n2").unwrap().requested.milli_cpu, 500);
        let e = s.schedule(Arc::new(pod("big", "8", ""))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "0/2 nodes are available: 2 Insufficient cpu."
        );
    }

    #[test]
    fn mixed_reasons_are_counted_per_node() {
        let mut s = Scheduler::new(Config::default());
        let mut cordoned = node("n3", "4", "8Gi", "110");
        cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
        s.snapshot = snapshot(
            vec![
                taint(
                    node("n1", "4", "8Gi", "110"),
                    "dedicated",
                    "gpu",
                    "NoSchedule",
                ),
                node("n2", "1", "8Gi", "110"),
                cordoned,
            ],
            vec![],
        );
        let e = s.schedule(Arc::new(pod("p", "2", ""))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable."
        );
    }

    #[test]
    fn controller_pods_spread_by_default() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![
                node("big", "64", "64Gi", "110"),
                node("small", "4", "8Gi", "110"),
            ],
            vec![
                on(owned(pod("web-0", "100m", "")), "big"),
                on(owned(pod("web-1", "100m", "")), "big"),
            ],
        );
        // A bare pod goes where most room is left...
        assert_eq!(
            s.schedule(Arc::new(pod("bare", "100m", ""))).unwrap().node,
            "big"
        );
        // ...but a replica goes where its siblings are not.
        let r = s
            .schedule(Arc::new(owned(pod("web-2", "100m", ""))))
            .unwrap();
        assert_eq!(r.node, "small");
    }

    #[test]
    fn service_pods_spread_by_default() {
        let web = |name: &str| with_labels(pod(name, "100m", ""), &[("app", "web")]);
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![
                node("big", "64", "64Gi", "110"),
                node("small", "4", "8Gi", "110"),
            ],
            vec![on(web("web-0"), "big"), on(web("web-1"), "big")],
        );
        // Without a Service, a bare pod goes where most room is left...
        assert_eq!(s.schedule(Arc::new(web("web-2"))).unwrap().node, "big");
        // ...with one selecting it, away from the pods the Service selects.
        s.snapshot.upsert_service(
            "default",
            "web",
            BTreeMap::from([("app".to_string(), "web".to_string())]),
        );
        assert_eq!(s.schedule(Arc::new(web("web-2"))).unwrap().node, "small");
        // A pod the Service does not select is not spread by it.
        let api = with_labels(pod("api", "100m", ""), &[("app", "api")]);
        assert_eq!(s.schedule(Arc::new(api)).unwrap().node, "big");
    }

    #[test]
    fn zone_verdicts_skip_nodes_but_keep_the_first_failing_reason() {
        use k8s_openapi::api::core::v1::TopologySpreadConstraint;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
        let zoned = |n: &str, cpu: &str, z: &str| {
            label(node(n, cpu, "8Gi", "110"), "topology.kubernetes.io/zone", z)
        };
        let web = |name: &str, cpu: &str| with_labels(pod(name, cpu, ""), &[("app", "web")]);
        let spread = |mut p: k8s_openapi::api::core::v1::Pod| {
            p.spec.as_mut().unwrap().topology_spread_constraints =
                Some(vec![TopologySpreadConstraint {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                        match_expressions: None,
                    }),
                    max_skew: 1,
                    topology_key: "topology.kubernetes.io/zone".into(),
                    when_unsatisfiable: "DoNotSchedule".into(),
                    ..Default::default()
                }]);
            Arc::new(p)
        };
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![
                zoned("a1", "1", "a"),
                zoned("a2", "8", "a"),
                zoned("b1", "1", "b"),
            ],
            vec![on(web("w0", ""), "a1"), on(web("w1", ""), "a2")],
        );
        // Zone a is over the skew: a1 fails NodeResourcesFit first (its reason), a2 only the
        // spreading, b1 only the cpu.
        let e = s.schedule(spread(web("big", "2"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints, 2 Insufficient cpu."
        );
        let mut reasons: Vec<(String, String)> = e
            .statuses
            .iter()
            .map(|(n, f)| (n.clone(), f.reasons[0].to_string()))
            .collect();
        reasons.sort();
        assert_eq!(reasons[0], ("a1".into(), "Insufficient cpu".into()));
        // A pod that fits goes to zone b, the zone a nodes skipped.
        assert_eq!(s.schedule(spread(web("small", "100m"))).unwrap().node, "b1");
    }

    /// The scores as plainly computed before the fused passes: every plugin over every node,
    /// normalized, then weighted and added, and the spreading score one pass per constraint.
    fn reference_scores(
        s: &Scheduler,
        ctx: &PodCtx,
        state: &CycleState,
        feasible: &[usize],
    ) -> Vec<i64> {
        let snap = &s.snapshot;
        let nodes = snap.nodes();
        let mut total = vec![0i64; feasible.len()];
        let add = |total: &mut Vec<i64>, scores: &[i64], w: i64| {
            for (t, s) in total.iter_mut().zip(scores) {
                *t += s * w;
            }
        };
        let mut buf: Vec<i64> = feasible
            .iter()
            .map(|&ix| taint_toleration::score(ctx, &nodes[ix]))
            .collect();
        taint_toleration::normalize(&mut buf);
        add(&mut total, &buf, WEIGHT_TAINT_TOLERATION);
        if !ctx.preferred_node_affinity.is_empty() {
            let mut buf: Vec<i64> = feasible
                .iter()
                .map(|&ix| node_affinity::score(ctx, &nodes[ix]))
                .collect();
            node_affinity::normalize(&mut buf);
            add(&mut total, &buf, WEIGHT_NODE_AFFINITY);
        }
        if let Some(st) = pts::PreScoreState::compute(ctx, &state.constraints, snap, feasible) {
            let mut buf = vec![0i64; feasible.len()];
            st.score_each_constraint(snap, feasible, &mut buf);
            let mut fast = vec![0i64; feasible.len()];
            st.score_all(snap, feasible, &mut fast);
            assert_eq!(fast, buf, "raw spreading scores");
            st.normalize(&mut buf);
            add(&mut total, &buf, WEIGHT_TOPOLOGY_SPREAD);
        }
        let ipa_state = ipa::PreScoreState::compute(ctx, snap);
        if ipa_state.active() {
            let mut buf: Vec<i64> = feasible
                .iter()
                .map(|&ix| ipa_state.score(&nodes[ix]))
                .collect();
            ipa::normalize(&mut buf);
            add(&mut total, &buf, WEIGHT_INTER_POD_AFFINITY);
        }
        for (t, &ix) in total.iter_mut().zip(feasible) {
            *t += fit::score(s.config.scoring, ctx, &nodes[ix])
                + balanced_allocation::score(ctx, &nodes[ix]);
        }
        total
    }

    /// Pseudo-random snapshots (taints of every effect, zones on some nodes or none, nodes
    /// without a hostname label, crowded and terminating pods) and pods of every scoring
    /// shape (system-default spreading, explicit soft and hard spreading, tolerations,
    /// preferred node and pod affinity): the fused scores equal the plain ones node for node,
    /// so every decision is the same.
    #[test]
    fn fused_scores_match_the_plain_computation() {
        use k8s_openapi::api::core::v1::{
            Affinity, NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm, PodAffinity,
            PodAffinityTerm, PreferredSchedulingTerm, Toleration, TopologySpreadConstraint,
            WeightedPodAffinityTerm,
        };
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let app = |v: &str| LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), v.to_string())])),
            match_expressions: None,
        };
        let soft = |key: &str, skew: i32, when: &str| TopologySpreadConstraint {
            label_selector: Some(app("web")),
            max_skew: skew,
            topology_key: key.into(),
            when_unsatisfiable: when.into(),
            ..Default::default()
        };
        let mut checked = 0;
        for round in 0..60 {
            let zones = rnd(3);
            let n_nodes = 5 + rnd(25) as usize;
            let mut nodes = Vec::new();
            for i in 0..n_nodes {
                let cpu = ["2", "4", "8", "16"][rnd(4) as usize];
                let mem = ["4Gi", "8Gi", "32Gi"][rnd(3) as usize];
                let mut n = node(&format!("n{i}"), cpu, mem, "110");
                if zones > 0 && rnd(5) > 0 {
                    n = label(n, pts::ZONE, &format!("z{}", rnd(zones + 1)));
                }
                if rnd(3) == 0 {
                    n = label(n, "disk", "ssd");
                }
                if round % 2 == 1 && rnd(8) == 0 {
                    n.metadata.labels.as_mut().unwrap().remove(pts::HOSTNAME);
                }
                for key in ["a", "b"] {
                    if round % 3 != 0 && rnd(4) == 0 {
                        n = taint(n, key, "", "PreferNoSchedule");
                    }
                }
                if rnd(6) == 0 {
                    n = taint(n, "dedicated", "x", "NoSchedule");
                }
                nodes.push(n);
            }
            let mut pods = Vec::new();
            for k in 0..rnd(60) {
                let target = if rnd(3) == 0 { 0 } else { rnd(n_nodes as u64) };
                let labels = [("app", ["web", "api"][rnd(2) as usize])];
                let mut p = with_labels(pod(&format!("p{k}"), "10m", "16Mi"), &labels);
                if labels[0].1 == "web" && rnd(4) > 0 {
                    p = owned(p);
                }
                if rnd(10) == 0 {
                    p.metadata.deletion_timestamp = Some(Time(Default::default()));
                }
                pods.push(on(p, &format!("n{target}")));
            }
            if round % 4 == 0 {
                // More siblings on one node than the spreading score's table of counts holds.
                for k in 0..20 {
                    let p = owned(with_labels(
                        pod(&format!("c{k}"), "", ""),
                        &[("app", "web")],
                    ));
                    pods.push(on(p, "n1"));
                }
            }
            let mut s = Scheduler::new(Config::default());
            s.snapshot = snapshot(nodes, pods);
            for shape in 0..8 {
                let mut p = owned(with_labels(
                    pod(&format!("new{shape}"), "100m", "64Mi"),
                    &[("app", "web")],
                ));
                let spec = p.spec.as_mut().unwrap();
                if shape == 1 || shape == 7 {
                    spec.tolerations = Some(vec![Toleration {
                        key: Some("a".into()),
                        operator: Some("Exists".into()),
                        effect: Some("PreferNoSchedule".into()),
                        ..Default::default()
                    }]);
                }
                if shape == 2 || shape == 7 {
                    spec.affinity = Some(Affinity {
                        node_affinity: Some(NodeAffinity {
                            preferred_during_scheduling_ignored_during_execution: Some(vec![
                                PreferredSchedulingTerm {
                                    weight: 30,
                                    preference: NodeSelectorTerm {
                                        match_expressions: Some(vec![NodeSelectorRequirement {
                                            key: "disk".into(),
                                            operator: "In".into(),
                                            values: Some(vec!["ssd".into()]),
                                        }]),
                                        match_fields: None,
                                    },
                                },
                            ]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
                match shape {
                    3 => {
                        spec.topology_spread_constraints =
                            Some(vec![soft(pts::HOSTNAME, 1, "ScheduleAnyway")])
                    }
                    4 => {
                        spec.topology_spread_constraints = Some(vec![
                            soft(pts::ZONE, 2, "ScheduleAnyway"),
                            soft(pts::HOSTNAME, 1, "ScheduleAnyway"),
                        ])
                    }
                    5 => {
                        spec.topology_spread_constraints = Some(vec![
                            soft(pts::HOSTNAME, 2, "ScheduleAnyway"),
                            soft(pts::ZONE, 3, "DoNotSchedule"),
                        ])
                    }
                    6 => {
                        spec.affinity = Some(Affinity {
                            pod_affinity: Some(PodAffinity {
                                preferred_during_scheduling_ignored_during_execution: Some(vec![
                                    WeightedPodAffinityTerm {
                                        weight: 50,
                                        pod_affinity_term: PodAffinityTerm {
                                            label_selector: Some(app("api")),
                                            topology_key: pts::HOSTNAME.into(),
                                            ..Default::default()
                                        },
                                    },
                                ]),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                    }
                    _ => {}
                }
                let ctx = PodCtx::new(Arc::new(p));
                let state = CycleState::prepare(&ctx, &mut s.snapshot);
                let snap = &s.snapshot;
                let feasible: Vec<usize> = (0..snap.nodes().len())
                    .filter(|&ix| {
                        let n = &snap.nodes()[ix];
                        n.node.is_some() && run_filters(&ctx, &state, snap, n).is_ok()
                    })
                    .collect();
                assert_eq!(
                    s.score(&ctx, &state, &feasible),
                    reference_scores(&s, &ctx, &state, &feasible),
                    "round {round}, shape {shape}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 480);
    }

    /// With 150 equal nodes a pod looks at 100 of them, starting where the previous search
    /// stopped and wrapping around the end, and the first node it looks at wins the tie.
    #[test]
    fn searches_start_where_the_last_stopped_and_wrap() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            (0..150)
                .map(|i| node(&format!("n{i}"), "4", "8Gi", "110"))
                .collect(),
            vec![],
        );
        let picks: Vec<(String, usize)> = (0..4)
            .map(|i| {
                let r = s
                    .schedule(Arc::new(pod(&format!("p{i}"), "100m", "")))
                    .unwrap();
                (r.node, r.evaluated)
            })
            .collect();
        assert_eq!(
            picks,
            [("n0", 100), ("n100", 100), ("n50", 100), ("n0", 100)]
                .map(|(n, e)| (n.to_string(), e))
        );
    }

    #[test]
    fn no_nodes() {
        let mut s = Scheduler::new(Config::default());
        let e = s.schedule(Arc::new(pod("p", "", ""))).unwrap_err();
        assert_eq!(e.to_string(), "no nodes available to schedule pods");
    }

    /// Timing on 5,000 nodes holding 50,000 pods; run with
    /// `cargo test --release -p skiff-scheduler --lib timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing_five_thousand_nodes() {
        use k8s_openapi::api::core::v1::{
            Affinity, PodAffinityTerm, PodAntiAffinity, TopologySpreadConstraint,
        };
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
        let mut nodes = Vec::new();
        for i in 0..5000 {
            let n = node(&format!("n{i}"), "64", "256Gi", "110");
            nodes.push(label(
                n,
                "topology.kubernetes.io/zone",
                &format!("z{}", i % 3),
            ));
        }
        let mut pods = Vec::new();
        for i in 0..50_000 {
            let p = with_labels(
                pod(&format!("e{i}"), "100m", "128Mi"),
                &[("app", &format!("a{}", i % 50))],
            );
            pods.push(on(p, &format!("n{}", i % 5000)));
        }
        let mut s = Scheduler::new(Config::default());
        let t = std::time::Instant::now();
        s.snapshot = snapshot(nodes, pods);
        println!(
            "snapshot of 5000 nodes / 50000 pods built in {:?}",
            t.elapsed()
        );
        let sel = || LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "new".to_string())])),
            match_expressions: None,
        };
        for variant in ["plain", "replicaset", "topology-spread", "anti-affinity"] {
            let mut times = Vec::new();
            for i in 0..1000 {
                let mut p = with_labels(
                    pod(&format!("{variant}-{i}"), "100m", "128Mi"),
                    &[("app", "new")],
                );
                if variant == "replicaset" {
                    p = owned(p);
                }
                let spec = p.spec.as_mut().unwrap();
                match variant {
                    "topology-spread" => {
                        spec.topology_spread_constraints = Some(vec![TopologySpreadConstraint {
                            label_selector: Some(sel()),
                            max_skew: 1,
                            topology_key: "topology.kubernetes.io/zone".into(),
                            when_unsatisfiable: "DoNotSchedule".into(),
                            ..Default::default()
                        }])
                    }
                    "anti-affinity" => {
                        spec.affinity = Some(Affinity {
                            pod_anti_affinity: Some(PodAntiAffinity {
                                required_during_scheduling_ignored_during_execution: Some(vec![
                                    PodAffinityTerm {
                                        label_selector: Some(sel()),
                                        topology_key: "kubernetes.io/hostname".into(),
                                        ..Default::default()
                                    },
                                ]),
                                preferred_during_scheduling_ignored_during_execution: None,
                            }),
                            ..Default::default()
                        })
                    }
                    _ => {}
                }
                let p = Arc::new(p);
                if i == 0 {
                    let t = std::time::Instant::now();
                    let ctx = PodCtx::new(p.clone());
                    let st = CycleState::compute(&ctx, &s.snapshot);
                    println!("{variant}: pre-filter {:?}", t.elapsed());
                    let t = std::time::Instant::now();
                    let feasible: Vec<usize> = (0..500).collect();
                    let _ = s.score(&ctx, &st, &feasible);
                    println!("{variant}: score 500 {:?}", t.elapsed());
                }
                let t = std::time::Instant::now();
                let r = s.schedule(p.clone()).expect("fits");
                s.assume(&p, &r.node);
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "{variant}: p50 {:?} p99 {:?} max {:?}",
                times[times.len() / 2],
                times[times.len() * 99 / 100],
                times[times.len() - 1]
            );
        }
    }
}
