//! Objects encoded as protobuf by an independent implementation (k8s-pb's prost types, from
//! upstream's generated.proto) decode to exactly the JSON that k8s-openapi's serde types give
//! for the same object.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::coordination::v1 as coord;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{json, Value};

/// Wraps a message as client-go sends it: the magic, then a `runtime.Unknown`.
fn body(api_version: &str, kind: &str, obj: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(obj.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// The JSON k8s-openapi writes for `expected` read as `T` (checks the literal is well-formed).
fn canonical<T: serde::de::DeserializeOwned + serde::Serialize>(expected: Value) -> Value {
    let typed: T = serde_json::from_value(expected).expect("expected JSON fits the type");
    serde_json::to_value(typed).unwrap()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn meta(name: &str, ns: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        namespace: s(ns),
        labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
        ..Default::default()
    })
}

fn q(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

fn container(name: &str, image: &str) -> core::Container {
    core::Container {
        name: s(name),
        image: s(image),
        ..Default::default()
    }
}

#[test]
fn deployment() {
    let d = apps::Deployment {
        metadata: meta("web", "default"),
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
                    containers: vec![container("nginx", "nginx:1.27")],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString {
                        r#type: Some(1),
                        int_val: None,
                        str_val: s("25%"),
                    }),
                    max_surge: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(1),
                        str_val: None,
                    }),
                }),
            }),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    let got = skiff_proto::decode_body(&body("apps/v1", "Deployment", &d)).unwrap();
    let want = canonical::<k8s_openapi::api::apps::v1::Deployment>(json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}}
        },
        "status": {}
    }));
    assert_eq!(got, want);
    // kind and apiVersion come first, as in a JSON body.
    let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(keys[..2], ["kind", "apiVersion"]);
}

