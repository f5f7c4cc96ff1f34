//! Serving CustomResourceDefinitions, as upstream's apiextensions-apiserver controllers do:
//!
//! - **Naming and establishing**: every CRD's names are checked against the CRDs of its group
//!   created before it; accepted names go to `status.acceptedNames` with the `NamesAccepted`
//!   condition (`NoConflicts`, or `NameConflict` naming the clash), and an accepted CRD is
//!   served at once and marked `Established` (`InitialNamesAccepted`).
//! - **Serving**: [`CustomResources`] is the per-server catalog of served custom resources,
//!   swapped atomically on every CRD change (request routing, discovery and OpenAPI read it);
//!   the built-in registry is looked at first, so the common path does not touch it.
//! - **Cleanup**: deleting a CRD (which gets the `customresourcecleanup.apiextensions.k8s.io`
//!   finalizer, as upstream's CRD storage adds it) marks it `Terminating`
//!   (`InstanceDeletionInProgress`), refuses new objects, deletes every object of the resource,
//!   then drops the finalizer so the CRD goes and stops being served.
//!
//! Everything is driven by one watch of the CRD keys; the catalog is rebuilt from the store
//! before the server reports ready, so a restarted server serves its CRDs from the start.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde_json::{json, Value};
use skiff_core::crd::{self, CLEANUP_FINALIZER};
use skiff_core::registry::{self, Resource};
use skiff_core::{meta, ApiError};
use skiff_store::{EventKind, ListOptions, ReadAt};

use crate::fieldvalidation::{self, Directive, Finding};
use crate::objects::{DeleteOptions, UpdateMode};
use crate::server::ApiServer;

/// The store prefix of CRDs.
const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

/// The served custom resources at one moment.
#[derive(Default)]
pub struct Catalog {
    /// Every served version of every established CRD: CRDs by group then name, versions in
    /// priority order (the first of a CRD is its preferred version).
    pub resources: Vec<&'static Resource>,
    /// Names of CRDs being deleted: their objects can be read and deleted, not created.
    pub terminating: HashSet<String>,
    /// OpenAPI v3 documents of the custom group-versions, made on first request.
    pub(crate) openapi: std::sync::OnceLock<crate::openapi::CustomDocs>,
}

impl Catalog {
    /// The group-versions served, each with its resources, groups in order of first
    /// appearance and versions in priority order.
    pub fn group_versions(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for r in &self.resources {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, vs)) => {
                    if !vs.contains(&r.version) {
                        vs.push(r.version);
                    }
                }
                None => out.push((r.group, vec![r.version])),
            }
        }
        for (_, vs) in &mut out {
            vs.sort_by(|a, b| crd::compare_versions(a, b));
        }
        out
    }

    /// The resources of one group-version.
    pub fn resources_in<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'static Resource> + 'a {
        self.resources
            .iter()
            .copied()
            .filter(move |r| r.group == group && r.version == version)
    }
}

/// The per-server catalog of custom resources.
#[derive(Default)]
pub struct CustomResources {
    catalog: RwLock<Arc<Catalog>>,
}

impl CustomResources {
    /// The current catalog.
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.catalog.read().clone()
    }

    /// A custom resource by group, version and plural.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
        let c = self.catalog.read();
        c.resources
            .iter()
            .copied()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// A custom resource by apiVersion and kind.
    pub fn lookup_kind(&self, api_version: &str, kind: &str) -> Option<&'static Resource> {
        let (group, version) = registry::split_api_version(api_version);
        let c = self.catalog.read();
        c.resources
            .iter()
            .copied()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// A resource through which the objects stored under `/registry/<group>/<plural>/` are
    /// reached: the storage version's, or (when that version is not served) the
    /// highest-priority served one; every version shares the keys.
    pub fn by_storage(&self, group: &str, plural: &str) -> Option<&'static Resource> {
        let c = self.catalog.read();
        let mut versions = c
            .resources
            .iter()
            .copied()
            .filter(|r| r.group == group && r.plural == plural);
        let first = versions.clone().next()?;
        Some(
            versions
                .find(|r| r.custom.is_some_and(|i| i.storage_version == r.version))
                .unwrap_or(first),
        )
    }

    /// Whether the CRD of `res` is being deleted.
    pub fn is_terminating(&self, res: &Resource) -> bool {
        res.custom
            .is_some_and(|i| self.catalog.read().terminating.contains(&i.crd_name))
    }

    /// Stops serving the resources of CRD `name` (its objects are gone).
    fn forget(&self, name: &str) {
        let mut c = self.catalog.write();
        let resources: Vec<&'static Resource> = c
            .resources
            .iter()
            .copied()
            .filter(|r| r.custom.is_none_or(|i| i.crd_name != name))
            .collect();
        if resources.len() == c.resources.len() {
            return;
        }
        let mut terminating = c.terminating.clone();
        terminating.remove(name);
        *c = Arc::new(Catalog {
            resources,
            terminating,
            openapi: Default::default(),
        });
    }

    fn replace(&self, next: Catalog) -> bool {
        let mut c = self.catalog.write();
        if c.resources.len() == next.resources.len()
            && c.resources
                .iter()
                .zip(&next.resources)
                .all(|(a, b)| std::ptr::eq(*a, *b))
            && c.terminating == next.terminating
        {
            return false;
        }
        *c = Arc::new(next);
        true
    }
}

