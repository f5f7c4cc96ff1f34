//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), as client-go's typed
//! clients send them, encoded here by an independent implementation (k8s-pb's prost types):
//! creates, deletes and reviews take effect exactly as their JSON forms would, replies stay
//! JSON, and malformed bodies are refused with a 400 Status and nothing written. Also
//! `/openapi/v2`, which kubectl 1.27 and 1.28 read as gnostic protobuf.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::json;

use crate::{client, namespace, raw, Raw};

const M: &str = "protobuf";
const PB: &str = "application/vnd.kubernetes.protobuf";

/// The magic and the `runtime.Unknown` envelope around `obj`.
fn body(api_version: &str, kind: &str, obj: &impl Message) -> Vec<u8> {
    let mut out = b"k8s\0".to_vec();
    out.extend(
        Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(obj.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        }
        .encode_to_vec(),
    );
    out
}

/// Sends a protobuf body the way client-go does (protobuf first in Accept, JSON allowed).
async fn send(c: &kube::Client, method: &str, path: &str, body: Vec<u8>) -> Raw {
    raw(
        c,
        method,
        path,
        &[
            ("content-type", PB),
            (
                "accept",
                "application/vnd.kubernetes.protobuf,application/json",
            ),
        ],
        body,
    )
    .await
}

fn name_meta(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    })
}