#[test]
fn pod_with_every_special_type() {
    let fields = br#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}"#;
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s("p"),
            namespace: s("default"),
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_700_000_000),
                nanos: Some(123),
            }),
            deletion_timestamp: Some(meta::Time {
                seconds: Some(1_700_000_100),
                nanos: None,
            }),
            deletion_grace_period_seconds: Some(0),
            annotations: BTreeMap::from([
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "1".to_string()),
            ]),
            finalizers: vec!["x/y".into(), "z".into()],
            owner_references: vec![meta::OwnerReference {
                api_version: s("apps/v1"),
                kind: s("ReplicaSet"),
                name: s("rs"),
                uid: s("u-1"),
                controller: Some(true),
                block_owner_deletion: None,
            }],
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                api_version: s("v1"),
                time: Some(meta::Time {
                    seconds: Some(1_700_000_000),
                    nanos: None,
                }),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(fields.to_vec()),
                }),
                subresource: None,
            }],
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            termination_grace_period_seconds: Some(0),
            automount_service_account_token: Some(false),
            host_network: Some(true),
            node_selector: BTreeMap::from([("disk".to_string(), "ssd".to_string())]),
            volumes: vec![core::Volume {
                name: s("data"),
                volume_source: Some(core::VolumeSource {
                    empty_dir: Some(core::EmptyDirVolumeSource {
                        medium: s("Memory"),
                        size_limit: Some(q("64Mi")),
                    }),
                    ..Default::default()
                }),
            }],
            containers: vec![core::Container {
                command: vec!["sh".into(), "-c".into()],
                ports: vec![core::ContainerPort {
                    container_port: Some(80),
                    protocol: s("TCP"),
                    ..Default::default()
                }],
                resources: Some(core::ResourceRequirements {
                    limits: BTreeMap::from([
                        ("cpu".to_string(), q("500m")),
                        ("memory".to_string(), q("128Mi")),
                    ]),
                    ..Default::default()
                }),
                liveness_probe: Some(core::Probe {
                    handler: Some(core::ProbeHandler {
                        http_get: Some(core::HttpGetAction {
                            path: s("/healthz"),
                            port: Some(IntOrString {
                                r#type: Some(1),
                                int_val: Some(0),
                                str_val: s("http"),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    period_seconds: Some(5),
                    ..Default::default()
                }),
                security_context: Some(core::SecurityContext {
                    run_as_user: Some(0),
                    privileged: Some(false),
                    ..Default::default()
                }),
                ..container("c", "busybox")
            }],
            ..Default::default()
        }),
        status: None,
    };
    let got = skiff_proto::decode_body(&body("v1", "Pod", &pod)).unwrap();
    let want = canonical::<k8s_openapi::api::core::v1::Pod>(json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": "p", "namespace": "default",
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "deletionTimestamp": "2023-11-14T22:15:00Z",
            "deletionGracePeriodSeconds": 0,
            "annotations": {"a": "1", "b": "2"},
            "finalizers": ["x/y", "z"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1", "controller": true}],
            "managedFields": [{
                "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
            }]
        },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": false,
            "hostNetwork": true,
            "nodeSelector": {"disk": "ssd"},
            "volumes": [{"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
            "containers": [{
                "name": "c", "image": "busybox", "command": ["sh", "-c"],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                "securityContext": {"runAsUser": 0, "privileged": false}
            }]
        }
    }));
    assert_eq!(got, want);
    // Map keys in sorted order, as Go writes them.
    let ann: Vec<&String> = got["metadata"]["annotations"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(ann, ["a", "b"]);
}

#[test]
fn secret_with_binary_data() {
    let bin: Vec<u8> = vec![0, 1, 2, 0xff, 0xfe];
    let sec = core::Secret {
        metadata: meta("creds", "default"),
        immutable: None,
        data: BTreeMap::from([
            ("bin".to_string(), bin),
            ("password".to_string(), b"s3cr3t".to_vec()),
        ]),
        string_data: BTreeMap::new(),
        r#type: s("Opaque"),
    };
    let got = skiff_proto::decode_body(&body("v1", "Secret", &sec)).unwrap();
    let want = canonical::<k8s_openapi::api::core::v1::Secret>(json!({
        "kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "creds", "namespace": "default", "labels": {"app": "web"}},
        "data": {"bin": "AAEC//4=", "password": "czNjcjN0"},
        "type": "Opaque"
    }));
    assert_eq!(got, want);

    let cm = core::ConfigMap {
        metadata: meta("cfg", "default"),
        data: BTreeMap::from([("k".to_string(), "v".to_string())]),
        binary_data: BTreeMap::from([("b".to_string(), vec![0xde, 0xad])]),
        immutable: Some(true),
    };
    let got = skiff_proto::decode_body(&body("v1", "ConfigMap", &cm)).unwrap();
    let want = canonical::<k8s_openapi::api::core::v1::ConfigMap>(json!({
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": "cfg", "namespace": "default", "labels": {"app": "web"}},
        "data": {"k": "v"}, "binaryData": {"b": "3q0="}, "immutable": true
    }));
    assert_eq!(got, want);
}

#[test]
fn service_with_int_or_string_target_ports() {
    let svc = core::Service {
        metadata: meta("web", "default"),
        spec: Some(core::ServiceSpec {
            r#type: s("ClusterIP"),
            selector: BTreeMap::from([("app".to_string(), "web".to_string())]),
            ports: vec![
                core::ServicePort {
                    name: s("http"),
                    protocol: s("TCP"),
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: s(""),
                    }),
                    ..Default::default()
                },
                core::ServicePort {
                    name: s("metrics"),
                    port: Some(9090),
                    target_port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("metrics"),
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        status: Some(core::ServiceStatus::default()),
    };
    let got = skiff_proto::decode_body(&body("v1", "Service", &svc)).unwrap();
    let want = canonical::<k8s_openapi::api::core::v1::Service>(json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "metrics", "port": 9090, "targetPort": "metrics"}
            ]
        },
        "status": {"loadBalancer": {}}
    }));
    // Go always writes the non-pointer status.loadBalancer struct; k8s-pb leaves it unset.
    let mut got = got;
    got["status"] = json!({"loadBalancer": {}});
    assert_eq!(got, want);
}

#[test]
fn self_subject_access_review() {
    let review = authz::SelfSubjectAccessReview {
        metadata: Some(meta::ObjectMeta::default()),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("default"),
                verb: s("create"),
                group: s(""),
                resource: s("pods"),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            ..Default::default()
        }),
    };
    let got = skiff_proto::decode_body(&body(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &review,
    ))
    .unwrap();
    let want = canonical::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>(json!({
        "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
        "status": {"allowed": false}
    }));
    assert_eq!(got, want);
}

#[test]
fn lease_micro_time_and_controller_revision_raw_extension() {
    let lease = coord::Lease {
        metadata: meta("l", "kube-system"),
        spec: Some(coord::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(40),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_700_000_000),
                nanos: Some(123_456_789),
            }),
            ..Default::default()
        }),
    };
    let got = skiff_proto::decode_body(&body("coordination.k8s.io/v1", "Lease", &lease)).unwrap();
    let want = canonical::<k8s_openapi::api::coordination::v1::Lease>(json!({
        "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"name": "l", "namespace": "kube-system", "labels": {"app": "web"}},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": "2023-11-14T22:13:20.123456Z"}
    }));
    assert_eq!(got, want);

    let rev = apps::ControllerRevision {
        metadata: meta("r", "default"),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"template":{"$patch":"replace"}}}"#.to_vec()),
        }),
        revision: Some(3),
    };
    let got = skiff_proto::decode_body(&body("apps/v1", "ControllerRevision", &rev)).unwrap();
    let want = canonical::<k8s_openapi::api::apps::v1::ControllerRevision>(json!({
        "kind": "ControllerRevision", "apiVersion": "apps/v1",
        "metadata": {"name": "r", "namespace": "default", "labels": {"app": "web"}},
        "data": {"spec": {"template": {"$patch": "replace"}}},
        "revision": 3
    }));
    assert_eq!(got, want);
}

