//! The generated message table is complete and agrees with independent descriptions of the
//! API: every kind the server serves (and every body kind of its subresources and reviews) has
//! an entry, every message's JSON names are those of k8s-openapi's v1.32 schemas, and every
//! field number and scalar type is that of k8s-pb's prost types (from upstream's
//! generated.proto) as seen on the wire.
//!
//! When this fails after the registry or the API version changed, regenerate the table (see
//! `examples/gen-table.rs`).

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::schemars::{generate::SchemaSettings, SchemaGenerator};
use serde_json::Value;
use skiff_proto::schema::{Shape, Special, Ty};
use skiff_proto::table::{MESSAGES, ROOTS};

#[test]
fn every_served_kind_and_body_kind_has_a_root() {
    let mut missing = Vec::new();
    let mut check = |api_version: String, kind: &str| {
        if skiff_proto::root(&api_version, kind).is_none() {
            missing.push(format!("{api_version} {kind}"));
        }
    };
    for r in skiff_core::registry::RESOURCES {
        check(r.api_version(), r.kind);
        for s in r.subresources {
            if matches!(s.name, "status" | "finalize") {
                continue;
            }
            let g = if s.group.is_empty() { r.group } else { s.group };
            let v = if s.version.is_empty() {
                r.version
            } else {
                s.version
            };
            let av = if g.is_empty() {
                v.to_string()
            } else {
                format!("{g}/{v}")
            };
            check(av, s.kind);
        }
    }
    for (av, k) in [
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
        ("authentication.k8s.io/v1", "SelfSubjectReview"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("meta.k8s.io/v1", "DeleteOptions"),
        ("apps/v1", "DeleteOptions"),
    ] {
        check(av.to_string(), k);
    }
    assert!(
        missing.is_empty(),
        "regenerate the table; missing: {missing:?}"
    );
}

#[test]
fn message_indices_are_in_range_and_roots_are_objects() {
    for m in MESSAGES {
        for f in m.fields {
            if let Ty::Message(i) = f.ty {
                assert!(usize::from(i) < MESSAGES.len(), "{}.{}", m.name, f.json);
            }
        }
    }
    for r in ROOTS {
        assert_eq!(MESSAGES[usize::from(r.message)].special, Special::None);
        assert!(
            MESSAGES[usize::from(r.message)]
                .name
                .ends_with(&format!(".{}", r.kind)),
            "{r:?}"
        );
    }
}

macro_rules! schemas {
    ($gen:ident; $($t:ty),* $(,)?) => { $( $gen.subschema_for::<$t>(); )* };
}

/// Every definition k8s-openapi (v1.32) has for the kinds in the table.
fn definitions() -> serde_json::Map<String, Value> {
    use k8s_openapi::api::{
        apps::v1 as apps, authentication::v1 as authn, authorization::v1 as authz,
        autoscaling::v1 as autoscaling, batch::v1 as batch, coordination::v1 as coordination,
        core::v1 as core, discovery::v1 as discovery, events::v1 as events,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
        scheduling::v1 as scheduling, storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apireg;
    let mut g: SchemaGenerator = SchemaSettings::openapi3().into_generator();
    schemas!(g;
        core::ConfigMap, core::Endpoints, core::Event, core::LimitRange, core::Namespace,
        core::Node, core::PersistentVolume, core::PersistentVolumeClaim, core::Pod,
        core::ReplicationController, core::ResourceQuota, core::Secret, core::Service,
        core::ServiceAccount, core::Binding, apireg::APIService, apps::ControllerRevision,
        apps::DaemonSet, apps::Deployment, apps::ReplicaSet, apps::StatefulSet,
        autoscaling::Scale, batch::CronJob, batch::Job, coordination::Lease,
        discovery::EndpointSlice, events::Event, networking::Ingress, networking::IngressClass,
        networking::NetworkPolicy, policy::Eviction, policy::PodDisruptionBudget,
        rbac::ClusterRole, rbac::ClusterRoleBinding, rbac::Role, rbac::RoleBinding,
        scheduling::PriorityClass, storage::StorageClass, apiext::CustomResourceDefinition,
        authz::SelfSubjectAccessReview, authz::SelfSubjectRulesReview,
        authz::SubjectAccessReview, authz::LocalSubjectAccessReview,
        authn::SelfSubjectReview, authn::TokenReview, authn::TokenRequest, meta::DeleteOptions,
    );
    g.take_definitions(true)
}

/// The JSON names a message's object form has, with inlined messages flattened.
fn json_names(idx: u16, out: &mut BTreeSet<String>) {
    for f in MESSAGES[usize::from(idx)].fields {
        match (f.inline(), f.ty) {
            (true, Ty::Message(t)) => json_names(t, out),
            _ => {
                out.insert(f.json.to_string());
            }
        }
    }
}

#[test]
fn json_names_match_the_v1_32_schemas() {
    let defs = definitions();
    let mut compared = 0;
    let mut problems = Vec::new();
    for (i, m) in MESSAGES.iter().enumerate() {
        if m.special != Special::None {
            continue;
        }
        let Some(def) = defs.get(m.name) else {
            // Inlined-only messages (VolumeSource, ProbeHandler, ...) have no definition.
            continue;
        };
        let mut ours = BTreeSet::new();
        json_names(i as u16, &mut ours);
        let theirs: BTreeSet<String> = def
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        // A kind's apiVersion and kind travel in the envelope, not in its message.
        if ROOTS.iter().any(|r| usize::from(r.message) == i) {
            ours.extend(["apiVersion".to_string(), "kind".to_string()]);
        }
        if ours != theirs {
            problems.push(format!(
                "{}: only in table {:?}, only in schema {:?}",
                m.name,
                ours.difference(&theirs).collect::<Vec<_>>(),
                theirs.difference(&ours).collect::<Vec<_>>()
            ));
        }
        compared += 1;
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(compared > 250, "only {compared} messages compared");
}

/// k8s-pb's field numbers and scalar types, observed on the wire: each field of a message is
/// set through prost's own encoding of a populated value, read back with our reader, and the
/// table must name a field with that number.
#[test]
fn field_numbers_agree_with_k8s_pb() {
    use k8s_pb::api::core::v1 as core;
    use prost::Message;
    // A Container with every scalar, repeated and message field set, and a PodSpec likewise,
    // cover the largest messages; their numbers must all be in the table with the right type.
    let c = core::Container {
        name: Some("n".into()),
        image: Some("i".into()),
        command: vec!["c".into()],
        args: vec!["a".into()],
        working_dir: Some("w".into()),
        ports: vec![core::ContainerPort::default()],
        env_from: vec![core::EnvFromSource::default()],
        env: vec![core::EnvVar::default()],
        resources: Some(core::ResourceRequirements::default()),
        resize_policy: vec![core::ContainerResizePolicy::default()],
        restart_policy: Some("Always".into()),
        volume_mounts: vec![core::VolumeMount::default()],
        volume_devices: vec![core::VolumeDevice::default()],
        liveness_probe: Some(core::Probe::default()),
        readiness_probe: Some(core::Probe::default()),
        startup_probe: Some(core::Probe::default()),
        lifecycle: Some(core::Lifecycle::default()),
        termination_message_path: Some("t".into()),
        termination_message_policy: Some("File".into()),
        image_pull_policy: Some("Always".into()),
        security_context: Some(core::SecurityContext::default()),
        stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(true),
        ..Default::default()
    };
    let bytes = c.encode_to_vec();
    let table = MESSAGES
        .iter()
        .find(|m| m.name == "io.k8s.api.core.v1.Container")
        .unwrap();
    let mut r = skiff_proto::wire::Reader::new(&bytes);
    let mut seen = 0;
    while let Some((n, v)) = r.field().unwrap() {
        let f = table
            .fields
            .iter()
            .find(|f| f.number == n)
            .unwrap_or_else(|| panic!("field {n} of Container not in the table"));
        use skiff_proto::wire::Value as W;
        let ok = matches!(
            (f.ty, f.shape, v),
            (
                Ty::Bool | Ty::Int32 | Ty::Int64,
                Shape::Single,
                W::Varint(_)
            ) | (Ty::String | Ty::Bytes | Ty::Message(_), _, W::Len(_))
                | (_, Shape::Repeated | Shape::Map, W::Len(_))
        );
        assert!(ok, "Container field {n} ({}) has type {:?}", f.json, f.ty);
        seen += 1;
    }
    assert!(seen >= 24);
    // And the names the table gives these numbers decode to the fields set above.
    let pod = core::Pod {
        spec: Some(core::PodSpec {
            containers: vec![c],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(
        k8s_pb::apimachinery::pkg::runtime::Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
            }),
            raw: Some(pod.encode_to_vec()),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let v = skiff_proto::decode_body(&body).unwrap();
    let keys: HashMap<&str, &Value> = v["spec"]["containers"][0]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    for k in [
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "ports",
        "envFrom",
        "env",
        "resources",
        "resizePolicy",
        "restartPolicy",
        "volumeMounts",
        "volumeDevices",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "securityContext",
        "stdin",
        "stdinOnce",
        "tty",
    ] {
        assert!(keys.contains_key(k), "{k} missing from {v}");
    }
}

/// Encodes a message of the table with every field set (one element per list, one entry per
/// map), with our own writer; a message type already being filled in further up (the
/// recursive JSONSchemaProps) is left out.
fn populated(idx: u16, path: &mut Vec<u16>) -> skiff_proto::wire::Writer {
    use skiff_proto::wire::Writer;
    let m = &MESSAGES[usize::from(idx)];
    let mut w = Writer::new();
    match m.special {
        Special::Time => {
            w.int64(1, 1_700_000_000);
            return w;
        }
        Special::MicroTime => {
            w.int64(1, 1_700_000_000).int64(2, 123_456_000);
            return w;
        }
        Special::Duration => {
            w.int64(1, 90_000_000_000);
            return w;
        }
        Special::IntOrString => {
            w.int64(1, 1).string(3, "25%");
            return w;
        }
        Special::Quantity => {
            w.string(1, "1Gi");
            return w;
        }
        Special::RawExtension | Special::FieldsV1 => {
            w.bytes(1, br#"{"a":1}"#);
            return w;
        }
        Special::Unknown => return w,
        _ => {}
    }
    for f in m.fields {
        let mut value = |w: &mut Writer, n: u32| -> bool {
            match f.ty {
                Ty::String => {
                    w.string(n, "x");
                }
                Ty::Bytes => {
                    w.bytes(n, &[1, 2, 3]);
                }
                Ty::Bool => {
                    w.bool(n, true);
                }
                Ty::Int32 | Ty::Int64 => {
                    w.int64(n, 7);
                }
                Ty::Double => {
                    w.double(n, 1.5);
                }
                Ty::Message(t) => {
                    if path.contains(&t) {
                        return false;
                    }
                    path.push(t);
                    let inner = populated(t, path);
                    path.pop();
                    w.message(n, &inner);
                }
            }
            true
        };
        match f.shape {
            Shape::Single | Shape::Repeated => {
                value(&mut w, f.number);
            }
            Shape::Map => {
                let mut entry = Writer::new();
                entry.string(1, "k");
                if value(&mut entry, 2) {
                    w.message(f.number, &entry);
                }
            }
        }
    }
    w
}

macro_rules! typed_round_trip {
    ($($t:ty),* $(,)?) => {
        vec![$((
            <$t as k8s_openapi::Resource>::API_VERSION,
            <$t as k8s_openapi::Resource>::KIND,
            (|v: Value| serde_json::from_value::<$t>(v).map(|t| serde_json::to_value(t).unwrap()))
                as fn(Value) -> Result<Value, serde_json::Error>,
        )),*]
    };
}

/// Every field of every kind, set at once, decodes to JSON that k8s-openapi's type for the kind
/// reads back whole: the same names, the same value shapes (quantities, times, int-or-string,
/// bytes, maps, lists), nothing it would drop.
#[test]
fn every_field_of_every_kind_decodes_to_what_k8s_openapi_reads() {
    use k8s_openapi::api::{
        apps::v1 as apps, authentication::v1 as authn, authorization::v1 as authz,
        autoscaling::v1 as autoscaling, batch::v1 as batch, coordination::v1 as coordination,
        core::v1 as core, discovery::v1 as discovery, events::v1 as events,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
        scheduling::v1 as scheduling, storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apireg;
    let kinds = typed_round_trip![
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
        core::Binding,
        apireg::APIService,
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
        apiext::CustomResourceDefinition,
        authz::SelfSubjectAccessReview,
        authz::SelfSubjectRulesReview,
        authz::SubjectAccessReview,
        authz::LocalSubjectAccessReview,
        authn::SelfSubjectReview,
        authn::TokenReview,
        authn::TokenRequest,
    ];
    let mut checked = 0;
    for r in ROOTS {
        let api_version = if r.group.is_empty() {
            r.version.to_string()
        } else {
            format!("{}/{}", r.group, r.version)
        };
        let Some((_, _, read)) = kinds
            .iter()
            .find(|(av, k, _)| *av == api_version && *k == r.kind)
        else {
            assert_eq!(
                r.kind, "DeleteOptions",
                "no k8s-openapi type listed for {r:?}"
            );
            continue;
        };
        let raw = populated(r.message, &mut vec![r.message]).into_bytes();
        let mut env = skiff_proto::wire::Writer::new();
        let mut tm = skiff_proto::wire::Writer::new();
        tm.string(1, &api_version).string(2, r.kind);
        env.message(1, &tm).bytes(2, &raw);
        let mut body = b"k8s\0".to_vec();
        body.extend(env.into_bytes());
        let decoded = skiff_proto::decode_body(&body)
            .unwrap_or_else(|e| panic!("{api_version} {}: {e}", r.kind));
        let reread = read(decoded.clone())
            .unwrap_or_else(|e| panic!("{api_version} {}: k8s-openapi refuses it: {e}", r.kind));
        let mut diffs = Vec::new();
        differences(&decoded, &reread, String::new(), &mut diffs);
        assert!(diffs.is_empty(), "{api_version} {}: {diffs:#?}", r.kind);
        checked += 1;
    }
    assert!(checked >= 45, "{checked}");
}

/// Where two JSON values differ, as paths with both sides.
fn differences(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => differences(p, q, format!("{path}.{k}"), out),
                    // k8s-openapi writes the type of an embedded object (a StatefulSet's
                    // volumeClaimTemplates); Go leaves its empty TypeMeta out.
                    (None, Some(_)) if !path.is_empty() && (k == "apiVersion" || k == "kind") => {}
                    (p, q) => out.push(format!("{path}.{k}: decoded {p:?}, k8s-openapi {q:?}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: decoded {a}, k8s-openapi {b}")),
        _ => {}
    }
}
