//! A Deployment's status and conditions, after upstream's `pkg/controller/deployment`
//! (`sync.go`'s `calculateStatus`, `syncRolloutStatus`, `checkPausedConditions`,
//! `requeueStuckDeployment`, and `util`'s condition helpers). Pure: time is passed in.
//!
//! - Counts: `replicas` (pods the ReplicaSets report), `updatedReplicas` (the new set's),
//!   `readyReplicas`, `availableReplicas`, `unavailableReplicas` (sizes minus available).
//! - `Available`: True `MinimumReplicasAvailable` while at least `replicas - maxUnavailable`
//!   pods are available, else False `MinimumReplicasUnavailable`.
//! - `Progressing` (only with a progress deadline): `NewReplicaSetCreated` /
//!   `FoundNewReplicaSet` when the new set appears, `ReplicaSetUpdated` each time the rollout
//!   moves (its `lastUpdateTime` is the deadline's start), `NewReplicaSetAvailable` when
//!   complete, False `ProgressDeadlineExceeded` when `progressDeadlineSeconds` pass without
//!   progress; Unknown `DeploymentPaused` / `DeploymentResumed` around a pause.
//! - A condition keeps its `lastTransitionTime` while its status stays; the same status and
//!   reason again changes nothing.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::rollout::{self, actual, ready, replicas, reported_available, size};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";

/// A new condition stamped `now` (both times).
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn remove(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|x| x.type_ != type_);
        if c.is_empty() {
            status.conditions = None;
        }
    }
}

