//! Objects this server has just written, kept decoded for the next write of the same object.
//!
//! A pod's life in the control plane is a chain of writes by different loops in this process:
//! the ReplicaSet controller creates it, the scheduler binds it (`pods/binding`), the kubelet
//! writes its status. Every update reads the stored object and parses it into a `Value`
//! (about 150k instructions for a pod, a third of a binding) only to rebuild what the write
//! before it had in hand and dropped, since in-process writers keep only the name, uid and
//! revision of what they wrote.
//!
//! Those writes hand the object they stored to [`Recent`] instead, under its key and
//! revision; [`ApiServer::read`] takes it from there when the store still holds exactly that
//! revision (a revision names one stored value, so the object is what parsing the stored
//! bytes would give), and parses the bytes otherwise. An entry is taken, not copied: it
//! serves one read, and a later read parses as before. Bounded, oldest first out, so objects
//! nobody writes again (a pod that is never scheduled) do not pile up. This is the part of
//! upstream's watch cache that serves a guaranteed update its current object without a
//! decode; what clients read is unchanged.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde_json::Value;
use skiff_core::{meta, registry::Resource, ApiError};

use crate::objects::{set_revision, storage_resource, Created};
use crate::server::ApiServer;

/// How many written objects are kept by default: the pods between their create and their
/// binding, or between their binding and their first status write, in a burst of thousands.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Decoded objects by storage key, each with the revision it was stored at.
pub struct Recent {
    capacity: AtomicUsize,
    inner: Mutex<Inner>,
    /// Reads served from here, and reads that found another revision or nothing.
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A kept object: whole, or a create's without its managedFields, which stay the text the
/// create wrote until a read takes the object. The pods waiting between their create and their
/// binding (a thousand and more in a burst) each held a parsed copy of their entry, ~1 KB of
/// text made a tree of some 5 KB; parsing moves to the read, where the per-thread memo of the
/// last text serves it as it served the create (pods one controller creates in the same second
/// carry the same entry).
enum Kept {
    Whole(Value),
    Created {
        object: Value,
        managed_fields: Box<[u8]>,
    },
}

impl Kept {
    /// The object as the store holds it; `None` if the managedFields text does not parse.
    fn into_object(self) -> Option<Value> {
        match self {
            Kept::Whole(v) => Some(v),
            Kept::Created {
                mut object,
                managed_fields,
            } => {
                let mf = parsed_managed_fields(&managed_fields)?;
                // The end of metadata is its place (the stored text has it there too).
                meta::metadata_mut(&mut object).insert("managedFields".into(), mf);
                Some(object)
            }
        }
    }
}

#[derive(Default)]
struct Inner {
    objects: HashMap<String, (i64, Kept)>,
    /// Keys in the order they were put, with their revision (entries taken or replaced since
    /// stay here until they reach the front).
    order: VecDeque<(String, i64)>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent::new(DEFAULT_CAPACITY)
    }
}

