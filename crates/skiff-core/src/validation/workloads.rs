//! Workload validation, following pkg/apis/apps/validation (`ValidateDeploymentSpec`,
//! `ValidateReplicaSetSpec`, `ValidateStatefulSetSpec`/`Update`, `ValidateDaemonSetSpec`,
//! `ValidateControllerRevision`, `ValidatePodTemplateSpecForReplicaSet`) and core's
//! `ValidateReplicationControllerSpec`, plus the apps/v1 strategies' immutable selectors.

use crate::meta::Fields as _;
use serde_json::{json, Value};

use super::pod::validate_pod_template;
use super::selector::{is_empty, is_valid, matches, validate_label_selector};
use super::{
    arr, child, get, immutable, int, int_or_percent, int_or_percent_is_zero, nonnegative, obj,
    str_of, sub, Errs,
};
use crate::status::FieldError;

/// The selector/template part shared by Deployment and ReplicaSet: the
/// [`required_selector`], converted, and matching the template labels.
fn selector_and_template(spec: &Value, kind_word: &str, template_rs: &str, errs: &mut Errs) {
    let sel = required_selector(spec, kind_word, errs);
    if let Some(s) = sel.filter(|s| !is_valid(s)) {
        errs.push(FieldError::invalid(
            "spec.selector",
            s.clone(),
            "invalid label selector",
        ));
        return;
    }
    template_labels_match(sel, sub(spec, "template"), "spec.template", errs);
    if !template_rs.is_empty() {
        template_for_controller(sub(spec, "template"), "spec.template", template_rs, errs);
    }
}

/// `spec.selector` required, a valid label selector and non-empty (Deployment, ReplicaSet and
/// StatefulSet); returns it.
fn required_selector<'a>(spec: &'a Value, kind_word: &str, errs: &mut Errs) -> Option<&'a Value> {
    let sel = get(spec, "selector");
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(s) => {
            errs.extend(validate_label_selector(s, "spec.selector"));
            if is_empty(s) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    s.clone(),
                    format!("empty selector is invalid for {kind_word}"),
                ));
            }
        }
    }
    sel
}

/// The template's labels must be selected by the selector (a missing selector selects nothing,
/// an empty one everything).
fn template_labels_match(sel: Option<&Value>, tpl: &Value, path: &str, errs: &mut Errs) {
    let labels = obj(sub(tpl, "metadata"), "labels");
    let ok = match sel {
        None => false,
        Some(s) => is_empty(s) || matches(s, labels),
    };
    if !ok {
        errs.push(FieldError::invalid(
            format!("{path}.metadata.labels"),
            labels.cloned().map(Value::Object).unwrap_or(json!({})),
            "`selector` does not match template `labels`",
        ));
    }
}

/// The template of an always-running controller: a valid pod template with restartPolicy
/// Always and no activeDeadlineSeconds.
fn template_for_controller(tpl: &Value, path: &str, kind: &str, errs: &mut Errs) {
    if tpl.is_null() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    errs.extend(validate_pod_template(tpl, path));
    always_restart(tpl, path, kind, errs);
}