#[tokio::test]
async fn protobuf_creates_answer_json_and_store_what_json_would() {
    let c = client(M).await;
    let ns = namespace(&c, "pb-create").await;
    let cm = core::ConfigMap {
        metadata: name_meta("cfg"),
        data: BTreeMap::from([("color".to_string(), "blue".to_string())]),
        binary_data: BTreeMap::from([("blob".to_string(), vec![0u8, 1, 0xff])]),
        immutable: None,
    };
    let r = send(
        &c,
        "POST",
        &format!(
            "/api/v1/namespaces/{ns}/configmaps?fieldManager=kubectl-create&fieldValidation=Strict"
        ),
        body("v1", "ConfigMap", &cm),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.content_type(), "application/json");
    let created = r.json();
    assert_eq!(created["kind"], "ConfigMap");
    assert_eq!(created["metadata"]["namespace"], ns.as_str());
    assert_eq!(created["data"], json!({"color": "blue"}));
    assert_eq!(created["binaryData"], json!({"blob": "AAH/"}));
    assert_eq!(
        created["metadata"]["managedFields"][0]["manager"],
        "kubectl-create"
    );

    // A Deployment: defaults are applied after decoding, explicit zero replicas kept.
    let d = apps::Deployment {
        metadata: name_meta("web"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: Some("web".into()),
                        image: Some("nginx:1.27".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy::default()),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    let r = send(
        &c,
        "POST",
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        body("apps/v1", "Deployment", &d),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let dep = r.json();
    assert_eq!(dep["spec"]["replicas"], 0);
    assert_eq!(dep["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(dep["spec"]["template"]["spec"]["restartPolicy"], "Always");

    // A cluster-scoped kind.
    let r = send(
        &c,
        "POST",
        "/api/v1/namespaces",
        body(
            "v1",
            "Namespace",
            &core::Namespace {
                metadata: name_meta("pb-made"),
                spec: Some(core::NamespaceSpec::default()),
                status: Some(core::NamespaceStatus::default()),
            },
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"]["phase"], "Active");
}

#[tokio::test]
async fn malformed_or_mismatched_protobuf_is_a_400_and_writes_nothing() {
    let c = client(M).await;
    let ns = namespace(&c, "pb-bad").await;
    let cm = core::ConfigMap {
        metadata: name_meta("bad"),
        ..Default::default()
    };
    let good = body("v1", "ConfigMap", &cm);
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Cuts the two empty trailing fields and the last byte of the object.
        ("truncated", good[..good.len() - 5].to_vec()),
        ("no magic", good[4..].to_vec()),
        ("JSON sent as protobuf", br#"{"kind":"ConfigMap"}"#.to_vec()),
        ("unknown kind", body("v1", "Frobnicator", &cm)),
        ("wrong wire type", {
            // Field 1 (metadata) as a varint instead of a message.
            let mut b = b"k8s\0".to_vec();
            b.extend(
                Unknown {
                    type_meta: Some(TypeMeta {
                        api_version: Some("v1".into()),
                        kind: Some("ConfigMap".into()),
                    }),
                    raw: Some(vec![0x08, 0x01]),
                    ..Default::default()
                }
                .encode_to_vec(),
            );
            b
        }),
    ];
    for (what, b) in cases {
        let r = send(&c, "POST", &path, b).await;
        assert_eq!(
            r.status,
            400,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let s = r.json();
        assert_eq!(
            (s["kind"].as_str(), s["reason"].as_str()),
            (Some("Status"), Some("BadRequest")),
            "{what}: {s}"
        );
    }
    // A Secret posted to the configmaps collection is refused as its JSON form would be.
    let secret = core::Secret {
        metadata: name_meta("bad"),
        ..Default::default()
    };
    let json_answer = raw(
        &c,
        "POST",
        &path,
        &[("content-type", "application/json")],
        serde_json::to_vec(
            &json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "bad"}}),
        )
        .unwrap(),
    )
    .await;
    let pb_answer = send(&c, "POST", &path, body("v1", "Secret", &secret)).await;
    assert_eq!(pb_answer.status, json_answer.status);
    assert_eq!(pb_answer.status, 400);
    assert_eq!(pb_answer.json()["message"], json_answer.json()["message"]);
    let list = raw(&c, "GET", &path, &[("accept", "application/json")], vec![]).await;
    assert_eq!(list.json()["items"], json!([]), "nothing was written");
}

#[tokio::test]
async fn protobuf_delete_options_and_reviews() {
    let c = client(M).await;
    let ns = namespace(&c, "pb-delete").await;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let r = send(
        &c,
        "POST",
        &path,
        body(
            "v1",
            "ConfigMap",
            &core::ConfigMap {
                metadata: name_meta("keep"),
                ..Default::default()
            },
        ),
    )
    .await;
    assert_eq!(r.status, 201);
    // A dry-run delete in a protobuf DeleteOptions body leaves the object in place.
    let opts = meta::DeleteOptions {
        dry_run: vec!["All".into()],
        propagation_policy: Some("Background".into()),
        ..Default::default()
    };
    let r = send(
        &c,
        "DELETE",
        &format!("{path}/keep"),
        body("meta.k8s.io/v1", "DeleteOptions", &opts),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = raw(&c, "GET", &format!("{path}/keep"), &[], vec![]).await;
    assert_eq!(r.status, 200, "a dry-run delete keeps the object");
    // Without dry run (DeleteOptions under the group-version of the request, as client-go
    // may send it), the object goes.
    let r = send(
        &c,
        "DELETE",
        &format!("{path}/keep"),
        body("v1", "DeleteOptions", &meta::DeleteOptions::default()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = raw(&c, "GET", &format!("{path}/keep"), &[], vec![]).await;
    assert_eq!(r.status, 404);

    // kubectl auth can-i: the spec comes back with the answer.
    let review = authz::SelfSubjectAccessReview {
        metadata: Some(meta::ObjectMeta::default()),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: Some(ns.clone()),
                verb: Some("create".into()),
                resource: Some("pods".into()),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus::default()),
    };
    let r = send(
        &c,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &review,
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["status"]["allowed"], true);
    assert_eq!(
        v["spec"]["resourceAttributes"],
        json!({"namespace": ns, "verb": "create", "resource": "pods"})
    );
    let r = send(
        &c,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        b"k8s\0\x0a".to_vec(),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn openapi_v2_as_gnostic_protobuf_and_json() {
    let c = client(M).await;
    let r = raw(
        &c,
        "GET",
        "/openapi/v2?timeout=32s",
        &[(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.content_type(),
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    // openapi.v2.Document: swagger = 1 ("2.0"), paths = 8, definitions = 9.
    let mut rd = skiff_proto::wire::Reader::new(&r.body);
    let mut fields = Vec::new();
    while let Some((n, v)) = rd.field().unwrap() {
        if let skiff_proto::wire::Value::Len(b) = v {
            fields.push((n, b.len()));
            if n == 1 {
                assert_eq!(b, b"2.0");
            }
        }
    }
    let numbers: Vec<u32> = fields.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 2, 8, 9]);
    assert!(fields.iter().all(|(_, len)| *len > 0));

    let r = raw(
        &c,
        "GET",
        "/openapi/v2",
        &[("accept", "application/json")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "application/json");
    let v = r.json();
    assert_eq!(v["swagger"], "2.0");
    assert_eq!(
        v["definitions"]["io.k8s.api.core.v1.ConfigMap"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "version": "v1", "kind": "ConfigMap"}])
    );
    let patch = &v["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
}