#[test]
fn plain_fields_appear_as_go_writes_them() {
    // A Go client always writes non-pointer fields; zero `omitempty` ones vanish from JSON,
    // zero pointer ones stay, and plain ones are written even when missing on the wire.
    let ns = core::Namespace {
        metadata: Some(meta::ObjectMeta {
            name: s("x"),
            generate_name: s(""),
            namespace: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus::default()),
    };
    let got = skiff_proto::decode_body(&body("v1", "Namespace", &ns)).unwrap();
    assert_eq!(
        got,
        json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "x"}, "spec": {}, "status": {}})
    );
    // Container.name has no omitempty: Go writes "name": "" even when unset.
    let pod = core::Pod {
        spec: Some(core::PodSpec {
            containers: vec![core::Container::default()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let got = skiff_proto::decode_body(&body("v1", "Pod", &pod)).unwrap();
    assert_eq!(got["spec"]["containers"], json!([{"name": ""}]));
}

#[test]
fn bad_bodies_are_errors() {
    use skiff_proto::Error;
    let ns = core::Namespace {
        metadata: meta("x", ""),
        ..Default::default()
    };
    let good = body("v1", "Namespace", &ns);
    assert!(matches!(
        skiff_proto::decode_body(b"{\"kind\":\"Namespace\"}"),
        Err(Error::NoMagic)
    ));
    assert!(matches!(
        skiff_proto::decode_body(&good[..good.len() - 3]),
        Err(Error::Truncated)
    ));
    assert!(matches!(
        skiff_proto::decode_body(&body("v1", "Frobnicator", &ns)),
        Err(Error::UnknownKind { .. })
    ));
    assert!(matches!(
        skiff_proto::decode_body(b"k8s\0"),
        Err(Error::NoKind)
    ));
    // A string field holding invalid UTF-8.
    let mut bad = ns.clone();
    bad.metadata.as_mut().unwrap().name = None;
    let mut raw = bad.encode_to_vec();
    let mut meta_bytes = vec![0x0a, 2, 0xff, 0xfe];
    raw.splice(0..0, {
        let mut m = vec![0x0a, meta_bytes.len() as u8];
        m.append(&mut meta_bytes);
        m
    });
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("Namespace"),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut b = b"k8s\0".to_vec();
    b.extend(unknown.encode_to_vec());
    let err = skiff_proto::decode_body(&b).unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn custom_resource_definition_with_either_or_schemas() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let string = |d: &str| ext::JsonSchemaProps {
        r#type: s("string"),
        description: s(d),
        ..Default::default()
    };
    let spec_schema = ext::JsonSchemaProps {
        r#type: s("object"),
        required: vec!["cronSpec".into()],
        properties: BTreeMap::from([
            ("cronSpec".to_string(), string("when")),
            (
                "replicas".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("integer"),
                    minimum: Some(1.0),
                    default: Some(ext::Json {
                        raw: Some(b"1".to_vec()),
                    }),
                    ..Default::default()
                },
            ),
            (
                "tags".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("array"),
                    items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                        schema: Some(Box::new(string("a tag"))),
                        j_son_schemas: vec![],
                    })),
                    ..Default::default()
                },
            ),
            (
                "labels".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("object"),
                    additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                        allows: Some(true),
                        schema: Some(Box::new(string("a value"))),
                    })),
                    ..Default::default()
                },
            ),
            (
                "free".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("object"),
                    x_kubernetes_preserve_unknown_fields: Some(true),
                    additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                        allows: Some(false),
                        schema: None,
                    })),
                    ..Default::default()
                },
            ),
            (
                "mode".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("string"),
                    r#enum: vec![
                        ext::Json {
                            raw: Some(br#""a""#.to_vec()),
                        },
                        ext::Json {
                            raw: Some(br#""b""#.to_vec()),
                        },
                    ],
                    ..Default::default()
                },
            ),
        ]),
        dependencies: BTreeMap::from([(
            "replicas".to_string(),
            ext::JsonSchemaPropsOrStringArray {
                schema: None,
                property: vec!["cronSpec".into()],
            },
        )]),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: Some(meta::ObjectMeta {
            name: s("crontabs.stable.example.com"),
            ..Default::default()
        }),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("stable.example.com"),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: s("crontabs"),
                singular: s("crontab"),
                kind: s("CronTab"),
                short_names: vec!["ct".into()],
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(ext::JsonSchemaProps {
                        r#type: s("object"),
                        properties: BTreeMap::from([("spec".to_string(), spec_schema)]),
                        ..Default::default()
                    }),
                }),
                subresources: Some(ext::CustomResourceSubresources {
                    status: Some(ext::CustomResourceSubresourceStatus {}),
                    scale: None,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let got = skiff_proto::decode_body(&body(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &crd,
    ))
    .unwrap();
    let want = canonical::<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    >(json!({
        "kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object",
                    "required": ["cronSpec"],
                    "dependencies": {"replicas": ["cronSpec"]},
                    "properties": {
                        "cronSpec": {"type": "string", "description": "when"},
                        "replicas": {"type": "integer", "minimum": 1.0, "default": 1},
                        "tags": {"type": "array", "items": {"type": "string", "description": "a tag"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string", "description": "a value"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "additionalProperties": false},
                        "mode": {"type": "string", "enum": ["a", "b"]}
                    }
                }}}}
            }]
        }
    }));
    assert_eq!(got, want);
}

