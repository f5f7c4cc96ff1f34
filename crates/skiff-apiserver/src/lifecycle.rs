//! The server's own lifecycle loops, fed by one watch over every stored object:
//!
//! - **Garbage collection** by owner references, as upstream's garbage collector: dependents
//!   whose owners are all gone are deleted; an owner deleted with `propagationPolicy=Foreground`
//!   (finalizer `foregroundDeletion`) waits until its dependents are gone; one deleted with
//!   `Orphan` (finalizer `orphan`) first strips itself from its dependents' owner references.
//! - **Namespace deletion**, as upstream's namespace controller: a terminating namespace has
//!   its content deleted, then its `kubernetes` finalizer removed, and goes away.
//!
//! The graph is kept in memory and every decision to delete is checked against the store
//! first, so a lagging graph never deletes a live object.

use skiff_core::meta::Fields as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use memchr::memmem::Finder;

use serde_json::{json, Value};
use skiff_core::registry::{self, Resource};
use skiff_core::{meta, ApiError};
use skiff_store::{EventKind, KeyValue, ListOptions, ReadAt};

use crate::objects::{DeleteOptions, Deleted, UpdateMode};
use crate::server::ApiServer;

#[derive(Debug, Clone, PartialEq)]
struct Owner {
    uid: String,
    api_version: String,
    kind: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Node {
    uid: String,
    owners: Vec<Owner>,
    deleting: bool,
    finalizers: Vec<String>,
    /// The stored text the node was built from, from its start through the metadata's
    /// `managedFields` key (or through the end of metadata without one), when the walk
    /// over the members found it ([`graph_text`]): stored bytes that start with the same text
    /// hold the same uid, owners, finalizers and deletion, so an update that keeps it (a pod's
    /// binding and status writes) is known to change nothing here by one comparison.
    prefix: Option<Box<[u8]>>,
}

impl Node {
    /// Whether `other` holds what the graph reads (its own prefix aside) as this node does.
    fn same_graph(&self, other: &Node) -> bool {
        self.uid == other.uid
            && self.owners == other.owners
            && self.deleting == other.deleting
            && self.finalizers == other.finalizers
    }
}

/// The graph's maps' hasher: store keys and uids are hashed a few times per event, and
/// SipHash was a good part of the graph's upkeep.
type Hasher = foldhash::fast::RandomState;
type Map<V> = HashMap<String, V, Hasher>;
type Set = HashSet<String, Hasher>;

/// The part of a stored object the graph reads.
#[derive(serde::Deserialize)]
struct GraphObject {
    #[serde(default)]
    metadata: GraphMeta,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GraphMeta {
    #[serde(deserialize_with = "null_as_default")]
    uid: String,
    owner_references: Option<Vec<GraphOwner>>,
    deletion_timestamp: Option<String>,
    finalizers: Option<Vec<String>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GraphOwner {
    uid: String,
    api_version: String,
    kind: String,
    name: String,
}

fn null_as_default<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::Deserialize;
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// The owner graph of every stored object.
#[derive(Default)]
struct Graph {
    by_key: Map<Node>,
    by_uid: Map<String>,
    dependents: Map<Set>,
    /// Keys that need a look: changed objects, their owners and dependents.
    dirty: Set,
    /// The owner references parsed last, as their text and as parsed: the pods of one
    /// ReplicaSet carry the same text, which is then parsed once ([`Graph::owners`]).
    last_owners: Option<(Box<[u8]>, Vec<Owner>)>,
}

impl Graph {
    fn upsert(&mut self, kv: &KeyValue) {
        let known = self.by_key.get(&kv.key);
        // The same text up to the managed fields: nothing the graph reads has changed.
        if known
            .and_then(|n| n.prefix.as_deref())
            .is_some_and(|p| kv.value.starts_with(p))
        {
            return;
        }
        // Most objects have no owners, finalizers or deletion pending, and own nothing yet:
        // a byte scan says so without parsing (the uid is still indexed, for the owners).
        let plain = !mentions_graph_fields(&kv.value);
        if plain {
            match known {
                // A known object that had and still has no owners, finalizers or deletion:
                // the update changes nothing the graph keeps (a key's uid changes only
                // through a delete, which removes the node).
                Some(n) => {
                    if n.owners.is_empty() && n.finalizers.is_empty() && !n.deleting {
                        return;
                    }
                }
                None => {
                    if let Some(uid) = quick_uid(&kv.value) {
                        self.by_uid.insert(uid.clone(), kv.key.clone());
                        self.by_key.insert(
                            kv.key.clone(),
                            Node {
                                uid,
                                owners: Vec::new(),
                                deleting: false,
                                finalizers: Vec::new(),
                                prefix: None,
                            },
                        );
                        return;
                    }
                }
            }
        }
        // Only the metadata the graph needs: its members' text when the walk found them,
        // else the object with everything else skipped unparsed.
        let walked = graph_text(&kv.value);
        let m = match &walked {
            Some(w) => self.members_meta(&w.members),
            None => whole_meta(&kv.value),
        };
        let Some(m) = m else {
            return;
        };
        let node = Node {
            uid: m.uid,
            owners: m.owners,
            deleting: m.deleting,
            finalizers: m.finalizers,
            prefix: walked
                .and_then(|w| w.prefix)
                .map(|end| kv.value[..end].into()),
        };
        // An update that leaves uid, owners, finalizers and deletion as they were (a label
        // or annotation changed) changes nothing the graph keeps but the prefix.
        if let Some(n) = self.by_key.get_mut(&kv.key) {
            if n.same_graph(&node) {
                n.prefix = node.prefix;
                return;
            }
        }
        self.remove(&kv.key);
        for o in &node.owners {
            // The owner's uid and key are copied only when new here: an owner's dependents
            // come one after another, and its key stays dirty until the next look.
            match self.dependents.get_mut(&o.uid) {
                Some(set) => {
                    set.insert(kv.key.clone());
                }
                None => {
                    let mut set = Set::default();
                    set.insert(kv.key.clone());
                    self.dependents.insert(o.uid.clone(), set);
                }
            }
            if let Some(k) = self.by_uid.get(&o.uid) {
                if !self.dirty.contains(k) {
                    self.dirty.insert(k.clone());
                }
            }
        }
        if !node.uid.is_empty() {
            self.by_uid.insert(node.uid.clone(), kv.key.clone());
        }
        let interesting = !node.owners.is_empty() || node.deleting;
        self.by_key.insert(kv.key.clone(), node);
        if interesting {
            self.dirty.insert(kv.key.clone());
        }
    }

    /// The metadata from its members' text ([`graph_text`]); `None` when one of them does not
    /// parse or is written twice, as when they were parsed together as one object.
    fn members_meta(&mut self, m: &Members) -> Option<Meta> {
        if m.repeated {
            return None;
        }
        let uid = match m.uid {
            Some(t) => match plain_string(t) {
                Some(s) => s,
                None => serde_json::from_slice::<Option<String>>(t)
                    .ok()?
                    .unwrap_or_default(),
            },
            None => String::new(),
        };
        let owners = match m.owner_references {
            Some(t) => self.owners(t)?,
            None => Vec::new(),
        };
        let deleting = match m.deletion_timestamp {
            Some(t) => serde_json::from_slice::<Option<String>>(t).ok()?.is_some(),
            None => false,
        };
        let finalizers = match m.finalizers {
            Some(t) => serde_json::from_slice::<Option<Vec<String>>>(t).ok()?,
            None => None,
        };
        Some(Meta {
            uid,
            owners,
            deleting,
            finalizers: exact_list(finalizers),
        })
    }

    /// The owners an `ownerReferences` text names: a copy of the last ones when the text is
    /// the same.
    fn owners(&mut self, text: &[u8]) -> Option<Vec<Owner>> {
        if let Some((last, owners)) = &self.last_owners {
            if **last == *text {
                return Some(owners.clone());
            }
        }
        let refs = serde_json::from_slice::<Option<Vec<GraphOwner>>>(text).ok()?;
        let owners = owners_of(refs);
        self.last_owners = Some((text.into(), owners.clone()));
        Some(owners)
    }

    fn remove(&mut self, key: &str) {
        let Some(node) = self.by_key.remove(key) else {
            return;
        };
        if self.by_uid.get(&node.uid).map(String::as_str) == Some(key) {
            self.by_uid.remove(&node.uid);
        }
        for o in &node.owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
            if let Some(k) = self.by_uid.get(&o.uid) {
                self.dirty.insert(k.clone());
            }
        }
        // A terminating namespace looks again when its content goes.
        if let Some(ns) = parse_key(key)
            .map(|(_, ns, _)| ns)
            .unwrap_or_else(|| custom_key_namespace(key))
        {
            let ns_key = format!("/registry/core/namespaces/{ns}");
            if self.by_key.get(&ns_key).is_some_and(|n| n.deleting) {
                self.dirty.insert(ns_key);
            }
        }
        // Its dependents may now be orphans.
        if let Some(deps) = self.dependents.get(&node.uid) {
            self.dirty.extend(deps.iter().cloned());
        }
    }
}

/// Whether [`reconcile`] has anything to do for `node`: it is being deleted, or it has owners
/// and none of them is in the graph (then the store is asked). Everything else, a dependent
/// with an owner in the graph or an object that owns nothing and is not deleted, is left as
/// it is. The resync marks only these.
fn needs_look(by_uid: &Map<String>, node: &Node) -> bool {
    node.deleting
        || (!node.owners.is_empty() && !node.owners.iter().any(|o| by_uid.contains_key(&o.uid)))
}

/// What the walk over a stored object's metadata found ([`graph_text`]).
struct Walked<'a> {
    /// The members the graph reads.
    members: Members<'a>,
    /// The length of the object's text through the metadata's `managedFields` key and its
    /// colon, or through the brace that closes metadata when it has none: any object whose
    /// text starts with these bytes has the same members. None when the text after the last
    /// member is not laid out as the store writes it.
    prefix: Option<usize>,
}

/// The members of a stored object's metadata the graph reads (uid, owner references,
/// finalizers, deletion timestamp), as their JSON text, read without parsing the object. All
/// four come before `managedFields` in the canonical order objects are stored in, so the
/// walk ends there, without scanning the managed fields' text.
fn graph_text(b: &[u8]) -> Option<Walked<'_>> {
    let mut members = Members::default();
    let mut last_end = None;
    let ok = meta::metadata_members_before(b, Some(b"managedFields"), |k, v| {
        // `v` lies within `b`: where it ends is where the walk has read to.
        last_end = Some(v.as_ptr() as usize - b.as_ptr() as usize + v.len());
        let slot = match k {
            b"uid" => &mut members.uid,
            b"ownerReferences" => &mut members.owner_references,
            b"finalizers" => &mut members.finalizers,
            b"deletionTimestamp" => &mut members.deletion_timestamp,
            _ => return,
        };
        members.repeated |= slot.replace(v).is_some();
    });
    if !ok {
        return None;
    }
    // The walk read the object to `end` and stopped at the next member's key (managedFields)
    // or at metadata's closing brace. Another text that starts the same way is walked the
    // same way to the same stop.
    const MANAGED: &[u8] = b",\"managedFields\":";
    let prefix = last_end.and_then(|end| {
        let rest = &b[end..];
        if rest.starts_with(MANAGED) {
            Some(end + MANAGED.len())
        } else if rest.starts_with(b"}") {
            Some(end + 1)
        } else {
            None
        }
    });
    Some(Walked { members, prefix })
}

