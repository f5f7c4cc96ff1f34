//! OpenAPI v3 discovery: the `/openapi/v3` index and one document per group-version with the
//! operations of every served kind. kubectl reads these before `create -f`, `apply`, `edit`
//! and `replace`: a PATCH operation tagged with the kind's `x-kubernetes-group-version-kind`
//! and declaring the `fieldValidation` query parameter tells it that the server validates, so
//! it sends `fieldValidation=Strict` instead of validating on the client.
//!
//! `components.schemas` holds, as upstream's documents do, the schema of every kind served in
//! the group-version (and of the kinds of its subresources, such as `autoscaling/v1` `Scale`),
//! its `<Kind>List`, and everything they reference, named like upstream
//! (`io.k8s.api.apps.v1.Deployment`) and linked with `$ref: "#/components/schemas/<name>"`.
//! Each kind's schema carries `x-kubernetes-group-version-kind`, which is how `kubectl explain`
//! finds it. The schemas come from k8s-openapi's `schemars` implementations, converted to
//! OpenAPI 3.0 by schemars' `openapi3` settings, which wrap a `$ref` that has siblings (a field's
//! description) as `allOf: [{$ref}]`, as upstream does. k8s-openapi does not carry upstream's
//! list-type, patch-strategy or enum extensions, so neither do these schemas; the PATCH operations
//! therefore do not offer `application/strategic-merge-patch+json`, which would make kubectl
//! compute strategic patches from them.
//!
//! Everything is generated on the first OpenAPI request, not at start-up.
//!
//! CustomResourceDefinitions get a document per served group-version
//! (`/openapi/v3/apis/<group>/<version>`) with the same paths and operations, and the version's
//! structural schema as the kind's component schema (named like upstream,
//! `com.example.stable.v1.CronTab`), its `metadata` pointing at `ObjectMeta`. These documents
//! are made per catalog (once per change of the served CRDs), and their hashes in the index
//! change with them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::schemars::{self, generate::SchemaSettings, JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};
use skiff_core::registry::{self, Resource};

use crate::crds::Catalog;

/// A group-version's path in the index: `api/v1` or `apis/apps/v1`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

fn gvk(r: &Resource) -> Value {
    json!({"group": r.group, "version": r.version, "kind": r.kind})
}

fn ok_response() -> Value {
    json!({"200": {"description": "OK"}, "401": {"description": "Unauthorized"}})
}

fn write_params() -> Vec<Value> {
    vec![
        param("dryRun", "When present, indicates that modifications should not be persisted."),
        param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
        param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
        ),
    ]
}

fn operation(
    r: &Resource,
    action: &str,
    verb_id: &str,
    extra_params: Vec<Value>,
    body: Option<Value>,
) -> Value {
    let mut o = Map::new();
    o.insert("operationId".into(), json!(format!("{verb_id}{}", r.kind)));
    o.insert("parameters".into(), Value::Array(extra_params));
    if let Some(b) = body {
        o.insert("requestBody".into(), b);
    }
    o.insert("responses".into(), ok_response());
    o.insert("x-kubernetes-action".into(), json!(action));
    o.insert("x-kubernetes-group-version-kind".into(), gvk(r));
    Value::Object(o)
}

fn object_body(content_types: &[&str], schema: &Value) -> Value {
    let mut c = Map::new();
    for t in content_types {
        c.insert((*t).to_string(), json!({ "schema": schema }));
    }
    json!({"content": c, "required": true})
}

