//! Revisions and pod-template hashes of a Deployment's ReplicaSets, after upstream's
//! `pkg/controller/deployment/util` (ComputeHash, EqualIgnoreHash, SetNewReplicaSetAnnotations,
//! MaxRevision, SetReplicasAnnotations).
//!
//! - A ReplicaSet is named `<deployment>-<hash>`, where the hash is FNV-1a (32 bit) over the
//!   Deployment's pod template (here in a canonical JSON form: sorted keys, no nulls or empty
//!   lists/maps, so it is stable across restarts and versions) followed by the collision count
//!   as 8 little-endian bytes when set, printed in decimal and re-spelled in upstream's
//!   "safe" alphabet (no vowels, no look-alike characters): at most 10 characters.
//! - `deployment.kubernetes.io/revision` numbers ReplicaSets; the new one gets one more than
//!   the highest old one. A ReplicaSet whose template comes back (a rollback) keeps its former
//!   numbers in `deployment.kubernetes.io/revision-history` (comma separated, at most 2000
//!   characters, oldest dropped first).
//! - The Deployment's own annotations are copied onto its new ReplicaSet (so
//!   `kubernetes.io/change-cause` appears in `kubectl rollout history`), except the
//!   controller's bookkeeping ones and `kubectl.kubernetes.io/last-applied-configuration`.
//! - `deployment.kubernetes.io/desired-replicas` and `max-replicas` record the Deployment's
//!   size (and size plus surge) a ReplicaSet was last scaled for: proportional scaling reads
//!   them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// The label that ties a ReplicaSet and its pods to one pod template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// apps/v1beta1's rollback request (never copied, kept for old objects).
pub const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Longest `revision-history` annotation kept.
pub const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// upstream's `rand.SafeEncodeString` alphabet.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Annotations of the Deployment that are not copied to its ReplicaSets.
pub fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | DEPRECATED_ROLLBACK_TO
    )
}

/// FNV-1a, 32 bit.
fn fnv1a32(seed: u32, bytes: &[u8]) -> u32 {
    let mut h = seed;
    for b in bytes {
        h ^= *b as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

const FNV_OFFSET: u32 = 2_166_136_261;

/// Re-spells `s` in the safe alphabet, character by character.
pub fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| SAFE_ALPHABET[(c as usize) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// Drops nulls and empty lists and maps, recursively: absent and empty mean the same in a
/// template (as upstream's semantic equality treats nil and empty alike).
fn prune(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(a) => {
            let items: Vec<Value> = a.iter().map(|x| prune(x).unwrap_or(Value::Null)).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                if let Some(x) = prune(&m[k]) {
                    out.insert(k.clone(), x);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        other => Some(other.clone()),
    }
}

/// `template` in canonical form: sorted keys, nothing empty.
pub fn canonical(template: &PodTemplateSpec) -> Value {
    let v = serde_json::to_value(template).unwrap_or(Value::Null);
    prune(&v).unwrap_or(Value::Object(Default::default()))
}

/// The pod-template hash of `template` with `collision_count` (upstream's `ComputeHash`).
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(&canonical(template)).unwrap_or_default();
    let mut h = fnv1a32(FNV_OFFSET, &bytes);
    if let Some(c) = collision_count {
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&(c as u32).to_le_bytes());
        h = fnv1a32(h, &buf);
    }
    safe_encode(&h.to_string())
}

/// Whether two templates are equal apart from the pod-template-hash label
/// (upstream's `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            l.remove(POD_TEMPLATE_HASH);
        }
        canonical(&t)
    };
    strip(a) == strip(b)
}

/// The revision of a ReplicaSet (0 when missing or not a number).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The highest revision among `sets`.
pub fn max_revision<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    sets.into_iter().map(revision).max().unwrap_or(0)
}

/// Copies the Deployment's annotations (but the skipped ones) onto a ReplicaSet's; true when
/// something changed.
pub fn copy_deployment_annotations(
    from: Option<&BTreeMap<String, String>>,
    to: &mut BTreeMap<String, String>,
) -> bool {
    let mut changed = false;
    for (k, v) in from.into_iter().flatten() {
        if skip_copy(k) || to.get(k) == Some(v) {
            continue;
        }
        to.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Records `desired` and `max` replicas on a ReplicaSet; true when something changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

/// The replicas a ReplicaSet was last scaled for, from its annotations.
pub fn desired_replicas(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(DESIRED_REPLICAS)?
        .parse()
        .ok()
}

pub fn max_replicas(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(MAX_REPLICAS)?
        .parse()
        .ok()
}

/// Upstream's `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the
/// revision to `new_revision` (keeping the former one in the history when it had one), and
/// for a ReplicaSet about to be created (`exists` false) records the replica annotations.
/// True when something changed.
pub fn set_new_rs_annotations(
    deployment_annotations: Option<&BTreeMap<String, String>>,
    replicas: i32,
    max_surge: i32,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = copy_deployment_annotations(deployment_annotations, a);
    let old = a.get(REVISION).cloned();
    let old_num = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => n,
            // Not a number: leave it alone, as upstream does.
            Err(_) => return changed,
        },
    };
    if old_num < new_revision {
        a.insert(REVISION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            let value = append_history(&history, &old);
            if let Some(v) = value {
                a.insert(REVISION_HISTORY.to_string(), v);
            }
        }
    }
    if !exists && set_replicas_annotations(rs, replicas, replicas + max_surge) {
        changed = true;
    }
    changed
}

