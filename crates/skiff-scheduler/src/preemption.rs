//! Preemption as a pure decision, after upstream's DefaultPreemption: for a pod that fits
//! nowhere (and whose `preemptionPolicy` is not `Never`), each node where removing pods could
//! help is tried with every lower-priority pod removed; if the pod then fits, victims are
//! re-admitted most important first (those whose eviction would break a PodDisruptionBudget
//! before the others) as long as the pod still fits. Among the candidate nodes the one with
//! the fewest budget violations wins, then the lowest highest-victim priority, the smallest sum
//! of priorities, the fewest victims, and the latest start of the most important victims.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::framework::{histogram, run_filters_with_nominated, CycleState, FitError};
use crate::plugins::{Code, Failure, PodCtx};
use crate::selector::Selector;
use crate::snapshot::{PodInfo, Snapshot};

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NEVER: &str = "not eligible due to preemptionPolicy=Never.";
pub const TERMINATING: &str = "not eligible due to a terminating pod on the nominated node.";

/// Upstream's `MinCandidateNodesPercentage` and `MinCandidateNodesAbsolute`.
const MIN_CANDIDATES_PERCENT: usize = 10;
const MIN_CANDIDATES_ABSOLUTE: usize = 100;

/// A PodDisruptionBudget as preemption sees it.
#[derive(Debug, Clone)]
pub struct Pdb {
    pub namespace: String,
    pub selector: Selector,
    pub disruptions_allowed: i32,
    pub disrupted: Vec<String>,
}

impl Pdb {
    pub fn new(p: &PodDisruptionBudget) -> Pdb {
        let sel = p.spec.as_ref().and_then(|s| s.selector.as_ref());
        // An empty selector matches no pod here, as upstream's preemption treats it.
        let selector = match sel {
            Some(s)
                if s.match_labels.as_ref().is_some_and(|m| !m.is_empty())
                    || s.match_expressions.as_ref().is_some_and(|m| !m.is_empty()) =>
            {
                Selector::from_label_selector(Some(s))
            }
            _ => Selector::nothing(),
        };
        let status = p.status.as_ref();
        Pdb {
            namespace: p.metadata.namespace.clone().unwrap_or_default(),
            selector,
            disruptions_allowed: status.map(|s| s.disruptions_allowed).unwrap_or(0),
            disrupted: status
                .and_then(|s| s.disrupted_pods.as_ref())
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// The chosen node and the pods to evict there.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    /// Most important first.
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

/// Why preemption did not help: the message upstream appends to the FitError, already
/// prefixed with `preemption: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoPreemption(pub String);

/// Upstream's `MoreImportantPod`: higher priority, then earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| cmp_start(a.start_time(), b.start_time()))
}

fn cmp_start(a: Option<&Time>, b: Option<&Time>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// Splits pods (in order) into those whose eviction would break a budget and the rest.
fn split_by_pdb(pods: &[Arc<PodInfo>], pdbs: &[Pdb]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let (mut violating, mut ok) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violates = false;
        for (i, b) in pdbs.iter().enumerate() {
            if b.namespace != p.namespace
                || !b.selector.matches(p.labels())
                || b.disrupted.iter().any(|n| *n == p.name)
            {
                continue;
            }
            allowed[i] -= 1;
            if allowed[i] < 0 {
                violates = true;
            }
        }
        if violates {
            violating.push(p.clone());
        } else {
            ok.push(p.clone());
        }
    }
    (violating, ok)
}

/// The fewest victims on one node (`SelectVictimsOnNode`), or why there are none.
pub fn select_victims_on_node(
    ctx: &PodCtx,
    state: &CycleState,
    snap: &Snapshot,
    node_name: &str,
    pdbs: &[Pdb],
) -> Result<(Vec<Arc<PodInfo>>, usize), Failure> {
    let Some(node) = snap.node(node_name) else {
        return Err(Failure::unresolvable(NOT_HELPFUL));
    };
    let mut ni = node.clone();
    let mut st = state.clone();
    let mut potential: Vec<Arc<PodInfo>> = ni
        .pods
        .iter()
        .filter(|p| p.priority < ctx.info.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Failure::unresolvable(NO_VICTIMS));
    }
    for p in &potential {
        ni.remove_pod(&p.uid, &p.key);
        st.update(ctx, p, &ni, snap, -1);
    }
    run_filters_with_nominated(ctx, &st, snap, &ni)?;
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, rest) = split_by_pdb(&potential, pdbs);
    let mut victims = Vec::new();
    let mut violations = 0;
    for (group, counts) in [(violating, true), (rest, false)] {
        for p in group {
            ni.add_pod(p.clone());
            st.update(ctx, &p, &ni, snap, 1);
            if run_filters_with_nominated(ctx, &st, snap, &ni).is_err() {
                ni.remove_pod(&p.uid, &p.key);
                st.update(ctx, &p, &ni, snap, -1);
                if counts {
                    violations += 1;
                }
                victims.push(p);
            }
        }
    }
    victims.sort_by(|a, b| more_important(a, b));
    Ok((victims, violations))
}

