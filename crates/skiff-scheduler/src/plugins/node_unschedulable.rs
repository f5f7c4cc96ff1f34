//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use super::{Failure, FilterResult, PodCtx};
use crate::snapshot::{Effect, NodeInfo, Taint};

/// Upstream's `ErrReasonUnschedulable`.
pub const REASON: &str = "node(s) were unschedulable";

#[inline]
pub fn filter(pod: &PodCtx, node: &NodeInfo) -> FilterResult {
    if !node.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        value: String::new(),
        effect: Effect::NoSchedule,
    };
    if pod.tolerates(&taint) {
        Ok(())
    } else {
        Err(Failure::unresolvable(REASON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use k8s_openapi::api::core::v1::Toleration;
    use std::sync::Arc;

    #[test]
    fn cordoned_node_refuses_unless_tolerated() {
        let mut n = node("n1", "1", "1Gi", "10");
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        let ni = NodeInfo::new(Arc::new(n));
        let p = PodCtx::new(Arc::new(pod("p", "", "")));
        assert_eq!(filter(&p, &ni).unwrap_err().reasons, vec![REASON]);
        let mut tp = pod("p", "", "");
        tp.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("node.kubernetes.io/unschedulable".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
        assert!(filter(&PodCtx::new(Arc::new(tp)), &ni).is_ok());
    }
}
