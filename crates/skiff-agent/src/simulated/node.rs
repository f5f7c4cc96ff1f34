//! What a simulated node reports about itself, as a kubelet registers and reports a Node:
//! labels (`kubernetes.io/hostname`, `…/os`, `…/arch`), taints given at registration
//! (`--register-with-taints`), capacity and allocatable, the four node conditions with the
//! kubelet's reasons and messages, addresses, `nodeInfo`, and the pod CIDR. Pure: no I/O.
//!
//! Addresses are data only: a simulated node's InternalIP comes from 198.18.0.0/15, the range
//! RFC 2544 sets aside for benchmarks, which is never routed; nothing ever sends traffic to it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo,
    Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use skiff_core::validation::names::{is_qualified_name, is_valid_label_value};

/// Node names are this prefix and the node's index.
pub const NAME_PREFIX: &str = "fake-node-";
/// The annotation that stops a node's heartbeats (`stopped`) until it is removed.
pub const HEARTBEAT_ANNOTATION: &str = "sim.skiff.dev/heartbeat";
/// The container runtime a simulated node reports.
pub const RUNTIME_VERSION: &str = "skiff-simulated://0.1";

/// A bad `--fake-node-*` setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("invalid taint {0:?}: expected key=value:Effect or key:Effect")]
    TaintSyntax(String),
    #[error("invalid taint {taint:?}: effect must be NoSchedule, PreferNoSchedule or NoExecute, not {effect:?}")]
    TaintEffect { taint: String, effect: String },
    #[error("invalid taint {taint:?}: {reason}")]
    TaintKey { taint: String, reason: String },
    #[error("invalid capacity {name}={value:?}: {reason}")]
    Capacity {
        name: String,
        value: String,
        reason: String,
    },
    #[error("invalid node label {key}={value:?}: {reason}")]
    Label {
        key: String,
        value: String,
        reason: String,
    },
}

/// Parses `key=value:Effect` or `key:Effect` (the syntax of `kubectl taint` and the kubelet's
/// `--register-with-taints`).
pub fn parse_taint(s: &str) -> Result<Taint, OptionError> {
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| OptionError::TaintSyntax(s.to_string()))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(OptionError::TaintEffect {
            taint: s.to_string(),
            effect: effect.to_string(),
        });
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(OptionError::TaintSyntax(s.to_string()));
    }
    let mut errs = is_qualified_name(key);
    if let Some(v) = value {
        errs.extend(is_valid_label_value(v));
    }
    if !errs.is_empty() {
        return Err(OptionError::TaintKey {
            taint: s.to_string(),
            reason: errs.join("; "),
        });
    }
    Ok(Taint {
        key: key.to_string(),
        value: value.filter(|v| !v.is_empty()).map(str::to_string),
        effect: effect.to_string(),
        time_added: None,
    })
}

/// Checks the capacity quantities.
pub fn check_capacity(capacity: &BTreeMap<String, String>) -> Result<(), OptionError> {
    for (name, value) in capacity {
        let q = skiff_core::validation::quantity::Quantity::parse(value).map_err(|reason| {
            OptionError::Capacity {
                name: name.clone(),
                value: value.clone(),
                reason,
            }
        })?;
        if q.is_negative() {
            return Err(OptionError::Capacity {
                name: name.clone(),
                value: value.clone(),
                reason: "must not be negative".into(),
            });
        }
    }
    Ok(())
}

/// Checks the extra labels.
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), OptionError> {
    for (key, value) in labels {
        let mut errs = is_qualified_name(key);
        errs.extend(is_valid_label_value(value));
        if !errs.is_empty() {
            return Err(OptionError::Label {
                key: key.clone(),
                value: value.clone(),
                reason: errs.join("; "),
            });
        }
    }
    Ok(())
}

/// The name of node `index`.
pub fn name(index: usize) -> String {
    format!("{NAME_PREFIX}{index}")
}

/// The index of a simulated node's name, if it is one of the first `count`.
pub fn index_of(name: &str, count: usize) -> Option<usize> {
    let digits = name.strip_prefix(NAME_PREFIX)?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    let i: usize = digits.parse().ok()?;
    (i < count).then_some(i)
}

/// The InternalIP of node `index`: 198.18.0.0/15 (RFC 2544, never routed), from .0.1 on.
pub fn internal_ip(index: usize) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    Ipv4Addr::from(base + 1 + (index as u32 % ((1 << 17) - 2)))
}

/// The pod CIDR's network address of node `index`: `10.42.N.0/24` for the first 256 nodes,
/// then `/24`s from 10.44.0.0 on (10.43.0.0/16 is the Service range).
pub fn pod_network(index: usize) -> Ipv4Addr {
    if index < 256 {
        return Ipv4Addr::new(10, 42, index as u8, 0);
    }
    let rest = index - 256;
    let second = 44 + (rest / 256).min(255 - 44);
    Ipv4Addr::new(10, second as u8, (rest % 256) as u8, 0)
}