/// The paths of one resource (collection and item), with their operations.
fn resource_paths(r: &Resource, out: &mut BTreeMap<String, Value>) {
    let base = format!("/{}", gv_path(r.group, r.version));
    let (collection, mut scope_params) = if r.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", r.plural),
            vec![path_param("namespace")],
        )
    } else {
        (format!("{base}/{}", r.plural), vec![])
    };
    let item = format!("{collection}/{{name}}");
    // Create and replace take the kind itself; patches are objects of any shape.
    let kind_body = kind_schema(r.group, r.version, r.kind)
        .map(|k| schema_ref(&(k.name)()))
        .or_else(|| r.custom.map(|_| schema_ref(&custom_schema_name(r))))
        .unwrap_or_else(|| json!({"type": "object"}));
    let patch_body = json!({"type": "object"});
    let list_params = vec![
        param("labelSelector", "A selector to restrict the list of returned objects by their labels."),
        param("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
        param("limit", "limit is a maximum number of responses to return for a list call."),
        param("continue", "The continue option should be set when retrieving more results from the server."),
        param("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from."),
        param("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
        param("timeoutSeconds", "Timeout for the list/watch call."),
        param("watch", "Watch for changes to the described resources."),
    ];
    let mut coll = Map::new();
    coll.insert(
        "get".into(),
        operation(r, "list", "list", list_params, None),
    );
    coll.insert(
        "post".into(),
        operation(
            r,
            "post",
            "create",
            write_params(),
            Some(object_body(
                &["application/json", "application/yaml"],
                &kind_body,
            )),
        ),
    );
    coll.insert(
        "delete".into(),
        operation(r, "deletecollection", "deleteCollection", vec![], None),
    );
    coll.insert("parameters".into(), Value::Array(scope_params.clone()));
    out.insert(collection.clone(), Value::Object(coll));

    scope_params.insert(0, path_param("name"));
    let mut it = Map::new();
    it.insert("get".into(), operation(r, "get", "read", vec![], None));
    it.insert(
        "put".into(),
        operation(
            r,
            "put",
            "replace",
            write_params(),
            Some(object_body(
                &["application/json", "application/yaml"],
                &kind_body,
            )),
        ),
    );
    let mut patch_params = write_params();
    patch_params.push(param(
        "force",
        "Force is going to \"force\" Apply requests.",
    ));
    it.insert(
        "patch".into(),
        operation(
            r,
            "patch",
            "patch",
            patch_params,
            Some(object_body(
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                ],
                &patch_body,
            )),
        ),
    );
    it.insert(
        "delete".into(),
        operation(r, "delete", "delete", vec![], None),
    );
    it.insert("parameters".into(), Value::Array(scope_params.clone()));
    out.insert(item.clone(), Value::Object(it));

    for s in r.subresources {
        let mut sub = Map::new();
        let target = Resource {
            group: if s.group.is_empty() { r.group } else { s.group },
            version: if s.version.is_empty() {
                r.version
            } else {
                s.version
            },
            kind: s.kind,
            ..*r
        };
        for verb in s.verbs {
            let (method, action) = match *verb {
                "get" => ("get", "get"),
                "update" => ("put", "put"),
                "patch" => ("patch", "patch"),
                "create" => ("post", "post"),
                _ => continue,
            };
            let params = if method == "get" {
                vec![]
            } else {
                write_params()
            };
            sub.insert(
                method.into(),
                operation(&target, action, method, params, None),
            );
        }
        sub.insert("parameters".into(), Value::Array(scope_params.clone()));
        out.insert(format!("{item}/{}", s.name), Value::Object(sub));
    }
}

/// A kind whose schema this server can describe.
pub(crate) struct KindSchema {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    /// Upstream's definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub(crate) name: fn() -> std::borrow::Cow<'static, str>,
    /// Adds the kind's schema (and what it references) to the generator.
    pub(crate) generate: fn(&mut SchemaGenerator) -> schemars::Schema,
}

macro_rules! kinds {
    ($($t:ty),* $(,)?) => {
        &[$(KindSchema {
            group: <$t as k8s_openapi::Resource>::GROUP,
            version: <$t as k8s_openapi::Resource>::VERSION,
            kind: <$t as k8s_openapi::Resource>::KIND,
            name: <$t as JsonSchema>::schema_name,
            generate: SchemaGenerator::subschema_for::<$t>,
        }),*]
    };
}

/// Every kind served, or named by a subresource, with its k8s-openapi type (field validation
/// compiles the same schemas: `crate::fieldvalidation`).
pub(crate) const KINDS: &[KindSchema] = {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v1 as autoscaling, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        events::v1 as events, networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
        scheduling::v1 as scheduling, storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
    kinds![
        core::Binding,
        core::ConfigMap,
        core::Endpoints,
        core::Event,
        core::LimitRange,
        core::Namespace,
        core::Node,
        core::PersistentVolume,
        core::PersistentVolumeClaim,
        core::Pod,
        core::ReplicationController,
        core::ResourceQuota,
        core::Secret,
        core::Service,
        core::ServiceAccount,
        apiregistration::APIService,
        apps::ControllerRevision,
        apps::DaemonSet,
        apps::Deployment,
        apps::ReplicaSet,
        apps::StatefulSet,
        autoscaling::Scale,
        batch::CronJob,
        batch::Job,
        coordination::Lease,
        discovery::EndpointSlice,
        events::Event,
        networking::Ingress,
        networking::IngressClass,
        networking::NetworkPolicy,
        policy::Eviction,
        policy::PodDisruptionBudget,
        rbac::ClusterRole,
        rbac::ClusterRoleBinding,
        rbac::Role,
        rbac::RoleBinding,
        scheduling::PriorityClass,
        storage::StorageClass,
        apiextensions::CustomResourceDefinition,
    ]
};

