//! The generic storage path every built-in kind goes through: create, get, update (PUT and the
//! status, scale and finalize subresources), guaranteed updates for patches, and delete with
//! grace periods, preconditions, propagation policies and finalizers — upstream's generic
//! registry store and the per-kind strategies' `PrepareForCreate`/`PrepareForUpdate`.

use bytes::Bytes;
use serde_json::{json, Map, Value};
use skiff_core::managed::{self, Scope};
use skiff_core::meta::Fields as _;
use skiff_core::registry::{self, Resource};
use skiff_core::ring::{same_json, Ring};
use skiff_core::{defaults, meta, validation, ApiError, FieldError};
use skiff_store::{KeyValue, ReadAt, StoreError};

use crate::recent::{Keep, Parts, Readers};
use crate::server::ApiServer;

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// The main resource: everything but status (for kinds with a status subresource).
    Main,
    /// The status subresource: only status.
    Status,
    /// `namespaces/NAME/finalize`: only `spec.finalizers`.
    Finalize,
    /// Internal writes by the server itself (lifecycle controllers): metadata and status as
    /// given.
    Internal,
}

/// Delete options, from the body (`DeleteOptions`) or the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn from_value(v: &Value) -> Result<DeleteOptions, ApiError> {
        let mut o = DeleteOptions::default();
        if v.is_null() {
            return Ok(o);
        }
        if let Some(kind) = v.field("kind").and_then(Value::as_str) {
            if kind != "DeleteOptions" {
                return Err(ApiError::bad_request(format!(
                    "expected DeleteOptions, got {kind}"
                )));
            }
        }
        o.grace_period_seconds = v.field("gracePeriodSeconds").and_then(Value::as_i64);
        o.propagation_policy = v
            .field("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        if o.propagation_policy.is_none() {
            match v.field("orphanDependents").and_then(Value::as_bool) {
                Some(true) => o.propagation_policy = Some("Orphan".into()),
                Some(false) => o.propagation_policy = Some("Background".into()),
                None => {}
            }
        }
        if let Some(p) = v.field("preconditions") {
            o.precondition_uid = p.field("uid").and_then(Value::as_str).map(str::to_string);
            o.precondition_rv = p
                .field("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        o.dry_run = v
            .field("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        Ok(o)
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(p) = &self.propagation_policy {
            if !["Orphan", "Background", "Foreground"].contains(&p.as_str()) {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!("DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""),
                ));
            }
        }
        if let Some(g) = self.grace_period_seconds {
            if g < 0 {
                return Err(ApiError::bad_request(
                    "gracePeriodSeconds must not be negative",
                ));
            }
        }
        Ok(())
    }
}

/// A created object as stored.
pub struct Created {
    /// The object in its stored form, without resourceVersion (and without managedFields
    /// when `managed_fields` holds them).
    pub object: Value,
    /// Its stored bytes.
    pub bytes: Bytes,
    /// Its revision; `None` for a dry run.
    pub revision: Option<i64>,
    /// The JSON text of the managedFields the stored bytes carry and `object` does not: a
    /// create's entry is written straight into the bytes, and only made a `Value` for a
    /// caller that asks for the object.
    pub managed_fields: Option<Vec<u8>>,
}

impl Created {
    /// The object as `res` serves it, with its resourceVersion set (none for a dry run).
    pub fn into_external(self, res: &Resource) -> Value {
        let mut out = self.object;
        if let Some(text) = &self.managed_fields {
            let mf = serde_json::from_slice(text).expect("managedFields written by this server");
            meta::metadata_mut(&mut out).insert("managedFields".into(), mf);
        }
        if let Some(rev) = self.revision {
            set_revision(&mut out, rev);
        }
        to_external(res, out)
    }
}

/// The result of a delete.
pub enum Deleted {
    /// Gone now; the last state.
    Now(Value),
    /// Still there with deletionTimestamp set (finalizers or a grace period).
    Pending(Value),
}

/// The object a create starts from: owned, or borrowed from a writer that creates many alike
/// (a controller's pods from one template). Each attempt needs an object of its own, as
/// preparing it changes it; a borrowed one is copied for the first attempt and again for each
/// retry of a generated name that collided, an owned one is used as it is and copied up front
/// only when its name is generated (for a retry).
pub enum CreateFrom<'a> {
    Owned(Value),
    Borrowed(&'a Value),
}

impl CreateFrom<'_> {
    fn as_value(&self) -> &Value {
        match self {
            CreateFrom::Owned(v) => v,
            CreateFrom::Borrowed(v) => v,
        }
    }

    /// The object itself, copied if borrowed.
    pub fn into_owned(self) -> Value {
        match self {
            CreateFrom::Owned(v) => v,
            CreateFrom::Borrowed(v) => v.clone(),
        }
    }
}

impl From<Value> for CreateFrom<'_> {
    fn from(v: Value) -> Self {
        CreateFrom::Owned(v)
    }
}

impl<'a> From<&'a Value> for CreateFrom<'a> {
    fn from(v: &'a Value) -> Self {
        CreateFrom::Borrowed(v)
    }
}

/// How many times a create with `generateName` tries another name after a collision
/// (upstream's RetryGenerateName tries 7 more).
const GENERATE_NAME_RETRIES: usize = 7;

/// The storage resource behind `res` (core events for events.k8s.io events).
pub fn storage_resource(res: &'static Resource) -> &'static Resource {
    if res.group == "events.k8s.io" && res.plural == "events" {
        registry::lookup("", "v1", "events").expect("core events")
    } else {
        res
    }
}

/// Converts a stored object to the form `res` serves.
pub fn to_external(res: &Resource, v: Value) -> Value {
    if let Some(info) = res.custom {
        return skiff_core::crd::to_served(res, info, v);
    }
    if res.group == "events.k8s.io" && res.plural == "events" {
        skiff_core::events::core_to_events_v1(&v)
    } else {
        v
    }
}

/// Whether `res` is served in another form than it is stored in ([`to_external`] and
/// [`to_internal`] change the object).
fn is_converted(res: &Resource) -> bool {
    res.custom.is_some() || (res.group == "events.k8s.io" && res.plural == "events")
}

/// Converts an object in the form `res` serves to its stored form.
pub fn to_internal(res: &Resource, v: Value) -> Value {
    if let Some(info) = res.custom {
        return skiff_core::crd::to_storage(res, info, v);
    }
    if res.group == "events.k8s.io" && res.plural == "events" {
        skiff_core::events::events_v1_to_core(&v)
    } else {
        v
    }
}

/// Sets an object's `metadata.resourceVersion` (keeping canonical key order).
pub fn set_revision(obj: &mut Value, rev: i64) {
    if obj.is_object() {
        meta::set_resource_version(obj, rev.to_string());
    }
}

/// Parses a stored value and sets its resourceVersion.
pub fn decode_kv(kv: &KeyValue) -> Result<Value, ApiError> {
    // The resourceVersion goes into the (canonical) bytes before parsing, in its place:
    // cheaper than inserting it into the parsed object and reordering its metadata.
    let bytes = meta::inject_resource_version(&kv.value, kv.mod_revision);
    let mut v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
    if v.at("metadata").field("resourceVersion").is_none() {
        set_revision(&mut v, kv.mod_revision);
    }
    Ok(v)
}

pub fn store_error(res: &Resource, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::AlreadyExists(_) => ApiError::already_exists(res, name),
        StoreError::NotFound(_) => ApiError::not_found(res, name),
        StoreError::Conflict { .. } => ApiError::stale(res, name),
        StoreError::Compacted {
            requested,
            compacted,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StoreError::FutureRevision { requested, current } => {
            let mut e = ApiError::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            ));
            e.details.causes.push(skiff_core::status::Cause {
                reason: "ResourceVersionTooLarge".into(),
                message: "Too large resource version".into(),
                field: String::new(),
            });
            e.details.retry_after_seconds = Some(1);
            e
        }
        StoreError::TooLarge { .. } => ApiError::too_large(e.to_string()),
        other => ApiError::internal(other),
    }
}

fn serialize(v: &Value) -> Bytes {
    // Stored objects carry no resourceVersion: it is the store's mod revision.
    Bytes::from(meta::to_stored_json(v))
}

fn parse_rv(rv: &str) -> Option<i64> {
    rv.parse().ok()
}

const GENERATE_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_suffix() -> String {
    let u = uuid::Uuid::new_v4();
    u.as_bytes()[..5]
        .iter()
        .map(|b| GENERATE_CHARS[*b as usize % GENERATE_CHARS.len()] as char)
        .collect()
}

/// Kinds whose DELETE answers with the object rather than a Status (upstream's
/// `ReturnDeletedObject`).
pub fn returns_deleted_object(res: &Resource) -> bool {
    res.group.is_empty()
        && matches!(
            res.plural,
            "pods"
                | "services"
                | "persistentvolumes"
                | "persistentvolumeclaims"
                | "resourcequotas"
                | "serviceaccounts"
        )
        || (res.group == "storage.k8s.io" && res.plural == "storageclasses")
}

/// Kinds whose PUT creates a missing object (upstream's `AllowCreateOnUpdate`).
pub fn allow_create_on_update(res: &Resource) -> bool {
    matches!(
        res.plural,
        "endpoints"
            | "events"
            | "leases"
            | "limitranges"
            | "roles"
            | "rolebindings"
            | "clusterroles"
            | "clusterrolebindings"
            | "endpointslices"
    )
}

/// The spec-like part of an object: everything but metadata, status, kind and apiVersion.
/// Whether two objects differ outside metadata, status, kind and apiVersion (what counts as
/// a spec change for `metadata.generation`), compared in place.
fn spec_differs(a: &Value, b: &Value) -> bool {
    fn rest(v: &Value) -> Vec<(&String, &Value)> {
        let mut parts: Vec<(&String, &Value)> = v
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "kind" | "apiVersion"))
            .collect();
        parts.sort_unstable_by(|x, y| x.0.cmp(y.0));
        parts
    }
    rest(a) != rest(b)
}

