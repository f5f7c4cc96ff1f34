//! The shared informer cache: typed objects kept current from the store's watch.
//!
//! Follows client-go's shared informers: an initial list, then a watch from the list's
//! revision; each kind is cached once however many loops read it. Objects are immutable
//! `Arc`s (a reader never sees one change under it). Indexes serve the common questions: by
//! namespace, by controller owner uid (the objects a controller owns) and, for pods, by node
//! and the pods of a namespace that have no controller (those a controller may adopt).
//! Subscribers get every change with the old and new object; a subscriber that falls behind
//! gets [`Notification::Resync`] and must treat everything as changed, which a
//! level-triggered loop does anyway. A watch that breaks (compaction) re-lists and reports
//! the difference as changes.
//!
//! A loop that wrote an object can wait until the cache has seen that write
//! ([`Informer::wait_for_revision`]): reading its own writes replaces upstream's
//! "expectations" bookkeeping.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;
use serde::Serialize;
use skiff_apiserver::recent::Delta;
use skiff_apiserver::ApiServer;
use skiff_core::meta::Fields as _;
use skiff_core::registry::{self, Resource};
use skiff_store::{DynStore, EventKind, KeyValue, ListOptions, ReadAt, Revision};
use tokio::sync::broadcast;

/// A kind the cache and client handle: a k8s-openapi type of a built-in resource.
pub trait Object:
    k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + DeserializeOwned
    + Serialize
    + Clone
    + Send
    + Sync
    + 'static
{
    /// The node a pod runs on (pods only): the node index.
    fn node_name(&self) -> Option<&str> {
        None
    }

    /// Whether the cache indexes this kind's objects that have no controller, by namespace
    /// ([`Informer::orphans_in`]): the pods a ReplicaSet may adopt, found without going over
    /// every pod of the namespace on each sync.
    const ORPHAN_INDEX: bool = false;

    /// Gives the lists of a just parsed object allocations of their length (see [`fit`]);
    /// the cache keeps objects long. Beyond the metadata's lists, for the kinds kept by the
    /// thousand (pods).
    fn fit_lists(&mut self) {}

    /// `old` with what a write changed taken from `new` (the written object's JSON), for a
    /// write that changed nothing else ([`Delta`]): its status, and for a binding its node name
    /// too. The rest is copied instead of decoded again. `None` for kinds without the shortcut,
    /// or a part that does not decode (the whole object is decoded then, and reports it).
    fn renewed(_old: &Self, _delta: Delta, _new: &serde_json::Value) -> Option<Self> {
        None
    }
}

macro_rules! objects {
    ($($t:ty),* $(,)?) => { $(impl Object for $t {})* };
}

use k8s_openapi::api::{
    apps::v1 as apps, batch::v1 as batch, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, networking::v1 as networking, policy::v1 as policy,
    rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};

objects!(
    core::Namespace,
    core::Node,
    core::Service,
    core::Endpoints,
    core::ConfigMap,
    core::Secret,
    core::ServiceAccount,
    core::PersistentVolume,
    core::PersistentVolumeClaim,
    core::ResourceQuota,
    core::LimitRange,
    core::ReplicationController,
    core::Event,
    apps::Deployment,
    apps::ReplicaSet,
    apps::StatefulSet,
    apps::DaemonSet,
    apps::ControllerRevision,
    batch::Job,
    batch::CronJob,
    coordination::Lease,
    discovery::EndpointSlice,
    networking::Ingress,
    networking::IngressClass,
    networking::NetworkPolicy,
    policy::PodDisruptionBudget,
    rbac::Role,
    rbac::RoleBinding,
    rbac::ClusterRole,
    rbac::ClusterRoleBinding,
    scheduling::PriorityClass,
    storage::StorageClass,
);

impl Object for core::Pod {
    const ORPHAN_INDEX: bool = true;

    fn node_name(&self) -> Option<&str> {
        self.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    fn fit_lists(&mut self) {
        if let Some(spec) = &mut self.spec {
            fit(&mut spec.containers);
            fit_some(&mut spec.init_containers);
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                fit_some(&mut c.ports);
                fit_some(&mut c.env);
                fit_some(&mut c.volume_mounts);
                fit_some(&mut c.command);
                fit_some(&mut c.args);
            }
            fit_some(&mut spec.tolerations);
            fit_some(&mut spec.volumes);
            fit_some(&mut spec.image_pull_secrets);
        }
        if let Some(status) = &mut self.status {
            fit_some(&mut status.conditions);
            fit_some(&mut status.container_statuses);
            fit_some(&mut status.init_container_statuses);
            fit_some(&mut status.host_ips);
            fit_some(&mut status.pod_ips);
        }
    }

    fn renewed(old: &Self, delta: Delta, new: &serde_json::Value) -> Option<Self> {
        let status = match new.field("status") {
            Some(v) => Some(serde::Deserialize::deserialize(v).ok()?),
            None => None,
        };
        let mut spec = old.spec.clone();
        if let Delta::Binding(_) = delta {
            let node = new.at("spec").field("nodeName")?.as_str()?;
            spec.as_mut()?.node_name = Some(node.to_string());
        }
        Some(core::Pod {
            metadata: old.metadata.clone(),
            spec,
            status,
        })
    }
}

/// Moves `v` into an allocation of its length, if it has room to spare. Parsing grows a
/// list as it reads it (to four places for elements up to 1 KiB), so a pod's one container
/// status (728 bytes) held the room of four and its five conditions the room of eight: about
/// 3.5 KB of a cached pod unused. `shrink_to_fit` would leave that to the allocator, and
/// mimalloc keeps a block that is still at least half used as it is.
fn fit<T>(v: &mut Vec<T>) {
    if v.capacity() > v.len() {
        let mut exact = Vec::with_capacity(v.len());
        exact.append(v);
        *v = exact;
    }
}

fn fit_some<T>(v: &mut Option<Vec<T>>) {
    if let Some(v) = v {
        fit(v);
    }
}

/// [`fit`] on the lists every object's metadata may have (the cache keeps no managedFields).
fn fit_metadata(m: &mut ObjectMeta) {
    fit_some(&mut m.owner_references);
    fit_some(&mut m.finalizers);
}

/// The registry entry of `K`.
pub fn resource_of<K: Object>() -> &'static Resource {
    registry::lookup(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT)
        .unwrap_or_else(|| panic!("{} is not a served resource", K::KIND))
}

