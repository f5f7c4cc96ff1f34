//! Table columns and cells against upstream's printers.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_core::registry::{lookup, RESOURCES};
use skiff_core::table::{
    cells, columns, human_duration, human_secs, table, table_with, IncludeObject,
};
use skiff_core::Resource;

fn now() -> jiff::Timestamp {
    "2024-06-01T12:00:00Z".parse().unwrap()
}

fn res(group: &str, plural: &str) -> &'static Resource {
    lookup(group, "v1", plural).unwrap()
}

fn names(r: &Resource) -> Vec<&'static str> {
    columns(r).iter().map(|c| c.name).collect()
}

#[test]
fn human_duration_matches_upstream() {
    let cases = [
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 4 * 60, "5h4m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (830 * 86400, "2y100d"),
        (8 * 365 * 86400, "8y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
    }
    assert_eq!(human_secs(-1), "0s");
    assert_eq!(human_secs(-2), "<invalid>");
}

#[test]
fn every_resource_has_one_cell_per_column() {
    let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2024-06-01T11:00:00Z"}});
    for r in RESOURCES {
        let cols = columns(r);
        assert_eq!(cells(r, &obj, now()).len(), cols.len(), "{}", r.plural);
        let name = cols.iter().find(|c| c.name == "Name").unwrap();
        assert_eq!(name.format, "name");
    }
}

#[test]
fn column_lists() {
    assert_eq!(
        names(res("", "pods")),
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert_eq!(
        columns(res("", "pods"))
            .iter()
            .map(|c| c.priority)
            .collect::<Vec<_>>(),
        [0, 0, 0, 0, 0, 1, 1, 1, 1]
    );
    assert_eq!(
        names(res("apps", "deployments")),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        names(res("", "services")),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    assert_eq!(
        names(res("", "events")),
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    assert_eq!(
        names(res("events.k8s.io", "events")),
        names(res("", "events"))
    );
    assert_eq!(
        names(res("rbac.authorization.k8s.io", "roles")),
        ["Name", "Created At"]
    );
    assert_eq!(
        columns(res("rbac.authorization.k8s.io", "roles"))[1].type_,
        "date"
    );
    assert_eq!(
        names(res("apiregistration.k8s.io", "apiservices")),
        ["Name", "Service", "Available", "Age"]
    );
    let col = serde_json::to_value(&columns(res("", "configmaps"))[1]).unwrap();
    assert_eq!(col["name"], "Data");
    assert_eq!(col["type"], "string");
    assert_eq!(col["format"], "");
    assert_eq!(col["priority"], 0);
    assert!(col["description"]
        .as_str()
        .unwrap()
        .starts_with("Data contains the configuration data"));
}

fn pod(status: Value) -> Value {
    json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-06-01T11:55:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
        "status": status
    })
}

fn pod_row(p: &Value) -> Vec<Value> {
    cells(res("", "pods"), p, now())
}

#[test]
fn pod_status_and_ready() {
    let running = pod(json!({
        "phase": "Running",
        "podIPs": [{"ip": "10.0.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-06-01T11:57:00Z"}}},
            {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}
        ]
    }));
    assert_eq!(
        pod_row(&running),
        vec![
            json!("web"),
            json!("1/2"),
            json!("Running"),
            json!("2 (3m ago)"),
            json!("5m"),
            json!("10.0.0.5"),
            json!("n1"),
            json!("<none>"),
            json!("<none>")
        ]
    );

    let crash = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    ]}));
    assert_eq!(pod_row(&crash)[2], "CrashLoopBackOff");
    assert_eq!(pod_row(&crash)[3], "5");

    let creating = pod(json!({"phase": "Pending", "containerStatuses": [
        {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}
    ]}));
    assert_eq!(pod_row(&creating)[2], "ContainerCreating");

    let pending = pod(json!({"phase": "Pending"}));
    assert_eq!(pod_row(&pending)[2], "Pending");
    assert_eq!(pod_row(&pending)[5], "<none>");

    let done = pod(json!({"phase": "Succeeded", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    ]}));
    assert_eq!(pod_row(&done)[2], "Completed");
    let t = table(
        res("", "pods"),
        &[done],
        now(),
        IncludeObject::None,
        json!({}),
    );
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");

    let killed = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}
    ]}));
    assert_eq!(pod_row(&killed)[2], "Signal:9");

    let mut deleting = pod(json!({"phase": "Running"}));
    deleting["metadata"]["deletionTimestamp"] = json!("2024-06-01T11:59:00Z");
    assert_eq!(pod_row(&deleting)[2], "Terminating");
}