/// Whether the pod may preempt at all (`PodEligibleToPreemptOthers`).
fn eligible(ctx: &PodCtx, snap: &Snapshot, statuses: &[(String, Failure)]) -> Result<(), String> {
    if ctx.preemption_never {
        return Err(NEVER.into());
    }
    let nominated = ctx
        .info
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(n) = nominated {
        let unresolvable = statuses
            .iter()
            .any(|(name, f)| name == n && f.code == Code::UnschedulableAndUnresolvable);
        if !unresolvable {
            if let Some(ni) = snap.node(n) {
                if ni
                    .pods
                    .iter()
                    .any(|p| p.terminating && p.priority < ctx.info.priority)
                {
                    return Err(TERMINATING.into());
                }
            }
        }
    }
    Ok(())
}

fn sum_priorities(v: &[Arc<PodInfo>]) -> i64 {
    v.iter()
        .map(|p| i64::from(p.priority) + i64::from(i32::MAX) + 1)
        .sum()
}

/// The earliest start among the highest-priority victims.
fn earliest_top_start(v: &[Arc<PodInfo>]) -> Option<&Time> {
    let top = v.first()?.priority;
    v.iter()
        .filter(|p| p.priority == top)
        .filter_map(|p| p.start_time())
        .min()
}

/// Upstream's `pickOneNodeForPreemption`.
fn pick(cands: Vec<Candidate>) -> Option<Candidate> {
    let mut best: Option<Candidate> = None;
    for c in cands {
        let better = match &best {
            None => true,
            Some(b) => {
                let key = |x: &Candidate| {
                    (
                        x.pdb_violations,
                        x.victims.first().map(|p| p.priority).unwrap_or(i32::MIN),
                        sum_priorities(&x.victims),
                        x.victims.len(),
                    )
                };
                match key(&c).cmp(&key(b)) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Greater => false,
                    // Later start of the most important victims wins.
                    std::cmp::Ordering::Equal => {
                        cmp_start(
                            earliest_top_start(&c.victims),
                            earliest_top_start(&b.victims),
                        ) == std::cmp::Ordering::Greater
                            && earliest_top_start(&c.victims).is_some()
                    }
                }
            }
        };
        if better {
            best = Some(c);
        }
    }
    best
}