/// The cache key of an object: `namespace/name`, or `name` for cluster-scoped objects
/// (client-go's `MetaNamespaceKeyFunc`).
pub fn key_of(meta: &ObjectMeta) -> String {
    key(
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or(""),
    )
}

pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => skiff_core::concat(&[ns, "/", name]),
        _ => name.to_string(),
    }
}

/// Splits a key made by [`key`] into namespace and name.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// The uid of the controlling owner reference, if any.
pub fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

/// One change to a cached object.
#[derive(Debug)]
pub struct Change<K> {
    /// The object before (`None`: added).
    pub old: Option<Arc<K>>,
    /// The object after (`None`: deleted).
    pub new: Option<Arc<K>>,
}

impl<K: Object> Change<K> {
    /// The object as it is now, or as it was last when deleted.
    pub fn object(&self) -> &Arc<K> {
        self.new
            .as_ref()
            .or(self.old.as_ref())
            .expect("a change has an object")
    }
}

/// What a subscriber receives.
#[derive(Debug)]
pub enum Notification<K> {
    Changed(Arc<Change<K>>),
    /// The subscriber fell behind and missed changes: treat every object as changed.
    Resync,
}

/// The changes one watch batch brought, sent to subscribers together: one wake-up of a
/// waiting subscriber for the batch instead of one for each change.
type Batch<K> = Arc<Vec<Arc<Change<K>>>>;

/// A subscription to an informer's changes.
pub struct Subscription<K> {
    rx: broadcast::Receiver<Batch<K>>,
    /// The batch being handed out, and how many of its changes were.
    batch: Option<(Batch<K>, usize)>,
}

impl<K: Object> Subscription<K> {
    /// The next notification; `None` when the informer stopped.
    pub async fn recv(&mut self) -> Option<Notification<K>> {
        loop {
            if let Some((batch, next)) = &mut self.batch {
                if let Some(c) = batch.get(*next) {
                    *next += 1;
                    return Some(Notification::Changed(c.clone()));
                }
                self.batch = None;
            }
            match self.rx.recv().await {
                Ok(b) => self.batch = Some((b, 0)),
                Err(broadcast::error::RecvError::Lagged(_)) => return Some(Notification::Resync),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// Index entry → object key → object. The objects themselves are kept here (the same `Arc`s
/// as in the items), so that a controller listing what it owns reads them straight out of
/// its entry instead of looking each key up again: a ReplicaSet of 10,000 pods lists them on
/// every sync.
type Index<K> = Map<Map<Arc<K>>>;

/// The cache's maps, by name, namespace, owner uid or node name: hashed with foldhash (seeded
/// per process), several lookups per watch event and per read, where SipHash cost more than
/// the rest of a lookup.
type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

struct Indexes<K> {
    by_owner: Index<K>,
    by_node: Index<K>,
    /// Namespace → objects without a controller, for the kinds with [`Object::ORPHAN_INDEX`].
    orphans: Index<K>,
}

impl<K> Default for Indexes<K> {
    fn default() -> Self {
        Indexes {
            by_owner: Map::default(),
            by_node: Map::default(),
            orphans: Map::default(),
        }
    }
}

fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("")
}

/// Whether two versions of an object have the same index entries (controller owner, node).
fn same_index_entries<K: Object>(a: &K, b: &K) -> bool {
    controller_uid(a.metadata()) == controller_uid(b.metadata()) && a.node_name() == b.node_name()
}

/// Puts `obj` under `at` and `key`, allocating names only for new entries.
fn index_insert<K>(index: &mut Index<K>, at: &str, key: &str, obj: &Arc<K>) {
    match index.get_mut(at) {
        Some(set) => match set.get_mut(key) {
            Some(slot) => *slot = obj.clone(),
            None => {
                set.insert(key.to_string(), obj.clone());
            }
        },
        None => {
            index.insert(
                at.to_string(),
                Map::from_iter([(key.to_string(), obj.clone())]),
            );
        }
    }
}

fn index_remove<K>(index: &mut Index<K>, at: &str, key: &str) {
    if let Some(set) = index.get_mut(at) {
        set.remove(key);
        if set.is_empty() {
            index.remove(at);
        }
    }
}

impl<K: Object> Indexes<K> {
    /// Puts `obj` under its entries (replacing the version there, if any).
    fn add(&mut self, key: &str, obj: &Arc<K>) {
        match controller_uid(obj.metadata()) {
            Some(uid) => index_insert(&mut self.by_owner, uid, key, obj),
            None if K::ORPHAN_INDEX => {
                index_insert(&mut self.orphans, namespace_of(obj.metadata()), key, obj)
            }
            None => {}
        }
        if let Some(node) = obj.node_name() {
            index_insert(&mut self.by_node, node, key, obj);
        }
    }

    fn remove(&mut self, key: &str, obj: &K) {
        match controller_uid(obj.metadata()) {
            Some(uid) => index_remove(&mut self.by_owner, uid, key),
            None if K::ORPHAN_INDEX => {
                index_remove(&mut self.orphans, namespace_of(obj.metadata()), key)
            }
            None => {}
        }
        if let Some(node) = obj.node_name() {
            index_remove(&mut self.by_node, node, key);
        }
    }
}

struct State<K> {
    /// namespace ("" for cluster-scoped) → name → object.
    items: Map<Map<Arc<K>>>,
    indexes: Indexes<K>,
    count: usize,
}

impl<K> Default for State<K> {
    fn default() -> Self {
        State {
            items: Map::default(),
            indexes: Indexes::default(),
            count: 0,
        }
    }
}

/// A function [`Informer::on_apply`] runs for every change, with the object before and after.
type Observer<K> = Box<dyn Fn(Option<&K>, Option<&K>) + Send + Sync>;

struct Inner<K> {
    state: RwLock<State<K>>,
    /// Run as each change is applied, before subscribers hear of it.
    observers: RwLock<Vec<Observer<K>>>,
    /// Changes applied and not yet sent (see [`Informer::flush`]).
    pending: Mutex<Vec<Arc<Change<K>>>>,
    tx: broadcast::Sender<Batch<K>>,
    /// The newest revision applied (0 until the initial list is in).
    revision: tokio::sync::watch::Sender<Revision>,
}

/// The cache of one kind. Cheap to clone.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            inner: self.inner.clone(),
        }
    }
}