/// The status an object starts with, as upstream's `PrepareForCreate` resets it.
fn initial_status(res: &Resource, obj: &Value) -> Option<Value> {
    // Custom objects with a status subresource start without one.
    if !res.traits.status || res.custom.is_some() {
        return None;
    }
    Some(match (res.group, res.kind) {
        ("", "Node") => return obj.field("status").cloned(),
        // Its qosClass is defaulted next, from the requests and limits after defaulting.
        ("", "Pod") => json!({"phase": "Pending"}),
        ("", "Namespace") => json!({"phase": "Active"}),
        ("", "PersistentVolume") | ("", "PersistentVolumeClaim") => json!({"phase": "Pending"}),
        ("", "Service") | ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
        // Status fields without `omitempty` upstream are written as zero from the start; typed
        // clients treat them as required.
        ("", "ReplicationController") | ("apps", "ReplicaSet") => json!({"replicas": 0}),
        ("apps", "StatefulSet") => json!({"replicas": 0, "availableReplicas": 0}),
        ("apps", "DaemonSet") => json!({
            "currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0
        }),
        ("policy", "PodDisruptionBudget") => json!({
            "disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0
        }),
        _ => json!({}),
    })
}

/// The fields a write of `mode` to `sres` may own (upstream's reset fields: status belongs to
/// the status subresource).
pub fn managed_scope(sres: &Resource, mode: UpdateMode) -> Scope {
    match mode {
        UpdateMode::Status => Scope::Status,
        _ if sres.traits.status => Scope::Main,
        _ => Scope::All,
    }
}

/// The managedFields identity of a write by `manager` to `served` in `mode`.
fn field_manager<'a>(manager: &'a str, served: &'a str, mode: UpdateMode) -> managed::Manager<'a> {
    managed::Manager {
        name: manager,
        api_version: served,
        subresource: if mode == UpdateMode::Status {
            "status"
        } else {
            ""
        },
    }
}

