//! Validation of the core/v1 configuration and storage kinds, following
//! pkg/apis/core/validation: `ValidateConfigMap`(+`Update`), `ValidateSecret`(+`Update`),
//! `ValidateNamespace`, `ValidateNode`, `ValidatePersistentVolume`(+`Update`),
//! `ValidatePersistentVolumeClaim`(+`Update`), `ValidateServiceAccount`, `ValidateEventCreate`
//! (core/v1 and events.k8s.io/v1), `ValidateResourceQuota` and `ValidateLimitRange`.

use crate::meta::Fields as _;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::names::{
    is_config_map_key, is_dns1123_subdomain, is_qualified_name, is_valid_label_value,
};
use super::pod::{
    one_source, quantity, quantity_nonneg, validate_host_path, validate_nfs, TAINT_EFFECTS,
};
use super::quantity::Quantity;
use super::selector::validate_label_selector;
use super::{arr, child, flag, get, immutable, index, key, obj, str_of, sub, Errs};
use crate::status::FieldError;

/// Largest total size of ConfigMap or Secret data (`MaxSecretSize`).
pub const MAX_DATA_SIZE: usize = 1024 * 1024;
const REDACTED: &str = "<secret contents redacted>";
const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

/// Decodes standard padded base64 as Go's `StdEncoding` (ignoring CR and LF); the error is
/// Go's `CorruptInputError` message.
pub(crate) fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    let mut pad = 0;
    let mut n = 0usize;
    let mut last_data = 0usize;
    for (i, c) in s.bytes().enumerate() {
        if c == b'\r' || c == b'\n' {
            continue;
        }
        let err = || format!("illegal base64 data at input byte {i}");
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                if n % 4 < 2 {
                    return Err(err());
                }
                pad += 1;
                n += 1;
                continue;
            }
            _ => return Err(err()),
        };
        if pad > 0 {
            return Err(err());
        }
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        n += 1;
        last_data = i;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    if !n.is_multiple_of(4) {
        return Err(format!(
            "illegal base64 data at input byte {}",
            last_data + 1
        ));
    }
    Ok(out)
}

/// Standard padded base64 encoding.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn data_keys(map_name: &str, m: &Value, errs: &mut Errs, base64: bool) -> usize {
    let mut total = 0;
    for (k, v) in obj(m, map_name).into_iter().flatten() {
        let p = key(map_name, k);
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(&p, k.as_str(), msg));
        }
        let s = v.as_str().unwrap_or("");
        if base64 {
            match base64_decode(s) {
                Ok(b) => total += b.len(),
                Err(e) => errs.push(FieldError::invalid(&p, REDACTED, e)),
            }
        } else {
            total += s.len();
        }
    }
    total
}

/// `ValidateConfigMap` minus metadata.
pub(crate) fn validate_config_map(cm: &Value) -> Errs {
    let mut errs = Errs::new();
    let mut total = data_keys("data", cm, &mut errs, false);
    let binary = obj(cm, "binaryData");
    for k in obj(cm, "data").into_iter().flatten().map(|(k, _)| k) {
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                key("data", k),
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
    }
    total += data_keys("binaryData", cm, &mut errs, true);
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
    errs
}

