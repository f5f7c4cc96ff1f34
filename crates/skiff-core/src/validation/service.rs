//! Service, Endpoints and EndpointSlice validation, following pkg/apis/core/validation
//! (`ValidateService`, `validateServicePort`, `ValidateServiceClusterIPsRelatedFields`,
//! `validateServiceExternalTrafficPolicy`, `validateUpgradeDowngradeClusterIPs` of
//! `ValidateServiceUpdate`, `validateEndpointSubsets`) and pkg/apis/discovery/validation
//! (`ValidateEndpointSlice`, immutable addressType).

use crate::meta::Fields as _;
use std::collections::HashSet;

use serde_json::{json, Value};

use super::names::{is_dns1123_subdomain, is_valid_port_num};
use super::pod::{port_num_or_name, PROTOCOLS};
use super::{
    arr, child, dns1123_label_field, enum_field, get, immutable, index, int, obj, str_of, sub, Errs,
};
use crate::status::FieldError;

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

fn is_headless(spec: &Value) -> bool {
    str_of(spec, "clusterIP") == "None"
}

fn cluster_ips(spec: &Value) -> Vec<&str> {
    arr(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// `ValidateService` minus metadata.
pub(crate) fn validate_service(svc: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(svc, "spec");
    let ty = str_of(spec, "type");
    let headless = is_headless(spec);
    let ports = arr(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let ips = cluster_ips(spec);
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            ips.first().copied().unwrap_or("None"),
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !ips.is_empty() || !str_of(spec, "clusterIP").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let name = str_of(spec, "externalName");
            let clean = name.strip_suffix('.').unwrap_or(name);
            if clean.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for m in is_dns1123_subdomain(clean) {
                    errs.push(FieldError::invalid("spec.externalName", clean, m));
                }
            }
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let name = str_of(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(child(&pp, "name"), ""));
        } else if !name.is_empty() {
            dns1123_label_field(name, &child(&pp, "name"), &mut errs);
            if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&pp, "name"), name));
            }
        }
        let port = int(p, "port").unwrap_or(0);
        for m in is_valid_port_num(port) {
            errs.push(FieldError::invalid(child(&pp, "port"), port, m));
        }
        enum_field(p, "protocol", &pp, PROTOCOLS, &mut errs);
        if let Some(tp) = get(p, "targetPort") {
            port_num_or_name(tp, &child(&pp, "targetPort"), &mut errs);
        }
        if let Some(ap) = p.field("appProtocol").and_then(Value::as_str) {
            for m in super::names::is_qualified_name(ap) {
                errs.push(FieldError::invalid(child(&pp, "appProtocol"), ap, m));
            }
        }
    }
    errs.extend(super::meta::validate_labels(
        obj(spec, "selector"),
        "spec.selector",
    ));
    match str_of(spec, "sessionAffinity") {
        "" => errs.push(FieldError::required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let t = spec
                .at("sessionAffinityConfig")
                .at("clientIP")
                .field("timeoutSeconds")
                .and_then(Value::as_i64);
            match t {
                None => errs.push(FieldError::required(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    "",
                )),
                Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                )),
                _ => {}
            }
        }
        "None" => {
            if get(spec, "sessionAffinityConfig").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            other,
            &["ClientIP", "None"],
        )),
    }
    validate_cluster_ips(spec, &mut errs);
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let s = ip.as_str().unwrap_or("");
        for m in super::names::is_valid_ip(s) {
            errs.push(FieldError::invalid(index("spec.externalIPs", i), s, m));
        }
    }
    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !SERVICE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, SERVICE_TYPES));
    }
    let mut node_ports = HashSet::new();
    let mut port_keys = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let np = int(p, "nodePort").unwrap_or(0);
        let proto = str_of(p, "protocol");
        if np != 0 {
            if ty == "ClusterIP" {
                errs.push(FieldError::forbidden(
                    child(&pp, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else if !(30000..=32767).contains(&np) {
                errs.push(FieldError::invalid(
                    child(&pp, "nodePort"),
                    np,
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ));
            }
            if !node_ports.insert((proto, np)) {
                errs.push(FieldError::duplicate(child(&pp, "nodePort"), np));
            }
        }
        let port = int(p, "port").unwrap_or(0);
        if !port_keys.insert((proto, port)) {
            errs.push(FieldError::duplicate(
                &pp,
                json!({ "port": port, "protocol": proto }),
            ));
        }
    }
    let ranges = arr(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        let fp = "spec.LoadBalancerSourceRanges";
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                fp,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            let r = r.as_str().unwrap_or("").trim();
            if !super::names::is_valid_cidr(r).is_empty() {
                errs.push(FieldError::invalid(
                    index(fp, i),
                    r,
                    "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ",
                ));
            }
        }
    }
    if get(spec, "allocateLoadBalancerNodePorts").is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    let externally = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty());
    let etp = str_of(spec, "externalTrafficPolicy");
    if !externally {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            etp,
            &["Cluster", "Local"],
        ));
    }
    if let Some(h) = int(spec, "healthCheckNodePort").filter(|h| *h != 0) {
        if !(ty == "LoadBalancer" && etp == "Local") {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                h,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    }
    match spec.field("internalTrafficPolicy").and_then(Value::as_str) {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""))
        }
        Some(p) if p != "Cluster" && p != "Local" => errs.push(FieldError::not_supported(
            "spec.internalTrafficPolicy",
            p,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    errs
}

/// `ValidateServiceClusterIPsRelatedFields`, the parts that need no cluster configuration.
fn validate_cluster_ips(spec: &Value, errs: &mut Errs) {
    let ip = str_of(spec, "clusterIP");
    let ips = cluster_ips(spec);
    if ip.is_empty() && !ips.is_empty() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            json!(ips),
            "must be empty when clusterIP is empty",
        ));
    }
    if !ips.is_empty() && ips[0] != ip {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            json!(ips),
            "first value must match `clusterIP`",
        ));
    }
    for (i, s) in ips.iter().enumerate() {
        if i == 0 && *s == "None" {
            continue;
        }
        for m in super::names::is_valid_ip(s) {
            errs.push(FieldError::invalid(index("spec.clusterIPs", i), *s, m));
        }
    }
    if let Some(p) = spec.field("ipFamilyPolicy").and_then(Value::as_str) {
        const P: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !P.contains(&p) {
            errs.push(FieldError::not_supported("spec.ipFamilyPolicy", p, P));
        }
    }
    for (i, f) in arr(spec, "ipFamilies").iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(
                index("spec.ipFamilies", i),
                f,
                &["IPv4", "IPv6"],
            ));
        }
    }
}

