//! Job and CronJob validation, following pkg/apis/batch/validation: `ValidateJob` (with
//! `ValidateGeneratedSelector` for server-generated selectors), `validateJobSpec`,
//! `ValidateJobSpecUpdate` (immutable selector, template, completions, completionMode),
//! `ValidateCronJobCreate`/`Update`, `validateScheduleFormat`, `validateTimeZone` and
//! `ValidateJobTemplateSpec`.

use crate::meta::Fields as _;
use serde_json::{json, Value};

use super::pod::validate_pod_template;
use super::selector::{is_valid, matches, validate_label_selector};
use super::{child, flag, get, immutable, int, nonnegative, obj, str_of, sub, Errs};
use crate::status::FieldError;

const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME: &str = "job-name";
const MAX_PARALLELISM_INDEXED: i64 = 100_000;

/// `ValidateJob` minus metadata.
pub(crate) fn validate_job(job: &Value) -> Errs {
    let mut errs = validate_generated_selector(job);
    let spec = sub(job, "spec");
    errs.extend(validate_job_spec(spec, "spec"));
    let sel = get(spec, "selector");
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(s) => errs.extend(validate_label_selector(s, "spec.selector")),
    }
    if let Some(s) = sel.filter(|s| is_valid(s)) {
        let labels = obj(sub(sub(spec, "template"), "metadata"), "labels");
        if !matches(s, labels) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                labels.cloned().map(Value::Object).unwrap_or(json!({})),
                "`selector` does not match template `labels`",
            ));
        }
    }
    errs
}

/// `ValidateGeneratedSelector`: unless manualSelector, the selector and template labels must
/// be the ones the strategy generated from the Job's uid and name.
fn validate_generated_selector(job: &Value) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(job, "spec");
    if flag(spec, "manualSelector") {
        return errs;
    }
    let Some(sel) = get(spec, "selector") else {
        return errs;
    };
    let uid = crate::meta::uid(job);
    let name = crate::meta::name(job);
    if uid.is_empty() {
        errs.push(FieldError::required("metadata.uid", ""));
    }
    let tm = sub(sub(spec, "template"), "metadata");
    let labels = obj(tm, "labels");
    for (k, want) in [
        (LEGACY_CONTROLLER_UID, uid),
        (LEGACY_JOB_NAME, name),
        (CONTROLLER_UID, uid),
        (JOB_NAME, name),
    ] {
        let p = format!("spec.template.metadata.labels[{k}]");
        match labels.and_then(|l| l.get(k)).and_then(Value::as_str) {
            None => errs.push(FieldError::required(p, "")),
            Some(v) if v != want => errs.push(FieldError::invalid(
                p,
                Value::Object(labels.cloned().unwrap_or_default()),
                format!("must be '{want}'"),
            )),
            Some(_) => {}
        }
    }
    let expected = json!({ CONTROLLER_UID: uid });
    if is_valid(sel) && !matches(sel, expected.as_object()) {
        errs.push(FieldError::invalid(
            "spec.selector",
            sel.clone(),
            "`selector` not auto-generated",
        ));
    }
    errs
}

