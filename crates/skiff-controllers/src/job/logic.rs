//! The Job controller's decisions, without I/O (upstream's `pkg/controller/job` helpers):
//! completion indexes and their `completedIndexes` ranges, the pod failure back-off record,
//! pod failure policy matching, how many pods a Job wants active, which active pods to remove,
//! and the Job conditions.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, PodFailurePolicy};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::pods;

/// The finalizer that keeps a finished pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The completion index annotation and label of an Indexed Job's pods.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable that carries the index into containers.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// How many failures of its index came before a pod (backoffLimitPerIndex).
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// How many failures of its index before a pod were ignored by the pod failure policy.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";
/// The first back-off after a pod failure (upstream's `DefaultJobPodFailureBackOff`).
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// The longest back-off (upstream's `MaxJobPodFailureBackOff`).
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);
/// Most pods created or deleted in one sync (upstream's `MaxPodCreateDeletePerSync`).
pub const MAX_CREATE_DELETE: usize = 500;

pub fn completions(job: &Job) -> Option<i32> {
    job.spec.as_ref()?.completions
}

pub fn parallelism(job: &Job) -> i32 {
    job.spec
        .as_ref()
        .and_then(|s| s.parallelism)
        .unwrap_or(1)
        .max(0)
}

pub fn backoff_limit(job: &Job) -> i32 {
    job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(6)
}

pub fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

pub fn is_suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

pub fn failure_policy(job: &Job) -> Option<&PodFailurePolicy> {
    job.spec.as_ref()?.pod_failure_policy.as_ref()
}

/// Only Failed pods are replaced (not terminating ones): podReplacementPolicy Failed, or a
/// pod failure policy.
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

pub fn conditions(job: &Job) -> &[JobCondition] {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

pub fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    conditions(job)
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// Complete or Failed.
pub fn is_finished(job: &Job) -> bool {
    condition(job, "Complete").is_some() || condition(job, "Failed").is_some()
}

pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

/// Upstream's `isPodFailed`: Failed, or (unless only failed pods are replaced) deleted before
/// it succeeded.
pub fn is_pod_failed(pod: &Pod, job: &Job) -> bool {
    if pods::phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && pods::phase(pod) != "Succeeded"
}

/// Being deleted but not finished.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !pods::is_terminal(pod)
}

/// The pod's completion index, if it has a valid one.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse::<i32>()
        .ok()
        .filter(|i| *i >= 0)
}

/// The index of a pod that counts for a Job of `completions` (valid and in range).
pub fn valid_index(pod: &Pod, completions: i32) -> Option<i32> {
    completion_index(pod).filter(|i| *i < completions)
}

/// Parses `completedIndexes` ("1,3-5,7"), dropping anything invalid or not below
/// `completions`.
pub fn parse_indexes(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(a), Ok(b)) = (a, b) else { continue };
        if a < 0 || b < a {
            continue;
        }
        for i in a..=b.min(completions - 1) {
            out.insert(i);
        }
    }
    out
}

/// Formats indexes as upstream does: runs of three or more as `a-b`, pairs as `a,b`.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut runs: Vec<(i32, i32)> = Vec::new();
    for &i in set {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == i => *last = i,
            _ => runs.push((i, i)),
        }
    }
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else if b == a + 1 {
                format!("{a},{b}")
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The lowest `n` indexes below `completions` that have neither succeeded nor an active pod.
pub fn first_pending_indexes(
    succeeded: &BTreeSet<i32>,
    active: &[Arc<Pod>],
    n: usize,
    completions: i32,
) -> Vec<i32> {
    let busy: BTreeSet<i32> = active
        .iter()
        .filter_map(|p| valid_index(p, completions))
        .collect();
    (0..completions)
        .filter(|i| !succeeded.contains(i) && !busy.contains(i))
        .take(n)
        .collect()
}

/// When a finished pod finished: its containers' latest termination, else its deletion, else
/// its creation.
pub fn finish_time(pod: &Pod) -> Option<Timestamp> {
    let st = pod.status.as_ref();
    let terminated = st
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    terminated
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Failures since the last success, for the back-off between pod recreations (upstream's
/// `backoffRecord`, kept in memory per Job).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    pub failures_after_last_success: u32,
    pub last_failure: Option<Timestamp>,
}

impl BackoffRecord {
    /// The record after pods newly seen succeeding and failing.
    pub fn advance(&self, new_succeeded: &[Arc<Pod>], new_failed: &[Arc<Pod>]) -> BackoffRecord {
        let mut failed: Vec<Timestamp> = new_failed.iter().filter_map(|p| finish_time(p)).collect();
        failed.sort();
        if new_succeeded.is_empty() {
            if new_failed.is_empty() {
                return self.clone();
            }
            return BackoffRecord {
                failures_after_last_success: self.failures_after_last_success
                    + new_failed.len() as u32,
                last_failure: failed.last().copied().or(self.last_failure),
            };
        }
        let last_success = new_succeeded.iter().filter_map(|p| finish_time(p)).max();
        let after: Vec<Timestamp> = failed
            .into_iter()
            .filter(|t| last_success.is_none_or(|s| *t > s))
            .collect();
        BackoffRecord {
            failures_after_last_success: after.len() as u32,
            last_failure: after.last().copied(),
        }
    }

    /// How long until a pod may be created again at `now`.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        let Some(last) = self.last_failure else {
            return Duration::ZERO;
        };
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let backoff = backoff_duration(self.failures_after_last_success);
        let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
        backoff.saturating_sub(elapsed)
    }
}

