//! CustomResourceDefinitions: a CRD is served within a second (routing, discovery, OpenAPI),
//! its objects get the generic storage semantics (CRUD, selectors, patches, apply, status and
//! scale subresources, several versions), its schema prunes, defaults and validates them, its
//! printer columns make the Table, deleting it deletes its objects, and a restarted server
//! serves it again.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::{json, Value};
use skiff_testkit::TestServer;

use crate::{api_error, client, eventually, expect_status, from_json, namespace, raw};

const M: &str = "crd";

/// A CRD `<plural>.<group>` with two served versions (v1 stores; v1beta1 has no
/// subresources), a schema with constraints and defaults, printer columns, and status and
/// scale subresources on v1.
fn crd(group: &str, plural: &str, kind: &str, scope: &str) -> CustomResourceDefinition {
    from_json(json!({
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind,
                      "shortNames": [format!("{}x", &plural[..2])], "categories": ["all"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
                 "additionalPrinterColumns": [
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Note", "type": "string", "jsonPath": ".spec.note", "priority": 1}],
                 "schema": {"openAPIV3Schema": schema()}},
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": schema()}}
            ]
        }
    }))
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["color"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "size": {"type": "string", "default": "M", "maxLength": 2},
                    "note": {"type": "string"},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            },
            "status": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "selector": {"type": "string"},
                    "conditions": {"type": "array", "items": {"type": "object", "properties": {
                        "type": {"type": "string"}, "status": {"type": "string"}}}}
                }
            }
        }
    })
}

