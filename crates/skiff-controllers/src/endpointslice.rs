//! The EndpointSlices of a Service (upstream's endpointslice controller), computed purely:
//! [`desired`] groups the selected pods by their resolved port set into slices of at most
//! [`MAX_ENDPOINTS_PER_SLICE`] endpoints, and [`plan`] turns existing slices into the updates,
//! creates and deletes that reach them, reusing slices with the same ports so names stay
//! stable. Unlike Endpoints, slices keep terminating pods, with `terminating: true`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::endpoints::{hostname_for, resolve_target_port, HEADLESS_LABEL};
use crate::pods;

/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

type PortKey = Vec<(String, i32, String, Option<String>)>;

fn ports_of(key: &PortKey) -> Vec<EndpointPort> {
    key.iter()
        .map(|(name, port, protocol, app)| EndpointPort {
            name: Some(name.clone()),
            port: Some(*port),
            protocol: Some(protocol.clone()),
            app_protocol: app.clone(),
        })
        .collect()
}

fn key_of_ports(ports: Option<&Vec<EndpointPort>>) -> PortKey {
    let mut k: PortKey = ports
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone(),
            )
        })
        .collect();
    k.sort();
    k
}

/// The labels every slice of `svc` carries.
pub fn labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.metadata.labels.clone().unwrap_or_default();
    l.insert(
        SERVICE_NAME_LABEL.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        l.insert(HEADLESS_LABEL.into(), String::new());
    }
    l
}

/// The slices `svc` should have over `pods` (selected by its selector), without names.
pub fn desired(
    svc: &Service,
    pods: &[Arc<Pod>],
    zone_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<EndpointSlice> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses.unwrap_or(false);
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let ports = spec.ports.unwrap_or_default();
    let mut groups: BTreeMap<PortKey, BTreeMap<String, Endpoint>> = BTreeMap::new();
    for pod in pods {
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        if ip.is_empty() || pods::is_terminal(pod) {
            continue;
        }
        let mut key: PortKey = Vec::new();
        for p in &ports {
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            if let Some(n) = resolve_target_port(pod, p.target_port.as_ref(), p.port, &proto) {
                key.push((
                    p.name.clone().unwrap_or_default(),
                    n,
                    proto,
                    p.app_protocol.clone(),
                ));
            }
        }
        if key.is_empty() && !ports.is_empty() {
            continue;
        }
        key.sort();
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = publish || pods::is_ready(pod);
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let ep = Endpoint {
            addresses: vec![ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(serving && (!terminating || publish)),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: hostname_for(pod, &svc_name),
            zone: node.as_deref().and_then(zone_of),
            node_name: node,
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        groups.entry(key).or_default().insert(ip, ep);
    }
    let labels = labels(svc);
    let mut out = Vec::new();
    for (key, eps) in groups {
        let eps: Vec<Endpoint> = eps.into_values().collect();
        for chunk in eps.chunks(MAX_ENDPOINTS_PER_SLICE) {
            out.push(slice(&labels, &key, chunk.to_vec()));
        }
    }
    // A Service that selects nothing still gets one empty slice with its ports, as upstream.
    if out.is_empty() {
        let mut key: PortKey = ports
            .iter()
            .filter(|p| !matches!(p.target_port, Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(ref s)) if s.parse::<i32>().is_err()))
            .map(|p| {
                let n = match &p.target_port {
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => *n,
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => s.parse().unwrap_or(p.port),
                    None => p.port,
                };
                (p.name.clone().unwrap_or_default(), n, p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.app_protocol.clone())
            })
            .collect();
        key.sort();
        out.push(slice(&labels, &key, Vec::new()));
    }
    out
}

fn slice(
    labels: &BTreeMap<String, String>,
    key: &PortKey,
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    let svc = labels.get(SERVICE_NAME_LABEL).cloned().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{svc}-")),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints,
        ports: Some(ports_of(key)),
    }
}

/// The writes that turn `existing` into `desired`.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<Arc<EndpointSlice>>,
}