/// 10 s after the first failure, doubling with each further failure, at most 10 minutes.
pub fn backoff_duration(failures: u32) -> Duration {
    let mut d = POD_FAILURE_BACKOFF;
    for _ in 1..failures {
        d *= 2;
        if d >= MAX_POD_FAILURE_BACKOFF {
            return MAX_POD_FAILURE_BACKOFF;
        }
    }
    d
}

/// What a pod failure policy says about one failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMatch {
    /// Set when a FailJob rule matched: the failure message.
    pub fail_job: Option<String>,
    /// Whether the failure counts towards backoffLimit.
    pub counts: bool,
    /// The action of the matching rule.
    pub action: Option<String>,
}

/// Upstream's `matchPodFailurePolicy`: the first rule that matches the pod's non-zero container
/// exit codes or its conditions decides; no match counts the failure.
pub fn match_failure_policy(policy: &PodFailurePolicy, pod: &Pod) -> PolicyMatch {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (i, rule) in policy.rules.iter().enumerate() {
        let hit = if let Some(req) = &rule.on_exit_codes {
            exit_code_match(req, pod).map(|(c, code)| {
                format!(
                    "Container {c} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {i}",
                    rule.action
                )
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            pod.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|conds| {
                    conds.iter().find(|c| {
                        patterns
                            .iter()
                            .any(|p| p.type_ == c.type_ && p.status == c.status)
                    })
                })
                .map(|c| {
                    format!(
                        "Pod {ns}/{name} has condition {} matching {} rule at index {i}",
                        c.type_, rule.action
                    )
                })
        } else {
            None
        };
        let Some(message) = hit else { continue };
        return match rule.action.as_str() {
            "FailJob" => PolicyMatch {
                fail_job: Some(message),
                counts: true,
                action: Some(rule.action.clone()),
            },
            "Ignore" => PolicyMatch {
                fail_job: None,
                counts: false,
                action: Some(rule.action.clone()),
            },
            _ => PolicyMatch {
                fail_job: None,
                counts: true,
                action: Some(rule.action.clone()),
            },
        };
    }
    PolicyMatch {
        fail_job: None,
        counts: true,
        action: None,
    }
}

fn exit_code_match(
    req: &k8s_openapi::api::batch::v1::PodFailurePolicyOnExitCodesRequirement,
    pod: &Pod,
) -> Option<(String, i32)> {
    let st = pod.status.as_ref()?;
    st.container_statuses
        .iter()
        .flatten()
        .chain(st.init_container_statuses.iter().flatten())
        .filter(|c| req.container_name.as_deref().is_none_or(|n| n == c.name))
        .find_map(|c| {
            let code = c.state.as_ref()?.terminated.as_ref()?.exit_code;
            let listed = req.values.contains(&code);
            let hit = code != 0
                && match req.operator.as_str() {
                    "In" => listed,
                    "NotIn" => !listed,
                    _ => false,
                };
            hit.then(|| (c.name.clone(), code))
        })
}

/// How many pods the Job wants active (upstream's `manageJob`): parallelism, but never more
/// than the completions still missing; with no completions count, parallelism until the
/// first success, then only those still running.
pub fn want_active(job: &Job, active: i32, succeeded: i32) -> i32 {
    let par = parallelism(job);
    match completions(job) {
        None => {
            if succeeded > 0 {
                active
            } else {
                par
            }
        }
        Some(c) => (c - succeeded).clamp(0, par),
    }
}

/// Active pods to remove so that at least `at_least` go: for Indexed Jobs, first pods with no
/// valid index and all but one pod per index; then in [`pods::deletion_order`].
pub fn pods_for_removal(
    job: &Job,
    active: &[Arc<Pod>],
    at_least: usize,
    colocated: &HashMap<String, usize>,
) -> Vec<Arc<Pod>> {
    let mut rm: Vec<Arc<Pod>> = Vec::new();
    let mut left: Vec<Arc<Pod>> = Vec::new();
    if is_indexed(job) {
        let c = completions(job).unwrap_or(0);
        let mut by_index: std::collections::BTreeMap<i32, Vec<Arc<Pod>>> = Default::default();
        for p in active {
            match valid_index(p, c) {
                Some(i) => by_index.entry(i).or_default().push(p.clone()),
                None => rm.push(p.clone()),
            }
        }
        for (_, mut group) in by_index {
            group.sort_by(|a, b| pods::deletion_order(a, b, colocated));
            let keep = group.pop().expect("non-empty group");
            rm.extend(group);
            left.push(keep);
        }
    } else {
        left = active.to_vec();
    }
    if rm.len() < at_least {
        left.sort_by(|a, b| pods::deletion_order(a, b, colocated));
        let n = (at_least - rm.len()).min(left.len());
        rm.extend(left.into_iter().take(n));
    }
    rm
}

/// A new condition of `type_`, True, at `now`.
pub fn new_condition(type_: &str, reason: &str, message: &str, now: Time) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Upstream's `ensureJobConditionStatus`: sets the condition of `type_` to `status` (adding
/// it unless it would be a new False one); returns whether anything changed.
pub fn ensure_condition(
    list: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Time,
) -> bool {
    if let Some(c) = list.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status
            || c.reason.as_deref().unwrap_or("") != reason
            || c.message.as_deref().unwrap_or("") != message
        {
            let mut n = new_condition(type_, reason, message, now);
            n.status = status.to_string();
            *c = n;
            return true;
        }
        return false;
    }
    if status != "False" {
        let mut n = new_condition(type_, reason, message, now);
        n.status = status.to_string();
        list.push(n);
        return true;
    }
    false
}

