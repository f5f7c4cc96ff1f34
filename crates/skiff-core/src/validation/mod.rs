//! Validation of built-in kinds, as upstream's `Validate<Kind>` and `Validate<Kind>Update`
//! functions (pkg/apis/*/validation and the registry strategies' `Validate`/`ValidateUpdate`),
//! returning `field.Error`s with upstream's paths, reasons and messages.
//!
//! One submodule per API area; [`validate_create`] and [`validate_update`] dispatch on the
//! resource's group and kind. Objects arrive defaulted (see [`crate::defaults`]) and with the
//! server-filled metadata (name, namespace, uid, creationTimestamp).

use crate::meta::Fields as _;
use serde_json::{Map, Value};

use crate::meta::lookup;
use crate::registry::Resource;
use crate::status::FieldError;

mod affinity;
mod batch;
mod cluster;
pub(crate) mod core;
mod cron;
mod meta;
pub mod names;
mod pod;
pub mod quantity;
mod selector;
mod service;
mod workloads;

pub(crate) use pod::VOLUME_SOURCES;

pub use names::{
    is_config_map_key, is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value, name_is_dns1035_label, name_is_dns_label, name_is_dns_subdomain,
    name_is_path_segment, TOTAL_ANNOTATION_SIZE_LIMIT,
};
pub use quantity::Quantity;

/// A list of field errors.
pub(crate) type Errs = Vec<FieldError>;

/// Upstream's name-validation function type: `(name, isPrefix) -> messages`.
pub(crate) type NameFn = fn(&str, bool) -> Vec<String>;

/// Field errors of a new object.
pub fn validate_create(res: &Resource, obj: &Value) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(obj, res.namespaced, name_fn(res), "metadata");
    errs.extend(kind_create(res, obj, None));
    errs
}

/// Field errors of an update (`old` is the stored object): the create rules, the metadata
/// update rules and each kind's immutable fields.
pub fn validate_update(res: &Resource, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(new, res.namespaced, name_fn(res), "metadata");
    errs.extend(meta::validate_object_meta_update(new, old, "metadata"));
    // What was valid when stored stays valid: a write that changes only the status of a
    // built-in kind (the status subresource's common case) is not validated as a whole again,
    // as upstream's status strategies validate only the status update.
    if res.custom.is_some() || !only_status_differs(new, old) {
        errs.extend(kind_create(res, new, Some(old)));
    }
    errs.extend(kind_update(res, new, old));
    errs
}

/// Whether `new` and `old` are equal but for `status` and the metadata the server itself
/// keeps (managedFields, resourceVersion).
fn only_status_differs(new: &Value, old: &Value) -> bool {
    let (Some(n), Some(o)) = (new.as_object(), old.as_object()) else {
        return false;
    };
    let same = |k: &str| k == "status" || n.get(k) == o.get(k);
    let meta_same = || {
        let (Some(nm), Some(om)) = (
            n.field("metadata").and_then(Value::as_object),
            o.field("metadata").and_then(Value::as_object),
        ) else {
            return false;
        };
        let kept = |k: &str| matches!(k, "managedFields" | "resourceVersion");
        nm.iter().all(|(k, v)| kept(k) || om.get(k) == Some(v))
            && om.iter().all(|(k, _)| kept(k) || nm.contains_key(k))
    };
    n.keys().all(|k| k == "metadata" || same(k))
        && o.keys()
            .all(|k| k == "metadata" || k == "status" || n.contains_key(k))
        && meta_same()
}

/// The name function upstream uses for the kind's `metadata.name`.
fn name_fn(res: &Resource) -> NameFn {
    match (res.group, res.kind) {
        ("", "Namespace") => names::name_is_dns_label,
        ("", "Service") => names::name_is_dns1035_label,
        ("rbac.authorization.k8s.io", _) => names::name_is_path_segment,
        ("apiregistration.k8s.io", "APIService") => names::name_is_path_segment,
        _ => names::name_is_dns_subdomain,
    }
}

