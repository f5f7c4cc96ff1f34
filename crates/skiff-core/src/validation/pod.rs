//! Pod and pod-template validation, following pkg/apis/core/validation: `ValidatePodSpec`,
//! `validateContainers`/`validateInitContainers`, `ValidateVolumes`, `ValidateVolumeMounts`,
//! `validateContainerPorts`, `validateEnv`, `ValidateResourceRequirements`, `validateProbe`,
//! `ValidateTolerations`, `ValidatePodTemplateSpec` and the pod update rules of
//! `ValidatePodUpdate` (only images, activeDeadlineSeconds, added tolerations and removed
//! scheduling gates may change).

use crate::meta::Fields as _;
use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::meta::{validate_annotations, validate_labels};
use super::names::{
    inclusive_range_error, is_config_map_key, is_env_var_name, is_qualified_name,
    is_valid_label_value, is_valid_port_name, is_valid_port_num,
};
use super::quantity::Quantity;
use super::{
    arr, child, child_if, dns1123_label_field, enum_field, get, index, int, key, nonnegative, obj,
    opt_enum_field, str_of, sub, Errs,
};
use crate::status::{FieldError, FieldErrorKind};

pub(crate) const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
pub(crate) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
pub(crate) const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Every volume source field of `VolumeSource`.
pub(crate) const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// A `NotFound` field error (status.rs has no constructor for it).
pub(crate) fn not_found(field: impl Into<String>, value: impl Into<Value>) -> FieldError {
    FieldError {
        kind: FieldErrorKind::NotFound(value.into()),
        field: field.into(),
        detail: String::new(),
    }
}

/// `ValidatePod` minus metadata.
pub(crate) fn validate_pod(pod: &Value) -> Errs {
    validate_pod_spec(sub(pod, "spec"), "spec")
}

/// `ValidatePodTemplateSpec` at `path` (e.g. `spec.template`).
pub(crate) fn validate_pod_template(tpl: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let m = sub(tpl, "metadata");
    errs.extend(validate_labels(obj(m, "labels"), &child(path, "labels")));
    errs.extend(validate_annotations(
        obj(m, "annotations"),
        &child(path, "annotations"),
    ));
    errs.extend(validate_pod_spec(sub(tpl, "spec"), &child(path, "spec")));
    errs
}

