//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used in equal
//! fractions after placing the pod: `(1 - std) * 100` over the requested/allocatable
//! fractions (capped at 1), counting actual requests.

use super::{PodCtx, MAX_NODE_SCORE};
use crate::snapshot::NodeInfo;

#[inline]
pub fn score(pod: &PodCtx, node: &NodeInfo) -> i64 {
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
    let mut fractions = [0f64; 2];
    let mut n = 0;
    for (req, cap) in pairs {
        if cap == 0 {
            continue;
        }
        fractions[n] = (req as f64 / cap as f64).min(1.0);
        n += 1;
    }
    let std = match n {
        0 | 1 => 0.0,
        _ => (fractions[0] - fractions[1]).abs() / 2.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use std::sync::Arc;

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