/// The JSON text of each metadata member the graph reads, as [`graph_text`] found them.
#[derive(Default)]
struct Members<'a> {
    uid: Option<&'a [u8]>,
    owner_references: Option<&'a [u8]>,
    deletion_timestamp: Option<&'a [u8]>,
    finalizers: Option<&'a [u8]>,
    /// One of them was written twice (parsed as one object, that is an error).
    repeated: bool,
}

/// What the graph keeps of an object's metadata.
#[derive(Debug, PartialEq)]
struct Meta {
    uid: String,
    owners: Vec<Owner>,
    deleting: bool,
    finalizers: Vec<String>,
}

/// The graph's metadata parsed from the whole stored object, everything else skipped
/// unparsed (when the walk over the members did not find the store's layout).
fn whole_meta(value: &[u8]) -> Option<Meta> {
    let m = serde_json::from_slice::<GraphObject>(value).ok()?.metadata;
    Some(Meta {
        uid: m.uid,
        owners: owners_of(m.owner_references),
        deleting: m.deletion_timestamp.is_some(),
        finalizers: exact_list(m.finalizers),
    })
}

/// The owners of parsed owner references, in a list of its length: the node lives as long as
/// the object, and parsing left a pod's one owner reference in the room of four.
fn owners_of(refs: Option<Vec<GraphOwner>>) -> Vec<Owner> {
    let refs = refs.unwrap_or_default();
    let mut owners = Vec::with_capacity(refs.len());
    owners.extend(refs.into_iter().map(|o| Owner {
        uid: o.uid,
        api_version: o.api_version,
        kind: o.kind,
        name: o.name,
    }));
    owners
}