/// `ValidatePodSpec`.
pub(crate) fn validate_pod_spec(spec: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let vols = arr(spec, "volumes");
    let volumes = validate_volumes(
        vols,
        &child_if(!vols.is_empty(), path, "volumes"),
        &mut errs,
    );
    let host_network = spec.field("hostNetwork").and_then(Value::as_bool) == Some(true);
    let containers = arr(spec, "containers");
    let cpath = child(path, "containers");
    if containers.is_empty() {
        errs.push(FieldError::required(&cpath, ""));
    }
    let mut names: HashSet<&str> = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(&cpath, i);
        validate_container(c, &p, &volumes, &mut names, host_network, &mut errs);
        if get(c, "restartPolicy").is_some() {
            errs.push(FieldError::forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    let inits = arr(spec, "initContainers");
    let ipath = child_if(!inits.is_empty(), path, "initContainers");
    let mut init_names: HashSet<&str> = containers.iter().map(|c| str_of(c, "name")).collect();
    for (i, c) in inits.iter().enumerate() {
        let p = index(&ipath, i);
        validate_container(c, &p, &volumes, &mut init_names, host_network, &mut errs);
        let sidecar = str_of(c, "restartPolicy") == "Always";
        if get(c, "restartPolicy").is_some() && !sidecar {
            errs.push(FieldError::not_supported(
                child(&p, "restartPolicy"),
                sub(c, "restartPolicy").clone(),
                &["Always"],
            ));
        }
        if !sidecar {
            for probe in [
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
                "lifecycle",
            ] {
                if get(c, probe).is_some() {
                    errs.push(FieldError::forbidden(
                        child(&p, probe),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    enum_field(spec, "restartPolicy", path, RESTART_POLICIES, &mut errs);
    enum_field(spec, "dnsPolicy", path, DNS_POLICIES, &mut errs);
    if str_of(spec, "dnsPolicy") == "None" && get(spec, "dnsConfig").is_none() {
        errs.push(FieldError::required(
            child(path, "dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    let selector = obj(spec, "nodeSelector");
    errs.extend(validate_labels(
        selector,
        &child_if(selector.is_some(), path, "nodeSelector"),
    ));
    for f in ["serviceAccountName", "nodeName", "priorityClassName"] {
        let v = str_of(spec, f);
        if !v.is_empty() {
            for m in super::names::is_dns1123_subdomain(v) {
                errs.push(FieldError::invalid(child(path, f), v, m));
            }
        }
    }
    for f in ["hostname", "subdomain"] {
        let v = str_of(spec, f);
        if !v.is_empty() {
            for m in super::names::is_dns1123_label(v) {
                errs.push(FieldError::invalid(child(path, f), v, m));
            }
        }
    }
    if let Some(n) = int(spec, "activeDeadlineSeconds") {
        if !(1..=i64::from(i32::MAX)).contains(&n) {
            errs.push(FieldError::invalid(
                child(path, "activeDeadlineSeconds"),
                n,
                inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    errs.extend(validate_tolerations(
        arr(spec, "tolerations"),
        &child(path, "tolerations"),
    ));
    if let Some(a) = get(spec, "affinity") {
        errs.extend(super::affinity::validate_affinity(
            a,
            &child(path, "affinity"),
        ));
    }
    let spread = arr(spec, "topologySpreadConstraints");
    errs.extend(super::affinity::validate_topology_spread(
        spread,
        &child_if(!spread.is_empty(), path, "topologySpreadConstraints"),
    ));
    for (i, s) in arr(spec, "imagePullSecrets").iter().enumerate() {
        if str_of(s, "name").is_empty() {
            errs.push(FieldError::required(
                child(&index(&child(path, "imagePullSecrets"), i), "name"),
                "",
            ));
        }
    }
    errs
}

fn validate_container<'a>(
    c: &'a Value,
    p: &str,
    volumes: &HashSet<String>,
    names: &mut HashSet<&'a str>,
    host_network: bool,
    errs: &mut Errs,
) {
    let name = str_of(c, "name");
    if name.is_empty() || !super::names::is_dns1123_label(name).is_empty() {
        dns1123_label_field(name, &child(p, "name"), errs);
    }
    if !name.is_empty() && !names.insert(name) {
        errs.push(FieldError::duplicate(child(p, "name"), name));
    }
    let image = str_of(c, "image");
    if image.is_empty() {
        errs.push(FieldError::required(child(p, "image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            child(p, "image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    enum_field(c, "imagePullPolicy", p, PULL_POLICIES, errs);
    enum_field(
        c,
        "terminationMessagePolicy",
        p,
        TERMINATION_MESSAGE_POLICIES,
        errs,
    );
    let ports = arr(c, "ports");
    if !ports.is_empty() {
        validate_container_ports(ports, &child(p, "ports"), host_network, errs);
    }
    let env = arr(c, "env");
    if !env.is_empty() {
        validate_env(env, &child(p, "env"), errs);
    }
    for (i, e) in arr(c, "envFrom").iter().enumerate() {
        let ep = index(&child(p, "envFrom"), i);
        let prefix = str_of(e, "prefix");
        if !prefix.is_empty() {
            for m in is_env_var_name(prefix) {
                errs.push(FieldError::invalid(child(&ep, "prefix"), prefix, m));
            }
        }
        let n = usize::from(get(e, "configMapRef").is_some())
            + usize::from(get(e, "secretRef").is_some());
        if n == 0 {
            errs.push(FieldError::invalid(
                &ep,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &ep,
                "",
                "may not have more than one field specified at a time",
            ));
        }
        for r in ["configMapRef", "secretRef"] {
            if let Some(rv) = get(e, r) {
                if str_of(rv, "name").is_empty() {
                    errs.push(FieldError::required(child(&child(&ep, r), "name"), ""));
                }
            }
        }
    }
    let mounts = arr(c, "volumeMounts");
    if !mounts.is_empty() {
        validate_volume_mounts(mounts, volumes, &child(p, "volumeMounts"), errs);
    }
    let resources = sub(c, "resources");
    if !resources.is_null() {
        validate_resources(resources, &child(p, "resources"), errs);
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(pr) = get(c, probe) {
            let pp = child(p, probe);
            validate_probe(pr, &pp, errs);
            if probe != "readinessProbe" {
                if let Some(s) = int(pr, "successThreshold") {
                    if s != 1 {
                        errs.push(FieldError::invalid(
                            child(&pp, "successThreshold"),
                            s,
                            "must be 1",
                        ));
                    }
                }
            }
        }
    }
    if let Some(lc) = get(c, "lifecycle") {
        for h in ["postStart", "preStop"] {
            if let Some(hv) = get(lc, h) {
                validate_handler(hv, &child(&child(p, "lifecycle"), h), errs);
            }
        }
    }
}

fn validate_container_ports(ports: &[Value], path: &str, host_network: bool, errs: &mut Errs) {
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = str_of(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(child(&p, "name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        let cp = int(port, "containerPort").unwrap_or(0);
        if cp == 0 {
            errs.push(FieldError::required(child(&p, "containerPort"), ""));
        } else {
            for m in is_valid_port_num(cp) {
                errs.push(FieldError::invalid(child(&p, "containerPort"), cp, m));
            }
        }
        let hp = int(port, "hostPort").unwrap_or(0);
        if hp != 0 {
            for m in is_valid_port_num(hp) {
                errs.push(FieldError::invalid(child(&p, "hostPort"), hp, m));
            }
            if host_network && hp != cp {
                errs.push(FieldError::invalid(
                    child(&p, "hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
        enum_field(port, "protocol", &p, PROTOCOLS, errs);
    }
}

fn validate_env(env: &[Value], path: &str, errs: &mut Errs) {
    for (i, e) in env.iter().enumerate() {
        let p = index(path, i);
        let name = str_of(e, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            for m in is_env_var_name(name) {
                errs.push(FieldError::invalid(child(&p, "name"), name, m));
            }
        }
        let Some(vf) = get(e, "valueFrom") else {
            continue;
        };
        let vp = child(&p, "valueFrom");
        let sources = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ];
        let n = sources.iter().filter(|s| get(vf, s).is_some()).count();
        if n == 0 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        } else if !str_of(e, "value").is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        }
        if let Some(fr) = get(vf, "fieldRef") {
            let fp = child(&vp, "fieldRef");
            if str_of(fr, "apiVersion").is_empty() {
                errs.push(FieldError::required(child(&fp, "apiVersion"), ""));
            }
            let f = str_of(fr, "fieldPath");
            const FIELDS: &[&str] = &[
                "metadata.annotations",
                "metadata.labels",
                "metadata.name",
                "metadata.namespace",
                "metadata.uid",
                "spec.nodeName",
                "spec.serviceAccountName",
                "status.hostIP",
                "status.hostIPs",
                "status.podIP",
                "status.podIPs",
            ];
            let base = f.split_once('[').map_or(f, |(b, _)| b);
            if f.is_empty() {
                errs.push(FieldError::required(child(&fp, "fieldPath"), ""));
            } else if !FIELDS.contains(&base)
                || (f.contains('[') && base != "metadata.labels" && base != "metadata.annotations")
            {
                errs.push(FieldError::not_supported(
                    child(&fp, "fieldPath"),
                    f,
                    FIELDS,
                ));
            }
        }
        if let Some(rf) = get(vf, "resourceFieldRef") {
            let rp = child(&vp, "resourceFieldRef");
            const RES: &[&str] = &[
                "limits.cpu",
                "limits.ephemeral-storage",
                "limits.memory",
                "requests.cpu",
                "requests.ephemeral-storage",
                "requests.memory",
            ];
            let r = str_of(rf, "resource");
            if r.is_empty() {
                errs.push(FieldError::required(child(&rp, "resource"), ""));
            } else if !RES.contains(&r)
                && !r.starts_with("limits.hugepages-")
                && !r.starts_with("requests.hugepages-")
            {
                errs.push(FieldError::not_supported(child(&rp, "resource"), r, RES));
            }
        }
        for r in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(kr) = get(vf, r) {
                let kp = child(&vp, r);
                if str_of(kr, "name").is_empty() {
                    errs.push(FieldError::required(child(&kp, "name"), ""));
                }
                let k = str_of(kr, "key");
                if k.is_empty() {
                    errs.push(FieldError::required(child(&kp, "key"), ""));
                } else {
                    for m in is_config_map_key(k) {
                        errs.push(FieldError::invalid(child(&kp, "key"), k, m));
                    }
                }
            }
        }
    }
}

/// `ValidateVolumes`: returns the declared volume names.
pub(crate) fn validate_volumes(vols: &[Value], path: &str, errs: &mut Errs) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in vols.iter().enumerate() {
        let p = index(path, i);
        validate_volume_source(v, &p, errs);
        let name = str_of(v, "name");
        dns1123_label_field(name, &child(&p, "name"), errs);
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
    }
    names
}

/// Exactly one of `sources` must be set on `v`: returns the one set, if exactly one.
pub(crate) fn one_source<'a>(
    v: &Value,
    sources: &[&'a str],
    path: &str,
    errs: &mut Errs,
) -> Option<&'a str> {
    let mut found: Option<&str> = None;
    for s in sources {
        if get(v, s).is_some() {
            if found.is_some() {
                errs.push(FieldError::forbidden(
                    child(path, s),
                    "may not specify more than 1 volume type",
                ));
            } else {
                found = Some(s);
            }
        }
    }
    if found.is_none() {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    found
}

fn file_mode(v: &Value, k: &str, path: &str, errs: &mut Errs) {
    if let Some(m) = int(v, k) {
        if !(0..=0o777).contains(&m) {
            errs.push(FieldError::invalid(child(path, k), m, FILE_MODE_MSG));
        }
    }
}

/// `validateLocalDescendingPath`.
pub(crate) fn local_descending_path(p: &str, path: &str, errs: &mut Errs) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split(['/', '\\']).any(|s| s == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
}

fn key_to_path_items(v: &Value, path: &str, errs: &mut Errs) {
    for (i, it) in arr(v, "items").iter().enumerate() {
        let ip = index(&child(path, "items"), i);
        if str_of(it, "key").is_empty() {
            errs.push(FieldError::required(child(&ip, "key"), ""));
        }
        let pth = str_of(it, "path");
        if pth.is_empty() {
            errs.push(FieldError::required(child(&ip, "path"), ""));
        } else {
            local_descending_path(pth, &child(&ip, "path"), errs);
        }
        file_mode(it, "mode", &ip, errs);
    }
}

fn validate_volume_source(v: &Value, path: &str, errs: &mut Errs) {
    let Some(src) = one_source(v, VOLUME_SOURCES, path, errs) else {
        return;
    };
    let s = sub(v, src);
    let sp = child(path, src);
    match src {
        "hostPath" => validate_host_path(s, &sp, errs),
        "emptyDir" => {
            if let Some(q) = get(s, "sizeLimit") {
                quantity_nonneg(q, &child(&sp, "sizeLimit"), errs);
            }
            opt_enum_field(s, "medium", &sp, &["", "Memory", "HugePages"], errs);
        }
        "secret" => {
            if str_of(s, "secretName").is_empty() {
                errs.push(FieldError::required(child(&sp, "secretName"), ""));
            }
            file_mode(s, "defaultMode", &sp, errs);
            key_to_path_items(s, &sp, errs);
        }
        "configMap" => {
            if str_of(s, "name").is_empty() {
                errs.push(FieldError::required(child(&sp, "name"), ""));
            }
            file_mode(s, "defaultMode", &sp, errs);
            key_to_path_items(s, &sp, errs);
        }
        "persistentVolumeClaim" if str_of(s, "claimName").is_empty() => {
            errs.push(FieldError::required(child(&sp, "claimName"), ""));
        }
        "nfs" => validate_nfs(s, &sp, errs),
        "downwardAPI" | "projected" => file_mode(s, "defaultMode", &sp, errs),
        "csi" if str_of(s, "driver").is_empty() => {
            errs.push(FieldError::required(child(&sp, "driver"), ""));
        }
        _ => {}
    }
}

pub(crate) fn validate_host_path(s: &Value, sp: &str, errs: &mut Errs) {
    if str_of(s, "path").is_empty() {
        errs.push(FieldError::required(child(sp, "path"), ""));
    }
    if let Some(t) = s.field("type").and_then(Value::as_str) {
        const TYPES: &[&str] = &[
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ];
        if !TYPES.contains(&t) {
            errs.push(FieldError::not_supported(child(sp, "type"), t, TYPES));
        }
    }
}

pub(crate) fn validate_nfs(s: &Value, sp: &str, errs: &mut Errs) {
    if str_of(s, "server").is_empty() {
        errs.push(FieldError::required(child(sp, "server"), ""));
    }
    let p = str_of(s, "path");
    if p.is_empty() {
        errs.push(FieldError::required(child(sp, "path"), ""));
    } else if !p.starts_with('/') {
        errs.push(FieldError::invalid(
            child(sp, "path"),
            p,
            "must be an absolute path",
        ));
    }
}

fn validate_volume_mounts(mounts: &[Value], vols: &HashSet<String>, path: &str, errs: &mut Errs) {
    let mut points = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = index(path, i);
        let name = str_of(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if !vols.contains(name) {
            errs.push(not_found(child(&p, "name"), name));
        }
        let mp = str_of(m, "mountPath");
        if mp.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        }
        if !points.insert(mp) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                mp,
                "must be unique",
            ));
        }
        let subpath = str_of(m, "subPath");
        if !subpath.is_empty() {
            local_descending_path(subpath, &child(&p, "subPath"), errs);
        }
        opt_enum_field(
            m,
            "mountPropagation",
            &p,
            &["Bidirectional", "HostToContainer", "None"],
            errs,
        );
    }
}

/// Parses a quantity field; pushes upstream's parse error on failure.
pub(crate) fn quantity(v: &Value, path: &str, errs: &mut Errs) -> Option<Quantity> {
    let s: std::borrow::Cow<str> = match v {
        Value::String(s) => s.as_str().into(),
        Value::Number(n) => n.to_string().into(),
        other => {
            errs.push(FieldError::invalid(
                path,
                other.clone(),
                super::quantity::FORMAT_ERROR,
            ));
            return None;
        }
    };
    match Quantity::parse(&s) {
        Ok(q) => Some(q),
        Err(e) => {
            errs.push(FieldError::invalid(path, s.as_ref(), e));
            None
        }
    }
}

/// `ValidateNonnegativeQuantity`.
pub(crate) fn quantity_nonneg(v: &Value, path: &str, errs: &mut Errs) -> Option<Quantity> {
    let q = quantity(v, path, errs)?;
    if q.is_negative() {
        errs.push(FieldError::invalid(
            path,
            q.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    Some(q)
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

/// `validateContainerResourceName`.
fn validate_container_resource_name(name: &str, path: &str, errs: &mut Errs) {
    for m in is_qualified_name(name) {
        errs.push(FieldError::invalid(path, name, m));
    }
    if !name.contains('/') {
        if !is_standard_container_resource(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && name.starts_with("requests.") {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// `ValidateResourceRequirements` for a container.
pub(crate) fn validate_resources(r: &Value, path: &str, errs: &mut Errs) {
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    for (k, v) in obj(r, "limits").into_iter().flatten() {
        let p = key(&lim_path, k);
        validate_container_resource_name(k, &p, errs);
        if let Some(q) = resource_quantity(k, v, &p, errs) {
            limits.insert(k, q);
        }
    }
    for (k, v) in obj(r, "requests").into_iter().flatten() {
        let p = key(&req_path, k);
        validate_container_resource_name(k, &p, errs);
        let Some(q) = resource_quantity(k, v, &p, errs) else {
            continue;
        };
        match limits.get(k.as_str()) {
            Some(l) if q != *l && !overcommit_allowed(k) => errs.push(FieldError::invalid(
                &req_path,
                q.to_string(),
                format!("must be equal to {k} limit of {l}"),
            )),
            Some(l) if q > *l => errs.push(FieldError::invalid(
                &req_path,
                q.to_string(),
                format!("must be less than or equal to {k} limit of {l}"),
            )),
            None if !overcommit_allowed(k) => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            _ => {}
        }
    }
}

/// `ValidateResourceQuantityValue`: non-negative, integral for extended resources.
fn resource_quantity(name: &str, v: &Value, path: &str, errs: &mut Errs) -> Option<Quantity> {
    let q = quantity_nonneg(v, path, errs)?;
    if !is_native_resource(name) && q.nanos() % 1_000_000_000 != 0 {
        errs.push(FieldError::invalid(
            path,
            q.to_string(),
            "must be an integer",
        ));
    }
    Some(q)
}

fn validate_probe(pr: &Value, path: &str, errs: &mut Errs) {
    validate_handler(pr, path, errs);
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonnegative(pr, f, path, errs);
    }
    if let Some(n) = int(pr, "terminationGracePeriodSeconds") {
        if n <= 0 {
            errs.push(FieldError::invalid(
                child(path, "terminationGracePeriodSeconds"),
                n,
                "must be greater than 0",
            ));
        }
    }
}

/// `validateHandler`: exactly one handler type.
fn validate_handler(h: &Value, path: &str, errs: &mut Errs) {
    let mut n = 0;
    for t in ["exec", "httpGet", "tcpSocket", "grpc", "sleep"] {
        let Some(v) = get(h, t) else { continue };
        if n > 0 {
            errs.push(FieldError::forbidden(
                child(path, t),
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        n += 1;
        let p = child(path, t);
        match t {
            "exec" => {
                if arr(v, "command").is_empty() {
                    errs.push(FieldError::required(child(&p, "command"), ""));
                }
            }
            "httpGet" => {
                if str_of(v, "path").is_empty() {
                    errs.push(FieldError::required(child(&p, "path"), ""));
                }
                port_num_or_name(sub(v, "port"), &child(&p, "port"), errs);
                if let Some(s) = v.field("scheme").and_then(Value::as_str) {
                    if s != "HTTP" && s != "HTTPS" {
                        errs.push(FieldError::not_supported(
                            child(&p, "scheme"),
                            s,
                            &["HTTP", "HTTPS"],
                        ));
                    }
                }
            }
            "tcpSocket" => port_num_or_name(sub(v, "port"), &child(&p, "port"), errs),
            "grpc" => {
                let port = int(v, "port").unwrap_or(0);
                for m in is_valid_port_num(port) {
                    errs.push(FieldError::invalid(child(&p, "port"), port, m));
                }
            }
            _ => nonnegative(v, "seconds", &p, errs),
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

/// `ValidatePortNumOrName`.
pub(crate) fn port_num_or_name(v: &Value, path: &str, errs: &mut Errs) {
    match v {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            for m in is_valid_port_num(n) {
                errs.push(FieldError::invalid(path, n, m));
            }
        }
        Value::String(s) => {
            for m in is_valid_port_name(s) {
                errs.push(FieldError::invalid(path, s.as_str(), m));
            }
        }
        _ => errs.push(FieldError::invalid(
            path,
            0,
            inclusive_range_error(1, 65535),
        )),
    }
}

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(tols: &[Value], path: &str) -> Errs {
    let mut errs = Errs::new();
    for (i, t) in tols.iter().enumerate() {
        let p = index(path, i);
        let k = str_of(t, "key");
        if !k.is_empty() {
            for m in is_qualified_name(k) {
                errs.push(FieldError::invalid(child(&p, "key"), k, m));
            }
        }
        let op = str_of(t, "operator");
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = str_of(t, "effect");
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = str_of(t, "value");
        match op {
            "" | "Equal" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        t.clone(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                child(&p, "effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
    }
    errs
}

const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`'s spec rules.
pub(crate) fn validate_pod_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    let ns = sub(new, "spec");
    let os = sub(old, "spec");
    match (
        int(ns, "activeDeadlineSeconds"),
        int(os, "activeDeadlineSeconds"),
    ) {
        (Some(n), Some(o)) if n > o => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            n,
            "must be less than or equal to previous value",
        )),
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // An unchanged spec (a status or metadata write) needs no copy to compare.
    if ns == os {
        return errs;
    }
    let (Some(nm), Some(om)) = (ns.as_object(), os.as_object()) else {
        return errs;
    };
    let mut mutated: Map<String, Value> = nm.clone();
    // Copy the mutable parts of the old spec into the new one, then compare.
    for list in ["containers", "initContainers"] {
        let olds = arr(os, list);
        if let Some(Value::Array(cs)) = mutated.get_mut(list) {
            if cs.len() == olds.len() {
                for (c, o) in cs.iter_mut().zip(olds) {
                    if let (Some(c), Some(img)) = (c.as_object_mut(), o.field("image")) {
                        c.insert("image".into(), img.clone());
                    }
                }
            }
        }
    }
    let copy_old = |m: &mut Map<String, Value>, k: &str| match om.get(k) {
        Some(v) => {
            m.insert(k.into(), v.clone());
        }
        None => {
            m.remove(k);
        }
    };
    copy_old(&mut mutated, "activeDeadlineSeconds");
    let old_tols = arr(os, "tolerations");
    if old_tols.iter().all(|t| arr(ns, "tolerations").contains(t)) {
        copy_old(&mut mutated, "tolerations");
    }
    let new_gates = arr(ns, "schedulingGates");
    if new_gates
        .iter()
        .all(|g| arr(os, "schedulingGates").contains(g))
    {
        copy_old(&mut mutated, "schedulingGates");
    }
    if int(os, "terminationGracePeriodSeconds").is_some_and(|g| g < 0)
        && int(ns, "terminationGracePeriodSeconds") == Some(1)
    {
        copy_old(&mut mutated, "terminationGracePeriodSeconds");
    }
    if &mutated != om {
        let changed: Vec<&str> = mutated
            .keys()
            .chain(om.keys())
            .filter(|k| mutated.get(*k) != om.get(*k))
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "{POD_UPDATE_MSG}\n  core.PodSpec{{ changed: {} }}",
                changed.join(", ")
            ),
        ));
    }
    errs
}
