//! The DaemonSet controller's decisions, as pure functions over a snapshot: which nodes need
//! a pod and which pods must go (upstream's `manage`/`podsShouldBeOnNode`), how far a rolling
//! update may go (`rollingUpdate` with maxUnavailable, or maxSurge), and the status counts
//! (`updateDaemonSetStatus`).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::nodes::Eligibility;
use crate::history::REVISION_HASH_LABEL;
use crate::pods;

/// The label older DaemonSet pods carry with the template generation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// One node of the cluster and whether the DaemonSet belongs there.
#[derive(Debug, Clone)]
pub struct NodeFit {
    pub name: String,
    pub fit: Eligibility,
}

/// The DaemonSet's pods grouped by the node they are for (bound, or named by their affinity).
pub type PodsByNode = BTreeMap<String, Vec<Arc<Pod>>>;

/// What identifies the current template on a pod.
#[derive(Debug, Clone, Default)]
pub struct Current<'a> {
    pub hash: &'a str,
    /// The `deprecated.daemonset.template.generation` annotation of the DaemonSet, if any.
    pub generation: Option<&'a str>,
}

impl Current<'_> {
    /// Upstream's `IsPodUpdated`: the pod carries the current hash (or template generation).
    pub fn is_updated(&self, pod: &Pod) -> bool {
        let labels = pod.metadata.labels.as_ref();
        let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        (!self.hash.is_empty() && get(REVISION_HASH_LABEL) == Some(self.hash))
            || self
                .generation
                .is_some_and(|g| get(TEMPLATE_GENERATION_LABEL) == Some(g))
    }
}

/// Upstream's `GetScaledValueFromIntOrPercent`: an absolute number, or a percentage of
/// `total` rounded up or down.
pub fn scaled_value(v: Option<&IntOrString>, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        None => Ok(0),
        Some(IntOrString::Int(i)) => Ok(*i),
        Some(IntOrString::String(s)) => {
            let p: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let x = p * i64::from(total);
            let r = if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            };
            Ok(r as i32)
        }
    }
}

/// Upstream's pod order for daemon pods: bound first, then oldest, then by name.
pub fn by_age(a: &Arc<Pod>, b: &Arc<Pod>) -> std::cmp::Ordering {
    let bound = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    bound(b)
        .cmp(&bound(a))
        .then_with(|| {
            let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
            ta.cmp(&tb)
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// What one `manage` pass does.
#[derive(Debug, Default)]
pub struct Manage {
    /// Nodes that need a daemon pod.
    pub create_on: Vec<String>,
    /// Pods to delete.
    pub delete: Vec<Arc<Pod>>,
    /// Failed pods among `delete` (node name), reported as `FailedDaemonPod`.
    pub failed: Vec<(Arc<Pod>, String)>,
}

/// Upstream's `manage`: one pod on every node that should run one, none where a pod may not
/// continue to run, at most one (one old and one new while surging) elsewhere; failed and
/// succeeded pods are replaced; unscheduled pods aimed at nodes that are gone are deleted.
pub fn manage(nodes: &[NodeFit], by_node: &PodsByNode, cur: &Current, surge: bool) -> Manage {
    let mut out = Manage::default();
    let empty = Vec::new();
    for n in nodes {
        let pods = by_node.get(&n.name).unwrap_or(&empty);
        let exists = !pods.is_empty();
        if n.fit.should_run && !exists {
            out.create_on.push(n.name.clone());
        } else if n.fit.should_continue_running {
            let mut running = Vec::new();
            for p in pods {
                if p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                match pods::phase(p) {
                    "Failed" => {
                        out.delete.push(p.clone());
                        out.failed.push((p.clone(), n.name.clone()));
                    }
                    "Succeeded" => out.delete.push(p.clone()),
                    _ => running.push(p.clone()),
                }
            }
            if running.len() <= 1 {
                continue;
            }
            running.sort_by(by_age);
            if !surge {
                out.delete.extend(running.into_iter().skip(1));
            } else {
                // Keep the oldest new pod and the oldest old pod.
                let (mut have_new, mut have_old) = (false, false);
                for p in running {
                    let seen = if cur.is_updated(&p) {
                        &mut have_new
                    } else {
                        &mut have_old
                    };
                    if *seen {
                        out.delete.push(p);
                    } else {
                        *seen = true;
                    }
                }
            }
        } else if exists {
            out.delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .cloned(),
            );
        }
    }
    // Unscheduled pods for nodes that no longer exist.
    for (node, pods) in by_node {
        if nodes.iter().any(|n| &n.name == node) {
            continue;
        }
        for p in pods {
            let bound = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty());
            if !bound && p.metadata.deletion_timestamp.is_none() {
                out.delete.push(p.clone());
            }
        }
    }
    out
}

/// The nodes that should run a pod, and upstream's `updatedDesiredNodeCounts`: the surge and
/// unavailability budgets of a rolling update (percentages rounded up; 1 unavailable when
/// both come to 0).
pub fn budgets(
    nodes: &[NodeFit],
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
) -> Result<(i32, i32, i32), String> {
    let desired = nodes.iter().filter(|n| n.fit.should_run).count() as i32;
    let surge = scaled_value(max_surge, desired, true)?;
    let mut unavailable = scaled_value(max_unavailable, desired, true)?;
    if desired > 0 && surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable, desired))
}