/// A parsed list in a list of its length.
fn exact_list(list: Option<Vec<String>>) -> Vec<String> {
    list.unwrap_or_default().into_boxed_slice().into_vec()
}

/// The value of a JSON string written without escapes, quotes inside or control characters,
/// which is its text between the quotes (as the parser would give it); `None` for any other
/// text, which is left to the parser.
fn plain_string(t: &[u8]) -> Option<String> {
    let inner = t.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if meta::first_special(inner).is_some() {
        return None;
    }
    std::str::from_utf8(inner).ok().map(str::to_string)
}

/// Whether stored bytes may carry owner references, finalizers or a deletion timestamp.
fn mentions_graph_fields(b: &[u8]) -> bool {
    // Built once: a searcher built per call cost more than the search. (One multi-pattern
    // automaton instead read JSON slower: every name starts with a quote, which defeats
    // its prefilter.)
    static NAMES: LazyLock<[Finder<'static>; 3]> = LazyLock::new(|| {
        [
            Finder::new(b"\"ownerReferences\""),
            Finder::new(b"\"finalizers\""),
            Finder::new(b"\"deletionTimestamp\""),
        ]
    });
    NAMES.iter().any(|f| f.find(b).is_some())
}

/// The uid of a stored (canonical) object: the first `"uid":"…"` after `"metadata":{`,
/// before any nested object.
fn quick_uid(b: &[u8]) -> Option<String> {
    const META: &[u8] = b"\"metadata\":{";
    const UID: &[u8] = b"\"uid\":\"";
    static FIND: LazyLock<(Finder<'static>, Finder<'static>)> =
        LazyLock::new(|| (Finder::new(META), Finder::new(UID)));
    let m = FIND.0.find(b)? + META.len();
    let rel = FIND.1.find(&b[m..])?;
    if b[m..m + rel].contains(&b'{') {
        return None;
    }
    let start = m + rel + UID.len();
    let len = b[start..].iter().position(|&c| c == b'"')?;
    std::str::from_utf8(&b[start..start + len])
        .ok()
        .map(str::to_string)
}

/// Maps a store key back to its resource, namespace and name.
fn parse_key(key: &str) -> Option<(&'static Resource, Option<String>, String)> {
    let rest = key.strip_prefix("/registry/")?;
    let mut parts = rest.splitn(4, '/');
    let group = parts.next()?;
    let plural = parts.next()?;
    let group = if group == "core" { "" } else { group };
    let res = registry::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)?;
    let a = parts.next()?;
    if res.namespaced {
        let name = parts.next()?;
        Some((res, Some(a.to_string()), name.to_string()))
    } else {
        Some((res, None, a.to_string()))
    }
}

/// The namespace of a key that is not a built-in resource's (custom objects:
/// `/registry/<group>/<plural>/<namespace>/<name>`).
fn custom_key_namespace(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.strip_prefix("/registry/")?.split('/').collect();
    (parts.len() == 4).then(|| parts[2].to_string())
}

/// Maps a store key to its resource, namespace and name, custom resources included.
fn resolve_key(srv: &ApiServer, key: &str) -> Option<(&'static Resource, Option<String>, String)> {
    if let Some(found) = parse_key(key) {
        return Some(found);
    }
    let parts: Vec<&str> = key.strip_prefix("/registry/")?.split('/').collect();
    let res = srv.crds.by_storage(parts.first()?, parts.get(1)?)?;
    match (res.namespaced, parts.len()) {
        (true, 4) => Some((res, Some(parts[2].to_string()), parts[3].to_string())),
        (false, 3) => Some((res, None, parts[2].to_string())),
        _ => None,
    }
}