/// Upstream's `SetDeploymentCondition`: same status and reason changes nothing; same status
/// keeps the transition time.
pub fn set(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get(status, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    let conds = status.conditions.get_or_insert_with(Vec::new);
    conds.retain(|x| x.type_ != c.type_);
    conds.push(c);
}

/// Whether `spec.progressDeadlineSeconds` is set (and not "forever", MaxInt32).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

fn deadline_seconds(d: &Deployment) -> i64 {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(600) as i64
}

fn num(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

/// The status counts of `d` given its ReplicaSets (the new one also in `all`), with the
/// Available condition; other conditions and the collision count carry over.
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let old = d.status.clone().unwrap_or_default();
    let available: i32 = all.iter().map(|r| reported_available(r)).sum();
    let total: i32 = all.iter().map(|r| size(r)).sum();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: num(all.iter().map(|r| actual(r)).sum()),
        updated_replicas: num(new.map(actual).unwrap_or(0)),
        ready_replicas: num(all.iter().map(|r| ready(r)).sum()),
        available_replicas: num(available),
        unavailable_replicas: num((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
    };
    if available >= replicas(d) - rollout::max_unavailable(d) {
        set(
            &mut status,
            condition(
                AVAILABLE,
                "True",
                MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set(
            &mut status,
            condition(
                AVAILABLE,
                "False",
                MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    status
}

fn counts(s: &DeploymentStatus) -> (i32, i32, i32, i32) {
    (
        s.replicas.unwrap_or(0),
        s.updated_replicas.unwrap_or(0),
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
    )
}

/// Upstream's `DeploymentComplete`.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let r = replicas(d);
    let (total, updated, _, available) = counts(s);
    updated == r
        && total == r
        && available == r
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream's `DeploymentProgressing`: more updated, fewer old, more ready or available
/// replicas than the stored status says.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let (ot, ou, or, oa) = counts(&old);
    let (nt, nu, nr, na) = counts(new);
    nu > ou || (nt - nu) < (ot - ou) || nr > or || na > oa
}

/// Upstream's `DeploymentTimedOut`: the Progressing condition has not been updated for
/// `progressDeadlineSeconds`.
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = get(s, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => return false,
        Some(TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = c.last_update_time.as_ref().map(|t| t.0) else {
        return false;
    };
    from + jiff::SignedDuration::from_secs(deadline_seconds(d)) < now
}

/// Upstream's `syncRolloutStatus` minus the write: the status `d` should have after a
/// rollout step. `failure` is a ReplicaFailure condition copied from a ReplicaSet.
pub fn rollout_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let mut s = calculate_status(d, all, new, now);
    if !has_progress_deadline(d) {
        remove(&mut s, PROGRESSING);
    }
    let current = d
        .status
        .as_ref()
        .and_then(|st| get(st, PROGRESSING))
        .cloned();
    let (total, updated, _, _) = counts(&s);
    let is_complete = total == updated
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
    let name = d.metadata.name.clone().unwrap_or_default();
    let subject = match new.and_then(|n| n.metadata.name.clone()) {
        Some(rs) => format!("ReplicaSet {rs:?}"),
        None => format!("Deployment {name:?}"),
    };
    if has_progress_deadline(d) && !is_complete {
        if complete(d, &s) {
            set(
                &mut s,
                condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_AVAILABLE,
                    format!("{subject} has successfully progressed."),
                    now,
                ),
            );
        } else if progressing(d, &s) {
            let mut c = condition(
                PROGRESSING,
                "True",
                RS_UPDATED,
                format!("{subject} is progressing."),
                now,
            );
            // Every bit of progress renews the deadline; the transition time stays.
            if let Some(cur) = &current {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove(&mut s, PROGRESSING);
            }
            set(&mut s, c);
        } else if timed_out(d, &s, now) {
            set(
                &mut s,
                condition(
                    PROGRESSING,
                    "False",
                    TIMED_OUT,
                    format!("{subject} has timed out progressing."),
                    now,
                ),
            );
        }
    }
    // A ReplicaSet's failure to create pods shows on the Deployment.
    let failure = new.into_iter().chain(all.iter().copied()).find_map(|rs| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE && c.status == "True")
            .cloned()
    });
    match failure {
        Some(f) => set(
            &mut s,
            DeploymentCondition {
                type_: REPLICA_FAILURE.into(),
                status: f.status,
                reason: f.reason,
                message: f.message,
                last_update_time: f.last_transition_time.clone(),
                last_transition_time: f.last_transition_time,
            },
        ),
        None => remove(&mut s, REPLICA_FAILURE),
    }
    s
}

/// Upstream's `requeueStuckDeployment`: how long until `d` should be looked at again to
/// notice a missed progress deadline (`None`: no deadline to watch).
pub fn recheck_after(
    d: &Deployment,
    s: &DeploymentStatus,
    now: Timestamp,
) -> Option<std::time::Duration> {
    if !has_progress_deadline(d) {
        return None;
    }
    let c = get(d.status.as_ref()?, PROGRESSING).or_else(|| get(s, PROGRESSING))?;
    if complete(d, s) || c.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let from = c.last_update_time.as_ref()?.0;
    let at = from + jiff::SignedDuration::from_secs(deadline_seconds(d));
    let left = std::time::Duration::try_from(at.duration_since(now)).unwrap_or_default();
    // The deadline is exceeded once strictly past it, at second precision: a second more.
    Some(left + std::time::Duration::from_secs(1))
}

/// Upstream's `checkPausedConditions`: the Progressing condition a pause or resume sets, if
/// it changes (never over a reported timeout).
pub fn paused_condition(d: &Deployment, now: Timestamp) -> Option<DeploymentStatus> {
    if !has_progress_deadline(d) {
        return None;
    }
    let mut s = d.status.clone().unwrap_or_default();
    let cur = get(&s, PROGRESSING);
    if cur.and_then(|c| c.reason.as_deref()) == Some(TIMED_OUT) {
        return None;
    }
    let paused_shown = cur.and_then(|c| c.reason.as_deref()) == Some(PAUSED);
    let c = if rollout::is_paused(d) && !paused_shown {
        condition(
            PROGRESSING,
            "Unknown",
            PAUSED,
            "Deployment is paused".into(),
            now,
        )
    } else if !rollout::is_paused(d) && paused_shown {
        condition(
            PROGRESSING,
            "Unknown",
            RESUMED,
            "Deployment is resumed".into(),
            now,
        )
    } else {
        return None;
    };
    set(&mut s, c);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn dep(status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 3, "progressDeadlineSeconds": 60,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {"metadata": {"labels": {"app": "web"}}}},
            "status": status
        }))
        .unwrap()
    }

    fn rs(name: &str, size: i32, ready: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": size, "selector": {}},
            "status": {"replicas": size, "readyReplicas": ready, "availableReplicas": available}
        }))
        .unwrap()
    }

    #[test]
    fn counts_and_availability() {
        let d = dep(json!({}));
        let old = rs("web-old", 2, 2, 2);
        let new = rs("web-new", 2, 1, 0);
        let s = calculate_status(&d, &[&old, &new], Some(&new), ts("2026-01-01T00:00:00Z"));
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.replicas, Some(4));
        assert_eq!(s.updated_replicas, Some(2));
        assert_eq!(s.ready_replicas, Some(3));
        assert_eq!(s.available_replicas, Some(2));
        assert_eq!(s.unavailable_replicas, Some(2));
        let a = get(&s, AVAILABLE).unwrap();
        assert_eq!(
            (a.status.as_str(), a.reason.as_deref()),
            ("False", Some(MINIMUM_REPLICAS_UNAVAILABLE))
        );
        let new = rs("web-new", 3, 3, 3);
        let s = calculate_status(&d, &[&new], Some(&new), ts("2026-01-01T00:00:00Z"));
        assert_eq!(
            get(&s, AVAILABLE).unwrap().message.as_deref(),
            Some("Deployment has minimum availability.")
        );
        assert_eq!(s.unavailable_replicas, None, "zero is omitted as upstream");
    }

    #[test]
    fn progress_then_complete_then_no_change() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let d = dep(json!({"replicas": 3, "updatedReplicas": 0, "conditions": [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated",
             "lastUpdateTime": "2025-12-31T23:59:00Z", "lastTransitionTime": "2025-12-31T23:59:00Z"}]}));
        let old = rs("web-old", 3, 3, 3);
        let new = rs("web-new", 1, 0, 0);
        let s = rollout_status(&d, &[&old, &new], Some(&new), t0);
        let p = get(&s, PROGRESSING).unwrap();
        assert_eq!(p.reason.as_deref(), Some(RS_UPDATED));
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-new\" is progressing.")
        );
        assert_eq!(p.last_update_time, Some(Time(t0)));
        assert_eq!(
            p.last_transition_time,
            Some(Time(ts("2025-12-31T23:59:00Z"))),
            "status stayed True"
        );

        let mut d2 = d.clone();
        d2.status = Some(s);
        let new = rs("web-new", 3, 3, 3);
        let s = rollout_status(&d2, &[&new], Some(&new), t0);
        let p = get(&s, PROGRESSING).unwrap();
        assert_eq!(p.reason.as_deref(), Some(NEW_RS_AVAILABLE));
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-new\" has successfully progressed.")
        );
        assert!(complete(&d2, &s));
    }

    #[test]
    fn deadline_exceeded_without_progress() {
        let d = dep(
            json!({"replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3, "conditions": [
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
             "lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
        let old = rs("web-old", 3, 3, 3);
        let new = rs("web-new", 1, 0, 0);
        let at = |s| rollout_status(&d, &[&old, &new], Some(&new), ts(s));
        assert_eq!(
            get(&at("2026-01-01T00:01:00Z"), PROGRESSING)
                .unwrap()
                .reason
                .as_deref(),
            Some(RS_UPDATED)
        );
        let s = at("2026-01-01T00:01:01Z");
        let p = get(&s, PROGRESSING).unwrap();
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref()),
            ("False", Some(TIMED_OUT))
        );
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-new\" has timed out progressing.")
        );
        assert_eq!(
            recheck_after(&d, &at("2026-01-01T00:00:30Z"), ts("2026-01-01T00:00:30Z")),
            Some(std::time::Duration::from_secs(31))
        );
    }

    #[test]
    fn pause_and_resume_conditions() {
        let t = ts("2026-01-01T00:00:00Z");
        let mut d = dep(json!({}));
        assert!(paused_condition(&d, t).is_none());
        d.spec.as_mut().unwrap().paused = Some(true);
        let s = paused_condition(&d, t).unwrap();
        let p = get(&s, PROGRESSING).unwrap();
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref(), p.message.as_deref()),
            ("Unknown", Some(PAUSED), Some("Deployment is paused"))
        );
        d.status = Some(s);
        assert!(paused_condition(&d, t).is_none(), "already shown");
        d.spec.as_mut().unwrap().paused = Some(false);
        let s = paused_condition(&d, t).unwrap();
        assert_eq!(
            get(&s, PROGRESSING).unwrap().reason.as_deref(),
            Some(RESUMED)
        );
    }

    #[test]
    fn same_status_and_reason_changes_nothing() {
        let mut s = DeploymentStatus::default();
        set(
            &mut s,
            condition(
                AVAILABLE,
                "True",
                "A",
                "one".into(),
                ts("2026-01-01T00:00:00Z"),
            ),
        );
        set(
            &mut s,
            condition(
                AVAILABLE,
                "True",
                "A",
                "two".into(),
                ts("2026-01-01T00:01:00Z"),
            ),
        );
        assert_eq!(get(&s, AVAILABLE).unwrap().message.as_deref(), Some("one"));
        set(
            &mut s,
            condition(
                AVAILABLE,
                "True",
                "B",
                "three".into(),
                ts("2026-01-01T00:02:00Z"),
            ),
        );
        let c = get(&s, AVAILABLE).unwrap();
        assert_eq!(
            c.last_transition_time,
            Some(Time(ts("2026-01-01T00:00:00Z")))
        );
        assert_eq!(c.last_update_time, Some(Time(ts("2026-01-01T00:02:00Z"))));
    }

    #[test]
    fn replica_failure_is_copied_from_the_replica_sets_and_cleared() {
        let t = ts("2026-01-01T00:00:00Z");
        let d = dep(json!({}));
        let mut new = rs("web-new", 3, 0, 0);
        new.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(json!({
            "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
            "message": "pods \"web-new-x\" is forbidden: exceeded quota",
            "lastTransitionTime": "2026-01-01T00:00:00Z"
        }))
        .unwrap()]);
        let s = rollout_status(&d, &[&new], Some(&new), t);
        let f = get(&s, REPLICA_FAILURE).unwrap();
        assert_eq!(f.reason.as_deref(), Some("FailedCreate"));
        assert!(f.message.as_deref().unwrap().contains("exceeded quota"));
        let mut d2 = d.clone();
        d2.status = Some(s);
        let healthy = rs("web-new", 3, 0, 0);
        let s = rollout_status(&d2, &[&healthy], Some(&healthy), t);
        assert!(get(&s, REPLICA_FAILURE).is_none());
    }
}
