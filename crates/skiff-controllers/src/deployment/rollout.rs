//! The step math of a rollout, after upstream's `pkg/controller/deployment` (`rolling.go`,
//! `recreate.go`, `sync.go`'s `scale`, and `util`): pure functions from a Deployment and its
//! ReplicaSets to the sizes the ReplicaSets should have next. The controller applies them.
//!
//! - **Fenceposts:** `maxSurge` rounds up and `maxUnavailable` rounds down when they are
//!   percentages of `replicas`; if both come out 0, one pod may be unavailable.
//! - **RollingUpdate:** the new ReplicaSet grows while the sum of all ReplicaSets' sizes stays
//!   within `replicas + maxSurge`; old ones shrink while at least `replicas - maxUnavailable`
//!   pods stay available, unavailable old replicas first (oldest set first).
//! - **Recreate:** every old ReplicaSet to 0, and no new one before no old pod is left
//!   (terminating pods count).
//! - **Proportional scaling:** when `replicas` changes mid-rollout, the difference is shared
//!   among the active ReplicaSets in proportion to their sizes (measured against the
//!   `max-replicas` they were scaled for), any rounding leftover to the largest.
//! - **History:** old ReplicaSets beyond `revisionHistoryLimit` that are at 0 go, lowest
//!   revision first.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::revision;

/// A Deployment the controller cannot act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    #[error(
        "invalid value for IntOrString: invalid value {0:?}: must be an integer or a percentage"
    )]
    BadIntOrPercent(String),
}

/// `spec.replicas` of a Deployment (1 when unset, as defaulted).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet (0 when unset: the controller always sets it).
pub fn size(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// `status.replicas` (pods that exist) of a ReplicaSet.
pub fn actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// Available pods of a ReplicaSet as the rollout may count them: its status, but never more
/// than its size (a set just scaled down still reports the pods it is deleting).
pub fn available(rs: &ReplicaSet) -> i32 {
    let a = rs
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    a.min(size(rs).max(0))
}

/// `status.availableReplicas` as the ReplicaSet reports it.
pub fn reported_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

pub fn is_paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

/// `maxSurge`/`maxUnavailable` of `total`: an integer as is, a percentage rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, RolloutError> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let p: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| RolloutError::BadIntOrPercent(s.clone()))?;
            let prod = p * total as i64;
            let v = if round_up {
                (prod + 99).div_euclid(100)
            } else {
                prod.div_euclid(100)
            };
            Ok(v as i32)
        }
    }
}

/// Upstream's `ResolveFenceposts`: (surge, unavailable) for `desired` replicas.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), RolloutError> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        // Otherwise the rollout could never move.
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    // The API server defaults both to 25%.
    let quarter = IntOrString::String("25%".into());
    let (ms, mu) = match ru {
        Some(r) => (r.max_surge.as_ref(), r.max_unavailable.as_ref()),
        None => (Some(&quarter), Some(&quarter)),
    };
    resolve_fenceposts(ms, mu, replicas(d)).unwrap_or((0, 1))
}

/// How many pods above `replicas` a rolling update may run (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        return 0;
    }
    fenceposts(d).0
}

/// How many of `replicas` may be unavailable during a rolling update (0 for Recreate or no
/// replicas; never more than `replicas`).
pub fn max_unavailable(d: &Deployment) -> i32 {
    let r = replicas(d);
    if is_recreate(d) || r == 0 {
        return 0;
    }
    fenceposts(d).1.min(r)
}

/// The ReplicaSets ordered by creation time, then name (upstream's
/// `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |r: &ReplicaSet| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Larger first; among equals, older first (scaling down) or newer first (scaling up).
fn by_size(a: &ReplicaSet, b: &ReplicaSet, newer_first: bool) -> Ordering {
    size(b).cmp(&size(a)).then_with(|| {
        if newer_first {
            by_creation(b, a)
        } else {
            by_creation(a, b)
        }
    })
}