impl ApiServer {
    /// Reads one object as stored (with resourceVersion set).
    pub async fn read(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(Value, KeyValue), ApiError> {
        let (mut obj, kv, managed_fields) = self.read_parts(res, namespace, name).await?;
        if let Some(text) = managed_fields {
            if crate::recent::with_managed_fields(&mut obj, &text).is_none() {
                return Ok((decode_kv(&kv)?, kv));
            }
        }
        Ok((obj, kv))
    }

    /// [`Self::read`] leaving the managedFields of an object kept with them as text apart
    /// (the object without them, and the text; see [`Recent::take_parts`]).
    async fn read_parts(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(Value, KeyValue, Option<Box<[u8]>>), ApiError> {
        let sres = storage_resource(res);
        let key = sres.key(namespace, name);
        let (kv, _) = self
            .store
            .get(&key, ReadAt::Latest)
            .await
            .map_err(|e| store_error(res, name, e))?;
        let kv = kv.ok_or_else(|| ApiError::not_found(res, name))?;
        if let Some((obj, text)) = self.recent.take_parts(&key, &kv) {
            return Ok((obj, kv, text));
        }
        Ok((decode_kv(&kv)?, kv, None))
    }

    /// Checks that `namespace` exists and is not terminating.
    pub async fn check_namespace(
        &self,
        res: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let ns_res = registry::lookup("", "v1", "namespaces").expect("namespaces");
        let key = ns_res.key(None, namespace);
        let (kv, _) = self
            .store
            .get(&key, ReadAt::Latest)
            .await
            .map_err(|e| store_error(ns_res, namespace, e))?;
        let Some(kv) = kv else {
            return Err(ApiError::not_found(ns_res, namespace));
        };
        let known = self.namespace_states.lock().get(namespace).copied();
        let terminating = match known {
            Some((rev, terminating)) if rev == kv.mod_revision => terminating,
            _ => {
                let terminating = namespace_terminating(namespace, &kv.value)?;
                let mut states = self.namespace_states.lock();
                if states.len() > 10_000 {
                    states.clear();
                }
                states.insert(namespace.to_string(), (kv.mod_revision, terminating));
                terminating
            }
        };
        if terminating {
            let mut e = ApiError::forbidden(
                res,
                name,
                &format!("unable to create new content in namespace {namespace} because it is being terminated"),
            );
            e.details.causes.push(skiff_core::status::Cause {
                reason: "NamespaceTerminating".into(),
                message: format!("namespace {namespace} is being terminated"),
                field: "metadata.namespace".into(),
            });
            return Err(e);
        }
        Ok(())
    }

    /// Creates an object of `res` (in external form) in `namespace`.
    pub async fn create_object(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.create_object_as(res, namespace, obj, dry_run, None)
            .await
    }

    /// Creates an object as [`Self::create_object`], recording an `Update` managedFields entry
    /// for `manager`.
    pub async fn create_object_as(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        obj: Value,
        dry_run: bool,
        manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        let created = self
            .create_stored(res, namespace, obj, dry_run, manager, Keep::No)
            .await?;
        Ok(created.into_external(res))
    }

    /// [`Self::create_object_as`] for in-process clients, which see objects as their informers
    /// do: the object is answered without its managedFields (they are stored as usual), so a
    /// create's entry is never decoded only to be dropped by the caller.
    pub async fn create_object_trimmed(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        obj: Value,
        manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut created = self
            .create_stored(res, namespace, obj, false, manager, Keep::No)
            .await?;
        if created.managed_fields.take().is_none() {
            if let Some(m) = created
                .object
                .field_mut("metadata")
                .and_then(Value::as_object_mut)
            {
                m.shift_remove("managedFields");
            }
        }
        Ok(created.into_external(res))
    }

    /// Creates an object and returns it as stored: the object (internal form, without
    /// resourceVersion), its stored bytes and its revision (`None` for a dry run). With a
    /// `manager`, an `Update` managedFields entry owning every field is recorded. An object
    /// `keep` selects goes to the kept objects before it is written (for the next write of it,
    /// which may come before this create's task runs again), and only its name and uid are
    /// returned in its place.
    pub(crate) async fn create_stored(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        obj: impl Into<CreateFrom<'_>>,
        dry_run: bool,
        manager: Option<&str>,
        keep: Keep,
    ) -> Result<Created, ApiError> {
        let from = obj.into();
        let _alloc = if is_service(res) {
            Some(self.service_alloc.lock().await)
        } else {
            None
        };
        if self.crds.is_terminating(res) {
            return Err(ApiError::method_not_allowed(
                "create not allowed while custom resource definition is terminating",
            ));
        }
        // A generated name that collides is generated again, as upstream does since 1.30
        // (RetryGenerateName): the client asked for any free name, not this one.
        let source = from.as_value();
        let generated = meta::name(source).is_empty()
            && source
                .at("metadata")
                .field("generateName")
                .and_then(Value::as_str)
                .is_some_and(|g| !g.is_empty());
        // What a retry starts from: the borrowed object, or a copy of the owned one (made only
        // when its name is generated).
        let mut retry = match &from {
            CreateFrom::Borrowed(v) => generated.then_some(CreateFrom::Borrowed(v)),
            CreateFrom::Owned(v) => generated.then(|| CreateFrom::Owned(v.clone())),
        };
        let mut attempts = 0;
        let (mut object, mut bytes, mut managed_fields) = self
            .prepare_create(res, namespace, from.into_owned(), manager)
            .await?;
        let sres = storage_resource(res);
        let mut name = meta::name(&object).to_string();
        let mut key = sres.key(namespace, &name);
        if dry_run {
            if self
                .store
                .get(&key, ReadAt::Latest)
                .await
                .map_err(|e| store_error(res, &name, e))?
                .0
                .is_some()
            {
                return Err(ApiError::already_exists(res, &name));
            }
            return Ok(Created {
                object,
                bytes,
                revision: None,
                managed_fields,
            });
        }
        let rev = loop {
            if self.keeps_created(res, keep, &object) {
                self.keep_created(&key, &bytes, &mut object, managed_fields.take());
            }
            match self.store.create(&key, bytes.clone()).await {
                Ok(rev) => break rev,
                Err(StoreError::AlreadyExists(_)) if attempts < GENERATE_NAME_RETRIES => {
                    let Some(original) = retry.take() else {
                        return Err(ApiError::already_exists(res, &name));
                    };
                    attempts += 1;
                    let again = original.as_value().clone();
                    retry = Some(original);
                    (object, bytes, managed_fields) =
                        self.prepare_create(res, namespace, again, manager).await?;
                    name = meta::name(&object).to_string();
                    key = sres.key(namespace, &name);
                }
                Err(e) => return Err(store_error(res, &name, e)),
            }
        };
        self.metrics.object_written(res.plural);
        Ok(Created {
            object,
            bytes,
            revision: Some(rev),
            managed_fields,
        })
    }

    async fn prepare_create(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        obj: Value,
        manager: Option<&str>,
    ) -> Result<(Value, Bytes, Option<Vec<u8>>), ApiError> {
        let sres = storage_resource(res);
        let mut obj = check_kind(res, obj)?;
        let m = meta::metadata_mut(&mut obj);
        // Namespace from the URL; the body may repeat it but not contradict it.
        if res.namespaced {
            let ns = namespace.unwrap_or_default();
            match m.field("namespace").and_then(Value::as_str) {
                Some(b) if !b.is_empty() && b != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {}
            }
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        if m.field("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = m
            .field("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let generate = m
            .field("generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = if name.is_empty() && !generate.is_empty() {
            let n = format!("{generate}{}", generate_suffix());
            m.insert("name".into(), json!(n));
            n
        } else {
            name
        };
        m.insert("uid".into(), json!(meta::new_uid()));
        m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("selfLink");
        if res.traits.generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        for k in ["labels", "annotations"] {
            if m.get(k).is_some_and(Value::is_null) {
                m.remove(k);
            }
        }
        if res.namespaced {
            self.check_namespace(res, namespace.unwrap_or_default(), &name)
                .await?;
        }
        let mut obj = to_internal(res, obj);
        if sres.traits.status {
            match initial_status(sres, &obj) {
                Some(s) => {
                    obj.as_object_mut()
                        .expect("object")
                        .insert("status".into(), s);
                }
                None => {
                    obj.as_object_mut().expect("object").remove("status");
                }
            }
        }
        if sres.group.is_empty() && sres.kind == "Namespace" {
            // The namespace strategy, not defaulting: every namespace waits for its content.
            let o = obj.as_object_mut().expect("object");
            let spec = o.entry("spec").or_insert_with(|| json!({}));
            if !spec.is_object() {
                *spec = json!({});
            }
            spec["finalizers"] = json!(["kubernetes"]);
        }
        if sres.group.is_empty() && sres.kind == "Pod" {
            crate::priority::admit_pod(self, res, &mut obj).await?;
        }
        defaults::apply(sres, &mut obj);
        if is_service(sres) {
            self.allocate_service(sres, &mut obj, None).await?;
        }
        let errors = validation::validate_create(sres, &obj);
        if !errors.is_empty() {
            return Err(ApiError::invalid(res, &name, &errors));
        }
        let mut spliced = None;
        if let Some(manager) = manager {
            let av = res.api_version();
            let m = field_manager(manager, &av, UpdateMode::Main);
            let scope = managed_scope(sres, UpdateMode::Main);
            let now = meta::now_rfc3339();
            if managed::requested(&obj) == managed::Requested::Keep {
                // The common case: the entry goes straight into the stored text.
                meta::canonicalize(&mut obj);
                let mut text = Vec::with_capacity(1024);
                managed::created_json(sres, &obj, scope, &m, &now, &mut text);
                match meta::to_vec_with_managed_fields(&obj, &text) {
                    Some(bytes) => spliced = Some((bytes, text)),
                    None => {
                        let mf = serde_json::from_slice(&text).expect("managedFields text");
                        meta::metadata_mut(&mut obj).insert("managedFields".into(), mf);
                    }
                }
            } else {
                managed::record_update(sres, &Value::Null, &mut obj, scope, Some(&m), &now)?;
            }
        }
        if let Some((bytes, text)) = spliced {
            return Ok((obj, Bytes::from(bytes), Some(text)));
        }
        meta::canonicalize(&mut obj);
        // A new object carries no resourceVersion, so it is stored as it is.
        let bytes = Bytes::from(meta::to_stored_json(&obj));
        Ok((obj, bytes, None))
    }

    /// Reads, changes and writes an object until the write wins the race. `change` gets the
    /// current object and returns the desired one (or an error, which ends the loop). Returns
    /// the stored result (external form) and whether anything changed.
    pub async fn guaranteed_update<F>(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        mode: UpdateMode,
        dry_run: bool,
        change: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        self.guaranteed_update_as(res, namespace, name, mode, dry_run, None, change)
            .await
    }

    /// A write of the server's own ([`UpdateMode::Internal`], no field manager) that edits
    /// the newest object in place, without the copy [`Self::guaranteed_update`] makes for
    /// comparing old and new: for kinds served as stored and without a generation, where an
    /// internal write needs no such comparison (the binding the scheduler writes for every
    /// pod). `edit` may run more than once, on conflicts. The stored object was defaulted when
    /// it was written, so it is not defaulted again: `edit` must set only fields that have no
    /// defaults of their own (or set them whole), as the binding's node name and condition.
    /// `edit` returns the top-level members it changed and how ([`Edit`]): the stored text of
    /// the result is the old text with only those written again. The object written goes to
    /// the kept objects (before the write, see [`Recent`](crate::recent)) for the next write of
    /// it, such as the kubelet's status write after the scheduler's binding, and for `readers`
    /// of the revision it was edited from.
    pub async fn edit_internal_kept<F>(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
        readers: impl Fn(i64) -> Readers,
        mut edit: F,
    ) -> Result<(), ApiError>
    where
        F: FnMut(&mut Value) -> Result<&'static [(&'static str, Edit)], ApiError>,
    {
        let sres = storage_resource(res);
        if is_converted(res) || sres.traits.generation {
            return self
                .guaranteed_update(res, namespace, name, UpdateMode::Internal, dry_run, |cur| {
                    let mut next = cur.clone();
                    edit(&mut next)?;
                    Ok(next)
                })
                .await
                .map(|_| ());
        }
        let key = sres.key(namespace, name);
        for _ in 0..64 {
            // The edits leave managedFields alone: kept as text, they stay text.
            let (mut obj, kv, mut managed_fields) = self
                .read_parts(sres, namespace, name)
                .await
                .map_err(|e| rename_not_found(e, res, name))?;
            let edited = edit(&mut obj)?;
            // What prepare_update does for an internal write, less what compares old and new
            // and the defaulting the stored object already had.
            clear_read_metadata(meta::metadata_mut(&mut obj));
            meta::canonicalize(&mut obj);
            let managed = managed_fields
                .as_deref()
                .map_or(Managed::Kept, Managed::Text);
            let bytes = match splice_stored(&kv.value, &obj, edited, managed) {
                Some(b) => b,
                None => {
                    whole(&mut obj, managed_fields.take())?;
                    serialize(&obj)
                }
            };
            if bytes == kv.value || dry_run {
                return Ok(());
            }
            let bytes = (!deletes_when_written(&obj)).then_some(bytes);
            if bytes.is_none() {
                whole(&mut obj, managed_fields.take())?;
            }
            let obj = match &bytes {
                Some(b) => match self
                    .write_kept(
                        res,
                        name,
                        &key,
                        kv.mod_revision,
                        b,
                        (obj, managed_fields),
                        readers(kv.mod_revision),
                    )
                    .await?
                {
                    KeptWrite::Written(_) => return Ok(()),
                    KeptWrite::Conflict => continue,
                    KeptWrite::NotKept(obj) => obj,
                },
                None => obj,
            };
            if self
                .write(res, name, &key, kv.mod_revision, bytes, obj)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(too_many_conflicts(res, name))
    }

    /// [`Self::guaranteed_update`] recording an `Update` managedFields entry for `manager`
    /// (without one, managedFields are carried over: the server's own writes, and applies,
    /// whose `change` records the `Apply` entry).
    #[allow(clippy::too_many_arguments)]
    pub async fn guaranteed_update_as<F>(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        mode: UpdateMode,
        dry_run: bool,
        manager: Option<&str>,
        change: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let answer = Answer::Object;
        let updated = self
            .guaranteed_update_answer(res, namespace, name, mode, dry_run, manager, answer, change)
            .await?;
        match updated {
            Updated::Object(v) => Ok(v),
            Updated::Revision(_) => unreachable!("an update asked for its object"),
        }
    }

    /// [`Self::guaranteed_update_as`] for an in-process writer that needs only the revision
    /// the object is at afterwards: the object written is not answered but handed to the kept
    /// objects (before the write), for the informers to decode their copy from, and for the
    /// next write of it.
    #[allow(clippy::too_many_arguments)]
    pub async fn guaranteed_update_revision<F>(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        mode: UpdateMode,
        manager: Option<&str>,
        change: F,
    ) -> Result<i64, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let answer = Answer::Revision;
        let updated = self
            .guaranteed_update_answer(res, namespace, name, mode, false, manager, answer, change)
            .await?;
        Ok(match updated {
            Updated::Object(v) => meta::resource_version(&v).parse().unwrap_or(0),
            Updated::Revision(rev) => rev,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn guaranteed_update_answer<F>(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        mode: UpdateMode,
        dry_run: bool,
        manager: Option<&str>,
        answer: Answer,
        mut change: F,
    ) -> Result<Updated, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let sres = storage_resource(res);
        let key = sres.key(namespace, name);
        // A pod's status write for an in-process writer answers no object: it may take the
        // pod with its managedFields as text and record its entry on the text.
        let pod_status = mode == UpdateMode::Status && is_pod(res);
        let parts = pod_status && answer == Answer::Revision && !dry_run;
        for _ in 0..64 {
            let (old_internal, kv, managed_fields) = if parts {
                self.read_parts(sres, namespace, name).await
            } else {
                self.read(sres, namespace, name)
                    .await
                    .map(|(v, kv)| (v, kv, None))
            }
            .map_err(|e| rename_not_found(e, res, name))?;
            // Most kinds are served as stored: convert (a copy) only where forms differ.
            let desired = if is_converted(res) {
                change(&to_external(res, old_internal.clone()))?
            } else {
                change(&old_internal)?
            };
            let desired = to_internal(res, check_kind(res, desired)?);
            if meta::name(&desired) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({})",
                    meta::name(&desired),
                    name
                )));
            }
            if res.namespaced {
                let ns = meta::namespace(&desired);
                if !ns.is_empty() && Some(ns) != namespace {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
            let mut new_fields = None;
            let (new, bytes) = if pod_status {
                let managed = managed_fields.as_deref();
                match prepare_pod_status(sres, old_internal, desired, res, manager, managed)? {
                    Ok((mut new, text)) => {
                        // Only the status and managedFields differ from the stored text.
                        const STATUS: &[(&str, Edit)] = &[("status", Edit::Rewritten)];
                        let how = text.as_deref().map_or(Managed::Written, Managed::Text);
                        let bytes = match splice_stored(&kv.value, &new, STATUS, how) {
                            Some(b) => {
                                new_fields = text;
                                b
                            }
                            None => {
                                whole(&mut new, text)?;
                                serialize(&new)
                            }
                        };
                        if bytes == kv.value {
                            whole(&mut new, new_fields.take())?;
                            set_revision(&mut new, kv.mod_revision);
                            return Ok(Updated::Object(new));
                        }
                        (new, bytes)
                    }
                    Err(mut unchanged) => {
                        whole(&mut unchanged, managed_fields)?;
                        return Ok(Updated::Object(unchanged));
                    }
                }
            } else {
                let new = prepare_update(sres, &old_internal, desired, mode, res, name, manager)?;
                let bytes = serialize(&new);
                // Stored bytes are already in this canonical form: compare with them rather
                // than serializing the old object again.
                if bytes == kv.value {
                    return Ok(Updated::Object(to_external(res, old_internal)));
                }
                (new, bytes)
            };
            let mut new = new;
            if dry_run || deletes_when_written(&new) {
                whole(&mut new, new_fields.take())?;
            }
            if dry_run {
                // Nothing was written: the object keeps the revision it was read at.
                let mut out = new;
                set_revision(&mut out, kv.mod_revision);
                return Ok(Updated::Object(to_external(res, out)));
            }
            if deletes_when_written(&new) {
                match self
                    .write(res, name, &key, kv.mod_revision, None, new)
                    .await?
                {
                    Some(out) => return Ok(Updated::Object(out)),
                    None => continue,
                }
            }
            // Only a pod's status write has its object in the stored form (canonical, without
            // what reads add) to keep; other writes answer it as before.
            let keep = answer == Answer::Revision && mode == UpdateMode::Status && is_pod(res);
            let new = match keep {
                false => new,
                true => match self
                    .write_kept(
                        res,
                        name,
                        &key,
                        kv.mod_revision,
                        &bytes,
                        (new, new_fields.take()),
                        // Only its status (and managedFields) differ from what was read.
                        Readers::Informers {
                            status_of: Some(kv.mod_revision),
                        },
                    )
                    .await?
                {
                    KeptWrite::Written(rev) => return Ok(Updated::Revision(rev)),
                    KeptWrite::Conflict => continue,
                    KeptWrite::NotKept(new) => new,
                },
            };
            match self
                .write(res, name, &key, kv.mod_revision, Some(bytes), new)
                .await?
            {
                Some(out) => return Ok(Updated::Object(out)),
                None => continue,
            }
        }
        Err(too_many_conflicts(res, name))
    }

    /// Writes `bytes` over revision `expected` of `key` (or deletes the key with `None`) and
    /// returns `obj` as written (external form, resourceVersion set); `Ok(None)` when another
    /// write won the race, for the caller to read again and retry.
    async fn write(
        &self,
        res: &'static Resource,
        name: &str,
        key: &str,
        expected: i64,
        bytes: Option<Bytes>,
        mut obj: Value,
    ) -> Result<Option<Value>, ApiError> {
        let Some(rev) = self.write_bytes(res, name, key, expected, bytes).await? else {
            return Ok(None);
        };
        set_revision(&mut obj, rev);
        Ok(Some(to_external(res, obj)))
    }

    /// Hands `obj` (with its managedFields apart as text, or in it) to the kept objects for
    /// `readers`, then writes `bytes` (its stored text) over revision `expected` of `key`: the
    /// revision written, or a conflict to retry. When the object is not kept (kinds not stored
    /// as served, or keeping is off), nothing is written and `obj` comes back whole, for
    /// [`Self::write`].
    #[allow(clippy::too_many_arguments)]
    async fn write_kept(
        &self,
        res: &'static Resource,
        name: &str,
        key: &str,
        expected: i64,
        bytes: &Bytes,
        obj: Parts,
        readers: Readers,
    ) -> Result<KeptWrite, ApiError> {
        if let Err((mut obj, managed_fields)) = self.keep_written(res, key, bytes, obj, readers) {
            whole(&mut obj, managed_fields)?;
            return Ok(KeptWrite::NotKept(obj));
        }
        Ok(
            match self
                .write_bytes(res, name, key, expected, Some(bytes.clone()))
                .await?
            {
                Some(rev) => KeptWrite::Written(rev),
                None => KeptWrite::Conflict,
            },
        )
    }

    /// [`Self::write`] for a caller that needs only the revision written.
    async fn write_bytes(
        &self,
        res: &'static Resource,
        name: &str,
        key: &str,
        expected: i64,
        bytes: Option<Bytes>,
    ) -> Result<Option<i64>, ApiError> {
        let written = match bytes {
            Some(b) => self.store.update(key, expected, b).await,
            None => self
                .store
                .delete(key, Some(expected))
                .await
                .map(|gone| gone.mod_revision),
        };
        match written {
            Ok(rev) => {
                self.metrics.object_written(res.plural);
                Ok(Some(rev))
            }
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(StoreError::NotFound(_)) => Err(ApiError::not_found(res, name)),
            Err(e) => Err(store_error(res, name, e)),
        }
    }

    /// PUT: replaces an object, honouring a resourceVersion precondition in the body.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_object(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        mode: UpdateMode,
        dry_run: bool,
        manager: Option<&str>,
    ) -> Result<(Value, bool), ApiError> {
        let wanted_rv = meta::resource_version(&body).to_string();
        let sres = storage_resource(res);
        let exists = self
            .store
            .get(&sres.key(namespace, name), ReadAt::Latest)
            .await
            .map_err(|e| store_error(res, name, e))?
            .0
            .is_some();
        if !exists {
            if mode == UpdateMode::Main && allow_create_on_update(sres) {
                if meta::name(&body) != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({})",
                        meta::name(&body),
                        name
                    )));
                }
                let mut body = body;
                meta::metadata_mut(&mut body).remove("resourceVersion");
                return self
                    .create_object_as(res, namespace, body, dry_run, manager)
                    .await
                    .map(|v| (v, true));
            }
            return Err(ApiError::not_found(res, name));
        }
        let out = self
            .guaranteed_update_as(res, namespace, name, mode, dry_run, manager, |cur| {
                if !wanted_rv.is_empty() && wanted_rv != meta::resource_version(cur) {
                    return Err(ApiError::stale(res, name));
                }
                Ok(body.clone())
            })
            .await?;
        Ok((out, false))
    }

    /// DELETE of one object.
    pub async fn delete_object(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        opts.validate()?;
        let sres = storage_resource(res);
        let key = sres.key(namespace, name);
        for _ in 0..64 {
            let (cur, kv) = self
                .read(sres, namespace, name)
                .await
                .map_err(|e| rename_not_found(e, res, name))?;
            if let Some(uid) = &opts.precondition_uid {
                if uid != meta::uid(&cur) {
                    return Err(ApiError::conflict(
                        res,
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::uid(&cur)),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_rv {
                if rv != meta::resource_version(&cur) {
                    return Err(ApiError::conflict(
                        res,
                        name,
                        &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            meta::resource_version(&cur)
                        ),
                    ));
                }
            }
            let mut next = cur.clone();
            let mut pending = false;
            let now = jiff::Timestamp::now();
            // Graceful deletion: pods that may be running get their grace period.
            if sres.kind == "Pod" && sres.group.is_empty() {
                let grace = opts.grace_period_seconds.unwrap_or_else(|| {
                    cur.at("spec")
                        .field("terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(30)
                });
                let scheduled = cur
                    .at("spec")
                    .field("nodeName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                let phase = cur
                    .at("status")
                    .field("phase")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let grace = if !scheduled || phase == "Succeeded" || phase == "Failed" {
                    0
                } else {
                    grace
                };
                let current_grace = cur
                    .at("metadata")
                    .field("deletionGracePeriodSeconds")
                    .and_then(Value::as_i64);
                if grace > 0 && current_grace.is_none_or(|g| grace < g) {
                    let m = meta::metadata_mut(&mut next);
                    let at = now + jiff::SignedDuration::from_secs(grace);
                    m.insert("deletionTimestamp".into(), json!(meta::format_time(at)));
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                    pending = true;
                } else if grace > 0 {
                    pending = true;
                } else if current_grace.is_some_and(|g| g > 0) {
                    meta::metadata_mut(&mut next)
                        .insert("deletionGracePeriodSeconds".into(), json!(0));
                }
            }
            // Propagation: Orphan and Foreground are finalizers the garbage collector honours.
            let default_policy = "Background";
            let policy = opts.propagation_policy.as_deref().unwrap_or(default_policy);
            let mut finalizers = meta::finalizers(&next);
            // A CRD first deletes its objects (upstream's CRD storage adds this finalizer).
            if sres.group == skiff_core::crd::GROUP
                && sres.plural == skiff_core::crd::PLURAL
                && !finalizers
                    .iter()
                    .any(|f| f == skiff_core::crd::CLEANUP_FINALIZER)
            {
                finalizers.push(skiff_core::crd::CLEANUP_FINALIZER.into());
            }
            match policy {
                "Orphan" => {
                    finalizers.retain(|f| f != "foregroundDeletion");
                    if !finalizers.iter().any(|f| f == "orphan") {
                        finalizers.push("orphan".into());
                    }
                }
                "Foreground" => {
                    finalizers.retain(|f| f != "orphan");
                    if !finalizers.iter().any(|f| f == "foregroundDeletion") {
                        finalizers.push("foregroundDeletion".into());
                    }
                }
                _ => {}
            }
            // Namespaces wait for their content to go (spec.finalizers).
            let ns_finalizing = sres.kind == "Namespace"
                && sres.group.is_empty()
                && cur
                    .at("spec")
                    .field("finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
            if !finalizers.is_empty() || ns_finalizing {
                let m = meta::metadata_mut(&mut next);
                if !finalizers.is_empty() {
                    m.insert("finalizers".into(), json!(finalizers));
                }
                if !m.contains_key("deletionTimestamp") {
                    m.insert("deletionTimestamp".into(), json!(meta::format_time(now)));
                    m.insert("deletionGracePeriodSeconds".into(), json!(0));
                }
                if sres.kind == "Namespace" && sres.group.is_empty() {
                    next.as_object_mut()
                        .expect("object")
                        .insert("status".into(), json!({"phase": "Terminating"}));
                }
                pending = true;
            }
            if pending {
                if opts.dry_run {
                    return Ok(Deleted::Pending(to_external(res, next)));
                }
                if next == cur {
                    return Ok(Deleted::Pending(to_external(res, cur)));
                }
                meta::canonicalize(&mut next);
                let bytes = serialize(&next);
                match self
                    .write(res, name, &key, kv.mod_revision, Some(bytes), next)
                    .await?
                {
                    Some(out) => return Ok(Deleted::Pending(out)),
                    None => continue,
                }
            }
            if opts.dry_run {
                return Ok(Deleted::Now(to_external(res, cur)));
            }
            match self
                .write(res, name, &key, kv.mod_revision, None, cur)
                .await?
            {
                Some(out) => return Ok(Deleted::Now(out)),
                None => continue,
            }
        }
        Err(too_many_conflicts(res, name))
    }
}

fn too_many_conflicts(res: &Resource, name: &str) -> ApiError {
    ApiError::conflict(res, name, "too many concurrent updates; please try again")
}

fn is_service(res: &Resource) -> bool {
    res.group.is_empty() && res.kind == "Service"
}

/// Finalizers that keep a deleting object: `metadata.finalizers`, and a namespace's
/// `spec.finalizers`.
pub fn blocks_deletion(obj: &Value) -> bool {
    !meta::finalizers(obj).is_empty()
        || (obj.field("kind").and_then(Value::as_str) == Some("Namespace")
            && obj
                .at("spec")
                .field("finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()))
}

fn rename_not_found(e: ApiError, res: &Resource, name: &str) -> ApiError {
    if e.code == 404 {
        ApiError::not_found(res, name)
    } else {
        e
    }
}

/// Checks (and fills in) the body's kind and apiVersion against the resource.
pub fn check_kind(res: &Resource, obj: Value) -> Result<Value, ApiError> {
    let Value::Object(mut o) = obj else {
        return Err(ApiError::bad_request(format!(
            "the body of the request must be a JSON object of kind {}",
            res.kind
        )));
    };
    let want_av = res.api_version();
    match o.field("apiVersion") {
        None | Some(Value::Null) => {
            o.insert("apiVersion".into(), json!(want_av));
        }
        Some(Value::String(av)) if *av == want_av => {}
        Some(av) => {
            let av = av.as_str().unwrap_or("").to_string();
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
    }
    match o.field("kind") {
        None | Some(Value::Null) => {
            o.insert("kind".into(), json!(res.kind));
        }
        Some(Value::String(k)) if k == res.kind => {}
        Some(k) => {
            let k = k.as_str().unwrap_or("").to_string();
            return Err(ApiError::bad_request(format!(
                "{k} in version \"{}\" cannot be handled as a {}: the kind in the data ({k}) does not match the expected kind ({})",
                res.version, res.kind, res.kind
            )));
        }
    }
    if let Some(m) = o.field("metadata") {
        if !m.is_object() && !m.is_null() {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
                res.kind, res.version, res.kind
            )));
        }
    }
    Ok(Value::Object(o))
}

/// Upstream's `PrepareForUpdate` plus update validation: keeps server-owned metadata, separates
/// spec and status writes, bumps the generation on spec changes.
fn prepare_update(
    sres: &'static Resource,
    old: &Value,
    desired: Value,
    mode: UpdateMode,
    served: &Resource,
    name: &str,
    manager: Option<&str>,
) -> Result<Value, ApiError> {
    let mut new = match mode {
        UpdateMode::Main | UpdateMode::Internal => desired,
        UpdateMode::Status => {
            // The old object with the desired status: copy all but the old status.
            let mut desired = desired;
            let status = desired.as_object_mut().and_then(|d| d.remove("status"));
            let old = old.as_object().expect("object");
            let mut n = serde_json::Map::with_capacity(old.len() + 1);
            for (k, v) in old {
                if k != "status" {
                    n.insert(k.clone(), v.clone());
                }
            }
            if let Some(s) = status {
                n.insert("status".into(), s);
            }
            Value::Object(n)
        }
        UpdateMode::Finalize => {
            let mut n = old.clone();
            let f = desired
                .at("spec")
                .field("finalizers")
                .cloned()
                .unwrap_or(json!([]));
            n.as_object_mut()
                .expect("object")
                .entry("spec")
                .or_insert_with(|| json!({}));
            n["spec"]["finalizers"] = f;
            n
        }
    };
    {
        let empty = serde_json::Map::new();
        let old_meta = old
            .field("metadata")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let m = meta::metadata_mut(&mut new);
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "generateName",
        ] {
            match old_meta.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.shift_remove(k),
            };
        }
        if mode != UpdateMode::Internal {
            for k in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
                match old_meta.get(k) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.shift_remove(k),
                };
            }
        }
        clear_request_metadata(m);
    }
    if mode == UpdateMode::Main && sres.traits.status {
        let o = new.as_object_mut().expect("object");
        match old.field("status") {
            Some(s) => o.insert("status".into(), s.clone()),
            None => o.shift_remove("status"),
        };
    }
    if mode == UpdateMode::Main && sres.kind == "Namespace" && sres.group.is_empty() {
        let f = old.at("spec").field("finalizers").cloned();
        if let Some(f) = f {
            new.as_object_mut()
                .expect("object")
                .entry("spec")
                .or_insert_with(|| json!({}));
            new["spec"]["finalizers"] = f;
        }
    }
    defaults::apply(sres, &mut new);
    // Custom objects without a status subresource count status changes too (upstream's
    // customResourceStrategy).
    // Only kinds with a generation need to know (a status write never changes the spec).
    let changed = || {
        if sres.custom.is_some() && !sres.traits.status {
            new.field("status") != old.field("status") || spec_differs(&new, old)
        } else {
            mode != UpdateMode::Status && spec_differs(&new, old)
        }
    };
    if sres.traits.generation && changed() {
        let g = old
            .at("metadata")
            .field("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta::metadata_mut(&mut new).insert("generation".into(), json!(g));
    }
    // A deleting object may lose finalizers but gain none.
    if meta::is_deleting(old) && mode != UpdateMode::Internal {
        let had = meta::finalizers(old);
        let added: Vec<String> = meta::finalizers(&new)
            .into_iter()
            .filter(|f| !had.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                served,
                name,
                &[FieldError::forbidden(
                    "metadata.finalizers",
                    format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
                )],
            ));
        }
    }
    // The server's own writes (pods/binding setting spec.nodeName, the lifecycle loops) skip
    // update validation, as upstream's binding writes storage directly: a pod's spec is
    // otherwise immutable.
    let errors = if mode == UpdateMode::Internal {
        Vec::new()
    } else {
        validation::validate_update(sres, &new, old)
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(served, name, &errors));
    }
    let av = served.api_version();
    let m = manager.map(|n| field_manager(n, &av, mode));
    managed::record_update(
        sres,
        old,
        &mut new,
        managed_scope(sres, mode),
        m.as_ref(),
        &meta::now_rfc3339(),
    )?;
    meta::canonicalize(&mut new);
    Ok(new)
}

