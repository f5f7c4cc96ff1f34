//! Server-side apply (`application/apply-patch+yaml`) and managedFields, as upstream's field
//! manager: create by apply (201), re-apply (200), conflicts between managers (409 with one
//! `FieldManagerConflict` cause per field), force taking ownership, fields a manager stops
//! applying removed, and `Update` entries recorded by ordinary writes.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use crate::{client, expect_status, from_json, namespace, raw};

const M: &str = "apply";

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": image}]}}}
    })
}

/// The managedFields entries of `obj` as JSON.
fn managed(obj: &impl serde::Serialize) -> Vec<Value> {
    let v = serde_json::to_value(obj).unwrap();
    v.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(entries: &'a [Value], manager: &str, op: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == op)
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_creates_then_updates() {
    let c = client(M).await;
    let ns = namespace(&c, "apply-create").await;
    let path = format!(
        "/apis/apps/v1/namespaces/{ns}/deployments/web?fieldManager=mgr&fieldValidation=Strict&force=false"
    );
    let ct = [("content-type", "application/apply-patch+yaml")];
    let body = serde_json::to_vec(&deployment(1, "nginx:1.26")).unwrap();
    let r = raw(&c, "PATCH", &path, &ct, body.clone()).await;
    assert_eq!(r.status, http::StatusCode::CREATED, "{}", r.json());
    let created = r.json();
    let mf = created["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1, "{mf:?}");
    assert_eq!(mf[0]["manager"], "mgr");
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(mf[0]["apiVersion"], "apps/v1");
    assert_eq!(mf[0]["fieldsType"], "FieldsV1");
    assert_eq!(
        mf[0]["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {"f:matchLabels": {"f:app": {}}},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {}, "f:image": {}, "f:name": {}
                    }}}
                }
            }
        })
    );
    // Defaults and validation ran as for a create.
    assert_eq!(created["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(created["metadata"]["generation"], 1);

    // Same configuration again: 200, nothing changes.
    let r = raw(&c, "PATCH", &path, &ct, body).await;
    assert_eq!(r.status, http::StatusCode::OK);
    assert_eq!(
        r.json()["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    // A changed configuration through kube's typed client.
    let api: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let pp = PatchParams::apply("mgr").force();
    let d = api
        .patch("web", &pp, &Patch::Apply(deployment(3, "nginx:1.27")))
        .await
        .unwrap();
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(3));
    let image = spec.template.spec.as_ref().unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("nginx:1.27"));
    assert_eq!(d.metadata.generation, Some(2));

    // YAML bodies work too.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n";
    let r = raw(
        &c,
        "PATCH",
        &format!("/api/v1/namespaces/{ns}/configmaps/y?fieldManager=mgr"),
        &ct,
        yaml.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(r.status, http::StatusCode::CREATED, "{}", r.json());
    assert_eq!(r.json()["data"]["k"], "v");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_requires_a_field_manager() {
    let c = client(M).await;
    let ns = namespace(&c, "apply-nomgr").await;
    let r = raw(
        &c,
        "PATCH",
        &format!("/api/v1/namespaces/{ns}/configmaps/x"),
        &[("content-type", "application/apply-patch+yaml")],
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, http::StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_between_managers_and_force() {
    let c = client(M).await;
    let ns = namespace(&c, "apply-conflict").await;
    let api: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    // Created by an ordinary write: its manager owns every field (operation Update).
    let pp = PostParams {
        field_manager: Some("kubectl-client-side-apply".into()),
        ..Default::default()
    };
    let d = api
        .create(&pp, &from_json(deployment(1, "nginx")))
        .await
        .unwrap();
    let mf = managed(&d);
    let e = entry(&mf, "kubectl-client-side-apply", "Update").expect("update entry");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["fieldsV1"]["f:spec"]["f:replicas"], json!({}));

    // Applying the same values shares ownership: no conflict.
    let no_force = PatchParams::apply("ssa");
    api.patch("web", &no_force, &Patch::Apply(deployment(1, "nginx")))
        .await
        .unwrap();

    // A different value for a field the other manager owns is a conflict.
    let s = expect_status(
        api.patch("web", &no_force, &Patch::Apply(deployment(2, "nginx")))
            .await,
        409,
        "Conflict",
    );
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    let causes = s.details.as_ref().expect("details").causes.clone();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(
        causes[0].message,
        "conflict with \"kubectl-client-side-apply\" using apps/v1"
    );
    assert_eq!(causes[0].field, ".spec.replicas");

    // Two conflicting fields are listed by manager.
    let s = expect_status(
        api.patch("web", &no_force, &Patch::Apply(deployment(2, "nginx:2")))
            .await,
        409,
        "Conflict",
    );
    assert_eq!(
        s.message,
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );

    // Forced, the applier takes the field over.
    let d = api
        .patch(
            "web",
            &PatchParams::apply("ssa").force(),
            &Patch::Apply(deployment(2, "nginx")),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    let mf = managed(&d);
    let old = entry(&mf, "kubectl-client-side-apply", "Update").unwrap();
    assert!(
        old["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "{old}"
    );
    let ssa = entry(&mf, "ssa", "Apply").unwrap();
    assert_eq!(ssa["fieldsV1"]["f:spec"]["f:replicas"], json!({}));

    // An ordinary update of the field takes it back without conflict.
    let d = api
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("scaler".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let mf = managed(&d);
    let ssa = entry(&mf, "ssa", "Apply").unwrap();
    assert!(
        ssa["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "{ssa}"
    );
    let scaler = entry(&mf, "scaler", "Update").unwrap();
    assert_eq!(scaler["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    // So the applier now conflicts with the scaler.
    let s = expect_status(
        api.patch("web", &no_force, &Patch::Apply(deployment(2, "nginx")))
            .await,
        409,
        "Conflict",
    );
    assert_eq!(s.details.unwrap().causes[0].field, ".spec.replicas");
}

#[tokio::test(flavor = "multi_thread")]
async fn fields_dropped_from_the_configuration_are_removed() {
    let c = client(M).await;
    let ns = namespace(&c, "apply-drop").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let pp = PatchParams::apply("mgr").force();
    let cm = |data: Value, labels: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "cm", "labels": labels}, "data": data})
    };
    api.patch(
        "cm",
        &pp,
        &Patch::Apply(cm(json!({"a": "1", "b": "2"}), json!({"x": "1", "y": "2"}))),
    )
    .await
    .unwrap();
    // Another manager sets a key of its own and also sets "b".
    api.patch(
        "cm",
        &PatchParams {
            field_manager: Some("other".into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"data": {"c": "3"}, "metadata": {"labels": {"y": "2"}}})),
    )
    .await
    .unwrap();
    let got = api
        .patch("cm", &pp, &Patch::Apply(cm(json!({"a": "1"}), Value::Null)))
        .await
        .unwrap();
    let data = got.data.clone().unwrap();
    // "b" was only the applier's: gone. "c" belongs to the other manager: kept.
    assert_eq!(data.get("b"), None);
    assert_eq!(data.get("c").map(String::as_str), Some("3"));
    let labels = got.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("x"), None);
    let mf = managed(&got);
    let mine = entry(&mf, "mgr", "Apply").unwrap();
    assert_eq!(mine["fieldsV1"], json!({"f:data": {"f:a": {}}}));
}

#[tokio::test(flavor = "multi_thread")]
async fn ordinary_writes_record_and_keep_managed_fields() {
    let c = client(M).await;
    let ns = namespace(&c, "apply-update").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let cm = api
        .create(
            &PostParams::default(),
            &from_json(
                json!({"metadata": {"name": "u", "labels": {"l": "1"}}, "data": {"a": "1"}}),
            ),
        )
        .await
        .unwrap();
    let mf = managed(&cm);
    assert_eq!(mf.len(), 1, "{mf:?}");
    assert_eq!(mf[0]["operation"], "Update");
    assert_eq!(
        mf[0]["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:l": {}}}})
    );
    // A PUT without managedFields keeps them; its own changes are recorded for its manager.
    let mut body = serde_json::to_value(&cm).unwrap();
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    body["data"]["b"] = json!("2");
    let put = api
        .replace(
            "u",
            &PostParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &from_json(body),
        )
        .await
        .unwrap();
    let mf = managed(&put);
    assert_eq!(mf.len(), 2, "{mf:?}");
    let editor = entry(&mf, "editor", "Update").unwrap();
    assert_eq!(editor["fieldsV1"], json!({"f:data": {"f:b": {}}}));
    // `[{}]` clears them, as upstream.
    let put = api
        .patch(
            "u",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"managedFields": [{}]}})),
        )
        .await
        .unwrap();
    assert!(managed(&put).is_empty(), "{:?}", managed(&put));
}