/// The new ReplicaSet: the oldest whose template equals the Deployment's (hash label aside).
pub fn find_new<'a>(d: &Deployment, sets: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = &d.spec.as_ref()?.template;
    let mut sorted: Vec<&ReplicaSet> = sets.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted.into_iter().find(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| revision::equal_ignore_hash(t, template))
    })
}

/// Upstream's `NewRSNewReplicas`: the size the new ReplicaSet may grow to now.
///
/// Upstream counts the ReplicaSets' sizes; Skiff counts, per ReplicaSet, the larger of its
/// size and the pods it still reports, so that an old ReplicaSet just scaled down holds its
/// place until its pods are really gone: maxSurge then bounds pods, not only sizes.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    if is_recreate(d) {
        return replicas(d);
    }
    let current: i32 = all.iter().map(|r| size(r).max(actual(r))).sum();
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return size(new);
    }
    let up = (max_total - current).min(replicas(d) - size(new));
    size(new) + up.max(0)
}

/// Upstream's `reconcileOldReplicaSets` (with `cleanupUnhealthyReplicas` and
/// `scaleDownOldReplicaSetsForRollingUpdate`): the new sizes of old ReplicaSets, in the order
/// to apply them. `old` are the active old sets; `new` the new one, if any.
pub fn scale_down_old(
    d: &Deployment,
    old: &[ReplicaSet],
    new: Option<&ReplicaSet>,
) -> Vec<(String, i32)> {
    let old_pods: i32 = old.iter().map(size).sum();
    if old_pods == 0 {
        return Vec::new();
    }
    let all_pods = old_pods + new.map(size).unwrap_or(0);
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = new.map(|n| size(n) - available(n)).unwrap_or(0).max(0);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut sets: Vec<ReplicaSet> = old.to_vec();
    sets.sort_by(by_creation);
    let mut sizes: Vec<i32> = sets.iter().map(size).collect();

    // First the old replicas that are not available anyway.
    let mut cleaned = 0;
    for (i, rs) in sets.iter().enumerate() {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = sizes[i] - available(rs);
        if sizes[i] == 0 || unhealthy <= 0 {
            continue;
        }
        let n = (max_scaled_down - cleaned).min(unhealthy);
        sizes[i] -= n;
        cleaned += n;
    }

    // Then available ones, while enough stay available.
    let available_now: i32 =
        sets.iter().map(available).sum::<i32>() + new.map(available).unwrap_or(0);
    if available_now > min_available {
        let total = available_now - min_available;
        let mut done = 0;
        for s in sizes.iter_mut() {
            if done >= total {
                break;
            }
            if *s == 0 {
                continue;
            }
            let n = (*s).min(total - done);
            *s -= n;
            done += n;
        }
    }
    sets.iter()
        .zip(sizes)
        .filter(|(rs, s)| size(rs) != *s)
        .map(|(rs, s)| (rs.metadata.name.clone().unwrap_or_default(), s))
        .collect()
}

/// Upstream's `oldPodsRunning` for Recreate: whether an old ReplicaSet still reports pods or
/// any pod of an old ReplicaSet is not finished (terminating pods count).
pub fn old_pods_running(old: &[ReplicaSet], old_pods: &[&Pod]) -> bool {
    if old.iter().map(actual).sum::<i32>() > 0 {
        return true;
    }
    old_pods.iter().any(|p| {
        let phase = p
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        !matches!(phase, "Succeeded" | "Failed")
    })
}

/// Upstream's `IsSaturated`: the new ReplicaSet has all the replicas, all available.
pub fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let r = replicas(d);
    size(rs) == r
        && revision::desired_replicas(rs) == Some(r)
        && rs
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
            == r
}

/// Upstream's `isScalingEvent`: an active ReplicaSet was scaled for another `replicas`.
pub fn is_scaling_event(d: &Deployment, sets: &[ReplicaSet]) -> bool {
    sets.iter()
        .filter(|rs| size(rs) > 0)
        .any(|rs| revision::desired_replicas(rs).is_some_and(|n| n != replicas(d)))
}

