//! The CronJob controller's decisions, without I/O (upstream's `pkg/controller/cronjob`
//! utils): the schedule in the CronJob's time zone, the time to run now (the most recent
//! unmet fire time, bounded by startingDeadlineSeconds), when to look again, the concurrency
//! policy, Job names and templates, and which finished Jobs the history limits prune.

use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_core::cron::Schedule;

use crate::job::logic::condition;
use crate::pods::controller_ref;

/// The annotation carrying the scheduled time of a CronJob's Job (RFC 3339, in the CronJob's
/// time zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream looks again this long after a fire time, so the time has surely come.
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// More missed fire times than this get a TooManyMissedTimes warning.
pub const MAX_MISSED_REPORTED: i64 = 100;

/// Why a CronJob's schedule cannot be used: the event reason and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ScheduleError {
    pub reason: &'static str,
    pub message: String,
}

/// The CronJob's schedule in its time zone (upstream's `formatSchedule` plus
/// `cron.ParseStandard`).
pub fn schedule(cj: &CronJob) -> Result<Schedule, ScheduleError> {
    let spec = cj.spec.as_ref();
    let text = spec.map(|s| s.schedule.as_str()).unwrap_or("");
    let tz = match spec.and_then(|s| s.time_zone.as_deref()) {
        Some(name) => TimeZone::get(name).map_err(|e| ScheduleError {
            reason: "UnknownTimeZone",
            message: format!("invalid timeZone: {name:?}: {e}"),
        })?,
        None => TimeZone::UTC,
    };
    Schedule::parse_in(text, tz).map_err(|e| ScheduleError {
        reason: "UnparseableSchedule",
        message: format!("unparseable schedule: {text:?} : {e}"),
    })
}

/// The CronJob's earliest time still to consider: its last scheduled time, else its creation.
fn earliest(cj: &CronJob) -> Timestamp {
    cj.status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .or(cj.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn starting_deadline(cj: &CronJob) -> Option<i64> {
    cj.spec.as_ref()?.starting_deadline_seconds
}

/// Upstream's `nextScheduleTime`: the most recent fire time not yet acted on at `now`, within
/// startingDeadlineSeconds if set, with how many fire times were missed.
pub fn time_to_run(
    cj: &CronJob,
    sched: &Schedule,
    now: Timestamp,
) -> Result<Option<(Timestamp, i64)>, ScheduleError> {
    let mut from = earliest(cj);
    if let Some(d) = starting_deadline(cj) {
        let bound = now - SignedDuration::from_secs(d);
        if bound > from {
            from = bound;
        }
    }
    sched.most_recent(from, now).map_err(|e| ScheduleError {
        reason: "InvalidSchedule",
        message: format!(
            "invalid schedule: {} : {e}",
            cj.spec.as_ref().map(|s| s.schedule.as_str()).unwrap_or("")
        ),
    })
}

/// Whether the fire time came longer than startingDeadlineSeconds before `now`.
pub fn too_late(cj: &CronJob, scheduled: Timestamp, now: Timestamp) -> bool {
    starting_deadline(cj).is_some_and(|d| scheduled + SignedDuration::from_secs(d) < now)
}

/// Upstream's `nextScheduleTimeDuration`: how long until the next fire time after the most
/// recent one (or after the earliest time to consider), plus a small delta.
pub fn requeue_after(cj: &CronJob, sched: &Schedule, now: Timestamp) -> Option<SignedDuration> {
    let from = earliest(cj);
    let base = match sched.most_recent(from, now) {
        Ok(Some((t, _))) => t,
        Ok(None) => from,
        Err(_) => return None,
    };
    let next = sched.next(base)?;
    Some(next.duration_since(now) + SignedDuration::try_from(NEXT_SCHEDULE_DELTA).ok()?)
}

/// `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// What the concurrency policy allows when it is time to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Start a Job (Allow, or nothing active).
    Start,
    /// Forbid with a Job active: skip this run.
    Skip,
    /// Replace: delete the active Jobs, then start.
    ReplaceThenStart,
}

pub fn concurrency(cj: &CronJob, active: usize) -> Concurrency {
    if active == 0 {
        return Concurrency::Start;
    }
    match cj
        .spec
        .as_ref()
        .and_then(|s| s.concurrency_policy.as_deref())
    {
        Some("Forbid") => Concurrency::Skip,
        Some("Replace") => Concurrency::ReplaceThenStart,
        _ => Concurrency::Start,
    }
}

/// The Job to create for the fire time `scheduled` (upstream's `getJobFromTemplate2`).
pub fn job_for(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let tmpl = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tm = tmpl.metadata.unwrap_or_default();
    let mut annotations = tm.annotations.unwrap_or_default();
    let zoned = scheduled.to_zoned(tz.clone());
    annotations.insert(
        SCHEDULED_TIMESTAMP.to_string(),
        zoned
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z"),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(
                cj.metadata.name.as_deref().unwrap_or(""),
                scheduled,
            )),
            namespace: cj.metadata.namespace.clone(),
            labels: tm.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cj)]),
            ..Default::default()
        },
        spec: tmpl.spec,
        status: None,
    }
}