/// With restartPolicy OnFailure, whether the container restarts of running pods reached
/// backoffLimit (upstream's `pastBackoffLimitOnFailure`).
pub fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<Pod>]) -> bool {
    let restart = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if restart != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(pods::phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
                .map(|c| c.restart_count)
                .sum::<i32>()
        })
        .sum();
    let limit = backoff_limit(job);
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// `backoffLimitPerIndex`, for Indexed Jobs that set it.
pub fn backoff_limit_per_index(job: &Job) -> Option<i32> {
    if !is_indexed(job) {
        return None;
    }
    job.spec.as_ref()?.backoff_limit_per_index
}

fn annotation_count(pod: &Pod, key: &str) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(0)
}

/// Upstream's `isIndexFailed`: the pod failed, and either a FailIndex rule matched or its
/// counted failure exhausts the index's backoffLimitPerIndex.
pub fn is_index_failed(job: &Job, pod: &Pod) -> bool {
    let Some(limit) = backoff_limit_per_index(job) else {
        return false;
    };
    if !is_pod_failed(pod, job) {
        return false;
    }
    let counted = match failure_policy(job) {
        Some(pol) => {
            let m = match_failure_policy(pol, pod);
            if m.action.as_deref() == Some("FailIndex") {
                return true;
            }
            m.counts
        }
        None => true,
    };
    counted && annotation_count(pod, INDEX_FAILURE_COUNT) >= limit
}

/// The failure counts a replacement of `failed` (a failed pod of the same index) carries:
/// (failures, ignored failures).
pub fn replacement_counts(job: &Job, failed: &Pod) -> (i32, i32) {
    let mut f = annotation_count(failed, INDEX_FAILURE_COUNT);
    let mut ig = annotation_count(failed, INDEX_IGNORED_FAILURE_COUNT);
    if is_pod_failed(failed, job) {
        let counts = failure_policy(job).is_none_or(|pol| match_failure_policy(pol, failed).counts);
        if counts {
            f += 1;
        } else {
            ig += 1;
        }
    }
    (f, ig)
}

