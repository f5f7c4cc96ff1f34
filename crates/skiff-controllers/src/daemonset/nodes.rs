//! Which nodes a DaemonSet runs on, after upstream's `NodeShouldRunDaemonPod` and the
//! scheduling helpers it uses (`nodeaffinity.GetRequiredNodeAffinity`,
//! `FindMatchingUntoleratedTaint`, `AddOrUpdateDaemonPodTolerations`,
//! `ReplaceDaemonSetPodNodeNameNodeAffinity`).
//!
//! A node is eligible when the pod template's `nodeName` (if any) names it, its
//! `nodeSelector` and required node affinity match the node, and the template — with the
//! tolerations upstream adds to every DaemonSet pod — tolerates the node's NoSchedule and
//! NoExecute taints. A pod already on a node that is no longer eligible keeps running if it
//! still tolerates the node's NoExecute taints (a new NoSchedule taint evicts nothing).

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// The field `matchFields` may name (a node's name).
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

fn exists(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    }
}

/// Upstream's `MatchToleration`: same key, operator, value and effect (tolerationSeconds may
/// differ).
fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    a.key == b.key && a.operator == b.operator && a.value == b.value && a.effect == b.effect
}

/// Adds `t`, or replaces a toleration that matches it but differs (in tolerationSeconds).
fn add_or_update(list: &mut Vec<Toleration>, t: Toleration) {
    if let Some(existing) = list.iter_mut().find(|x| same_toleration(x, &t)) {
        *existing = t;
    } else {
        list.push(t);
    }
}

/// The tolerations every DaemonSet pod gets: not-ready and unreachable (NoExecute, forever),
/// disk, memory and PID pressure and unschedulable (NoSchedule), and network-unavailable for
/// host-network pods.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    add_or_update(list, exists(TAINT_NOT_READY, "NoExecute"));
    add_or_update(list, exists(TAINT_UNREACHABLE, "NoExecute"));
    add_or_update(list, exists(TAINT_DISK_PRESSURE, "NoSchedule"));
    add_or_update(list, exists(TAINT_MEMORY_PRESSURE, "NoSchedule"));
    add_or_update(list, exists(TAINT_PID_PRESSURE, "NoSchedule"));
    add_or_update(list, exists(TAINT_UNSCHEDULABLE, "NoSchedule"));
    if spec.host_network == Some(true) {
        add_or_update(list, exists(TAINT_NETWORK_UNAVAILABLE, "NoSchedule"));
    }
}

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if k != taint.key {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// Whether some taint that `applies` is not tolerated.
fn untolerated(taints: &[Taint], tols: &[Toleration], applies: impl Fn(&Taint) -> bool) -> bool {
    taints
        .iter()
        .filter(|t| applies(t))
        .any(|t| !tols.iter().any(|tol| tolerates(tol, t)))
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), Some(b)) = (value, values.first()) else {
                return false;
            };
            let (Ok(v), Ok(b)) = (v.parse::<i64>(), b.parse::<i64>()) else {
                return false;
            };
            if op == "Gt" {
                v > b
            } else {
                v < b
            }
        }
        _ => false,
    }
}

/// One term: all its requirements hold; a term without any matches no node.
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
        && fields.iter().all(|r| {
            let v = (r.key == OBJECT_NAME_FIELD)
                .then_some(node.metadata.name.as_deref())
                .flatten();
            r.key == OBJECT_NAME_FIELD && requirement_matches(r, v)
        })
}

/// A node selector: its terms are ORed.
pub fn node_selector_matches(sel: &NodeSelector, node: &Node) -> bool {
    sel.node_selector_terms
        .iter()
        .any(|t| term_matches(t, node))
}

/// The pod's `nodeSelector` and required node affinity both match `node`.
pub fn fits_node_affinity(spec: &PodSpec, node: &Node) -> bool {
    if let Some(sel) = &spec.node_selector {
        let labels = node.metadata.labels.as_ref();
        if sel
            .iter()
            .any(|(k, v)| labels.and_then(|l| l.get(k)) != Some(v))
        {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    required.is_none_or(|r| node_selector_matches(r, node))
}

/// Whether a DaemonSet pod belongs on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eligibility {
    /// A daemon pod should be created there if missing.
    pub should_run: bool,
    /// A daemon pod already there may stay.
    pub should_continue_running: bool,
}

/// Upstream's `NodeShouldRunDaemonPod`, for `spec` the pod template's spec with the daemon
/// tolerations added ([`add_daemon_tolerations`]).
pub fn node_should_run(node: &Node, spec: &PodSpec) -> Eligibility {
    let name = node.metadata.name.as_deref().unwrap_or("");
    let no = Eligibility {
        should_run: false,
        should_continue_running: false,
    };
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        if n != name {
            return no;
        }
    }
    if !fits_node_affinity(spec, node) {
        return no;
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let tols = spec.tolerations.as_deref().unwrap_or(&[]);
    if untolerated(taints, tols, |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    }) {
        return Eligibility {
            should_run: false,
            should_continue_running: !untolerated(taints, tols, |t| t.effect == "NoExecute"),
        };
    }
    Eligibility {
        should_run: true,
        should_continue_running: true,
    }
}

/// The affinity a daemon pod for `node` is created with: the required node affinity replaced
/// by `matchFields metadata.name In [node]` (the DaemonSet checked the rest itself; the
/// scheduler binds the pod).
pub fn with_node_affinity(affinity: Option<Affinity>, node: &str) -> Affinity {
    let sel = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: OBJECT_NAME_FIELD.into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
        }],
    };
    let mut a = affinity.unwrap_or_default();
    let na = a.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(sel);
    a
}