/// `validateJobSpec` (shared by Jobs and CronJob job templates).
fn validate_job_spec(spec: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        nonnegative(spec, f, path, &mut errs);
    }
    let mode = spec.field("completionMode").and_then(Value::as_str);
    if let Some(n) = int(spec, "backoffLimitPerIndex") {
        nonnegative(spec, "backoffLimitPerIndex", path, &mut errs);
        if mode != Some("Indexed") {
            errs.push(FieldError::forbidden(
                child(path, "backoffLimitPerIndex"),
                "requires indexed completion mode",
            ));
        }
        let _ = n;
    }
    if let Some(m) = mode {
        if m != "NonIndexed" && m != "Indexed" {
            errs.push(FieldError::not_supported(
                child(path, "completionMode"),
                m,
                &["NonIndexed", "Indexed"],
            ));
        }
        if m == "Indexed" {
            if get(spec, "completions").is_none() {
                errs.push(FieldError::required(
                    child(path, "completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = int(spec, "parallelism").filter(|p| *p > MAX_PARALLELISM_INDEXED) {
                errs.push(FieldError::invalid(
                    child(path, "parallelism"),
                    p,
                    format!("must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed"),
                ));
            }
        }
    }
    if let Some(p) = spec.field("podReplacementPolicy").and_then(Value::as_str) {
        if p != "TerminatingOrFailed" && p != "Failed" {
            errs.push(FieldError::not_supported(
                child(path, "podReplacementPolicy"),
                p,
                &["TerminatingOrFailed", "Failed"],
            ));
        } else if p != "Failed" && get(spec, "podFailurePolicy").is_some() {
            errs.push(FieldError::not_supported(
                child(path, "podReplacementPolicy"),
                p,
                &["Failed"],
            ));
        }
    }
    let tpath = child(path, "template");
    let tpl = sub(spec, "template");
    errs.extend(validate_pod_template(tpl, &tpath));
    let rp = str_of(sub(tpl, "spec"), "restartPolicy");
    if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            format!("{tpath}.spec.restartPolicy"),
            rp,
            &["OnFailure", "Never"],
        ));
    } else if rp == "OnFailure" && get(spec, "podFailurePolicy").is_some() {
        errs.push(FieldError::invalid(
            format!("{tpath}.spec.restartPolicy"),
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    errs
}

/// `ValidateJobSpecUpdate`.
pub(crate) fn validate_job_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    let ns = sub(new, "spec");
    let os = sub(old, "spec");
    let elastic = str_of(ns, "completionMode") == "Indexed"
        && int(ns, "completions") == int(ns, "parallelism")
        && int(os, "completions") == int(os, "parallelism");
    if !elastic {
        immutable(
            sub(ns, "completions"),
            sub(os, "completions"),
            "spec.completions",
            &mut errs,
        );
    }
    immutable(
        sub(ns, "selector"),
        sub(os, "selector"),
        "spec.selector",
        &mut errs,
    );
    // A suspended Job that never started may change its pods' scheduling directives.
    let mutable_scheduling = flag(ns, "suspend") && get(sub(old, "status"), "startTime").is_none();
    let mut nt = sub(ns, "template").clone();
    let ot = sub(os, "template");
    if mutable_scheduling {
        if let (Some(n), Some(o)) = (nt.as_object_mut(), ot.as_object()) {
            n.insert(
                "metadata".into(),
                o.field("metadata").cloned().unwrap_or(Value::Null),
            );
            if let (Some(Value::Object(nsp)), Some(Value::Object(osp))) =
                (n.field_mut("spec"), o.field("spec"))
            {
                for f in ["nodeSelector", "affinity", "tolerations", "schedulingGates"] {
                    match osp.get(f) {
                        Some(v) => {
                            nsp.insert(f.into(), v.clone());
                        }
                        None => {
                            nsp.remove(f);
                        }
                    }
                }
            }
        }
    }
    if &nt != ot {
        errs.push(FieldError::invalid(
            "spec.template",
            sub(ns, "template").clone(),
            "field is immutable",
        ));
    }
    for f in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        immutable(sub(ns, f), sub(os, f), &format!("spec.{f}"), &mut errs);
    }
    errs
}

/// `ValidateCronJobCreate` / `ValidateCronJobUpdate` minus metadata (`old` on update).
pub(crate) fn validate_cron_job(cj: &Value, old: Option<&Value>) -> Errs {
    let mut errs = Errs::new();
    let spec = sub(cj, "spec");
    let old_spec = old.map(|o| sub(o, "spec"));
    let schedule = str_of(spec, "schedule");
    let tz = spec.field("timeZone").and_then(Value::as_str);
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = super::cron::parse_standard(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e));
        }
        let allow_tz = old_spec.is_some_and(|o| str_of(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && tz.is_some() {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    nonnegative(spec, "startingDeadlineSeconds", "spec", &mut errs);
    if old_spec.is_none_or(|o| o.field("timeZone") != spec.field("timeZone")) {
        if let Some(tz) = tz {
            validate_time_zone(tz, &mut errs);
        }
    }
    match str_of(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        other => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jt = sub(spec, "jobTemplate");
    let jts = sub(jt, "spec");
    errs.extend(validate_job_spec(jts, "spec.jobTemplate.spec"));
    if let Some(s) = get(jts, "selector") {
        errs.push(FieldError::invalid(
            "spec.jobTemplate.spec.selector",
            s.clone(),
            "`selector` will be auto-generated",
        ));
    }
    if flag(jts, "manualSelector") {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            true,
            &["nil", "false"],
        ));
    }
    nonnegative(spec, "successfulJobsHistoryLimit", "spec", &mut errs);
    nonnegative(spec, "failedJobsHistoryLimit", "spec", &mut errs);
    let name = crate::meta::name(cj);
    if old.is_none() && name.len() > 52 {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        ));
    }
    errs
}

fn validate_time_zone(tz: &str, errs: &mut Errs) {
    let p = "spec.timeZone";
    if tz.is_empty() {
        errs.push(FieldError::invalid(
            p,
            tz,
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    let bad_part = tz.split('/').any(|part| {
        part == "."
            || part == ".."
            || part.starts_with('-')
            || part.is_empty()
            || !part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+'))
    });
    if bad_part {
        errs.push(FieldError::invalid(
            p,
            tz,
            format!("unknown time zone {tz}"),
        ));
        return;
    }
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            p,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
        return;
    }
    if tz != "UTC" && jiff::tz::TimeZone::get(tz).is_err() {
        errs.push(FieldError::invalid(
            p,
            tz,
            format!("unknown time zone {tz}"),
        ));
    }
}