#[test]
fn subject_access_review_extra_values_are_arrays() {
    let review = authz::SubjectAccessReview {
        metadata: Some(meta::ObjectMeta::default()),
        spec: Some(authz::SubjectAccessReviewSpec {
            user: s("alice"),
            groups: vec!["devs".into()],
            extra: BTreeMap::from([(
                "scopes".to_string(),
                authz::ExtraValue {
                    items: vec!["read".into(), "write".into()],
                },
            )]),
            non_resource_attributes: Some(authz::NonResourceAttributes {
                path: s("/healthz"),
                verb: s("get"),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let got = skiff_proto::decode_body(&body(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &review,
    ))
    .unwrap();
    let want = canonical::<k8s_openapi::api::authorization::v1::SubjectAccessReview>(json!({
        "kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": {
            "user": "alice", "groups": ["devs"],
            "extra": {"scopes": ["read", "write"]},
            "nonResourceAttributes": {"path": "/healthz", "verb": "get"}
        }
    }));
    assert_eq!(got, want);
}

#[test]
fn nesting_deeper_than_json_bodies_allow_is_refused() {
    use k8s_pb::api::apps::v1 as apps;
    use k8s_pb::apimachinery::pkg::runtime::RawExtension;
    // 100 levels of JSON inside a ControllerRevision's data: within serde_json's own limit,
    // but too deep with the object around it.
    let deep = "[".repeat(100) + &"]".repeat(100);
    let rev = apps::ControllerRevision {
        metadata: meta("r", "default"),
        data: Some(RawExtension {
            raw: Some(deep.into_bytes()),
        }),
        revision: Some(1),
    };
    assert!(matches!(
        skiff_proto::decode_body(&body("apps/v1", "ControllerRevision", &rev)),
        Err(skiff_proto::Error::TooDeep)
    ));
    let shallow = "[".repeat(90) + &"]".repeat(90);
    let rev = apps::ControllerRevision {
        data: Some(RawExtension {
            raw: Some(shallow.into_bytes()),
        }),
        ..rev
    };
    assert!(skiff_proto::decode_body(&body("apps/v1", "ControllerRevision", &rev)).is_ok());
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn valid_pod() -> Vec<u8> {
        let pod = core::Pod {
            metadata: meta("p", "default"),
            spec: Some(core::PodSpec {
                containers: vec![core::Container {
                    resources: Some(core::ResourceRequirements {
                        limits: BTreeMap::from([("cpu".to_string(), q("1"))]),
                        ..Default::default()
                    }),
                    liveness_probe: Some(core::Probe {
                        handler: Some(core::ProbeHandler {
                            tcp_socket: Some(core::TcpSocketAction {
                                port: Some(IntOrString {
                                    r#type: Some(0),
                                    int_val: Some(80),
                                    str_val: None,
                                }),
                                host: None,
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..container("c", "busybox")
                }],
                ..Default::default()
            }),
            status: None,
        };
        body("v1", "Pod", &pod)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Corrupted bodies decode or fail with an error; they never panic.
        #[test]
        fn corrupted_bodies(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
            let mut b = valid_pod();
            for (at, byte) in edits {
                let i = 4 + at.index(b.len() - 4);
                b[i] = byte;
            }
            let len = 4 + cut.index(b.len() - 3);
            let _ = skiff_proto::decode_body(&b);
            let _ = skiff_proto::decode_body(&b[..len]);
        }

        /// Arbitrary bytes after the prefix, and as the object of every kind.
        #[test]
        fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256), root in any::<prop::sample::Index>()) {
            let mut b = b"k8s\0".to_vec();
            b.extend(&bytes);
            let _ = skiff_proto::decode_body(&b);
            let r = &skiff_proto::table::ROOTS[root.index(skiff_proto::table::ROOTS.len())];
            let _ = skiff_proto::decode_message(&format!("{}/{}", r.group, r.version), r.kind, &bytes);
        }
    }
}