/// `validateUpgradeDowngradeClusterIPs`: the primary clusterIP may not change, except to or
/// from ExternalName. An update that leaves clusterIP empty keeps the allocated one (the
/// registry copies it over before validation).
pub(crate) fn validate_service_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    let ns = sub(new, "spec");
    let os = sub(old, "spec");
    if str_of(ns, "type") == "ExternalName" || str_of(os, "type") == "ExternalName" {
        return errs;
    }
    if is_headless(ns) && is_headless(os) {
        return errs;
    }
    let old_ips = cluster_ips(os);
    let mut new_ips = cluster_ips(ns);
    if new_ips.is_empty() && !str_of(ns, "clusterIP").is_empty() {
        new_ips = vec![str_of(ns, "clusterIP")];
    }
    if new_ips.is_empty() {
        return errs;
    }
    if old_ips.len() == new_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    json!(new_ips),
                    "may not change once set",
                ));
            }
        }
    } else if !old_ips.is_empty() && old_ips[0] != new_ips[0] {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            json!(new_ips),
            "may not change once set",
        ));
    }
    errs
}

/// `ValidateNonSpecialIP`.
fn non_special_ip(s: &str, path: &str, errs: &mut Errs) {
    let Ok(ip) = s.parse::<std::net::IpAddr>() else {
        return;
    };
    let msg = match ip {
        _ if ip.is_unspecified() => Some(format!("may not be unspecified ({s})")),
        _ if ip.is_loopback() => {
            Some("may not be in the loopback range (127.0.0.0/8, ::1/128)".into())
        }
        std::net::IpAddr::V4(v4) if v4.is_link_local() => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)".into())
        }
        std::net::IpAddr::V4(v4) if v4.octets()[..3] == [224, 0, 0] => {
            Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".into())
        }
        std::net::IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)".into())
        }
        _ => None,
    };
    if let Some(m) = msg {
        errs.push(FieldError::invalid(path, s, m));
    }
}