/// An ObjectReference to `job` as `status.active` lists it.
pub fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// Complete or Failed, as upstream's `IsJobFinished`.
pub fn finished_type(job: &Job) -> Option<&'static str> {
    if condition(job, "Complete").is_some() {
        Some("Complete")
    } else if condition(job, "Failed").is_some() {
        Some("Failed")
    } else {
        None
    }
}

/// The finished Jobs beyond the history limits, oldest first (by start time, Jobs without one
/// last, then by name).
pub fn beyond_history(cj: &CronJob, jobs: &[Arc<Job>]) -> Vec<Arc<Job>> {
    let spec = cj.spec.as_ref();
    let limits = [
        (
            "Complete",
            spec.and_then(|s| s.successful_jobs_history_limit),
        ),
        ("Failed", spec.and_then(|s| s.failed_jobs_history_limit)),
    ];
    let mut out = Vec::new();
    for (kind, limit) in limits {
        let Some(limit) = limit else { continue };
        let mut done: Vec<Arc<Job>> = jobs
            .iter()
            .filter(|j| finished_type(j) == Some(kind))
            .cloned()
            .collect();
        let n = done.len().saturating_sub(limit.max(0) as usize);
        if n == 0 {
            continue;
        }
        done.sort_by(|a, b| {
            let sa = a
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0);
            let sb = b
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0);
            match (sa, sb) {
                (Some(x), Some(y)) if x != y => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                _ => a.metadata.name.cmp(&b.metadata.name),
            }
        });
        out.extend(done.into_iter().take(n));
    }
    out
}

