//! ControllerRevisions: the pod template history of DaemonSets and StatefulSets, after
//! upstream's `pkg/controller/history` and the revision handling of `pkg/controller/daemon`
//! and `pkg/controller/statefulset`.
//!
//! A revision stores, as its `data`, the strategic merge patch that puts its owner's pod
//! template back: `{"spec":{"template":{…,"$patch":"replace"}}}` with keys sorted, as
//! upstream marshals it. `kubectl rollout history` lists the revisions an object controls (by
//! its selector and owner uid) and `kubectl rollout undo` sends a revision's data verbatim as
//! a strategic merge patch. Two revisions are the same when their data is equal.
//!
//! Revision numbers grow: a template that matches no revision gets `max + 1`; one that
//! matches an older revision has that revision's number raised to `max + 1` (so undo moves
//! an old revision to the front). Revisions are named `<owner>-<hash>`, the hash being
//! upstream's FNV-32a over the data (and the collision count, when one was needed), written
//! with upstream's consonant-and-digit alphabet. Old revisions beyond `revisionHistoryLimit`
//! are deleted oldest first, unless a live pod still carries their hash.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Map, Value};
use skiff_core::ApiError;
use skiff_runtime::client::revision_of;
use skiff_runtime::{Client, Informer, Object};

use crate::pods::{controller_of, controller_ref};

/// The label carrying a revision's hash on DaemonSet pods and revisions, and a revision's
/// name on StatefulSet pods (upstream's `controller-revision-hash`).
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// The hash label `history.NewControllerRevision` puts on StatefulSet revisions.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// Longest owner-name prefix of a revision name (upstream's `ControllerRevisionName`).
const MAX_PREFIX: usize = 223;

/// FNV-1a, 32 bits, over `chunks` in order.
pub fn fnv32a(chunks: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for c in chunks {
        for b in *c {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// Upstream's `rand.SafeEncodeString`: every character mapped into an alphabet without vowels
/// (no words) and without look-alike characters.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The hash of `data` with an optional collision count, as a revision name suffix.
pub fn hash(data: &[u8], collision_count: Option<i32>) -> String {
    let probe = collision_count.map(|c| (c as u32).to_le_bytes());
    let h = match &probe {
        Some(p) => fnv32a(&[data, p]),
        None => fnv32a(&[data]),
    };
    safe_encode(&h.to_string())
}

/// `v` with every object's keys sorted (Go's `json.Marshal` of maps).
pub fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// The patch that restores `template`: `{"spec":{"template":{…,"$patch":"replace"}}}`.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| Value::Object(Map::new()));
    if let Value::Object(m) = &mut t {
        m.insert("$patch".into(), Value::String("replace".into()));
    }
    canonical(serde_json::json!({ "spec": { "template": t } }))
}

/// The bytes a patch is hashed over.
pub fn patch_bytes(patch: &Value) -> Vec<u8> {
    serde_json::to_vec(patch).unwrap_or_default()
}

/// `<prefix>-<hash>`, the prefix cut to upstream's length limit.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut end = prefix.len().min(MAX_PREFIX);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{hash}", &prefix[..end])
}

/// Whether `rev` stores `patch`.
pub fn data_matches(rev: &ControllerRevision, patch: &Value) -> bool {
    rev.data
        .as_ref()
        .is_some_and(|d| canonical(d.0.clone()) == *patch)
}

/// The highest revision number (0 for none).
pub fn max_revision<'a>(revs: impl IntoIterator<Item = &'a ControllerRevision>) -> i64 {
    revs.into_iter().map(|r| r.revision).max().unwrap_or(0)
}