fn kind_create(res: &Resource, obj: &Value, old: Option<&Value>) -> Errs {
    if let Some(info) = res.custom {
        return crate::crd::validate_object(info, obj);
    }
    match (res.group, res.kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crate::crd::validate_crd(obj),
        ("", "Pod") => pod::validate_pod(obj),
        ("", "ReplicationController") => workloads::validate_replication_controller(obj),
        ("apps", "Deployment") => workloads::validate_deployment(obj),
        ("apps", "ReplicaSet") => workloads::validate_replica_set(obj),
        ("apps", "StatefulSet") => workloads::validate_stateful_set(obj),
        ("apps", "DaemonSet") => workloads::validate_daemon_set(obj),
        ("apps", "ControllerRevision") => workloads::validate_controller_revision(obj),
        ("batch", "Job") => batch::validate_job(obj),
        ("batch", "CronJob") => batch::validate_cron_job(obj, old),
        ("", "Service") => service::validate_service(obj),
        ("", "Endpoints") => service::validate_endpoints(obj),
        ("discovery.k8s.io", "EndpointSlice") => service::validate_endpoint_slice(obj),
        ("", "ConfigMap") => core::validate_config_map(obj),
        ("", "Secret") => core::validate_secret(obj),
        ("", "Namespace") => core::validate_namespace(obj),
        ("", "Node") => core::validate_node(obj),
        ("", "PersistentVolume") => core::validate_persistent_volume(obj),
        ("", "PersistentVolumeClaim") => core::validate_persistent_volume_claim(obj),
        ("", "ServiceAccount") => core::validate_service_account(obj),
        ("", "Event") => core::validate_event(obj),
        ("events.k8s.io", "Event") => core::validate_events_event(obj),
        ("", "ResourceQuota") => core::validate_resource_quota(obj),
        ("", "LimitRange") => core::validate_limit_range(obj),
        ("rbac.authorization.k8s.io", "Role") => cluster::validate_role(obj, true),
        ("rbac.authorization.k8s.io", "ClusterRole") => cluster::validate_role(obj, false),
        ("rbac.authorization.k8s.io", "RoleBinding") => cluster::validate_role_binding(obj, true),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            cluster::validate_role_binding(obj, false)
        }
        ("networking.k8s.io", "Ingress") => cluster::validate_ingress(obj),
        ("networking.k8s.io", "IngressClass") => cluster::validate_ingress_class(obj),
        ("networking.k8s.io", "NetworkPolicy") => cluster::validate_network_policy(obj),
        ("policy", "PodDisruptionBudget") => cluster::validate_pdb(obj),
        ("scheduling.k8s.io", "PriorityClass") => cluster::validate_priority_class(obj),
        ("storage.k8s.io", "StorageClass") => cluster::validate_storage_class(obj),
        ("coordination.k8s.io", "Lease") => cluster::validate_lease(obj),
        ("apiregistration.k8s.io", "APIService") => cluster::validate_api_service(obj),
        _ => Vec::new(),
    }
}

fn kind_update(res: &Resource, new: &Value, old: &Value) -> Errs {
    if res.custom.is_some() {
        return Vec::new();
    }
    match (res.group, res.kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            crate::crd::validate_crd_update(new, old)
        }
        ("", "Pod") => pod::validate_pod_update(new, old),
        ("apps", "Deployment") | ("apps", "DaemonSet") | ("apps", "ReplicaSet") => {
            workloads::validate_selector_immutable(new, old)
        }
        ("apps", "StatefulSet") => workloads::validate_stateful_set_update(new, old),
        ("apps", "ControllerRevision") => workloads::validate_controller_revision_update(new, old),
        ("batch", "Job") => batch::validate_job_update(new, old),
        ("", "Service") => service::validate_service_update(new, old),
        ("discovery.k8s.io", "EndpointSlice") => service::validate_endpoint_slice_update(new, old),
        ("", "ConfigMap") => core::validate_config_map_update(new, old),
        ("", "Secret") => core::validate_secret_update(new, old),
        ("", "PersistentVolume") => core::validate_persistent_volume_update(new, old),
        ("", "PersistentVolumeClaim") => core::validate_persistent_volume_claim_update(new, old),
        ("rbac.authorization.k8s.io", "RoleBinding")
        | ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            cluster::validate_role_binding_update(new, old)
        }
        ("networking.k8s.io", "IngressClass") => cluster::validate_ingress_class_update(new, old),
        ("scheduling.k8s.io", "PriorityClass") => cluster::validate_priority_class_update(new, old),
        ("storage.k8s.io", "StorageClass") => cluster::validate_storage_class_update(new, old),
        _ => Vec::new(),
    }
}

// ---- field paths, as upstream's field.Path ----

/// `path.name` (or `name` at the root).
/// Paths are built for every field checked, error or not, so without the formatting
/// machinery.
pub(crate) fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        join(path, ".", name, "")
    }
}