/// Starts the loops.
pub fn start(srv: Arc<ApiServer>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run(srv.clone()).await {
                tracing::warn!(error = %e, "lifecycle loop restarting");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

async fn run(srv: Arc<ApiServer>) -> Result<(), ApiError> {
    let mut graph = Graph::default();
    let page = srv
        .store
        .list(ListOptions {
            prefix: "/registry/".into(),
            at: ReadAt::Latest,
            start_after: None,
            limit: 0,
        })
        .await
        .map_err(ApiError::internal)?;
    for kv in &page.items {
        graph.upsert(kv);
    }
    let mut watch = srv
        .store
        .watch("/registry/", page.revision)
        .await
        .map_err(ApiError::internal)?;
    let mut resync = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            batch = watch.next() => {
                let Some(batch) = batch else { return Ok(()) };
                let batch = batch.map_err(ApiError::internal)?;
                for ev in batch {
                    match ev.kind {
                        EventKind::Put => graph.upsert(&ev.kv),
                        EventKind::Delete => graph.remove(&ev.kv.key),
                    }
                }
                // Take more events that are already there before acting.
                continue;
            }
            _ = resync.tick() => {
                // Only the keys a look would act on: a dependent whose owner is in the graph
                // is answered at once by `reconcile`, and the graph does not change between
                // here and the looks below.
                let Graph { by_key, by_uid, dirty, .. } = &mut graph;
                dirty.extend(
                    by_key
                        .iter()
                        .filter(|(_, n)| needs_look(by_uid, n))
                        .map(|(k, _)| k.clone()),
                );
            }
            _ = tokio::time::sleep(Duration::from_millis(50)), if !graph.dirty.is_empty() => {}
        }
        let dirty: Vec<String> = graph.dirty.drain().collect();
        for key in dirty {
            if let Err(e) = reconcile(&srv, &graph, &key).await {
                tracing::debug!(key, error = %e, "lifecycle step failed; will retry");
            }
        }
    }
}

