//! A StatefulSet pod's identity and storage, after upstream's `stateful_set_utils.go`: the
//! name `<set>-<ordinal>`, hostname and subdomain (the governing Service), the
//! `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index` labels, the
//! revision label, and one PersistentVolumeClaim per volumeClaimTemplate named
//! `<template>-<set>-<ordinal>`, whose owner references follow the
//! persistentVolumeClaimRetentionPolicy: the set owns it when `whenDeleted: Delete`, the pod
//! owns it once scaled away when `whenScaled: Delete` (the garbage collector then deletes it
//! with its owner).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::history::REVISION_HASH_LABEL;
use crate::pods::controller_ref;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// Splits `web-3` into (`web`, 3) (upstream's `getParentNameAndOrdinal`).
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, ord) = name.rsplit_once('-')?;
    if ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ord.parse().ok()?))
}

/// The ordinal of a pod of `set`, if it is one (by name).
pub fn ordinal_of(set: &StatefulSet, pod: &Pod) -> Option<i32> {
    let (parent, ord) = parent_and_ordinal(pod.metadata.name.as_deref()?)?;
    (Some(parent) == set.metadata.name.as_deref()).then_some(ord)
}

pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set.metadata.name.as_deref().unwrap_or(""))
}

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The first ordinal (`spec.ordinals.start`, 0 by default).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// `spec.replicas` (1 by default).
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0)
}

/// Whether `ordinal` is within `[start, start + replicas)`.
pub fn in_range(set: &StatefulSet, ordinal: i32) -> bool {
    let start = start_ordinal(set);
    ordinal >= start && ordinal < start + replicas(set)
}

/// The claims of the pod with `ordinal`, keyed by template name.
pub fn claims(set: &StatefulSet, ordinal: i32) -> BTreeMap<String, PersistentVolumeClaim> {
    let Some(spec) = set.spec.as_ref() else {
        return BTreeMap::new();
    };
    let set_name = set.metadata.name.as_deref().unwrap_or("");
    let sel_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(sel_labels.clone());
            let c = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&tname, set_name, ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            };
            (tname, c)
        })
        .collect()
}