/// Matches desired slices to existing ones with the same ports (oldest names first) and
/// says what to write. Unchanged slices are left alone.
pub fn plan(existing: &[Arc<EndpointSlice>], desired: Vec<EndpointSlice>) -> Plan {
    let mut pool: BTreeMap<PortKey, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    let mut sorted: Vec<&Arc<EndpointSlice>> = existing.iter().collect();
    sorted.sort_by_key(|s| s.metadata.name.clone());
    for s in sorted {
        pool.entry(key_of_ports(s.ports.as_ref()))
            .or_default()
            .push(s.clone());
    }
    let mut p = Plan::default();
    for want in desired {
        let k = key_of_ports(want.ports.as_ref());
        let reuse = pool
            .get_mut(&k)
            .and_then(|v| (!v.is_empty()).then(|| v.remove(0)));
        match reuse {
            Some(cur) => {
                if cur.endpoints != want.endpoints
                    || cur.metadata.labels != want.metadata.labels
                    || cur.ports != want.ports
                {
                    let mut next = (*cur).clone();
                    next.endpoints = want.endpoints;
                    next.ports = want.ports;
                    next.metadata.labels = want.metadata.labels;
                    p.update.push(next);
                }
            }
            None => p.create.push(want),
        }
    }
    p.delete = pool.into_values().flatten().collect();
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::tests::{pod, svc};
    use serde_json::json;

    #[test]
    fn slices_carry_conditions_zones_and_terminating_pods() {
        let pods = vec![
            pod("a", "10.42.0.2", true, json!({})),
            pod("b", "10.42.0.3", false, json!({})),
            pod(
                "going",
                "10.42.0.6",
                true,
                json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            ),
        ];
        let s = desired(&svc(json!({})), &pods, &|n| {
            (n == "n1").then(|| "zone-a".to_string())
        });
        assert_eq!(s.len(), 1);
        let eps = &s[0].endpoints;
        assert_eq!(eps.len(), 3);
        let by_ip = |ip: &str| eps.iter().find(|e| e.addresses[0] == ip).unwrap();
        let c = by_ip("10.42.0.2").conditions.clone().unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(true), Some(true), Some(false))
        );
        let c = by_ip("10.42.0.3").conditions.clone().unwrap();
        assert_eq!((c.ready, c.serving), (Some(false), Some(false)));
        let c = by_ip("10.42.0.6").conditions.clone().unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(by_ip("10.42.0.2").zone.as_deref(), Some("zone-a"));
        let l = s[0].metadata.labels.as_ref().unwrap();
        assert_eq!(l[SERVICE_NAME_LABEL], "web");
        assert_eq!(l[MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(s[0].metadata.generate_name.as_deref(), Some("web-"));
    }

    #[test]
    fn many_pods_split_into_slices_of_one_hundred_and_plans_reuse_names() {
        let pods: Vec<_> = (0..250)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.42.{}.{}", i / 200, i % 200 + 1),
                    true,
                    json!({}),
                )
            })
            .collect();
        let s = desired(&svc(json!({})), &pods, &|_| None);
        assert_eq!(
            s.iter().map(|x| x.endpoints.len()).collect::<Vec<_>>(),
            [100, 100, 50]
        );

        // Two existing slices with the same ports are reused (one unchanged), a third created;
        // a slice with other ports is deleted.
        let mut a = s[0].clone();
        a.metadata.name = Some("web-aaaaa".into());
        let mut b = s[1].clone();
        b.metadata.name = Some("web-bbbbb".into());
        b.endpoints.pop();
        let mut stale = s[2].clone();
        stale.metadata.name = Some("web-zzzzz".into());
        stale.ports = Some(vec![]);
        let existing = vec![Arc::new(a), Arc::new(b), Arc::new(stale)];
        let p = plan(&existing, s);
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].metadata.name.as_deref(), Some("web-bbbbb"));
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.delete.len(), 1);
        assert_eq!(p.delete[0].metadata.name.as_deref(), Some("web-zzzzz"));
    }

    #[test]
    fn a_service_selecting_nothing_has_one_empty_slice() {
        let s = desired(&svc(json!({})), &[], &|_| None);
        assert_eq!(s.len(), 1);
        assert!(s[0].endpoints.is_empty());
        assert_eq!(
            s[0].ports.as_ref().unwrap().len(),
            1,
            "named target ports cannot be resolved without pods"
        );
    }
}
