//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used in equal
//! fractions after placing the pod: `(1 - std) * 100` over the requested/allocatable
//! fractions (capped at 1), counting actual requests.

use super::{PodCtx, MAX_NODE_SCORE};
use crate::snapshot::NodeInfo;

#[inline]
pub fn score(pod: &PodCtx, node: &NodeInfo) -> i64 {
    let fraction = |req: i64, cap: i64| (req as f64 / cap as f64).min(1.0);
    let (cpu, memory) = (node.allocatable.milli_cpu, node.allocatable.memory);
    // The standard deviation of the fractions of the resources the node has: of two, half
    // their difference; of one or none, 0.
    let std = if cpu != 0 && memory != 0 {
        let cpu = fraction(node.requested.milli_cpu + pod.info.requests.milli_cpu, cpu);
        let memory = fraction(node.requested.memory + pod.info.requests.memory, memory);
        (cpu - memory).abs() / 2.0
    } else {
        0.0
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use std::sync::Arc;

    /// The plain computation: the fractions of the resources the node has, gathered in a
    /// list, and their standard deviation.
    fn plain(pod: &PodCtx, node: &NodeInfo) -> i64 {
        let pairs = [
            (
                node.requested.milli_cpu + pod.info.requests.milli_cpu,
                node.allocatable.milli_cpu,
            ),
            (
                node.requested.memory + pod.info.requests.memory,
                node.allocatable.memory,
            ),
        ];
        let fractions: Vec<f64> = pairs
            .iter()
            .filter(|(_, cap)| *cap != 0)
            .map(|&(req, cap)| (req as f64 / cap as f64).min(1.0))
            .collect();
        let std = match fractions.as_slice() {
            [a, b] => (a - b).abs() / 2.0,
            _ => 0.0,
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }

    #[test]
    fn score_equals_the_plain_computation() {
        let mut checked = 0;
        for cpu in ["0", "1", "3", "7"] {
            for mem in ["0", "1Gi", "3Gi", "5000Mi"] {
                let s = snapshot(
                    vec![node("n1", cpu, mem, "110")],
                    vec![on(pod("a", "700m", "900Mi"), "n1")],
                );
                let n = s.node("n1").unwrap();
                for (pc, pm) in [
                    ("", ""),
                    ("1", ""),
                    ("", "2Gi"),
                    ("333m", "777Mi"),
                    ("9", "9Gi"),
                ] {
                    let p = PodCtx::new(Arc::new(pod("p", pc, pm)));
                    assert_eq!(score(&p, n), plain(&p, n), "{cpu} {mem} {pc} {pm}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 80);
    }

    #[test]
    fn balanced_nodes_score_higher() {
        let s = snapshot(
            vec![node("n1", "4", "8Gi", "110"), node("n2", "4", "8Gi", "110")],
            vec![on(pod("a", "3", ""), "n1")],
        );
        let p = PodCtx::new(Arc::new(pod("p", "1", "2Gi")));
        // n1: cpu 4/4, memory 2/8 → std 0.375 → 62; n2: 1/4 and 2/8 → 100.
        assert_eq!(score(&p, s.node("n1").unwrap()), 62);
        assert_eq!(score(&p, s.node("n2").unwrap()), 100);
    }
}