fn kind_schema(group: &str, version: &str, kind: &str) -> Option<&'static KindSchema> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn gvk_extension(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "version": version, "kind": kind}])
}

/// The schema of a kind's list, which k8s-openapi does not describe: upstream's `<Kind>List`.
fn list_schema(k: &KindSchema) -> Value {
    json!({
        "description": format!("{}List is a list of {} objects.", k.kind, k.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string"
            },
            "items": {
                "description": format!("Items is the list of {} objects.", k.kind),
                "type": "array",
                "items": schema_ref(&(k.name)())
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string"
            },
            "metadata": {
                "allOf": [schema_ref(&<k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta as JsonSchema>::schema_name())],
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
            }
        },
        "x-kubernetes-group-version-kind": gvk_extension(k.group, k.version, &format!("{}List", k.kind)),
    })
}

/// `components.schemas` of one group-version: its kinds (and their lists), the kinds of their
/// subresources, and everything these reference.
fn component_schemas(resources: &[&Resource]) -> Map<String, Value> {
    let mut generator: SchemaGenerator = SchemaSettings::openapi3().into_generator();
    let mut kinds: Vec<&KindSchema> = Vec::new();
    let mut lists: Vec<&KindSchema> = Vec::new();
    for r in resources {
        if let Some(k) = kind_schema(r.group, r.version, r.kind) {
            lists.push(k);
            kinds.push(k);
        }
        for s in r.subresources {
            let group = if s.group.is_empty() { r.group } else { s.group };
            let version = if s.version.is_empty() {
                r.version
            } else {
                s.version
            };
            if let Some(k) = kind_schema(group, version, s.kind) {
                kinds.push(k);
            }
        }
    }
    for k in &kinds {
        (k.generate)(&mut generator);
    }
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta>();
    let mut schemas = generator.take_definitions(true);
    for k in &kinds {
        if let Some(Value::Object(o)) = schemas.get_mut((k.name)().as_ref()) {
            // k8s-openapi requires `metadata` because its Rust field is not optional; upstream
            // does not, and `kubectl explain` would print it as `-required-`.
            if let Some(Value::Array(required)) = o.get_mut("required") {
                required.retain(|f| f != "metadata");
                if required.is_empty() {
                    o.remove("required");
                }
            }
            o.insert(
                "x-kubernetes-group-version-kind".into(),
                gvk_extension(k.group, k.version, k.kind),
            );
        }
    }
    for k in &lists {
        schemas.insert(format!("{}List", (k.name)()), list_schema(k));
    }
    schemas
}

struct Docs {
    index: Value,
    by_path: BTreeMap<String, Box<[u8]>>,
}

fn hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

/// Generates the index and every group-version's document.
fn generate() -> Docs {
    let started = std::time::Instant::now();
    let mut gvs: Vec<(&str, &str)> = vec![("", "v1")];
    gvs.extend(registry::groups());
    let mut by_path = BTreeMap::new();
    let mut index = Map::new();
    for (g, v) in gvs {
        let resources: Vec<&Resource> = registry::resources_in(g, v).collect();
        let mut paths = BTreeMap::new();
        for r in &resources {
            resource_paths(r, &mut paths);
        }
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": crate::KUBERNETES_VERSION},
            "paths": paths,
            "components": {"schemas": component_schemas(&resources)}
        });
        let bytes = serde_json::to_vec(&doc).expect("json");
        let p = gv_path(g, v);
        index.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&bytes))}),
        );
        by_path.insert(p, bytes.into_boxed_slice());
    }
    tracing::info!(
        documents = by_path.len(),
        bytes = by_path.values().map(|b| b.len()).sum::<usize>(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "generated OpenAPI v3 documents"
    );
    Docs {
        index: json!({"paths": index}),
        by_path,
    }
}

fn docs() -> &'static Docs {
    static DOCS: OnceLock<Docs> = OnceLock::new();
    DOCS.get_or_init(generate)
}

/// `GET /openapi/v3`.
pub fn index() -> &'static Value {
    &docs().index
}

/// `GET /openapi/v3/<gv path>`.
pub fn document(path: &str) -> Option<&'static [u8]> {
    docs().by_path.get(path.trim_matches('/')).map(|b| &**b)
}