/// Drops the metadata an update never stores: resourceVersion (the store's revision), selfLink,
/// and lists or maps sent as null.
fn clear_request_metadata(m: &mut Map<String, Value>) {
    m.shift_remove("resourceVersion");
    m.shift_remove("selfLink");
    for k in ["labels", "annotations", "finalizers", "ownerReferences"] {
        if m.get(k).is_some_and(Value::is_null) {
            m.shift_remove(k);
        }
    }
}

/// [`clear_request_metadata`] for the metadata of an object as read from storage, which has
/// its resourceVersion and, as this server writes objects, nothing else that function drops:
/// then nothing is dropped, and the resourceVersion (which is not stored) stays in its place
/// to be set again there once written, instead of being removed and inserted again.
fn clear_read_metadata(m: &mut Map<String, Value>) {
    let drops = m.iter().any(|(k, v)| {
        k == "selfLink"
            || (v.is_null()
                && matches!(
                    k.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                ))
    });
    if drops {
        clear_request_metadata(m);
    }
}

/// Whether writing `obj` deletes it instead: it is being deleted with no grace period left and
/// nothing (finalizers) holds it any more, as when its last finalizer is removed.
fn deletes_when_written(obj: &Value) -> bool {
    meta::is_deleting(obj)
        && !blocks_deletion(obj)
        && obj
            .at("metadata")
            .field("deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
}

pub(crate) fn is_pod(res: &Resource) -> bool {
    res.group.is_empty() && res.kind == "Pod" && res.custom.is_none()
}

/// [`prepare_update`] for a pod's status subresource (the kubelet's write, one or more per
/// pod), without copying the old pod: the new pod is the old one with the desired status.
/// Only the status can differ, so nothing else is validated again (upstream validates a pod
/// status update's metadata and status only, and the metadata is the stored one) or defaulted
/// again (the stored spec was defaulted when it was written: only the status defaults apply),
/// and the managedFields diff needs only the old and new status. `Ok(Err(old))` when the
/// status is unchanged.
///
/// With `managed_fields`, `old` was kept without its managedFields, which are that text: the
/// new pod comes back without them too, with their new text, when the entry is recorded on the
/// text ([`managed::record_update_text`]); otherwise whole, with `None`.
fn prepare_pod_status(
    sres: &'static Resource,
    old: Value,
    desired: Value,
    served: &Resource,
    manager: Option<&str>,
    managed_fields: Option<&[u8]>,
) -> Result<Result<Parts, Value>, ApiError> {
    // Only the status of `desired` is used: taken as the rest is dropped (no key hashed).
    let status = match desired {
        Value::Object(d) => d
            .into_iter()
            .find_map(|(k, v)| (k == "status").then_some(v)),
        _ => None,
    };
    if old.field("status") == status.as_ref() {
        return Ok(Err(old));
    }
    let mut new = old;
    // The new status takes the old one's place (found by name, not hashed); the order of the
    // members is made canonical below in any case.
    let old_status = new.field_mut("status").map(std::mem::take);
    match (status, new.field_mut("status")) {
        (Some(s), Some(slot)) => *slot = s,
        (Some(s), None) => {
            new.as_object_mut()
                .expect("object")
                .insert("status".into(), s);
        }
        (None, Some(_)) => {
            new.as_object_mut().expect("object").shift_remove("status");
        }
        (None, None) => {}
    }
    clear_read_metadata(meta::metadata_mut(&mut new));
    defaults::pod_status(&mut new);
    let mut text = None;
    match (manager, managed_fields) {
        (None, Some(t)) => text = Some(t.to_vec()),
        (None, None) => {}
        (Some(name), _) => {
            let av = served.api_version();
            let m = field_manager(name, &av, UpdateMode::Status);
            if let Some(t) = managed_fields {
                let (recorded, old) = record_status_text(sres, old_status, &mut new, t, &m);
                text = recorded;
                if text.is_none() {
                    whole(&mut new, Some(t.into()))?;
                    record_status_update(sres, old, &mut new, &m)?;
                }
            } else {
                record_status_update(sres, old_status, &mut new, &m)?;
            }
        }
    }
    meta::canonicalize(&mut new);
    Ok(Ok((new, text.map(Vec::into_boxed_slice))))
}

/// [`record_status_update`] on managedFields kept as `entries` (JSON text) apart from `new`:
/// their new text, or `None` when the entry cannot be recorded on the text (see
/// [`managed::record_update_text`]), and `old_status` back. The two statuses are compared
/// alone (a metadata the same on both sides adds nothing to the diff, so there is none); they
/// are moved in for it and back out.
fn record_status_text(
    sres: &'static Resource,
    old_status: Option<Value>,
    new: &mut Value,
    entries: &[u8],
    m: &managed::Manager,
) -> (Option<Vec<u8>>, Option<Value>) {
    let side = |status: Option<Value>| {
        let mut obj = Map::with_capacity(1);
        if let Some(s) = status {
            obj.insert("status".into(), s);
        }
        Value::Object(obj)
    };
    let before = side(old_status);
    let slot = new.field_mut("status");
    let after = side(slot.map(std::mem::take));
    let text = managed::record_update_text(
        sres,
        &before,
        &after,
        managed_scope(sres, UpdateMode::Status),
        entries,
        m,
        &meta::now_rfc3339(),
    );
    // Each side holds the status alone, if anything.
    let status_of = |side: Value| match side {
        Value::Object(m) => m.into_iter().next().map(|(_, s)| s),
        _ => None,
    };
    if let (Some(s), Some(slot)) = (status_of(after), new.field_mut("status")) {
        *slot = s;
    }
    (text, status_of(before))
}

/// Records `m`'s status write in the managedFields of `new`, whose status replaced
/// `old_status` and whose metadata is the stored one. The diff is taken between two small
/// objects, the old status and the new one, each beside a metadata that holds nothing the diff
/// looks at (the metadata is the same on both sides, so it adds nothing): neither the metadata
/// nor the new status is copied, they are moved out of `new` and back.
fn record_status_update(
    sres: &'static Resource,
    old_status: Option<Value>,
    new: &mut Value,
    m: &managed::Manager,
) -> Result<(), ApiError> {
    let meta = meta::metadata_mut(new);
    let had_entries = meta.contains_key("managedFields");
    let entries = meta
        .get_mut("managedFields")
        .map(std::mem::take)
        .unwrap_or(Value::Null);
    let o = new.as_object_mut().expect("object");
    let status = o.get_mut("status").map(std::mem::take);
    let side = |entries: Option<Value>, status: Option<Value>| {
        let mut meta = Map::new();
        if let Some(e) = entries {
            meta.insert("managedFields".into(), e);
        }
        let mut obj = Map::new();
        obj.insert("metadata".into(), Value::Object(meta));
        if let Some(s) = status {
            obj.insert("status".into(), s);
        }
        Value::Object(obj)
    };
    let before = side(None, old_status);
    let mut after = side(had_entries.then_some(entries), status);
    let recorded = managed::record_update(
        sres,
        &before,
        &mut after,
        managed_scope(sres, UpdateMode::Status),
        Some(m),
        &meta::now_rfc3339(),
    );
    // Put the status and the entries back before reporting an error, so that `new` is whole.
    let Value::Object(mut after) = after else {
        unreachable!("built as an object")
    };
    if let Some(s) = after.shift_remove("status") {
        if let Some(slot) = new.as_object_mut().expect("object").get_mut("status") {
            *slot = s;
        }
    }
    let entries = match after.shift_remove("metadata") {
        Some(Value::Object(mut m)) => m.shift_remove("managedFields"),
        _ => None,
    };
    let meta = meta::metadata_mut(new);
    match (entries, meta.get_mut("managedFields")) {
        (Some(e), Some(slot)) => *slot = e,
        (Some(e), None) => {
            meta.insert("managedFields".into(), e);
        }
        (None, Some(_)) => {
            meta.shift_remove("managedFields");
        }
        (None, None) => {}
    }
    recorded?;
    Ok(())
}

/// What a guaranteed update answers: the object written, or only its revision.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Object,
    Revision,
}