#[test]
fn pod_init_containers_and_gates() {
    let mut p = pod(json!({"phase": "Pending", "initContainerStatuses": [
        {"name": "init", "state": {"waiting": {"reason": "PodInitializing"}}}
    ]}));
    p["spec"]["initContainers"] = json!([{"name": "init"}]);
    assert_eq!(pod_row(&p)[2], "Init:0/1");

    p["status"]["initContainerStatuses"][0]["state"] =
        json!({"waiting": {"reason": "ImagePullBackOff"}});
    assert_eq!(pod_row(&p)[2], "Init:ImagePullBackOff");

    p["status"]["initContainerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 2}});
    assert_eq!(pod_row(&p)[2], "Init:ExitCode:2");

    // A started sidecar counts towards READY and the total.
    p["spec"]["initContainers"] = json!([{"name": "init", "restartPolicy": "Always"}]);
    p["status"]["initContainerStatuses"] =
        json!([{"name": "init", "started": true, "ready": true, "state": {"running": {}}}]);
    assert_eq!(pod_row(&p)[1], "1/3");

    p["spec"]["readinessGates"] = json!([{"conditionType": "x"}, {"conditionType": "y"}]);
    p["status"]["conditions"] = json!([{"type": "x", "status": "True"}]);
    assert_eq!(pod_row(&p)[8], "1/2");
}

#[test]
fn workloads() {
    let dep = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-06-01T10:00:00Z"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    });
    assert_eq!(
        cells(res("apps", "deployments"), &dep, now()),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("120m"),
            json!("a,b"),
            json!("nginx,busybox"),
            json!("app=web")
        ]
    );
    let rs = cells(res("apps", "replicasets"), &dep, now());
    assert_eq!(rs[1..4], [json!(3), json!(0), json!(2)]);
    let sts = cells(res("apps", "statefulsets"), &dep, now());
    assert_eq!(sts[1], "2/3");

    let job = json!({
        "metadata": {"name": "j", "creationTimestamp": "2024-06-01T11:00:00Z"},
        "spec": {"completions": 1, "template": {"spec": {"containers": []}}},
        "status": {"succeeded": 1, "startTime": "2024-06-01T11:00:00Z", "completionTime": "2024-06-01T11:00:30Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}
    });
    let jc = cells(res("batch", "jobs"), &job, now());
    assert_eq!(
        jc[1..5],
        [json!("Complete"), json!("1/1"), json!("30s"), json!("60m")]
    );
    assert_eq!(jc[7], "<none>");

    let cj =
        json!({"metadata": {"name": "c"}, "spec": {"schedule": "*/5 * * * *", "suspend": false}});
    let cc = cells(res("batch", "cronjobs"), &cj, now());
    assert_eq!(
        cc[1..7],
        [
            json!("*/5 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(0),
            json!("<none>"),
            json!("<unknown>")
        ]
    );
}

#[test]
fn services() {
    let svc = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-06-01T11:59:55Z"},
        "spec": {"type": "NodePort", "clusterIPs": ["10.43.0.10"], "selector": {"app": "web"},
                 "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30080, "protocol": "TCP"}]}
    });
    assert_eq!(
        cells(res("", "services"), &svc, now()),
        vec![
            json!("web"),
            json!("NodePort"),
            json!("10.43.0.10"),
            json!("<none>"),
            json!("80/TCP,443:30080/TCP"),
            json!("5s"),
            json!("app=web")
        ]
    );
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1"}});
    let c = cells(res("", "services"), &lb, now());
    assert_eq!(
        c[2..5],
        [json!("10.0.0.1"), json!("<pending>"), json!("<none>")]
    );
    let ext = json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "example.com"}});
    assert_eq!(cells(res("", "services"), &ext, now())[3], "example.com");
}

