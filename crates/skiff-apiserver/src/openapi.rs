//! OpenAPI v3 discovery: the `/openapi/v3` index and one document per group-version with the
//! operations of every served kind. kubectl reads these before `create -f`, `apply`, `edit`
//! and `replace`: a PATCH operation tagged with the kind's `x-kubernetes-group-version-kind`
//! and declaring the `fieldValidation` query parameter tells it that the server validates, so
//! it sends `fieldValidation=Strict` instead of validating on the client.
//!
//! Component schemas (for `kubectl explain`) are not part of this document yet.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use skiff_core::registry::{self, Resource};

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

fn object_body(content_types: &[&str]) -> Value {
    let mut c = Map::new();
    for t in content_types {
        c.insert((*t).to_string(), json!({"schema": {"type": "object"}}));
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
            Some(object_body(&["application/json", "application/yaml"])),
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
            Some(object_body(&["application/json", "application/yaml"])),
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
            Some(object_body(&[
                "application/json-patch+json",
                "application/merge-patch+json",
            ])),
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

struct Docs {
    index: Value,
    by_path: BTreeMap<String, Vec<u8>>,
}

fn hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

fn docs() -> &'static Docs {
    static DOCS: OnceLock<Docs> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut gvs: Vec<(&str, &str)> = vec![("", "v1")];
        gvs.extend(registry::groups());
        let mut by_path = BTreeMap::new();
        let mut index = Map::new();
        for (g, v) in gvs {
            let mut paths = BTreeMap::new();
            for r in registry::resources_in(g, v) {
                resource_paths(r, &mut paths);
            }
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": crate::KUBERNETES_VERSION},
                "paths": paths,
                "components": {"schemas": {}}
            });
            let bytes = serde_json::to_vec(&doc).expect("json");
            let p = gv_path(g, v);
            index.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&bytes))}),
            );
            by_path.insert(p, bytes);
        }
        Docs {
            index: json!({"paths": index}),
            by_path,
        }
    })
}

/// `GET /openapi/v3`.
pub fn index() -> &'static Value {
    &docs().index
}

/// `GET /openapi/v3/<gv path>`.
pub fn document(path: &str) -> Option<&'static [u8]> {
    docs()
        .by_path
        .get(path.trim_matches('/'))
        .map(Vec::as_slice)
}

#[cfg(test)]
mod tests {
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
}
