//! TaintToleration: `NoSchedule` and `NoExecute` taints a pod does not tolerate keep it off a
//! node; untolerated `PreferNoSchedule` taints lower the node's score (fewer is better).

use super::{default_normalize, Failure, FilterResult, PodCtx};
use crate::snapshot::{Effect, NodeInfo};

/// The filter reason for the first untolerated taint (upstream's wording).
pub fn reason(key: &str, value: &str) -> String {
    format!("node(s) had untolerated taint {{{key}: {value}}}")
}

#[inline]
pub fn filter(pod: &PodCtx, node: &NodeInfo) -> FilterResult {
    let untolerated = node
        .taints
        .iter()
        .find(|t| matches!(t.effect, Effect::NoSchedule | Effect::NoExecute) && !pod.tolerates(t));
    match untolerated {
        Some(t) => Err(Failure::unresolvable(reason(&t.key, &t.value))),
        None => Ok(()),
    }
}

/// The number of `PreferNoSchedule` taints not tolerated by the pod's tolerations of that
/// effect (or of every effect).
#[inline]
pub fn score(pod: &PodCtx, node: &NodeInfo) -> i64 {
    node.taints
        .iter()
        .filter(|t| t.effect == Effect::PreferNoSchedule)
        .filter(|t| {
            !pod.tolerations.iter().any(|tol| {
                matches!(tol.effect, None | Some(Effect::PreferNoSchedule)) && tol.tolerates(t)
            })
        })
        .count() as i64
}

/// Fewer intolerable taints score higher.
pub fn normalize(scores: &mut [i64]) {
    default_normalize(scores, true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use k8s_openapi::api::core::v1::Toleration;
    use std::sync::Arc;

    #[test]
    fn untolerated_taint_message() {
        let n = NodeInfo::new(Arc::new(taint(
            node("n1", "1", "1Gi", "10"),
            "dedicated",
            "gpu",
            "NoSchedule",
        )));
        let p = PodCtx::new(Arc::new(pod("p", "", "")));
        let e = filter(&p, &n).unwrap_err();
        assert_eq!(
            e.reasons,
            vec!["node(s) had untolerated taint {dedicated: gpu}"]
        );
        assert_eq!(e.code, super::super::Code::UnschedulableAndUnresolvable);
        let mut tp = pod("p", "", "");
        tp.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("gpu".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
        assert!(filter(&PodCtx::new(Arc::new(tp)), &n).is_ok());
    }

    #[test]
    fn prefer_no_schedule_only_scores() {
        let n = NodeInfo::new(Arc::new(taint(
            taint(node("n1", "1", "1Gi", "10"), "a", "", "PreferNoSchedule"),
            "b",
            "",
            "PreferNoSchedule",
        )));
        let clean = NodeInfo::new(Arc::new(node("n2", "1", "1Gi", "10")));
        let p = PodCtx::new(Arc::new(pod("p", "", "")));
        assert!(filter(&p, &n).is_ok());
        let mut s = vec![score(&p, &n), score(&p, &clean)];
        assert_eq!(s, vec![2, 0]);
        normalize(&mut s);
        assert_eq!(s, vec![0, 100]);
    }

    #[test]
    fn no_execute_blocks_and_empty_key_exists_tolerates_all() {
        let n = NodeInfo::new(Arc::new(taint(
            node("n1", "1", "1Gi", "10"),
            "k",
            "v",
            "NoExecute",
        )));
        let p = PodCtx::new(Arc::new(pod("p", "", "")));
        assert!(filter(&p, &n).is_err());
        let mut tp = pod("p", "", "");
        tp.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        }]);
        assert!(filter(&PodCtx::new(Arc::new(tp)), &n).is_ok());
    }
}