/// How many batches of changes (each the changes of one watch batch, one commit or more) a
/// subscriber may fall behind before it gets a resync. The channel's buffer is allocated
/// whole up front (about 40 bytes a slot), so only the kinds that change in bursts get a deep
/// one: pods (a 10,000-replica rollout), then nodes and leases (heartbeats of thousands of
/// nodes).
fn channel_capacity(kind: &str) -> usize {
    match kind {
        "Pod" => 1 << 16,
        "Node" | "Lease" => 1 << 13,
        _ => 1 << 10,
    }
}

impl<K: Object> Informer<K> {
    fn new() -> Informer<K> {
        let (tx, _) = broadcast::channel(channel_capacity(K::KIND));
        let (revision, _) = tokio::sync::watch::channel(0);
        Informer {
            inner: Arc::new(Inner {
                state: RwLock::new(State::default()),
                observers: RwLock::new(Vec::new()),
                pending: Mutex::new(Vec::new()),
                tx,
                revision,
            }),
        }
    }

    /// Waits until the initial list is in.
    pub async fn synced(&self) {
        self.wait_for_revision(1).await;
    }

    /// Waits until the cache has applied every change up to `revision` (a revision this kind's
    /// own write returned).
    pub async fn wait_for_revision(&self, revision: Revision) {
        let mut rx = self.inner.revision.subscribe();
        let _ = rx.wait_for(|r| *r >= revision).await;
    }

