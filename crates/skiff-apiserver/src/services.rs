//! Service address allocation, as upstream's Service REST storage does it on create and update:
//! a ClusterIP from the service range (10.43.0.0/16; 10.43.0.1 is the `kubernetes` Service's,
//! 10.43.0.10 is kept for cluster DNS), NodePorts from 30000-32767 for NodePort and
//! LoadBalancer Services, and 422 for an address or port already taken.

use skiff_core::meta::Fields as _;
use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};
use skiff_core::registry::Resource;
use skiff_core::{ApiError, FieldError};
use skiff_store::{ListOptions, ReadAt};

use crate::objects::store_error;
use crate::server::ApiServer;

/// The service range: 10.43.0.0/16.
pub const SERVICE_NET: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 0);
pub const SERVICE_PREFIX: u8 = 16;
/// The `kubernetes` Service's address.
pub const KUBERNETES_SERVICE_IP: &str = "10.43.0.1";
/// Kept for the cluster DNS Service.
pub const DNS_SERVICE_IP: &str = "10.43.0.10";
pub const NODE_PORT_MIN: i64 = 30000;
pub const NODE_PORT_MAX: i64 = 32767;

fn in_range(ip: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - SERVICE_PREFIX);
    (u32::from(ip) & mask) == u32::from(SERVICE_NET)
}

/// What Services hold now.
#[derive(Default)]
struct Taken {
    ips: HashSet<Ipv4Addr>,
    ports: HashSet<(i64, String)>,
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(
        svc.at("spec").field("type").and_then(Value::as_str),
        Some("NodePort") | Some("LoadBalancer")
    )
}

