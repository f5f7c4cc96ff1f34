//! NodePorts: a pod's host ports must be free on the node (same port and protocol on the same
//! host IP, where `0.0.0.0` or none means every IP).

use super::{Failure, FilterResult, PodCtx};
use crate::snapshot::NodeInfo;

/// Upstream's `ErrReason`.
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

#[inline]
pub fn filter(pod: &PodCtx, node: &NodeInfo) -> FilterResult {
    let conflict = pod
        .info
        .host_ports
        .iter()
        .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
    if conflict {
        Err(Failure::unschedulable(REASON))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use k8s_openapi::api::core::v1::{ContainerPort, Pod};
    use std::sync::Arc;

    fn with_port(mut p: Pod, port: i32, ip: &str) -> Pod {
        p.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
            container_port: 8080,
            host_port: Some(port),
            host_ip: (!ip.is_empty()).then(|| ip.to_string()),
            ..Default::default()
        }]);
        p
    }

    #[test]
    fn host_port_taken() {
        let s = snapshot(
            vec![node("n1", "1", "1Gi", "10")],
            vec![on(with_port(pod("a", "", ""), 80, ""), "n1")],
        );
        let n = s.node("n1").unwrap();
        let same = PodCtx::new(Arc::new(with_port(pod("b", "", ""), 80, "10.0.0.1")));
        assert_eq!(filter(&same, n).unwrap_err().reasons, vec![REASON]);
        let other = PodCtx::new(Arc::new(with_port(pod("c", "", ""), 81, "")));
        assert!(filter(&other, n).is_ok());
    }
}
