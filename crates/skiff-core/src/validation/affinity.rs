//! Scheduling constraints of a pod spec, as upstream's `validateAffinity` (node affinity
//! selectors and terms, preferred weights 1-100, pod (anti-)affinity terms with a topology key
//! and a valid label selector) and `validateTopologySpreadConstraints` (positive maxSkew, a
//! topology key, `whenUnsatisfiable` and the node inclusion policies from their sets, minDomains
//! only with DoNotSchedule, no duplicate key/action pair).

use std::collections::HashSet;

use serde_json::Value;

use super::names::{is_dns1123_label, is_qualified_name};
use super::selector::validate_label_selector;
use super::{arr, child, get, index, int, str_of, sub, Errs};
use crate::status::FieldError;

const NOT_POSITIVE: &str = "must be greater than zero";

fn node_selector_requirement(r: &Value, path: &str, errs: &mut Errs) {
    let values = arr(r, "values");
    match str_of(r, "operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    child(path, "values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    child(path, "values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    child(path, "values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            child(path, "operator"),
            op,
            "not a valid selector operator",
        )),
    }
    let k = str_of(r, "key");
    for m in is_qualified_name(k) {
        errs.push(FieldError::invalid(child(path, "key"), k, m));
    }
}

fn node_field_requirement(r: &Value, path: &str, errs: &mut Errs) {
    match str_of(r, "operator") {
        "In" | "NotIn" => {
            if arr(r, "values").len() != 1 {
                errs.push(FieldError::required(
                    child(path, "values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            child(path, "operator"),
            op,
            "not a valid selector operator",
        )),
    }
    let k = str_of(r, "key");
    if k != "metadata.name" {
        errs.push(FieldError::not_supported(
            child(path, "key"),
            k,
            &["metadata.name"],
        ));
    }
}

fn node_selector_term(t: &Value, path: &str, errs: &mut Errs) {
    let exprs = child(path, "matchExpressions");
    for (i, r) in arr(t, "matchExpressions").iter().enumerate() {
        node_selector_requirement(r, &index(&exprs, i), errs);
    }
    let fields = child(path, "matchFields");
    for (i, r) in arr(t, "matchFields").iter().enumerate() {
        node_field_requirement(r, &index(&fields, i), errs);
    }
}

fn weight(t: &Value, path: &str, errs: &mut Errs) {
    let w = int(t, "weight").unwrap_or(0);
    if !(1..=100).contains(&w) {
        errs.push(FieldError::invalid(
            child(path, "weight"),
            w,
            "must be in the range 1-100",
        ));
    }
}

fn pod_affinity_term(t: &Value, path: &str, errs: &mut Errs) {
    errs.extend(validate_label_selector(
        sub(t, "labelSelector"),
        &child(path, "labelSelector"),
    ));
    errs.extend(validate_label_selector(
        sub(t, "namespaceSelector"),
        &child(path, "namespaceSelector"),
    ));
    for (i, n) in arr(t, "namespaces").iter().enumerate() {
        let n = n.as_str().unwrap_or("");
        for m in is_dns1123_label(n) {
            errs.push(FieldError::invalid(
                index(&child(path, "namespaces"), i),
                n,
                m,
            ));
        }
    }
    let key = str_of(t, "topologyKey");
    if key.is_empty() {
        errs.push(FieldError::required(
            child(path, "topologyKey"),
            "can not be empty",
        ));
    } else {
        for m in is_qualified_name(key) {
            errs.push(FieldError::invalid(child(path, "topologyKey"), key, m));
        }
    }
}

fn pod_affinity(a: &Value, path: &str, errs: &mut Errs) {
    let req = child(path, "requiredDuringSchedulingIgnoredDuringExecution");
    for (i, t) in arr(a, "requiredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        pod_affinity_term(t, &index(&req, i), errs);
    }
    let pref = child(path, "preferredDuringSchedulingIgnoredDuringExecution");
    for (i, t) in arr(a, "preferredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        let p = index(&pref, i);
        weight(t, &p, errs);
        pod_affinity_term(
            sub(t, "podAffinityTerm"),
            &child(&p, "podAffinityTerm"),
            errs,
        );
    }
}

/// `validateAffinity` for `spec.affinity` at `path`.
pub(crate) fn validate_affinity(aff: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    if let Some(na) = get(aff, "nodeAffinity") {
        let np = child(path, "nodeAffinity");
        if let Some(req) = get(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            let rp = child(&np, "requiredDuringSchedulingIgnoredDuringExecution");
            let terms = arr(req, "nodeSelectorTerms");
            let tp = child(&rp, "nodeSelectorTerms");
            if terms.is_empty() {
                errs.push(FieldError::required(
                    &tp,
                    "must have at least one node selector term",
                ));
            }
            for (i, t) in terms.iter().enumerate() {
                node_selector_term(t, &index(&tp, i), &mut errs);
            }
        }
        let pp = child(&np, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in arr(na, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let p = index(&pp, i);
            weight(t, &p, &mut errs);
            node_selector_term(sub(t, "preference"), &child(&p, "preference"), &mut errs);
        }
    }
    for k in ["podAffinity", "podAntiAffinity"] {
        if let Some(pa) = get(aff, k) {
            pod_affinity(pa, &child(path, k), &mut errs);
        }
    }
    errs
}

/// `validateTopologySpreadConstraints` for `spec.topologySpreadConstraints` at `path`.
pub(crate) fn validate_topology_spread(cs: &[Value], path: &str) -> Errs {
    let mut errs = Errs::new();
    let mut seen = HashSet::new();
    for (i, c) in cs.iter().enumerate() {
        let p = index(path, i);
        let skew = int(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            errs.push(FieldError::invalid(
                child(&p, "maxSkew"),
                skew,
                NOT_POSITIVE,
            ));
        }
        let key = str_of(c, "topologyKey");
        if key.is_empty() {
            errs.push(FieldError::required(
                child(&p, "topologyKey"),
                "can not be empty",
            ));
        } else {
            for m in is_qualified_name(key) {
                errs.push(FieldError::invalid(child(&p, "topologyKey"), key, m));
            }
        }
        let action = str_of(c, "whenUnsatisfiable");
        if !["DoNotSchedule", "ScheduleAnyway"].contains(&action) {
            errs.push(FieldError::not_supported(
                child(&p, "whenUnsatisfiable"),
                action,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if let Some(md) = int(c, "minDomains") {
            if md <= 0 {
                errs.push(FieldError::invalid(
                    child(&p, "minDomains"),
                    md,
                    NOT_POSITIVE,
                ));
            }
            if action != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    child(&p, "minDomains"),
                    md,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                    ),
                ));
            }
        }
        for policy in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(v) = get(c, policy).and_then(Value::as_str) {
                if v != "Honor" && v != "Ignore" {
                    errs.push(FieldError::not_supported(
                        child(&p, policy),
                        v,
                        &["Honor", "Ignore"],
                    ));
                }
            }
        }
        errs.extend(validate_label_selector(
            sub(c, "labelSelector"),
            &child(&p, "labelSelector"),
        ));
        if !key.is_empty() && !seen.insert((key, action)) {
            errs.push(FieldError::duplicate(
                format!("{p}.{{topologyKey, whenUnsatisfiable}}"),
                format!("{{{key}, {action}}}"),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(errs: Errs) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn node_affinity_rules() {
        let a = json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [
                    {"key": "zone", "operator": "In"},
                    {"key": "zone", "operator": "Exists", "values": ["a"]},
                    {"key": "cores", "operator": "Gt", "values": ["1", "2"]},
                    {"key": "zone", "operator": "Near", "values": ["a"]}
                ],
                 "matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["x"]}]}
            ]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 0, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}
            ]
        }});
        let m = msgs(validate_affinity(&a, "spec.affinity"));
        let base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]";
        assert_eq!(
            m,
            vec![
                format!("{base}.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
                format!("{base}.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
                format!("{base}.matchExpressions[2].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"),
                format!("{base}.matchExpressions[3].operator: Invalid value: \"Near\": not a valid selector operator"),
                format!("{base}.matchFields[0].key: Unsupported value: \"metadata.uid\": supported values: \"metadata.name\""),
                "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100".to_string(),
            ]
        );
        let empty = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}});
        assert_eq!(
            msgs(validate_affinity(&empty, "spec.affinity")),
            vec!["spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term"]
        );
    }

    #[test]
    fn pod_affinity_needs_a_topology_key() {
        let a = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}}
        ]}});
        assert_eq!(
            msgs(validate_affinity(&a, "spec.affinity")),
            vec!["spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty"]
        );
    }

    #[test]
    fn topology_spread_rules() {
        let cs = vec![
            json!({"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "Sometimes"}),
            json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 2}),
            json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}),
        ];
        let m = msgs(validate_topology_spread(
            &cs,
            "spec.topologySpreadConstraints",
        ));
        assert_eq!(
            m,
            vec![
                "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
                "spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: \"Sometimes\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\"",
                "spec.topologySpreadConstraints[1].minDomains: Invalid value: 2: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway",
                "spec.topologySpreadConstraints[2].{topologyKey, whenUnsatisfiable}: Duplicate value: \"{zone, ScheduleAnyway}\"",
            ]
        );
    }
}