/// Which CRDs may be served: each CRD's names are checked against the CRDs of the same group
/// accepted before it (oldest first). Returns the conflict message of every CRD refused.
pub fn name_conflicts(crds: &[&Value]) -> HashMap<String, String> {
    let mut taken: HashMap<(String, String), String> = HashMap::new();
    let mut out = HashMap::new();
    for c in crds {
        let name = meta::name(c).to_string();
        let group = str_at(c, "/spec/group").to_string();
        let names = c.pointer("/spec/names").cloned().unwrap_or(json!({}));
        let plural = str_at(&names, "/plural").to_string();
        let singular = str_at(&names, "/singular").to_string();
        let kind = str_at(&names, "/kind").to_string();
        let list_kind = str_at(&names, "/listKind").to_string();
        let mut resource_names = vec![("plural", plural.clone()), ("singular", singular)];
        for s in names
            .get("shortNames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            resource_names.push(("shortName", s.to_string()));
        }
        let mut conflict = None;
        for (what, n) in &resource_names {
            if n.is_empty() {
                continue;
            }
            if let Some(owner) = taken.get(&(group.clone(), format!("r:{n}"))) {
                if *owner != name {
                    conflict = Some(format!("{what} {n:?} is already in use"));
                    break;
                }
            }
        }
        if conflict.is_none() {
            for (what, n) in [("kind", &kind), ("listKind", &list_kind)] {
                if let Some(owner) = taken.get(&(group.clone(), format!("k:{n}"))) {
                    if *owner != name && !n.is_empty() {
                        conflict = Some(format!("{what} {n:?} is already in use"));
                        break;
                    }
                }
            }
        }
        match conflict {
            Some(m) => {
                out.insert(name, m);
            }
            None => {
                for (_, n) in resource_names.iter().filter(|(_, n)| !n.is_empty()) {
                    taken.insert((group.clone(), format!("r:{n}")), name.clone());
                }
                for n in [&kind, &list_kind] {
                    taken.insert((group.clone(), format!("k:{n}")), name.clone());
                }
            }
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The status the controllers want for `crd` (`conflict`: why its names were refused), keeping
/// `lastTransitionTime` of conditions whose status does not change.
pub fn desired_status(crd: &Value, conflict: Option<&str>, now: &str) -> Value {
    let mut status = crd.get("status").cloned().unwrap_or(json!({}));
    if !status.is_object() {
        status = json!({});
    }
    let old_conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let cond = |type_: &str, st: &str, reason: &str, message: &str| {
        let keep = old_conditions.iter().find(|c| {
            c.get("type").and_then(Value::as_str) == Some(type_)
                && c.get("status").and_then(Value::as_str) == Some(st)
        });
        let t = keep
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now));
        json!({"type": type_, "status": st, "lastTransitionTime": t, "reason": reason, "message": message})
    };
    let mut conditions = Vec::new();
    match conflict {
        None => {
            let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
            status["acceptedNames"] = names;
            conditions.push(cond(
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
            ));
            conditions.push(cond(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ));
        }
        Some(m) => {
            if status.get("acceptedNames").is_none() {
                status["acceptedNames"] = json!({"kind": "", "plural": ""});
            }
            conditions.push(cond("NamesAccepted", "False", "NameConflict", m));
            conditions.push(cond(
                "Established",
                "False",
                "NotAccepted",
                "not all names are accepted",
            ));
        }
    }
    if meta::is_deleting(crd) {
        conditions.push(cond(
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        ));
    }
    status["conditions"] = Value::Array(conditions);
    if let Some(storage) = crd::storage_version(crd) {
        let stored = status
            .as_object_mut()
            .expect("object")
            .entry("storedVersions")
            .or_insert_with(|| json!([]));
        if !stored.is_array() {
            *stored = json!([]);
        }
        let a = stored.as_array_mut().expect("array");
        if !a.iter().any(|v| v == storage) {
            a.push(json!(storage));
        }
    }
    status
}

/// Whether the CRD's current names are the ones the server accepted.
fn names_accepted(crd: &Value) -> bool {
    let accepted = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("NamesAccepted")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        });
    accepted && crd.pointer("/status/acceptedNames") == crd.pointer("/spec/names")
}

