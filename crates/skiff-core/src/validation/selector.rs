//! Structured label selectors (`metav1.LabelSelector`): validation as apimachinery's
//! `ValidateLabelSelector` and matching as `LabelSelectorAsSelector(...).Matches`.

use serde_json::{Map, Value};

use super::meta::validate_labels;
use super::names::{is_qualified_name, is_valid_label_value};
use super::{arr, child, index, obj, str_of, Errs};
use crate::status::FieldError;

/// Upstream's `ValidateLabelSelector`.
pub(crate) fn validate_label_selector(sel: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    if sel.is_null() {
        return errs;
    }
    errs.extend(validate_labels(
        obj(sel, "matchLabels"),
        &child(path, "matchLabels"),
    ));
    let exprs = child(path, "matchExpressions");
    for (i, r) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = index(&exprs, i);
        let values = arr(r, "values");
        match str_of(r, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let k = str_of(r, "key");
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(child(&p, "key"), k, msg));
        }
        for (j, v) in values.iter().enumerate() {
            let s = v.as_str().unwrap_or("");
            for msg in is_valid_label_value(s) {
                errs.push(FieldError::invalid(index(&child(&p, "values"), j), s, msg));
            }
        }
    }
    errs
}

/// True when the selector has neither matchLabels nor matchExpressions.
pub(crate) fn is_empty(sel: &Value) -> bool {
    obj(sel, "matchLabels").is_none_or(Map::is_empty) && arr(sel, "matchExpressions").is_empty()
}

/// True when a structured selector selects `labels`. An empty selector selects everything.
pub(crate) fn matches(sel: &Value, labels: Option<&Map<String, Value>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    for (k, v) in obj(sel, "matchLabels").into_iter().flatten() {
        if get(k) != v.as_str() {
            return false;
        }
    }
    for r in arr(sel, "matchExpressions") {
        let k = str_of(r, "key");
        let values: Vec<&str> = arr(r, "values").iter().filter_map(Value::as_str).collect();
        let ok = match str_of(r, "operator") {
            "In" => get(k).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(k).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(k).is_some(),
            "DoesNotExist" => get(k).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// True when the selector converts without error (`LabelSelectorAsSelector`).
pub(crate) fn is_valid(sel: &Value) -> bool {
    validate_label_selector(sel, "").is_empty()
}