enum Updated {
    Object(Value),
    Revision(i64),
}

/// How [`ApiServer::write_kept`] went.
enum KeptWrite {
    Written(i64),
    Conflict,
    NotKept(Value),
}

/// How an internal edit changed a top-level member of an object ([`ApiServer::edit_internal_kept`]),
/// for writing the stored text of the result from the old text ([`splice_stored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Anything in it may have changed: its value is written again whole.
    Rewritten,
    /// Members were added after the ones it had, which are unchanged: the old text of the
    /// member with the new members appended.
    Appended,
}

/// Walks the members of the compact JSON object whose text starts at `b[at]`, without parsing
/// them: `member` gets each one's name (as written between its quotes) and where its value
/// starts, and returns where the value ends (`None` stops the walk). Returns the index just
/// past the object; `None` when the text there is not a compact object or the walk stopped.
fn walk_members<'a>(
    b: &'a [u8],
    at: usize,
    mut member: impl FnMut(&'a [u8], usize) -> Option<usize>,
) -> Option<usize> {
    if b.get(at) != Some(&b'{') {
        return None;
    }
    let mut i = at + 1;
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = meta::skip_json_value(b, i)?;
        if b.get(key_end) != Some(&b':') {
            return None;
        }
        let value_end = member(&b[i + 1..key_end - 1], key_end + 1)?;
        match b.get(value_end)? {
            b',' => i = value_end + 1,
            b'}' => return Some(value_end + 1),
            _ => return None,
        }
    }
}