async fn reconcile(srv: &Arc<ApiServer>, graph: &Graph, key: &str) -> Result<(), ApiError> {
    let Some(node) = graph.by_key.get(key) else {
        return Ok(());
    };
    // A dependent whose owner is in the graph has nothing to do: answered before the key is
    // mapped back.
    if !needs_look(&graph.by_uid, node) {
        return Ok(());
    }
    let Some((res, ns, name)) = resolve_key(srv, key) else {
        return Ok(());
    };
    if node.deleting {
        if res.group.is_empty() && res.kind == "Namespace" {
            finish_namespace(srv, &name).await?;
        }
        let deps: Vec<String> = graph
            .dependents
            .get(&node.uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if node.finalizers.iter().any(|f| f == "orphan") {
            for d in &deps {
                strip_owner(srv, d, &node.uid).await?;
            }
            remove_finalizer(srv, res, ns.as_deref(), &name, "orphan").await?;
        } else if node.finalizers.iter().any(|f| f == "foregroundDeletion") {
            if deps.is_empty() {
                remove_finalizer(srv, res, ns.as_deref(), &name, "foregroundDeletion").await?;
            } else {
                for d in &deps {
                    if graph.by_key.get(d).is_some_and(|n| !n.deleting) {
                        delete_key(srv, d, "Foreground").await?;
                    }
                }
            }
        }
    }
    if !node.owners.is_empty() && !node.deleting {
        // Delete a dependent whose owners are all gone (checked against the store).
        let mut any_alive = false;
        for o in &node.owners {
            if graph.by_uid.contains_key(&o.uid) || owner_alive(srv, o, ns.as_deref()).await? {
                any_alive = true;
                break;
            }
        }
        if !any_alive {
            delete_key(srv, key, "Background").await?;
        }
    }
    Ok(())
}

async fn owner_alive(srv: &ApiServer, o: &Owner, ns: Option<&str>) -> Result<bool, ApiError> {
    let found = registry::lookup_kind(&o.api_version, &o.kind)
        .or_else(|| srv.crds.lookup_kind(&o.api_version, &o.kind));
    let Some(res) = found else {
        // An unknown kind: do not guess.
        return Ok(true);
    };
    let ns = if res.namespaced { ns } else { None };
    match srv.read(res, ns, &o.name).await {
        Ok((v, _)) => Ok(meta::uid(&v) == o.uid),
        Err(e) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

async fn delete_key(srv: &ApiServer, key: &str, policy: &str) -> Result<(), ApiError> {
    let Some((res, ns, name)) = resolve_key(srv, key) else {
        return Ok(());
    };
    let opts = DeleteOptions {
        propagation_policy: Some(policy.into()),
        ..Default::default()
    };
    srv.delete_object(res, ns.as_deref(), &name, &opts)
        .await
        .map(|_| ())
}

async fn strip_owner(srv: &ApiServer, key: &str, owner_uid: &str) -> Result<(), ApiError> {
    let Some((res, ns, name)) = resolve_key(srv, key) else {
        return Ok(());
    };
    srv.guaranteed_update(
        res,
        ns.as_deref(),
        &name,
        UpdateMode::Internal,
        false,
        |cur| {
            let mut next = cur.clone();
            if let Some(refs) = next
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
                if refs.is_empty() {
                    meta::metadata_mut(&mut next).remove("ownerReferences");
                }
            }
            Ok(next)
        },
    )
    .await
    .map(|_| ())
}

async fn remove_finalizer(
    srv: &ApiServer,
    res: &'static Resource,
    ns: Option<&str>,
    name: &str,
    finalizer: &str,
) -> Result<(), ApiError> {
    srv.guaranteed_update(res, ns, name, UpdateMode::Internal, false, |cur| {
        let mut next = cur.clone();
        let f: Vec<String> = meta::finalizers(cur)
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        let m = meta::metadata_mut(&mut next);
        if f.is_empty() {
            m.remove("finalizers");
        } else {
            m.insert("finalizers".into(), json!(f));
        }
        Ok(next)
    })
    .await
    .map(|_| ())
}

/// Deletes a terminating namespace's content; once it is empty, removes the `kubernetes`
/// finalizer so the namespace itself goes.
async fn finish_namespace(srv: &ApiServer, ns: &str) -> Result<(), ApiError> {
    // What is left once this pass's deletions are done: instances per resource and per
    // finalizer, as upstream's namespace controller reports them in the namespace's conditions.
    let mut remaining: BTreeMap<String, usize> = BTreeMap::new();
    let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = HashSet::new();
    // Custom resources too: every served version (they share their keys; the first one
    // seen of each is used).
    let custom = srv.crds.snapshot();
    for res in registry::RESOURCES
        .iter()
        .chain(custom.resources.iter().copied())
        .filter(|r| r.namespaced)
    {
        let sres = crate::objects::storage_resource(res);
        if !seen.insert(sres.key_prefix()) {
            continue;
        }
        let page = srv
            .store
            .list(ListOptions {
                prefix: sres.namespace_prefix(ns),
                at: ReadAt::Latest,
                start_after: None,
                limit: 0,
            })
            .await
            .map_err(ApiError::internal)?;
        for kv in page.items {
            let Ok(v) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            let left = if meta::is_deleting(&v) {
                Some(v)
            } else {
                let opts = DeleteOptions {
                    propagation_policy: Some("Background".into()),
                    ..Default::default()
                };
                match srv
                    .delete_object(sres, Some(ns), meta::name(&v), &opts)
                    .await
                {
                    Ok(Deleted::Now(_)) => None,
                    Ok(Deleted::Pending(o)) => Some(o),
                    Err(e) if e.code == 404 => None,
                    Err(e) if e.code == 409 => Some(v),
                    Err(e) => return Err(e),
                }
            };
            if let Some(o) = left {
                let gr = if sres.group.is_empty() {
                    sres.plural.to_string()
                } else {
                    format!("{}.{}", sres.plural, sres.group)
                };
                *remaining.entry(gr).or_default() += 1;
                for f in meta::finalizers(&o) {
                    *finalizers.entry(f).or_default() += 1;
                }
            }
        }
    }
    let ns_res = registry::lookup("", "v1", "namespaces").expect("namespaces");
    let conditions = deletion_conditions(&remaining, &finalizers);
    let done = remaining.is_empty();
    srv.guaranteed_update(ns_res, None, ns, UpdateMode::Internal, false, |cur| {
        let mut next = cur.clone();
        merge_conditions(&mut next, &conditions);
        if done {
            // Empty: the namespace's own finalizer goes, and with it the namespace.
            if let Some(f) = next
                .pointer_mut("/spec/finalizers")
                .and_then(Value::as_array_mut)
            {
                f.retain(|x| x.as_str() != Some("kubernetes"));
            }
        }
        Ok(next)
    })
    .await
    .map(|_| ())
}

/// The conditions upstream's namespace controller sets on a terminating namespace, as
/// (type, status, reason, message).
fn deletion_conditions(
    remaining: &BTreeMap<String, usize>,
    finalizers: &BTreeMap<String, usize>,
) -> Vec<(&'static str, &'static str, &'static str, String)> {
    let content = if remaining.is_empty() {
        (
            "False",
            "ContentRemoved",
            "All content successfully removed".to_string(),
        )
    } else {
        let list: Vec<String> = remaining
            .iter()
            .map(|(gr, n)| format!("{gr} has {n} resource instances"))
            .collect();
        (
            "True",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", list.join(", ")),
        )
    };
    let fins = if finalizers.is_empty() {
        (
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".to_string(),
        )
    } else {
        let list: Vec<String> = finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        (
            "True",
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                list.join(", ")
            ),
        )
    };
    vec![
        (
            "NamespaceDeletionDiscoveryFailure",
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
        (
            "NamespaceDeletionGroupVersionParsingFailure",
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
        (
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        ),
        ("NamespaceContentRemaining", content.0, content.1, content.2),
        ("NamespaceFinalizersRemaining", fins.0, fins.1, fins.2),
    ]
}

/// Sets `status.conditions` to `wanted`, keeping a condition's lastTransitionTime while its
/// status stays the same (so a pass that changes nothing writes nothing).
fn merge_conditions(ns: &mut Value, wanted: &[(&'static str, &'static str, &'static str, String)]) {
    let old: Vec<Value> = ns
        .at("status")
        .field("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now = meta::now_rfc3339();
    let conditions: Vec<Value> = wanted
        .iter()
        .map(|(t, status, reason, message)| {
            let since = old
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
                .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now));
            json!({"type": t, "status": status, "lastTransitionTime": since, "reason": reason, "message": message})
        })
        .collect();
    let o = ns.as_object_mut().expect("object");
    let st = o.entry("status").or_insert_with(|| json!({}));
    if !st.is_object() {
        *st = json!({});
    }
    st["conditions"] = Value::Array(conditions);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_back_to_resources() {
        let (r, ns, n) = parse_key("/registry/apps/deployments/default/web").unwrap();
        assert_eq!(r.kind, "Deployment");
        assert_eq!(ns.as_deref(), Some("default"));
        assert_eq!(n, "web");
        let (r, ns, n) = parse_key("/registry/core/namespaces/kube-system").unwrap();
        assert_eq!(r.kind, "Namespace");
        assert!(ns.is_none());
        assert_eq!(n, "kube-system");
        assert!(parse_key("/other/x").is_none());
    }

    #[test]
    fn quick_scan_finds_uid_and_graph_fields() {
        let plain = br#"{"kind":"Pod","metadata":{"name":"p","namespace":"d","uid":"u-1","labels":{"uid":"x"}}}"#;
        assert_eq!(quick_uid(plain).as_deref(), Some("u-1"));
        assert!(!mentions_graph_fields(plain));
        for field in ["ownerReferences", "finalizers", "deletionTimestamp"] {
            let with = format!(r#"{{"metadata":{{"name":"p","uid":"u","{field}":[]}}}}"#);
            assert!(mentions_graph_fields(with.as_bytes()), "{field}");
            // Not as part of a longer name.
            let longer = format!(r#"{{"metadata":{{"name":"x{field}","{field}x":1}}}}"#);
            assert!(!mentions_graph_fields(longer.as_bytes()), "{field}");
        }
        assert_eq!(quick_uid(br#"{"metadata":{"labels":{"uid":"x"}}}"#), None);
    }

    /// What the graph reads from the members' text is what parsing the whole object gives,
    /// and the walk ends at managedFields.
    #[test]
    fn graph_metadata_from_the_members_text_matches_the_whole_object() {
        let stored = br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"d","uid":"u-1","deletionTimestamp":"2026-01-01T00:00:00Z","labels":{"uid":"x"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"o-1","controller":true,"blockOwnerDeletion":true}],"finalizers":["a/b"],"managedFields":[{"manager":"m","fieldsV1":{"f:metadata":{"f:uid":{}}}}]},"spec":{"containers":[]}}"#;
        let walked = graph_text(stored).expect("canonical layout");
        let m = &walked.members;
        let read = [
            m.uid,
            m.owner_references,
            m.finalizers,
            m.deletion_timestamp,
        ];
        assert!(
            read.iter()
                .flatten()
                .all(|t| !String::from_utf8_lossy(t).contains("manager")),
            "managedFields are not read"
        );
        let from_text = Graph::default()
            .members_meta(&walked.members)
            .expect("members parse");
        let whole = whole_meta(stored).expect("object parses");
        assert_eq!(from_text, whole);
        assert_eq!(
            whole,
            Meta {
                uid: "u-1".into(),
                owners: vec![Owner {
                    uid: "o-1".into(),
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: "rs".into(),
                }],
                deleting: true,
                finalizers: vec!["a/b".into()],
            }
        );
        // An object with none of the graph's members still parses (to the defaults).
        let bare = br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"}}"#;
        let walked = graph_text(bare).unwrap();
        let m = Graph::default().members_meta(&walked.members).unwrap();
        assert!(m.uid.is_empty() && m.owners.is_empty() && m.finalizers.is_empty());
        assert!(!m.deleting);
    }

    /// Member by member, with the owner references of the last object reused, the graph
    /// reads what parsing the whole object gives (or fails where that fails): escapes, nulls,
    /// values of the wrong type, a member written twice.
    #[test]
    fn members_parse_as_the_whole_object_does() {
        let owner = |uid: &str| {
            format!(
                r#"{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"{uid}","controller":true,"blockOwnerDeletion":true}}"#
            )
        };
        let refs = format!(r#""ownerReferences":[{}]"#, owner("o-1"));
        let two = format!(r#""ownerReferences":[{},{}]"#, owner("o-1"), owner("o-2"));
        let members: Vec<String> = vec![
            r#""uid":"u-1""#.into(),
            r#""uid":"u\"1""#.into(),
            r#""uid":"\u00e9t\u00e9""#.into(),
            "\"uid\":\"caf\u{e9}\"".into(),
            r#""uid":"""#.into(),
            r#""uid":null"#.into(),
            r#""uid":5"#.into(),
            r#""uid":"a","uid":"b""#.into(),
            r#""uid":"u","ownerReferences":null"#.into(),
            format!(r#""uid":"u",{refs}"#),
            format!(r#""uid":"u",{two}"#),
            format!(r#""uid":"u",{refs},{refs}"#),
            r#""ownerReferences":[]"#.into(),
            r#""ownerReferences":[{"uid":"o\"1","name":null}]"#.into(),
            r#""ownerReferences":[{"uid":"o-1","extra":{"a":[1,"]"]}}]"#.into(),
            r#""ownerReferences":[["o-1","v1","Kind","n"]]"#.into(),
            r#""ownerReferences":{"uid":"o-1"}"#.into(),
            r#""uid":"u","deletionTimestamp":"2026-01-01T00:00:00Z""#.into(),
            r#""uid":"u","deletionTimestamp":null"#.into(),
            r#""uid":"u","deletionTimestamp":1"#.into(),
            r#""uid":"u","finalizers":["a","b\"c"]"#.into(),
            r#""uid":"u","finalizers":null"#.into(),
            r#""uid":"u","finalizers":[1]"#.into(),
            format!(
                r#""name":"p","uid":"u",{refs},"finalizers":["orphan"],"deletionTimestamp":"t""#
            ),
        ];
        // One graph for all (its last owner references carried from case to case), and each
        // case also twice in a row, so that the second reads them from the last ones.
        let mut g = Graph::default();
        for m in &members {
            let text = format!(
                r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{{m},"managedFields":[{{"manager":"m"}}]}},"spec":{{}}}}"#
            );
            let whole = whole_meta(text.as_bytes());
            let walked = graph_text(text.as_bytes()).expect("canonical layout");
            for _ in 0..2 {
                let got = g.members_meta(&walked.members);
                assert_eq!(got, whole, "{m}");
                if let Some(got) = got {
                    assert_eq!(got.owners.len(), got.owners.capacity(), "{m}");
                    assert_eq!(got.finalizers.len(), got.finalizers.capacity(), "{m}");
                }
            }
        }
        assert!(
            whole_meta(br#"{"metadata":{"uid":"a","uid":"b"}}"#).is_none(),
            "a member written twice fails the whole parse too"
        );
    }

    /// A string written plainly is read as the parser reads it; anything else is left to it.
    #[test]
    fn plain_strings_are_their_text() {
        for t in [&br#""u-1""#[..], br#""""#, "\"caf\u{e9}\"".as_bytes()] {
            assert_eq!(
                plain_string(t),
                Some(serde_json::from_slice::<String>(t).unwrap()),
                "{}",
                String::from_utf8_lossy(t)
            );
        }
        for t in [
            &br#""a\"b""#[..],
            br#""a\u00e9""#,
            b"\"a\tb\"",
            b"\"",
            b"null",
            b"\"\xff\"",
            br#""a"b""#,
        ] {
            assert_eq!(plain_string(t), None, "{}", String::from_utf8_lossy(t));
        }
    }

    #[test]
    fn graph_tracks_dependents() {
        let mut g = Graph::default();
        let owner = KeyValue {
            key: "/registry/apps/replicasets/d/rs".into(),
            value: serde_json::to_vec(&json!({"metadata": {"uid": "o1"}}))
                .unwrap()
                .into(),
            create_revision: 1,
            mod_revision: 1,
        };
        let dep = KeyValue {
            key: "/registry/core/pods/d/p".into(),
            value: serde_json::to_vec(&json!({"metadata": {"uid": "p1", "ownerReferences": [{"uid": "o1", "kind": "ReplicaSet", "apiVersion": "apps/v1", "name": "rs"}]}})).unwrap().into(),
            create_revision: 2,
            mod_revision: 2,
        };
        g.upsert(&owner);
        g.upsert(&dep);
        assert!(g.dependents["o1"].contains("/registry/core/pods/d/p"));
        // The node keeps its owner in a list of its length (as parsed it had room for four).
        let owners = &g.by_key["/registry/core/pods/d/p"].owners;
        assert_eq!((owners.len(), owners.capacity()), (1, 1));
        assert_eq!(owners[0].uid, "o1");
        g.dirty.clear();
        g.remove(&owner.key);
        assert!(g.dirty.contains("/registry/core/pods/d/p"));
    }

    /// A look (and so the resync) is for objects being deleted and for dependents none of
    /// whose owners is in the graph; a dependent of a known owner, or an object that owns
    /// nothing, has nothing to do.
    #[test]
    fn looks_are_for_deletions_and_dependents_without_known_owners() {
        let mut g = Graph::default();
        g.upsert(&stored(
            "/registry/apps/replicasets/d/rs",
            r#"{"kind":"ReplicaSet","metadata":{"name":"rs","uid":"o1"}}"#,
        ));
        let pod = |name: &str, meta: &str| {
            stored(
                &format!("/registry/core/pods/d/{name}"),
                &format!(r#"{{"kind":"Pod","metadata":{{"name":"{name}",{meta}}}}}"#),
            )
        };
        let owned = |uid: &str| {
            format!(
                r#""ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"{uid}"}}]"#
            )
        };
        for (name, meta, look) in [
            (
                "known-owner",
                format!(r#""uid":"p1",{}"#, owned("o1")),
                false,
            ),
            ("gone-owner", format!(r#""uid":"p2",{}"#, owned("o9")), true),
            ("no-owner", r#""uid":"p3""#.to_string(), false),
            (
                "deleted",
                format!(r#""uid":"p4","deletionTimestamp":"t",{}"#, owned("o1")),
                true,
            ),
            (
                "deleted-alone",
                r#""uid":"p5","deletionTimestamp":"t""#.into(),
                true,
            ),
        ] {
            let kv = pod(name, &meta);
            g.upsert(&kv);
            assert_eq!(needs_look(&g.by_uid, &g.by_key[&kv.key]), look, "{name}");
        }
        // The owner goes: its dependents now need a look.
        g.remove("/registry/apps/replicasets/d/rs");
        assert!(needs_look(
            &g.by_uid,
            &g.by_key["/registry/core/pods/d/known-owner"]
        ));
    }

    /// Updates that leave owners, finalizers and deletion alone are skipped; one that changes
    /// them is taken.
    #[test]
    fn updates_of_other_fields_leave_the_graph_alone() {
        let mut g = Graph::default();
        let pod = |owner: &str, phase: &str, finalizers: serde_json::Value| {
            KeyValue {
            key: "/registry/core/pods/d/p".into(),
            value: serde_json::to_vec(&json!({"kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": "p", "uid": "p1", "finalizers": finalizers,
                    "ownerReferences": [{"uid": owner, "kind": "ReplicaSet", "apiVersion": "apps/v1", "name": "rs"}]},
                "status": {"phase": phase}}))
            .unwrap()
            .into(),
            create_revision: 2,
            mod_revision: 2,
        }
        };
        g.upsert(&pod("o1", "Pending", json!([])));
        assert!(g.dirty.contains("/registry/core/pods/d/p"));
        g.dirty.clear();
        g.upsert(&pod("o1", "Running", json!([])));
        assert!(g.dirty.is_empty(), "a status change is not the graph's");
        g.upsert(&pod("o2", "Running", json!([])));
        assert!(g.dependents["o2"].contains("/registry/core/pods/d/p"));
        assert!(!g.dependents.contains_key("o1"));
        g.upsert(&pod("o2", "Running", json!(["f"])));
        assert_eq!(g.by_key["/registry/core/pods/d/p"].finalizers, ["f"]);
    }

    fn stored(key: &str, text: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: text.as_bytes().to_vec().into(),
            create_revision: 1,
            mod_revision: 1,
        }
    }

    /// The prefix ends at the metadata's managedFields key, or with metadata when it has
    /// none, and not at all when the text is laid out otherwise.
    #[test]
    fn the_prefix_ends_where_the_walk_stopped() {
        let with_mf = br#"{"kind":"Pod","metadata":{"name":"p","uid":"u","generation":3,"managedFields":[{"manager":"m"}]},"spec":{}}"#;
        let w = graph_text(with_mf).unwrap();
        assert_eq!(
            &with_mf[..w.prefix.unwrap()],
            br#"{"kind":"Pod","metadata":{"name":"p","uid":"u","generation":3,"managedFields":"#
        );
        let without = br#"{"kind":"Pod","metadata":{"name":"p","uid":"u"},"spec":{}}"#;
        let w = graph_text(without).unwrap();
        assert_eq!(
            &without[..w.prefix.unwrap()],
            br#"{"kind":"Pod","metadata":{"name":"p","uid":"u"}"#
        );
        let spaced = br#"{"kind":"Pod","metadata":{"name":"p","uid":"u" }}"#;
        assert_eq!(graph_text(spaced).unwrap().prefix, None);
        let empty = br#"{"kind":"Pod","metadata":{}}"#;
        assert_eq!(graph_text(empty).unwrap().prefix, None);
    }

    /// A pod's binding and status writes keep the text before its managed fields: the graph is
    /// left as it was (no dirty key, same node). A label change rebuilds nothing either; a
    /// change of owners or finalizers is applied.
    #[test]
    fn unchanged_metadata_leaves_the_graph_as_it_was() {
        const KEY: &str = "/registry/core/pods/d/p";
        let pod = |labels: &str, owner: &str, finalizers: &str, rest: &str| {
            stored(
                KEY,
                &format!(
                    r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"p","namespace":"d","uid":"p1","creationTimestamp":"2026-01-01T00:00:00Z","labels":{{{labels}}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"{owner}","controller":true,"blockOwnerDeletion":true}}]{finalizers},"managedFields":[{{"manager":"m","operation":"Update"}}]}},{rest}}}"#
                ),
            )
        };
        let mut g = Graph::default();
        g.upsert(&stored(
            "/registry/apps/replicasets/d/rs",
            r#"{"kind":"ReplicaSet","metadata":{"name":"rs","uid":"o1"}}"#,
        ));
        let created = pod(r#""app":"web""#, "o1", "", r#""spec":{}"#);
        g.upsert(&created);
        assert!(g.dirty.contains(KEY), "a new dependent is looked at");
        assert!(g.dependents["o1"].contains(KEY));
        let prefix = g.by_key[KEY].prefix.clone().expect("canonical layout");
        assert!(created.value.starts_with(&prefix));
        g.dirty.clear();

        // Binding, then status: more managed fields, a node name, a status.
        for update in [
            r#""spec":{"nodeName":"n1"}"#,
            r#""spec":{"nodeName":"n1"},"status":{"phase":"Running"}"#,
        ] {
            let mut kv = pod(r#""app":"web""#, "o1", "", update);
            // The managed fields grow too; the prefix stops before them.
            let text = String::from_utf8(kv.value.to_vec()).unwrap().replace(
                r#"[{"manager":"m","operation":"Update"}]"#,
                r#"[{"manager":"m","operation":"Update"},{"manager":"k","subresource":"status"}]"#,
            );
            kv.value = text.into_bytes().into();
            assert!(kv.value.starts_with(&prefix), "the fast path applies");
            g.upsert(&kv);
            assert!(g.dirty.is_empty(), "{update} is not the graph's");
            let n = &g.by_key[KEY];
            assert_eq!(n.prefix.as_deref(), Some(&prefix[..]));
            assert_eq!((n.uid.as_str(), n.owners.len()), ("p1", 1));
            assert_eq!(g.dependents.len(), 1);
        }

        // A label change: a new prefix, the same graph, nothing to look at.
        let relabelled = pod(r#""app":"api""#, "o1", "", r#""spec":{}"#);
        g.upsert(&relabelled);
        assert!(g.dirty.is_empty(), "labels are not the graph's");
        let n = &g.by_key[KEY];
        assert!(relabelled.value.starts_with(n.prefix.as_deref().unwrap()));
        assert!(!created.value.starts_with(n.prefix.as_deref().unwrap()));

        // A new owner is applied: dependents move, the pod is looked at again.
        g.upsert(&pod(r#""app":"api""#, "o2", "", r#""spec":{}"#));
        assert!(g.dependents["o2"].contains(KEY));
        assert!(!g.dependents.contains_key("o1"));
        assert!(g.dirty.contains(KEY));
        assert_eq!(g.by_key[KEY].owners[0].uid, "o2");

        // So is a finalizer.
        g.upsert(&pod(
            r#""app":"api""#,
            "o2",
            r#","finalizers":["foregroundDeletion"]"#,
            r#""spec":{}"#,
        ));
        assert_eq!(g.by_key[KEY].finalizers, ["foregroundDeletion"]);
    }
}
