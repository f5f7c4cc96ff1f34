//! Pod facts controllers share: activity, readiness and availability (upstream's
//! `podutil`), pods from templates with controller references, and the order in which a
//! controller deletes surplus pods (`controller.ActivePods` ranking).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use skiff_runtime::Object;

/// Not finished and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// Succeeded or Failed.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The Ready condition's status and last transition.
pub(crate) fn ready_condition(pod: &Pod) -> Option<(bool, Option<Timestamp>)> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((
        c.status == "True",
        c.last_transition_time.as_ref().map(|t| t.0),
    ))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|(r, _)| r)
}

/// Ready for at least `min_ready_seconds` at `now` (upstream's `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    readiness(pod, min_ready_seconds, now).1
}

/// Whether the pod is ready, and whether it is available at `now`, from one look at its
/// Ready condition (status counts want both of every pod).
pub fn readiness(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> (bool, bool) {
    match ready_condition(pod) {
        Some((true, since)) => {
            let available = min_ready_seconds <= 0
                || since.is_some_and(|t| {
                    t + jiff::SignedDuration::from_secs(min_ready_seconds as i64) <= now
                });
            (true, available)
        }
        _ => (false, false),
    }
}

/// When a ready pod becomes available (`None`: not ready, or available already).
pub fn available_at(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<Timestamp> {
    match ready_condition(pod) {
        Some((true, Some(since))) if min_ready_seconds > 0 => {
            let at = since + jiff::SignedDuration::from_secs(min_ready_seconds as i64);
            (at > now).then_some(at)
        }
        _ => None,
    }
}

/// How long until the first of `pods` that is ready but not yet available becomes available
/// (plus a 10 ms margin), for a controller to look again then; `None` if none is waiting.
pub fn next_available<'a>(
    pods: impl IntoIterator<Item = &'a Arc<Pod>>,
    min_ready_seconds: i32,
    clock: &skiff_runtime::Clock,
) -> Option<std::time::Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    let now = clock.now();
    pods.into_iter()
        .filter_map(|p| available_at(p, min_ready_seconds, now))
        .min()
        .map(|t| clock.until(t) + std::time::Duration::from_millis(10))
}

/// The controller reference to `owner` a dependent carries.
pub fn controller_ref<K: Object>(owner: &K) -> OwnerReference {
    let m = owner.metadata();
    OwnerReference {
        api_version: K::API_VERSION.to_string(),
        kind: K::KIND.to_string(),
        name: m.name.clone().unwrap_or_default(),
        uid: m.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The controlling owner reference of `meta`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A new pod from `template`, controlled by `owner`, named `<prefix>` + a random suffix by
/// the API server (`generateName`) unless `name` is given.
pub fn pod_from_template<K: Object>(
    template: &PodTemplateSpec,
    owner: &K,
    generate_name: &str,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.to_string()),
            namespace: owner.metadata().namespace.clone(),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// Orders pods so that the ones to delete first come first (upstream's `ActivePods` less
/// function, with `colocated` counting active pods of the same controller per node):
/// unassigned before assigned; Pending before Unknown before Running; not ready before ready;
/// more pods on the same node first; ready more recently first; more restarts first; newer
/// first.
pub fn deletion_order(a: &Pod, b: &Pod, colocated: &HashMap<String, usize>) -> Ordering {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (na, nb) = (node(a), node(b));
    (!na.is_empty())
        .cmp(&!nb.is_empty())
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| {
            let ca = colocated.get(&na).copied().unwrap_or(0);
            let cb = colocated.get(&nb).copied().unwrap_or(0);
            cb.cmp(&ca)
        })
        .then_with(|| {
            // Ready more recently first.
            let ta = ready_condition(a).and_then(|(r, t)| r.then_some(t).flatten());
            let tb = ready_condition(b).and_then(|(r, t)| r.then_some(t).flatten());
            tb.cmp(&ta)
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            let ca = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let cb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
            cb.cmp(&ca)
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    pub fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub fn pod(
        name: &str,
        node: &str,
        phase: &str,
        ready_since: Option<&str>,
        created: &str,
    ) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                creation_timestamp: Some(Time(ts(created))),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_since.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(ts(t))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn availability_honours_min_ready_seconds() {
        let p = pod(
            "a",
            "n",
            "Running",
            Some("2026-01-01T00:00:00Z"),
            "2026-01-01T00:00:00Z",
        );
        assert!(is_available(&p, 0, ts("2026-01-01T00:00:00Z")));
        assert!(!is_available(&p, 10, ts("2026-01-01T00:00:09Z")));
        assert!(is_available(&p, 10, ts("2026-01-01T00:00:10Z")));
        assert_eq!(
            available_at(&p, 10, ts("2026-01-01T00:00:05Z")),
            Some(ts("2026-01-01T00:00:10Z"))
        );
        let np = pod("b", "n", "Pending", None, "2026-01-01T00:00:00Z");
        assert!(!is_available(&np, 0, ts("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn deletion_prefers_unassigned_pending_unready_then_newest() {
        let t = "2026-01-01T00:00:00Z";
        let unassigned = pod("unassigned", "", "Pending", None, t);
        let pending = pod("pending", "n1", "Pending", None, t);
        let running_unready = pod("unready", "n1", "Running", None, t);
        let ready_old = pod(
            "ready-old",
            "n2",
            "Running",
            Some("2026-01-01T00:00:01Z"),
            t,
        );
        let ready_new = pod(
            "ready-new",
            "n2",
            "Running",
            Some("2026-01-01T00:00:05Z"),
            t,
        );
        let mut pods = [
            &ready_old,
            &running_unready,
            &ready_new,
            &pending,
            &unassigned,
        ];
        let colocated = HashMap::new();
        pods.sort_by(|a, b| deletion_order(a, b, &colocated));
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            ["unassigned", "pending", "unready", "ready-new", "ready-old"]
        );
    }
}