/// A new pod for `ordinal` from `template` (the template of the revision it is created at),
/// carrying `revision` (the revision's name).
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let name = pod_name(set, ordinal);
    let tm = template.metadata.clone().unwrap_or_default();
    let mut labels = tm.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_HASH_LABEL.into(), revision.into());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    let service = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    spec.subdomain = service;
    // Claims replace template volumes of the same name.
    let claims = claims(set, ordinal);
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(tname, c)| Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: c.metadata.name.clone().unwrap_or_default(),
                read_only: None,
            }),
            ..Default::default()
        })
        .collect();
    volumes.extend(
        spec.volumes
            .take()
            .into_iter()
            .flatten()
            .filter(|v| !claims.contains_key(&v.name)),
    );
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![controller_ref(set)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The identity labels a pod is missing or has wrong (upstream's `identityMatches`, for the
/// parts that may still change on a live pod).
pub fn identity_patch(set: &StatefulSet, pod: &Pod, ordinal: i32) -> Option<serde_json::Value> {
    let name = pod_name(set, ordinal);
    let labels = pod.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let index = ordinal.to_string();
    if get(POD_NAME_LABEL) == Some(name.as_str()) && get(POD_INDEX_LABEL) == Some(index.as_str()) {
        return None;
    }
    Some(
        serde_json::json!({"metadata": {"labels": {POD_NAME_LABEL: name, POD_INDEX_LABEL: index}}}),
    )
}

/// `whenDeleted` and `whenScaled` is `Delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub delete_when_deleted: bool,
    pub delete_when_scaled: bool,
}

pub fn retention(set: &StatefulSet) -> Retention {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let is_delete = |v: Option<&String>| v.map(String::as_str) == Some("Delete");
    Retention {
        delete_when_deleted: is_delete(p.and_then(|p| p.when_deleted.as_ref())),
        delete_when_scaled: is_delete(p.and_then(|p| p.when_scaled.as_ref())),
    }
}

fn refers_to(r: &OwnerReference, kind: &str, name: &str, uid: &str) -> bool {
    r.uid == uid || (r.kind == kind && r.name == name)
}

/// The owner references a claim should carry (upstream's `updateClaimOwnerRefForSetAndPod`):
/// references to the set and the pod are replaced by controller references as the policy
/// says; other owners are kept. `pod` is (name, uid) of the pod when it exists. `None` when
/// nothing changes, or when another controller owns the claim (then it is left alone).
pub fn claim_owner_refs(
    claim: &PersistentVolumeClaim,
    set: &StatefulSet,
    pod: Option<(&str, &str)>,
    scaled_down: bool,
) -> Option<Vec<OwnerReference>> {
    let set_name = set.metadata.name.as_deref().unwrap_or("");
    let set_uid = set.metadata.uid.as_deref().unwrap_or("");
    let refs = claim.metadata.owner_references.clone().unwrap_or_default();
    let ours = |r: &OwnerReference| {
        (r.kind == "StatefulSet" && refers_to(r, "StatefulSet", set_name, set_uid))
            || pod.is_some_and(|(n, u)| r.kind == "Pod" && refers_to(r, "Pod", n, u))
    };
    // Another controller owns it: do not touch.
    if refs.iter().any(|r| r.controller == Some(true) && !ours(r)) {
        return None;
    }
    // A reference to an earlier set or pod of the same name (stale): leave it for the
    // garbage collector.
    if refs.iter().any(|r| {
        (r.kind == "StatefulSet" && r.name == set_name && r.uid != set_uid)
            || pod.is_some_and(|(n, u)| r.kind == "Pod" && r.name == n && r.uid != u)
    }) {
        return None;
    }
    let pol = retention(set);
    let mut want: Vec<OwnerReference> = refs.iter().filter(|r| !ours(r)).cloned().collect();
    let set_ref = controller_ref(set);
    let pod_ref = pod.map(|(n, u)| OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: n.into(),
        uid: u.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    });
    match (pol.delete_when_deleted, pol.delete_when_scaled) {
        (false, false) => {}
        (true, false) => want.push(set_ref),
        (false, true) => {
            if scaled_down {
                want.extend(pod_ref);
            }
        }
        (true, true) => {
            if scaled_down {
                want.extend(pod_ref);
            } else {
                want.push(set_ref);
            }
        }
    }
    (want != refs).then_some(want)
}

