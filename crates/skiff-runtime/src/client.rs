//! Writes by control loops, through the API server's own storage path.
//!
//! Every write goes through the same admission as an HTTP request (defaulting, validation,
//! generation, managedFields under the client's field manager, the subresource rules), so a
//! controller can never store what `kubectl` could not. Only the HTTP and TLS layers are
//! skipped. Objects are k8s-openapi types; errors are the API's own [`ApiError`] (`Status`).

use std::sync::Arc;

use serde_json::Value;
use skiff_apiserver::objects::{CreateFrom, DeleteOptions, Deleted, UpdateMode};
use skiff_apiserver::ApiServer;
use skiff_core::meta::Fields as _;
use skiff_core::ApiError;

use crate::cache::{resource_of, Object};

/// What a create stored, for writers that need no typed copy of the object back (decoding a
/// pod costs about as much as encoding it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub name: String,
    pub uid: String,
    /// The revision of the write (the object's resourceVersion).
    pub revision: i64,
}

impl Created {
    fn of(v: &Value) -> Created {
        Created {
            name: skiff_core::meta::name(v).to_string(),
            uid: skiff_core::meta::uid(v).to_string(),
            revision: skiff_core::meta::resource_version(v).parse().unwrap_or(0),
        }
    }
}

/// An in-process API client writing as one field manager. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    api: Arc<ApiServer>,
    manager: &'static str,
}

fn to_value<K: Object>(obj: &K) -> Result<Value, ApiError> {
    serde_json::to_value(obj).map_err(|e| ApiError::internal(format!("encoding {}: {e}", K::KIND)))
}

/// Decodes a typed object straight from a borrowed `Value`, without copying it first.
fn from_ref<K: Object>(v: &Value) -> Result<K, ApiError> {
    K::deserialize(v).map_err(|e| ApiError::internal(format!("decoding {}: {e}", K::KIND)))
}

fn from_value<K: Object>(v: Value) -> Result<K, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::internal(format!("decoding {}: {e}", K::KIND)))
}

/// The namespace to address `K` in: the object's for namespaced kinds, none otherwise.
fn scope<K: Object>(ns: Option<&str>) -> Option<&str> {
    if resource_of::<K>().namespaced {
        ns
    } else {
        None
    }
}