/// Rounds half away from zero (Go's `math.Round`).
fn round(x: f64) -> i32 {
    x.round() as i32
}

/// How much of `to_add` a ReplicaSet takes (upstream's `GetProportion`).
fn proportion(
    d: &Deployment,
    status_replicas: i32,
    rs: &ReplicaSet,
    to_add: i32,
    added: i32,
) -> i32 {
    if size(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let r = replicas(d);
    let fraction = if r == 0 {
        -size(rs)
    } else {
        let target = r + max_surge(d);
        let annotated = revision::max_replicas(rs).unwrap_or(status_replicas);
        if annotated == 0 {
            0
        } else {
            round(size(rs) as f64 * target as f64 / annotated as f64) - size(rs)
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// What `scale` decides for a Deployment whose `replicas` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScalePlan {
    /// Nothing to do.
    None,
    /// New sizes per ReplicaSet name, in the order to apply them.
    Sizes(Vec<(String, i32)>),
}

/// Upstream's `scale`: one active (or the latest) ReplicaSet takes `replicas` outright; a
/// saturated new ReplicaSet leaves the old ones at 0; otherwise a rolling Deployment shares
/// the change proportionally. `status_replicas` is the Deployment's `status.replicas` (for
/// sets without a `max-replicas` annotation).
pub fn scale(
    d: &Deployment,
    new: Option<&ReplicaSet>,
    old: &[ReplicaSet],
    status_replicas: i32,
) -> ScalePlan {
    let r = replicas(d);
    let name = |rs: &ReplicaSet| rs.metadata.name.clone().unwrap_or_default();
    // One active set, or none active: it takes everything.
    let mut old_sorted: Vec<&ReplicaSet> = old.iter().collect();
    old_sorted.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&ReplicaSet> = old_sorted
        .iter()
        .copied()
        .chain(new)
        .filter(|rs| size(rs) > 0)
        .collect();
    let target = match active.len() {
        0 => new.or(old_sorted.first().copied()),
        1 => Some(active[0]),
        _ => None,
    };
    if let Some(rs) = target {
        // Already the right size: nothing, unless it records another size (which would keep
        // this a scaling event forever).
        if size(rs) == r && revision::desired_replicas(rs).is_none_or(|x| x == r) {
            return ScalePlan::None;
        }
        return ScalePlan::Sizes(vec![(name(rs), r)]);
    }
    if let Some(n) = new {
        if is_saturated(d, n) {
            let v: Vec<(String, i32)> = old
                .iter()
                .filter(|rs| size(rs) > 0)
                .map(|rs| (name(rs), 0))
                .collect();
            return ScalePlan::Sizes(v);
        }
    }
    if is_recreate(d) {
        return ScalePlan::None;
    }
    let mut all: Vec<&ReplicaSet> = active;
    let current: i32 = all.iter().map(|rs| size(rs)).sum();
    let allowed = if r > 0 { r + max_surge(d) } else { 0 };
    let to_add = allowed - current;
    match to_add.cmp(&0) {
        Ordering::Greater => all.sort_by(|a, b| by_size(a, b, true)),
        Ordering::Less => all.sort_by(|a, b| by_size(a, b, false)),
        Ordering::Equal => {}
    }
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::new();
    for rs in &all {
        let p = if to_add != 0 {
            proportion(d, status_replicas, rs, to_add, added)
        } else {
            0
        };
        added += p;
        sizes.push((name(rs), size(rs) + p));
    }
    if to_add != added && !sizes.is_empty() {
        sizes[0].1 = (sizes[0].1 + to_add - added).max(0);
    }
    let changed: Vec<(String, i32)> = sizes
        .into_iter()
        .zip(&all)
        .filter(|((_, s), rs)| size(rs) != *s)
        .map(|(x, _)| x)
        .collect();
    if changed.is_empty() {
        ScalePlan::None
    } else {
        ScalePlan::Sizes(changed)
    }
}

/// Upstream's `cleanupDeployment`: old ReplicaSets to delete so that at most
/// `revisionHistoryLimit` remain, lowest revision first, only those fully scaled down.
pub fn history_to_prune(d: &Deployment, old: &[ReplicaSet]) -> Vec<ReplicaSet> {
    let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
        return Vec::new();
    };
    let mut alive: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = alive.len() as i64 - limit.max(0) as i64;
    if diff <= 0 {
        return Vec::new();
    }
    alive.sort_by(|a, b| {
        revision::revision(a)
            .cmp(&revision::revision(b))
            .then_with(|| by_creation(a, b))
    });
    alive
        .into_iter()
        .take(diff as usize)
        .filter(|rs| {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            actual(rs) == 0 && size(rs) == 0 && rs.metadata.generation.unwrap_or(0) <= observed
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(replicas: i32, surge: serde_json::Value, unavailable: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "v2"}]}}
            }
        }))
        .unwrap()
    }

    fn rs(name: &str, created: &str, size: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"replicas": size, "selector": {}},
            "status": {"replicas": size, "availableReplicas": available}
        }))
        .unwrap()
    }

    fn annotated(mut r: ReplicaSet, desired: i32, max: i32) -> ReplicaSet {
        revision::set_replicas_annotations(&mut r, desired, max);
        r
    }

    #[test]
    fn surge_rounds_up_unavailable_down_and_both_zero_allows_one() {
        let p = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled_value(&p("25%"), 10, true), Ok(3));
        assert_eq!(scaled_value(&p("25%"), 10, false), Ok(2));
        assert_eq!(scaled_value(&p("0%"), 10, true), Ok(0));
        assert_eq!(scaled_value(&IntOrString::Int(4), 10, true), Ok(4));
        assert!(scaled_value(&p("x%"), 10, true).is_err());
        assert!(scaled_value(&p("10"), 10, true).is_err());
        assert_eq!(
            resolve_fenceposts(Some(&p("25%")), Some(&p("25%")), 1),
            Ok((1, 0))
        );
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&p("10%")), 5),
            Ok((0, 1)),
            "both zero after rounding: one may be unavailable"
        );
        let d = dep(3, json!(0), json!(5));
        assert_eq!(max_unavailable(&d), 3, "never more than replicas");
        assert_eq!(max_surge(&dep(10, json!("25%"), json!("25%"))), 3);
        assert_eq!(max_unavailable(&dep(10, json!("25%"), json!("25%"))), 2);
        assert_eq!(max_unavailable(&dep(0, json!("25%"), json!("25%"))), 0);
    }

    #[test]
    fn new_set_grows_within_surge() {
        let d = dep(10, json!("30%"), json!(0)); // surge 3
        let old = rs("old", "2026-01-01T00:00:00Z", 10, 10);
        let new = rs("new", "2026-01-01T00:01:00Z", 0, 0);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
        let new = rs("new", "2026-01-01T00:01:00Z", 3, 0);
        assert_eq!(
            new_rs_new_replicas(&d, &[&old, &new], &new),
            3,
            "at the cap: stay"
        );
        let old = rs("old", "2026-01-01T00:00:00Z", 2, 2);
        let new = rs("new", "2026-01-01T00:01:00Z", 9, 8);
        assert_eq!(
            new_rs_new_replicas(&d, &[&old, &new], &new),
            10,
            "never beyond replicas"
        );
        // The old set was scaled to 2 but still runs 4 pods: they count until they are gone.
        let mut lingering = rs("old", "2026-01-01T00:00:00Z", 2, 2);
        lingering.status.as_mut().unwrap().replicas = 4;
        let new = rs("new", "2026-01-01T00:01:00Z", 8, 8);
        assert_eq!(new_rs_new_replicas(&d, &[&lingering, &new], &new), 9);
    }

    #[test]
    fn old_sets_shrink_only_while_enough_stay_available() {
        let d = dep(10, json!(3), json!(2));
        let old = rs("old", "2026-01-01T00:00:00Z", 10, 10);
        let new = rs("new", "2026-01-01T00:01:00Z", 3, 0);
        // 13 pods, 10 available, min 8: two may go though the new ones are not ready yet.
        assert_eq!(
            scale_down_old(&d, std::slice::from_ref(&old), Some(&new)),
            vec![("old".to_string(), 8)]
        );
        let old = rs("old", "2026-01-01T00:00:00Z", 8, 8);
        assert_eq!(
            scale_down_old(&d, std::slice::from_ref(&old), Some(&new)),
            vec![],
            "at the floor: wait for the new pods"
        );
        let new = rs("new", "2026-01-01T00:01:00Z", 5, 5);
        assert_eq!(
            scale_down_old(&d, std::slice::from_ref(&old), Some(&new)),
            vec![("old".to_string(), 3)]
        );
    }

    #[test]
    fn unhealthy_old_replicas_go_first_oldest_set_first() {
        let d = dep(4, json!(1), json!(1));
        // Two old sets with unavailable pods and a new set at 1 (unavailable).
        let a = rs("a", "2026-01-01T00:00:00Z", 2, 1);
        let b = rs("b", "2026-01-01T00:01:00Z", 2, 2);
        let new = rs("n", "2026-01-01T00:02:00Z", 1, 0);
        // all 5, min available 3, new unavailable 1: at most 1 may go: the unhealthy one of a.
        assert_eq!(
            scale_down_old(&d, &[b.clone(), a.clone()], Some(&new)),
            vec![("a".to_string(), 1)]
        );
    }

    #[test]
    fn recreate_waits_for_every_old_pod() {
        let gone = rs("old", "2026-01-01T00:00:00Z", 0, 0);
        let still = rs("old", "2026-01-01T00:00:00Z", 0, 0);
        let mut reporting = still.clone();
        reporting.status.as_mut().unwrap().replicas = 1;
        assert!(old_pods_running(std::slice::from_ref(&reporting), &[]));
        let terminating: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        let done: Pod = serde_json::from_value(
            json!({"metadata": {"name": "q"}, "status": {"phase": "Succeeded"}}),
        )
        .unwrap();
        assert!(old_pods_running(
            std::slice::from_ref(&gone),
            &[&terminating]
        ));
        assert!(!old_pods_running(std::slice::from_ref(&gone), &[&done]));
        assert!(!old_pods_running(&[gone], &[]));
        let mut d = dep(3, json!(1), json!(1));
        d.spec.as_mut().unwrap().strategy =
            serde_json::from_value(json!({"type": "Recreate"})).unwrap();
        assert_eq!(max_surge(&d), 0);
        assert_eq!(max_unavailable(&d), 0);
        let new = rs("new", "2026-01-01T00:01:00Z", 0, 0);
        assert_eq!(new_rs_new_replicas(&d, &[&new], &new), 3);
    }

    #[test]
    fn proportional_scaling_shares_the_change() {
        // 10 replicas, surge 3, mid-rollout at 8 old + 5 new = 13 (max-replicas 13).
        let mut d = dep(10, json!(3), json!(2));
        let old = annotated(rs("old", "2026-01-01T00:00:00Z", 8, 8), 10, 13);
        let new = annotated(rs("new", "2026-01-01T00:01:00Z", 5, 0), 10, 13);
        assert!(!is_scaling_event(&d, &[old.clone(), new.clone()]));
        d.spec.as_mut().unwrap().replicas = Some(20); // allowed 23: 10 more
        assert!(is_scaling_event(&d, &[old.clone(), new.clone()]));
        let plan = scale(&d, Some(&new), std::slice::from_ref(&old), 13);
        // old: round(8*23/13)=14 → +6; new: round(5*23/13)=9 → +4.
        assert_eq!(
            plan,
            ScalePlan::Sizes(vec![("old".into(), 14), ("new".into(), 9)])
        );
        // Scaling down to 5: allowed 5+3=8, 5 fewer.
        d.spec.as_mut().unwrap().replicas = Some(5);
        let plan = scale(&d, Some(&new), std::slice::from_ref(&old), 13);
        // old: round(8*8/13)=5 → -3; new: round(5*8/13)=3 → -2.
        assert_eq!(
            plan,
            ScalePlan::Sizes(vec![("old".into(), 5), ("new".into(), 3)])
        );
        // Leftovers from rounding go to the largest set.
        d.spec.as_mut().unwrap().replicas = Some(11); // allowed 11+3=14: 1 more
        let plan = scale(&d, Some(&new), std::slice::from_ref(&old), 13);
        // old: round(8*14/13)=9 → +1 (min(1, allowed 1)); new gets nothing left.
        assert_eq!(plan, ScalePlan::Sizes(vec![("old".into(), 9)]));
    }

    #[test]
    fn one_active_set_takes_all_and_saturated_new_zeroes_old() {
        let mut d = dep(5, json!(1), json!(1));
        let old = rs("old", "2026-01-01T00:00:00Z", 0, 0);
        let new = annotated(rs("new", "2026-01-01T00:01:00Z", 3, 3), 3, 4);
        assert_eq!(
            scale(&d, Some(&new), std::slice::from_ref(&old), 3),
            ScalePlan::Sizes(vec![("new".into(), 5)])
        );
        d.spec.as_mut().unwrap().replicas = Some(3);
        assert_eq!(
            scale(&d, Some(&new), std::slice::from_ref(&old), 3),
            ScalePlan::None
        );
        // The right size but recorded for another: the annotations are brought up to date,
        // or every sync would be a scaling event.
        let stale = annotated(rs("new", "2026-01-01T00:01:00Z", 3, 3), 5, 6);
        assert!(is_scaling_event(&d, std::slice::from_ref(&stale)));
        assert_eq!(
            scale(&d, Some(&stale), std::slice::from_ref(&old), 3),
            ScalePlan::Sizes(vec![("new".into(), 3)])
        );
        // Nothing active: the newest old set (no new set yet) takes it.
        let older = rs("older", "2025-01-01T00:00:00Z", 0, 0);
        assert_eq!(
            scale(&d, None, &[older, old.clone()], 0),
            ScalePlan::Sizes(vec![("old".into(), 3)])
        );
        let sat = annotated(rs("new", "2026-01-01T00:01:00Z", 3, 3), 3, 4);
        let lingering = rs("old", "2026-01-01T00:00:00Z", 1, 1);
        assert_eq!(
            scale(&d, Some(&sat), &[lingering], 4),
            ScalePlan::Sizes(vec![("old".into(), 0)])
        );
    }

    #[test]
    fn finds_the_new_set_by_template() {
        let d = dep(3, json!(1), json!(1));
        let mut a: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-a", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"selector": {}, "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "a"}},
                "spec": {"containers": [{"name": "c", "image": "v1"}]}}}
        }))
        .unwrap();
        assert!(find_new(&d, std::slice::from_ref(&a)).is_none());
        a.spec.as_mut().unwrap().template.as_mut().unwrap().spec =
            d.spec.as_ref().unwrap().template.spec.clone();
        assert_eq!(
            find_new(&d, std::slice::from_ref(&a))
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("web-a")
        );
    }

    #[test]
    fn history_keeps_the_limit_and_spares_sets_with_pods() {
        let mut d = dep(3, json!(1), json!(1));
        d.spec.as_mut().unwrap().revision_history_limit = Some(1);
        let with_rev = |name: &str, r: i32, size: i32| {
            let mut x = rs(name, "2026-01-01T00:00:00Z", size, size);
            x.metadata.annotations = Some([(revision::REVISION.to_string(), r.to_string())].into());
            x
        };
        let old = [
            with_rev("r3", 3, 0),
            with_rev("r1", 1, 0),
            with_rev("r2", 2, 1),
        ];
        let names: Vec<String> = history_to_prune(&d, &old)
            .into_iter()
            .map(|r| r.metadata.name.unwrap())
            .collect();
        // 3 old, keep 1: r1 and r2 are candidates; r2 still has a pod.
        assert_eq!(names, ["r1"]);
        d.spec.as_mut().unwrap().revision_history_limit = None;
        assert!(history_to_prune(&d, &old).is_empty());
    }

    fn set_size(rs: &mut ReplicaSet, n: i32) {
        rs.spec.as_mut().unwrap().replicas = Some(n);
    }

    fn set_available(rs: &mut ReplicaSet, n: i32) {
        let total = size(rs);
        let st = rs.status.as_mut().unwrap();
        st.available_replicas = Some(n);
        st.replicas = total;
    }

    /// Runs a whole rolling update on a model cluster where pods are created and deleted at
    /// once and new pods become available one step after they appear, applying the step
    /// functions as the controller does, and checks the bounds after every write.
    fn simulate(r: i32, surge: serde_json::Value, unavailable: serde_json::Value) -> usize {
        let d = dep(r, surge.clone(), unavailable.clone());
        let (max_total, min_avail) = (r + max_surge(&d), r - max_unavailable(&d));
        let mut old = rs("old", "2026-01-01T00:00:00Z", r, r);
        let mut new = rs("new", "2026-01-01T00:01:00Z", 0, 0);
        let ctx = format!("replicas {r}, maxSurge {surge}, maxUnavailable {unavailable}");
        let check = |old: &ReplicaSet, new: &ReplicaSet| {
            let total = size(old) + size(new);
            let avail = available(old) + available(new);
            assert!(total <= max_total, "{ctx}: {total} > {max_total}");
            assert!(avail >= min_avail, "{ctx}: {avail} available < {min_avail}");
        };
        for step in 0..200 {
            if size(&new) == r && available(&new) == r && size(&old) == 0 {
                return step;
            }
            // The kubelet: pods of the new set become available (one step late).
            let ready_now = available(&new).max(0);
            let created = size(&new);
            // The controller: grow the new set, else shrink the old one.
            let all = [&old, &new];
            let grow = new_rs_new_replicas(&d, &all, &new);
            if grow != size(&new) {
                set_size(&mut new, grow);
            } else {
                for (name, to) in scale_down_old(&d, std::slice::from_ref(&old), Some(&new)) {
                    assert_eq!(name, "old");
                    assert!(to < size(&old));
                    set_size(&mut old, to);
                    let a = available(&old).min(to);
                    set_available(&mut old, a);
                }
            }
            check(&old, &new);
            let now_available = created.max(ready_now).min(size(&new));
            set_available(&mut new, now_available);
            check(&old, &new);
        }
        panic!("{ctx}: the rollout did not finish");
    }

    #[test]
    fn every_rolling_update_finishes_within_its_bounds() {
        let surges = [
            json!(0),
            json!(1),
            json!(3),
            json!("25%"),
            json!("50%"),
            json!("100%"),
        ];
        let unavailables = [
            json!(0),
            json!(1),
            json!(2),
            json!("25%"),
            json!("50%"),
            json!("100%"),
        ];
        let mut runs = 0;
        for r in 1..=12 {
            for s in &surges {
                for u in &unavailables {
                    if (s == &json!(0) || s == &json!("0%")) && u == &json!(0) {
                        continue; // refused by validation
                    }
                    let steps = simulate(r, s.clone(), u.clone());
                    assert!(steps > 0);
                    runs += 1;
                }
            }
        }
        assert_eq!(runs, 12 * 35);
    }
}