/// Decides preemption for a pod whose attempt failed with `fit`.
pub fn preempt(
    ctx: &PodCtx,
    state: &CycleState,
    snap: &Snapshot,
    fit: &FitError,
    pdbs: &[Pdb],
) -> Result<Candidate, NoPreemption> {
    eligible(ctx, snap, &fit.statuses).map_err(|m| NoPreemption(format!("preemption: {m}")))?;
    let potential: Vec<&str> = fit
        .statuses
        .iter()
        .filter(|(_, f)| f.code == Code::Unschedulable)
        .map(|(n, _)| n.as_str())
        .collect();
    let want = (potential.len() * MIN_CANDIDATES_PERCENT / 100)
        .max(MIN_CANDIDATES_ABSOLUTE)
        .min(potential.len());
    let mut cands = Vec::new();
    let mut non_violating = 0;
    let mut statuses: BTreeMap<&str, Failure> = BTreeMap::new();
    for n in &potential {
        match select_victims_on_node(ctx, state, snap, n, pdbs) {
            Ok((victims, violations)) => {
                if violations == 0 {
                    non_violating += 1;
                }
                cands.push(Candidate {
                    node: n.to_string(),
                    victims,
                    pdb_violations: violations,
                });
                if non_violating >= want {
                    break;
                }
            }
            Err(f) => {
                statuses.insert(n, f);
            }
        }
    }
    if let Some(c) = pick(cands) {
        return Ok(c);
    }
    let absent = fit.num_all_nodes.saturating_sub(statuses.len());
    let mut h: Vec<Failure> = statuses.into_values().collect();
    h.extend((0..absent).map(|_| Failure::unresolvable(NOT_HELPFUL)));
    let msg = format!(
        "0/{} nodes are available: {}.",
        fit.num_all_nodes,
        histogram(h.iter()).join(", ")
    );
    Err(NoPreemption(format!("preemption: {msg}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Config, Scheduler};
    use crate::snapshot::testing::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::policy::v1::{PodDisruptionBudgetSpec, PodDisruptionBudgetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    fn attempt(
        s: &mut Scheduler,
        p: Pod,
        pdbs: &[Pdb],
    ) -> (FitError, Result<Candidate, NoPreemption>) {
        let ctx = PodCtx::new(Arc::new(p));
        let failed = s.schedule_ctx(&ctx).unwrap_err();
        let (mut fit, state) = (failed.fit, failed.state);
        let r = preempt(&ctx, &state, &s.snapshot, &fit, pdbs);
        if let Err(NoPreemption(m)) = &r {
            fit.post_filter_msg = m.clone();
        }
        (fit, r)
    }

    fn names(c: &Candidate) -> Vec<&str> {
        c.victims.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![node("n1", "4", "8Gi", "110")],
            vec![
                on(priority(pod("low-a", "1", ""), 1), "n1"),
                on(priority(pod("low-b", "1", ""), 2), "n1"),
                on(priority(pod("mid", "1", ""), 5), "n1"),
                on(priority(pod("high", "1", ""), 100), "n1"),
            ],
        );
        let (_, r) = attempt(&mut s, priority(pod("p", "2", ""), 10), &[]);
        let c = r.unwrap();
        assert_eq!(c.node, "n1");
        // Two cores are needed: the two least important of the three lower-priority pods go.
        assert_eq!(names(&c), vec!["low-b", "low-a"]);
    }

    #[test]
    fn prefers_the_node_with_lower_priority_victims() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![node("n1", "2", "8Gi", "110"), node("n2", "2", "8Gi", "110")],
            vec![
                on(priority(pod("a", "2", ""), 5), "n1"),
                on(priority(pod("b", "2", ""), 1), "n2"),
            ],
        );
        let (_, r) = attempt(&mut s, priority(pod("p", "1", ""), 10), &[]);
        let c = r.unwrap();
        assert_eq!(c.node, "n2");
        assert_eq!(names(&c), vec!["b"]);
    }

    #[test]
    fn respects_disruption_budgets_when_it_can() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![node("n1", "2", "8Gi", "110"), node("n2", "2", "8Gi", "110")],
            vec![
                on(
                    priority(with_labels(pod("guarded", "2", ""), &[("app", "db")]), 1),
                    "n1",
                ),
                on(priority(pod("free", "2", ""), 1), "n2"),
            ],
        );
        let pdb = Pdb::new(&PodDisruptionBudget {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(PodDisruptionBudgetSpec {
                selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".into(), "db".into())])),
                    match_expressions: None,
                }),
                ..Default::default()
            }),
            status: Some(PodDisruptionBudgetStatus {
                disruptions_allowed: 0,
                ..Default::default()
            }),
        });
        let (_, r) = attempt(&mut s, priority(pod("p", "1", ""), 10), &[pdb]);
        let c = r.unwrap();
        assert_eq!(c.node, "n2");
        assert_eq!(c.pdb_violations, 0);
    }

    #[test]
    fn messages_when_preemption_cannot_help() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![
                taint(
                    node("n1", "4", "8Gi", "110"),
                    "dedicated",
                    "gpu",
                    "NoSchedule",
                ),
                node("n2", "1", "8Gi", "110"),
                node("n3", "1", "8Gi", "110"),
            ],
            vec![on(priority(pod("same", "1", ""), 10), "n3")],
        );
        let (fit, r) = attempt(&mut s, priority(pod("p", "2", ""), 10), &[]);
        assert!(r.is_err());
        assert_eq!(
            fit.to_string(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn still_too_big_reports_the_filter_reason() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![node("n1", "1", "8Gi", "110")],
            vec![on(priority(pod("low", "1", ""), 1), "n1")],
        );
        let (fit, _) = attempt(&mut s, priority(pod("p", "2", ""), 10), &[]);
        assert_eq!(
            fit.to_string(),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Insufficient cpu."
        );
    }

    #[test]
    fn preemption_policy_never() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(
            vec![node("n1", "1", "8Gi", "110")],
            vec![on(priority(pod("low", "1", ""), 1), "n1")],
        );
        let mut p = priority(pod("p", "1", ""), 10);
        p.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        let (fit, r) = attempt(&mut s, p, &[]);
        assert!(r.is_err());
        assert_eq!(
            fit.to_string(),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
        );
    }

    #[test]
    fn nominated_pods_hold_their_room() {
        let mut s = Scheduler::new(Config::default());
        s.snapshot = snapshot(vec![node("n1", "2", "8Gi", "110")], vec![]);
        let high = priority(pod("high", "2", ""), 10);
        s.snapshot
            .nominate(Arc::new(PodInfo::new(Arc::new(high))), "n1");
        let e = s
            .schedule(Arc::new(priority(pod("low", "1", ""), 1)))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "0/1 nodes are available: 1 Insufficient cpu."
        );
        // An equal or higher priority pod is not held back by a lower nomination.
        s.snapshot.clear_nomination("default/high");
        assert!(s
            .schedule(Arc::new(priority(pod("low", "1", ""), 1)))
            .is_ok());
    }
}