/// Upstream's revision order: by number, then creation time, then name.
pub fn sort_by_revision(revs: &mut [Arc<ControllerRevision>]) {
    revs.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
                let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
                ta.cmp(&tb)
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// The names of old revisions to delete so that at most `limit` remain, oldest first, never
/// one `live` says a pod still uses.
pub fn to_prune(
    old: &[Arc<ControllerRevision>],
    limit: i32,
    live: impl Fn(&ControllerRevision) -> bool,
) -> Vec<String> {
    let mut kill = old.len() as i64 - i64::from(limit.max(0));
    if kill <= 0 {
        return Vec::new();
    }
    let mut sorted = old.to_vec();
    sort_by_revision(&mut sorted);
    let mut out = Vec::new();
    for r in sorted {
        if kill <= 0 {
            break;
        }
        if live(&r) {
            continue;
        }
        out.push(r.metadata.name.clone().unwrap_or_default());
        kill -= 1;
    }
    out
}

/// A new revision of `owner` (not yet stored).
pub fn new_revision<K: Object>(
    owner: &K,
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    data: Value,
    revision: i64,
) -> ControllerRevision {
    let m = owner.metadata();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: m.namespace.clone(),
            labels: Some(labels),
            annotations: m.annotations.clone().filter(|a| !a.is_empty()),
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// Reads and writes the revisions of one kind of owner.
#[derive(Clone)]
pub struct History {
    pub client: Client,
    pub revisions: Informer<ControllerRevision>,
}

/// How storing a new revision went.
pub enum Stored {
    /// Stored (or already there with the same data and owner).
    Done(Box<ControllerRevision>),
    /// Its name is taken by a different revision: bump the collision count and try again.
    Collision,
}

impl History {
    /// The revisions `owner` controls, adopting orphans its selector matches (upstream's
    /// `ClaimControllerRevisions`; the selectors of both kinds are immutable, so nothing is
    /// released).
    pub async fn claim<K: Object>(
        &self,
        owner: &K,
        selects: impl Fn(Option<&std::collections::BTreeMap<String, String>>) -> bool,
    ) -> Result<Vec<Arc<ControllerRevision>>, ApiError> {
        let uid = owner.metadata().uid.clone().unwrap_or_default();
        let ns = owner.metadata().namespace.clone().unwrap_or_default();
        let mut mine = self.revisions.owned_by(&uid);
        if owner.metadata().deletion_timestamp.is_some() {
            return Ok(mine);
        }
        for r in self.revisions.list_namespace(&ns) {
            if controller_of(&r.metadata).is_some()
                || r.metadata.deletion_timestamp.is_some()
                || !selects(r.metadata.labels.as_ref())
            {
                continue;
            }
            let name = r.metadata.name.clone().unwrap_or_default();
            let want_uid = r.metadata.uid.clone();
            let cref = controller_ref(owner);
            let res = self
                .client
                .modify::<ControllerRevision>(Some(&ns), &name, |cur| {
                    if cur.metadata.uid != want_uid || controller_of(&cur.metadata).is_some() {
                        return false;
                    }
                    cur.metadata
                        .owner_references
                        .get_or_insert_with(Vec::new)
                        .push(cref.clone());
                    true
                })
                .await;
            match res {
                Ok(adopted) if controller_of(&adopted.metadata).is_some_and(|c| c.uid == uid) => {
                    mine.push(Arc::new(adopted))
                }
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(mine)
    }

    /// Stores `rev`; an existing revision of the same name, owner and data counts as stored.
    pub async fn create(&self, rev: &ControllerRevision) -> Result<Stored, ApiError> {
        match self.client.create(rev).await {
            Ok(r) => {
                self.revisions.wait_for_revision(revision_of(&r)).await;
                Ok(Stored::Done(Box::new(r)))
            }
            Err(e) if e.code == 409 => {
                let ns = rev.metadata.namespace.as_deref();
                let name = rev.metadata.name.as_deref().unwrap_or("");
                let existing: ControllerRevision = self.client.get(ns, name).await?;
                let owner = rev
                    .metadata
                    .owner_references
                    .as_ref()
                    .and_then(|o| o.first())
                    .map(|o| o.uid.clone());
                let same_owner = controller_of(&existing.metadata).map(|c| c.uid.clone()) == owner;
                let data = rev.data.as_ref().map(|d| canonical(d.0.clone()));
                let same_data = data.is_some_and(|d| data_matches(&existing, &d));
                if same_owner && same_data {
                    Ok(Stored::Done(Box::new(existing)))
                } else {
                    Ok(Stored::Collision)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Raises (or sets) the number of an existing revision.
    pub async fn renumber(
        &self,
        rev: &ControllerRevision,
        revision: i64,
    ) -> Result<ControllerRevision, ApiError> {
        let ns = rev.metadata.namespace.as_deref();
        let name = rev.metadata.name.as_deref().unwrap_or("");
        let r = self
            .client
            .modify::<ControllerRevision>(ns, name, |cur| {
                if cur.revision == revision {
                    return false;
                }
                cur.revision = revision;
                true
            })
            .await?;
        self.revisions.wait_for_revision(revision_of(&r)).await;
        Ok(r)
    }

    /// Deletes revisions by name (gone already is fine).
    pub async fn delete(&self, ns: &str, names: &[String]) -> Result<(), ApiError> {
        for n in names {
            match self
                .client
                .delete::<ControllerRevision>(Some(ns), n, &Default::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The hashes (label values) live pods carry.
pub fn live_hashes<'a>(
    pods: impl IntoIterator<Item = &'a k8s_openapi::api::core::v1::Pod>,
) -> HashSet<String> {
    pods.into_iter()
        .filter_map(|p| {
            p.metadata
                .labels
                .as_ref()?
                .get(REVISION_HASH_LABEL)
                .cloned()
        })
        .filter(|h| !h.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(name: &str, n: i64) -> Arc<ControllerRevision> {
        Arc::new(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: None,
            revision: n,
        })
    }

    #[test]
    fn fnv_and_encoding_follow_upstream() {
        // Reference values of FNV-1a 32.
        assert_eq!(fnv32a(&[b""]), 0x811c9dc5);
        assert_eq!(fnv32a(&[b"a"]), 0xe40c292c);
        assert_eq!(fnv32a(&[b"foo"]), 0xa9f37ed7);
        assert_eq!(fnv32a(&[b"fo", b"o"]), fnv32a(&[b"foo"]));
        // '0' is 48: 48 % 27 = 21 → '4'; '1' → '5'; '9' → 57 % 27 = 3 → 'f'.
        assert_eq!(safe_encode("0019"), "445f");
        let h = hash(b"{}", None);
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(
            hash(b"{}", Some(1)),
            h,
            "a collision count changes the hash"
        );
        assert_eq!(hash(b"{}", None), h, "stable");
    }

    #[test]
    fn patch_replaces_the_template_with_sorted_keys() {
        let t: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"b": "1", "a": "2"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
        .unwrap();
        let p = template_patch(&t);
        let s = String::from_utf8(patch_bytes(&p)).unwrap();
        assert_eq!(
            s,
            r#"{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"a":"2","b":"1"}},"spec":{"containers":[{"image":"nginx","name":"c"}]}}}}"#
        );
        let r = ControllerRevision {
            metadata: ObjectMeta::default(),
            data: Some(RawExtension(serde_json::from_str(&s).unwrap())),
            revision: 1,
        };
        assert!(data_matches(&r, &p));
        let mut t2 = t.clone();
        t2.spec.as_mut().unwrap().containers[0].image = Some("nginx:2".into());
        assert!(!data_matches(&r, &template_patch(&t2)));
    }

    #[test]
    fn names_cut_long_prefixes() {
        assert_eq!(revision_name("web", "abc"), "web-abc");
        let long = "x".repeat(300);
        assert_eq!(revision_name(&long, "h").len(), 223 + 2);
    }

    #[test]
    fn pruning_keeps_the_limit_and_live_revisions() {
        let old = vec![rev("r3", 3), rev("r1", 1), rev("r2", 2), rev("r4", 4)];
        assert!(to_prune(&old, 4, |_| false).is_empty());
        assert_eq!(to_prune(&old, 2, |_| false), vec!["r1", "r2"]);
        // r1 is still used by a pod: the next oldest goes instead.
        assert_eq!(
            to_prune(&old, 2, |r| r.metadata.name.as_deref() == Some("r1")),
            vec!["r2", "r3"]
        );
        assert_eq!(to_prune(&old, 0, |_| false).len(), 4);
        assert_eq!(max_revision(old.iter().map(|r| r.as_ref())), 4);
    }
}