fn immutable_data(new: &Value, old: &Value, fields: &[&str], errs: &mut Errs) {
    if flag(old, "immutable") {
        if !flag(new, "immutable") {
            errs.push(FieldError::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        for f in fields {
            if sub(new, f) != sub(old, f) {
                errs.push(FieldError::forbidden(
                    *f,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
}

/// `ValidateConfigMapUpdate`.
pub(crate) fn validate_config_map_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    immutable_data(new, old, &["data", "binaryData"], &mut errs);
    errs
}

/// `ValidateSecret` minus metadata.
pub(crate) fn validate_secret(s: &Value) -> Errs {
    let mut errs = Errs::new();
    let total = data_keys("data", s, &mut errs, true);
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
    }
    let data = obj(s, "data");
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let decoded = |k: &str| {
        data.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .and_then(|v| base64_decode(v).ok())
    };
    match str_of(s, "type") {
        "kubernetes.io/service-account-token" => {
            let ann = sub(sub(s, "metadata"), "annotations");
            if str_of(ann, "kubernetes.io/service-account.name").is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let k = if t.ends_with("json") {
                ".dockerconfigjson"
            } else {
                ".dockercfg"
            };
            if !has(k) {
                errs.push(FieldError::required(key("data", k), ""));
            } else if let Some(b) = decoded(k) {
                if let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(&b) {
                    errs.push(FieldError::invalid(key("data", k), REDACTED, e.to_string()));
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required("data[username]", ""));
            errs.push(FieldError::required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if decoded("ssh-privatekey").is_none_or(|b| b.is_empty()) => {
            errs.push(FieldError::required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                errs.push(FieldError::required("data[tls.crt]", ""));
            }
            if !has("tls.key") {
                errs.push(FieldError::required("data[tls.key]", ""));
            }
        }
        _ => {}
    }
    errs
}

/// `ValidateSecretUpdate`.
pub(crate) fn validate_secret_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    immutable(sub(new, "type"), sub(old, "type"), "type", &mut errs);
    immutable_data(new, old, &["data"], &mut errs);
    errs
}

/// `ValidateNamespace` minus metadata.
pub(crate) fn validate_namespace(ns: &Value) -> Errs {
    let mut errs = Errs::new();
    for (i, f) in arr(sub(ns, "spec"), "finalizers").iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        let p = index("spec.finalizers", i);
        for m in is_qualified_name(f) {
            errs.push(FieldError::invalid(&p, f, m));
        }
        if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
            errs.push(FieldError::invalid(
                &p,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}

/// `ValidateNode` minus metadata: taints and pod CIDRs.
pub(crate) fn validate_node(n: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(n, "spec");
    let mut seen = BTreeSet::new();
    for (i, t) in arr(spec, "taints").iter().enumerate() {
        let p = index("spec.taints", i);
        let k = str_of(t, "key");
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(child(&p, "key"), k, m));
        }
        let v = str_of(t, "value");
        let msgs = is_valid_label_value(v);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(child(&p, "value"), v, msgs.join(";")));
        }
        let e = str_of(t, "effect");
        if e.is_empty() {
            errs.push(FieldError::required(child(&p, "effect"), ""));
        } else if !TAINT_EFFECTS.contains(&e) {
            errs.push(FieldError::not_supported(
                child(&p, "effect"),
                e,
                TAINT_EFFECTS,
            ));
        }
        if !seen.insert((k, e)) {
            errs.push(FieldError::duplicate(&p, t.clone()));
        }
    }
    for (i, c) in arr(spec, "podCIDRs").iter().enumerate() {
        let c = c.as_str().unwrap_or("");
        for m in super::names::is_valid_cidr(c) {
            errs.push(FieldError::invalid(index("spec.podCIDRs", i), c, m));
        }
    }
    errs
}

const PV_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "iscsi",
    "cinder",
    "cephfs",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

fn access_modes(spec: &Value, errs: &mut Errs, required_detail: &str) {
    let modes = arr(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required("spec.accessModes", required_detail));
    }
    let mut rwop = false;
    let mut other = false;
    for m in modes {
        let s = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&s) {
            errs.push(FieldError::not_supported(
                "spec.accessModes",
                m.clone(),
                ACCESS_MODES,
            ));
        }
        if s == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn class_name(spec: &Value, errs: &mut Errs) {
    let c = str_of(spec, "storageClassName");
    if !c.is_empty() {
        for m in is_dns1123_subdomain(c) {
            errs.push(FieldError::invalid("spec.storageClassName", c, m));
        }
    }
}

fn positive_quantity(v: &Value, path: &str, errs: &mut Errs) {
    if let Some(q) = quantity(v, path, errs) {
        if q.nanos() <= 0 {
            errs.push(FieldError::invalid(
                path,
                q.to_string(),
                "must be greater than zero",
            ));
        }
    }
}

/// `ValidatePersistentVolume` minus metadata.
pub(crate) fn validate_persistent_volume(pv: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(pv, "spec");
    access_modes(spec, &mut errs, "");
    let cap = obj(spec, "capacity");
    if cap.is_none_or(|c| c.is_empty()) {
        errs.push(FieldError::required("spec.capacity", ""));
    }
    if !cap.is_some_and(|c| c.contains_key("storage")) || cap.is_some_and(|c| c.len() > 1) {
        errs.push(FieldError::not_supported(
            "spec.capacity",
            Value::Object(cap.cloned().unwrap_or_default()),
            &["storage"],
        ));
    }
    for (k, v) in cap.into_iter().flatten() {
        positive_quantity(v, &key("spec.capacity", k), &mut errs);
    }
    class_name(spec, &mut errs);
    if let Some(m) = spec.field("volumeMode").and_then(Value::as_str) {
        if !VOLUME_MODES.contains(&m) {
            errs.push(FieldError::not_supported(
                "spec.volumeMode",
                m,
                VOLUME_MODES,
            ));
        }
    }
    match one_source(spec, PV_SOURCES, "spec", &mut errs) {
        Some("hostPath") => validate_host_path(sub(spec, "hostPath"), "spec.hostPath", &mut errs),
        Some("nfs") => validate_nfs(sub(spec, "nfs"), "spec.nfs", &mut errs),
        Some("local") => {
            if str_of(sub(spec, "local"), "path").is_empty() {
                errs.push(FieldError::required("spec.local.path", ""));
            }
            if get(spec, "nodeAffinity").is_none() {
                errs.push(FieldError::required(
                    "spec.nodeAffinity",
                    "Local volume requires node affinity",
                ));
            }
        }
        Some("csi") => {
            let c = sub(spec, "csi");
            if str_of(c, "driver").is_empty() {
                errs.push(FieldError::required("spec.csi.driver", ""));
            }
            if str_of(c, "volumeHandle").is_empty() {
                errs.push(FieldError::required("spec.csi.volumeHandle", ""));
            }
        }
        _ => {}
    }
    let policy = str_of(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !["Delete", "Recycle", "Retain"].contains(&policy) {
        errs.push(FieldError::not_supported(
            "spec.persistentVolumeReclaimPolicy",
            policy,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    if policy == "Recycle"
        && str_of(sub(spec, "hostPath"), "path")
            .trim_end_matches('/')
            .is_empty()
        && get(spec, "hostPath").is_some()
    {
        errs.push(FieldError::forbidden(
            "spec.persistentVolumeReclaimPolicy",
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }
    errs
}

/// `ValidatePersistentVolumeUpdate`: the volume source and mode are immutable.
pub(crate) fn validate_persistent_volume_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    let ns = sub(new, "spec");
    let os = sub(old, "spec");
    if PV_SOURCES.iter().any(|s| sub(ns, s) != sub(os, s)) {
        errs.push(FieldError::forbidden(
            "spec.persistentvolumesource",
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    immutable(
        sub(ns, "volumeMode"),
        sub(os, "volumeMode"),
        "volumeMode",
        &mut errs,
    );
    if get(os, "nodeAffinity").is_some() {
        immutable(
            sub(ns, "nodeAffinity"),
            sub(os, "nodeAffinity"),
            "nodeAffinity",
            &mut errs,
        );
    }
    errs
}

/// `ValidatePersistentVolumeClaim` minus metadata.
pub(crate) fn validate_persistent_volume_claim(pvc: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(pvc, "spec");
    access_modes(spec, &mut errs, "at least 1 access mode is required");
    if let Some(s) = get(spec, "selector") {
        errs.extend(validate_label_selector(s, "spec.selector"));
    }
    match sub(sub(spec, "resources"), "requests").field("storage") {
        None => errs.push(FieldError::required("spec.resources[storage]", "")),
        Some(v) => positive_quantity(v, "spec.resources[storage]", &mut errs),
    }
    class_name(spec, &mut errs);
    if let Some(m) = spec.field("volumeMode").and_then(Value::as_str) {
        if !VOLUME_MODES.contains(&m) {
            errs.push(FieldError::not_supported(
                "spec.volumeMode",
                m,
                VOLUME_MODES,
            ));
        }
    }
    errs
}

fn storage_request(pvc: &Value) -> Option<Quantity> {
    let v = pvc.pointer("/spec/resources/requests/storage")?;
    Quantity::parse(v.as_str()?).ok()
}

/// `ValidatePersistentVolumeClaimUpdate`: the spec is immutable except a one-time volumeName
/// binding and, for bound claims, the storage request (which may not shrink).
pub(crate) fn validate_persistent_volume_claim_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    let mut ns = sub(new, "spec").clone();
    let mut os = sub(old, "spec").clone();
    if str_of(&os, "volumeName").is_empty() {
        if let (Some(o), Some(v)) = (os.as_object_mut(), ns.field("volumeName")) {
            o.insert("volumeName".into(), v.clone());
        }
    }
    for s in [&mut ns, &mut os] {
        if let Some(o) = s.as_object_mut() {
            o.remove("volumeAttributesClassName");
        }
    }
    if str_of(sub(new, "status"), "phase") == "Bound" {
        if let Some(Value::Object(req)) = ns.pointer_mut("/resources/requests") {
            match old.pointer("/spec/resources/requests/storage") {
                Some(v) => {
                    req.insert("storage".into(), v.clone());
                }
                None => {
                    req.remove("storage");
                }
            }
        }
    }
    if ns != os {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    if let (Some(n), Some(o)) = (storage_request(new), storage_request(old)) {
        if n < o {
            errs.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than previous value",
            ));
        }
    }
    immutable(
        sub(sub(new, "spec"), "volumeMode"),
        sub(sub(old, "spec"), "volumeMode"),
        "volumeMode",
        &mut errs,
    );
    errs
}

/// `ValidateServiceAccount` minus metadata: referenced secrets need names.
pub(crate) fn validate_service_account(sa: &Value) -> Errs {
    let mut errs = Errs::new();
    for (list, path) in [
        ("secrets", "secrets"),
        ("imagePullSecrets", "imagePullSecrets"),
    ] {
        for (i, s) in arr(sa, list).iter().enumerate() {
            if str_of(s, "name").is_empty() {
                errs.push(FieldError::required(child(&index(path, i), "name"), ""));
            }
        }
    }
    errs
}

fn involved_namespace(ev_ns: &str, obj_ns: &str, new_style: bool, errs: &mut Errs) {
    let ok = if new_style {
        !obj_ns.is_empty() || ev_ns == "default" || ev_ns == "kube-system"
    } else if obj_ns.is_empty() {
        ev_ns.is_empty() || ev_ns == "default"
    } else {
        ev_ns == obj_ns
    };
    if !ok {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            obj_ns,
            "does not match event.namespace",
        ));
    }
}

/// core/v1 `ValidateEventCreate` (the legacy rules).
pub(crate) fn validate_event(ev: &Value) -> Errs {
    let mut errs = Errs::new();
    let ns = crate::meta::namespace(ev);
    let obj_ns = str_of(sub(ev, "involvedObject"), "namespace");
    let new_style = !str_of(ev, "eventTime").is_empty();
    involved_namespace(ns, obj_ns, new_style, &mut errs);
    if new_style {
        new_style_fields(ev, "reportingComponent", "message", &mut errs);
    }
    errs
}

fn new_style_fields(ev: &Value, controller_field: &str, note_field: &str, errs: &mut Errs) {
    let rc = str_of(ev, controller_field);
    if rc.is_empty() {
        errs.push(FieldError::required(controller_field, ""));
    }
    for m in is_qualified_name(rc) {
        errs.push(FieldError::invalid(controller_field, rc, m));
    }
    for (f, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
        let v = str_of(ev, f);
        if v.is_empty() {
            errs.push(FieldError::required(f, ""));
        }
        if v.len() > limit {
            errs.push(FieldError::invalid(
                f,
                "",
                format!("can have at most {limit} characters"),
            ));
        }
    }
    if str_of(ev, note_field).len() > 1024 {
        errs.push(FieldError::invalid(
            note_field,
            "",
            "can have at most 1024 characters",
        ));
    }
}

/// events.k8s.io/v1 `ValidateEventCreate` (strict rules), on the events.k8s.io shape; paths
/// use the core field names, as upstream validates the internal type.
pub(crate) fn validate_events_event(ev: &Value) -> Errs {
    let mut errs = Errs::new();
    let ns = crate::meta::namespace(ev);
    let obj_ns = str_of(sub(ev, "regarding"), "namespace");
    if str_of(ev, "eventTime").is_empty() {
        involved_namespace(ns, obj_ns, false, &mut errs);
        errs.push(FieldError::required("eventTime", ""));
    } else {
        involved_namespace(ns, obj_ns, true, &mut errs);
        new_style_fields(ev, "reportingController", "note", &mut errs);
    }
    let t = str_of(ev, "type");
    if t != "Normal" && t != "Warning" {
        errs.push(FieldError::invalid(
            "type",
            "",
            format!("has invalid value: {t}"),
        ));
    }
    for (f, core) in [
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
    ] {
        if get(ev, f).is_some() {
            errs.push(FieldError::invalid(core, "", "needs to be unset"));
        }
    }
    if ev
        .field("deprecatedCount")
        .and_then(Value::as_i64)
        .is_some_and(|c| c != 0)
    {
        errs.push(FieldError::invalid("count", "", "needs to be unset"));
    }
    let src = sub(ev, "deprecatedSource");
    if !str_of(src, "component").is_empty() || !str_of(src, "host").is_empty() {
        errs.push(FieldError::invalid("source", "", "needs to be unset"));
    }
    if let Some(s) = get(ev, "series") {
        if s.field("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if str_of(s, "lastObservedTime").is_empty() {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    errs
}

fn is_standard_quota_resource(name: &str) -> bool {
    const STD: &[&str] = &[
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
        "cpu",
        "memory",
        "ephemeral-storage",
        "storage",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
    ];
    STD.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
        || name.starts_with("limits.hugepages-")
}

/// `ValidateResourceQuota` minus metadata: hard resource names and quantities, scopes.
pub(crate) fn validate_resource_quota(rq: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(rq, "spec");
    for (k, v) in obj(spec, "hard").into_iter().flatten() {
        let p = key("spec.hard", k);
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(&p, k.as_str(), m));
        }
        if !k.contains('/') && !is_standard_quota_resource(k) {
            errs.push(FieldError::invalid(
                &p,
                k.as_str(),
                "must be a standard resource for quota",
            ));
        }
        quantity_nonneg(v, &p, &mut errs);
    }
    const SCOPES: &[&str] = &[
        "BestEffort",
        "CrossNamespacePodAffinity",
        "NotBestEffort",
        "NotTerminating",
        "PriorityClass",
        "Terminating",
    ];
    for s in arr(spec, "scopes") {
        let s = s.as_str().unwrap_or("");
        if !SCOPES.contains(&s) {
            errs.push(FieldError::not_supported("spec.scopes", s, SCOPES));
        }
    }
    errs
}

/// Which side of a [`LimitOrder`] check an error shows as its value.
enum Shown {
    Lower,
    Upper,
}

/// One of `ValidateLimitRange`'s order checks between two quantities of a resource: the
/// field the error sits under, the lower and upper values (when both are set), the value shown,
/// and the message.
type LimitOrder = (
    &'static str,
    Option<Quantity>,
    Option<Quantity>,
    Shown,
    fn(Quantity, Quantity) -> String,
);

/// `ValidateLimitRange` minus metadata.
pub(crate) fn validate_limit_range(lr: &Value) -> Errs {
    let mut errs = Errs::new();
    let mut types = BTreeSet::new();
    for (i, l) in arr(sub(lr, "spec"), "limits").iter().enumerate() {
        let p = index("spec.limits", i);
        let t = str_of(l, "type");
        for m in is_qualified_name(t) {
            errs.push(FieldError::invalid(child(&p, "type"), t, m));
        }
        if !t.contains('/') && !matches!(t, "Pod" | "Container" | "PersistentVolumeClaim") {
            errs.push(FieldError::invalid(
                child(&p, "type"),
                t,
                "must be a standard limit type or fully qualified",
            ));
        }
        if !types.insert(t) {
            errs.push(FieldError::duplicate(child(&p, "type"), t));
        }
        let mut q: BTreeMap<&str, BTreeMap<&str, Quantity>> = BTreeMap::new();
        for f in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            for (k, v) in obj(l, f).into_iter().flatten() {
                if let Some(x) = quantity_nonneg(v, &key(&child(&p, f), k), &mut errs) {
                    q.entry(f).or_default().insert(k, x);
                }
            }
        }
        if t == "Pod" {
            for f in ["default", "defaultRequest"] {
                if obj(l, f).is_some_and(|m| !m.is_empty()) {
                    errs.push(FieldError::forbidden(
                        child(&p, f),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
        }
        let keys: BTreeSet<&str> = q.values().flat_map(|m| m.keys().copied()).collect();
        let g = |f: &str, k: &str| q.get(f).and_then(|m| m.get(k)).copied();
        for k in keys {
            let (min, max, def, req) = (
                g("min", k),
                g("max", k),
                g("default", k),
                g("defaultRequest", k),
            );
            // Upstream's pairwise checks, in its order: the lower value may not exceed the upper
            // one; the error sits under `field` and shows the value `shown` picks.
            let checks: [LimitOrder; 6] = [
                ("min", min, max, Shown::Lower, |lo, hi| {
                    format!("min value {lo} is greater than max value {hi}")
                }),
                ("defaultRequest", min, req, Shown::Upper, |lo, hi| {
                    format!("min value {lo} is greater than default request value {hi}")
                }),
                ("defaultRequest", req, max, Shown::Lower, |lo, hi| {
                    format!("default request value {lo} is greater than max value {hi}")
                }),
                ("defaultRequest", req, def, Shown::Lower, |lo, hi| {
                    format!("default request value {lo} is greater than default limit value {hi}")
                }),
                ("default", min, def, Shown::Lower, |lo, hi| {
                    format!("min value {lo} is greater than default value {hi}")
                }),
                ("default", def, max, Shown::Upper, |lo, hi| {
                    format!("default value {lo} is greater than max value {hi}")
                }),
            ];
            for (f, lower, upper, shown, msg) in checks {
                if let (Some(lo), Some(hi)) = (lower, upper) {
                    if lo > hi {
                        let shown = match shown {
                            Shown::Lower => lo,
                            Shown::Upper => hi,
                        };
                        errs.push(FieldError::invalid(
                            key(&child(&p, f), k),
                            shown.to_string(),
                            msg(lo, hi),
                        ));
                    }
                }
            }
        }
    }
    errs
}