/// Builds the catalog from the stored CRDs; returns the refused names.
fn catalog_of(crds: &BTreeMap<String, Value>) -> (Catalog, HashMap<String, String>) {
    // CRDs whose current names were already accepted keep them; then the oldest first
    // (creation times have second resolution, so a name breaks ties).
    let mut ordered: Vec<&Value> = crds.values().collect();
    ordered.sort_by(|a, b| {
        names_accepted(b)
            .cmp(&names_accepted(a))
            .then_with(|| {
                str_at(a, "/metadata/creationTimestamp")
                    .cmp(str_at(b, "/metadata/creationTimestamp"))
            })
            .then_with(|| meta::name(a).cmp(meta::name(b)))
    });
    let conflicts = name_conflicts(&ordered);
    let mut served: Vec<&Value> = ordered
        .into_iter()
        .filter(|c| !conflicts.contains_key(meta::name(c)))
        .collect();
    served.sort_by(|a, b| {
        str_at(a, "/spec/group")
            .cmp(str_at(b, "/spec/group"))
            .then_with(|| meta::name(a).cmp(meta::name(b)))
    });
    let mut catalog = Catalog::default();
    for c in served {
        for r in crd::intern(c) {
            catalog.resources.push(r);
        }
        if meta::is_deleting(c) {
            catalog.terminating.insert(meta::name(c).to_string());
        }
    }
    (catalog, conflicts)
}

impl ApiServer {
    /// Loads the stored CRDs into the catalog (before the server reports ready).
    pub(crate) async fn load_crds(&self) -> Result<i64, ApiError> {
        let page = self
            .store
            .list(ListOptions {
                prefix: CRD_PREFIX.into(),
                at: ReadAt::Latest,
                start_after: None,
                limit: 0,
            })
            .await
            .map_err(ApiError::internal)?;
        let mut crds = BTreeMap::new();
        for kv in &page.items {
            if let Ok(v) = serde_json::from_slice::<Value>(&kv.value) {
                crds.insert(kv.key.clone(), v);
            }
        }
        self.crds.replace(catalog_of(&crds).0);
        Ok(page.revision)
    }
}

