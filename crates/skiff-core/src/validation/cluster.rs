//! Validation of the RBAC, networking, policy, scheduling, storage, coordination and
//! apiregistration kinds, following upstream's pkg/apis/rbac/validation (`ValidatePolicyRule`,
//! `ValidateRoleBinding*`), pkg/apis/networking/validation (`ValidateIngressSpec`,
//! `validateIngressClassSpec`, `ValidateNetworkPolicySpec`), pkg/apis/policy/validation
//! (`ValidatePodDisruptionBudgetSpec`), pkg/apis/scheduling/validation (`ValidatePriorityClass`
//! and its update), pkg/apis/storage/validation (`ValidateStorageClass` and its update),
//! pkg/apis/coordination/validation (`ValidateLeaseSpec`) and kube-aggregator's
//! `ValidateAPIService`.

use crate::meta::Fields as _;
use serde_json::Value;

use super::names::{
    is_dns1035_label, is_dns1123_subdomain, is_qualified_name, is_valid_path_segment_name,
    is_valid_port_name, is_valid_port_num, is_wildcard_dns1123_subdomain, regex_error,
};
use super::selector::validate_label_selector;
use super::{
    arr, child, get, immutable, index, int, int_or_percent, obj, opt_str, str_of, sub, Errs,
};
use crate::status::FieldError;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `ValidateRole`/`ValidateClusterRole` minus metadata.
pub(crate) fn validate_role(r: &Value, namespaced: bool) -> Errs {
    let mut errs = Errs::new();
    for (i, rule) in arr(r, "rules").iter().enumerate() {
        let p = index("rules", i);
        if arr(rule, "verbs").is_empty() {
            errs.push(FieldError::required(
                child(&p, "verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = arr(rule, "nonResourceURLs");
        if !urls.is_empty() {
            if namespaced {
                errs.push(FieldError::invalid(
                    child(&p, "nonResourceURLs"),
                    Value::Array(urls.to_vec()),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !arr(rule, "apiGroups").is_empty()
                || !arr(rule, "resources").is_empty()
                || !arr(rule, "resourceNames").is_empty()
            {
                errs.push(FieldError::invalid(
                    child(&p, "nonResourceURLs"),
                    Value::Array(urls.to_vec()),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(rule, "apiGroups").is_empty() {
            errs.push(FieldError::required(
                child(&p, "apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr(rule, "resources").is_empty() {
            errs.push(FieldError::required(
                child(&p, "resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    if !namespaced {
        if let Some(ag) = get(r, "aggregationRule") {
            let sels = arr(ag, "clusterRoleSelectors");
            if sels.is_empty() {
                errs.push(FieldError::required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, s) in sels.iter().enumerate() {
                errs.extend(validate_label_selector(
                    s,
                    &index("aggregationRule.clusterRoleSelectors", i),
                ));
            }
        }
    }
    errs
}

/// `ValidateRoleBinding`/`ValidateClusterRoleBinding` minus metadata.
pub(crate) fn validate_role_binding(rb: &Value, namespaced: bool) -> Errs {
    let mut errs = Errs::new();
    let rr = sub(rb, "roleRef");
    let g = str_of(rr, "apiGroup");
    if g != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            g,
            &[RBAC_GROUP],
        ));
    }
    let kind = str_of(rr, "kind");
    if namespaced {
        if kind != "Role" && kind != "ClusterRole" {
            errs.push(FieldError::not_supported(
                "roleRef.kind",
                kind,
                &["Role", "ClusterRole"],
            ));
        }
    } else if kind != "ClusterRole" {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            kind,
            &["ClusterRole"],
        ));
    }
    let name = str_of(rr, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for m in is_valid_path_segment_name(name) {
            errs.push(FieldError::invalid("roleRef.name", name, m));
        }
    }
    for (i, s) in arr(rb, "subjects").iter().enumerate() {
        let p = index("subjects", i);
        let name = str_of(s, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        let group = str_of(s, "apiGroup");
        match str_of(s, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    for m in is_dns1123_subdomain(name) {
                        errs.push(FieldError::invalid(child(&p, "name"), name, m));
                    }
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        child(&p, "apiGroup"),
                        group,
                        &[""],
                    ));
                }
                if !namespaced && str_of(s, "namespace").is_empty() {
                    errs.push(FieldError::required(child(&p, "namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        child(&p, "apiGroup"),
                        group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&p, "kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}

/// RoleBinding updates: roleRef may not change.
pub(crate) fn validate_role_binding_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    if sub(new, "roleRef") != sub(old, "roleRef") {
        errs.push(FieldError::invalid(
            "roleRef",
            sub(new, "roleRef").clone(),
            "cannot change roleRef",
        ));
    }
    errs
}

fn ingress_host(h: &str, path: &str, errs: &mut Errs) {
    if super::names::is_ip(h) {
        errs.push(FieldError::invalid(
            path,
            h,
            "must be a DNS name, not an IP address",
        ));
    }
    let msgs = if h.contains('*') {
        is_wildcard_dns1123_subdomain(h)
    } else {
        is_dns1123_subdomain(h)
    };
    for m in msgs {
        errs.push(FieldError::invalid(path, h, m));
    }
}

fn ingress_backend(b: &Value, path: &str, errs: &mut Errs) {
    let res = get(b, "resource");
    let svc = get(b, "service");
    match (res, svc) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            let rp = child(path, "resource");
            if str_of(r, "kind").is_empty() {
                errs.push(FieldError::required(child(&rp, "kind"), "kind is required"));
            }
            if str_of(r, "name").is_empty() {
                errs.push(FieldError::required(child(&rp, "name"), "name is required"));
            }
        }
        (None, Some(s)) => {
            let name = str_of(s, "name");
            if name.is_empty() {
                errs.push(FieldError::required(format!("{path}.service.name"), ""));
            } else {
                for m in is_dns1035_label(name) {
                    errs.push(FieldError::invalid(format!("{path}.service.name"), name, m));
                }
            }
            let port = sub(s, "port");
            let pname = str_of(port, "name");
            let pnum = int(port, "number").unwrap_or(0);
            if !pname.is_empty() && pnum != 0 {
                errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                ));
            } else if !pname.is_empty() {
                for m in is_valid_port_name(pname) {
                    errs.push(FieldError::invalid(
                        format!("{path}.service.port.name"),
                        pname,
                        m,
                    ));
                }
            } else if pnum != 0 {
                for m in is_valid_port_num(pnum) {
                    errs.push(FieldError::invalid(
                        format!("{path}.service.port.number"),
                        pnum,
                        m,
                    ));
                }
            } else {
                errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                ));
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
}

/// `ValidateIngressSpec` (networking/v1) minus metadata.
pub(crate) fn validate_ingress(ing: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(ing, "spec");
    let rules = arr(spec, "rules");
    if rules.is_empty() && get(spec, "defaultBackend").is_none() {
        errs.push(FieldError::invalid(
            "spec",
            Value::Array(rules.to_vec()),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = get(spec, "defaultBackend") {
        ingress_backend(b, "spec.defaultBackend", &mut errs);
    }
    for (i, r) in rules.iter().enumerate() {
        let rp = index("spec.rules", i);
        let host = str_of(r, "host");
        if !host.is_empty() {
            ingress_host(host, &child(&rp, "host"), &mut errs);
        }
        let Some(http) = get(r, "http") else { continue };
        let hp = child(&rp, "http");
        let paths = arr(http, "paths");
        if paths.is_empty() {
            errs.push(FieldError::required(child(&hp, "paths"), ""));
        }
        for (j, p) in paths.iter().enumerate() {
            let pp = index(&child(&hp, "paths"), j);
            let path = str_of(p, "path");
            match opt_str(p, "pathType") {
                None => {
                    errs.push(FieldError::required(
                        child(&pp, "pathType"),
                        "pathType must be specified",
                    ));
                    continue;
                }
                Some("Exact" | "Prefix") => {
                    if !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            child(&pp, "path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                    for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                        if path.contains(seq) {
                            errs.push(FieldError::invalid(
                                child(&pp, "path"),
                                path,
                                format!("must not contain '{seq}'"),
                            ));
                        }
                    }
                    for suf in ["/..", "/."] {
                        if path.ends_with(suf) {
                            errs.push(FieldError::invalid(
                                child(&pp, "path"),
                                path,
                                format!("cannot end with '{suf}'"),
                            ));
                        }
                    }
                }
                Some("ImplementationSpecific") => {
                    if !path.is_empty() && !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            child(&pp, "path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                }
                Some(other) => errs.push(FieldError::not_supported(
                    child(&pp, "pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            ingress_backend(sub(p, "backend"), &child(&pp, "backend"), &mut errs);
        }
    }
    for (i, t) in arr(spec, "tls").iter().enumerate() {
        for (j, h) in arr(t, "hosts").iter().enumerate() {
            let h = h.as_str().unwrap_or("");
            let p = index(&child(&index("spec.tls", i), "hosts"), j);
            let msgs = if h.contains('*') {
                is_wildcard_dns1123_subdomain(h)
            } else {
                is_dns1123_subdomain(h)
            };
            for m in msgs {
                errs.push(FieldError::invalid(&p, h, m));
            }
        }
    }
    if let Some(c) = opt_str(spec, "ingressClassName") {
        for m in is_dns1123_subdomain(c) {
            errs.push(FieldError::invalid("spec.ingressClassName", c, m));
        }
    }
    errs
}

/// `validateIngressClassSpec` minus metadata.
pub(crate) fn validate_ingress_class(ic: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(ic, "spec");
    let c = str_of(spec, "controller");
    let p = "spec.controller";
    if c.len() > 250 {
        errs.push(FieldError::too_long(p, 250));
    }
    match c.split_once('/') {
        _ if c.is_empty() => errs.push(FieldError::required(p, "")),
        Some((host, path)) if !host.is_empty() && !path.is_empty() => {
            for m in is_dns1123_subdomain(host) {
                errs.push(FieldError::invalid(p, host, m));
            }
            let ok = path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
            if !ok {
                errs.push(FieldError::invalid(
                    p,
                    path,
                    regex_error("Invalid path", "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+", &[]),
                ));
            }
        }
        _ => errs.push(FieldError::invalid(
            p,
            c,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )),
    }
    if let Some(params) = get(spec, "parameters") {
        let pp = "spec.parameters";
        if str_of(params, "kind").is_empty() {
            errs.push(FieldError::required(child(pp, "kind"), ""));
        }
        if str_of(params, "name").is_empty() {
            errs.push(FieldError::required(child(pp, "name"), ""));
        }
        let ns = opt_str(params, "namespace");
        match opt_str(params, "scope") {
            Some("Namespace") if ns.is_none_or(str::is_empty) => {
                errs.push(FieldError::required(
                    child(pp, "namespace"),
                    "`parameters.scope` is set to 'Namespace'",
                ));
            }
            Some("Namespace") => {}
            Some("Cluster") if ns.is_some() => {
                errs.push(FieldError::forbidden(
                    child(pp, "namespace"),
                    "`parameters.scope` is set to 'Cluster'",
                ));
            }
            Some("Cluster") => {}
            Some(other) => errs.push(FieldError::not_supported(
                child(pp, "scope"),
                other,
                &["Cluster", "Namespace"],
            )),
            None => {}
        }
    }
    errs
}

/// IngressClass updates: the controller is immutable.
pub(crate) fn validate_ingress_class_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    immutable(
        sub(sub(new, "spec"), "controller"),
        sub(sub(old, "spec"), "controller"),
        "spec.controller",
        &mut errs,
    );
    errs
}

fn netpol_port(port: &Value, path: &str, errs: &mut Errs) {
    if let Some(proto) = opt_str(port, "protocol") {
        if !["TCP", "UDP", "SCTP"].contains(&proto) {
            errs.push(FieldError::not_supported(
                child(path, "protocol"),
                proto,
                &["TCP", "UDP", "SCTP"],
            ));
        }
    }
    let end = int(port, "endPort");
    match get(port, "port") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for m in is_valid_port_num(n) {
                errs.push(FieldError::invalid(child(path, "port"), n, m));
            }
            if let Some(e) = end {
                if e < n {
                    errs.push(FieldError::invalid(
                        child(path, "endPort"),
                        n,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in is_valid_port_num(e) {
                    errs.push(FieldError::invalid(child(path, "endPort"), e, m));
                }
            }
        }
        Some(Value::String(s)) => {
            if let Some(e) = end {
                errs.push(FieldError::invalid(
                    child(path, "endPort"),
                    e,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for m in is_valid_port_name(s) {
                errs.push(FieldError::invalid(child(path, "port"), s.as_str(), m));
            }
        }
        _ => {
            if let Some(e) = end {
                errs.push(FieldError::invalid(
                    child(path, "endPort"),
                    e,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
}

fn netpol_peer(peer: &Value, path: &str, errs: &mut Errs) {
    let mut n = 0;
    for s in ["podSelector", "namespaceSelector"] {
        if let Some(sel) = get(peer, s) {
            n += 1;
            errs.extend(validate_label_selector(sel, &child(path, s)));
        }
    }
    if let Some(ipb) = get(peer, "ipBlock") {
        n += 1;
        let bp = child(path, "ipBlock");
        let cidr = str_of(ipb, "cidr");
        if cidr.is_empty() {
            errs.push(FieldError::required(child(&bp, "cidr"), ""));
        } else {
            for m in super::names::is_valid_cidr(cidr) {
                errs.push(FieldError::invalid(child(&bp, "cidr"), cidr, m));
            }
        }
        for (i, e) in arr(ipb, "except").iter().enumerate() {
            let e = e.as_str().unwrap_or("");
            for m in super::names::is_valid_cidr(e) {
                errs.push(FieldError::invalid(index(&child(&bp, "except"), i), e, m));
            }
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if n > 1 && get(peer, "ipBlock").is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
}

/// `ValidateNetworkPolicySpec` minus metadata.
pub(crate) fn validate_network_policy(np: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(np, "spec");
    errs.extend(validate_label_selector(
        sub(spec, "podSelector"),
        "spec.podSelector",
    ));
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in arr(spec, dir).iter().enumerate() {
            let rp = index(&child("spec", dir), i);
            for (j, p) in arr(rule, "ports").iter().enumerate() {
                netpol_port(p, &index(&child(&rp, "ports"), j), &mut errs);
            }
            for (j, p) in arr(rule, peers).iter().enumerate() {
                netpol_peer(p, &index(&child(&rp, peers), j), &mut errs);
            }
        }
    }
    let types = arr(spec, "policyTypes");
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.policyTypes",
            Value::Array(types.to_vec()),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or("");
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                index("spec.policyTypes", i),
                t,
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

/// `ValidatePodDisruptionBudgetSpec` minus metadata.
pub(crate) fn validate_pdb(pdb: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(pdb, "spec");
    if get(spec, "minAvailable").is_some() && get(spec, "maxUnavailable").is_some() {
        errs.push(FieldError::invalid(
            "spec",
            spec.clone(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for f in ["minAvailable", "maxUnavailable"] {
        if let Some(v) = get(spec, f) {
            int_or_percent(v, &child("spec", f), &mut errs);
        }
    }
    if let Some(s) = get(spec, "selector") {
        errs.extend(validate_label_selector(s, "spec.selector"));
    }
    if let Some(p) = opt_str(spec, "unhealthyPodEvictionPolicy") {
        if p != "AlwaysAllow" && p != "IfHealthyBudget" {
            errs.push(FieldError::not_supported(
                "spec.unhealthyPodEvictionPolicy",
                p,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
    errs
}

/// The built-in system priority classes and their values.
pub(crate) const SYSTEM_PRIORITY_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];
const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;

/// `ValidatePriorityClass` minus metadata.
pub(crate) fn validate_priority_class(pc: &Value) -> Errs {
    let mut errs = Errs::new();
    let name = crate::meta::name(pc);
    let value = int(pc, "value").unwrap_or(0);
    if name.starts_with("system-") {
        let why = match SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((n, v)) if *v != value => Some(format!("value of {n} PriorityClass must be {v}")),
            Some((n, _)) if pc.field("globalDefault").and_then(Value::as_bool) == Some(true) => {
                Some(format!("globalDefault of {n} PriorityClass must be false"))
            }
            _ => None,
        };
        if let Some(why) = why {
            errs.push(FieldError::forbidden(
                "metadata.name",
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {why}"),
            ));
        }
    } else if value > HIGHEST_USER_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"),
        ));
    }
    if let Some(p) = pc.field("preemptionPolicy") {
        match p.as_str() {
            Some("Never" | "PreemptLowerPriority") => {}
            Some("") => errs.push(FieldError::required("preemptionPolicy", "")),
            _ => errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p.clone(),
                &["Never", "PreemptLowerPriority"],
            )),
        }
    }
    errs
}

/// PriorityClass updates: value and preemptionPolicy are immutable.
pub(crate) fn validate_priority_class_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    if int(new, "value") != int(old, "value") {
        errs.push(FieldError::forbidden(
            "value",
            "may not be changed in an update.",
        ));
    }
    immutable(
        sub(new, "preemptionPolicy"),
        sub(old, "preemptionPolicy"),
        "preemptionPolicy",
        &mut errs,
    );
    errs
}

/// `ValidateStorageClass` minus metadata.
pub(crate) fn validate_storage_class(sc: &Value) -> Errs {
    let mut errs = Errs::new();
    let prov = str_of(sc, "provisioner");
    if prov.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        for m in is_qualified_name(&prov.to_lowercase()) {
            errs.push(FieldError::invalid("provisioner", prov, m));
        }
    }
    let params = obj(sc, "parameters");
    if params.is_some_and(|p| p.len() > 512) {
        errs.push(FieldError {
            kind: crate::status::FieldErrorKind::TooMany,
            field: "parameters".into(),
            detail: "must have at most 512 items".into(),
        });
    }
    let size: usize = params
        .into_iter()
        .flatten()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if size > 256 * 1024 {
        errs.push(FieldError::too_long("parameters", 256 * 1024));
    }
    if let Some(p) = opt_str(sc, "reclaimPolicy") {
        if !p.is_empty() && p != "Delete" && p != "Retain" {
            errs.push(FieldError::not_supported(
                "reclaimPolicy",
                p,
                &["Delete", "Retain"],
            ));
        }
    }
    match opt_str(sc, "volumeBindingMode") {
        None => errs.push(FieldError::required("volumeBindingMode", "")),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(m) => errs.push(FieldError::not_supported(
            "volumeBindingMode",
            m,
            &["Immediate", "WaitForFirstConsumer"],
        )),
    }
    errs
}

/// `ValidateStorageClassUpdate`.
pub(crate) fn validate_storage_class_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    if sub(new, "parameters") != sub(old, "parameters") {
        errs.push(FieldError::forbidden(
            "parameters",
            "updates to parameters are forbidden.",
        ));
    }
    if str_of(new, "provisioner") != str_of(old, "provisioner") {
        errs.push(FieldError::forbidden(
            "provisioner",
            "updates to provisioner are forbidden.",
        ));
    }
    if sub(new, "reclaimPolicy") != sub(old, "reclaimPolicy") {
        errs.push(FieldError::forbidden(
            "reclaimPolicy",
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    immutable(
        sub(new, "volumeBindingMode"),
        sub(old, "volumeBindingMode"),
        "volumeBindingMode",
        &mut errs,
    );
    errs
}

/// `ValidateLeaseSpec`.
pub(crate) fn validate_lease(l: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(l, "spec");
    if let Some(d) = int(spec, "leaseDurationSeconds").filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = int(spec, "leaseTransitions").filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            "spec.leaseTransitions",
            t,
            "must be greater than or equal to 0",
        ));
    }
    errs
}

/// kube-aggregator's `ValidateAPIService` minus the generic metadata rules.
pub(crate) fn validate_api_service(a: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(a, "spec");
    let group = str_of(spec, "group");
    let version = str_of(spec, "version");
    let required = format!("{version}.{group}");
    let name = crate::meta::name(a);
    if !name.is_empty() && is_valid_path_segment_name(name).is_empty() && name != required {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            format!("must be `spec.version+\".\"+spec.group`: {required:?}"),
        ));
    }
    if group.is_empty() && version != "v1" {
        errs.push(FieldError::required(
            "spec.group",
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for m in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid("spec.group", group, m));
        }
    }
    for m in is_dns1035_label(version) {
        errs.push(FieldError::invalid("spec.version", version, m));
    }
    let gpm = int(spec, "groupPriorityMinimum").unwrap_or(0);
    if gpm <= 0 || gpm > 20000 {
        errs.push(FieldError::invalid(
            "spec.groupPriorityMinimum",
            gpm,
            "must be positive and less than 20000",
        ));
    }
    let vp = int(spec, "versionPriority").unwrap_or(0);
    if vp <= 0 || vp > 1000 {
        errs.push(FieldError::invalid(
            "spec.versionPriority",
            vp,
            "must be positive and less than 1000",
        ));
    }
    let ca = str_of(spec, "caBundle");
    let insecure = spec.field("insecureSkipTLSVerify").and_then(Value::as_bool) == Some(true);
    match get(spec, "service") {
        None => {
            if !ca.is_empty() {
                let n = super::core::base64_decode(ca).map_or(ca.len(), |b| b.len());
                errs.push(FieldError::invalid(
                    "spec.caBundle",
                    format!("{n} bytes"),
                    "local APIServices may not have a caBundle",
                ));
            }
            if insecure {
                errs.push(FieldError::invalid(
                    "spec.insecureSkipTLSVerify",
                    true,
                    "local APIServices may not have insecureSkipTLSVerify",
                ));
            }
        }
        Some(svc) => {
            if str_of(svc, "namespace").is_empty() {
                errs.push(FieldError::required("spec.service.namespace", ""));
            }
            if str_of(svc, "name").is_empty() {
                errs.push(FieldError::required("spec.service.name", ""));
            }
            if let Some(p) = int(svc, "port") {
                for m in is_valid_port_num(p) {
                    errs.push(FieldError::invalid("spec.service.port", p, m));
                }
            }
            if insecure && !ca.is_empty() {
                errs.push(FieldError::invalid(
                    "spec.insecureSkipTLSVerify",
                    true,
                    "may not be true if caBundle is present",
                ));
            }
        }
    }
    errs
}