/// Upstream's RFC 1123Z rendering of a time in event messages.
pub fn rfc1123z(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cj(spec: serde_json::Value, status: serde_json::Value) -> CronJob {
        let mut spec = spec;
        spec["jobTemplate"] = json!({"metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
            "spec": {"template": {"spec": {"containers": []}}}});
        serde_json::from_value(json!({
            "metadata": {"name": "cj", "namespace": "ns", "uid": "u1",
                          "creationTimestamp": "2026-01-01T00:00:30Z"},
            "spec": spec, "status": status
        }))
        .unwrap()
    }

    #[test]
    fn runs_the_most_recent_unmet_time_and_counts_missed() {
        let c = cj(json!({"schedule": "*/5 * * * *"}), json!({}));
        let s = schedule(&c).unwrap();
        assert_eq!(
            time_to_run(&c, &s, ts("2026-01-01T00:04:00Z")).unwrap(),
            None
        );
        assert_eq!(
            time_to_run(&c, &s, ts("2026-01-01T00:05:01Z")).unwrap(),
            Some((ts("2026-01-01T00:05:00Z"), 1))
        );
        // Ten hours later: 120 missed, only the last runs.
        let (t, missed) = time_to_run(&c, &s, ts("2026-01-01T10:02:00Z"))
            .unwrap()
            .unwrap();
        assert_eq!(t, ts("2026-01-01T10:00:00Z"));
        assert!(missed > MAX_MISSED_REPORTED);
        // Already acted on: lastScheduleTime moves the window.
        let c2 = cj(
            json!({"schedule": "*/5 * * * *"}),
            json!({"lastScheduleTime": "2026-01-01T00:05:00Z"}),
        );
        assert_eq!(
            time_to_run(&c2, &s, ts("2026-01-01T00:09:00Z")).unwrap(),
            None
        );
        let d = requeue_after(&c2, &s, ts("2026-01-01T00:09:00Z")).unwrap();
        assert_eq!(d, SignedDuration::from_millis(60_100));
    }

    #[test]
    fn starting_deadline_bounds_what_may_still_start() {
        let c = cj(
            json!({"schedule": "0 * * * *", "startingDeadlineSeconds": 60}),
            json!({}),
        );
        let s = schedule(&c).unwrap();
        // 01:00 passed 30 minutes ago: outside the window, nothing to run.
        assert_eq!(
            time_to_run(&c, &s, ts("2026-01-01T01:30:00Z")).unwrap(),
            None
        );
        assert_eq!(
            time_to_run(&c, &s, ts("2026-01-01T01:00:50Z")).unwrap(),
            Some((ts("2026-01-01T01:00:00Z"), 1))
        );
        assert!(too_late(
            &c,
            ts("2026-01-01T01:00:00Z"),
            ts("2026-01-01T01:01:01Z")
        ));
        assert!(!too_late(
            &c,
            ts("2026-01-01T01:00:00Z"),
            ts("2026-01-01T01:00:59Z")
        ));
    }

    #[test]
    fn time_zone_moves_fire_times_and_the_annotation() {
        let c = cj(
            json!({"schedule": "0 9 * * *", "timeZone": "America/New_York"}),
            json!({}),
        );
        let s = schedule(&c).unwrap();
        // 09:00 in New York is 14:00 UTC in winter, 13:00 UTC in summer (DST).
        assert_eq!(
            s.next(ts("2026-01-02T00:00:00Z")),
            Some(ts("2026-01-02T14:00:00Z"))
        );
        assert_eq!(
            s.next(ts("2026-07-02T00:00:00Z")),
            Some(ts("2026-07-02T13:00:00Z"))
        );
        let j = job_for(&c, ts("2026-07-02T13:00:00Z"), s.time_zone());
        let ann = j.metadata.annotations.unwrap();
        assert_eq!(ann[SCHEDULED_TIMESTAMP], "2026-07-02T09:00:00-04:00");
        assert_eq!(ann["note"], "x");
        assert_eq!(j.metadata.name.as_deref(), Some("cj-29716620"));
        assert_eq!(j.metadata.labels.unwrap()["team"], "a");
        let owner = &j.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("CronJob", "u1"));
        let utc = cj(json!({"schedule": "@hourly"}), json!({}));
        let j = job_for(&utc, ts("2026-07-02T13:00:00Z"), &TimeZone::UTC);
        assert_eq!(
            j.metadata.annotations.unwrap()[SCHEDULED_TIMESTAMP],
            "2026-07-02T13:00:00Z"
        );
        let bad = cj(
            json!({"schedule": "0 9 * * *", "timeZone": "Mars/Olympus"}),
            json!({}),
        );
        assert_eq!(schedule(&bad).unwrap_err().reason, "UnknownTimeZone");
        let bad = cj(json!({"schedule": "0 9 * *"}), json!({}));
        let e = schedule(&bad).unwrap_err();
        assert_eq!(e.reason, "UnparseableSchedule");
        assert_eq!(
            e.message,
            "unparseable schedule: \"0 9 * *\" : expected exactly 5 fields, found 4: [0 9 * *]"
        );
    }

    #[test]
    fn concurrency_policies() {
        let allow = cj(json!({"schedule": "@hourly"}), json!({}));
        let forbid = cj(
            json!({"schedule": "@hourly", "concurrencyPolicy": "Forbid"}),
            json!({}),
        );
        let replace = cj(
            json!({"schedule": "@hourly", "concurrencyPolicy": "Replace"}),
            json!({}),
        );
        assert_eq!(concurrency(&allow, 2), Concurrency::Start);
        assert_eq!(concurrency(&forbid, 0), Concurrency::Start);
        assert_eq!(concurrency(&forbid, 1), Concurrency::Skip);
        assert_eq!(concurrency(&replace, 1), Concurrency::ReplaceThenStart);
        assert_eq!(concurrency(&replace, 0), Concurrency::Start);
    }

    #[test]
    fn history_limits_prune_the_oldest_finished_jobs() {
        let c = cj(
            json!({"schedule": "@hourly", "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 0}),
            json!({}),
        );
        let job = |name: &str, start: Option<&str>, cond: Option<&str>| {
            Arc::new(
                serde_json::from_value::<Job>(json!({
                    "metadata": {"name": name},
                    "status": {"startTime": start, "conditions": cond.map(|c| vec![json!({"type": c, "status": "True"})])}
                }))
                .unwrap(),
            )
        };
        let jobs = vec![
            job("new-ok", Some("2026-01-01T02:00:00Z"), Some("Complete")),
            job("old-ok", Some("2026-01-01T01:00:00Z"), Some("Complete")),
            job("no-start-ok", None, Some("Complete")),
            job("running", Some("2026-01-01T00:00:00Z"), None),
            job("bad", Some("2026-01-01T00:30:00Z"), Some("Failed")),
        ];
        let names: Vec<_> = beyond_history(&c, &jobs)
            .iter()
            .map(|j| j.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["old-ok", "new-ok", "bad"]);
    }

    #[test]
    fn event_times_render_like_go_rfc1123z() {
        assert_eq!(
            rfc1123z(ts("2026-11-27T03:40:00Z")),
            "Fri, 27 Nov 2026 03:40:00 +0000"
        );
    }
}