    /// Like [`Self::wait_for_revision`] with an upper bound on the wait; false on timeout.
    pub async fn wait_for_revision_timeout(&self, revision: Revision, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.wait_for_revision(revision))
            .await
            .is_ok()
    }

    /// The newest revision the cache has applied.
    pub fn revision(&self) -> Revision {
        *self.inner.revision.borrow()
    }

    pub fn subscribe(&self) -> Subscription<K> {
        Subscription {
            rx: self.inner.tx.subscribe(),
            batch: None,
        }
    }

    /// Runs `f(old, new)` for every change from now on, as the cache applies it: on the
    /// informer's own task, after the cache holds the change and before subscribers hear of it
    /// and before [`Self::wait_for_revision`] returns for its revision. For bookkeeping that
    /// must be as current as the cache when a reader looks (a controller's record of which of
    /// its objects changed); it must be quick. It never misses a change, unlike a subscriber.
    pub fn on_apply(&self, f: impl Fn(Option<&K>, Option<&K>) + Send + Sync + 'static) {
        self.inner.observers.write().push(Box::new(f));
    }

    fn observe(&self, old: Option<&K>, new: Option<&K>) {
        for f in self.inner.observers.read().iter() {
            f(old, new);
        }
    }

    /// Runs `on_change` for every change and `on_resync` whenever the subscription fell behind,
    /// on a task of `tasks`, until the informer stops: the event-handler loop controllers
    /// share. The subscription starts now, so nothing after this call is missed.
    pub fn for_each_change(
        &self,
        tasks: &crate::Tasks,
        mut on_change: impl FnMut(&Change<K>) + Send + 'static,
        mut on_resync: impl FnMut() + Send + 'static,
    ) {
        let mut sub = self.subscribe();
        tasks.spawn(async move {
            while let Some(n) = sub.recv().await {
                match n {
                    Notification::Changed(c) => on_change(&c),
                    Notification::Resync => on_resync(),
                }
            }
        });
    }

    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        self.inner
            .state
            .read()
            .items
            .get(namespace.unwrap_or(""))?
            .get(name)
            .cloned()
    }

    /// The object under a key made by [`key`].
    pub fn get_key(&self, key: &str) -> Option<Arc<K>> {
        let (ns, name) = split_key(key);
        self.get(ns, name)
    }

    pub fn len(&self) -> usize {
        self.inner.state.read().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<K>> {
        let st = self.inner.state.read();
        st.items
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// The objects of one namespace.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.inner
            .state
            .read()
            .items
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The objects under `at` in the index `which` picks.
    fn indexed(&self, which: fn(&Indexes<K>) -> &Index<K>, at: &str) -> Vec<Arc<K>> {
        let st = self.inner.state.read();
        which(&st.indexes)
            .get(at)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Calls `f` with each object under `at` in the index `which` picks, under the read lock.
    fn visit(&self, which: fn(&Indexes<K>) -> &Index<K>, at: &str, f: impl FnMut(&Arc<K>)) {
        let st = self.inner.state.read();
        which(&st.indexes)
            .get(at)
            .into_iter()
            .flat_map(|m| m.values())
            .for_each(f);
    }

    /// Calls `f` with each object whose controller owner reference has `uid`, borrowed from
    /// the cache instead of copied into a list: a controller goes over thousands of pods on
    /// every sync and keeps few of them. `f` runs with the cache locked for reading, so it
    /// must be short and must not use this informer (clone what it keeps, write later).
    pub fn for_each_owned_by(&self, uid: &str, f: impl FnMut(&Arc<K>)) {
        self.visit(|i| &i.by_owner, uid, f)
    }

    /// As [`Informer::for_each_owned_by`], over [`Informer::orphans_in`].
    pub fn for_each_orphan_in(&self, namespace: &str, f: impl FnMut(&Arc<K>)) {
        debug_assert!(K::ORPHAN_INDEX, "{} keeps no orphan index", K::KIND);
        self.visit(|i| &i.orphans, namespace, f)
    }

    /// The objects whose controller owner reference has `uid`.
    pub fn owned_by(&self, uid: &str) -> Vec<Arc<K>> {
        self.indexed(|i| &i.by_owner, uid)
    }

    /// The objects of `namespace` that have no controller owner reference (for the kinds with
    /// [`Object::ORPHAN_INDEX`], pods; empty for other kinds).
    pub fn orphans_in(&self, namespace: &str) -> Vec<Arc<K>> {
        debug_assert!(K::ORPHAN_INDEX, "{} keeps no orphan index", K::KIND);
        self.indexed(|i| &i.orphans, namespace)
    }

    /// The pods bound to `node` (pods only; empty for other kinds).
    pub fn on_node(&self, node: &str) -> Vec<Arc<K>> {
        self.indexed(|i| &i.by_node, node)
    }

    /// Applies one object (created or updated) and tells subscribers.
    fn put(&self, obj: K) {
        let new = Arc::new(obj);
        let ns = new.metadata().namespace.as_deref().unwrap_or("");
        let name = new.metadata().name.as_deref().unwrap_or("");
        let old = {
            let mut st = self.inner.state.write();
            let st = &mut *st;
            let names = match st.items.get_mut(ns) {
                Some(m) => m,
                None => st.items.entry(ns.to_string()).or_default(),
            };
            let old = match names.get_mut(name) {
                Some(cur) => Some(std::mem::replace(cur, new.clone())),
                None => {
                    names.insert(name.to_string(), new.clone());
                    None
                }
            };
            let k = key(Some(ns), name);
            match &old {
                // Most updates (a pod's binding aside) keep the owner and node: the new
                // version only replaces the old one in its entries.
                Some(o) if same_index_entries(o.as_ref(), new.as_ref()) => {}
                Some(o) => st.indexes.remove(&k, o.as_ref()),
                None => st.count += 1,
            }
            st.indexes.add(&k, &new);
            old
        };
        self.observe(old.as_deref(), Some(&new));
        self.inner.pending.lock().push(Arc::new(Change {
            old,
            new: Some(new),
        }));
    }

    fn remove(&self, namespace: &str, name: &str) {
        let k = key(Some(namespace), name);
        let old = {
            let mut st = self.inner.state.write();
            let Some(m) = st.items.get_mut(namespace) else {
                return;
            };
            let Some(old) = m.remove(name) else { return };
            if m.is_empty() {
                st.items.remove(namespace);
            }
            st.count -= 1;
            st.indexes.remove(&k, old.as_ref());
            old
        };
        self.observe(Some(&old), None);
        self.inner.pending.lock().push(Arc::new(Change {
            old: Some(old),
            new: None,
        }));
    }

    /// Sends the changes applied since the last flush to subscribers, as one batch.
    fn flush(&self) {
        let batch = std::mem::take(&mut *self.inner.pending.lock());
        if !batch.is_empty() {
            let _ = self.inner.tx.send(Arc::new(batch));
        }
    }

    fn set_revision(&self, rev: Revision) {
        self.inner.revision.send_if_modified(|r| {
            if rev > *r {
                *r = rev;
                true
            } else {
                false
            }
        });
    }

    /// Replaces the whole content after a (re-)list, reporting the difference.
    fn replace(&self, objects: Vec<K>) {
        let mut seen: HashSet<(String, String)> = HashSet::new();
        for o in objects {
            let ns = o.metadata().namespace.clone().unwrap_or_default();
            let name = o.metadata().name.clone().unwrap_or_default();
            let unchanged = self.get(Some(&ns), &name).is_some_and(|cur| {
                cur.metadata().resource_version == o.metadata().resource_version
            });
            seen.insert((ns, name));
            if !unchanged {
                self.put(o);
            }
        }
        let gone: Vec<(String, String)> = {
            let st = self.inner.state.read();
            st.items
                .iter()
                .flat_map(|(ns, m)| m.keys().map(move |n| (ns.clone(), n.clone())))
                .filter(|k| !seen.contains(k))
                .collect()
        };
        for (ns, name) in gone {
            self.remove(&ns, &name);
        }
    }

    /// Keeps the cache current until the store closes: list, then watch; re-list when the
    /// watch breaks.
    async fn run(self, store: DynStore, kept: Option<Arc<ApiServer>>) {
        let res = resource_of::<K>();
        let prefix = res.key_prefix();
        loop {
            match self.list_and_watch(&store, &prefix, kept.as_deref()).await {
                Ok(()) => return, // store closed
                Err(e) => {
                    tracing::warn!(kind = K::KIND, error = %e, "informer watch broke; re-listing");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn list_and_watch(
        &self,
        store: &DynStore,
        prefix: &str,
        kept: Option<&ApiServer>,
    ) -> Result<(), skiff_store::StoreError> {
        let page = store
            .list(ListOptions {
                prefix: prefix.to_string(),
                at: ReadAt::Latest,
                start_after: None,
                limit: 0,
            })
            .await?;
        let objects = page
            .items
            .iter()
            .filter_map(|kv| decode::<K>(kv, kept))
            .collect();
        self.replace(objects);
        self.flush();
        // An empty store is at revision 0; waiters for "synced" wait for 1.
        self.set_revision(page.revision.max(1));
        let mut watch = store.watch(prefix, page.revision).await?;
        while let Some(batch) = watch.next().await {
            // The batch's changes go to subscribers together, before its revision is reached.
            let mut newest = None;
            for ev in batch? {
                match ev.kind {
                    EventKind::Put => {
                        let obj = kept.and_then(|api| api.kept_object(&ev.kv.key, &ev.kv.value));
                        // Only a write that says what it changed (a pod's status write or
                        // binding) needs the cached copy.
                        let cached = obj
                            .as_ref()
                            .and_then(|o| o.delta())
                            .and_then(|_| namespace_and_name(&ev.kv.key, prefix))
                            .and_then(|(ns, name)| self.get(Some(ns), name));
                        if let Some(o) = decode_kept::<K>(&ev.kv, obj, cached.as_deref()) {
                            self.put(o);
                        }
                    }
                    EventKind::Delete => {
                        if let Some((ns, name)) = namespace_and_name(&ev.kv.key, prefix) {
                            self.remove(ns, name);
                        }
                    }
                }
                newest = Some(ev.kv.mod_revision);
            }
            self.flush();
            if let Some(rev) = newest {
                self.set_revision(rev);
            }
        }
        Ok(())
    }
}

/// `ns/name` or `name` after the kind's key prefix.
fn namespace_and_name<'a>(key: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = key.strip_prefix(prefix)?;
    Some(match rest.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => ("", rest),
    })
}

/// Decodes a stored object, sets its resourceVersion from the store revision and fits its
/// lists to their length ([`fit`]). The cache keeps no managedFields (as upstream's control
/// loops trim them from their informers): no loop reads them, and a write of a cached copy
/// without them keeps the stored ones.
///
/// An object the API server keeps decoded (`kept`, see [`ApiServer::kept_object`]) is decoded
/// from that `Value`, which takes about half as long as parsing the bytes (a pod's create and
/// its binding are kept for their next write, a status write's pod for the informers, by the
/// in-process writers that make them); others are parsed.
fn decode<K: Object>(kv: &KeyValue, kept: Option<&ApiServer>) -> Option<K> {
    decode_kept(
        kv,
        kept.and_then(|api| api.kept_object(&kv.key, &kv.value)),
        None,
    )
}

/// [`decode`] with the kept object already looked up; with `cached`, the informer's copy of
/// the object, of which only what the write changed is decoded when the kept object says what
/// that is ([`Delta`]) and the copy is the revision it changed.
fn decode_kept<K: Object>(
    kv: &KeyValue,
    kept: Option<skiff_apiserver::recent::KeptObject>,
    cached: Option<&K>,
) -> Option<K> {
    let renewed = match (&kept, cached) {
        (Some(obj), Some(old)) => obj
            .delta()
            .filter(|d| {
                old.metadata().resource_version.as_deref() == Some(d.base().to_string().as_str())
            })
            .and_then(|d| K::renewed(old, d, obj.value())),
        _ => None,
    };
    let decoded = match (renewed, kept) {
        (Some(o), _) => Ok(o),
        (None, Some(obj)) => crate::trim::from_value_without_managed_fields::<K>(obj.value()),
        (None, None) => {
            let trimmed = skiff_core::meta::without_managed_fields(&kv.value);
            parse::<K>(trimmed.as_deref().unwrap_or(&kv.value))
        }
    };
    match decoded {
        Ok(mut o) => {
            o.metadata_mut().resource_version = Some(kv.mod_revision.to_string());
            fit_metadata(o.metadata_mut());
            o.fit_lists();
            Some(o)
        }
        Err(e) => {
            tracing::warn!(key = %kv.key, error = %e, "cannot decode a stored object; the cache skips it");
            None
        }
    }
}

/// Parses JSON bytes as `K`. The bytes are checked to be UTF-8 once, whole, and parsed as
/// text: parsing bytes checks every string it reads on its own (a pod has a hundred or so,
/// mostly short, where the per-call cost of the check was most of it). Bytes that are not
/// UTF-8 are parsed as bytes, for the parser's own error.
fn parse<K: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<K> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// One informer per kind, started on first use. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    store: DynStore,
    /// The API server writing to `store`, whose kept objects informers decode from.
    kept: Option<Arc<ApiServer>>,
    tasks: crate::Tasks,
    informers: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
}

impl Cache {
    pub fn new(store: DynStore, tasks: crate::Tasks) -> Cache {
        Cache {
            store,
            kept: None,
            tasks,
            informers: Arc::default(),
        }
    }

    /// A cache of `api`'s store whose informers decode the objects `api` keeps for their
    /// next write from those, instead of parsing the stored bytes again.
    pub fn of(api: Arc<ApiServer>, tasks: crate::Tasks) -> Cache {
        Cache {
            store: api.store().clone(),
            kept: Some(api),
            tasks,
            informers: Arc::default(),
        }
    }

    /// The informer of `K`, started if it is not running yet (await [`Informer::synced`]
    /// before trusting an empty answer). Must be called inside a tokio runtime.
    pub fn informer<K: Object>(&self) -> Informer<K> {
        let mut map = self.informers.lock();
        if let Some(i) = map.get(&TypeId::of::<K>()) {
            return i.downcast_ref::<Informer<K>>().expect("type").clone();
        }
        let inf = Informer::<K>::new();
        map.insert(TypeId::of::<K>(), Box::new(inf.clone()));
        self.tasks
            .spawn(inf.clone().run(self.store.clone(), self.kept.clone()));
        inf
    }

    /// The informer of `K` once its initial list is in.
    pub async fn synced<K: Object>(&self) -> Informer<K> {
        let i = self.informer::<K>();
        i.synced().await;
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use k8s_openapi::api::core::v1::Pod;
    use skiff_store::sqlite::{SqliteOptions, SqliteStore};

    fn pod_bytes(ns: &str, name: &str, node: Option<&str>, owner: Option<&str>) -> Bytes {
        let mut v = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        });
        if let Some(n) = node {
            v["spec"]["nodeName"] = n.into();
        }
        if let Some(o) = owner {
            v["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": o, "controller": true}]);
        }
        Bytes::from(serde_json::to_vec(&v).unwrap())
    }

    /// A cached pod's lists take no more room than they hold (as parsed, one container status
    /// held the room of four), and fitting them changes nothing else.
    #[test]
    fn decoded_pods_keep_no_unused_list_room() {
        let conditions: Vec<_> = [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ]
        .iter()
        .map(|t| serde_json::json!({"type": t, "status": "True"}))
        .collect();
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "a", "uid": "u", "finalizers": ["f"],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "rs", "uid": "o", "controller": true}],
                "managedFields": [{"manager": "m", "operation": "Update"}]},
            "spec": {"containers": [{"name": "c", "image": "nginx", "args": ["-x"],
                    "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}],
                "tolerations": [{"key": "a", "operator": "Exists"},
                    {"key": "b", "operator": "Exists"}]},
            "status": {"phase": "Running",
                "conditions": conditions,
                "containerStatuses": [{"name": "c", "image": "nginx", "imageID": "",
                    "ready": true, "restartCount": 0}],
                "podIPs": [{"ip": "10.0.0.1"}], "hostIPs": [{"ip": "192.0.2.1"}]}
        });
        let kv = KeyValue {
            key: "/registry/core/pods/a/p".into(),
            value: Bytes::from(serde_json::to_vec(&v).unwrap()),
            create_revision: 3,
            mod_revision: 7,
        };
        let pod: Pod = decode(&kv, None).unwrap();

        let mut expected: Pod = serde_json::from_value(v).unwrap();
        expected.metadata.managed_fields = None;
        expected.metadata.resource_version = Some("7".into());
        assert_eq!(pod, expected);
        let as_parsed = parse::<Pod>(&kv.value).unwrap().status.unwrap();
        assert!(as_parsed.container_statuses.unwrap().capacity() > 1);

        fn exact<T>(v: &Option<Vec<T>>) -> bool {
            v.as_ref().is_some_and(|v| v.capacity() == v.len())
        }
        let (m, spec, status) = (
            &pod.metadata,
            pod.spec.as_ref().unwrap(),
            pod.status.as_ref().unwrap(),
        );
        let c = &spec.containers[0];
        assert_eq!(spec.containers.capacity(), 1);
        for (what, fits) in [
            ("ownerReferences", exact(&m.owner_references)),
            ("finalizers", exact(&m.finalizers)),
            ("ports", exact(&c.ports)),
            ("env", exact(&c.env)),
            ("args", exact(&c.args)),
            ("tolerations", exact(&spec.tolerations)),
            ("conditions", exact(&status.conditions)),
            ("containerStatuses", exact(&status.container_statuses)),
            ("podIPs", exact(&status.pod_ips)),
            ("hostIPs", exact(&status.host_ips)),
        ] {
            assert!(fits, "{what} has unused room");
        }
    }

    #[tokio::test]
    async fn lists_then_follows_the_watch_with_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore =
            SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let res = resource_of::<Pod>();
        store
            .create(
                &res.key(Some("a"), "p1"),
                pod_bytes("a", "p1", Some("n1"), Some("rs1")),
            )
            .await
            .unwrap();
        let cache = Cache::new(store.clone(), crate::Tasks::new());
        let pods = cache.synced::<Pod>().await;
        assert_eq!(pods.len(), 1);
        let mut sub = pods.subscribe();

        let rev = store
            .create(
                &res.key(Some("b"), "p2"),
                pod_bytes("b", "p2", None, Some("rs1")),
            )
            .await
            .unwrap();
        pods.wait_for_revision(rev).await;
        assert_eq!(pods.len(), 2);
        assert_eq!(
            pods.get(Some("b"), "p2")
                .unwrap()
                .metadata
                .resource_version
                .as_deref(),
            Some(rev.to_string().as_str())
        );
        assert_eq!(pods.list_namespace("a").len(), 1);
        assert_eq!(pods.owned_by("rs1").len(), 2);
        assert_eq!(pods.on_node("n1").len(), 1);
        match sub.recv().await.unwrap() {
            Notification::Changed(c) => {
                assert!(c.old.is_none());
                assert_eq!(c.object().metadata.name.as_deref(), Some("p2"));
            }
            Notification::Resync => panic!("unexpected resync"),
        }

        // A bind moves the pod between node index entries.
        let rev = store
            .update(
                &res.key(Some("b"), "p2"),
                rev,
                pod_bytes("b", "p2", Some("n2"), Some("rs1")),
            )
            .await
            .unwrap();
        pods.wait_for_revision(rev).await;
        assert_eq!(pods.on_node("n2").len(), 1);
        let Notification::Changed(c) = sub.recv().await.unwrap() else {
            panic!("resync")
        };
        assert!(c
            .old
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .node_name
            .is_none());

        let gone = store.delete(&res.key(Some("a"), "p1"), None).await.unwrap();
        pods.wait_for_revision(gone.mod_revision).await;
        assert!(pods.get(Some("a"), "p1").is_none());
        assert!(pods.on_node("n1").is_empty());
        assert_eq!(pods.owned_by("rs1").len(), 1);
        assert!(pods.list_namespace("a").is_empty());
        let Notification::Changed(c) = sub.recv().await.unwrap() else {
            panic!("resync")
        };
        assert!(c.new.is_none());
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_gets_a_resync() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let (_dir, store, cache) = empty_cache();
        let maps = cache.synced::<ConfigMap>().await;
        let mut sub = maps.subscribe();
        let res = resource_of::<ConfigMap>();
        let n = channel_capacity("ConfigMap") + 8;
        for i in 0..n {
            let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("c{i}"), "namespace": "a"}});
            let rev = store
                .create(
                    &res.key(Some("a"), &format!("c{i}")),
                    Bytes::from(serde_json::to_vec(&body).unwrap()),
                )
                .await
                .unwrap();
            // Each create reaches the informer in a watch batch of its own, so the subscriber
            // falls `n` batches behind.
            maps.wait_for_revision(rev).await;
        }
        assert_eq!(maps.len(), n);
        assert!(matches!(sub.recv().await, Some(Notification::Resync)));
    }

    /// Changes that arrive together (concurrent creates committed in one batch) reach a
    /// subscriber one by one, each once, in revision order.
    #[tokio::test]
    async fn a_subscriber_gets_each_change_of_a_batch_in_order() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let (_dir, store, cache) = empty_cache();
        let maps = cache.synced::<ConfigMap>().await;
        let mut sub = maps.subscribe();
        let res = resource_of::<ConfigMap>();
        let n = 64;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let store = store.clone();
            let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("c{i}"), "namespace": "a"}});
            let k = res.key(Some("a"), &format!("c{i}"));
            tasks.spawn(async move {
                store
                    .create(&k, Bytes::from(serde_json::to_vec(&body).unwrap()))
                    .await
                    .unwrap()
            });
        }
        let revs = tasks.join_all().await;
        let mut seen = Vec::new();
        for _ in 0..n {
            match sub.recv().await.unwrap() {
                Notification::Changed(c) => {
                    assert!(c.old.is_none());
                    let rv = c.object().metadata.resource_version.clone().unwrap();
                    seen.push(rv.parse::<i64>().unwrap());
                }
                Notification::Resync => panic!("unexpected resync"),
            }
        }
        let mut want = revs.clone();
        want.sort();
        assert_eq!(seen, want);
        assert_eq!(maps.revision(), *want.last().unwrap());
        // Nothing more.
        assert!(tokio::time::timeout(Duration::from_millis(50), sub.recv())
            .await
            .is_err());
    }

    /// A cache over an empty store (and the folder the store lives in).
    fn empty_cache() -> (tempfile::TempDir, DynStore, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore =
            SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let cache = Cache::new(store.clone(), crate::Tasks::new());
        (dir, store, cache)
    }

    /// An observer has seen every change, with the object before and after, by the time
    /// `wait_for_revision` returns for it, also where a subscriber fell behind.
    #[tokio::test]
    async fn an_observer_sees_every_change_before_its_revision_is_reached() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (_dir, store, cache) = empty_cache();
        let maps = cache.synced::<ConfigMap>().await;
        let mut sub = maps.subscribe();
        let seen = Arc::new([
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        ]);
        let s = seen.clone();
        let cached = maps.clone();
        maps.on_apply(move |old, new| {
            let i = match (old, new) {
                (None, Some(_)) => 0,
                (Some(_), Some(_)) => 1,
                _ => 2,
            };
            // The cache already holds the change.
            let name = new.or(old).unwrap().metadata.name.as_deref().unwrap();
            assert_eq!(cached.get(Some("a"), name).is_some(), new.is_some());
            s[i].fetch_add(1, Ordering::Relaxed);
        });
        let res = resource_of::<ConfigMap>();
        let n = channel_capacity("ConfigMap") + 8;
        let body = |i: usize, v: &str| {
            let b = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("c{i}"), "namespace": "a"}, "data": {"v": v}});
            Bytes::from(serde_json::to_vec(&b).unwrap())
        };
        let mut revs = Vec::new();
        for i in 0..n {
            let k = res.key(Some("a"), &format!("c{i}"));
            let rev = store.create(&k, body(i, "1")).await.unwrap();
            // A watch batch each, so that the subscriber falls behind.
            maps.wait_for_revision(rev).await;
            revs.push(rev);
        }
        let k = res.key(Some("a"), "c0");
        let last = store.update(&k, revs[0], body(0, "2")).await.unwrap();
        maps.wait_for_revision(last).await;
        assert_eq!(seen[0].load(Ordering::Relaxed), n);
        assert_eq!(seen[1].load(Ordering::Relaxed), 1);
        let gone = store.delete(&k, None).await.unwrap();
        maps.wait_for_revision(gone.mod_revision).await;
        assert_eq!(seen[2].load(Ordering::Relaxed), 1);
        assert!(matches!(sub.recv().await, Some(Notification::Resync)));
    }

    #[tokio::test]
    async fn updates_keep_or_move_index_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore =
            SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let res = resource_of::<Pod>();
        let k = res.key(Some("a"), "p");
        let mut rev = store
            .create(&k, pod_bytes("a", "p", Some("n1"), Some("rs1")))
            .await
            .unwrap();
        let cache = Cache::new(store.clone(), crate::Tasks::new());
        let pods = cache.synced::<Pod>().await;
        // (node, owner) after each write, and what the indexes must answer.
        let steps = [
            (Some("n1"), Some("rs1")), // unchanged
            (Some("n1"), Some("rs2")), // new owner
            (Some("n2"), Some("rs2")), // new node
            (None, None),              // neither
            (Some("n1"), Some("rs1")), // both back
        ];
        for (node, owner) in steps {
            rev = store
                .update(&k, rev, pod_bytes("a", "p", node, owner))
                .await
                .unwrap();
            pods.wait_for_revision(rev).await;
            for n in ["n1", "n2"] {
                assert_eq!(pods.on_node(n).len(), usize::from(node == Some(n)), "{n}");
            }
            for o in ["rs1", "rs2"] {
                assert_eq!(pods.owned_by(o).len(), usize::from(owner == Some(o)), "{o}");
            }
            assert_eq!(pods.orphans_in("a").len(), usize::from(owner.is_none()));
            assert!(pods.orphans_in("b").is_empty());
            // The visitors see what the lists hold.
            for o in ["rs1", "rs2"] {
                let mut seen = Vec::new();
                pods.for_each_owned_by(o, |p| seen.push(p.clone()));
                let listed = pods.owned_by(o);
                assert_eq!(seen.len(), listed.len(), "{o}");
                assert!(seen.iter().zip(&listed).all(|(a, b)| Arc::ptr_eq(a, b)));
            }
            let mut orphans = 0;
            pods.for_each_orphan_in("a", |_| orphans += 1);
            assert_eq!(orphans, usize::from(owner.is_none()));
            pods.for_each_orphan_in("b", |_| panic!("no orphans in b"));
            // The indexes answer with the newest version, as `get` does.
            let newest = pods.get(Some("a"), "p").unwrap();
            let via_index = owner
                .map(|o| pods.owned_by(o))
                .or_else(|| Some(pods.orphans_in("a")))
                .into_iter()
                .chain(node.map(|n| pods.on_node(n)));
            for found in via_index {
                assert!(Arc::ptr_eq(&found[0], &newest));
                assert_eq!(
                    found[0].metadata.resource_version.as_deref(),
                    Some(rev.to_string().as_str())
                );
            }
            assert_eq!(pods.len(), 1);
            let st = pods.inner.state.read();
            // Emptied sets go away.
            assert!(st.indexes.by_owner.values().all(|s| s.len() == 1));
            assert!(st.indexes.by_node.values().all(|s| s.len() == 1));
            assert_eq!(st.indexes.by_owner.len(), usize::from(owner.is_some()));
            assert_eq!(st.indexes.by_node.len(), usize::from(node.is_some()));
            assert_eq!(st.indexes.orphans.len(), usize::from(owner.is_none()));
        }
    }

    #[test]
    fn parsing_as_text_gives_what_parsing_bytes_gives() {
        use k8s_openapi::api::core::v1::Event;
        let texts: Vec<Vec<u8>> = vec![
            pod_bytes("a", "p", Some("n1"), Some("rs1")).to_vec(),
            br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p\u00e9\ud83d\ude00","labels":{"k":"caf\u00e9 \" \\ \n"}}}"#.to_vec(),
            "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"é ✓\"}}".as_bytes().to_vec(),
            br#"{"kind":"Event","apiVersion":"v1","metadata":{"name":"e"},"involvedObject":{},"message":"ok","count":3}"#.to_vec(),
            // Not UTF-8, a lone surrogate escape, bad JSON, a wrong kind: errors either way.
            b"{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"\xff\"}}".to_vec(),
            br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"\ud800"}}"#.to_vec(),
            br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":}"#.to_vec(),
            br#"{"kind":"Node","apiVersion":"v1"}"#.to_vec(),
        ];
        for t in &texts {
            let a = parse::<Pod>(t).map_err(|e| e.to_string());
            let b = serde_json::from_slice::<Pod>(t).map_err(|e| e.to_string());
            assert_eq!(a, b, "{}", String::from_utf8_lossy(t));
            let a = parse::<Event>(t).map_err(|e| e.to_string());
            let b = serde_json::from_slice::<Event>(t).map_err(|e| e.to_string());
            assert_eq!(a, b, "{}", String::from_utf8_lossy(t));
        }
        let p = parse::<Pod>(&texts[1]).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("p\u{e9}\u{1f600}"));
        assert_eq!(p.metadata.labels.unwrap()["k"], "caf\u{e9} \" \\ \n");
        assert!(parse::<Pod>(&texts[0])
            .unwrap()
            .metadata
            .owner_references
            .is_some());
    }

    /// An object the API server keeps for its next write (a pod made by an in-process
    /// writer, then bound) decodes from that object to what its stored bytes parse to.
    #[tokio::test]
    async fn kept_objects_decode_as_their_bytes_do() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore =
            SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let api = ApiServer::new(store.clone(), skiff_apiserver::ApiOptions::default());
        api.bootstrap().await.unwrap();
        let client = crate::Client::new(api.clone(), "kube-controller-manager");
        // The owner exists: a pod whose owner is missing is the garbage collector's to delete,
        // and its graceful deletion would rewrite the pod while the test looks at it.
        let owner = client
            .create_value::<k8s_openapi::api::apps::v1::ReplicaSet>(
                Some("default"),
                &serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": "web"},
                    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}),
            )
            .await
            .unwrap();
        let body = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "web-", "labels": {"app": "web"},
                "annotations": {"note": "a \"quoted\" value"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web", "uid": owner.uid, "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
                "ports": [{"containerPort": 80}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}});
        let made = client
            .create_value::<Pod>(Some("default"), &body)
            .await
            .unwrap();
        let key = format!("/registry/core/pods/default/{}", made.name);
        let check = |stage: &'static str| {
            let (store, api, key) = (store.clone(), api.clone(), key.clone());
            async move {
                let (kv, _) = store.get(&key, ReadAt::Latest).await.unwrap();
                let kv = kv.unwrap();
                assert!(api.kept_object(&key, &kv.value).is_some(), "{stage}: kept");
                let kept: Pod = decode(&kv, Some(&api)).unwrap();
                let parsed: Pod = decode(&kv, None).unwrap();
                assert_eq!(kept, parsed, "{stage}");
                assert_eq!(kept.metadata.managed_fields, None);
                kept
            }
        };
        let created = check("created").await;
        assert!(created.spec.as_ref().unwrap().node_name.is_none());
        api.bind_pod(Some("default"), &made.name, "node-1", false)
            .await
            .unwrap();
        let bound = check("bound").await;
        // The binding changed only the created pod's node name and status, and its kept object
        // says so: an informer holding the created pod decodes the status alone and sets the
        // node name, to what parsing the stored bytes gives. The object stays kept for the
        // kubelet's status write.
        {
            let (kv, _) = store.get(&key, ReadAt::Latest).await.unwrap();
            let kv = kv.unwrap();
            let obj = api.kept_object(&key, &kv.value).expect("kept");
            assert_eq!(obj.delta(), Some(Delta::Binding(made.revision)));
            let renewed: Pod = decode_kept(&kv, Some(obj), Some(&created)).unwrap();
            assert_eq!(renewed, bound);
            assert!(api.kept_object(&key, &kv.value).is_some());
        }
        assert_eq!(
            bound.spec.as_ref().unwrap().node_name.as_deref(),
            Some("node-1")
        );
        assert_eq!(
            bound.metadata.resource_version,
            Some(format!("{}", made.revision + 1))
        );

        // A status write keeps what it wrote for the informers alone: the first to decode it
        // takes it.
        let status = serde_json::json!({"phase": "Running", "podIP": "10.42.0.9"});
        let kubelet = crate::Client::new(api.clone(), "kubelet");
        let rev = kubelet
            .replace_status::<Pod>(Some("default"), &made.name, &made.uid, &status)
            .await
            .unwrap();
        assert_eq!(rev, Some(made.revision + 2));
        // It differs from the bound pod only in its status: an informer holding the bound
        // pod decodes the status alone, to what parsing the stored bytes gives.
        let status_written = |cached: Pod, status_of: i64| {
            let (store, api, key) = (store.clone(), api.clone(), key.clone());
            async move {
                let (kv, _) = store.get(&key, ReadAt::Latest).await.unwrap();
                let kv = kv.unwrap();
                let obj = api.kept_object(&key, &kv.value).expect("kept");
                assert_eq!(obj.delta(), Some(Delta::Status(status_of)));
                let parsed: Pod = decode(&kv, None).unwrap();
                let renewed: Pod = decode_kept(&kv, Some(obj), Some(&cached)).unwrap();
                assert_eq!(renewed, parsed);
                // Taken by the first informer.
                assert!(api.kept_object(&key, &kv.value).is_none());
                renewed
            }
        };
        let running = status_written(bound.clone(), made.revision + 1).await;
        assert_eq!(
            running.status.as_ref().unwrap().pod_ip.as_deref(),
            Some("10.42.0.9")
        );
        // Conditions and container states; then a copy at another revision than the one the
        // write changed is decoded whole, still to the same.
        let status = serde_json::json!({"phase": "Running", "podIP": "10.42.0.9",
            "conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "2026-11-29T05:00:00Z"}],
            "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                "image": "nginx:1.27", "imageID": "", "state": {"running":
                    {"startedAt": "2026-11-29T05:00:00Z"}}}]});
        kubelet
            .replace_status::<Pod>(Some("default"), &made.name, &made.uid, &status)
            .await
            .unwrap();
        let ready = status_written(running.clone(), made.revision + 2).await;
        assert_eq!(
            ready
                .status
                .as_ref()
                .unwrap()
                .conditions
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        let status = serde_json::json!({"phase": "Succeeded", "podIP": "10.42.0.9"});
        kubelet
            .replace_status::<Pod>(Some("default"), &made.name, &made.uid, &status)
            .await
            .unwrap();
        status_written(running, made.revision + 3).await;
        // The binding left the create's entry as it was, the status write added the kubelet's
        // (both written on the managedFields text, without a tree of them).
        let pods = skiff_core::registry::lookup("", "v1", "pods").unwrap();
        let (stored, _) = api.read(pods, Some("default"), &made.name).await.unwrap();
        let entries = stored["metadata"]["managedFields"].as_array().unwrap();
        let who: Vec<_> = entries
            .iter()
            .map(|e| (e["manager"].as_str().unwrap(), e["subresource"].as_str()))
            .collect();
        assert_eq!(
            who,
            [
                ("kube-controller-manager", None),
                ("kubelet", Some("status"))
            ]
        );
        assert_eq!(
            entries[1]["fieldsV1"],
            serde_json::json!({"f:status": {"f:phase": {}, "f:podIP": {}}})
        );
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(key(Some("ns"), "a"), "ns/a");
        assert_eq!(key(None, "a"), "a");
        assert_eq!(split_key("ns/a"), (Some("ns"), "a"));
        assert_eq!(split_key("a"), (None, "a"));
    }
}
