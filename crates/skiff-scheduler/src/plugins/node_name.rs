//! NodeName: a pod that names a node (`spec.nodeName`) fits only that node.

use super::{Failure, FilterResult, PodCtx};
use crate::snapshot::NodeInfo;

/// Upstream's `ErrReason`.
pub const REASON: &str = "node(s) didn't match the requested node name";

#[inline]
pub fn filter(pod: &PodCtx, node: &NodeInfo) -> FilterResult {
    match &pod.node_name {
        Some(n) if *n != node.name => Err(Failure::unresolvable(REASON)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use std::sync::Arc;

    #[test]
    fn only_the_named_node() {
        let p = PodCtx::new(Arc::new(on(pod("p", "", ""), "n2")));
        let n1 = NodeInfo::new(Arc::new(node("n1", "1", "1Gi", "10")));
        let n2 = NodeInfo::new(Arc::new(node("n2", "1", "1Gi", "10")));
        assert!(filter(&p, &n1).is_err());
        assert!(filter(&p, &n2).is_ok());
    }
}
