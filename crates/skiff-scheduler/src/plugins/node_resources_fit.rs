//! NodeResourcesFit: the pod's requests (cpu, memory, ephemeral storage, extended resources)
//! must fit in what the node's allocatable leaves after the pods already there, and the node
//! must allow one more pod. Its score is `LeastAllocated` (the default: emptier nodes win) or
//! `MostAllocated` (bin packing), over cpu and memory with weight 1 each, counting the
//! non-zero requests.

use std::borrow::Cow;

use super::{Code, Failure, FilterResult, PodCtx, MAX_NODE_SCORE};
use crate::snapshot::NodeInfo;

/// The scoring strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScoringStrategy {
    #[default]
    LeastAllocated,
    MostAllocated,
}

pub const TOO_MANY_PODS: &str = "Too many pods";

#[inline]
pub fn filter(pod: &PodCtx, node: &NodeInfo) -> FilterResult {
    if fits(pod, node) {
        return Ok(());
    }
    reasons(pod, node)
}

/// Whether the pod fits: the checks of [`reasons`], none failing, without gathering any.
#[inline]
fn fits(pod: &PodCtx, node: &NodeInfo) -> bool {
    if node.pods.len() as i64 + 1 > node.allocatable.pods {
        return false;
    }
    let req = &pod.info.requests;
    if req.is_zero() {
        return true;
    }
    let a = &node.allocatable;
    let u = &node.requested;
    let short = (req.milli_cpu > 0 && req.milli_cpu > a.milli_cpu - u.milli_cpu)
        || (req.memory > 0 && req.memory > a.memory - u.memory)
        || (req.ephemeral_storage > 0
            && req.ephemeral_storage > a.ephemeral_storage - u.ephemeral_storage)
        || req
            .scalar
            .iter()
            .any(|(name, v)| *v > 0 && *v > a.scalar(name) - u.scalar(name));
    !short
}

/// Every reason the pod does not fit, in upstream's order.
#[cold]
fn reasons(pod: &PodCtx, node: &NodeInfo) -> FilterResult {
    let mut reasons: Vec<Cow<'static, str>> = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.pods {
        reasons.push(TOO_MANY_PODS.into());
    }
    let req = &pod.info.requests;
    if !req.is_zero() {
        let a = &node.allocatable;
        let u = &node.requested;
        if req.milli_cpu > 0 && req.milli_cpu > a.milli_cpu - u.milli_cpu {
            reasons.push("Insufficient cpu".into());
        }
        if req.memory > 0 && req.memory > a.memory - u.memory {
            reasons.push("Insufficient memory".into());
        }
        if req.ephemeral_storage > 0
            && req.ephemeral_storage > a.ephemeral_storage - u.ephemeral_storage
        {
            reasons.push("Insufficient ephemeral-storage".into());
        }
        for (name, v) in &req.scalar {
            if *v > 0 && *v > a.scalar(name) - u.scalar(name) {
                reasons.push(format!("Insufficient {name}").into());
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: Code::Unschedulable,
            reasons: reasons.into(),
        })
    }
}