impl Recent {
    /// Keeps at most `capacity` objects (none with 0).
    pub fn new(capacity: usize) -> Recent {
        Recent {
            capacity: AtomicUsize::new(capacity),
            inner: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Keeps `obj`, stored under `key` at revision `rev`. `obj` must be exactly what parsing
    /// that stored value gives (internal form, resourceVersion set).
    pub fn put(&self, key: String, rev: i64, obj: Value) {
        self.keep(key, rev, Kept::Whole(obj));
    }

    fn keep(&self, key: String, rev: i64, obj: Kept) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        if capacity == 0 || rev <= 0 {
            return;
        }
        let mut dropped = Vec::new();
        {
            let mut inner = self.inner.lock();
            inner.order.push_back((key.clone(), rev));
            if let Some(old) = inner.objects.insert(key, (rev, obj)) {
                dropped.push(old.1);
            }
            while inner.objects.len() > capacity || inner.order.len() > 2 * capacity {
                let Some((k, r)) = inner.order.pop_front() else {
                    break;
                };
                if inner.objects.get(&k).is_some_and(|e| e.0 == r) {
                    if let Some(old) = inner.objects.remove(&k) {
                        dropped.push(old.1);
                    }
                }
            }
        }
        // Freed outside the lock.
        drop(dropped);
    }

    /// The object stored under `key` at revision `rev`, if it was kept; an entry of another
    /// revision is stale and dropped.
    pub fn take(&self, key: &str, rev: i64) -> Option<Value> {
        let entry = self.inner.lock().objects.remove(key);
        let obj = match entry {
            Some((r, obj)) if r == rev => obj.into_object(),
            _ => None,
        };
        match obj {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        obj
    }

    /// How many reads took a kept object, and how many parsed the stored bytes.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Keeps at most `capacity` objects from now on (none with 0); the oldest go now.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
        let mut inner = self.inner.lock();
        while inner.objects.len() > capacity {
            let Some((k, r)) = inner.order.pop_front() else {
                break;
            };
            if inner.objects.get(&k).is_some_and(|e| e.0 == r) {
                inner.objects.remove(&k);
            }
        }
    }

    /// Whether objects are kept at all.
    pub fn keeps(&self) -> bool {
        self.capacity.load(Ordering::Relaxed) > 0
    }

    /// How many objects are kept.
    pub fn len(&self) -> usize {
        self.inner.lock().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a create stored, for writers that need no copy of the object back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSummary {
    pub name: String,
    pub uid: String,
    /// The revision of the write (the object's resourceVersion).
    pub revision: i64,
}

thread_local! {
    /// The last managedFields text a create kept, parsed: the pods one controller creates in
    /// the same second carry the same entry, and copying it is cheaper than parsing it.
    static PARSED: RefCell<Option<(Vec<u8>, Value)>> = const { RefCell::new(None) };
}

/// The managedFields list written as `text`.
fn parsed_managed_fields(text: &[u8]) -> Option<Value> {
    PARSED.with_borrow_mut(|memo| {
        if let Some((t, v)) = memo.as_ref() {
            if t.as_slice() == text {
                return Some(v.clone());
            }
        }
        let v: Value = serde_json::from_slice(text).ok()?;
        *memo = Some((text.to_vec(), v.clone()));
        Some(v)
    })
}

/// Sets the resourceVersion of a created object in its canonical place, right after the
/// `uid` every create sets, without the canonical reordering `set_revision` does for objects
/// it knows less about.
fn set_created_revision(obj: &mut Value, rev: i64) {
    let m = meta::metadata_mut(obj);
    match m.keys().position(|k| k == "uid") {
        Some(at) if !m.contains_key("resourceVersion") => {
            m.shift_insert(
                at + 1,
                "resourceVersion".into(),
                Value::String(rev.to_string()),
            );
        }
        _ => set_revision(obj, rev),
    }
}

/// Whether `res` is served in the form it is stored in (what [`Recent`] keeps is the stored
/// form, what writes answer the served one).
fn stored_as_served(res: &'static Resource) -> bool {
    res.custom.is_none() && std::ptr::eq(storage_resource(res), res)
}

impl ApiServer {
    /// Creates an object as [`ApiServer::create_object_trimmed`] does, for in-process writers
    /// that keep only its name, uid and revision: the object itself is kept for the next
    /// write of it (for kinds stored as served), instead of being answered and dropped.
    pub async fn create_object_summary(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        obj: Value,
        manager: Option<&str>,
    ) -> Result<CreatedSummary, ApiError> {
        let created = self
            .create_stored(res, namespace, obj, false, manager)
            .await?;
        let out = CreatedSummary {
            name: meta::name(&created.object).to_string(),
            uid: meta::uid(&created.object).to_string(),
            revision: created.revision.unwrap_or(0),
        };
        self.keep_created(res, namespace, created);
        Ok(out)
    }

    /// Keeps a created object (for kinds stored as served) as the store holds it, with its
    /// managedFields and resourceVersion, for the next write of it.
    pub(crate) fn keep_created(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        created: Created,
    ) {
        let Some(rev) = created.revision else {
            return;
        };
        if !stored_as_served(res) || !self.recent.keeps() {
            return;
        }
        let mut object = created.object;
        set_created_revision(&mut object, rev);
        let key = storage_resource(res).key(namespace, meta::name(&object));
        let kept = match created.managed_fields {
            Some(text) => Kept::Created {
                object,
                managed_fields: text.into_boxed_slice(),
            },
            None => Kept::Whole(object),
        };
        self.recent.keep(key, rev, kept);
    }

    /// How many reads for a write took an object a write before had kept, and how many
    /// parsed the stored bytes (for profiling examples).
    pub fn kept_object_reads(&self) -> (u64, u64) {
        self.recent.hits_and_misses()
    }

    /// Keeps at most `capacity` written objects (0: none, every read parses the store; for
    /// comparing costs).
    pub fn set_kept_objects_capacity(&self, capacity: usize) {
        self.recent.set_capacity(capacity);
    }

    /// Keeps `obj`, which this server has just written (as an update of `res` answered it:
    /// internal form, resourceVersion set), for the next write of it. For in-process
    /// writers that drop what a write answers.
    pub fn keep_written(&self, res: &'static Resource, namespace: Option<&str>, obj: Value) {
        if !stored_as_served(res) || !self.recent.keeps() {
            return;
        }
        let Ok(rev) = meta::resource_version(&obj).parse::<i64>() else {
            return;
        };
        let key = storage_resource(res).key(namespace, meta::name(&obj));
        self.recent.put(key, rev, obj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn take_returns_only_the_revision_kept_and_only_once() {
        let r = Recent::new(8);
        r.put("/a".into(), 5, json!({"v": 5}));
        assert_eq!(r.take("/a", 4), None);
        // The stale entry was dropped by the miss.
        assert_eq!(r.take("/a", 5), None);
        r.put("/a".into(), 6, json!({"v": 6}));
        assert_eq!(r.take("/a", 6), Some(json!({"v": 6})));
        assert_eq!(r.take("/a", 6), None);
        assert_eq!(r.hits_and_misses(), (1, 3));
    }

    #[test]
    fn a_newer_put_replaces_the_older() {
        let r = Recent::new(8);
        r.put("/a".into(), 5, json!(5));
        r.put("/a".into(), 7, json!(7));
        assert_eq!(r.len(), 1);
        assert_eq!(r.take("/a", 7), Some(json!(7)));
    }

    #[test]
    fn bounded_oldest_first() {
        let r = Recent::new(3);
        for i in 1..=5 {
            r.put(format!("/k{i}"), i, json!(i));
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.take("/k1", 1), None);
        assert_eq!(r.take("/k2", 2), None);
        assert_eq!(r.take("/k5", 5), Some(json!(5)));
        // Keys taken or replaced do not hold places: many puts of one key keep it.
        for i in 10..100 {
            r.put("/same".into(), i, json!(i));
        }
        assert_eq!(r.take("/same", 99), Some(json!(99)));
        assert!(r.inner.lock().order.len() <= 6);
    }

    /// A bootstrapped server on a fresh store (the directory lives as long as the store).
    async fn server() -> (
        tempfile::TempDir,
        skiff_store::DynStore,
        std::sync::Arc<ApiServer>,
    ) {
        use skiff_store::sqlite::{SqliteOptions, SqliteStore};
        let dir = tempfile::tempdir().unwrap();
        let store: skiff_store::DynStore =
            SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let api = ApiServer::new(store.clone(), crate::ApiOptions::default());
        api.bootstrap().await.unwrap();
        (dir, store, api)
    }

    /// A pod created without a node is kept as the store holds it (resourceVersion and
    /// managedFields included), for the binding to take; one created on a node is not.
    #[tokio::test]
    async fn pending_pods_are_kept_as_stored() {
        let (_dir, store, api) = server().await;
        let res = skiff_core::registry::lookup("", "v1", "pods").unwrap();
        let pod = |n: &str, node: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}})
        };
        for (n, node) in [("pending", ""), ("placed", "node-1")] {
            let created = api
                .create_stored(res, Some("default"), pod(n, node), false, Some("kubectl"))
                .await
                .unwrap();
            let rev = created.revision.unwrap();
            api.keep_pending_pod(res, Some("default"), created);
            let key = format!("/registry/core/pods/default/{n}");
            let (kv, _) = store.get(&key, skiff_store::ReadAt::Latest).await.unwrap();
            let parsed = crate::objects::decode_kv(&kv.unwrap()).unwrap();
            let kept = api.recent.take(&key, rev);
            if node.is_empty() {
                assert_eq!(
                    kept.map(|v| serde_json::to_string(&v).unwrap()),
                    Some(serde_json::to_string(&parsed).unwrap())
                );
            } else {
                assert_eq!(kept, None);
            }
        }
    }

    /// What a create and a binding keep is, key order included, what parsing the stored
    /// bytes gives, and a status write over kept objects stores what it stores without them.
    #[tokio::test]
    async fn kept_objects_are_what_the_store_holds() {
        use skiff_store::ReadAt;
        let (_dir, store, api) = server().await;
        let res = skiff_core::registry::lookup("", "v1", "pods").unwrap();
        let pod = |n: &str| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": n, "labels": {"app": "a"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "rs", "uid": "u-1", "controller": true}]},
                "spec": {"containers": [{"name": "c", "image": "nginx",
                    "resources": {"requests": {"cpu": "10m"}}}]}})
        };
        let stored = |n: &str| {
            let key = format!("/registry/core/pods/default/{n}");
            let store = store.clone();
            async move {
                let (kv, _) = store.get(&key, ReadAt::Latest).await.unwrap();
                let kv = kv.unwrap();
                (
                    serde_json::to_string(&crate::objects::decode_kv(&kv).unwrap()).unwrap(),
                    kv.mod_revision,
                )
            }
        };
        let kept = |n: &str, rev: i64| {
            api.recent
                .take(&format!("/registry/core/pods/default/{n}"), rev)
                .map(|v| serde_json::to_string(&v).unwrap())
        };

        // The second create's managedFields are likely copied from the first's.
        for n in ["a", "a2"] {
            let c = api
                .create_object_summary(res, Some("default"), pod(n), Some("m"))
                .await
                .unwrap();
            let (text, rev) = stored(n).await;
            assert_eq!(rev, c.revision);
            // Kept with its managedFields as text until taken.
            assert!(matches!(
                api.recent.inner.lock().objects[&format!("/registry/core/pods/default/{n}")],
                (r, Kept::Created { .. }) if r == rev
            ));
            assert_eq!(kept(n, rev).as_deref(), Some(text.as_str()));
        }

        api.create_object_summary(res, Some("default"), pod("b"), Some("m"))
            .await
            .unwrap();
        api.bind_pod(Some("default"), "b", "node-1", false)
            .await
            .unwrap();
        let (text, rev) = stored("b").await;
        assert!(text.contains("node-1"));
        assert_eq!(kept("b", rev).as_deref(), Some(text.as_str()));

        // Two pods bound alike, one status write each: read from a kept object and parsed
        // from the store (the entry taken away first), they store the same but for names,
        // uids and times.
        let status = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "x", "namespace": "default"},
            "status": {"phase": "Running", "podIP": "10.0.0.9",
                "conditions": [{"type": "Ready", "status": "True"}]}});
        let mut texts: Vec<String> = Vec::new();
        for (n, drop_first) in [("c", false), ("d", true)] {
            let c = api
                .create_object_summary(res, Some("default"), pod(n), Some("m"))
                .await
                .unwrap();
            api.bind_pod(Some("default"), n, "node-1", false)
                .await
                .unwrap();
            let key = format!("/registry/core/pods/default/{n}");
            if drop_first {
                api.recent.inner.lock().objects.remove(&key);
            } else {
                assert_eq!(api.recent.len(), 1);
            }
            let mut body = status.clone();
            body["metadata"]["name"] = json!(n);
            api.guaranteed_update_as(
                res,
                Some("default"),
                n,
                crate::objects::UpdateMode::Status,
                false,
                Some("kubelet"),
                |_| Ok(body.clone()),
            )
            .await
            .unwrap();
            assert!(
                api.recent.is_empty(),
                "the status write took the kept pod: {:?}",
                api.recent.inner.lock().objects.keys().collect::<Vec<_>>()
            );
            let (text, _) = stored(n).await;
            let mut v: Value = serde_json::from_str(&text).unwrap();
            let m = v["metadata"].as_object_mut().unwrap();
            for k in [
                "name",
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "managedFields",
            ] {
                m.remove(k);
            }
            v["status"]["conditions"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .for_each(|c| {
                    c.as_object_mut().unwrap().remove("lastTransitionTime");
                });
            v["status"].as_object_mut().unwrap().remove("startTime");
            assert!(!c.uid.is_empty());
            texts.push(serde_json::to_string(&v).unwrap());
        }
        assert_eq!(texts[0], texts[1]);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let r = Recent::new(0);
        r.put("/a".into(), 1, json!(1));
        assert!(r.is_empty());
        let r = Recent::new(4);
        for i in 1..=4 {
            r.put(format!("/k{i}"), i, json!(i));
        }
        r.set_capacity(1);
        assert_eq!(r.len(), 1);
        assert_eq!(r.take("/k4", 4), Some(json!(4)));
        r.set_capacity(0);
        r.put("/a".into(), 1, json!(1));
        assert!(r.is_empty());
    }
}
