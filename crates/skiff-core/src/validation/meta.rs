//! ObjectMeta validation, following apimachinery's `ValidateObjectMetaAccessor`,
//! `ValidateObjectMetaUpdate`, `ValidateLabels`, `ValidateAnnotations`, `ValidateOwnerReferences`
//! and `ValidateFinalizers`.

use crate::meta::Fields as _;
use serde_json::{Map, Value};

use super::names::{is_qualified_name, is_valid_label_value, TOTAL_ANNOTATION_SIZE_LIMIT};
use super::{child, get, immutable_field, obj, str_of, Errs, NameFn};
use crate::status::FieldError;

/// `metadata` of a new or updated object. `name_fn` is the kind's name function.
pub(crate) fn validate_object_meta(
    o: &Value,
    namespaced: bool,
    name_fn: NameFn,
    path: &str,
) -> Errs {
    let mut errs = Errs::new();
    let empty = Value::Object(Map::new());
    let m = o
        .field("metadata")
        .filter(|m| m.is_object())
        .unwrap_or(&empty);
    let generate_name = str_of(m, "generateName");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(FieldError::invalid(
                child(path, "generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = str_of(m, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            child(path, "name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(FieldError::invalid(child(path, "name"), name, msg));
        }
    }
    let ns = str_of(m, "namespace");
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required(child(path, "namespace"), ""));
        } else {
            for msg in super::names::is_dns1123_label(ns) {
                errs.push(FieldError::invalid(child(path, "namespace"), ns, msg));
            }
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = m.field("generation").and_then(Value::as_i64) {
        if g < 0 {
            errs.push(FieldError::invalid(
                child(path, "generation"),
                g,
                "must be greater than or equal to 0",
            ));
        }
    }
    errs.extend(validate_labels(obj(m, "labels"), &child(path, "labels")));
    errs.extend(validate_annotations(
        obj(m, "annotations"),
        &child(path, "annotations"),
    ));
    errs.extend(validate_owner_references(
        m,
        &child(path, "ownerReferences"),
    ));
    errs.extend(validate_finalizers(m, &child(path, "finalizers")));
    errs
}

/// Upstream's `ValidateObjectMetaUpdate`: identity fields may not change.
pub(crate) fn validate_object_meta_update(new: &Value, old: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let null = Value::Null;
    let nm = new.field("metadata").unwrap_or(&null);
    let om = old.field("metadata").unwrap_or(&null);
    for f in ["name", "namespace", "uid", "creationTimestamp"] {
        immutable_field(nm, om, f, path, &mut errs);
    }
    for f in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        if let Some(v) = get(nm, f) {
            if get(om, f) != Some(v) {
                errs.push(FieldError::invalid(
                    child(path, f),
                    v.clone(),
                    "field is immutable; may only be changed via deletion",
                ));
            }
        }
    }
    if get(om, "deletionTimestamp").is_some() {
        let old_f = crate::meta::finalizers(old);
        let extra: Vec<String> = crate::meta::finalizers(new)
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            errs.push(FieldError::forbidden(
                child(path, "finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    extra.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    errs
}

/// Upstream's `ValidateLabels`: keys are qualified names, values label values; errors sit on
/// the map's path.
pub(crate) fn validate_labels(labels: Option<&Map<String, Value>>, path: &str) -> Errs {
    let mut errs = Errs::new();
    for (k, v) in labels.into_iter().flatten() {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        match v.as_str() {
            Some(s) => {
                for msg in is_valid_label_value(s) {
                    errs.push(FieldError::invalid(path, s, msg));
                }
            }
            None => errs.push(FieldError::invalid(path, v.clone(), "must be a string")),
        }
    }
    errs
}

/// Upstream's `ValidateAnnotations`: qualified keys (checked lower-cased) and 256 KiB in total.
pub(crate) fn validate_annotations(ann: Option<&Map<String, Value>>, path: &str) -> Errs {
    let mut errs = Errs::new();
    let mut total = 0usize;
    for (k, v) in ann.into_iter().flatten() {
        let lower = if k.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            std::borrow::Cow::Owned(k.to_lowercase())
        } else {
            std::borrow::Cow::Borrowed(k.as_str())
        };
        for msg in is_qualified_name(&lower) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn validate_owner_references(m: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let mut controller: Option<String> = None;
    for r in super::arr(m, "ownerReferences") {
        let api_version = str_of(r, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        let (kind, name) = (str_of(r, "kind"), str_of(r, "name"));
        for (f, v, msg) in [
            ("kind", kind, "kind must not be empty"),
            ("name", name, "name must not be empty"),
            ("uid", str_of(r, "uid"), "uid must not be empty"),
        ] {
            if v.is_empty() {
                errs.push(FieldError::invalid(child(path, f), v, msg));
            }
        }
        if api_version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.field("controller").and_then(Value::as_bool) == Some(true) {
            let this = format!("{kind}/{name}");
            match &controller {
                None => controller = Some(this),
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(super::arr(m, "ownerReferences").to_vec()),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"
                    ),
                )),
            }
        }
    }
    errs
}

fn validate_finalizers(m: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let fins = super::arr(m, "finalizers");
    for f in fins {
        let s = f.as_str().unwrap_or("");
        for msg in is_qualified_name(s) {
            errs.push(FieldError::invalid(path, s, msg));
        }
    }
    let has = |n: &str| fins.iter().any(|f| f.as_str() == Some(n));
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            Value::Array(fins.to_vec()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}