/// Creates the CRD and waits until it is served; returns how long that took.
async fn establish(c: &kube::Client, crd: &CustomResourceDefinition) -> Duration {
    let api: Api<CustomResourceDefinition> = Api::all(c.clone());
    let start = Instant::now();
    api.create(&PostParams::default(), crd).await.unwrap();
    let group = crd.spec.group.clone();
    let plural = crd.spec.names.plural.clone();
    eventually(5, "the CRD to be served", || {
        let c = c.clone();
        let path = format!("/apis/{group}/v1/{plural}");
        async move { (raw(&c, "GET", &path, &[], vec![]).await.status == 200).then_some(()) }
    })
    .await;
    start.elapsed()
}

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn obj(name: &str, spec: Value) -> DynamicObject {
    from_json(json!({"metadata": {"name": name}, "spec": spec}))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crd_is_served_within_a_second_and_reports_its_conditions() {
    let c = client(M).await;
    let took = establish(
        &c,
        &crd("served.skiff.dev", "gizmos", "Gizmo", "Namespaced"),
    )
    .await;
    eprintln!("crd served after {took:?}");
    assert!(took < Duration::from_secs(1), "served after {took:?}");

    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let got = eventually(5, "Established", || {
        let crds = crds.clone();
        async move {
            let g = crds.get("gizmos.served.skiff.dev").await.ok()?;
            let st = g.status.clone()?;
            let conds = st.conditions.clone()?;
            conds
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(g)
        }
    })
    .await;
    let st = got.status.unwrap();
    let conds = st.conditions.unwrap();
    let names = conds
        .iter()
        .find(|c| c.type_ == "NamesAccepted")
        .expect("NamesAccepted");
    assert_eq!(
        (names.status.as_str(), names.reason.as_deref()),
        ("True", Some("NoConflicts"))
    );
    let accepted = st.accepted_names.expect("acceptedNames");
    assert_eq!(accepted.kind, "Gizmo");
    assert_eq!(accepted.list_kind.as_deref(), Some("GizmoList"));
    assert_eq!(st.stored_versions, Some(vec!["v1".to_string()]));
    // Defaulted names.
    assert_eq!(got.spec.names.singular.as_deref(), Some("gizmo"));

    // Legacy discovery: the group with both versions (v1 preferred), the resources with
    // their short names, categories and subresources.
    let g = raw(&c, "GET", "/apis/served.skiff.dev", &[], vec![])
        .await
        .json();
    assert_eq!(g["preferredVersion"]["version"], "v1");
    assert_eq!(g["versions"].as_array().unwrap().len(), 2);
    let l = raw(&c, "GET", "/apis/served.skiff.dev/v1", &[], vec![])
        .await
        .json();
    let rs = l["resources"].as_array().unwrap();
    let main = rs.iter().find(|r| r["name"] == "gizmos").unwrap();
    assert_eq!(main["shortNames"], json!(["gix"]));
    assert_eq!(main["categories"], json!(["all"]));
    assert_eq!(main["namespaced"], true);
    let scale = rs.iter().find(|r| r["name"] == "gizmos/scale").unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert!(rs.iter().any(|r| r["name"] == "gizmos/status"));
    let groups = raw(&c, "GET", "/apis", &[], vec![]).await.json();
    assert!(groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "served.skiff.dev"));
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregated_discovery_and_openapi_follow_crds() {
    // A server of its own: the shared one's discovery changes whenever another test of this
    // module creates a CRD, which would break the unchanged-ETag step below.
    let srv = TestServer::start().await.unwrap();
    let c = srv.client().await.unwrap();
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let before = raw(&c, "GET", "/apis", &[("Accept", accept)], vec![]).await;
    let etag_before = before.headers["etag"].to_str().unwrap().to_string();
    // Unchanged: a conditional request is answered 304.
    let again = raw(
        &c,
        "GET",
        "/apis",
        &[("Accept", accept), ("If-None-Match", &etag_before)],
        vec![],
    )
    .await;
    assert_eq!(again.status, 304);
    let index_before = raw(&c, "GET", "/openapi/v3", &[], vec![]).await.json();

    establish(
        &c,
        &crd("agg.skiff.dev", "doohickeys", "Doohickey", "Cluster"),
    )
    .await;
    let after = raw(&c, "GET", "/apis", &[("Accept", accept)], vec![]).await;
    assert_ne!(after.headers["etag"].to_str().unwrap(), etag_before);
    let doc = after.json();
    let item = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "agg.skiff.dev")
        .expect("group in aggregated discovery")
        .clone();
    let v1 = &item["versions"][0];
    assert_eq!(v1["version"], "v1");
    let r = &v1["resources"][0];
    assert_eq!(r["resource"], "doohickeys");
    assert_eq!(r["scope"], "Cluster");
    assert_eq!(r["shortNames"], json!(["dox"]));
    let subs: Vec<&str> = r["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    assert_eq!(subs, vec!["scale", "status"]);

    // OpenAPI v3: a document per group-version, the schema tagged with the GVK and its
    // metadata pointing at ObjectMeta, PATCH declaring fieldValidation.
    let index = raw(&c, "GET", "/openapi/v3", &[], vec![]).await.json();
    assert!(index_before["paths"].get("apis/agg.skiff.dev/v1").is_none());
    let url = index["paths"]["apis/agg.skiff.dev/v1"]["serverRelativeURL"]
        .as_str()
        .expect("index entry")
        .to_string();
    let d = raw(&c, "GET", &url, &[], vec![]).await.json();
    let s = &d["components"]["schemas"]["dev.skiff.agg.v1.Doohickey"];
    assert_eq!(
        s["x-kubernetes-group-version-kind"],
        json!([{"group": "agg.skiff.dev", "version": "v1", "kind": "Doohickey"}])
    );
    assert_eq!(
        s["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        s["properties"]["spec"]["properties"]["color"]["enum"],
        json!(["red", "blue"])
    );
    assert!(d["components"]["schemas"]
        .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        .is_some());
    let patch = &d["paths"]["/apis/agg.skiff.dev/v1/doohickeys/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Doohickey"
    );
    assert!(patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "fieldValidation"));
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaced_objects_crud_selectors_patches_and_apply() {
    let c = client(M).await;
    establish(
        &c,
        &crd("crud.skiff.dev", "widgets", "Widget", "Namespaced"),
    )
    .await;
    let ns = namespace(&c, "crd-crud").await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        c.clone(),
        &ns,
        &ar("crud.skiff.dev", "v1", "Widget", "widgets"),
    );
    let mut a = obj("a", json!({"color": "red", "replicas": 2}));
    a.metadata.labels = Some([("tier".to_string(), "front".to_string())].into());
    let created = api.create(&PostParams::default(), &a).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.data["spec"]["size"], "M", "defaulted");
    api.create(&PostParams::default(), &obj("b", json!({"color": "blue"})))
        .await
        .unwrap();
    // Get, list with label and field selectors.
    let got = api.get("a").await.unwrap();
    assert_eq!(got.data["spec"]["replicas"], 2);
    let names = |l: kube::core::ObjectList<DynamicObject>| {
        l.items
            .into_iter()
            .map(|o| o.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    let l = api
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert_eq!(names(l), vec!["a"]);
    let l = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(l), vec!["b"]);
    let all: Api<DynamicObject> =
        Api::all_with(c.clone(), &ar("crud.skiff.dev", "v1", "Widget", "widgets"));
    let l = all
        .list(&ListParams::default().fields(&format!("metadata.namespace={ns}")))
        .await
        .unwrap();
    assert_eq!(names(l).len(), 2);

    // Update (PUT) and patches; spec changes bump the generation.
    let mut upd = got.clone();
    upd.data["spec"]["note"] = json!("hello");
    let upd = api
        .replace("a", &PostParams::default(), &upd)
        .await
        .unwrap();
    assert_eq!(upd.metadata.generation, Some(2));
    let p = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "blue"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.data["spec"]["color"], "blue");
    let p = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(
                    json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(p.data["spec"]["replicas"], 4);
    // Strategic merge patch is for built-in kinds only.
    let smp = raw(
        &c,
        "PATCH",
        &format!("/apis/crud.skiff.dev/v1/namespaces/{ns}/widgets/a"),
        &[("Content-Type", "application/strategic-merge-patch+json")],
        br#"{"spec":{"replicas":5}}"#.to_vec(),
    )
    .await;
    assert_eq!(smp.status, 415);
    assert_eq!(smp.json()["reason"], "UnsupportedMediaType");
    // Server-side apply creates and updates.
    let applied = api
        .patch(
            "c",
            &PatchParams::apply("tester"),
            &Patch::Apply(json!({"apiVersion": "crud.skiff.dev/v1", "kind": "Widget",
                "metadata": {"name": "c"}, "spec": {"color": "red", "extra": {"free": {"form": 1}}}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data["spec"]["extra"]["free"]["form"], 1);
    assert_eq!(applied.data["spec"]["replicas"], 1);
    let applied = api
        .patch(
            "c",
            &PatchParams::apply("tester"),
            &Patch::Apply(json!({"apiVersion": "crud.skiff.dev/v1", "kind": "Widget",
                "metadata": {"name": "c"}, "spec": {"color": "blue"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data["spec"]["color"], "blue");
    assert!(
        applied.data["spec"].pointer("/extra/free/form").is_none(),
        "dropped by its manager"
    );
    // A field the schema does not declare fails an apply, as structured-merge-diff does.
    let s = api_error(
        api.patch(
            "c",
            &PatchParams::apply("tester"),
            &Patch::Apply(json!({"apiVersion": "crud.skiff.dev/v1", "kind": "Widget",
                "metadata": {"name": "c"}, "spec": {"color": "blue", "colour": "blue"}})),
        )
        .await,
    );
    assert_eq!(s.code, 500);
    assert_eq!(
        s.message,
        // The configuration's namespace (none here), as upstream names the patch object.
        "failed to create typed patch object (/c; crud.skiff.dev/v1, Kind=Widget): .spec.colour: field not declared in schema"
    );
    // Delete one, then the collection.
    api.delete("a", &DeleteParams::default()).await.unwrap();
    expect_status(api.get("a").await, 404, "NotFound");
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    assert!(api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_scoped_objects_and_several_versions() {
    let c = client(M).await;
    establish(&c, &crd("multi.skiff.dev", "gadgets", "Gadget", "Cluster")).await;
    let v1: Api<DynamicObject> =
        Api::all_with(c.clone(), &ar("multi.skiff.dev", "v1", "Gadget", "gadgets"));
    let beta: Api<DynamicObject> = Api::all_with(
        c.clone(),
        &ar("multi.skiff.dev", "v1beta1", "Gadget", "gadgets"),
    );
    let created = v1
        .create(&PostParams::default(), &obj("g1", json!({"color": "red"})))
        .await
        .unwrap();
    assert!(created.metadata.namespace.is_none());
    // Read in the other version: the same object, apiVersion rewritten.
    let b = beta.get("g1").await.unwrap();
    assert_eq!(
        b.types.as_ref().unwrap().api_version,
        "multi.skiff.dev/v1beta1"
    );
    assert_eq!(b.data["spec"]["color"], "red");
    let raw_b = raw(
        &c,
        "GET",
        "/apis/multi.skiff.dev/v1beta1/gadgets",
        &[],
        vec![],
    )
    .await
    .json();
    assert_eq!(raw_b["apiVersion"], "multi.skiff.dev/v1beta1");
    assert_eq!(raw_b["items"][0]["apiVersion"], "multi.skiff.dev/v1beta1");
    // Written in the other version, stored in the storage version.
    beta.create(&PostParams::default(), &obj("g2", json!({"color": "blue"})))
        .await
        .unwrap();
    let g2 = v1.get("g2").await.unwrap();
    assert_eq!(g2.types.as_ref().unwrap().api_version, "multi.skiff.dev/v1");
    // v1beta1 has no status subresource: status is written with the object.
    let p = beta
        .patch(
            "g2",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(p.data["status"]["replicas"], 3);
    expect_status(
        raw_status(&c, "/apis/multi.skiff.dev/v1beta1/gadgets/g2/status").await,
        404,
        "NotFound",
    );
    v1.delete("g1", &DeleteParams::default()).await.unwrap();
    v1.delete("g2", &DeleteParams::default()).await.unwrap();
}

async fn raw_status(c: &kube::Client, path: &str) -> Result<Value, kube::Error> {
    let r = raw(c, "GET", path, &[], vec![]).await;
    if r.status.is_success() {
        Ok(r.json())
    } else {
        Err(kube::Error::Api(Box::new(
            serde_json::from_value(r.json()).expect("status"),
        )))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schema_rejects_prunes_and_defaults() {
    let c = client(M).await;
    establish(
        &c,
        &crd("schema.skiff.dev", "things", "Thing", "Namespaced"),
    )
    .await;
    let ns = namespace(&c, "crd-schema").await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        c.clone(),
        &ns,
        &ar("schema.skiff.dev", "v1", "Thing", "things"),
    );
    let s = expect_status(
        api.create(
            &PostParams::default(),
            &obj("bad", json!({"color": "red", "replicas": "three"})),
        )
        .await,
        422,
        "Invalid",
    );
    assert_eq!(
        s.message,
        "Thing.schema.skiff.dev \"bad\" is invalid: spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
    );
    let d = s.details.expect("details");
    assert_eq!(d.causes[0].field, "spec.replicas");
    let s = expect_status(
        api.create(
            &PostParams::default(),
            &obj("bad", json!({"color": "green", "size": "XXL"})),
        )
        .await,
        422,
        "Invalid",
    );
    assert!(
        s.message.contains(
            "spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\""
        ),
        "{}",
        s.message
    );
    assert!(s
        .message
        .contains("spec.size: Too long: may not be more than 2 bytes"));
    let s = expect_status(
        api.create(&PostParams::default(), &obj("bad", json!({})))
            .await,
        422,
        "Invalid",
    );
    assert!(
        s.message.ends_with("spec.color: Required value"),
        "{}",
        s.message
    );
    // Nothing was written.
    expect_status(api.get("bad").await, 404, "NotFound");

    // Unknown fields are pruned (preserved under x-kubernetes-preserve-unknown-fields);
    // defaults fill what is missing.
    let t = api
        .create(
            &PostParams::default(),
            &obj(
                "good",
                json!({"color": "red", "bogus": 1, "extra": {"kept": true}}),
            ),
        )
        .await
        .unwrap();
    assert!(t.data["spec"].get("bogus").is_none());
    assert_eq!(t.data["spec"]["extra"]["kept"], true);
    assert_eq!(t.data["spec"]["replicas"], 1);
    assert_eq!(t.data["spec"]["size"], "M");
    // Under fieldValidation=Strict unknown fields fail the request instead.
    let path = format!("/apis/schema.skiff.dev/v1/namespaces/{ns}/things");
    let r = raw(
        &c,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        &[("Content-Type", "application/json")],
        serde_json::to_vec(
            &json!({"apiVersion": "schema.skiff.dev/v1", "kind": "Thing",
            "metadata": {"name": "strict"}, "spec": {"color": "red", "bogus": 1}}),
        )
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Thing in version \"v1\" cannot be handled as a Thing: strict decoding error: unknown field \"spec.bogus\""
    );
    let r = raw(
        &c,
        "PATCH",
        &format!("{path}/good?fieldValidation=Strict"),
        &[("Content-Type", "application/merge-patch+json")],
        br#"{"spec":{"bogus":2}}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .ends_with("strict decoding error: unknown field \"spec.bogus\""));
    // Updates and patches are validated too.
    let s = expect_status(
        api.patch(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await,
        422,
        "Invalid",
    );
    assert!(s
        .message
        .contains("spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"));
    let t = api.get("good").await.unwrap();
    assert_eq!(t.data["spec"]["replicas"], 1, "unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_scale_subresources() {
    let c = client(M).await;
    establish(
        &c,
        &crd("sub.skiff.dev", "sprockets", "Sprocket", "Namespaced"),
    )
    .await;
    let ns = namespace(&c, "crd-sub").await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        c.clone(),
        &ns,
        &ar("sub.skiff.dev", "v1", "Sprocket", "sprockets"),
    );
    let mut o = obj("s", json!({"color": "red", "replicas": 2}));
    o.data["status"] = json!({"replicas": 9});
    let created = api.create(&PostParams::default(), &o).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status dropped on create"
    );
    // The main resource ignores status; the status subresource ignores everything else.
    let p = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}, "status": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert!(p.data.get("status").is_none());
    assert_eq!(
        p.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let p = api
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"replicas": 7}, "status": {"replicas": 2, "selector": "app=s",
                "conditions": [{"type": "Ready", "status": "True"}]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(p.data["status"]["replicas"], 2);
    assert_eq!(p.data["spec"]["replicas"], 2);
    assert_eq!(
        p.metadata.generation,
        Some(1),
        "status changes keep the generation"
    );
    let p = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"note": "n"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2));

    // Scale: read from the CRD's paths, written to specReplicasPath.
    let path = format!("/apis/sub.skiff.dev/v1/namespaces/{ns}/sprockets/s/scale");
    let scale = raw(&c, "GET", &path, &[], vec![]).await.json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"], json!({"replicas": 2, "selector": "app=s"}));
    let r = raw(
        &c,
        "PATCH",
        &path,
        &[("Content-Type", "application/merge-patch+json")],
        br#"{"spec":{"replicas":6}}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["spec"]["replicas"], 6);
    let s = api.get("s").await.unwrap();
    assert_eq!(s.data["spec"]["replicas"], 6);
    assert_eq!(s.metadata.generation, Some(3));

    // The Table: Name, the printer columns (priority 1 included for -o wide).
    let t = raw(
        &c,
        "GET",
        &format!("/apis/sub.skiff.dev/v1/namespaces/{ns}/sprockets"),
        &[("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
        vec![],
    )
    .await
    .json();
    let cols: Vec<(&str, i64)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        cols,
        vec![
            ("Name", 0),
            ("Replicas", 0),
            ("Color", 0),
            ("Ready", 0),
            ("Note", 1)
        ]
    );
    assert_eq!(t["rows"][0]["cells"], json!(["s", 6, "red", "True", "n"]));
    api.delete("s", &DeleteParams::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_crd_deletes_its_objects() {
    let c = client(M).await;
    establish(&c, &crd("gone.skiff.dev", "gears", "Gear", "Namespaced")).await;
    let ns = namespace(&c, "crd-gone").await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), &ns, &ar("gone.skiff.dev", "v1", "Gear", "gears"));
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &obj(n, json!({"color": "red"})))
            .await
            .unwrap();
    }
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let deleting = crds
        .delete("gears.gone.skiff.dev", &DeleteParams::default())
        .await
        .unwrap();
    let d = deleting
        .left()
        .expect("the CRD comes back, marked for deletion");
    assert!(d
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"customresourcecleanup.apiextensions.k8s.io".to_string()));
    eventually(10, "the CRD to go", || {
        let crds = crds.clone();
        async move {
            matches!(
                crds.get("gears.gone.skiff.dev").await,
                Err(kube::Error::Api(s)) if s.code == 404
            )
            .then_some(())
        }
    })
    .await;
    // No longer served once the CRD is gone.
    let r = raw(
        &c,
        "GET",
        &format!("/apis/gone.skiff.dev/v1/namespaces/{ns}/gears"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    // Recreated, the CRD starts empty: the objects went with it.
    establish(&c, &crd("gone.skiff.dev", "gears", "Gear", "Namespaced")).await;
    assert!(api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    crds.delete("gears.gone.skiff.dev", &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_server_serves_its_crds() {
    let srv = TestServer::start().await.unwrap();
    let c = srv.client().await.unwrap();
    establish(&c, &crd("restart.skiff.dev", "bolts", "Bolt", "Cluster")).await;
    let res = ar("restart.skiff.dev", "v1", "Bolt", "bolts");
    let api: Api<DynamicObject> = Api::all_with(c.clone(), &res);
    api.create(&PostParams::default(), &obj("b1", json!({"color": "blue"})))
        .await
        .unwrap();
    let srv = srv.restart().await.unwrap();
    let c = srv.client().await.unwrap();
    // Served from the first request on.
    let api: Api<DynamicObject> = Api::all_with(c.clone(), &res);
    let b = api.get("b1").await.unwrap();
    assert_eq!(b.data["spec"]["color"], "blue");
    let l = raw(&c, "GET", "/apis/restart.skiff.dev/v1", &[], vec![]).await;
    assert_eq!(l.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_crds_are_refused_and_name_conflicts_reported() {
    let c = client(M).await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let mut bad = crd("bad.skiff.dev", "nuts", "Nut", "Namespaced");
    bad.metadata.name = Some("wrong.bad.skiff.dev".into());
    bad.spec.versions[1].storage = true;
    bad.spec.versions[0].schema = None;
    let s = expect_status(
        crds.create(&PostParams::default(), &bad).await,
        422,
        "Invalid",
    );
    for want in [
        "metadata.name: Invalid value: \"wrong.bad.skiff.dev\": must be spec.names.plural+\".\"+spec.group",
        "spec.versions: Invalid value: \"v1,v1beta1\": must have exactly one version marked as storage version",
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
    ] {
        assert!(s.message.contains(want), "{want} not in {}", s.message);
    }
    let mut unstructural = crd("bad.skiff.dev", "nuts", "Nut", "Namespaced");
    unstructural.spec.versions[0].schema = Some(from_json(
        json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"properties": {}}}}}),
    ));
    let s = expect_status(
        crds.create(&PostParams::default(), &unstructural).await,
        422,
        "Invalid",
    );
    assert!(s.message.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"), "{}", s.message);

    // A second CRD of the group claiming a taken kind is not served.
    establish(&c, &crd("clash.skiff.dev", "firsts", "First", "Namespaced")).await;
    let mut second = crd("clash.skiff.dev", "seconds", "First", "Namespaced");
    second.spec.names.singular = Some("second".into());
    second.spec.names.short_names = Some(vec!["snd".into()]);
    crds.create(&PostParams::default(), &second).await.unwrap();
    let got = eventually(5, "NamesAccepted=False", || {
        let crds = crds.clone();
        async move {
            let g = crds.get("seconds.clash.skiff.dev").await.ok()?;
            let conds = g.status?.conditions?;
            conds
                .into_iter()
                .find(|c| c.type_ == "NamesAccepted" && c.status == "False")
        }
    })
    .await;
    assert_eq!(got.reason.as_deref(), Some("NameConflict"));
    assert_eq!(
        got.message.as_deref(),
        Some("kind \"First\" is already in use")
    );
    let r = raw(&c, "GET", "/apis/clash.skiff.dev/v1/seconds", &[], vec![]).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_namespace_deletion_and_garbage_collection() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use kube::api::{WatchEvent, WatchParams};

    let c = client(M).await;
    establish(&c, &crd("life.skiff.dev", "cogs", "Cog", "Namespaced")).await;
    let ns = namespace(&c, "crd-life").await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), &ns, &ar("life.skiff.dev", "v1", "Cog", "cogs"));
    // A watch with a label selector sees only matching objects, in the served version.
    let mut w = api
        .watch(&WatchParams::default().labels("watched=yes"), "0")
        .await
        .unwrap()
        .boxed();
    let mut watched = obj("w1", json!({"color": "red"}));
    watched.metadata.labels = Some([("watched".to_string(), "yes".to_string())].into());
    api.create(
        &PostParams::default(),
        &obj("other", json!({"color": "red"})),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &watched).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), w.try_next())
        .await
        .expect("an event")
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Added(o) => {
            assert_eq!(o.metadata.name.as_deref(), Some("w1"));
            assert_eq!(o.data["spec"]["replicas"], 1, "defaulted");
        }
        other => panic!("unexpected {other:?}"),
    }

    // Garbage collection: an object owned by a ConfigMap goes with it.
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let cm = cms
        .create(
            &PostParams::default(),
            &from_json(json!({"metadata": {"name": "owner"}})),
        )
        .await
        .unwrap();
    let mut owned = obj("owned", json!({"color": "blue"}));
    owned.metadata.owner_references = Some(vec![from_json(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": cm.metadata.uid.unwrap()
    }))]);
    api.create(&PostParams::default(), &owned).await.unwrap();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    eventually(10, "the owned object to be collected", || {
        let api = api.clone();
        async move {
            matches!(api.get("owned").await, Err(kube::Error::Api(s)) if s.code == 404)
                .then_some(())
        }
    })
    .await;

    // Namespace deletion deletes custom objects too.
    let nss: Api<Namespace> = Api::all(c.clone());
    nss.delete(&ns, &DeleteParams::default()).await.unwrap();
    eventually(10, "the namespace to go", || {
        let nss = nss.clone();
        let ns = ns.clone();
        async move {
            matches!(nss.get(&ns).await, Err(kube::Error::Api(s)) if s.code == 404).then_some(())
        }
    })
    .await;
    let r = raw(
        &c,
        "GET",
        &format!("/apis/life.skiff.dev/v1/namespaces/{ns}/cogs"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.json()["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminating_crd_waits_for_its_objects_and_refuses_new_ones() {
    let c = client(M).await;
    let mut def = crd("hold.skiff.dev", "latches", "Latch", "Cluster");
    def.spec.versions[1].deprecated = Some(true);
    establish(&c, &def).await;
    let api: Api<DynamicObject> =
        Api::all_with(c.clone(), &ar("hold.skiff.dev", "v1", "Latch", "latches"));
    // A deprecated version answers with a warning.
    let r = raw(
        &c,
        "GET",
        "/apis/hold.skiff.dev/v1beta1/latches",
        &[],
        vec![],
    )
    .await;
    assert_eq!(
        r.headers["warning"].to_str().unwrap(),
        "299 - \"hold.skiff.dev/v1beta1 Latch is deprecated; use hold.skiff.dev/v1 Latch\""
    );
    let mut held = obj("held", json!({"color": "red"}));
    held.metadata.finalizers = Some(vec!["skiff.dev/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    crds.delete("latches.hold.skiff.dev", &DeleteParams::default())
        .await
        .unwrap();
    let cond = eventually(5, "Terminating", || {
        let crds = crds.clone();
        async move {
            let g = crds.get("latches.hold.skiff.dev").await.ok()?;
            g.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Terminating" && c.status == "True")
        }
    })
    .await;
    assert_eq!(cond.reason.as_deref(), Some("InstanceDeletionInProgress"));
    // The object is being deleted, held by its finalizer; nothing new may be created.
    eventually(5, "the object to be marked for deletion", || {
        let api = api.clone();
        async move {
            let h = api.get("held").await.ok()?;
            h.metadata.deletion_timestamp.map(|_| ())
        }
    })
    .await;
    let s = expect_status(
        api.create(&PostParams::default(), &obj("new", json!({"color": "red"})))
            .await,
        405,
        "MethodNotAllowed",
    );
    assert!(s.message.contains("terminating"), "{}", s.message);
    // Releasing the object lets the CRD go.
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(10, "the CRD to go", || {
        let crds = crds.clone();
        async move {
            matches!(
                crds.get("latches.hold.skiff.dev").await,
                Err(kube::Error::Api(s)) if s.code == 404
            )
            .then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crd_update_changes_the_served_versions() {
    let c = client(M).await;
    let def = crd("update.skiff.dev", "valves", "Valve", "Namespaced");
    establish(&c, &def).await;
    let ns = namespace(&c, "crd-update").await;
    let v1: Api<DynamicObject> = Api::namespaced_with(
        c.clone(),
        &ns,
        &ar("update.skiff.dev", "v1", "Valve", "valves"),
    );
    v1.create(&PostParams::default(), &obj("old", json!({"color": "red"})))
        .await
        .unwrap();
    // v2 becomes the storage version; v1 stops being served.
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    // Read, change, replace; again if the server's own status write came in between (409).
    eventually(5, "the CRD update", || {
        let crds = crds.clone();
        async move {
            let mut cur = crds.get("valves.update.skiff.dev").await.ok()?;
            let mut v2 = cur.spec.versions[0].clone();
            v2.name = "v2".into();
            cur.spec.versions[0].served = false;
            cur.spec.versions[0].storage = false;
            cur.spec.versions.push(v2);
            match crds
                .replace("valves.update.skiff.dev", &PostParams::default(), &cur)
                .await
            {
                Ok(updated) => Some(updated),
                Err(kube::Error::Api(s)) if s.code == 409 => None,
                Err(e) => panic!("updating the CRD: {e}"),
            }
        }
    })
    .await;
    let v2: Api<DynamicObject> = Api::namespaced_with(
        c.clone(),
        &ns,
        &ar("update.skiff.dev", "v2", "Valve", "valves"),
    );
    let old = eventually(5, "v2 to be served", || {
        let v2 = v2.clone();
        async move { v2.get("old").await.ok() }
    })
    .await;
    assert_eq!(old.types.unwrap().api_version, "update.skiff.dev/v2");
    let r = raw(
        &c,
        "GET",
        &format!("/apis/update.skiff.dev/v1/namespaces/{ns}/valves"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404, "v1 is no longer served");
    let got = eventually(5, "storedVersions [v1, v2]", || {
        let crds = crds.clone();
        async move {
            let g = crds.get("valves.update.skiff.dev").await.ok()?;
            let sv = g.status?.stored_versions?;
            (sv == vec!["v1".to_string(), "v2".to_string()]).then_some(sv)
        }
    })
    .await;
    assert_eq!(got.len(), 2);
    let g = raw(&c, "GET", "/apis/update.skiff.dev", &[], vec![])
        .await
        .json();
    assert_eq!(g["preferredVersion"]["version"], "v2");
    // Deleting the CRD still reaches the objects through the served version.
    crds.delete("valves.update.skiff.dev", &DeleteParams::default())
        .await
        .unwrap();
    eventually(10, "the CRD to go", || {
        let crds = crds.clone();
        async move {
            matches!(
                crds.get("valves.update.skiff.dev").await,
                Err(kube::Error::Api(s)) if s.code == 404
            )
            .then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn selectable_fields_are_field_selectors() {
    let c = client(M).await;
    let mut def = crd("select.skiff.dev", "knobs", "Knob", "Namespaced");
    def.spec.versions[0].selectable_fields =
        Some(vec![from_json(json!({"jsonPath": ".spec.color"}))]);
    establish(&c, &def).await;
    let ns = namespace(&c, "crd-select").await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        c.clone(),
        &ns,
        &ar("select.skiff.dev", "v1", "Knob", "knobs"),
    );
    for (n, color) in [("a", "red"), ("b", "blue"), ("c", "blue")] {
        api.create(&PostParams::default(), &obj(n, json!({"color": color})))
            .await
            .unwrap();
    }
    let l = api
        .list(&ListParams::default().fields("spec.color=blue"))
        .await
        .unwrap();
    let names: Vec<String> = l
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect();
    assert_eq!(names, vec!["b", "c"]);
    let s = expect_status(
        api.list(&ListParams::default().fields("spec.size=M")).await,
        400,
        "BadRequest",
    );
    assert!(
        s.message.contains("field label not supported: spec.size"),
        "{}",
        s.message
    );
}