/// Whether a claim still belongs to an earlier pod of the same name (whose deletion the
/// garbage collector has yet to finish): the new pod must wait.
pub fn claim_is_stale(
    claim: &PersistentVolumeClaim,
    pod_name: &str,
    pod_uid: Option<&str>,
) -> bool {
    claim
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.kind == "Pod" && r.name == pod_name && Some(r.uid.as_str()) != pod_uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(policy: serde_json::Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {
                "replicas": 2,
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "persistentVolumeClaimRetentionPolicy": policy,
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}],
                             "volumes": [{"name": "www", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "disk"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn names_and_ordinals() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(claim_name("www", "web", 3), "www-web-3");
        let s = set(json!({}));
        assert!(in_range(&s, 1));
        assert!(!in_range(&s, 2));
    }

    #[test]
    fn pods_get_identity_claims_and_revision() {
        let s = set(json!({}));
        let t = s.spec.as_ref().unwrap().template.clone();
        let p = new_pod(&s, &t, 1, "web-abc");
        assert_eq!(p.metadata.name.as_deref(), Some("web-1"));
        let l = p.metadata.labels.as_ref().unwrap();
        assert_eq!(l[POD_NAME_LABEL], "web-1");
        assert_eq!(l[POD_INDEX_LABEL], "1");
        assert_eq!(l[REVISION_HASH_LABEL], "web-abc");
        assert_eq!(l["app"], "web");
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-1"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let vols = spec.volumes.as_ref().unwrap();
        assert_eq!(
            vols.len(),
            2,
            "the claim replaces the template's www volume"
        );
        let www = vols.iter().find(|v| v.name == "www").unwrap();
        assert_eq!(
            www.persistent_volume_claim.as_ref().unwrap().claim_name,
            "www-web-1"
        );
        assert!(identity_patch(&s, &p, 1).is_none());
        assert!(identity_patch(&s, &Pod::default(), 1).is_some());
        let c = &claims(&s, 1)["www"];
        assert_eq!(c.metadata.name.as_deref(), Some("www-web-1"));
        let cl = c.metadata.labels.as_ref().unwrap();
        assert_eq!((cl["tier"].as_str(), cl["app"].as_str()), ("disk", "web"));
    }

    fn refs(c: &[OwnerReference]) -> Vec<(String, String, bool)> {
        c.iter()
            .map(|r| (r.kind.clone(), r.uid.clone(), r.controller == Some(true)))
            .collect()
    }

    #[test]
    fn retention_policy_sets_owner_references() {
        let claim = PersistentVolumeClaim::default();
        let pod = Some(("web-1", "pod-uid"));
        // Retain/Retain: no owners.
        let s = set(json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
        assert_eq!(claim_owner_refs(&claim, &s, pod, true), None);
        // whenDeleted Delete: the set owns it.
        let s = set(json!({"whenDeleted": "Delete", "whenScaled": "Retain"}));
        let r = claim_owner_refs(&claim, &s, pod, false).unwrap();
        assert_eq!(
            refs(&r),
            vec![("StatefulSet".into(), "set-uid".into(), true)]
        );
        // whenScaled Delete: the pod owns it once scaled away, nobody before.
        let s = set(json!({"whenDeleted": "Retain", "whenScaled": "Delete"}));
        assert_eq!(claim_owner_refs(&claim, &s, pod, false), None);
        let r = claim_owner_refs(&claim, &s, pod, true).unwrap();
        assert_eq!(refs(&r), vec![("Pod".into(), "pod-uid".into(), true)]);
        // Both: the set while in range, the pod (instead of the set) once scaled away.
        let s = set(json!({"whenDeleted": "Delete", "whenScaled": "Delete"}));
        let in_set = claim_owner_refs(&claim, &s, pod, false).unwrap();
        assert_eq!(
            refs(&in_set),
            vec![("StatefulSet".into(), "set-uid".into(), true)]
        );
        let owned = PersistentVolumeClaim {
            metadata: ObjectMeta {
                owner_references: Some(in_set),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            claim_owner_refs(&owned, &s, pod, false),
            None,
            "already right"
        );
        let r = claim_owner_refs(&owned, &s, pod, true).unwrap();
        assert_eq!(refs(&r), vec![("Pod".into(), "pod-uid".into(), true)]);
        // Policy back to Retain: our references are removed.
        let s2 = set(json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
        assert_eq!(claim_owner_refs(&owned, &s2, pod, false), Some(vec![]));
        // Another controller's claim is left alone.
        let foreign = PersistentVolumeClaim {
            metadata: ObjectMeta {
                owner_references: Some(vec![OwnerReference {
                    kind: "Other".into(),
                    name: "x".into(),
                    uid: "other".into(),
                    api_version: "v1".into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(claim_owner_refs(&foreign, &s, pod, true), None);
    }

    #[test]
    fn claims_of_an_earlier_pod_are_stale() {
        let c = PersistentVolumeClaim {
            metadata: ObjectMeta {
                owner_references: Some(vec![OwnerReference {
                    kind: "Pod".into(),
                    name: "web-1".into(),
                    uid: "old".into(),
                    api_version: "v1".into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(claim_is_stale(&c, "web-1", None));
        assert!(claim_is_stale(&c, "web-1", Some("new")));
        assert!(!claim_is_stale(&c, "web-1", Some("old")));
        assert!(!claim_is_stale(
            &PersistentVolumeClaim::default(),
            "web-1",
            None
        ));
    }
}
