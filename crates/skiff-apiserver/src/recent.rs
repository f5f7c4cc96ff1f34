//! Objects this server has just written, kept decoded for the next write of the same object.
//!
//! A pod's life in the control plane is a chain of writes by different loops in this process:
//! the ReplicaSet controller creates it, the scheduler binds it (`pods/binding`), the kubelet
//! writes its status. Every update reads the stored object and parses it into a `Value`
//! (about 150k instructions for a pod, a third of a binding) only to rebuild what the write
//! before it had in hand and dropped, since in-process writers keep only the name, uid and
//! revision of what they wrote.
//!
//! Those writes hand the object they store to [`Recent`] instead, under its key with the
//! bytes they store; [`ApiServer::read`] takes it from there when the store holds exactly
//! those bytes (the object is then what parsing them gives; the read sets its
//! resourceVersion), and parses the bytes otherwise. The object is handed over *before* the
//! write is submitted: the next write of a pod comes from another loop that hears of this one
//! through a watch, and the watch can be faster than the writer's own task is to wake up
//! after its commit (a binding read the pod before its create's task had kept it, a status
//! write before the binding's had). An entry whose bytes the store does not hold (yet, or
//! ever: a write that failed) is left for a later read. An entry is taken, not copied: it
//! serves one read, and a later read parses as before. Bounded, oldest first out, so objects
//! nobody writes again (a pod that is never scheduled) do not pile up. This is the part of
//! upstream's watch cache that serves a guaranteed update its current object without a
//! decode; what clients read is unchanged.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use skiff_core::meta::Fields as _;
use skiff_core::{meta, registry::Resource, ApiError};
use skiff_store::KeyValue;

use crate::objects::{set_revision, storage_resource};
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

/// A kept object: whole, or without its managedFields, which stay the text a create (or a
/// later write that kept them as text) wrote until a read needs them as a tree. The pods
/// waiting between their create and their binding (a thousand and more in a burst) each held a
/// parsed copy of their entry, ~1 KB of text made a tree of some 5 KB; parsing moves to the
/// read, where the per-thread memo of the last text serves it as it served the create (pods
/// one controller creates in the same second carry the same entry). The binding and the
/// kubelet's first status write need no tree at all ([`Recent::take_parts`]).
#[derive(Clone)]
enum Kept {
    Whole(Value),
    /// The object (without resourceVersion when a create kept it, with the one it was read
    /// at when a write did) and its managedFields.
    Created {
        object: Value,
        managed_fields: Box<[u8]>,
    },
}

impl Kept {
    /// A created object (without resourceVersion), with its managedFields as text when the
    /// create wrote them so.
    fn created(object: Value, managed_fields: Option<Vec<u8>>) -> Kept {
        match managed_fields {
            Some(text) => Kept::Created {
                object,
                managed_fields: text.into_boxed_slice(),
            },
            None => Kept::Whole(object),
        }
    }

    /// The object as the store holds it at revision `rev`, with its managedFields apart as
    /// text when they were kept so.
    fn into_parts(self, rev: i64) -> Parts {
        let (mut object, managed_fields) = match self {
            Kept::Whole(v) => (v, None),
            Kept::Created {
                object,
                managed_fields,
            } => (object, Some(managed_fields)),
        };
        place_revision(&mut object, rev);
        (object, managed_fields)
    }
}

#[derive(Default)]
struct Inner {
    /// By key: the entry's number, the bytes stored with the object, the object (shared with
    /// the informers reading it, see [`Recent::peek`]), and who it is for.
    /// (foldhash, seeded per process: every write and every informer decode looks here.)
    objects: HashMap<String, (u64, Bytes, Arc<Kept>, Readers), foldhash::fast::RandomState>,
    /// Keys in the order they were put, with their entry's number (entries taken or replaced
    /// since stay here until they reach the front, or until they are twice the capacity and
    /// are dropped together).
    order: VecDeque<(String, u64)>,
    /// The next entry's number.
    next: u64,
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

    /// Keeps `obj`, which is to be stored under `key` as `stored`: exactly what parsing
    /// those bytes gives (internal form; its resourceVersion is set when it is taken).
    pub fn put(&self, key: String, stored: Bytes, obj: Value, readers: Readers) {
        self.keep(key, stored, Kept::Whole(obj), readers);
    }