/// `history` with `old` appended, dropping the oldest entries to stay within
/// [`MAX_REVISION_HISTORY_CHARS`]; `None` when even that cannot fit.
fn append_history(history: &str, old: &str) -> Option<String> {
    if history.is_empty() {
        return Some(old.to_string());
    }
    let entries: Vec<&str> = history.split(',').collect();
    let mut total = history.len() + old.len() + 1;
    let mut start = 0;
    while total > MAX_REVISION_HISTORY_CHARS && start < entries.len() {
        total -= entries[start].len() + 1;
        start += 1;
    }
    if total > MAX_REVISION_HISTORY_CHARS {
        return None;
    }
    let mut kept: Vec<&str> = entries[start..].to_vec();
    kept.push(old);
    Some(kept.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }))
        .unwrap()
    }

    fn rs(annotations: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(json!({"metadata": {"name": "web-x", "annotations": annotations}}))
            .unwrap()
    }

    #[test]
    fn hash_is_stable_safe_encoded_and_moves_with_template_and_collisions() {
        let t = template("nginx:1.27");
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t.clone(), None), "deterministic");
        assert!(!h.is_empty() && h.len() <= 10, "{h}");
        // Decimal digits re-spelled: only these characters can appear.
        assert!(h.chars().all(|c| "456789bcdf".contains(c)), "{h}");
        assert_ne!(h, compute_hash(&template("nginx:1.28"), None));
        assert_ne!(h, compute_hash(&t, Some(1)));
        assert_ne!(compute_hash(&t, Some(1)), compute_hash(&t, Some(2)));
        // Key order and empty fields do not matter.
        let reordered: PodTemplateSpec = serde_json::from_value(json!({
            "spec": {"volumes": [], "containers": [{"image": "nginx:1.27", "name": "c"}]},
            "metadata": {"annotations": {}, "labels": {"app": "web"}}
        }))
        .unwrap();
        assert_eq!(h, compute_hash(&reordered, None));
        // A known value pins the algorithm: changing it renames every ReplicaSet.
        assert_eq!(h, "6f5954ff8d");
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn equality_ignores_only_the_hash_label() {
        let a = template("nginx:1.27");
        let mut b = a.clone();
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), "abc".into());
        assert!(equal_ignore_hash(&a, &b));
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert("x".into(), "y".into());
        assert!(!equal_ignore_hash(&a, &b));
        assert!(!equal_ignore_hash(&a, &template("nginx:1.28")));
    }

    #[test]
    fn new_rs_annotations_copy_and_number() {
        let dep: BTreeMap<String, String> = [
            ("kubernetes.io/change-cause", "set image"),
            (REVISION, "7"),
            (LAST_APPLIED, "{}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut new = rs(json!({}));
        assert!(set_new_rs_annotations(Some(&dep), 4, 1, &mut new, 3, false));
        let a = new.metadata.annotations.as_ref().unwrap();
        assert_eq!(a.get(REVISION).unwrap(), "3");
        assert_eq!(a.get("kubernetes.io/change-cause").unwrap(), "set image");
        assert!(!a.contains_key(LAST_APPLIED));
        assert_eq!(a.get(DESIRED_REPLICAS).unwrap(), "4");
        assert_eq!(a.get(MAX_REPLICAS).unwrap(), "5");
        assert!(!a.contains_key(REVISION_HISTORY));
        // Nothing new: nothing changes.
        assert!(!set_new_rs_annotations(Some(&dep), 4, 1, &mut new, 3, true));
        // A lower revision never lowers it.
        assert!(!set_new_rs_annotations(Some(&dep), 4, 1, &mut new, 2, true));
        assert_eq!(revision(&new), 3);
    }

    #[test]
    fn reused_template_is_re_bumped_and_keeps_history() {
        let mut old = rs(json!({REVISION: "1"}));
        assert!(set_new_rs_annotations(None, 3, 1, &mut old, 4, true));
        assert_eq!(revision(&old), 4);
        let a = old.metadata.annotations.as_ref().unwrap();
        assert_eq!(a.get(REVISION_HISTORY).unwrap(), "1");
        assert!(
            !a.contains_key(DESIRED_REPLICAS),
            "existing sets keep theirs"
        );
        assert!(set_new_rs_annotations(None, 3, 1, &mut old, 6, true));
        assert_eq!(
            old.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY],
            "1,4"
        );
        // Not a number: left alone.
        let mut odd = rs(json!({REVISION: "x"}));
        assert!(!set_new_rs_annotations(None, 3, 1, &mut odd, 2, true));
        assert_eq!(odd.metadata.annotations.as_ref().unwrap()[REVISION], "x");
    }

    #[test]
    fn history_drops_oldest_beyond_the_limit() {
        let long: Vec<String> = (0..400).map(|i| format!("{i:04}")).collect();
        let h = long.join(",");
        assert_eq!(h.len(), 1999);
        let out = append_history(&h, "9999").unwrap();
        assert!(out.len() <= MAX_REVISION_HISTORY_CHARS);
        assert!(out.ends_with(",0399,9999"));
        assert!(out.starts_with("0001,"));
        assert_eq!(append_history("", "3").unwrap(), "3");
    }

    #[test]
    fn max_revision_ignores_garbage() {
        let sets = [
            rs(json!({REVISION: "2"})),
            rs(json!({REVISION: "x"})),
            rs(json!({})),
            rs(json!({REVISION: "5"})),
        ];
        assert_eq!(max_revision(sets.iter()), 5);
        assert_eq!(max_revision(std::iter::empty()), 0);
    }
}