/// The pods on a node that are not being deleted, split into one new and one old; `None`
/// when there are more (manage cleans those up first). Upstream's `findUpdatedPodsOnNode`.
#[allow(clippy::type_complexity)]
fn split(pods: &[Arc<Pod>], cur: &Current) -> Option<(Option<Arc<Pod>>, Option<Arc<Pod>>)> {
    let (mut new, mut old) = (None, None);
    for p in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if cur.is_updated(p) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p.clone());
    }
    Some((new, old))
}

/// What one rolling-update pass does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    /// Old pods to delete (by name).
    pub delete: Vec<String>,
    /// Nodes to create a new pod on beside the old one (surge).
    pub create_on: Vec<String>,
}

/// Inputs of [`rolling_update`].
pub struct RolloutInput<'a> {
    pub nodes: &'a [NodeFit],
    pub by_node: &'a PodsByNode,
    pub cur: &'a Current<'a>,
    pub max_surge: i32,
    pub max_unavailable: i32,
    pub min_ready_seconds: i32,
    pub now: Timestamp,
}

/// Upstream's `rollingUpdate`. Without surge: old pods are deleted (and replaced by manage)
/// while no more than maxUnavailable nodes lack an available pod; unavailable old pods are
/// replaced at once. With surge: a new pod is started beside an old one on up to maxSurge
/// nodes at a time (at once where the old pod is unavailable), and the old pod is deleted
/// when the new one is available.
pub fn rolling_update(i: &RolloutInput) -> Rollout {
    let mut by_node = i.by_node.clone();
    for n in i.nodes.iter().filter(|n| n.fit.should_run) {
        by_node.entry(n.name.clone()).or_default();
    }
    let available = |p: &Pod| pods::is_available(p, i.min_ready_seconds, i.now);
    let should_run = |node: &str| {
        i.nodes
            .iter()
            .find(|n| n.name == node)
            .is_some_and(|n| n.fit.should_run)
    };
    let mut out = Rollout::default();
    if i.max_surge == 0 {
        let mut unavailable = 0;
        let mut replace = Vec::new();
        let mut candidates = Vec::new();
        for pods in by_node.values() {
            let Some((new, old)) = split(pods, i.cur) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(n), None) => {
                    if !available(&n) {
                        unavailable += 1;
                    }
                }
                (None, Some(o)) => {
                    if !available(&o) {
                        replace.push(o.metadata.name.clone().unwrap_or_default());
                        unavailable += 1;
                    } else if unavailable < i.max_unavailable {
                        candidates.push(o.metadata.name.clone().unwrap_or_default());
                    }
                }
            }
        }
        let room = (i.max_unavailable - unavailable).clamp(0, candidates.len() as i32) as usize;
        out.delete = replace;
        out.delete.extend(candidates.into_iter().take(room));
        return out;
    }

    let mut surged = 0;
    let mut num_available = 0;
    let mut allowed = Vec::new();
    let mut candidates = Vec::new();
    let mut sunset = Vec::new();
    for (node, pods) in &by_node {
        let Some((new, old)) = split(pods, i.cur) else {
            surged += 1;
            continue;
        };
        match (&old, &new) {
            (Some(o), _) if available(o) => num_available += 1,
            (None, Some(n)) if available(n) => num_available += 1,
            _ => {}
        }
        match (old, new) {
            (None, _) => {}
            (Some(o), None) => {
                if !available(&o) {
                    if !should_run(node) {
                        out.delete.push(o.metadata.name.clone().unwrap_or_default());
                    } else {
                        allowed.push(node.clone());
                    }
                } else if !should_run(node) {
                    sunset.push(o.metadata.name.clone().unwrap_or_default());
                } else if surged < i.max_surge {
                    candidates.push(node.clone());
                }
            }
            (Some(o), Some(n)) => {
                if !available(&n) {
                    surged += 1;
                } else {
                    out.delete.push(o.metadata.name.clone().unwrap_or_default());
                }
            }
        }
    }
    let desired = i.nodes.iter().filter(|n| n.fit.should_run).count() as i32;
    // Pods on nodes the DaemonSet left go only while enough others are available.
    let deletable = (num_available - desired).clamp(0, sunset.len() as i32) as usize;
    out.delete.extend(sunset.into_iter().take(deletable));
    let room = (i.max_surge - surged).clamp(0, candidates.len() as i32) as usize;
    out.create_on = allowed;
    out.create_on.extend(candidates.into_iter().take(room));
    out
}