/// The pod CIDR of node `index` as text.
pub fn pod_cidr(index: usize) -> String {
    format!("{}/24", pod_network(index))
}

fn kube_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Everything a simulated node is made of.
#[derive(Debug, Clone)]
pub struct Template {
    pub capacity: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

/// The labels of node `name`: the kubelet's well-known ones, then the user's.
pub fn labels(tpl: &Template, name: &str) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert("kubernetes.io/hostname".to_string(), name.to_string());
    l.insert("kubernetes.io/os".to_string(), "linux".to_string());
    l.insert("kubernetes.io/arch".to_string(), kube_arch().to_string());
    l.insert("beta.kubernetes.io/os".to_string(), "linux".to_string());
    l.insert(
        "beta.kubernetes.io/arch".to_string(),
        kube_arch().to_string(),
    );
    l.insert("type".to_string(), "simulated".to_string());
    for (k, v) in &tpl.labels {
        l.insert(k.clone(), v.clone());
    }
    l
}

/// The Node object registered for node `index`.
pub fn node(tpl: &Template, index: usize, now: &Time) -> Node {
    let name = name(index);
    let cidr = pod_cidr(index);
    Node {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels(tpl, &name)),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.clone()),
            pod_cidrs: Some(vec![cidr]),
            taints: (!tpl.taints.is_empty()).then(|| tpl.taints.clone()),
            ..Default::default()
        }),
        status: Some(status(tpl, index, None, now)),
    }
}

/// The four conditions a healthy kubelet reports, keeping each one's lastTransitionTime from
/// `old` when its status did not change.
pub fn conditions(old: Option<&[NodeCondition]>, now: &Time) -> Vec<NodeCondition> {
    let want = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    want.iter()
        .map(|(t, s, reason, message)| {
            let since = old
                .and_then(|o| o.iter().find(|c| c.type_ == *t))
                .filter(|c| c.status == *s)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            NodeCondition {
                type_: t.to_string(),
                status: s.to_string(),
                reason: Some(reason.to_string()),
                message: Some(message.to_string()),
                last_heartbeat_time: Some(now.clone()),
                last_transition_time: Some(since),
            }
        })
        .collect()
}

/// The node conditions the kubelet owns.
const OWN_CONDITIONS: [&str; 4] = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];

/// Whether `conds` are what a healthy kubelet reports (all four present, pressure False, Ready
/// True): if not, the node's status must be written again (the node lifecycle controller marked
/// it Unknown while its heartbeats were stopped, or someone edited it).
pub fn conditions_healthy(conds: Option<&[NodeCondition]>) -> bool {
    let Some(conds) = conds else { return false };
    ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        .iter()
        .all(|t| {
            conds
                .iter()
                .any(|c| c.type_ == *t && c.status == if *t == "Ready" { "True" } else { "False" })
        })
}