/// The node a daemon pod is for: where it is bound, else the node its affinity names
/// (upstream's `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_ref()?.iter().find_map(|r| {
            let v = r.values.as_ref()?;
            (r.key == OBJECT_NAME_FIELD && r.operator == "In" && v.len() == 1).then(|| v[0].clone())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints}
        }))
        .unwrap()
    }

    fn spec(v: serde_json::Value) -> PodSpec {
        let mut s: PodSpec = serde_json::from_value(v).unwrap();
        add_daemon_tolerations(&mut s);
        s
    }

    const RUN: Eligibility = Eligibility {
        should_run: true,
        should_continue_running: true,
    };
    const NO: Eligibility = Eligibility {
        should_run: false,
        should_continue_running: false,
    };
    const STAY: Eligibility = Eligibility {
        should_run: false,
        should_continue_running: true,
    };

    #[test]
    fn automatic_tolerations_are_added_once_and_replace_timed_ones() {
        let mut s: PodSpec = serde_json::from_value(json!({
            "containers": [],
            "tolerations": [{"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        }))
        .unwrap();
        add_daemon_tolerations(&mut s);
        add_daemon_tolerations(&mut s);
        let t = s.tolerations.as_ref().unwrap();
        assert_eq!(t.len(), 6);
        assert_eq!(t[0].key.as_deref(), Some(TAINT_NOT_READY));
        assert_eq!(
            t[0].toleration_seconds, None,
            "runs forever on a not-ready node"
        );
        assert!(!t
            .iter()
            .any(|x| x.key.as_deref() == Some(TAINT_NETWORK_UNAVAILABLE)));
        let hn = spec(json!({"containers": [], "hostNetwork": true}));
        assert_eq!(hn.tolerations.as_ref().unwrap().len(), 7);
    }

    #[test]
    fn selectors_and_affinity_choose_nodes() {
        let n = node("n1", json!({"disk": "ssd", "gen": "5"}), json!([]));
        assert_eq!(node_should_run(&n, &spec(json!({"containers": []}))), RUN);
        let sel = spec(json!({"containers": [], "nodeSelector": {"disk": "ssd"}}));
        assert_eq!(node_should_run(&n, &sel), RUN);
        let other = spec(json!({"containers": [], "nodeSelector": {"disk": "hdd"}}));
        assert_eq!(node_should_run(&n, &other), NO);
        let aff = |op: &str, vals: serde_json::Value| {
            spec(json!({"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "gen", "operator": op, "values": vals}]}
            ]}}}}))
        };
        assert_eq!(node_should_run(&n, &aff("Gt", json!(["4"]))), RUN);
        assert_eq!(node_should_run(&n, &aff("Lt", json!(["4"]))), NO);
        assert_eq!(node_should_run(&n, &aff("NotIn", json!(["5"]))), NO);
        let named = spec(json!({"containers": [], "nodeName": "n2"}));
        assert_eq!(node_should_run(&n, &named), NO);
        let fields = spec(json!({"containers": [], "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
        ]}}}}));
        assert_eq!(node_should_run(&n, &fields), RUN);
        let empty_term = spec(json!({"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}}}));
        assert_eq!(node_should_run(&n, &empty_term), NO);
    }

    #[test]
    fn taints_against_tolerations() {
        let plain = spec(json!({"containers": []}));
        // The automatic tolerations cover cordoned and not-ready nodes.
        let cordoned = node(
            "n",
            json!({}),
            json!([{"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"},
                   {"key": TAINT_NOT_READY, "effect": "NoExecute"}]),
        );
        assert_eq!(node_should_run(&cordoned, &plain), RUN);
        // A NoSchedule taint: no new pod, the running one stays.
        let ns = node(
            "n",
            json!({}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        );
        assert_eq!(node_should_run(&ns, &plain), STAY);
        // A NoExecute taint: the pod goes.
        let ne = node(
            "n",
            json!({}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]),
        );
        assert_eq!(node_should_run(&ne, &plain), NO);
        // PreferNoSchedule does not matter.
        let pref = node(
            "n",
            json!({}),
            json!([{"key": "x", "effect": "PreferNoSchedule"}]),
        );
        assert_eq!(node_should_run(&pref, &plain), RUN);
        let tolerant = spec(json!({"containers": [], "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "gpu"}]}));
        assert_eq!(node_should_run(&ne, &tolerant), RUN);
        let wrong_value = spec(json!({"containers": [], "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "cpu"}]}));
        assert_eq!(node_should_run(&ns, &wrong_value), STAY);
        let all = spec(json!({"containers": [], "tolerations": [{"operator": "Exists"}]}));
        assert_eq!(node_should_run(&ne, &all), RUN);
    }

    #[test]
    fn node_affinity_is_replaced_and_read_back() {
        let a: Affinity = serde_json::from_value(json!({
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]},
              "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [{"key": "z", "operator": "Exists"}]}}]},
            "podAntiAffinity": {}
        }))
        .unwrap();
        let out = with_node_affinity(Some(a), "n7");
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(
            v["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]})
        );
        assert!(v["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"].is_array());
        assert!(v["podAntiAffinity"].is_object());
        let pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(out),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        let bound = Pod {
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(target_node(&bound).as_deref(), Some("n1"));
        assert_eq!(target_node(&Pod::default()), None);
    }
}