/// `GET /openapi/v3` with the custom group-versions of `custom`.
pub fn index_with(custom: &Catalog) -> Value {
    let mut idx = index().clone();
    let docs = custom.openapi.get_or_init(|| custom_docs(custom));
    if let Some(paths) = idx.get_mut("paths").and_then(Value::as_object_mut) {
        for (p, bytes) in &docs.by_path {
            paths.entry(p.clone()).or_insert_with(
                || json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(bytes))}),
            );
        }
    }
    idx
}

/// `GET /openapi/v3/<gv path>`, built-in or custom.
pub fn document_with(custom: &Catalog, path: &str) -> Option<bytes::Bytes> {
    if let Some(d) = document(path) {
        return Some(bytes::Bytes::from_static(d));
    }
    let docs = custom.openapi.get_or_init(|| custom_docs(custom));
    docs.by_path.get(path.trim_matches('/')).cloned()
}

/// The OpenAPI documents of the custom group-versions of one catalog.
pub struct CustomDocs {
    by_path: BTreeMap<String, bytes::Bytes>,
}

/// Upstream's definition name of a custom kind: the group reversed, the version, the kind
/// (`com.example.stable.v1.CronTab`).
pub(crate) fn custom_schema_name(r: &Resource) -> String {
    let mut parts: Vec<&str> = r.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), r.version, r.kind)
}

const D_API_VERSION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const D_KIND: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const D_METADATA: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// A custom kind's component schema: its structural schema with `apiVersion`, `kind` and
/// `metadata` (a reference to `ObjectMeta`) declared, tagged with its GVK.
fn custom_kind_schema(r: &Resource) -> Value {
    let schema = r.custom.map(|c| c.schema.clone()).unwrap_or(Value::Null);
    let mut out = match schema {
        Value::Object(o) => o,
        _ => {
            let mut o = Map::new();
            o.insert("type".into(), json!("object"));
            o.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            o
        }
    };
    let mut props = Map::new();
    props.insert(
        "apiVersion".into(),
        json!({"description": D_API_VERSION, "type": "string"}),
    );
    props.insert(
        "kind".into(),
        json!({"description": D_KIND, "type": "string"}),
    );
    props.insert(
        "metadata".into(),
        json!({"allOf": [schema_ref(&<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta as JsonSchema>::schema_name())], "description": D_METADATA}),
    );
    if let Some(Value::Object(p)) = out.remove("properties") {
        for (k, v) in p {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                props.insert(k, v);
            }
        }
    }
    out.insert("properties".into(), Value::Object(props));
    out.insert(
        "x-kubernetes-group-version-kind".into(),
        gvk_extension(r.group, r.version, r.kind),
    );
    Value::Object(out)
}

fn custom_list_schema(r: &Resource) -> Value {
    json!({
        "description": format!("{} is a list of {}", r.list_kind(), r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": D_API_VERSION, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", r.plural),
                "type": "array",
                "items": schema_ref(&custom_schema_name(r))
            },
            "kind": {"description": D_KIND, "type": "string"},
            "metadata": {
                "allOf": [schema_ref(&<k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta as JsonSchema>::schema_name())],
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
            }
        },
        "x-kubernetes-group-version-kind": gvk_extension(r.group, r.version, &r.list_kind()),
    })
}