/// The status node `index` reports at `now`, keeping transition times from `old`.
pub fn status(tpl: &Template, index: usize, old: Option<&NodeStatus>, now: &Time) -> NodeStatus {
    let name = name(index);
    let quantities: BTreeMap<String, Quantity> = tpl
        .capacity
        .iter()
        .map(|(k, v)| (k.clone(), Quantity(v.clone())))
        .collect();
    NodeStatus {
        capacity: Some(quantities.clone()),
        allocatable: Some(quantities),
        conditions: Some({
            let old_conds = old.and_then(|s| s.conditions.as_deref());
            let mut c = conditions(old_conds, now);
            // Conditions other components own (NetworkUnavailable, node problem detector's)
            // are kept, as the kubelet keeps them.
            c.extend(
                old_conds
                    .into_iter()
                    .flatten()
                    .filter(|o| !OWN_CONDITIONS.contains(&o.type_.as_str()))
                    .cloned(),
            );
            c
        }),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: internal_ip(index).to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(k8s_openapi::api::core::v1::DaemonEndpoint { port: 10250 }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: kube_arch().to_string(),
            boot_id: format!("simulated-{name}"),
            container_runtime_version: RUNTIME_VERSION.to_string(),
            kernel_version: "simulated".to_string(),
            kube_proxy_version: String::new(),
            kubelet_version: skiff_apiserver::KUBERNETES_VERSION.to_string(),
            machine_id: format!("{:032x}", index),
            operating_system: "linux".to_string(),
            os_image: "Skiff simulated node".to_string(),
            system_uuid: format!("00000000-0000-0000-0000-{:012x}", index),
        }),
        ..old.cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl() -> Template {
        Template {
            capacity: [("cpu", "4"), ("memory", "16Gi"), ("pods", "110")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: BTreeMap::from([("pool".to_string(), "a".to_string())]),
            taints: vec![parse_taint("dedicated=gpu:NoSchedule").unwrap()],
        }
    }

    #[test]
    fn taints_parse_both_forms_and_refuse_bad_ones() {
        let t = parse_taint("dedicated=gpu:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("dedicated", Some("gpu"), "NoSchedule")
        );
        let t = parse_taint("example.com/spot:NoExecute").unwrap();
        assert_eq!((t.key.as_str(), t.value), ("example.com/spot", None));
        assert!(matches!(
            parse_taint("a=b"),
            Err(OptionError::TaintSyntax(_))
        ));
        assert!(matches!(
            parse_taint("a=b:Sometimes"),
            Err(OptionError::TaintEffect { .. })
        ));
        assert!(matches!(
            parse_taint("bad key=x:NoSchedule"),
            Err(OptionError::TaintKey { .. })
        ));
        assert!(parse_taint(":NoSchedule").is_err());
        let msg = parse_taint("a=b:Maybe").unwrap_err().to_string();
        assert!(
            msg.contains("NoSchedule, PreferNoSchedule or NoExecute"),
            "{msg}"
        );
    }

    #[test]
    fn capacity_and_labels_are_checked() {
        assert!(check_capacity(&tpl().capacity).is_ok());
        let bad = BTreeMap::from([("cpu".to_string(), "four".to_string())]);
        assert!(matches!(
            check_capacity(&bad),
            Err(OptionError::Capacity { .. })
        ));
        let bad = BTreeMap::from([("a b".to_string(), "x".to_string())]);
        assert!(check_labels(&bad).is_err());
    }

    #[test]
    fn names_and_addresses_follow_the_index() {
        assert_eq!(name(7), "fake-node-7");
        assert_eq!(index_of("fake-node-7", 10), Some(7));
        assert_eq!(index_of("fake-node-10", 10), None);
        assert_eq!(index_of("fake-node-07", 10), None);
        assert_eq!(index_of("other", 10), None);
        assert_eq!(internal_ip(0), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(internal_ip(300), Ipv4Addr::new(198, 18, 1, 45));
        assert_eq!(pod_cidr(3), "10.42.3.0/24");
        assert_eq!(pod_cidr(255), "10.42.255.0/24");
        assert_eq!(pod_cidr(256), "10.44.0.0/24");
        assert_eq!(pod_cidr(1000), "10.46.232.0/24");
    }

    #[test]
    fn the_registered_node_looks_like_a_kubelets() {
        let now = Time("2026-01-01T00:00:00Z".parse().unwrap());
        let n = node(&tpl(), 2, &now);
        let labels = n.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "fake-node-2");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["pool"], "a");
        let spec = n.spec.as_ref().unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.42.2.0/24"));
        assert_eq!(spec.taints.as_ref().unwrap()[0].key, "dedicated");
        let st = n.status.as_ref().unwrap();
        assert_eq!(st.capacity.as_ref().unwrap()["memory"].0, "16Gi");
        assert_eq!(st.allocatable.as_ref().unwrap()["pods"].0, "110");
        let ready = st
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert!(conditions_healthy(st.conditions.as_deref()));
        let info = st.node_info.as_ref().unwrap();
        assert_eq!(info.container_runtime_version, RUNTIME_VERSION);
        assert!(info.kubelet_version.starts_with("v1.32."));
        assert_eq!(st.addresses.as_ref().unwrap()[0].address, "198.18.0.3");
    }

    #[test]
    fn a_later_report_keeps_transition_times_and_refreshes_heartbeats() {
        let t0 = Time("2026-01-01T00:00:00Z".parse().unwrap());
        let t1 = Time("2026-01-01T00:05:00Z".parse().unwrap());
        let first = status(&tpl(), 0, None, &t0);
        let later = status(&tpl(), 0, Some(&first), &t1);
        for c in later.conditions.as_ref().unwrap() {
            assert_eq!(c.last_transition_time.as_ref(), Some(&t0));
            assert_eq!(c.last_heartbeat_time.as_ref(), Some(&t1));
        }
        // After the lifecycle controller marked it Unknown, Ready transitions again.
        let mut unknown = first.clone();
        for c in unknown.conditions.as_mut().unwrap() {
            c.status = "Unknown".into();
        }
        assert!(!conditions_healthy(unknown.conditions.as_deref()));
        let back = status(&tpl(), 0, Some(&unknown), &t1);
        let ready = back
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.last_transition_time.as_ref(), Some(&t1));

        // Someone else's condition survives a report.
        let mut with_foreign = first.clone();
        with_foreign
            .conditions
            .as_mut()
            .unwrap()
            .push(NodeCondition {
                type_: "NetworkUnavailable".into(),
                status: "False".into(),
                ..Default::default()
            });
        let again = status(&tpl(), 0, Some(&with_foreign), &t1);
        assert_eq!(again.conditions.as_ref().unwrap().len(), 5);
    }
}