/// The status counts of a DaemonSet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
}

/// Upstream's `updateDaemonSetStatus` counts: per node that should run a pod, whether one is
/// there, and whether the oldest one is ready, available and current; pods elsewhere are
/// misscheduled.
pub fn counts(
    nodes: &[NodeFit],
    by_node: &PodsByNode,
    cur: &Current,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Counts {
    let mut c = Counts::default();
    for n in nodes {
        let pods = by_node.get(&n.name).filter(|p| !p.is_empty());
        if n.fit.should_run {
            c.desired += 1;
            let Some(pods) = pods else { continue };
            c.current += 1;
            let mut sorted = pods.clone();
            sorted.sort_by(by_age);
            let p = &sorted[0];
            let (ready, available) = pods::readiness(p, min_ready_seconds, now);
            c.ready += i32::from(ready);
            c.available += i32::from(available);
            if cur.is_updated(p) {
                c.updated += 1;
            }
        } else if pods.is_some() {
            c.misscheduled += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::{pod, ts};

    const T0: &str = "2026-01-01T00:00:00Z";

    fn fit(name: &str, run: bool, stay: bool) -> NodeFit {
        NodeFit {
            name: name.into(),
            fit: Eligibility {
                should_run: run,
                should_continue_running: stay,
            },
        }
    }

    /// A daemon pod on `node` with `hash`, ready (and available) or not.
    fn dpod(name: &str, node: &str, hash: &str, ready: bool, created: &str) -> Arc<Pod> {
        let mut p = pod(
            name,
            node,
            "Running",
            ready.then_some("2026-01-01T00:00:00Z"),
            created,
        );
        p.metadata.labels = Some([(REVISION_HASH_LABEL.to_string(), hash.to_string())].into());
        Arc::new(p)
    }

    fn group(pods: Vec<Arc<Pod>>) -> PodsByNode {
        let mut m = PodsByNode::new();
        for p in pods {
            let n = p.spec.as_ref().unwrap().node_name.clone().unwrap();
            m.entry(n).or_default().push(p);
        }
        m
    }

    fn names(v: &[Arc<Pod>]) -> Vec<String> {
        v.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
    }

    #[test]
    fn percentages_round_as_upstream() {
        let pct = IntOrString::String("25%".into());
        assert_eq!(scaled_value(Some(&pct), 10, true), Ok(3));
        assert_eq!(scaled_value(Some(&pct), 10, false), Ok(2));
        assert_eq!(scaled_value(Some(&IntOrString::Int(2)), 10, true), Ok(2));
        assert_eq!(scaled_value(None, 10, true), Ok(0));
        assert!(scaled_value(Some(&IntOrString::String("x".into())), 10, true).is_err());
        let nodes = vec![
            fit("a", true, true),
            fit("b", true, true),
            fit("c", false, false),
        ];
        assert_eq!(
            budgets(
                &nodes,
                Some(&IntOrString::Int(0)),
                Some(&IntOrString::Int(0))
            ),
            Ok((0, 1, 2)),
            "an impossible configuration falls back to one unavailable"
        );
        assert_eq!(
            budgets(
                &nodes,
                Some(&IntOrString::String("50%".into())),
                Some(&IntOrString::Int(0))
            ),
            Ok((1, 0, 2))
        );
    }

    #[test]
    fn manage_creates_deletes_and_dedups() {
        let cur = Current {
            hash: "h2",
            generation: None,
        };
        let nodes = vec![
            fit("empty", true, true),
            fit("dup", true, true),
            fit("gone", false, false),
            fit("stay", false, true),
            fit("failed", true, true),
        ];
        let mut failed = (*dpod("f", "failed", "h2", false, T0)).clone();
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        let by_node = group(vec![
            dpod("dup-old", "dup", "h2", true, "2026-01-01T00:00:00Z"),
            dpod("dup-new", "dup", "h2", true, "2026-01-01T00:00:05Z"),
            dpod("g", "gone", "h2", true, T0),
            dpod("s", "stay", "h2", true, T0),
            Arc::new(failed),
        ]);
        let m = manage(&nodes, &by_node, &cur, false);
        assert_eq!(m.create_on, vec!["empty"]);
        let mut d = names(&m.delete);
        d.sort();
        assert_eq!(d, vec!["dup-new", "f", "g"]);
        assert_eq!(m.failed.len(), 1);

        // While surging, one old and one new pod may share a node.
        let by_node = group(vec![
            dpod("old", "dup", "h1", true, "2026-01-01T00:00:00Z"),
            dpod("new", "dup", "h2", false, "2026-01-01T00:00:05Z"),
            dpod("new2", "dup", "h2", false, "2026-01-01T00:00:09Z"),
        ]);
        let m = manage(&[fit("dup", true, true)], &by_node, &cur, true);
        assert_eq!(names(&m.delete), vec!["new2"]);
    }

    #[test]
    fn unscheduled_pods_for_missing_nodes_are_deleted() {
        let cur = Current {
            hash: "h",
            generation: None,
        };
        let mut p = (*dpod("orphaned", "x", "h", false, T0)).clone();
        p.spec.as_mut().unwrap().node_name = None;
        let mut by_node = PodsByNode::new();
        by_node.insert("missing".into(), vec![Arc::new(p)]);
        by_node.insert(
            "bound-missing".into(),
            vec![dpod("b", "bound-missing", "h", true, T0)],
        );
        let m = manage(&[], &by_node, &cur, false);
        assert_eq!(
            names(&m.delete),
            vec!["orphaned"],
            "bound pods are pod GC's"
        );
    }

    fn input<'a>(
        nodes: &'a [NodeFit],
        by_node: &'a PodsByNode,
        cur: &'a Current<'a>,
        surge: i32,
        unavailable: i32,
    ) -> RolloutInput<'a> {
        RolloutInput {
            nodes,
            by_node,
            cur,
            max_surge: surge,
            max_unavailable: unavailable,
            min_ready_seconds: 0,
            now: ts("2026-01-01T00:01:00Z"),
        }
    }

    #[test]
    fn rolling_update_respects_max_unavailable() {
        let cur = Current {
            hash: "new",
            generation: None,
        };
        let nodes: Vec<NodeFit> = (0..5).map(|i| fit(&format!("n{i}"), true, true)).collect();
        // All old and available: delete two at a time.
        let by_node = group(
            (0..5)
                .map(|i| dpod(&format!("p{i}"), &format!("n{i}"), "old", true, T0))
                .collect(),
        );
        let r = rolling_update(&input(&nodes, &by_node, &cur, 0, 2));
        assert_eq!(r.delete.len(), 2);
        assert!(r.create_on.is_empty());

        // One node is being replaced (no pod), one new pod is not ready yet: no room left,
        // but an unavailable old pod is replaced anyway.
        let by_node = group(vec![
            dpod("p1", "n1", "new", false, T0),
            dpod("p2", "n2", "old", false, T0),
            dpod("p3", "n3", "old", true, T0),
            dpod("p4", "n4", "old", true, T0),
        ]);
        let r = rolling_update(&input(&nodes, &by_node, &cur, 0, 2));
        assert_eq!(r.delete, vec!["p2"]);

        // Everything updated: nothing to do.
        let by_node = group(
            (0..5)
                .map(|i| dpod(&format!("p{i}"), &format!("n{i}"), "new", true, T0))
                .collect(),
        );
        assert_eq!(
            rolling_update(&input(&nodes, &by_node, &cur, 0, 1)),
            Rollout::default()
        );
    }

    #[test]
    fn rolling_update_surges_then_deletes_old_pods() {
        let cur = Current {
            hash: "new",
            generation: None,
        };
        let nodes: Vec<NodeFit> = (0..4).map(|i| fit(&format!("n{i}"), true, true)).collect();
        let by_node = group(
            (0..4)
                .map(|i| dpod(&format!("p{i}"), &format!("n{i}"), "old", true, T0))
                .collect(),
        );
        let r = rolling_update(&input(&nodes, &by_node, &cur, 1, 0));
        assert_eq!(r.create_on.len(), 1, "one surge pod at a time");
        assert!(
            r.delete.is_empty(),
            "no old pod goes before its replacement"
        );

        // n0 has a new pod that is not ready: the surge budget is used up.
        let mut pods: Vec<Arc<Pod>> = (0..4)
            .map(|i| dpod(&format!("p{i}"), &format!("n{i}"), "old", true, T0))
            .collect();
        pods.push(dpod("q0", "n0", "new", false, T0));
        let by_node = group(pods.clone());
        assert_eq!(
            rolling_update(&input(&nodes, &by_node, &cur, 1, 0)),
            Rollout::default()
        );
        // Once it is available, the old pod beside it goes and the next node surges.
        pods.pop();
        pods.push(dpod("q0", "n0", "new", true, T0));
        let by_node = group(pods);
        let r = rolling_update(&input(&nodes, &by_node, &cur, 1, 0));
        assert_eq!(r.delete, vec!["p0"]);
        assert_eq!(r.create_on, vec!["n1"]);
    }

    #[test]
    fn status_counts_nodes_not_pods() {
        let cur = Current {
            hash: "new",
            generation: Some("3"),
        };
        let nodes = vec![
            fit("a", true, true),
            fit("b", true, true),
            fit("c", true, true),
            fit("d", false, false),
        ];
        let mut gen_pod = (*dpod("b1", "b", "old", false, T0)).clone();
        gen_pod
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(TEMPLATE_GENERATION_LABEL.into(), "3".into());
        let by_node = group(vec![
            dpod("a1", "a", "new", true, T0),
            dpod("a2", "a", "old", true, "2026-01-01T00:00:30Z"),
            Arc::new(gen_pod),
            dpod("d1", "d", "new", true, T0),
        ]);
        let c = counts(&nodes, &by_node, &cur, 0, ts("2026-01-01T00:01:00Z"));
        assert_eq!(
            c,
            Counts {
                desired: 3,
                current: 2,
                misscheduled: 1,
                ready: 1,
                available: 1,
                updated: 2,
            }
        );
    }
}
