//! NodeAffinity: `spec.nodeSelector` and the required node affinity terms filter nodes; the
//! preferred terms add their weights to a node's score, normalized by the best node.

use super::{default_normalize, Failure, FilterResult, PodCtx};
use crate::snapshot::NodeInfo;

/// Upstream's `ErrReasonPod`.
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// Whether the node satisfies the pod's nodeSelector and required node affinity.
pub fn matches(pod: &PodCtx, node: &NodeInfo) -> bool {
    let labels = node.labels();
    pod.node_selector.as_ref().is_none_or(|s| s.matches(labels))
        && pod
            .required_node_affinity
            .as_ref()
            .is_none_or(|t| t.matches(&node.name, labels))
}

#[inline]
pub fn filter(pod: &PodCtx, node: &NodeInfo) -> FilterResult {
    if matches(pod, node) {
        Ok(())
    } else {
        Err(Failure::unresolvable(REASON))
    }
}

/// The sum of the weights of the preferred terms the node matches.
pub fn score(pod: &PodCtx, node: &NodeInfo) -> i64 {
    let labels = node.labels();
    pod.preferred_node_affinity
        .iter()
        .filter(|(_, t)| t.matches(&node.name, labels))
        .map(|(w, _)| *w)
        .sum()
}

pub fn normalize(scores: &mut [i64]) {
    default_normalize(scores, false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
        PreferredSchedulingTerm,
    };
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn term(key: &str, op: &str, values: &[&str]) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|s| s.to_string()).collect()),
            }]),
            match_fields: None,
        }
    }

    #[test]
    fn node_selector_and_required_terms() {
        let a = NodeInfo::new(Arc::new(label(node("a", "1", "1Gi", "10"), "pool", "gpu")));
        let b = NodeInfo::new(Arc::new(label(node("b", "1", "1Gi", "10"), "pool", "cpu")));
        let mut p = pod("p", "", "");
        p.spec.as_mut().unwrap().node_selector =
            Some(BTreeMap::from([("pool".to_string(), "gpu".to_string())]));
        let ctx = PodCtx::new(Arc::new(p));
        assert!(filter(&ctx, &a).is_ok());
        assert_eq!(filter(&ctx, &b).unwrap_err().reasons, vec![REASON]);

        let mut p = pod("p", "", "");
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![term("pool", "NotIn", &["gpu"])],
                }),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        });
        let ctx = PodCtx::new(Arc::new(p));
        assert!(filter(&ctx, &a).is_err());
        assert!(filter(&ctx, &b).is_ok());
    }

    #[test]
    fn preferred_terms_score() {
        let a = NodeInfo::new(Arc::new(label(node("a", "1", "1Gi", "10"), "zone", "z1")));
        let b = NodeInfo::new(Arc::new(label(node("b", "1", "1Gi", "10"), "zone", "z2")));
        let mut p = pod("p", "", "");
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: None,
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    PreferredSchedulingTerm {
                        weight: 80,
                        preference: term("zone", "In", &["z1"]),
                    },
                    PreferredSchedulingTerm {
                        weight: 20,
                        preference: term("zone", "Exists", &[]),
                    },
                ]),
            }),
            ..Default::default()
        });
        let ctx = PodCtx::new(Arc::new(p));
        let mut s = vec![score(&ctx, &a), score(&ctx, &b)];
        assert_eq!(s, vec![100, 20]);
        normalize(&mut s);
        assert_eq!(s, vec![100, 20]);
    }
}