/// `path.name` when `needed` (the field has something to check), else an empty path that
/// costs no allocation: most paths are built only to name errors that never happen.
pub(crate) fn child_if(needed: bool, path: &str, name: &str) -> String {
    if needed {
        child(path, name)
    } else {
        String::new()
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    join(path, "[", itoa::Buffer::new().format(i), "]")
}

/// `path[key]`.
pub(crate) fn key(path: &str, k: &str) -> String {
    join(path, "[", k, "]")
}

fn join(a: &str, b: &str, c: &str, d: &str) -> String {
    crate::concat(&[a, b, c, d])
}

// ---- JSON access; null counts as absent ----

/// A present, non-null field.
pub(crate) fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    lookup(v, k).filter(|x| !x.is_null())
}

/// A string field, or "".
pub(crate) fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    lookup(v, k).and_then(Value::as_str).unwrap_or("")
}

/// An optional string field.
pub(crate) fn opt_str<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    lookup(v, k).and_then(Value::as_str)
}

/// An array field, or an empty slice.
pub(crate) fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    lookup(v, k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A map field, if an object.
pub(crate) fn obj<'a>(v: &'a Value, k: &str) -> Option<&'a Map<String, Value>> {
    lookup(v, k).and_then(Value::as_object)
}

/// An integer field.
pub(crate) fn int(v: &Value, k: &str) -> Option<i64> {
    lookup(v, k).and_then(Value::as_i64)
}

/// A boolean field, false when absent.
pub(crate) fn flag(v: &Value, k: &str) -> bool {
    lookup(v, k).and_then(Value::as_bool).unwrap_or(false)
}

/// A present sub-object (or `Value::Null`).
pub(crate) fn sub<'a>(v: &'a Value, k: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    lookup(v, k).unwrap_or(&NULL)
}

// ---- common checks ----

/// Upstream's `ValidateNonnegativeField`.
pub(crate) fn nonnegative(v: &Value, k: &str, path: &str, errs: &mut Errs) {
    if let Some(n) = int(v, k) {
        if n < 0 {
            errs.push(FieldError::invalid(
                child(path, k),
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// Upstream's `ValidateImmutableField`.
pub(crate) fn immutable(new: &Value, old: &Value, path: &str, errs: &mut Errs) {
    if new != old {
        errs.push(FieldError::invalid(path, new.clone(), "field is immutable"));
    }
}

/// Field `k` of `new` and `old` must be equal.
pub(crate) fn immutable_field(new: &Value, old: &Value, k: &str, path: &str, errs: &mut Errs) {
    immutable(sub(new, k), sub(old, k), &child(path, k), errs);
}

/// Upstream's `ValidateDNS1123Label` for a field value: required, then the label rules.
pub(crate) fn dns1123_label_field(value: &str, path: &str, errs: &mut Errs) {
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    for m in names::is_dns1123_label(value) {
        errs.push(FieldError::invalid(path, value, m));
    }
}

/// A string field that must be one of `supported` (Required when empty).
pub(crate) fn enum_field(v: &Value, k: &str, path: &str, supported: &[&str], errs: &mut Errs) {
    let p = || child(path, k);
    match lookup(v, k) {
        None | Some(Value::Null) => errs.push(FieldError::required(p(), "")),
        Some(Value::String(s)) if s.is_empty() => errs.push(FieldError::required(p(), "")),
        Some(Value::String(s)) if supported.contains(&s.as_str()) => {}
        Some(other) => errs.push(FieldError::not_supported(p(), other.clone(), supported)),
    }
}

/// An optional string field that, when set, must be one of `supported`.
pub(crate) fn opt_enum_field(v: &Value, k: &str, path: &str, supported: &[&str], errs: &mut Errs) {
    if get(v, k).is_some() {
        enum_field(v, k, path, supported, errs);
    }
}

/// An int-or-string field as upstream's `ValidatePositiveIntOrPercent` and
/// `IsNotMoreThan100Percent`.
pub(crate) fn int_or_percent(v: &Value, path: &str, errs: &mut Errs) {
    match v {
        Value::Number(n) if n.as_i64().is_none_or(|n| n < 0) => {
            errs.push(FieldError::invalid(path, v.clone(), "must be greater than or equal to 0"));
        }
        Value::String(s) => match percent(s) {
            None => errs.push(FieldError::invalid(
                path,
                s.as_str(),
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            )),
            Some(p) if p > 100 => errs.push(FieldError::invalid(
                path,
                s.as_str(),
                "must not be greater than 100%",
            )),
            Some(_) => {}
        },
        _ => {}
    }
}

/// `"25%"` → 25.
pub(crate) fn percent(s: &str) -> Option<u64> {
    let n = s.strip_suffix('%')?;
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// True when an int-or-string is zero (`0` or `"0%"`).
pub(crate) fn int_or_percent_is_zero(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => percent(s) == Some(0),
        _ => false,
    }
}
