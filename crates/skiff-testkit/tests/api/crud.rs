//! Create, get, list, replace, patch and delete for a representative set of built-in kinds, and
//! the object metadata the server owns (uid, creationTimestamp, resourceVersion, generation,
//! generateName), as upstream's generic registry sets them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Secret, Service};
use k8s_openapi::api::events::v1::Event as NewEvent;
use k8s_openapi::ByteString;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::{json, Value};

use crate::{client, expect_status, from_json, namespace, rv_num};

const M: &str = "crud";

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn pod_template(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}
    })
}

/// Runs the whole verb cycle on one object and checks what the server owns in its metadata.
async fn cycle(
    client: &kube::Client,
    ns: Option<&str>,
    ar: ApiResource,
    name: &str,
    body: Value,
    has_generation: bool,
) {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let mut obj: DynamicObject = from_json(body);
    obj.metadata.name = Some(name.into());
    obj.types = Some(kube::api::TypeMeta {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
    });
    let what = format!("{} {name}", ar.kind);

    // create
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| {
            panic!("create {what}: {e:?}");
        });
    let uid = created.metadata.uid.clone().expect("uid");
    assert_eq!(uid.len(), 36, "{what}: uid is a UUID");
    assert!(
        created.metadata.creation_timestamp.is_some(),
        "{what}: creationTimestamp"
    );
    let rv1 = rv_num(created.metadata.resource_version.as_ref());
    if has_generation {
        assert_eq!(created.metadata.generation, Some(1), "{what}: generation");
    }
    let types = created.types.clone().expect("kind and apiVersion");
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        (ar.api_version.as_str(), ar.kind.as_str())
    );

    // get
    let got = api.get(name).await.unwrap();
    assert_eq!(got.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(rv_num(got.metadata.resource_version.as_ref()), rv1);

    // list
    let list = api.list(&ListParams::default()).await.unwrap();
    assert!(
        list.items
            .iter()
            .any(|o| o.metadata.uid.as_deref() == Some(&uid)),
        "{what}: listed"
    );
    assert!(rv_num(list.metadata.resource_version.as_ref()) >= rv1);

    // replace (a label change), with the read resourceVersion
    let mut changed = got.clone();
    changed
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("replaced".into(), "yes".into());
    let replaced = api
        .replace(name, &PostParams::default(), &changed)
        .await
        .unwrap();
    let rv2 = rv_num(replaced.metadata.resource_version.as_ref());
    assert!(rv2 > rv1, "{what}: resourceVersion increases on replace");
    assert_eq!(replaced.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(
        replaced.metadata.creation_timestamp,
        created.metadata.creation_timestamp
    );
    if has_generation {
        assert_eq!(
            replaced.metadata.generation,
            Some(1),
            "{what}: a label change keeps generation"
        );
    }

    // merge patch
    let patched = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"merged": "1"}}})),
        )
        .await
        .unwrap();
    let rv3 = rv_num(patched.metadata.resource_version.as_ref());
    assert!(rv3 > rv2);
    assert_eq!(
        patched.metadata.annotations.as_ref().unwrap()["merged"],
        "1"
    );
    assert_eq!(patched.metadata.labels.as_ref().unwrap()["replaced"], "yes");

    // JSON patch
    let ops = json!([
        {"op": "test", "path": "/metadata/annotations/merged", "value": "1"},
        {"op": "add", "path": "/metadata/labels/json", "value": "patched"},
        {"op": "remove", "path": "/metadata/annotations/merged"}
    ]);
    let res = crate::raw(
        client,
        "PATCH",
        &format!("{}/{name}", api.resource_url()),
        &[("content-type", "application/json-patch+json")],
        serde_json::to_vec(&ops).unwrap(),
    )
    .await;
    assert_eq!(
        res.status,
        200,
        "{what}: json patch: {}",
        String::from_utf8_lossy(&res.body)
    );
    let patched: DynamicObject = serde_json::from_slice(&res.body).unwrap();
    let rv4 = rv_num(patched.metadata.resource_version.as_ref());
    assert!(rv4 > rv3);
    assert_eq!(patched.metadata.labels.as_ref().unwrap()["json"], "patched");
    assert!(patched
        .metadata
        .annotations
        .as_ref()
        .is_none_or(|a| !a.contains_key("merged")));

    // delete, then it is gone
    api.delete(name, &DeleteParams::default()).await.unwrap();
    // (a namespace first goes through Terminating while its content is removed)
    crate::eventually(10, &format!("{what} to be gone"), || {
        let api = api.clone();
        async move { api.get(name).await.err() }
    })
    .await;
    expect_status(api.get(name).await, 404, "NotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn verbs_on_representative_kinds() {
    let c = client(M).await;
    let ns = namespace(&c, "crud-kinds").await;
    let ns = Some(ns.as_str());
    let sel = json!({"matchLabels": {"app": "w"}});
    let cases: Vec<(Option<&str>, ApiResource, &str, Value, bool)> = vec![
        (
            None,
            ar("", "v1", "Namespace", "namespaces"),
            "crud-ns-x",
            json!({}),
            false,
        ),
        (
            ns,
            ar("", "v1", "ConfigMap", "configmaps"),
            "cm",
            json!({"data": {"k": "v"}}),
            false,
        ),
        (
            ns,
            ar("", "v1", "Secret", "secrets"),
            "sec",
            json!({"data": {"k": "dg=="}}),
            false,
        ),
        (
            ns,
            ar("", "v1", "Pod", "pods"),
            "pod",
            json!({"spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
            false,
        ),
        (
            ns,
            ar("", "v1", "Service", "services"),
            "svc",
            json!({"spec": {"ports": [{"port": 80}], "selector": {"app": "w"}}}),
            false,
        ),
        (
            ns,
            ar("apps", "v1", "Deployment", "deployments"),
            "deploy",
            json!({"spec": {"selector": sel, "template": pod_template("w")}}),
            true,
        ),
        (
            ns,
            ar("apps", "v1", "StatefulSet", "statefulsets"),
            "sts",
            json!({"spec": {"serviceName": "sts", "selector": sel, "template": pod_template("w")}}),
            true,
        ),
        (
            ns,
            ar("apps", "v1", "DaemonSet", "daemonsets"),
            "ds",
            json!({"spec": {"selector": sel, "template": pod_template("w")}}),
            true,
        ),
        (
            ns,
            ar("batch", "v1", "Job", "jobs"),
            "job",
            json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
            true,
        ),
        (
            ns,
            ar("batch", "v1", "CronJob", "cronjobs"),
            "cron",
            json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
            true,
        ),
        (
            ns,
            ar("networking.k8s.io", "v1", "Ingress", "ingresses"),
            "ing",
            json!({"spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "svc", "port": {"number": 80}}}}]}}]}}),
            true,
        ),
        (
            ns,
            ar("rbac.authorization.k8s.io", "v1", "Role", "roles"),
            "role",
            json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
            false,
        ),
        (
            ns,
            ar(
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "rolebindings",
            ),
            "rb",
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role"}, "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]}),
            false,
        ),
        (
            ns,
            ar("coordination.k8s.io", "v1", "Lease", "leases"),
            "lease",
            json!({"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}),
            false,
        ),
        (
            None,
            ar(
                "scheduling.k8s.io",
                "v1",
                "PriorityClass",
                "priorityclasses",
            ),
            "crud-prio",
            json!({"value": 1000, "description": "test"}),
            false,
        ),
        (
            None,
            ar("storage.k8s.io", "v1", "StorageClass", "storageclasses"),
            "crud-sc",
            json!({"provisioner": "example.com/x"}),
            false,
        ),
        (
            ns,
            ar(
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
            ),
            "pdb",
            json!({"spec": {"minAvailable": 1, "selector": sel}}),
            true,
        ),
    ];
    for (ns, ar, name, body, generation) in cases {
        cycle(&c, ns, ar, name, body, generation).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_data_round_trips_and_string_data_folds() {
    let c = client(M).await;
    let ns = namespace(&c, "crud-secret").await;
    let api: Api<Secret> = Api::namespaced(c.clone(), &ns);
    let bytes: Vec<u8> = (0u8..=255).collect();
    let s: Secret = from_json(json!({
        "metadata": {"name": "s"},
        "data": {"bin": k8s_openapi::ByteString(bytes.clone())},
        "stringData": {"plain": "hello", "bin": "overridden"}
    }));
    let created = api.create(&PostParams::default(), &s).await.unwrap();
    let data = created.data.clone().unwrap();
    assert_eq!(
        data["plain"],
        ByteString(b"hello".to_vec()),
        "stringData folded into data"
    );
    assert_eq!(
        data["bin"],
        ByteString(b"overridden".to_vec()),
        "stringData wins over data"
    );
    assert!(created.string_data.is_none(), "stringData is write-only");
    assert_eq!(created.type_.as_deref(), Some("Opaque"));

    // binary data round-trips
    let mut s2 = created.clone();
    s2.data
        .as_mut()
        .unwrap()
        .insert("bin".into(), ByteString(bytes.clone()));
    api.replace("s", &PostParams::default(), &s2).await.unwrap();
    let got = api.get("s").await.unwrap();
    assert_eq!(got.data.unwrap()["bin"].0, bytes);

    // wire form is base64
    let raw = crate::raw(
        &c,
        "GET",
        &format!("/api/v1/namespaces/{ns}/secrets/s"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(raw.json()["data"]["plain"], "aGVsbG8=");

    // invalid base64 is rejected
    let bad = crate::raw(
        &c,
        "POST",
        &format!("/api/v1/namespaces/{ns}/secrets"),
        &[("content-type", "application/json")],
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}, "data": {"k": "!!!not base64"}})).unwrap(),
    )
    .await;
    assert!(
        bad.status.is_client_error(),
        "invalid base64: {}",
        bad.status
    );
    expect_status(api.get("bad").await, 404, "NotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn service_ips_and_ports_are_allocated() {
    let c = client(M).await;
    let ns = namespace(&c, "crud-svc").await;
    let api: Api<Service> = Api::namespaced(c.clone(), &ns);
    let svc = |name: &str, spec: Value| -> Service {
        from_json(json!({"metadata": {"name": name}, "spec": spec}))
    };
    let a = api
        .create(
            &PostParams::default(),
            &svc("a", json!({"ports": [{"port": 80}]})),
        )
        .await
        .unwrap();
    let spec = a.spec.unwrap();
    let ip: std::net::Ipv4Addr = spec.cluster_ip.clone().unwrap().parse().unwrap();
    assert_eq!(
        &ip.octets()[..2],
        &[10, 43],
        "ClusterIP in 10.43.0.0/16: {ip}"
    );
    assert_eq!(spec.cluster_ips.unwrap(), vec![ip.to_string()]);
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
    );

    let b = api
        .create(&PostParams::default(), &svc("b", json!({"type": "NodePort", "ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]})))
        .await
        .unwrap();
    let bspec = b.spec.unwrap();
    assert_ne!(
        bspec.cluster_ip,
        Some(ip.to_string()),
        "distinct ClusterIPs"
    );
    let node_ports: Vec<i32> = bspec
        .ports
        .unwrap()
        .iter()
        .map(|p| p.node_port.unwrap())
        .collect();
    for p in &node_ports {
        assert!((30000..=32767).contains(p), "NodePort {p} in range");
    }
    assert_ne!(node_ports[0], node_ports[1]);

    // a duplicate explicit ClusterIP is refused and allocates nothing
    let dup = api
        .create(
            &PostParams::default(),
            &svc(
                "dup",
                json!({"clusterIP": ip.to_string(), "ports": [{"port": 80}]}),
            ),
        )
        .await;
    let s = expect_status(dup, 422, "Invalid");
    assert!(
        s.message.contains("spec.clusterIP") || format!("{s:?}").contains("spec.clusterIPs"),
        "{s:?}"
    );
    // a duplicate explicit NodePort too
    let dup = api
        .create(
            &PostParams::default(),
            &svc(
                "dup2",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": node_ports[0]}]}),
            ),
        )
        .await;
    expect_status(dup, 422, "Invalid");
    // headless
    let h = api
        .create(
            &PostParams::default(),
            &svc("h", json!({"clusterIP": "None", "ports": [{"port": 80}]})),
        )
        .await
        .unwrap();
    assert_eq!(h.spec.unwrap().cluster_ip.as_deref(), Some("None"));

    // once deleted, its ClusterIP can be asked for again
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let again = crate::eventually(5, "the ClusterIP to be released", || {
        let api = api.clone();
        let ip = ip.to_string();
        async move {
            api.create(
                &PostParams::default(),
                &svc("a2", json!({"clusterIP": ip, "ports": [{"port": 80}]})),
            )
            .await
            .ok()
        }
    })
    .await;
    assert_eq!(again.spec.unwrap().cluster_ip, Some(ip.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_defaults_and_generation() {
    let c = client(M).await;
    let ns = namespace(&c, "crud-deploy").await;
    let api: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let d: Deployment = from_json(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template("web")}
    }));
    let d = api.create(&PostParams::default(), &d).await.unwrap();
    let spec = d.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let ru = strategy.rolling_update.unwrap();
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    assert_eq!(ru.max_surge, Some(IntOrString::String("25%".into())));
    assert_eq!(ru.max_unavailable, Some(IntOrString::String("25%".into())));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    assert_eq!(
        pod.containers[0].termination_message_policy.as_deref(),
        Some("File")
    );
    assert_eq!(
        pod.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    assert_eq!(d.metadata.generation, Some(1));

    // label change: no bump
    let pp = PatchParams::default();
    let d = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    // status change: no bump
    let d = api
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"observedGeneration": 1, "replicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    // spec change: bump
    let d = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(2));
    // a no-op spec write: no bump
    let d = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_name_makes_unique_names() {
    let c = client(M).await;
    let ns = namespace(&c, "crud-genname").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let cm: ConfigMap = from_json(json!({"metadata": {"generateName": "gen-"}}));
    let mut names = std::collections::HashSet::new();
    for _ in 0..5 {
        let o = api.create(&PostParams::default(), &cm).await.unwrap();
        let name = o.metadata.name.unwrap();
        assert!(
            name.starts_with("gen-") && name.len() == "gen-".len() + 5,
            "{name}"
        );
        assert_eq!(o.metadata.generate_name.as_deref(), Some("gen-"));
        names.insert(name);
    }
    assert_eq!(names.len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_convert_between_versions() {
    let c = client(M).await;
    let ns = namespace(&c, "crud-events").await;
    let new_api: Api<NewEvent> = Api::namespaced(c.clone(), &ns);
    let core_api: Api<CoreEvent> = Api::namespaced(c.clone(), &ns);
    let e: NewEvent = from_json(json!({
        "metadata": {"name": "e1"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "skiff.test/ctl",
        "reportingInstance": "ctl-1",
        "action": "Scheduling",
        "reason": "Scheduled",
        "type": "Normal",
        "note": "assigned the pod",
        "regarding": {"kind": "Pod", "name": "p1", "namespace": ns, "apiVersion": "v1"}
    }));
    new_api.create(&PostParams::default(), &e).await.unwrap();
    let core = core_api.get("e1").await.unwrap();
    assert_eq!(core.message.as_deref(), Some("assigned the pod"));
    assert_eq!(core.involved_object.name.as_deref(), Some("p1"));
    assert_eq!(core.involved_object.kind.as_deref(), Some("Pod"));
    assert_eq!(core.reporting_component.as_deref(), Some("skiff.test/ctl"));
    assert_eq!(core.reason.as_deref(), Some("Scheduled"));

    let ce: CoreEvent = from_json(json!({
        "metadata": {"name": "e2"},
        "involvedObject": {"kind": "Pod", "name": "p2", "namespace": ns},
        "reason": "Pulled",
        "message": "pulled the image",
        "type": "Normal",
        "count": 3,
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2025-01-01T00:00:00Z",
        "lastTimestamp": "2025-01-01T00:01:00Z"
    }));
    core_api.create(&PostParams::default(), &ce).await.unwrap();
    let ne = new_api.get("e2").await.unwrap();
    assert_eq!(ne.note.as_deref(), Some("pulled the image"));
    assert_eq!(ne.regarding.as_ref().unwrap().name.as_deref(), Some("p2"));
    assert_eq!(ne.deprecated_count, Some(3));
    assert_eq!(
        ne.deprecated_source.as_ref().unwrap().component.as_deref(),
        Some("kubelet")
    );
    assert!(ne.deprecated_first_timestamp.is_some());

    // both lists see both events
    let n1 = new_api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    let n2 = core_api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!((n1, n2), (2, 2));
}