/// `ValidateEndpoints` minus metadata.
pub(crate) fn validate_endpoints(ep: &Value) -> Errs {
    let mut errs = Errs::new();
    for (i, ss) in arr(ep, "subsets").iter().enumerate() {
        let sp = index("subsets", i);
        if arr(ss, "addresses").is_empty() && arr(ss, "notReadyAddresses").is_empty() {
            errs.push(FieldError::required(
                &sp,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for list in ["addresses", "notReadyAddresses"] {
            for (j, a) in arr(ss, list).iter().enumerate() {
                let ap = index(&child(&sp, list), j);
                let ip = str_of(a, "ip");
                let msgs = super::names::is_valid_ip(ip);
                for m in &msgs {
                    errs.push(FieldError::invalid(child(&ap, "ip"), ip, m.clone()));
                }
                if msgs.is_empty() {
                    non_special_ip(ip, &child(&ap, "ip"), &mut errs);
                }
                let h = str_of(a, "hostname");
                if !h.is_empty() {
                    dns1123_label_field(h, &child(&ap, "hostname"), &mut errs);
                }
            }
        }
        let ports = arr(ss, "ports");
        for (j, p) in ports.iter().enumerate() {
            let pp = index(&child(&sp, "ports"), j);
            let name = str_of(p, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(child(&pp, "name"), ""));
            } else if !name.is_empty() {
                dns1123_label_field(name, &child(&pp, "name"), &mut errs);
            }
            let port = int(p, "port").unwrap_or(0);
            for m in is_valid_port_num(port) {
                errs.push(FieldError::invalid(child(&pp, "port"), port, m));
            }
            enum_field(p, "protocol", &pp, PROTOCOLS, &mut errs);
        }
    }
    errs
}

/// `ValidateEndpointSlice` minus metadata.
pub(crate) fn validate_endpoint_slice(es: &Value) -> Errs {
    let mut errs = Errs::new();
    let at = str_of(es, "addressType");
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    if at.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !TYPES.contains(&at) {
        errs.push(FieldError::not_supported("addressType", at, TYPES));
    }
    for (i, e) in arr(es, "endpoints").iter().enumerate() {
        let ep = index("endpoints", i);
        let ap = child(&ep, "addresses");
        let addrs = arr(e, "addresses");
        if addrs.is_empty() {
            errs.push(FieldError::required(&ap, "must contain at least 1 address"));
        } else if addrs.len() > 100 {
            errs.push(FieldError {
                kind: crate::status::FieldErrorKind::TooMany,
                field: ap.clone(),
                detail: "must have at most 100 items".to_string(),
            });
        }
        for (j, a) in addrs.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let p = index(&ap, j);
            match at {
                "IPv4" => {
                    if a.parse::<std::net::Ipv4Addr>().is_err() {
                        errs.push(FieldError::invalid(&p, a, "must be a valid IPv4 address"));
                    } else {
                        non_special_ip(a, &p, &mut errs);
                    }
                }
                "IPv6" => {
                    if a.parse::<std::net::Ipv6Addr>().is_err() {
                        errs.push(FieldError::invalid(&p, a, "must be a valid IPv6 address"));
                    } else {
                        non_special_ip(a, &p, &mut errs);
                    }
                }
                "FQDN" => {
                    for m in is_dns1123_subdomain(a) {
                        errs.push(FieldError::invalid(&p, a, m));
                    }
                }
                _ => {}
            }
        }
        if let Some(n) = e.field("nodeName").and_then(Value::as_str) {
            for m in is_dns1123_subdomain(n) {
                errs.push(FieldError::invalid(child(&ep, "nodeName"), n, m));
            }
        }
        if let Some(h) = e.field("hostname").and_then(Value::as_str) {
            dns1123_label_field(h, &child(&ep, "hostname"), &mut errs);
        }
    }
    let mut names = HashSet::new();
    for (i, p) in arr(es, "ports").iter().enumerate() {
        let pp = index("ports", i);
        let name = str_of(p, "name");
        if !name.is_empty() {
            dns1123_label_field(name, &child(&pp, "name"), &mut errs);
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(&pp, "name"), name));
        }
        enum_field(p, "protocol", &pp, PROTOCOLS, &mut errs);
        if let Some(port) = int(p, "port") {
            for m in is_valid_port_num(port) {
                errs.push(FieldError::invalid(child(&pp, "port"), port, m));
            }
        }
    }
    errs
}

/// `ValidateEndpointSliceUpdate`: addressType is immutable.
pub(crate) fn validate_endpoint_slice_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    immutable(
        sub(new, "addressType"),
        sub(old, "addressType"),
        "addressType",
        &mut errs,
    );
    errs
}