/// The stored text of `new`, an object made from the one stored as `stored` by changing only
/// the top-level members `edits` names (as each says) and, with `managed_fields`, its
/// `metadata.managedFields`: the old text with those values written again, byte for byte what
/// [`serialize`] gives for `new`, without writing the rest of it again (most of a pod: its
/// metadata and spec). The caller vouches that nothing else changed in value; what this checks,
/// in one pass over the old text, is the layout: `None` (serialize instead) unless both have
/// the same members in the same order at the top, in `metadata` (less what is not stored) and
/// in the members `edits` extends.
fn splice_stored(
    stored: &[u8],
    new: &Value,
    edits: &[(&str, Edit)],
    managed: Managed<'_>,
) -> Option<Bytes> {
    let text = meta::exact_text(|out| splice_into(out, stored, new, edits, managed))?;
    #[cfg(debug_assertions)]
    {
        let mut all = new.clone();
        if let Managed::Text(t) = managed {
            crate::recent::with_managed_fields(&mut all, t).expect("managedFields text");
        }
        assert_eq!(
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(&serialize(&all)),
            "the spliced text is the serialized object"
        );
    }
    Some(Bytes::from(text))
}

/// Where the managedFields of an object [`splice_stored`] writes come from.
#[derive(Debug, Clone, Copy)]
enum Managed<'a> {
    /// The object's own, unchanged: the old text's.
    Kept,
    /// The object's own, changed: written from the object.
    Written,
    /// Not in the object (see [`Recent::take_parts`]): this text, where the old text has its
    /// managedFields (the end of the metadata).
    Text(&'a [u8]),
}

/// [`meta::write_json`] of a status, the items of its `conditions` copied from this thread's
/// text of the last ones written when they are the same: the conditions of the pods made
/// Running in one second are the same (types, statuses, times), and a kubelet's status write
/// carries five of them. The same bytes as [`meta::write_json`], which writes a value's members
/// in their order: an item is the same only with the same members in the same order.
fn write_status_json(out: &mut Vec<u8>, status: &Value) {
    /// Condition texts remembered per thread.
    const REMEMBERED: usize = 8;
    thread_local! {
        static CONDITIONS: std::cell::RefCell<Ring<(Value, Vec<u8>)>> =
            const { std::cell::RefCell::new(Ring::new()) };
    }
    let Value::Object(m) = status else {
        return meta::write_json(out, status);
    };
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        meta::write_json_str(out, k);
        out.push(b':');
        let (true, Value::Array(items)) = (k == "conditions", v) else {
            meta::write_json(out, v);
            continue;
        };
        out.push(b'[');
        CONDITIONS.with(|memo| {
            let mut memo = memo.borrow_mut();
            for (j, item) in items.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                if let Some((_, text)) = memo.find(|(v, _)| same_json(v, item)) {
                    out.extend_from_slice(text);
                    continue;
                }
                let at = out.len();
                meta::write_json(out, item);
                memo.put((item.clone(), out[at..].to_vec()), REMEMBERED);
            }
        });
        out.push(b']');
    }
    out.push(b'}');
}