fn custom_docs(custom: &Catalog) -> CustomDocs {
    let mut by_path = BTreeMap::new();
    for (g, vs) in custom.group_versions() {
        for v in vs {
            let resources: Vec<&Resource> = custom.resources_in(g, v).collect();
            let mut paths = BTreeMap::new();
            for r in &resources {
                resource_paths(r, &mut paths);
            }
            // Scale (for scale subresources) and ListMeta, then ObjectMeta and what it needs.
            let mut schemas = component_schemas(&resources);
            let mut generator: SchemaGenerator = SchemaSettings::openapi3().into_generator();
            generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
            for (k, s) in generator.take_definitions(true) {
                schemas.entry(k).or_insert(s);
            }
            for r in &resources {
                schemas.insert(custom_schema_name(r), custom_kind_schema(r));
                schemas.insert(
                    format!("{}List", custom_schema_name(r)),
                    custom_list_schema(r),
                );
            }
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
                "paths": paths,
                "components": {"schemas": schemas}
            });
            let bytes = serde_json::to_vec(&doc).expect("json");
            by_path.insert(gv_path(g, v), bytes::Bytes::from(bytes));
        }
    }
    CustomDocs { by_path }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn patch_operations_declare_field_validation_and_gvk() {
        let doc: Value = serde_json::from_slice(document("apis/apps/v1").unwrap()).unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
        let idx = index();
        assert!(idx["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/api/v1?hash="));
        assert!(document("apis/nope/v1").is_none());
        let core: Value = serde_json::from_slice(document("api/v1").unwrap()).unwrap();
        assert!(core["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
        assert_eq!(
            core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
                ["x-kubernetes-group-version-kind"]["group"],
            "policy"
        );
    }

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r);
                    assert_eq!(o.len(), 1, "a $ref with siblings: {v}");
                }
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_kind_has_a_schema_and_every_ref_resolves() {
        let mut gvs: Vec<(&str, &str)> = vec![("", "v1")];
        gvs.extend(registry::groups());
        for (g, v) in gvs {
            let doc: Value = serde_json::from_slice(document(&gv_path(g, v)).unwrap()).unwrap();
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            for r in registry::resources_in(g, v) {
                for kind in [r.kind.to_string(), format!("{}List", r.kind)] {
                    let gvk = json!({"group": g, "version": v, "kind": kind});
                    assert!(
                        schemas
                            .values()
                            .any(|s| s["x-kubernetes-group-version-kind"]
                                .as_array()
                                .is_some_and(|a| a.contains(&gvk))),
                        "no schema for {gvk}"
                    );
                }
            }
            let mut found = Vec::new();
            refs(&doc, &mut found);
            for r in found {
                let name = r.strip_prefix("#/components/schemas/").unwrap();
                assert!(schemas.contains_key(name), "{r} does not resolve");
            }
        }
    }

    #[test]
    fn schemas_are_named_and_linked_like_upstream() {
        let doc: Value = serde_json::from_slice(document("apis/apps/v1").unwrap()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let d = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            d["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        assert_eq!(
            d["properties"]["metadata"]["allOf"],
            json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}])
        );
        assert!(d["properties"]["metadata"]["description"]
            .as_str()
            .unwrap()
            .starts_with("Standard object's metadata."));
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["type"], "array");
        assert_eq!(
            containers["items"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
        assert_eq!(
            schemas["io.k8s.api.core.v1.Container"]["properties"]["image"]["type"],
            "string"
        );
        assert_eq!(
            schemas["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"][0]
                ["kind"],
            "Scale"
        );
        let post = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.Deployment"
        );
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert!(patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_none());
    }

    /// A catalog serving one CRD (`widgets.example.com`, v1 and v1beta1, v1 scalable).
    pub(crate) fn widget_catalog() -> Catalog {
        let mut crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "description": "The spec.", "properties": {"replicas": {"type": "integer"}}}}}}}]}
        });
        skiff_core::crd::default_crd(&mut crd);
        Catalog {
            resources: skiff_core::crd::intern(&crd),
            ..Default::default()
        }
    }

    #[test]
    fn custom_documents_resolve_and_describe_the_kind() {
        let c = widget_catalog();
        let idx = index_with(&c);
        assert!(idx["paths"]["apis/example.com/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/apis/example.com/v1?hash="));
        assert!(idx["paths"]["apis/apps/v1"].is_object(), "built-ins stay");
        for gv in ["apis/example.com/v1", "apis/example.com/v1beta1"] {
            let doc: Value = serde_json::from_slice(&document_with(&c, gv).unwrap()).unwrap();
            let mut found = Vec::new();
            refs(&doc, &mut found);
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            for r in found {
                let name = r.strip_prefix("#/components/schemas/").unwrap();
                assert!(schemas.contains_key(name), "{gv}: {r} does not resolve");
            }
        }
        let doc: Value =
            serde_json::from_slice(&document_with(&c, "apis/example.com/v1").unwrap()).unwrap();
        let w = &doc["components"]["schemas"]["com.example.v1.Widget"];
        assert_eq!(w["properties"]["spec"]["description"], "The spec.");
        assert_eq!(w["properties"]["kind"]["type"], "string");
        assert_eq!(
            doc["components"]["schemas"]["com.example.v1.WidgetList"]
                ["x-kubernetes-group-version-kind"][0]["kind"],
            "WidgetList"
        );
        let scale =
            &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/scale"];
        assert_eq!(
            scale["put"]["x-kubernetes-group-version-kind"]["kind"],
            "Scale"
        );
        assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
        let post = &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets"]["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/com.example.v1.Widget"
        );
        assert!(document_with(&c, "apis/example.com/v2").is_none());
        assert!(document_with(&Catalog::default(), "apis/example.com/v1").is_none());
    }
}
