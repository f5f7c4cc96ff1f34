//! Upstream's exact field-error messages for the common failures of built-in kinds, checked
//! through the public `validate_create`/`validate_update` entry points.

use serde_json::{json, Value};
use skiff_core::registry::lookup;
use skiff_core::{defaults, validation, FieldError};

fn create(group: &str, plural: &str, mut obj: Value) -> Vec<String> {
    let r = lookup(group, "v1", plural).unwrap();
    defaults::apply(r, &mut obj);
    validation::validate_create(r, &obj)
        .iter()
        .map(FieldError::to_string)
        .collect()
}

fn update(group: &str, plural: &str, mut new: Value, mut old: Value) -> Vec<String> {
    let r = lookup(group, "v1", plural).unwrap();
    defaults::apply(r, &mut old);
    defaults::apply(r, &mut new);
    validation::validate_update(r, &new, &old)
        .iter()
        .map(FieldError::to_string)
        .collect()
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "uid": "u-1", "creationTimestamp": "2024-01-01T00:00:00Z"})
}

fn deployment(name: &str, sel: Value, labels: Value) -> Value {
    json!({
        "metadata": meta(name),
        "spec": {"selector": sel, "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    })
}

#[test]
fn valid_objects_have_no_errors() {
    let d = deployment(
        "web",
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    assert_eq!(create("apps", "deployments", d), Vec::<String>::new());
    let pod = json!({"metadata": meta("p"), "spec": {"containers": [{"name": "c", "image": "busybox",
        "ports": [{"containerPort": 80}], "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}}]}});
    assert_eq!(create("", "pods", pod), Vec::<String>::new());
    let svc = json!({"metadata": meta("web"), "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
    assert_eq!(create("", "services", svc), Vec::<String>::new());
    let cj = json!({"metadata": meta("tick"), "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
        "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    assert_eq!(create("batch", "cronjobs", cj), Vec::<String>::new());
    let job = json!({"metadata": meta("once"), "spec": {"template": {"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox"}]}}}});
    assert_eq!(create("batch", "jobs", job), Vec::<String>::new());
    let sts = json!({"metadata": meta("db"), "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "pg",
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}}}]}});
    assert_eq!(create("apps", "statefulsets", sts), Vec::<String>::new());
}

#[test]
fn bad_name_is_rfc1123_subdomain_error() {
    let d = deployment(
        "Web",
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    assert_eq!(
        create("apps", "deployments", d),
        vec![
            r#"metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
        ]
    );
}

#[test]
fn service_names_are_dns1035_labels() {
    let svc = json!({"metadata": meta("1web"), "spec": {"ports": [{"port": 80}]}});
    assert_eq!(
        create("", "services", svc),
        vec![
            r#"metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#
        ]
    );
}

#[test]
fn pod_without_containers() {
    let pod = json!({"metadata": meta("p"), "spec": {}});
    assert_eq!(
        create("", "pods", pod),
        vec!["spec.containers: Required value"]
    );
}

#[test]
fn missing_and_mismatched_selector() {
    let d = deployment("web", Value::Null, json!({"app": "web"}));
    assert_eq!(
        create("apps", "deployments", d),
        vec![
            "spec.selector: Required value",
            r#"spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`"#
        ]
    );
    let d = deployment(
        "web",
        json!({"matchLabels": {"app": "other"}}),
        json!({"app": "web"}),
    );
    assert_eq!(
        create("apps", "deployments", d),
        vec![
            r#"spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`"#
        ]
    );
}

#[test]
fn selector_is_immutable() {
    let old = deployment(
        "web",
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web", "v": "1"}),
    );
    let new = deployment(
        "web",
        json!({"matchLabels": {"app": "web", "v": "1"}}),
        json!({"app": "web", "v": "1"}),
    );
    let errs = update("apps", "deployments", new, old);
    assert_eq!(
        errs,
        vec![
            r#"spec.selector: Invalid value: {"matchLabels":{"app":"web","v":"1"}}: field is immutable"#
        ]
    );
}

#[test]
fn container_errors() {
    let pod = json!({"metadata": meta("p"), "spec": {"containers": [
        {"name": "web", "image": "", "ports": [{"containerPort": 70000, "protocol": "HTTP"}]},
        {"name": "web", "image": "x", "volumeMounts": [{"name": "missing", "mountPath": "/m"}],
         "resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}
    ], "restartPolicy": "Sometimes"}});
    let errs = create("", "pods", pod);
    for want in [
        "spec.containers[0].image: Required value",
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        r#"spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP""#,
        r#"spec.containers[1].name: Duplicate value: "web""#,
        r#"spec.containers[1].volumeMounts[0].name: Not found: "missing""#,
        r#"spec.containers[1].resources.requests: Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi"#,
        r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
    ] {
        assert!(errs.iter().any(|e| e == want), "missing {want:?} in {errs:#?}");
    }
}

#[test]
fn job_template_needs_a_terminating_restart_policy() {
    let job = json!({"metadata": meta("once"), "spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox"}]}}}});
    assert_eq!(
        create("batch", "jobs", job),
        vec![
            r#"spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#
        ]
    );
}

#[test]
fn cron_schedule_errors() {
    let cj = |s: &str| {
        json!({"metadata": meta("tick"), "spec": {"schedule": s, "jobTemplate": {"spec": {"template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}})
    };
    assert_eq!(
        create("batch", "cronjobs", cj("every minute")),
        vec![
            r#"spec.schedule: Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]"#
        ]
    );
    assert_eq!(
        create("batch", "cronjobs", cj("@daily")),
        Vec::<String>::new()
    );
}

#[test]
fn service_errors() {
    let svc = json!({"metadata": meta("web"), "spec": {"type": "Magic", "ports": [{"port": 80}, {"port": 443}]}});
    let errs = create("", "services", svc);
    for want in [
        "spec.ports[0].name: Required value",
        "spec.ports[1].name: Required value",
        r#"spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#,
    ] {
        assert!(
            errs.iter().any(|e| e == want),
            "missing {want:?} in {errs:#?}"
        );
    }
    let svc = json!({"metadata": meta("web"), "spec": {"type": "ClusterIP", "ports": []}});
    assert_eq!(
        create("", "services", svc),
        vec!["spec.ports: Required value"]
    );
    let old = json!({"metadata": meta("web"), "spec": {"clusterIP": "10.43.0.10", "ports": [{"port": 80}]}});
    let new = json!({"metadata": meta("web"), "spec": {"clusterIP": "10.43.0.11", "ports": [{"port": 80}]}});
    assert_eq!(
        update("", "services", new, old),
        vec![r#"spec.clusterIPs[0]: Invalid value: ["10.43.0.11"]: may not change once set"#]
    );
    let np = json!({"metadata": meta("web"), "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}});
    assert_eq!(
        create("", "services", np),
        vec!["spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"]
    );
}

#[test]
fn config_data_and_labels() {
    let cm = json!({"metadata": {"name": "c", "namespace": "default", "labels": {"a b": "x"}},
        "data": {"bad key": "v"}});
    let errs = create("", "configmaps", cm);
    assert!(errs[0].starts_with(r#"metadata.labels: Invalid value: "a b": name part must consist of alphanumeric characters"#), "{errs:?}");
    assert!(errs[1].starts_with(r#"data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"#), "{errs:?}");
    let sec = json!({"metadata": meta("s"), "data": {"k": "not base64!"}});
    assert_eq!(
        create("", "secrets", sec),
        vec![
            r#"data[k]: Invalid value: "<secret contents redacted>": illegal base64 data at input byte 3"#
        ]
    );
}

#[test]
fn generate_name_and_namespace_rules() {
    let r = lookup("", "v1", "configmaps").unwrap();
    let errs = validation::validate_create(r, &json!({"metadata": {"namespace": "default"}}));
    assert_eq!(
        errs[0].to_string(),
        "metadata.name: Required value: name or generateName is required"
    );
    let ns = lookup("", "v1", "namespaces").unwrap();
    let errs = validation::validate_create(ns, &json!({"metadata": {"name": "a.b"}}));
    assert!(errs[0]
        .to_string()
        .starts_with(r#"metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label"#));
}

#[test]
fn statefulset_spec_is_mostly_immutable() {
    let sts = |svc: &str, replicas: i64| {
        json!({"metadata": meta("db"), "spec": {"serviceName": svc, "replicas": replicas,
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "pg"}]}}}})
    };
    assert_eq!(
        update("apps", "statefulsets", sts("db", 3), sts("db", 1)),
        Vec::<String>::new()
    );
    assert_eq!(
        update("apps", "statefulsets", sts("other", 1), sts("db", 1)),
        vec!["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]
    );
}

#[test]
fn pvc_and_rbac_and_priority_rules() {
    let pvc = json!({"metadata": meta("c"), "spec": {}});
    assert_eq!(
        create("", "persistentvolumeclaims", pvc),
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Required value"
        ]
    );
    let role =
        json!({"metadata": meta("r"), "rules": [{"apiGroups": [""], "resources": ["pods"]}]});
    assert_eq!(
        create("rbac.authorization.k8s.io", "roles", role),
        vec!["rules[0].verbs: Required value: verbs must contain at least one value"]
    );
    let rb = |name: &str| json!({"metadata": meta("rb"), "roleRef": {"kind": "Role", "name": name}, "subjects": [{"kind": "User", "name": "u"}]});
    assert_eq!(
        update(
            "rbac.authorization.k8s.io",
            "rolebindings",
            rb("b"),
            rb("a")
        ),
        vec![
            r#"roleRef: Invalid value: {"kind":"Role","name":"b","apiGroup":"rbac.authorization.k8s.io"}: cannot change roleRef"#
        ]
    );
    let pc = |v: i64| json!({"metadata": {"name": "high"}, "value": v});
    assert_eq!(
        update("scheduling.k8s.io", "priorityclasses", pc(2), pc(1)),
        vec!["value: Forbidden: may not be changed in an update."]
    );
}

#[test]
fn pdb_and_ingress_rules() {
    let pdb = json!({"metadata": meta("p"), "spec": {"minAvailable": 1, "maxUnavailable": 1}});
    let errs = create("policy", "poddisruptionbudgets", pdb);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].ends_with(": minAvailable and maxUnavailable cannot be both set"));
    let ing = json!({"metadata": meta("i"), "spec": {"rules": [{"host": "example.com", "http": {"paths": [
        {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    assert_eq!(
        create("networking.k8s.io", "ingresses", ing),
        vec!["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]
    );
}

/// A write that changes only the status is not validated as a whole again (what was stored
/// was valid when written, and upstream's status strategies validate only the status
/// update), while any other change still is.
#[test]
fn status_only_updates_skip_whole_object_validation() {
    // A container without an image cannot be created; pretend one was stored anyway.
    let stored = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("p"),
        "spec": {"containers": [{"name": "c"}]}});
    let mut status_only = stored.clone();
    status_only["status"] = json!({"phase": "Running"});
    status_only["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        update("", "pods", status_only, stored.clone()),
        Vec::<String>::new()
    );

    let mut labelled = stored.clone();
    labelled["metadata"]["labels"] = json!({"a": "b"});
    assert!(
        update("", "pods", labelled, stored.clone())
            .iter()
            .any(|e| e.contains("spec.containers[0].image: Required value")),
        "a metadata change validates the whole pod"
    );
}