/// Starts the CRD controllers.
pub(crate) fn start(srv: Arc<ApiServer>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run(srv.clone()).await {
                tracing::warn!(error = %e, "crd controller restarting");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

async fn run(srv: Arc<ApiServer>) -> Result<(), ApiError> {
    let page = srv
        .store
        .list(ListOptions {
            prefix: CRD_PREFIX.into(),
            at: ReadAt::Latest,
            start_after: None,
            limit: 0,
        })
        .await
        .map_err(ApiError::internal)?;
    let mut crds: BTreeMap<String, Value> = BTreeMap::new();
    for kv in &page.items {
        if let Ok(v) = serde_json::from_slice::<Value>(&kv.value) {
            crds.insert(kv.key.clone(), v);
        }
    }
    let mut watch = srv
        .store
        .watch(CRD_PREFIX, page.revision)
        .await
        .map_err(ApiError::internal)?;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let (catalog, conflicts) = catalog_of(&crds);
        let terminating = !catalog.terminating.is_empty();
        srv.crds.replace(catalog);
        for crd in crds.values() {
            if let Err(e) = reconcile(&srv, crd, conflicts.get(meta::name(crd))).await {
                tracing::debug!(crd = meta::name(crd), error = %e, "crd step failed; will retry");
            }
        }
        tokio::select! {
            batch = watch.next() => {
                let Some(batch) = batch else { return Ok(()) };
                for ev in batch.map_err(ApiError::internal)? {
                    match ev.kind {
                        EventKind::Put => {
                            if let Ok(v) = serde_json::from_slice::<Value>(&ev.kv.value) {
                                crds.insert(ev.kv.key.clone(), v);
                            }
                        }
                        EventKind::Delete => {
                            crds.remove(&ev.kv.key);
                        }
                    }
                }
            }
            _ = tick.tick(), if terminating => {}
        }
    }
}

/// One CRD's next step: its status, and the cleanup of a deleted one.
async fn reconcile(
    srv: &Arc<ApiServer>,
    crd_obj: &Value,
    conflict: Option<&String>,
) -> Result<(), ApiError> {
    let name = meta::name(crd_obj).to_string();
    let crd_res = registry::lookup(crd::GROUP, "v1", crd::PLURAL).expect("crd resource");
    let want = desired_status(crd_obj, conflict.map(String::as_str), &meta::now_rfc3339());
    if crd_obj.get("status") != Some(&want) {
        srv.guaranteed_update(crd_res, None, &name, UpdateMode::Status, false, |cur| {
            let mut next = cur.clone();
            next["status"] =
                desired_status(cur, conflict.map(String::as_str), &meta::now_rfc3339());
            Ok(next)
        })
        .await?;
    }
    let cleaning = meta::is_deleting(crd_obj)
        && meta::finalizers(crd_obj)
            .iter()
            .any(|f| f == CLEANUP_FINALIZER);
    if cleaning && delete_instances(srv, crd_obj).await? == 0 {
        // Stop serving before the CRD itself goes, so no client sees the CRD gone and its
        // resource still there.
        srv.crds.forget(&name);
        srv.guaranteed_update(crd_res, None, &name, UpdateMode::Internal, false, |cur| {
            let mut next = cur.clone();
            let f: Vec<String> = meta::finalizers(cur)
                .into_iter()
                .filter(|f| f != CLEANUP_FINALIZER)
                .collect();
            let m = meta::metadata_mut(&mut next);
            if f.is_empty() {
                m.remove("finalizers");
            } else {
                m.insert("finalizers".into(), json!(f));
            }
            Ok(next)
        })
        .await?;
    }
    Ok(())
}

/// Deletes the objects of a deleted CRD; returns how many are left.
async fn delete_instances(srv: &ApiServer, crd_obj: &Value) -> Result<usize, ApiError> {
    let group = str_at(crd_obj, "/spec/group");
    let plural = str_at(crd_obj, "/spec/names/plural");
    let prefix = format!("/registry/{group}/{plural}/");
    let page = srv
        .store
        .list(ListOptions {
            prefix,
            at: ReadAt::Latest,
            start_after: None,
            limit: 0,
        })
        .await
        .map_err(ApiError::internal)?;
    if page.items.is_empty() {
        return Ok(0);
    }
    let Some(res) = srv.crds.by_storage(group, plural) else {
        // Not served (its names were refused): nothing can reach the objects but this.
        for kv in &page.items {
            let _ = srv.store.delete(&kv.key, None).await;
        }
        return Ok(0);
    };
    let mut left = 0;
    for kv in &page.items {
        let Ok(v) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        let ns = meta::namespace(&v);
        let ns = (res.namespaced && !ns.is_empty()).then_some(ns);
        let opts = DeleteOptions {
            propagation_policy: Some("Background".into()),
            ..Default::default()
        };
        match srv.delete_object(res, ns, meta::name(&v), &opts).await {
            Ok(crate::objects::Deleted::Now(_)) => {}
            Ok(crate::objects::Deleted::Pending(_)) => left += 1,
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(left)
}

/// Field validation of a custom object's create or update body: the fields its schema does
/// not know, reported under the request's `fieldValidation` (`Strict`: 400 `CronTab in version
/// "v1" cannot be handled as a CronTab: strict decoding error: unknown field "spec.foo"`).
/// Pruning itself happens on every write.
pub(crate) fn check_unknown_body(
    res: &Resource,
    obj: &Value,
    directive: Directive,
) -> Result<(), ApiError> {
    if res.custom.is_none() {
        return Ok(());
    }
    let findings = unknown_findings(res, obj);
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .unwrap_or(res.kind);
    let version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(|av| av.rsplit('/').next().unwrap_or(av))
        .filter(|v| !v.is_empty())
        .unwrap_or(res.version);
    fieldvalidation::report(directive, &findings, |m| {
        fieldvalidation::body_error(kind, version, res.kind, m)
    })
}

/// Field validation of a patched custom object (422 on `patch` under `Strict`).
pub(crate) fn check_unknown_patched(
    res: &Resource,
    obj: &Value,
    directive: Directive,
) -> Result<(), ApiError> {
    let findings = unknown_findings(res, obj);
    fieldvalidation::report(directive, &findings, |m| {
        fieldvalidation::patch_error(&obj.to_string(), m)
    })
}

/// A server-side apply configuration of a custom object may only name fields its schema
/// declares: structured-merge-diff refuses the rest in every fieldValidation mode, with a 500
/// that has no reason, as upstream answers (kubernetes/kubernetes#139253).
pub(crate) fn check_unknown_apply(res: &Resource, config: &Value) -> Result<(), ApiError> {
    let Some(info) = res.custom.filter(|i| i.schema.is_object()) else {
        return Ok(());
    };
    let found = skiff_core::schema::unknown_fields(&info.schema, config);
    if found.is_empty() {
        return Ok(());
    }
    let errs: Vec<String> = found
        .iter()
        .map(|p| format!(".{p}: field not declared in schema"))
        .collect();
    let detail = if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("errors:\n  {}", errs.join("\n  "))
    };
    Err(ApiError::new(
        500,
        "",
        format!(
            "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {detail}",
            str_at(config, "/metadata/namespace"),
            str_at(config, "/metadata/name"),
            res.group,
            res.version,
            res.kind
        ),
    ))
}

fn unknown_findings(res: &Resource, obj: &Value) -> Vec<Finding> {
    match res.custom {
        Some(info) if info.schema.is_object() => {
            skiff_core::schema::unknown_fields(&info.schema, obj)
                .into_iter()
                .map(Finding::Unknown)
                .collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, plural: &str, kind: &str, short: &[&str], created: &str) -> Value {
        let group = name.split_once('.').unwrap().1;
        json!({"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List"), "shortNames": short},
                "versions": [{"name": "v1", "served": true, "storage": true}]}})
    }

    #[test]
    fn older_crds_keep_their_names() {
        let a = crd("foos.x.io", "foos", "Foo", &["fo"], "2024-01-01T00:00:00Z");
        let b = crd("bars.x.io", "bars", "Bar", &["fo"], "2024-01-02T00:00:00Z");
        let mut c = crd("bazs.x.io", "bazs", "Foo", &[], "2024-01-03T00:00:00Z");
        c["spec"]["names"]["singular"] = json!("baz");
        let d = crd("foos.y.io", "foos", "Foo", &["fo"], "2024-01-04T00:00:00Z");
        let out = name_conflicts(&[&a, &b, &c, &d]);
        assert_eq!(
            out.get("bars.x.io").unwrap(),
            "shortName \"fo\" is already in use"
        );
        assert_eq!(
            out.get("bazs.x.io").unwrap(),
            "kind \"Foo\" is already in use"
        );
        assert!(!out.contains_key("foos.x.io"));
        assert!(!out.contains_key("foos.y.io"), "other groups do not clash");
    }

    #[test]
    fn accepted_names_win_over_an_alphabetically_earlier_newcomer() {
        let mut z = crd("zs.x.io", "zs", "Foo", &[], "2024-01-01T00:00:00Z");
        z["status"] = desired_status(&z, None, "2024-01-01T00:00:00Z");
        let a = crd("as.x.io", "as", "Foo", &[], "2024-01-01T00:00:00Z");
        let mut crds = BTreeMap::new();
        crds.insert("a".to_string(), a);
        crds.insert("z".to_string(), z);
        let (catalog, conflicts) = catalog_of(&crds);
        assert!(conflicts.contains_key("as.x.io"));
        assert_eq!(catalog.resources.len(), 1);
        assert_eq!(catalog.resources[0].plural, "zs");
    }

    #[test]
    fn status_conditions() {
        let mut c = crd("foos.x.io", "foos", "Foo", &[], "2024-01-01T00:00:00Z");
        let s = desired_status(&c, None, "2024-01-01T00:00:01Z");
        assert_eq!(s["acceptedNames"]["kind"], "Foo");
        assert_eq!(s["storedVersions"], json!(["v1"]));
        let types: Vec<(&str, &str)> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            types,
            vec![("NamesAccepted", "True"), ("Established", "True")]
        );
        c["status"] = s.clone();
        // Stable: the same status again, times kept.
        assert_eq!(desired_status(&c, None, "2030-01-01T00:00:00Z"), s);
        c["metadata"]["deletionTimestamp"] = json!("2024-01-02T00:00:00Z");
        let s = desired_status(&c, None, "2024-01-02T00:00:00Z");
        assert_eq!(s["conditions"][2]["reason"], "InstanceDeletionInProgress");
        let s = desired_status(&c, Some("plural \"foos\" is already in use"), "t");
        assert_eq!(s["conditions"][0]["reason"], "NameConflict");
        assert_eq!(s["conditions"][1]["status"], "False");
    }
}