#[test]
fn nodes_namespaces_and_simple_kinds() {
    let node = json!({
        "metadata": {"name": "n1", "creationTimestamp": "2024-05-29T12:00:00Z",
                     "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": ""}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian"}}
    });
    assert_eq!(
        cells(res("", "nodes"), &node, now()),
        vec![
            json!("n1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,master"),
            json!("3d"),
            json!("v1.32.4"),
            json!("192.168.1.2"),
            json!("<none>"),
            json!("Debian"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );
    let ns = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
    assert_eq!(
        cells(res("", "namespaces"), &ns, now()),
        vec![json!("default"), json!("Active"), json!("<unknown>")]
    );
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": ""}});
    assert_eq!(cells(res("", "configmaps"), &cm, now())[1], 2);
    let sec = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": ""}});
    assert_eq!(
        cells(res("", "secrets"), &sec, now())[1..3],
        [json!("Opaque"), json!(1)]
    );
    let role = json!({"metadata": {"name": "r", "creationTimestamp": "2024-06-01T11:00:00Z"}});
    assert_eq!(
        cells(res("rbac.authorization.k8s.io", "roles"), &role, now()),
        vec![json!("r"), json!("2024-06-01T11:00:00Z")]
    );
    let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
                    "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "namespace": "d", "name": "sa"}]});
    let c = cells(res("rbac.authorization.k8s.io", "rolebindings"), &rb, now());
    assert_eq!(c[1], "ClusterRole/view");
    assert_eq!(c[3..6], [json!("alice"), json!(""), json!("d/sa")]);
    let ep = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                    "ports": [{"port": 80}, {"port": 443}]}]});
    assert_eq!(
        cells(res("", "endpoints"), &ep, now())[1],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
    );
    let sc = json!({"metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                    "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        cells(res("storage.k8s.io", "storageclasses"), &sc, now())[..5],
        [
            json!("local (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false)
        ]
    );
    let cr = json!({"metadata": {"name": "ds-1", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": true}]}, "revision": 1});
    assert_eq!(
        cells(res("apps", "controllerrevisions"), &cr, now())[1..3],
        [json!("daemonset.apps/ds"), json!(1)]
    );
}

#[test]
fn events() {
    let ev = json!({
        "metadata": {"name": "web.1"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
        "reason": "Pulled", "message": " Pulled \n", "type": "Normal",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2024-06-01T11:50:00Z", "lastTimestamp": "2024-06-01T11:59:00Z", "count": 4
    });
    assert_eq!(
        cells(res("", "events"), &ev, now()),
        vec![
            json!("60s"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web"),
            json!("spec.containers{a}"),
            json!("kubelet, n1"),
            json!("Pulled"),
            json!("10m"),
            json!(4),
            json!("web.1")
        ]
    );
    let v1 = skiff_core::events::core_to_events_v1(&ev);
    assert_eq!(
        cells(res("events.k8s.io", "events"), &v1, now()),
        cells(res("", "events"), &ev, now())
    );
    let new_style = json!({"metadata": {"name": "x"}, "eventTime": "2024-06-01T11:59:30.000000Z",
                           "reportingComponent": "ctl", "involvedObject": {"kind": "Node"}});
    let c = cells(res("", "events"), &new_style, now());
    assert_eq!(c[0], "30s");
    assert_eq!(c[3], "node");
    assert_eq!(c[5], "ctl");
    assert_eq!(c[8], 1);
}

#[test]
fn table_shape() {
    let r = res("", "configmaps");
    let obj = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "namespace": "d"}, "data": {}});
    let t = table(
        r,
        std::slice::from_ref(&obj),
        now(),
        IncludeObject::Metadata,
        json!({"resourceVersion": "7"}),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"]["resourceVersion"], "7");
    assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 3);
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "c", "namespace": "d"}})
    );
    let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "kind",
            "apiVersion",
            "metadata",
            "columnDefinitions",
            "rows"
        ]
    );
    let t = table(
        r,
        std::slice::from_ref(&obj),
        now(),
        IncludeObject::Object,
        Value::Null,
    );
    assert_eq!(t["rows"][0]["object"], obj);
    assert_eq!(t["metadata"], json!({}));
    let t = table_with(
        r,
        std::slice::from_ref(&obj),
        now(),
        IncludeObject::None,
        json!({}),
        false,
    );
    assert_eq!(t["columnDefinitions"], Value::Null);
    assert!(t["rows"][0].get("object").is_none());
    assert_eq!(
        table(r, &[], now(), IncludeObject::Metadata, json!({}))["rows"],
        json!([])
    );
}