/// Puts managedFields kept as `text` back into `obj` (nothing without text).
fn whole(obj: &mut Value, text: Option<Box<[u8]>>) -> Result<(), ApiError> {
    match text {
        Some(t) => crate::recent::with_managed_fields(obj, &t)
            .ok_or_else(|| ApiError::internal("kept managedFields do not parse")),
        None => Ok(()),
    }
}

/// [`splice_stored`] writing into `out`; `None` when the layouts differ.
fn splice_into(
    out: &mut Vec<u8>,
    stored: &[u8],
    new: &Value,
    edits: &[(&str, Edit)],
    managed: Managed<'_>,
) -> Option<()> {
    let mut names = new.as_object()?.iter();
    let mut copied = 0;
    let end = walk_members(stored, 0, |name, start| {
        let (key, value) = names.next()?;
        if name != key.as_bytes() {
            return None;
        }
        if key == "metadata" {
            // Whatever an update drops from metadata (a null list) shows as a missing member.
            let Value::Object(m) = value else {
                return None;
            };
            let mut kept = m
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "resourceVersion" | "selfLink"));
            // Whether the text was placed, in the old text's last member.
            let (mut placed, mut last) = (false, false);
            let end = walk_members(stored, start, |name, start| {
                last = false;
                if let Managed::Text(text) = managed {
                    if name == b"managedFields" && !placed {
                        let end = meta::skip_json_value(stored, start)?;
                        out.extend_from_slice(&stored[copied..start]);
                        out.extend_from_slice(text);
                        copied = end;
                        (placed, last) = (true, true);
                        return Some(end);
                    }
                }
                let (key, value) = kept.next()?;
                if name != key.as_bytes() {
                    return None;
                }
                let end = meta::skip_json_value(stored, start)?;
                if matches!(managed, Managed::Written) && key == "managedFields" {
                    out.extend_from_slice(&stored[copied..start]);
                    meta::write_json(out, value);
                    copied = end;
                }
                Some(end)
            })?;
            let in_place = !matches!(managed, Managed::Text(_)) || (placed && last);
            return (in_place && kept.next().is_none()).then_some(end);
        }
        let Some((_, how)) = edits.iter().find(|(k, _)| *k == key) else {
            return meta::skip_json_value(stored, start);
        };
        match how {
            Edit::Rewritten => {
                let end = meta::skip_json_value(stored, start)?;
                out.extend_from_slice(&stored[copied..start]);
                match key.as_str() {
                    "status" => write_status_json(out, value),
                    _ => meta::write_json(out, value),
                }
                copied = end;
                Some(end)
            }
            Edit::Appended => {
                let Value::Object(m) = value else {
                    return None;
                };
                let mut had = 0;
                let mut keys = m.keys();
                let end = walk_members(stored, start, |name, start| {
                    had += 1;
                    (keys.next()?.as_bytes() == name)
                        .then(|| meta::skip_json_value(stored, start))
                        .flatten()
                })?;
                // Up to the closing brace, then the new members.
                out.extend_from_slice(&stored[copied..end - 1]);
                for (i, (k, v)) in m.iter().enumerate().skip(had) {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k).ok()?;
                    out.push(b':');
                    meta::write_json(out, v);
                }
                out.push(b'}');
                copied = end;
                Some(end)
            }
        }
    })?;
    if end != stored.len() || names.next().is_some() {
        return None;
    }
    out.extend_from_slice(&stored[copied..]);
    Some(())
}

/// Parses a resourceVersion query or body value.
pub fn parse_resource_version(rv: &str) -> Result<Option<i64>, ApiError> {
    if rv.is_empty() {
        return Ok(None);
    }
    parse_rv(rv)
        .filter(|v| *v >= 0)
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv}")))
}

/// Whether a stored namespace is terminating (being deleted, or in phase Terminating); only
/// the two fields that say so are decoded.
fn namespace_terminating(namespace: &str, stored: &[u8]) -> Result<bool, ApiError> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct NsState {
        metadata: NsMeta,
        status: NsStatus,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct NsMeta {
        deletion_timestamp: Option<Value>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct NsStatus {
        phase: Option<String>,
    }
    let ns: NsState = serde_json::from_slice(stored)
        .map_err(|e| ApiError::internal(format!("stored namespace {namespace} is corrupt: {e}")))?;
    Ok(ns.metadata.deletion_timestamp.is_some_and(|t| !t.is_null())
        || ns.status.phase.as_deref() == Some("Terminating"))
}

#[cfg(test)]
mod generate_name_tests {
    use std::sync::Arc;

    use serde_json::json;
    use skiff_core::registry;
    use skiff_store::sqlite::{SqliteOptions, SqliteStore};
    use skiff_store::{DynStore, ReadAt};

    use crate::recent::Keep;
    use crate::server::{ApiOptions, ApiServer};
    use skiff_core::meta;

    async fn server(collisions: usize) -> (tempfile::TempDir, Arc<ApiServer>) {
        let dir = tempfile::tempdir().unwrap();
        let inner: DynStore =
            SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let store: DynStore = Arc::new(crate::test_store::Hooked::colliding(
            inner,
            "/registry/core/configmaps/",
            collisions,
        ));
        let api = ApiServer::new(store, ApiOptions::default());
        api.bootstrap().await.unwrap();
        (dir, api)
    }

    fn cm(extra: serde_json::Value) -> serde_json::Value {
        let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
        json_patch::merge(&mut v, &extra);
        v
    }

    #[tokio::test]
    async fn a_generated_name_that_collides_is_generated_again() {
        let (_dir, api) = server(3).await;
        let res = registry::lookup("", "v1", "configmaps").unwrap();
        let out = api
            .create_object(
                res,
                Some("default"),
                cm(json!({"metadata": {"generateName": "web-"}})),
                false,
            )
            .await
            .expect("created after three collisions");
        let name = out
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap();
        assert!(
            name.starts_with("web-") && name.len() == "web-".len() + 5,
            "{name}"
        );

        // From a borrowed object (a controller's template): each attempt copies it, and it
        // is left as it was.
        let (_dir, api) = server(3).await;
        let template = cm(json!({"metadata": {"generateName": "job-"}, "data": {"k": "v"}}));
        let before = template.clone();
        let created = api
            .create_stored(res, Some("default"), &template, false, Some("m"), Keep::No)
            .await
            .expect("created after three collisions");
        let name = meta::name(&created.object);
        assert!(
            name.starts_with("job-") && name.len() == "job-".len() + 5,
            "{name}"
        );
        assert_eq!(created.object["data"]["k"], "v");
        assert_eq!(template, before);
    }

    /// A create answers the object as stored, managedFields included (written into the
    /// stored text without a Value); the trimmed create answers it without them and stores
    /// the same.
    #[tokio::test]
    async fn created_objects_carry_their_managed_fields_unless_trimmed() {
        let (_dir, api) = server(0).await;
        let res = registry::lookup("", "v1", "configmaps").unwrap();
        let body = |n: &str| cm(json!({"metadata": {"name": n}, "data": {"k": "v"}}));
        let full = api
            .create_object_as(res, Some("default"), body("a"), false, Some("m"))
            .await
            .unwrap();
        let trimmed = api
            .create_object_trimmed(res, Some("default"), body("b"), Some("m"))
            .await
            .unwrap();
        let read = |n: &'static str| {
            let api = api.clone();
            async move {
                let (kv, _) = api
                    .store
                    .get(
                        &format!("/registry/core/configmaps/default/{n}"),
                        ReadAt::Latest,
                    )
                    .await
                    .unwrap();
                let mut v: serde_json::Value = serde_json::from_slice(&kv.unwrap().value).unwrap();
                v["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .shift_remove("resourceVersion");
                v
            }
        };
        let entries = |v: &serde_json::Value| v.pointer("/metadata/managedFields").cloned();
        let mf = entries(&full).expect("managedFields answered");
        assert_eq!(mf[0]["manager"], "m");
        assert_eq!(mf[0]["fieldsV1"]["f:data"], json!({".": {}, "f:k": {}}));
        let stored_a = read("a").await;
        assert_eq!(entries(&stored_a), Some(mf));
        let mut answered = full.clone();
        answered["metadata"]
            .as_object_mut()
            .unwrap()
            .shift_remove("resourceVersion");
        assert_eq!(
            serde_json::to_string(&answered).unwrap(),
            serde_json::to_string(&stored_a).unwrap()
        );
        assert_eq!(entries(&trimmed), None);
        assert!(entries(&read("b").await).is_some());
    }

    /// A binding stores what defaulting the bound pod again would store: skipping that
    /// defaulting in the in-place edit loses nothing.
    #[tokio::test]
    async fn a_bound_pod_needs_no_defaulting_again() {
        let (_dir, api) = server(0).await;
        let pods = registry::lookup("", "v1", "pods").unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1"}},
                "readinessProbe": {"httpGet": {"port": 80}}}]}});
        api.create_object_as(pods, Some("default"), pod, false, Some("m"))
            .await
            .unwrap();
        api.bind_pod(Some("default"), "p", "node-1", false)
            .await
            .unwrap();
        let (kv, _) = api
            .store
            .get("/registry/core/pods/default/p", ReadAt::Latest)
            .await
            .unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&kv.unwrap().value).unwrap();
        assert_eq!(stored["spec"]["nodeName"], "node-1");
        assert_eq!(stored["status"]["conditions"][0]["type"], "PodScheduled");
        let mut again = stored.clone();
        skiff_core::defaults::apply(pods, &mut again);
        skiff_core::meta::canonicalize(&mut again);
        assert_eq!(again.to_string(), stored.to_string());
    }

    #[tokio::test]
    async fn retries_are_bounded_and_given_names_are_not_retried() {
        let (_dir, api) = server(100).await;
        let res = registry::lookup("", "v1", "configmaps").unwrap();
        let e = api
            .create_object(
                res,
                Some("default"),
                cm(json!({"metadata": {"generateName": "web-"}})),
                false,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, 409);
        let e = api
            .create_object(
                res,
                Some("default"),
                cm(json!({"metadata": {"name": "fixed"}})),
                false,
            )
            .await
            .unwrap_err();
        assert_eq!((e.code, e.reason), (409, "AlreadyExists"));
    }
}