    /// [`Self::put`] for an object kept without its managedFields, which are `managed_fields`
    /// (JSON text, the last member of its metadata as stored).
    pub fn put_parts(
        &self,
        key: String,
        stored: Bytes,
        object: Value,
        managed_fields: Box<[u8]>,
        readers: Readers,
    ) {
        let kept = Kept::Created {
            object,
            managed_fields,
        };
        self.keep(key, stored, kept, readers);
    }

    fn keep(&self, key: String, stored: Bytes, obj: Kept, readers: Readers) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        if capacity == 0 {
            return;
        }
        let mut dropped = Vec::new();
        {
            let mut inner = self.inner.lock();
            let n = inner.next;
            inner.next += 1;
            inner.order.push_back((key.clone(), n));
            if let Some(old) = inner
                .objects
                .insert(key, (n, stored, Arc::new(obj), readers))
            {
                dropped.push(old);
            }
            while inner.objects.len() > capacity || inner.order.len() > 2 * capacity {
                if inner.objects.len() <= capacity {
                    // Only the places of entries taken or replaced since are too many: drop
                    // those (once per `capacity` puts at most), not the oldest live entry.
                    let Inner { objects, order, .. } = &mut *inner;
                    order.retain(|(k, n)| objects.get(k).is_some_and(|e| e.0 == *n));
                    break;
                }
                let Some((k, n)) = inner.order.pop_front() else {
                    break;
                };
                if inner.objects.get(&k).is_some_and(|e| e.0 == n) {
                    if let Some(old) = inner.objects.remove(&k) {
                        dropped.push(old);
                    }
                }
            }
        }
        // Freed outside the lock.
        drop(dropped);
    }

    /// [`Self::take_parts`] with the managedFields put back (for tests; reads for writes go
    /// through `ApiServer::read`, which does the same).
    #[cfg(test)]
    pub fn take(&self, key: &str, kv: &KeyValue) -> Option<Value> {
        let (mut obj, managed_fields) = self.take_parts(key, kv)?;
        match managed_fields {
            Some(text) => with_managed_fields(&mut obj, &text).map(|()| obj),
            None => Some(obj),
        }
    }

    /// The object the store holds as `kv`, if it was kept (with `kv`'s revision as its
    /// resourceVersion), and its managedFields apart as text when they were kept so: for a
    /// write that does not change them or records its own entry on the text. An entry kept
    /// with other bytes stays: it may be for a write still on its way to the store.
    pub(crate) fn take_parts(&self, key: &str, kv: &KeyValue) -> Option<Parts> {
        let entry = {
            let mut inner = self.inner.lock();
            match inner.objects.get(key) {
                Some((_, stored, _, _)) if same_bytes(stored, &kv.value) => {
                    inner.objects.remove(key)
                }
                _ => None,
            }
        };
        // An informer still reading the object shares it: then it is copied.
        let obj = entry.map(|(_, _, obj, _)| {
            Arc::try_unwrap(obj)
                .unwrap_or_else(|shared| Kept::clone(&shared))
                .into_parts(kv.mod_revision)
        });
        match obj {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        obj
    }

    /// The object kept for `key` if the store holds it as `stored`, for the informers, which
    /// decode their typed copy from it instead of parsing the bytes: left in place for the
    /// next write, or taken when it was kept for the informers alone.
    pub fn peek(&self, key: &str, stored: &Bytes) -> Option<KeptObject> {
        let mut inner = self.inner.lock();
        match inner.objects.get(key) {
            Some((_, b, obj, Readers::NextWrite)) if same_bytes(b, stored) => {
                Some(KeptObject(obj.clone(), None))
            }
            Some((_, b, obj, Readers::Binding { bound_of })) if same_bytes(b, stored) => {
                Some(KeptObject(obj.clone(), Some(Delta::Binding(*bound_of))))
            }
            Some((_, b, _, Readers::Informers { status_of })) if same_bytes(b, stored) => {
                let delta = status_of.map(Delta::Status);
                let (_, _, obj, _) = inner.objects.remove(key)?;
                Some(KeptObject(obj, delta))
            }
            _ => None,
        }
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
            let Some((k, n)) = inner.order.pop_front() else {
                break;
            };
            if inner.objects.get(&k).is_some_and(|e| e.0 == n) {
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

/// An object and its managedFields: in it (`None`), or apart as the JSON text they are
/// stored as (the object then has none).
pub(crate) type Parts = (Value, Option<Box<[u8]>>);

/// Who reads a kept object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// The next write of the object (a create's for the binding, the binding's for the
    /// kubelet's status write), and the informers before it.
    NextWrite,
    /// The informers alone: the first to decode it takes it (a status write's, which no write
    /// follows soon; a later write may still take it first). `status_of`: the revision of
    /// the object this one differs from only in its status, resourceVersion and
    /// managedFields, when the write changed nothing else (a pod's status write), so that an
    /// informer holding that revision decodes the status alone.
    Informers { status_of: Option<i64> },
    /// As [`Readers::NextWrite`], for a pod's binding: `bound_of` is the revision of the pod
    /// this one differs from only in `spec.nodeName`, its status, resourceVersion and
    /// managedFields, so that an informer holding that revision decodes the status alone and
    /// sets the node name.
    Binding { bound_of: i64 },
}

/// How a kept object differs from an earlier revision of it, besides its resourceVersion and
/// managedFields, when the write that kept it says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// Only in its status (a pod's status write).
    Status(i64),
    /// Only in `spec.nodeName` and its status (a pod's binding).
    Binding(i64),
}

impl Delta {
    /// The revision the object differs from.
    pub fn base(self) -> i64 {
        match self {
            Delta::Status(rev) | Delta::Binding(rev) => rev,
        }
    }
}

/// An object the API server keeps as the store holds it: what parsing the stored bytes gives,
/// except that it may lack its resourceVersion or have an older one, and may lack its
/// managedFields (which stay text until a write takes the object).
pub struct KeptObject(Arc<Kept>, Option<Delta>);

impl KeptObject {
    pub fn value(&self) -> &Value {
        match &*self.0 {
            Kept::Whole(v) => v,
            Kept::Created { object, .. } => object,
        }
    }

    /// How this object differs from an earlier revision of it, when the write that kept it
    /// says so ([`Readers::Informers`], [`Readers::Binding`]).
    pub fn delta(&self) -> Option<Delta> {
        self.1
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

/// Puts the managedFields written as `text` into `object`, at the end of its metadata, their
/// place in the stored text; `None` when the text does not parse.
pub(crate) fn with_managed_fields(object: &mut Value, text: &[u8]) -> Option<()> {
    let mf = parsed_managed_fields(text)?;
    meta::metadata_mut(object).insert("managedFields".into(), mf);
    Some(())
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

/// Whether two stored values are the same bytes (mostly the very same buffer: the store
/// hands back what it was given).
fn same_bytes(a: &Bytes, b: &Bytes) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// Sets the resourceVersion of a kept object where parsing the stored bytes puts it: a
/// created object has none yet, and gets it right after the `uid` every create sets (without
/// the canonical reordering `set_revision` does for objects it knows less about); a written
/// one has the revision it was read at, replaced in place.
fn place_revision(obj: &mut Value, rev: i64) {
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
pub(crate) fn stored_as_served(res: &'static Resource) -> bool {
    res.custom.is_none() && std::ptr::eq(storage_resource(res), res)
}

/// Which created objects a create hands to the kept objects (before it writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    No,
    /// Every object of a kind stored as served: for in-process writers that keep only the
    /// name, uid and revision of what they create.
    Always,
    /// Pods without a node, for the in-process scheduler, whose binding is the next write of
    /// each (only while it runs, [`ApiServer::set_keep_pending_pods`]).
    PendingPods,
}

impl ApiServer {
    /// Creates an object as [`ApiServer::create_object_trimmed`] does, for in-process writers
    /// that keep only its name, uid and revision: the object itself is kept for the next
    /// write of it (for kinds stored as served), instead of being answered and dropped.
    pub async fn create_object_summary(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        obj: impl Into<crate::objects::CreateFrom<'_>>,
        manager: Option<&str>,
    ) -> Result<CreatedSummary, ApiError> {
        let created = self
            .create_stored(res, namespace, obj, false, manager, Keep::Always)
            .await?;
        Ok(CreatedSummary {
            name: meta::name(&created.object).to_string(),
            uid: meta::uid(&created.object).to_string(),
            revision: created.revision.unwrap_or(0),
        })
    }

    /// Whether a create with `keep` hands `object` (of `res`, as prepared) to the kept
    /// objects.
    pub(crate) fn keeps_created(&self, res: &'static Resource, keep: Keep, object: &Value) -> bool {
        let wanted = match keep {
            Keep::No => false,
            Keep::Always => true,
            Keep::PendingPods => {
                crate::objects::is_pod(res)
                    && object
                        .at("spec")
                        .at("nodeName")
                        .as_str()
                        .unwrap_or("")
                        .is_empty()
            }
        };
        wanted && stored_as_served(res) && self.recent.keeps()
    }

    /// Hands a created object (without resourceVersion), about to be stored under `key` as
    /// `stored`, to the kept objects, with its managedFields as text when the create wrote
    /// them so. What is left in its place holds only its name and uid.
    pub(crate) fn keep_created(
        &self,
        key: &str,
        stored: &Bytes,
        object: &mut Value,
        managed_fields: Option<Vec<u8>>,
    ) {
        let stub = serde_json::json!({"metadata": {
            "name": meta::name(object),
            "uid": meta::uid(object),
        }});
        let object = std::mem::replace(object, stub);
        self.recent.keep(
            key.to_string(),
            stored.clone(),
            Kept::created(object, managed_fields),
            Readers::NextWrite,
        );
    }

    /// Hands an object about to be stored under `key` as `stored` (internal form; its
    /// managedFields in it, or apart as text) to the kept objects for `readers`, for kinds
    /// stored as served; `Err` gives `obj` back when it is not kept.
    pub(crate) fn keep_written(
        &self,
        res: &'static Resource,
        key: &str,
        stored: &Bytes,
        obj: Parts,
        readers: Readers,
    ) -> Result<(), Parts> {
        if !stored_as_served(res) || !self.recent.keeps() {
            return Err(obj);
        }
        match obj {
            (object, Some(text)) => {
                self.recent
                    .put_parts(key.to_string(), stored.clone(), object, text, readers)
            }
            (object, None) => self
                .recent
                .put(key.to_string(), stored.clone(), object, readers),
        }
        Ok(())
    }

    /// The object kept for `key` if the store holds it as `stored`: for in-process informers,
    /// which decode from it instead of parsing the bytes. Left there when a write will take it,
    /// taken when it was kept for the informers alone ([`Readers`]).
    pub fn kept_object(&self, key: &str, stored: &Bytes) -> Option<KeptObject> {
        self.recent.peek(key, stored)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An object `{"metadata": {"name": n}, "v": v}` and stored bytes for it (the test's
    /// stand-in: `Recent` only compares bytes).
    fn obj(v: i64) -> (Bytes, Value) {
        (
            Bytes::from(format!("{{\"v\":{v}}}")),
            json!({"metadata": {"name": "n"}, "v": v}),
        )
    }

    fn kv(key: &str, stored: &Bytes, rev: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: stored.clone(),
            create_revision: 1,
            mod_revision: rev,
        }
    }

    fn with_rev(mut v: Value, rev: i64) -> Value {
        v["metadata"]["resourceVersion"] = json!(rev.to_string());
        v
    }

    #[test]
    fn take_returns_what_the_store_holds_once_with_its_revision() {
        let r = Recent::new(8);
        let (b5, o5) = obj(5);
        let (b6, o6) = obj(6);
        r.put("/a".into(), b5.clone(), o5.clone(), Readers::NextWrite);
        // The store holds other bytes: a write in flight, or one that failed. The entry stays.
        assert_eq!(r.take("/a", &kv("/a", &b6, 9)), None);
        assert_eq!(r.len(), 1);
        // Equal bytes in another buffer match too; the revision is the store's.
        let copy = Bytes::from(b5.to_vec());
        assert_eq!(r.take("/a", &kv("/a", &copy, 7)), Some(with_rev(o5, 7)));
        assert_eq!(r.take("/a", &kv("/a", &b5, 7)), None);
        r.put("/a".into(), b6.clone(), o6.clone(), Readers::NextWrite);
        assert_eq!(r.take("/a", &kv("/a", &b6, 8)), Some(with_rev(o6, 8)));
        assert_eq!(r.hits_and_misses(), (2, 2));
    }

    /// Informers share what is kept for the next write, and take what is kept for them alone
    /// (when the store holds those bytes).
    #[test]
    fn peek_leaves_what_a_write_needs_and_takes_what_only_informers_read() {
        let r = Recent::new(8);
        let (b5, o5) = obj(5);
        let (b6, o6) = obj(6);
        r.put("/w".into(), b5.clone(), o5.clone(), Readers::NextWrite);
        r.put(
            "/i".into(),
            b6.clone(),
            o6.clone(),
            Readers::Informers { status_of: None },
        );
        assert!(r.peek("/w", &b6).is_none());
        assert!(r.peek("/i", &b5).is_none());
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.peek("/w", &b5).map(|k| k.value().clone()),
            Some(o5.clone())
        );
        assert_eq!(r.peek("/i", &b6).map(|k| k.value().clone()), Some(o6));
        assert_eq!(r.len(), 1);
        assert!(r.peek("/i", &b6).is_none());
        // The next write still takes its object, while an informer holds it too.
        let held = r.peek("/w", &b5).unwrap();
        assert_eq!(
            r.take("/w", &kv("/w", &b5, 9)),
            Some(with_rev(o5.clone(), 9))
        );
        assert_eq!(held.value(), &o5);
        assert!(r.is_empty());
    }

    #[test]
    fn a_newer_put_replaces_the_older() {
        let r = Recent::new(8);
        let (b5, o5) = obj(5);
        let (b7, o7) = obj(7);
        r.put("/a".into(), b5.clone(), o5, Readers::NextWrite);
        r.put("/a".into(), b7.clone(), o7.clone(), Readers::NextWrite);
        assert_eq!(r.len(), 1);
        assert_eq!(r.take("/a", &kv("/a", &b5, 3)), None);
        assert_eq!(r.take("/a", &kv("/a", &b7, 4)), Some(with_rev(o7, 4)));
    }

    #[test]
    fn bounded_oldest_first() {
        let r = Recent::new(3);
        for i in 1..=5 {
            let (b, o) = obj(i);
            r.put(format!("/k{i}"), b, o, Readers::NextWrite);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.take("/k1", &kv("/k1", &obj(1).0, 1)), None);
        assert_eq!(r.take("/k2", &kv("/k2", &obj(2).0, 2)), None);
        assert_eq!(
            r.take("/k5", &kv("/k5", &obj(5).0, 5)),
            Some(with_rev(obj(5).1, 5))
        );
        // Keys taken or replaced do not hold places: many puts of one key keep it.
        for i in 10..100 {
            let (b, o) = obj(i);
            r.put("/same".into(), b, o, Readers::NextWrite);
        }
        assert_eq!(
            r.take("/same", &kv("/same", &obj(99).0, 99)),
            Some(with_rev(obj(99).1, 99))
        );
        assert!(r.inner.lock().order.len() <= 6);
    }

    /// An entry waiting for its next write stays while the others come and are taken, however
    /// many: only more live entries than the capacity push it out.
    #[test]
    fn taken_entries_do_not_push_out_a_waiting_one() {
        let r = Recent::new(3);
        let (b, o) = obj(1);
        r.put("/waiting".into(), b.clone(), o.clone(), Readers::NextWrite);
        for i in 10..100 {
            let (bi, oi) = obj(i);
            let key = format!("/k{i}");
            r.put(key.clone(), bi.clone(), oi, Readers::NextWrite);
            assert!(r.take(&key, &kv(&key, &bi, i)).is_some());
        }
        assert!(r.inner.lock().order.len() <= 6);
        assert_eq!(
            r.take("/waiting", &kv("/waiting", &b, 1)),
            Some(with_rev(o, 1))
        );
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
                .create_stored(
                    res,
                    Some("default"),
                    pod(n, node),
                    false,
                    Some("kubectl"),
                    Keep::PendingPods,
                )
                .await
                .unwrap();
            // The answer's bytes are the stored ones; a kept object leaves its name and uid.
            assert_eq!(meta::name(&created.object), n);
            assert!(!meta::uid(&created.object).is_empty());
            let key = format!("/registry/core/pods/default/{n}");
            let (kv, _) = store.get(&key, skiff_store::ReadAt::Latest).await.unwrap();
            let kv = kv.unwrap();
            assert_eq!(kv.value, created.bytes);
            let parsed = crate::objects::decode_kv(&kv).unwrap();
            let kept = api.recent.take(&key, &kv);
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
                    kv,
                )
            }
        };
        let kept = |n: &str, kv: &KeyValue| {
            api.recent
                .take(&format!("/registry/core/pods/default/{n}"), kv)
                .map(|v| serde_json::to_string(&v).unwrap())
        };

        // The second create's managedFields are likely copied from the first's.
        for n in ["a", "a2"] {
            let c = api
                .create_object_summary(res, Some("default"), pod(n), Some("m"))
                .await
                .unwrap();
            let (text, kv) = stored(n).await;
            assert_eq!(kv.mod_revision, c.revision);
            // Kept with its managedFields as text until taken.
            assert!(matches!(
                &api.recent.inner.lock().objects[&format!("/registry/core/pods/default/{n}")],
                (_, b, k, _) if *b == kv.value && matches!(**k, Kept::Created { .. })
            ));
            assert_eq!(kept(n, &kv).as_deref(), Some(text.as_str()));
        }

        api.create_object_summary(res, Some("default"), pod("b"), Some("m"))
            .await
            .unwrap();
        api.bind_pod(Some("default"), "b", "node-1", false)
            .await
            .unwrap();
        let (text, kv) = stored("b").await;
        assert!(text.contains("node-1"));
        assert_eq!(kept("b", &kv).as_deref(), Some(text.as_str()));

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
        r.put("/a".into(), obj(1).0, obj(1).1, Readers::NextWrite);
        assert!(r.is_empty());
        let r = Recent::new(4);
        for i in 1..=4 {
            r.put(format!("/k{i}"), obj(i).0, obj(i).1, Readers::NextWrite);
        }
        r.set_capacity(1);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r.take("/k4", &kv("/k4", &obj(4).0, 4)),
            Some(with_rev(obj(4).1, 4))
        );
        r.set_capacity(0);
        r.put("/a".into(), obj(1).0, obj(1).1, Readers::NextWrite);
        assert!(r.is_empty());
    }

    /// The next write of a pod (the binding after its create, the kubelet's status write
    /// after its binding) may read it as soon as its store write is visible, before the
    /// writing task has run again: it still takes the kept object, since a write hands it
    /// over before it is submitted.
    #[tokio::test]
    async fn the_next_write_takes_a_kept_object_before_the_write_is_answered() {
        use skiff_store::sqlite::{SqliteOptions, SqliteStore};
        let dir = tempfile::tempdir().unwrap();
        let sqlite: skiff_store::DynStore =
            SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let held = std::sync::Arc::new(crate::test_store::Hooked::new(sqlite.clone()));
        let api = ApiServer::new(held.clone(), crate::ApiOptions::default());
        api.bootstrap().await.unwrap();
        let res = skiff_core::registry::lookup("", "v1", "pods").unwrap();
        let visible = |rev: i64| {
            let sqlite = sqlite.clone();
            async move {
                while sqlite.current_revision() < rev {
                    tokio::task::yield_now().await;
                }
            }
        };
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "early"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}});

        // The create is committed but not answered when the binding reads the pod.
        held.hold.store(true, Ordering::SeqCst);
        let before = sqlite.current_revision();
        let create = tokio::spawn({
            let api = api.clone();
            async move {
                api.create_object_summary(res, Some("default"), pod, Some("m"))
                    .await
                    .unwrap()
            }
        });
        visible(before + 1).await;
        assert!(!create.is_finished());
        api.bind_pod(Some("default"), "early", "node-1", false)
            .await
            .unwrap();
        assert_eq!(
            api.kept_object_reads(),
            (1, 0),
            "the binding took the created pod"
        );
        held.release.notify_one();
        create.await.unwrap();

        // The binding is committed but not answered when the kubelet writes the status.
        let late = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        api.create_object_summary(res, Some("default"), late, Some("m"))
            .await
            .unwrap();
        held.hold.store(true, Ordering::SeqCst);
        let before = sqlite.current_revision();
        let bind = tokio::spawn({
            let api = api.clone();
            async move { api.bind_pod(Some("default"), "late", "node-1", false).await }
        });
        visible(before + 1).await;
        assert!(!bind.is_finished());
        let status = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "late", "namespace": "default"},
            "status": {"phase": "Running"}});
        let (hits, misses) = api.kept_object_reads();
        api.guaranteed_update_as(
            res,
            Some("default"),
            "late",
            crate::objects::UpdateMode::Status,
            false,
            Some("kubelet"),
            |_| Ok(status.clone()),
        )
        .await
        .unwrap();
        assert_eq!(
            api.kept_object_reads(),
            (hits + 1, misses),
            "the status write took the bound pod"
        );
        held.release.notify_one();
        bind.await.unwrap().unwrap();
        let (kv, _) = sqlite
            .get(
                "/registry/core/pods/default/late",
                skiff_store::ReadAt::Latest,
            )
            .await
            .unwrap();
        let stored = crate::objects::decode_kv(&kv.unwrap()).unwrap();
        assert_eq!(stored["spec"]["nodeName"], "node-1");
        assert_eq!(stored["status"]["phase"], "Running");
    }
}