fn cluster_ip(svc: &Value) -> &str {
    svc.at("spec")
        .field("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl ApiServer {
    async fn taken(&self, res: &Resource, except_uid: Option<&str>) -> Result<Taken, ApiError> {
        let page = self
            .store
            .list(ListOptions {
                prefix: res.key_prefix(),
                at: ReadAt::Latest,
                start_after: None,
                limit: 0,
            })
            .await
            .map_err(|e| store_error(res, "", e))?;
        let mut t = Taken::default();
        for kv in page.items {
            let Ok(v) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if except_uid.is_some_and(|u| skiff_core::meta::uid(&v) == u) {
                continue;
            }
            if let Ok(ip) = cluster_ip(&v).parse::<Ipv4Addr>() {
                t.ips.insert(ip);
            }
            for p in v
                .at("spec")
                .field("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(np) = p.get("nodePort").and_then(Value::as_i64) {
                    let proto = p
                        .get("protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("TCP")
                        .to_string();
                    t.ports.insert((np, proto));
                }
            }
        }
        Ok(t)
    }

    /// Assigns a new Service's ClusterIP and NodePorts (or checks the ones it asks for).
    /// `old` is the stored Service on update. Callers hold `service_alloc`.
    pub(crate) async fn allocate_service(
        &self,
        res: &Resource,
        svc: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let name = skiff_core::meta::name(svc).to_string();
        let uid = old.map(|o| skiff_core::meta::uid(o).to_string());
        let taken = self.taken(res, uid.as_deref()).await?;
        let svc_type = svc
            .at("spec")
            .field("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        let mut errors = Vec::new();
        if svc_type != "ExternalName" {
            let wanted = cluster_ip(svc).to_string();
            let old_ip = old.map(cluster_ip).unwrap_or("").to_string();
            if wanted.is_empty() && !old_ip.is_empty() && old_ip != "None" {
                // An update that leaves the address out keeps it, as upstream's
                // patchAllocatedValues does for apply and replace.
                set_cluster_ip(svc, &old_ip);
            } else if wanted.is_empty() {
                match next_free_ip(&taken.ips) {
                    Some(ip) => set_cluster_ip(svc, &ip.to_string()),
                    None => errors.push(FieldError::forbidden(
                        "spec.clusterIPs",
                        "failed to allocate IP: range is full",
                    )),
                }
            } else if wanted != "None" && wanted != old_ip {
                match wanted.parse::<Ipv4Addr>() {
                    Ok(ip) if !in_range(ip) => errors.push(FieldError::invalid(
                        "spec.clusterIPs",
                        json!([wanted]),
                        format!("failed to allocate IP {wanted}: the provided IP ({wanted}) is not in the valid range. The range of valid IPs is {SERVICE_NET}/{SERVICE_PREFIX}"),
                    )),
                    Ok(ip) if taken.ips.contains(&ip) => errors.push(FieldError::invalid(
                        "spec.clusterIPs",
                        json!([wanted]),
                        format!("failed to allocate IP {wanted}: provided IP is already allocated"),
                    )),
                    Ok(_) => set_cluster_ip(svc, &wanted),
                    Err(_) => {} // validation reports the malformed address
                }
            } else if wanted == "None" {
                svc["spec"]["clusterIPs"] = json!(["None"]);
            }
            let ip = cluster_ip(svc).to_string();
            if !ip.is_empty() && ip != "None" {
                let spec = svc["spec"].as_object_mut().expect("spec");
                spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
                spec.entry("ipFamilyPolicy")
                    .or_insert_with(|| json!("SingleStack"));
            }
        }
        if needs_node_ports(svc) {
            if let Some(old) = old.filter(|o| needs_node_ports(o)) {
                keep_node_ports(svc, old);
            }
            let mut used = taken.ports;
            let ports = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut);
            for (i, p) in ports.into_iter().flatten().enumerate() {
                let proto = p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_string();
                match p.get("nodePort").and_then(Value::as_i64) {
                    Some(np) if np != 0 => {
                        if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&np) {
                            errors.push(FieldError::invalid(
                                format!("spec.ports[{i}].nodePort"),
                                np,
                                format!("provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"),
                            ));
                        } else if !used.insert((np, proto)) {
                            errors.push(FieldError::invalid(
                                format!("spec.ports[{i}].nodePort"),
                                np,
                                "provided port is already allocated",
                            ));
                        }
                    }
                    _ => match (NODE_PORT_MIN..=NODE_PORT_MAX)
                        .find(|np| !used.contains(&(*np, proto.clone())))
                    {
                        Some(np) => {
                            used.insert((np, proto));
                            p["nodePort"] = json!(np);
                        }
                        None => errors.push(FieldError::forbidden(
                            format!("spec.ports[{i}].nodePort"),
                            "failed to allocate a nodePort: range is full",
                        )),
                    },
                }
            }
        } else if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            // A ClusterIP Service holds no node ports.
            if svc_type == "ClusterIP" {
                for p in ports {
                    if let Some(o) = p.as_object_mut() {
                        o.remove("nodePort");
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(res, &name, &errors))
        }
    }
}

/// Copies node ports from the stored Service to ports (same port and protocol) that leave
/// them out.
fn keep_node_ports(svc: &mut Value, old: &Value) {
    let old_ports: Vec<(i64, String, i64)> = old
        .at("spec")
        .field("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p.get("port")?.as_i64()?,
                p.get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_string(),
                p.get("nodePort")?.as_i64()?,
            ))
        })
        .collect();
    for p in svc
        .pointer_mut("/spec/ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
            continue;
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        let proto = p
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_string();
        if let Some((_, _, np)) = old_ports
            .iter()
            .find(|(op, pr, _)| *op == port && *pr == proto)
        {
            p["nodePort"] = json!(np);
        }
    }
}

fn set_cluster_ip(svc: &mut Value, ip: &str) {
    svc["spec"]["clusterIP"] = json!(ip);
    svc["spec"]["clusterIPs"] = json!([ip]);
}

/// The lowest free address above the reserved ones, as a bitmap allocator would give.
fn next_free_ip(taken: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let base = u32::from(SERVICE_NET);
    let size = 1u32 << (32 - SERVICE_PREFIX);
    let reserved: [Ipv4Addr; 2] = [
        DNS_SERVICE_IP.parse().expect("ip"),
        KUBERNETES_SERVICE_IP.parse().expect("ip"),
    ];
    // Upstream hands out addresses at random; skip the first 16 (static band) like it does.
    (16..size - 1)
        .map(|o| Ipv4Addr::from(base + o))
        .find(|ip| !taken.contains(ip) && !reserved.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_from_the_dynamic_band() {
        let mut t = HashSet::new();
        assert_eq!(next_free_ip(&t), Some(Ipv4Addr::new(10, 43, 0, 16)));
        t.insert(Ipv4Addr::new(10, 43, 0, 16));
        assert_eq!(next_free_ip(&t), Some(Ipv4Addr::new(10, 43, 0, 17)));
        assert!(in_range(Ipv4Addr::new(10, 43, 255, 254)));
        assert!(!in_range(Ipv4Addr::new(10, 44, 0, 1)));
    }
}