#[cfg(test)]
mod pod_status_tests {
    use serde_json::{json, Value};
    use skiff_core::registry;

    use super::*;

    /// managedFields without their times (the two paths may straddle a second).
    fn timeless(mut v: Value) -> Value {
        if let Some(Value::Array(es)) = v.pointer_mut("/metadata/managedFields") {
            for e in es {
                e.as_object_mut().unwrap().remove("time");
            }
        }
        v
    }

    /// The pod status path gives exactly what the general status path gives.
    #[test]
    fn pod_status_writes_match_the_general_path() {
        let pods = registry::lookup("", "v1", "pods").unwrap();
        let mut old = json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "p", "namespace": "d", "uid": "u", "resourceVersion": "7",
                "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": "n"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}
        });
        defaults::apply(pods, &mut old);
        let created = managed::created(
            pods,
            &old,
            Scope::Main,
            &field_manager("kubectl", "v1", UpdateMode::Main),
            "2024-01-01T00:00:00Z",
        );
        meta::metadata_mut(&mut old).insert("managedFields".into(), created);
        meta::canonicalize(&mut old);
        let statuses = [
            json!({"phase": "Running", "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "x", "ready": true, "restartCount": 0}]}),
            json!({"phase": "Succeeded"}),
            json!(null),
        ];
        for (i, st) in statuses.iter().enumerate() {
            for manager in [Some("kubelet"), None] {
                let mut desired = json!({"kind": "Pod", "apiVersion": "v1",
                    "metadata": {"name": "p", "namespace": "d"}});
                if !st.is_null() {
                    desired["status"] = st.clone();
                }
                let general = prepare_update(
                    pods,
                    &old,
                    desired.clone(),
                    UpdateMode::Status,
                    pods,
                    "p",
                    manager,
                )
                .unwrap();
                let (fast, none) =
                    prepare_pod_status(pods, old.clone(), desired.clone(), pods, manager, None)
                        .unwrap()
                        .expect("a change");
                assert!(none.is_none());
                // The same with the managedFields kept apart as text: the text comes back, with
                // the kubelet's entry appended when there is one.
                let mut apart = old.clone();
                let text = serde_json::to_vec(
                    &meta::metadata_mut(&mut apart)
                        .shift_remove("managedFields")
                        .unwrap(),
                )
                .unwrap();
                let (mut on_text, new_text) =
                    prepare_pod_status(pods, apart, desired, pods, manager, Some(&text))
                        .unwrap()
                        .expect("a change");
                let new_text = new_text.expect("recorded on the text");
                // The first status changes fields nobody owned: the kubelet's entry is added.
                if i == 0 {
                    assert_eq!(new_text.len() > text.len(), manager.is_some());
                }
                whole(&mut on_text, Some(new_text)).unwrap();
                // As stored (the fast path leaves the resourceVersion it read in place, to be
                // set there again once written; the general one drops it).
                let general = String::from_utf8(meta::to_stored_json(&timeless(general))).unwrap();
                for fast in [fast, on_text] {
                    assert_eq!(
                        String::from_utf8(meta::to_stored_json(&timeless(fast))).unwrap(),
                        general,
                        "status {i}, manager {manager:?}"
                    );
                }
            }
        }
        // Nothing to write when the status is the same.
        let same = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"},
            "status": old["status"].clone()});
        assert!(
            prepare_pod_status(pods, old.clone(), same, pods, Some("kubelet"), None)
                .unwrap()
                .is_err()
        );
    }
}

#[cfg(test)]
mod status_text_tests {
    use serde_json::{json, Value};

    use super::*;

    /// A status's text is [`meta::write_json`]'s, byte for byte, whatever this thread wrote
    /// before: conditions equal but for the order of their members, or for a number written
    /// another way, are not taken for the remembered ones.
    #[test]
    fn status_text_is_write_jsons() {
        let t = "2026-01-01T00:00:00Z";
        let cond = |c: &str| json!({"lastTransitionTime": t, "status": "True", "type": c});
        let mut reordered = serde_json::Map::new();
        for k in ["type", "status", "lastTransitionTime"] {
            reordered.insert(k.into(), cond("Ready")[k].clone());
        }
        let statuses = [
            json!({"conditions": [cond("Initialized"), cond("Ready")], "phase": "Running"}),
            json!({"phase": "Running", "conditions": [cond("Ready"), Value::Object(reordered)]}),
            json!({"conditions": [{"type": "X", "n": 1}, {"type": "X", "n": 1.0},
                {"type": "X", "n": [1, {"a": "\"q\"\n"}]}]}),
            json!({"conditions": "not a list", "podIP": "10.0.0.1"}),
            json!({"conditions": []}),
            json!({}),
            json!("not an object"),
        ];
        for round in 0..2 {
            for (i, st) in statuses.iter().enumerate() {
                let (mut fast, mut plain) = (Vec::new(), Vec::new());
                write_status_json(&mut fast, st);
                meta::write_json(&mut plain, st);
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    String::from_utf8(plain).unwrap(),
                    "status {i}, round {round}"
                );
            }
        }
    }
}

#[cfg(test)]
mod pod_write_tests {
    //! The stored text of pods after the two writes every pod gets after its create: the
    //! scheduler's binding and the kubelet's status writes, pinned whole (managedFields
    //! included), as they were before those writes reused the old stored text.

    use serde_json::{json, Value};
    use skiff_core::registry;
    use skiff_store::sqlite::{SqliteOptions, SqliteStore};
    use skiff_store::ReadAt;

    use super::UpdateMode;
    use crate::server::{ApiOptions, ApiServer};

    /// The stored text of pod `name`, with what differs from run to run (uid, creation and
    /// managedFields times, the binding's condition time) made fixed: parsed, changed and
    /// written again, which keeps the order and form of the stored text.
    async fn stored(api: &ApiServer, name: &str) -> String {
        let pods = registry::lookup("", "v1", "pods").unwrap();
        let (kv, _) = api
            .store
            .get(&pods.key(Some("default"), name), ReadAt::Latest)
            .await
            .unwrap();
        let text = kv.unwrap().value;
        let mut v: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(
            serde_json::to_vec(&v).unwrap(),
            text,
            "stored text is compact"
        );
        v["metadata"]["uid"] = json!("UID");
        v["metadata"]["creationTimestamp"] = json!("CREATED");
        for e in v["metadata"]["managedFields"].as_array_mut().unwrap() {
            e["time"] = json!("TIME");
        }
        for c in v["status"]["conditions"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if c["lastTransitionTime"] != "2026-01-01T00:00:00Z" {
                c["lastTransitionTime"] = json!("BOUND");
            }
        }
        serde_json::to_string(&v).unwrap()
    }

    fn pod(name: &str, node_name: Option<&str>) -> Value {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default",
                "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d"},
                "annotations": {"note": "a \"quoted\" value"}},
            "spec": {"containers": [{
                "name": "web", "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 80}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}}
            }]}
        });
        if let Some(n) = node_name {
            p["spec"]["nodeName"] = json!(n);
        }
        p
    }

    /// The kubelet's status for the pod: running, then also ready.
    fn status(name: &str, ready: bool) -> Value {
        let t = "2026-01-01T00:00:00Z";
        let cond = |c: &str, s: bool| {
            json!({"type": c, "status": if s { "True" } else { "False" }, "lastProbeTime": null,
                "lastTransitionTime": t})
        };
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "status": {
                "phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.42.0.5",
                "podIPs": [{"ip": "10.42.0.5"}], "startTime": t,
                "conditions": [cond("Initialized", true), cond("Ready", ready),
                    cond("ContainersReady", ready), cond("PodScheduled", true)],
                "containerStatuses": [{"name": "web", "image": "nginx:1.27",
                    "imageID": "docker.io/library/nginx@sha256:0123", "ready": ready,
                    "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": t}}}]
            }
        })
    }

    /// The stored texts of a pod after its create, its binding and two status writes.
    async fn bind_and_run(api: &ApiServer, name: &str, node_name: Option<&str>) -> Vec<String> {
        let pods = registry::lookup("", "v1", "pods").unwrap();
        let body = pod(name, node_name);
        let created = api
            .create_object_as(pods, Some("default"), body, false, Some("kubectl"))
            .await
            .unwrap();
        let uid = skiff_core::meta::uid(&created).to_string();
        let mut texts = vec![stored(api, name).await];
        api.bind_pod_uid(Some("default"), name, Some(&uid), "node-1", false)
            .await
            .unwrap();
        texts.push(stored(api, name).await);
        for ready in [false, true] {
            let desired = status(name, ready);
            api.guaranteed_update_as(
                pods,
                Some("default"),
                name,
                UpdateMode::Status,
                false,
                Some("kubelet"),
                |_| Ok(desired.clone()),
            )
            .await
            .unwrap();
            texts.push(stored(api, name).await);
        }
        texts
    }

    /// The texts in `testdata/pod_writes.txt` are the ones the writes stored before they
    /// reused the old text (the general serializer, the whole pod defaulted again, and the
    /// managedFields diff over the whole metadata): one pod whose spec gets its node name as a
    /// new member, one whose spec had an empty one.
    #[tokio::test]
    async fn bound_and_running_pods_are_stored_as_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let api = ApiServer::new(store, ApiOptions::default());
        api.bootstrap().await.unwrap();
        let mut texts = bind_and_run(&api, "p", None).await;
        texts.extend(bind_and_run(&api, "q", Some("")).await);
        let want = include_str!("testdata/pod_writes.txt");
        let got = texts.join("\n") + "\n";
        if got != want {
            println!("{got}");
        }
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            assert_eq!(g, w, "stored text {i}");
        }
        assert_eq!(got.lines().count(), want.lines().count());
    }
}
