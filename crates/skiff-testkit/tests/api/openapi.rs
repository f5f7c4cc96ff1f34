//! OpenAPI v3 (`/openapi/v3`): the documents `kubectl explain` reads. Explain finds a
//! resource's kind through the `x-kubernetes-group-version-kind` of its path's operations, then
//! the component schema carrying that GVK, and walks fields through `$ref`, `allOf`, `items` and
//! `additionalProperties`; these tests do the same.

use kube::discovery::Discovery;
use serde_json::{json, Value};

use crate::{client, raw};

const M: &str = "openapi";

async fn get_json(c: &kube::Client, path: &str) -> Value {
    let r = raw(c, "GET", path, &[("accept", "application/json")], vec![]).await;
    assert_eq!(r.status, 200, "{path}");
    r.json()
}

/// The group-version's document, found through the index as kubectl does.
async fn document(c: &kube::Client, gv_path: &str) -> Value {
    let index = get_json(c, "/openapi/v3").await;
    let url = index["paths"][gv_path]["serverRelativeURL"]
        .as_str()
        .unwrap_or_else(|| panic!("{gv_path} in the index"));
    assert!(url.contains("?hash="), "{url}");
    get_json(c, url).await
}

/// The component schema carrying `gvk`, as explain's template looks it up.
fn schema_with_gvk<'a>(doc: &'a Value, gvk: &Value) -> Option<&'a Value> {
    doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|a| a.contains(gvk))
        })
}

/// Resolves a `$ref`, or the single `allOf` entry holding one, to its component schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let r = schema["$ref"]
        .as_str()
        .or_else(|| schema["allOf"][0]["$ref"].as_str());
    match r {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect("local ref");
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "{r} resolves");
            target
        }
        None => schema,
    }
}

/// Follows a field path (`spec.template.spec.containers`) from a kind's schema, through lists.
fn field<'a>(doc: &'a Value, kind: &'a Value, path: &str) -> &'a Value {
    let mut cur = kind;
    for name in path.split('.') {
        let mut s = resolve(doc, cur);
        while s["items"].is_object() {
            s = resolve(doc, &s["items"]);
        }
        cur = &s["properties"][name];
        assert!(cur.is_object(), "field {name} of {path}");
    }
    cur
}

#[tokio::test(flavor = "multi_thread")]
async fn every_discovered_kind_has_a_schema_explain_can_find() {
    let c = client(M).await;
    let d = Discovery::new(c.clone()).run().await.unwrap();
    let mut checked = 0;
    for group in d.groups() {
        for (ar, _) in group.recommended_resources() {
            let gv_path = if ar.group.is_empty() {
                format!("api/{}", ar.version)
            } else {
                format!("apis/{}/{}", ar.group, ar.version)
            };
            let doc = document(&c, &gv_path).await;
            // The operation's GVK, as explain's template reads it from the paths.
            let op_gvk = doc["paths"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(p, _)| p.ends_with(&format!("/{}", ar.plural)))
                .find_map(|(_, item)| item["get"]["x-kubernetes-group-version-kind"].as_object())
                .unwrap_or_else(|| panic!("a list path of {}", ar.plural));
            let gvk = json!({"group": ar.group, "version": ar.version, "kind": ar.kind});
            assert_eq!(Value::Object(op_gvk.clone()), gvk);
            let s = schema_with_gvk(&doc, &gvk).unwrap_or_else(|| panic!("schema of {gvk}"));
            assert!(s["description"].as_str().is_some_and(|d| !d.is_empty()));
            assert!(s["properties"]["metadata"].is_object(), "{gvk} metadata");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} kinds");
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_fields_resolve_to_upstream_types() {
    let c = client(M).await;
    let doc = document(&c, "apis/apps/v1").await;
    let d = schema_with_gvk(
        &doc,
        &json!({"group": "apps", "version": "v1", "kind": "Deployment"}),
    )
    .expect("Deployment");
    assert_eq!(
        d["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    // Upstream does not require metadata (k8s-openapi's Rust types do).
    assert!(!d["required"]
        .as_array()
        .is_some_and(|r| r.contains(&json!("metadata"))));

    let containers = field(&doc, d, "spec.template.spec.containers");
    assert_eq!(containers["type"], "array");
    assert_eq!(
        containers["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
    assert_eq!(
        field(&doc, d, "spec.template.spec.containers.image")["type"],
        "string"
    );
    let limits = field(&doc, d, "spec.template.spec.containers.resources.limits");
    let quantity = resolve(&doc, &limits["additionalProperties"]);
    assert_eq!(quantity["x-kubernetes-int-or-string"], true);
    assert_eq!(field(&doc, d, "spec.replicas")["type"], "integer");
    assert!(field(&doc, d, "spec.strategy")["description"]
        .as_str()
        .unwrap()
        .contains("deployment strategy"));
}

#[tokio::test(flavor = "multi_thread")]
async fn core_document_describes_services_and_subresource_kinds() {
    let c = client(M).await;
    let doc = document(&c, "api/v1").await;
    let svc = schema_with_gvk(
        &doc,
        &json!({"group": "", "version": "v1", "kind": "Service"}),
    )
    .expect("Service");
    let port = field(&doc, svc, "spec.ports.port");
    assert_eq!(port["type"], "integer");
    let target = resolve(&doc, field(&doc, svc, "spec.ports.targetPort"));
    assert_eq!(target["x-kubernetes-int-or-string"], true);
    // Subresources' kinds of other groups are described where they are served, as upstream.
    for gvk in [
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
        json!({"group": "policy", "version": "v1", "kind": "Eviction"}),
        json!({"group": "", "version": "v1", "kind": "PodList"}),
    ] {
        assert!(schema_with_gvk(&doc, &gvk).is_some(), "{gvk}");
    }
}