#[inline]
fn least(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

#[inline]
fn most(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

/// The node's score for the pod (already 0..=100; no normalization).
#[inline]
pub fn score(strategy: ScoringStrategy, pod: &PodCtx, node: &NodeInfo) -> i64 {
    let pairs = [
        (
            node.non_zero_cpu + pod.info.non_zero_cpu,
            node.allocatable.milli_cpu,
        ),
        (
            node.non_zero_memory + pod.info.non_zero_memory,
            node.allocatable.memory,
        ),
    ];
    let one = |(req, cap): (i64, i64)| match strategy {
        ScoringStrategy::LeastAllocated => least(req, cap),
        ScoringStrategy::MostAllocated => most(req, cap),
    };
    // The mean over the resources the node has (both, nearly always).
    match (pairs[0].1 != 0, pairs[1].1 != 0) {
        (true, true) => (one(pairs[0]) + one(pairs[1])) / 2,
        (true, false) => one(pairs[0]),
        (false, true) => one(pairs[1]),
        (false, false) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::sync::Arc;

    #[test]
    fn insufficient_resources_and_pod_count() {
        let s = snapshot(
            vec![node("n1", "2", "4Gi", "2")],
            vec![on(pod("a", "1500m", "1Gi"), "n1")],
        );
        let n = s.node("n1").unwrap();
        let p = PodCtx::new(Arc::new(pod("p", "1", "4Gi")));
        let e = filter(&p, n).unwrap_err();
        assert_eq!(e.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
        assert!(filter(&PodCtx::new(Arc::new(pod("p", "500m", "1Gi"))), n).is_ok());

        let full = snapshot(
            vec![node("n1", "2", "4Gi", "1")],
            vec![on(pod("a", "", ""), "n1")],
        );
        let e = filter(
            &PodCtx::new(Arc::new(pod("p", "", ""))),
            full.node("n1").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.reasons, vec![TOO_MANY_PODS]);
    }

    #[test]
    fn extended_resources() {
        let n = NodeInfo::new(Arc::new(one_gpu(node("n1", "2", "4Gi", "10"))));
        let p = with_gpu(pod("p", "", ""), "2");
        let e = filter(&PodCtx::new(Arc::new(p)), &n).unwrap_err();
        assert_eq!(e.reasons, vec!["Insufficient example.com/gpu"]);
    }

    /// `n` with one `example.com/gpu` allocatable.
    fn one_gpu(mut n: k8s_openapi::api::core::v1::Node) -> k8s_openapi::api::core::v1::Node {
        n.status
            .as_mut()
            .unwrap()
            .allocatable
            .as_mut()
            .unwrap()
            .insert("example.com/gpu".into(), Quantity("1".into()));
        n
    }

    /// `p` with its first container requesting `n` of `example.com/gpu`.
    fn with_gpu(
        mut p: k8s_openapi::api::core::v1::Pod,
        n: &str,
    ) -> k8s_openapi::api::core::v1::Pod {
        p.spec.as_mut().unwrap().containers[0]
            .resources
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .insert("example.com/gpu".into(), Quantity(n.into()));
        p
    }

    /// The quick check says yes exactly when the full check finds no reason, and the score's
    /// mean equals the plain sum over the resources the node has, divided by their number,
    /// over nodes with and without each resource, full or not, and pods with and without
    /// requests (extended ones too).
    #[test]
    fn quick_paths_agree_with_the_plain_ones() {
        let plain_score = |strategy: ScoringStrategy, pod: &PodCtx, node: &NodeInfo| {
            let pairs = [
                (
                    node.non_zero_cpu + pod.info.non_zero_cpu,
                    node.allocatable.milli_cpu,
                ),
                (
                    node.non_zero_memory + pod.info.non_zero_memory,
                    node.allocatable.memory,
                ),
            ];
            let (mut sum, mut weights) = (0, 0);
            for (req, cap) in pairs.into_iter().filter(|(_, cap)| *cap != 0) {
                sum += match strategy {
                    ScoringStrategy::LeastAllocated => least(req, cap),
                    ScoringStrategy::MostAllocated => most(req, cap),
                };
                weights += 1;
            }
            if weights == 0 {
                0
            } else {
                sum / weights
            }
        };
        let mut checked = 0;
        for cpu in ["0", "1", "2"] {
            for mem in ["0", "1Gi", "4Gi"] {
                for max_pods in ["1", "3"] {
                    let n = one_gpu(node("n1", cpu, mem, max_pods));
                    let s = snapshot(
                        vec![n],
                        vec![
                            on(pod("a", "500m", "512Mi"), "n1"),
                            on(pod("b", "", ""), "n1"),
                        ],
                    );
                    let n = s.node("n1").unwrap();
                    for (pc, pm) in [("", ""), ("100m", ""), ("", "1Gi"), ("2", "3Gi")] {
                        for gpu in [None, Some("1"), Some("2")] {
                            let mut p = pod("p", pc, pm);
                            if let Some(g) = gpu {
                                p = with_gpu(p, g);
                            }
                            let ctx = PodCtx::new(Arc::new(p));
                            assert_eq!(fits(&ctx, n), reasons(&ctx, n).is_ok());
                            assert_eq!(filter(&ctx, n), reasons(&ctx, n));
                            for strategy in [
                                ScoringStrategy::LeastAllocated,
                                ScoringStrategy::MostAllocated,
                            ] {
                                assert_eq!(
                                    score(strategy, &ctx, n),
                                    plain_score(strategy, &ctx, n)
                                );
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 216);
    }

    #[test]
    fn least_and_most_allocated() {
        let s = snapshot(
            vec![node("n1", "4", "8Gi", "110"), node("n2", "4", "8Gi", "110")],
            vec![on(pod("a", "2", "4Gi"), "n1")],
        );
        let p = PodCtx::new(Arc::new(pod("p", "1", "2Gi")));
        let (n1, n2) = (s.node("n1").unwrap(), s.node("n2").unwrap());
        // n1: 3/4 cpu, 6/8 memory used → 25; n2: 1/4, 2/8 → 75.
        assert_eq!(score(ScoringStrategy::LeastAllocated, &p, n1), 25);
        assert_eq!(score(ScoringStrategy::LeastAllocated, &p, n2), 75);
        assert_eq!(score(ScoringStrategy::MostAllocated, &p, n1), 75);
        assert_eq!(score(ScoringStrategy::MostAllocated, &p, n2), 25);
    }
}