fn always_restart(tpl: &Value, path: &str, kind: &str, errs: &mut Errs) {
    let spec = sub(tpl, "spec");
    let rp = str_of(spec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            format!("{path}.spec.restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if get(spec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            format!("{path}.spec.activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

/// `ValidateDeploymentSpec`.
pub(crate) fn validate_deployment(d: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(d, "spec");
    nonnegative(spec, "replicas", "spec", &mut errs);
    selector_and_template(spec, "deployment", "ReplicaSet", &mut errs);
    let strategy = sub(spec, "strategy");
    let sp = "spec.strategy";
    match str_of(strategy, "type") {
        "Recreate" => {
            if get(strategy, "rollingUpdate").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match get(strategy, "rollingUpdate") {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = "spec.strategy.rollingUpdate";
                let mu = sub(ru, "maxUnavailable");
                let ms = sub(ru, "maxSurge");
                int_or_percent(mu, &child(rp, "maxUnavailable"), &mut errs);
                int_or_percent_unbounded(ms, &child(rp, "maxSurge"), &mut errs);
                if int_or_percent_is_zero(mu) && int_or_percent_is_zero(ms) {
                    errs.push(FieldError::invalid(
                        child(rp, "maxUnavailable"),
                        mu.clone(),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            child(sp, "type"),
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
    nonnegative(spec, "minReadySeconds", "spec", &mut errs);
    nonnegative(spec, "revisionHistoryLimit", "spec", &mut errs);
    if let Some(p) = int(spec, "progressDeadlineSeconds") {
        nonnegative(spec, "progressDeadlineSeconds", "spec", &mut errs);
        if p <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// `ValidatePositiveIntOrPercent` without the 100% cap (maxSurge).
fn int_or_percent_unbounded(v: &Value, path: &str, errs: &mut Errs) {
    let mut e = Errs::new();
    int_or_percent(v, path, &mut e);
    errs.extend(
        e.into_iter()
            .filter(|f| f.detail != "must not be greater than 100%"),
    );
}

/// `ValidateReplicaSetSpec`.
pub(crate) fn validate_replica_set(rs: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(rs, "spec");
    nonnegative(spec, "replicas", "spec", &mut errs);
    nonnegative(spec, "minReadySeconds", "spec", &mut errs);
    // Upstream says "deployment" here too.
    selector_and_template(spec, "deployment", "ReplicaSet", &mut errs);
    errs
}

/// `ValidateReplicationControllerSpec`.
pub(crate) fn validate_replication_controller(rc: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(rc, "spec");
    nonnegative(spec, "minReadySeconds", "spec", &mut errs);
    let sel = obj(spec, "selector").filter(|m| !m.is_empty());
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(m) => errs.extend(super::meta::validate_labels(Some(m), "spec.selector")),
    }
    nonnegative(spec, "replicas", "spec", &mut errs);
    let tpl = sub(spec, "template");
    if tpl.is_null() {
        errs.push(FieldError::required("spec.template", ""));
        return errs;
    }
    if let Some(m) = sel {
        let structured = json!({ "matchLabels": m });
        template_labels_match(Some(&structured), tpl, "spec.template", &mut errs);
    }
    template_for_controller(tpl, "spec.template", "ReplicationController", &mut errs);
    errs
}

/// `ValidateStatefulSetSpec`.
pub(crate) fn validate_stateful_set(sts: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(sts, "spec");
    match str_of(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = sub(spec, "updateStrategy");
    match str_of(us, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = get(us, "rollingUpdate") {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = get(us, "rollingUpdate") {
                nonnegative(
                    ru,
                    "partition",
                    "spec.updateStrategy.rollingUpdate",
                    &mut errs,
                );
                if let Some(mu) = get(ru, "maxUnavailable") {
                    let p = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                    int_or_percent(mu, p, &mut errs);
                    if int_or_percent_is_zero(mu) {
                        errs.push(FieldError::invalid(p, mu.clone(), "must be greater than 0"));
                    }
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            us.clone(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(pol) = get(spec, "persistentVolumeClaimRetentionPolicy") {
        for f in ["whenDeleted", "whenScaled"] {
            if let Some(v) = pol.get(f).and_then(Value::as_str) {
                if v != "Retain" && v != "Delete" {
                    errs.push(FieldError::not_supported(
                        format!("spec.persistentVolumeClaimRetentionPolicy.{f}"),
                        v,
                        &["Retain", "Delete"],
                    ));
                }
            }
        }
    }
    if let Some(o) = get(spec, "ordinals") {
        nonnegative(o, "start", "spec.ordinals", &mut errs);
    }
    nonnegative(spec, "replicas", "spec", &mut errs);
    nonnegative(spec, "minReadySeconds", "spec", &mut errs);
    let sel = required_selector(spec, "statefulset", &mut errs);
    let tpl = sub(spec, "template");
    if sel.is_none_or(is_valid) {
        template_labels_match(sel, tpl, "spec.template", &mut errs);
        // Mounts may name volumeClaimTemplates as well as pod volumes.
        let mut with_claims = tpl.clone();
        if let Some(ps) = with_claims.field_mut("spec").and_then(Value::as_object_mut) {
            let vols = ps.entry("volumes").or_insert_with(|| json!([]));
            if let Some(vols) = vols.as_array_mut() {
                for c in arr(spec, "volumeClaimTemplates") {
                    let n = str_of(sub(c, "metadata"), "name");
                    if !vols.iter().any(|v| str_of(v, "name") == n) {
                        vols.push(
                            json!({ "name": n, "persistentVolumeClaim": { "claimName": n } }),
                        );
                    }
                }
            }
        }
        errs.extend(validate_pod_template(&with_claims, "spec.template"));
    } else {
        errs.push(FieldError::invalid(
            "spec.selector",
            sel.cloned().unwrap_or_default(),
            "",
        ));
    }
    always_restart(tpl, "spec.template", "StatefulSet", &mut errs);
    for (i, c) in arr(spec, "volumeClaimTemplates").iter().enumerate() {
        let n = str_of(sub(c, "metadata"), "name");
        let p = format!("spec.volumeClaimTemplates[{i}].metadata.name");
        if n.is_empty() {
            errs.push(FieldError::required(p, "name or generateName is required"));
        } else {
            for m in super::names::is_dns1123_subdomain(n) {
                errs.push(FieldError::invalid(&p, n, m));
            }
        }
    }
    errs
}

/// `ValidateStatefulSetUpdate`: only some spec fields may change.
pub(crate) fn validate_stateful_set_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    let mut ns = sub(new, "spec").clone();
    let os = sub(old, "spec");
    if let (Some(n), Some(o)) = (ns.as_object_mut(), os.as_object()) {
        for f in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            match o.get(f) {
                Some(v) => {
                    n.insert(f.into(), v.clone());
                }
                None => {
                    n.remove(f);
                }
            }
        }
    }
    if &ns != os {
        errs.push(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    errs
}

/// `ValidateDaemonSetSpec`.
pub(crate) fn validate_daemon_set(ds: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(ds, "spec");
    let sel = get(spec, "selector");
    if let Some(s) = sel {
        errs.extend(validate_label_selector(s, "spec.selector"));
    }
    let tpl = sub(spec, "template");
    if sel.is_none_or(is_valid) {
        template_labels_match(sel, tpl, "spec.template", &mut errs);
    }
    if let Some(s) = sel.filter(|s| is_empty(s)) {
        errs.push(FieldError::invalid(
            "spec.selector",
            s.clone(),
            "empty selector is invalid for daemonset",
        ));
    }
    template_for_controller(tpl, "spec.template", "DaemonSet", &mut errs);
    nonnegative(spec, "minReadySeconds", "spec", &mut errs);
    nonnegative(spec, "templateGeneration", "spec", &mut errs);
    let us = sub(spec, "updateStrategy");
    match str_of(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match get(us, "rollingUpdate") {
            None => errs.push(FieldError::required(
                "spec.updateStrategy.rollingUpdate",
                "",
            )),
            Some(ru) => {
                let rp = "spec.updateStrategy.rollingUpdate";
                let mu = sub(ru, "maxUnavailable");
                let ms = sub(ru, "maxSurge");
                int_or_percent(mu, &child(rp, "maxUnavailable"), &mut errs);
                int_or_percent(ms, &child(rp, "maxSurge"), &mut errs);
                let has_u = !mu.is_null() && !int_or_percent_is_zero(mu);
                let has_s = !ms.is_null() && !int_or_percent_is_zero(ms);
                if has_u && has_s {
                    errs.push(FieldError::invalid(
                        child(rp, "maxSurge"),
                        ms.clone(),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_u && !has_s {
                    errs.push(FieldError::invalid(
                        child(rp, "maxUnavailable"),
                        mu.clone(),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        _ => errs.push(FieldError::not_supported(
            "spec.updateStrategy",
            us.clone(),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    nonnegative(spec, "revisionHistoryLimit", "spec", &mut errs);
    errs
}

/// apps/v1 Deployment, ReplicaSet and DaemonSet strategies: `spec.selector` is immutable.
pub(crate) fn validate_selector_immutable(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    immutable(
        sub(sub(new, "spec"), "selector"),
        sub(sub(old, "spec"), "selector"),
        "spec.selector",
        &mut errs,
    );
    errs
}

/// `ValidateControllerRevision`.
pub(crate) fn validate_controller_revision(cr: &Value) -> Errs {
    let mut errs = Errs::new();
    if get(cr, "data").is_none() {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    nonnegative(cr, "revision", "", &mut errs);
    errs
}

/// `ValidateControllerRevisionUpdate`: data is immutable.
pub(crate) fn validate_controller_revision_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    immutable(sub(new, "data"), sub(old, "data"), "data", &mut errs);
    errs
}