/// The most recently finished failed pod of each index (the one a replacement follows).
pub fn last_failed_per_index(
    job: &Job,
    pods: &[Arc<Pod>],
    completions: i32,
) -> HashMap<i32, Arc<Pod>> {
    let mut out: HashMap<i32, Arc<Pod>> = HashMap::new();
    for p in pods.iter().filter(|p| is_pod_failed(p, job)) {
        let Some(i) = valid_index(p, completions) else {
            continue;
        };
        let newer = out.get(&i).is_none_or(|q| finish_time(p) > finish_time(q));
        if newer {
            out.insert(i, p.clone());
        }
    }
    out
}

/// How long until index pods may be recreated after `last_failed` (per-index back-off: the
/// same doubling, counting the index's failures).
pub fn index_backoff_remaining(job: &Job, last_failed: &Pod, now: Timestamp) -> Duration {
    let (f, ig) = replacement_counts(job, last_failed);
    let rec = BackoffRecord {
        failures_after_last_success: (f + ig).max(0) as u32,
        last_failure: finish_time(last_failed),
    };
    rec.remaining(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(spec: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j", "namespace": "ns"}, "spec": spec}))
            .unwrap()
    }

    fn pod(v: serde_json::Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn indexed_pod(name: &str, index: i32, ready: bool) -> Arc<Pod> {
        pod(json!({
            "metadata": {"name": name, "namespace": "ns",
                "annotations": {COMPLETION_INDEX: index.to_string()},
                "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": []},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
    }

    fn failed_pod(finished: &str, code: i32) -> Arc<Pod> {
        pod(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "finishedAt": finished}}
            }]}
        }))
    }

    #[test]
    fn completed_indexes_round_trip_in_upstream_format() {
        let s: BTreeSet<i32> = [0, 1, 2, 3, 5, 7, 8].into();
        assert_eq!(format_indexes(&s), "0-3,5,7,8");
        assert_eq!(parse_indexes("0-3,5,7,8", 10), s);
        assert_eq!(parse_indexes("0-3,5,7,8", 6), [0, 1, 2, 3, 5].into());
        assert_eq!(parse_indexes("x,2-1,4", 10), [4].into());
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn pending_indexes_skip_succeeded_and_running() {
        let active = vec![indexed_pod("a", 1, true), indexed_pod("b", 9, true)];
        let done: BTreeSet<i32> = [0, 3].into();
        assert_eq!(first_pending_indexes(&done, &active, 3, 6), vec![2, 4, 5]);
        assert_eq!(first_pending_indexes(&done, &active, 10, 4), vec![2]);
    }

    #[test]
    fn wanted_pods_follow_completions_and_parallelism() {
        let seq = job(json!({"completions": 3, "parallelism": 1}));
        assert_eq!(want_active(&seq, 0, 0), 1);
        assert_eq!(want_active(&seq, 1, 2), 1);
        assert_eq!(want_active(&seq, 0, 3), 0);
        let par = job(json!({"completions": 5, "parallelism": 3}));
        assert_eq!(want_active(&par, 0, 0), 3);
        assert_eq!(want_active(&par, 3, 3), 2);
        let queue = job(json!({"parallelism": 4}));
        assert_eq!(want_active(&queue, 0, 0), 4);
        // After the first success, no new pods: the rest run out.
        assert_eq!(want_active(&queue, 3, 1), 3);
    }

    #[test]
    fn indexed_removal_drops_duplicates_and_invalid_indexes_first() {
        let j = job(json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}));
        let active = vec![
            indexed_pod("a", 0, true),
            indexed_pod("b", 0, false),
            indexed_pod("c", 5, true),
            indexed_pod("d", 1, true),
        ];
        let rm = pods_for_removal(&j, &active, 0, &HashMap::new());
        let names: Vec<_> = rm
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["c", "b"]);
        let rm = pods_for_removal(&j, &active, 3, &HashMap::new());
        assert_eq!(rm.len(), 3);
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_to_ten_minutes() {
        assert_eq!(backoff_duration(1), Duration::from_secs(10));
        assert_eq!(backoff_duration(2), Duration::from_secs(20));
        assert_eq!(backoff_duration(6), Duration::from_secs(320));
        assert_eq!(backoff_duration(7), Duration::from_secs(600));
        assert_eq!(backoff_duration(60), Duration::from_secs(600));
        let r = BackoffRecord::default().advance(
            &[],
            &[
                failed_pod("2026-01-01T00:00:00Z", 1),
                failed_pod("2026-01-01T00:00:05Z", 1),
            ],
        );
        assert_eq!(r.failures_after_last_success, 2);
        let now: Timestamp = "2026-01-01T00:00:12Z".parse().unwrap();
        assert_eq!(r.remaining(now), Duration::from_secs(13));
        // A later success resets the count.
        let ok = pod(
            json!({"metadata": {"name": "s"}, "status": {"phase": "Succeeded",
            "containerStatuses": [{"name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "finishedAt": "2026-01-01T00:00:20Z"}}}]}}),
        );
        let r = r.advance(&[ok], &[failed_pod("2026-01-01T00:00:30Z", 1)]);
        assert_eq!(r.failures_after_last_success, 1);
        assert_eq!(
            r.last_failure,
            Some("2026-01-01T00:00:30Z".parse().unwrap())
        );
    }

    #[test]
    fn failure_policy_rules_match_in_order() {
        let policy: PodFailurePolicy = serde_json::from_value(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]}))
        .unwrap();
        let m = match_failure_policy(&policy, &failed_pod("2026-01-01T00:00:00Z", 42));
        assert_eq!(
            m.fail_job.as_deref(),
            Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1")
        );
        let m = match_failure_policy(&policy, &failed_pod("2026-01-01T00:00:00Z", 1));
        assert_eq!(
            m,
            PolicyMatch {
                fail_job: None,
                counts: true,
                action: None
            }
        );
        let m = match_failure_policy(&policy, &failed_pod("2026-01-01T00:00:00Z", 3));
        assert_eq!(m.action.as_deref(), Some("Count"));
        let mut disrupted = (*failed_pod("2026-01-01T00:00:00Z", 42)).clone();
        disrupted.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(
            json!({"type": "DisruptionTarget", "status": "True"}),
        )
        .unwrap()]);
        let m = match_failure_policy(&policy, &disrupted);
        assert!(!m.counts);
        assert_eq!(m.action.as_deref(), Some("Ignore"));
    }

    #[test]
    fn deleted_pods_count_as_failed_unless_only_failed_are_replaced() {
        let running = pod(
            json!({"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Running"}}),
        );
        assert!(is_pod_failed(&running, &job(json!({}))));
        assert!(!is_pod_failed(
            &running,
            &job(json!({"podReplacementPolicy": "Failed"}))
        ));
        assert!(is_terminating(&running));
    }

    #[test]
    fn conditions_are_added_and_updated_once() {
        let now = Time("2026-01-01T00:00:00Z".parse().unwrap());
        let mut list = Vec::new();
        assert!(!ensure_condition(
            &mut list,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now.clone()
        ));
        assert!(ensure_condition(
            &mut list,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now.clone()
        ));
        assert!(!ensure_condition(
            &mut list,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now.clone()
        ));
        assert!(ensure_condition(
            &mut list,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now
        ));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, "False");
    }

    #[test]
    fn indexes_fail_after_their_own_backoff_limit() {
        let j =
            job(json!({"completions": 3, "completionMode": "Indexed", "backoffLimitPerIndex": 1}));
        let mut first = (*failed_pod("2026-01-01T00:00:00Z", 1)).clone();
        first.metadata.annotations = Some([(COMPLETION_INDEX.to_string(), "2".to_string())].into());
        assert!(!is_index_failed(&j, &first), "one failure allowed");
        assert_eq!(replacement_counts(&j, &first), (1, 0));
        let mut second = first.clone();
        second
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(INDEX_FAILURE_COUNT.to_string(), "1".to_string());
        assert!(is_index_failed(&j, &second));
        let now: Timestamp = "2026-01-01T00:00:25Z".parse().unwrap();
        // The second failure of the index waits 20 s.
        assert_eq!(index_backoff_remaining(&j, &second, now), Duration::ZERO);
        assert_eq!(
            index_backoff_remaining(&j, &second, "2026-01-01T00:00:05Z".parse().unwrap()),
            Duration::from_secs(15)
        );
        let pods = vec![Arc::new(first.clone()), Arc::new(second.clone())];
        assert_eq!(last_failed_per_index(&j, &pods, 3).len(), 1);
        // FailIndex fails the index at once.
        let fi = job(
            json!({"completions": 3, "completionMode": "Indexed", "backoffLimitPerIndex": 5,
            "podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}}),
        );
        assert!(is_index_failed(&fi, &first));
    }
}