/// The revision an object was written at (its resourceVersion).
pub fn revision_of<K: Object>(obj: &K) -> i64 {
    obj.metadata()
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

impl Client {
    pub fn new(api: Arc<ApiServer>, manager: &'static str) -> Client {
        Client { api, manager }
    }

    pub fn api(&self) -> &Arc<ApiServer> {
        &self.api
    }

    /// The field manager this client writes as.
    pub fn manager(&self) -> &'static str {
        self.manager
    }

    /// Reads an object from the store (not the cache).
    pub async fn get<K: Object>(&self, ns: Option<&str>, name: &str) -> Result<K, ApiError> {
        let res = resource_of::<K>();
        let (mut v, kv) = self.api.read(res, scope::<K>(ns), name).await?;
        skiff_apiserver::objects::set_revision(&mut v, kv.mod_revision);
        from_value(v)
    }

    /// Creates `obj` (in its metadata.namespace). The answer comes without managedFields, as
    /// informers hold objects.
    pub async fn create<K: Object>(&self, obj: &K) -> Result<K, ApiError> {
        let res = resource_of::<K>();
        let ns = obj.metadata().namespace.clone();
        let v = self
            .api
            .create_object_trimmed(
                res,
                scope::<K>(ns.as_deref()),
                to_value(obj)?,
                Some(self.manager),
            )
            .await?;
        from_value(v)
    }

    /// Creates `obj` like [`Self::create`], returning only its name, uid and revision: the
    /// cheap path for writers that create many objects (pods, events) and read them back
    /// from the cache, if at all.
    pub async fn create_summary<K: Object>(&self, obj: &K) -> Result<Created, ApiError> {
        let ns = obj.metadata().namespace.clone();
        self.create_value::<K>(ns.as_deref(), to_value(obj)?).await
    }

    /// Creates an object of kind `K` given as JSON (in `ns`, for namespaced kinds), returning
    /// its name, uid and revision: for writers that build the JSON once and create it many
    /// times.
    ///
    /// A pod is kept decoded by the server for its next write (the scheduler's binding reads
    /// it at once) instead of being answered and dropped here.
    ///
    /// A borrowed object is copied for the write (pass the same one for many creates); an
    /// owned one is written as it is.
    pub async fn create_value<K: Object>(
        &self,
        ns: Option<&str>,
        obj: impl Into<CreateFrom<'_>>,
    ) -> Result<Created, ApiError> {
        let res = resource_of::<K>();
        if K::KIND == "Pod" && K::GROUP.is_empty() {
            let c = self
                .api
                .create_object_summary(res, scope::<K>(ns), obj, Some(self.manager))
                .await?;
            return Ok(Created {
                name: c.name,
                uid: c.uid,
                revision: c.revision,
            });
        }
        let obj = obj.into().into_owned();
        let v = self
            .api
            .create_object_trimmed(res, scope::<K>(ns), obj, Some(self.manager))
            .await?;
        Ok(Created::of(&v))
    }

    /// Replaces `obj`; its resourceVersion (if set) must be current, else 409 Conflict.
    pub async fn update<K: Object>(&self, obj: &K) -> Result<K, ApiError> {
        self.put(obj, UpdateMode::Main).await
    }

    /// Replaces the status of `obj` (the status subresource); resourceVersion as for
    /// [`Self::update`].
    pub async fn update_status<K: Object>(&self, obj: &K) -> Result<K, ApiError> {
        self.put(obj, UpdateMode::Status).await
    }

    async fn put<K: Object>(&self, obj: &K, mode: UpdateMode) -> Result<K, ApiError> {
        let res = resource_of::<K>();
        let ns = obj.metadata().namespace.clone();
        let name = obj.metadata().name.clone().unwrap_or_default();
        let (v, _) = self
            .api
            .update_object(
                res,
                scope::<K>(ns.as_deref()),
                &name,
                to_value(obj)?,
                mode,
                false,
                Some(self.manager),
            )
            .await?;
        from_value(v)
    }

    /// Reads the newest object, lets `change` edit it, and writes it, retrying on conflicts
    /// (upstream's `RetryOnConflict` around get-modify-update). `change` returns false to
    /// write nothing. Returns the object as stored.
    pub async fn modify<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        change: impl FnMut(&mut K) -> bool,
    ) -> Result<K, ApiError> {
        self.modify_in(ns, name, UpdateMode::Main, change).await
    }

    /// [`Self::modify`] on the status subresource.
    pub async fn modify_status<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        change: impl FnMut(&mut K) -> bool,
    ) -> Result<K, ApiError> {
        self.modify_in(ns, name, UpdateMode::Status, change).await
    }

    async fn modify_in<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        mode: UpdateMode,
        mut change: impl FnMut(&mut K) -> bool,
    ) -> Result<K, ApiError> {
        let res = resource_of::<K>();
        let v = self
            .api
            .guaranteed_update_as(
                res,
                scope::<K>(ns),
                name,
                mode,
                false,
                Some(self.manager),
                |cur| {
                    let mut obj: K = from_ref(cur)?;
                    if !change(&mut obj) {
                        return Ok(cur.clone());
                    }
                    to_value(&obj)
                },
            )
            .await?;
        from_value(v)
    }

    /// A JSON merge patch (RFC 7386) of the main resource.
    pub async fn merge_patch<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<K, ApiError> {
        self.merge_patch_in::<K>(ns, name, patch, UpdateMode::Main)
            .await
    }

    /// A JSON merge patch of the status subresource.
    pub async fn merge_patch_status<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<K, ApiError> {
        self.merge_patch_in::<K>(ns, name, patch, UpdateMode::Status)
            .await
    }

    async fn merge_patch_in<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        mode: UpdateMode,
    ) -> Result<K, ApiError> {
        let res = resource_of::<K>();
        let v = self
            .api
            .guaranteed_update_as(
                res,
                scope::<K>(ns),
                name,
                mode,
                false,
                Some(self.manager),
                |cur| {
                    let mut next = cur.clone();
                    json_patch::merge(&mut next, patch);
                    Ok(next)
                },
            )
            .await?;
        from_value(v)
    }

    /// Replaces the status of `name` if it is still the object `uid`, as the kubelet's status
    /// patches do (they carry `metadata.uid` as a precondition). Unlike
    /// [`Self::modify_status`], the object is not decoded into a typed copy and back: the
    /// status is encoded straight into the request (again only if a conflict makes the write
    /// retry). The cheap path for writers that already know the status they want. Returns
    /// the revision written, or `None` when the object is gone or is another object of the
    /// same name.
    pub async fn replace_status<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        uid: &str,
        status: &(impl serde::Serialize + ?Sized),
    ) -> Result<Option<i64>, ApiError> {
        self.replace_status_with::<K>(ns, name, uid, || serde_json::to_value(status))
            .await
    }

    /// [`Self::replace_status`] with the status encoded by `encode` (called once per attempt),
    /// for writers with a quicker encoding than serde's for their status.
    pub async fn replace_status_with<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        uid: &str,
        mut encode: impl FnMut() -> serde_json::Result<Value>,
    ) -> Result<Option<i64>, ApiError> {
        let res = resource_of::<K>();
        let mut replaced = false;
        // The object written is not answered: the server keeps it for the informers.
        let written = self
            .api
            .guaranteed_update_revision(
                res,
                scope::<K>(ns),
                name,
                UpdateMode::Status,
                Some(self.manager),
                |cur| {
                    if skiff_core::meta::uid(cur) != uid {
                        replaced = true;
                        return Err(ApiError::conflict(
                            res,
                            name,
                            &format!(
                                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                                skiff_core::meta::uid(cur)
                            ),
                        ));
                    }
                    // Only the status of what is returned counts on the status subresource.
                    let mut meta = serde_json::Map::with_capacity(2);
                    meta.insert("name".into(), Value::String(name.to_string()));
                    if let Some(ns) = scope::<K>(ns) {
                        meta.insert("namespace".into(), Value::String(ns.to_string()));
                    }
                    let mut obj = serde_json::Map::with_capacity(4);
                    for k in ["apiVersion", "kind"] {
                        if let Some(v) = cur.field(k) {
                            obj.insert(k.into(), v.clone());
                        }
                    }
                    obj.insert("metadata".into(), Value::Object(meta));
                    let status = encode().map_err(|e| {
                        ApiError::internal(format!("encoding a {} status: {e}", K::KIND))
                    })?;
                    obj.insert("status".into(), status);
                    Ok(Value::Object(obj))
                },
            )
            .await;
        match written {
            Ok(rev) => Ok(Some(rev)),
            Err(_) if replaced => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes an object. `Ok(Some(obj))` when it is still there (finalizers or a grace
    /// period), `Ok(None)` when it is gone.
    pub async fn delete<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Option<K>, ApiError> {
        let res = resource_of::<K>();
        match self
            .api
            .delete_object(res, scope::<K>(ns), name, opts)
            .await?
        {
            Deleted::Now(_) => Ok(None),
            Deleted::Pending(v) => Ok(Some(from_value(v)?)),
        }
    }

    /// Deletes an object only if it still has `uid` (a precondition), in the background.
    pub async fn delete_uid<K: Object>(
        &self,
        ns: Option<&str>,
        name: &str,
        uid: &str,
    ) -> Result<Option<K>, ApiError> {
        let opts = DeleteOptions {
            precondition_uid: Some(uid.to_string()),
            propagation_policy: Some("Background".into()),
            ..Default::default()
        };
        self.delete::<K>(ns, name, &opts).await
    }

    /// Binds a pod to a node (pods/binding).
    pub async fn bind(&self, ns: &str, pod: &str, node: &str) -> Result<(), ApiError> {
        self.api.bind_pod(Some(ns), pod, node, false).await
    }

    /// Binds a pod to a node only if the pod is still the one with `uid` (409 otherwise), as
    /// kube-scheduler's bindings carry the pod's UID.
    pub async fn bind_uid(
        &self,
        ns: &str,
        pod: &str,
        uid: &str,
        node: &str,
    ) -> Result<(), ApiError> {
        self.api
            .bind_pod_uid(Some(ns), pod, Some(uid), node, false)
            .await
    }

    /// Evicts a pod (pods/eviction), honouring PodDisruptionBudgets (429 when one forbids).
    pub async fn evict(&self, ns: &str, pod: &str) -> Result<(), ApiError> {
        let res = resource_of::<k8s_openapi::api::core::v1::Pod>();
        self.api
            .evict(res, ns, pod, &serde_json::json!({}), false)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use skiff_apiserver::ApiOptions;
    use skiff_store::sqlite::{SqliteOptions, SqliteStore};

    async fn api() -> (tempfile::TempDir, Arc<ApiServer>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let api = ApiServer::new(store, ApiOptions::default());
        api.bootstrap().await.unwrap();
        (dir, api)
    }

    fn pod(name: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn create_summary_reports_what_was_stored() {
        let (_dir, api) = api().await;
        let client = Client::new(api, "kube-controller-manager");
        let mut p = pod("");
        p.metadata.name = None;
        p.metadata.generate_name = Some("web-".into());
        let made = client.create_summary(&p).await.unwrap();
        assert!(made.name.starts_with("web-") && made.name.len() > 4);
        let got = client
            .get::<Pod>(Some("default"), &made.name)
            .await
            .unwrap();
        assert_eq!(got.metadata.uid.as_deref(), Some(made.uid.as_str()));
        assert_eq!(revision_of(&got), made.revision);
        let body = serde_json::to_value(pod("again")).unwrap();
        let again = client
            .create_value::<Pod>(Some("default"), &body)
            .await
            .unwrap();
        assert_eq!(again.name, "again");
        assert!(again.revision > made.revision);
        // Errors are the API's: the same name again is a 409.
        let err = client
            .create_value::<Pod>(Some("default"), body)
            .await
            .unwrap_err();
        assert_eq!(err.code, 409);
    }

    #[tokio::test]
    async fn replace_status_writes_only_the_status_of_the_same_object() {
        let (_dir, api) = api().await;
        let client = Client::new(api, "kubelet");
        let created = client.create(&pod("p")).await.unwrap();
        let uid = created.metadata.uid.clone().unwrap();
        let status = serde_json::json!({"phase": "Running", "podIP": "10.42.0.9"});

        // Another uid (a pod deleted and made again under the name): nothing is written.
        assert_eq!(
            client
                .replace_status::<Pod>(Some("default"), "p", "other-uid", &status)
                .await
                .unwrap(),
            None
        );
        let same = client.get::<Pod>(Some("default"), "p").await.unwrap();
        assert_eq!(
            same.metadata.resource_version,
            created.metadata.resource_version
        );

        let rev = client
            .replace_status::<Pod>(Some("default"), "p", &uid, &status)
            .await
            .unwrap();
        let got = client.get::<Pod>(Some("default"), "p").await.unwrap();
        assert_eq!(rev, Some(revision_of(&got)), "the revision written");
        let st = got.status.clone().unwrap();
        assert_eq!(st.phase.as_deref(), Some("Running"));
        assert_eq!(st.pod_ip.as_deref(), Some("10.42.0.9"));
        // The spec and metadata are the stored ones; the write is recorded under the
        // client's manager for the status subresource.
        assert_eq!(got.spec, created.spec);
        assert_eq!(got.metadata.labels, created.metadata.labels);
        let entry = got
            .metadata
            .managed_fields
            .unwrap()
            .into_iter()
            .find(|e| {
                e.manager.as_deref() == Some("kubelet")
                    && e.subresource.as_deref() == Some("status")
            })
            .expect("a status entry for the kubelet");
        assert_eq!(entry.operation.as_deref(), Some("Update"));

        // A pod that is gone is no error.
        assert_eq!(
            client
                .replace_status::<Pod>(Some("default"), "missing", &uid, &status)
                .await
                .unwrap(),
            None
        );
        // A typed status is encoded the same way.
        let typed: k8s_openapi::api::core::v1::PodStatus =
            serde_json::from_value(serde_json::json!({"phase": "Succeeded"})).unwrap();
        assert!(client
            .replace_status::<Pod>(Some("default"), "p", &uid, &typed)
            .await
            .unwrap()
            .is_some());
        let got = client.get::<Pod>(Some("default"), "p").await.unwrap();
        assert_eq!(got.status.unwrap().phase.as_deref(), Some("Succeeded"));
    }
}
