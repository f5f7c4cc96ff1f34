//! The cost of managedFields bookkeeping on the writes of a pod's life, without the API server
//! around it: the create's entry, the kubelet's first status update (a new entry) and its later
//! ones (an entry that already owns every field it changes), and a spec update by another
//! manager. For profiling (`valgrind --tool=callgrind`), not a benchmark of record.
//!
//! `cargo run --release -p skiff-core --example managed_fields -- [N] [PHASE]`, PHASE one of
//! create, status, kubelet, steady, update or all (default). `kubelet` is the status write as
//! the API server's pod status path makes it (the old side is the metadata without its entries
//! and the old status) with a pod IP and host IP of its own per pod, as the simulated kubelet
//! writes them, so that no two writes own the same set of fields.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{json, Value};
use skiff_core::managed::{self, Manager, Scope};
use skiff_core::{defaults, registry, Resource};

const NOW: &str = "2026-11-27T07:00:00Z";
const LATER: &str = "2026-11-27T07:00:05Z";

/// The allocator the `skiff` binary uses, so that costs here are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-7d4b9c8f6d-x2x9q", "namespace": "default",
            "uid": "0c6d1f7e-9f3a-4c1e-8d1b-3f2a6f7e9b10", "resourceVersion": "1201",
            "creationTimestamp": NOW,
            "labels": {"app.kubernetes.io/name": "web", "pod-template-hash": "7d4b9c8f6d",
                "tier": "frontend"},
            "annotations": {"prometheus.io/scrape": "true"}},
        "spec": {"containers": [{
            "name": "web", "image": "docker.io/library/nginx:1.27.3-alpine",
            "args": ["nginx", "-g", "daemon off;"],
            "ports": [{"name": "http", "containerPort": 80}],
            "env": [{"name": "TZ", "value": "UTC"}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                "limits": {"cpu": "500m", "memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10}
        }]}
    })
}

/// The kubelet's pod status: the Ready and ContainersReady conditions say `ready` since `at`, the
/// others have been true since the start.
fn status(ready: &str, at: &str) -> Value {
    let cond =
        |t: &str, s: &str, at: &str| json!({"type": t, "status": s, "lastTransitionTime": at});
    json!({
        "phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.42.0.5",
        "podIPs": [{"ip": "10.42.0.5"}], "startTime": NOW, "qosClass": "Burstable",
        "conditions": [cond("PodReadyToStartContainers", "True", NOW),
            cond("Initialized", "True", NOW), cond("Ready", ready, at),
            cond("ContainersReady", ready, at), cond("PodScheduled", "True", NOW)],
        "containerStatuses": [{"name": "web", "image": "docker.io/library/nginx:1.27.3-alpine",
            "imageID": "docker.io/library/nginx@sha256:0123", "containerID": "containerd://abc",
            "ready": ready == "True", "started": true, "restartCount": 0,
            "state": {"running": {"startedAt": NOW}}}]
    })
}

fn mgr<'a>(name: &'a str, subresource: &'a str) -> Manager<'a> {
    Manager {
        name,
        api_version: "v1",
        subresource,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let phase = args.next().unwrap_or_else(|| "all".into());
    let want = |p: &str| phase == "all" || phase == p;
    let res: &Resource = registry::lookup("", "v1", "pods").expect("pods");

    let mut created = pod();
    defaults::apply(res, &mut created);
    created["status"] = json!({"phase": "Pending", "qosClass": "Burstable"});
    let mf = managed::created(res, &created, Scope::Main, &mgr("kubectl", ""), NOW);
    created["metadata"]["managedFields"] = mf;
    let mut bound = created.clone();
    bound["spec"]["nodeName"] = json!("node-1");
    bound["status"]["conditions"] =
        json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": NOW}]);
    let kubelet = mgr("kubelet", "status");
    let mut running = bound.clone();
    running["status"] = status("True", NOW);
    managed::record_update(
        res,
        &bound,
        &mut running,
        Scope::Status,
        Some(&kubelet),
        NOW,
    )
    .expect("status");
    let mut flipped = running.clone();
    flipped["status"] = status("False", LATER);

    if want("create") {
        let t = Instant::now();
        for _ in 0..n {
            black_box(managed::created(
                res,
                black_box(&created),
                Scope::Main,
                &mgr("kubectl", ""),
                NOW,
            ));
        }
        report("create", t, n);
    }
    if want("status") {
        let t = Instant::now();
        for _ in 0..n {
            let mut new = bound.clone();
            new["status"] = status("True", NOW);
            managed::record_update(res, &bound, &mut new, Scope::Status, Some(&kubelet), NOW)
                .expect("status");
            black_box(new);
        }
        report("status (kubelet's first: a new entry)", t, n);
    }
    if want("kubelet") {
        let mut view = serde_json::Map::new();
        let mut meta = bound["metadata"].as_object().cloned().expect("metadata");
        meta.shift_remove("managedFields");
        view.insert("metadata".into(), Value::Object(meta));
        view.insert("status".into(), bound["status"].clone());
        let view = Value::Object(view);
        let t = Instant::now();
        for i in 0..n {
            let mut new = bound.clone();
            let mut st = status("True", NOW);
            let (pod_ip, host_ip) = (
                format!("10.42.{}.{}", i / 250, i % 250),
                format!("10.0.0.{}", i % 50),
            );
            st["podIP"] = json!(pod_ip);
            st["podIPs"] = json!([{"ip": pod_ip}]);
            st["hostIP"] = json!(host_ip);
            st["hostIPs"] = json!([{"ip": host_ip}]);
            new["status"] = st;
            managed::record_update(res, &view, &mut new, Scope::Status, Some(&kubelet), NOW)
                .expect("status");
            black_box(new);
        }
        report(
            "kubelet (the pod status path's first write, IPs per pod)",
            t,
            n,
        );
    }
    if want("steady") {
        let t = Instant::now();
        for _ in 0..n {
            let mut new = flipped.clone();
            managed::record_update(
                res,
                &running,
                &mut new,
                Scope::Status,
                Some(&kubelet),
                LATER,
            )
            .expect("status");
            black_box(new);
        }
        report("steady (kubelet owns what it changes)", t, n);
    }
    if want("update") {
        let t = Instant::now();
        for _ in 0..n {
            let mut new = running.clone();
            new["metadata"]["labels"]["tier"] = json!("backend");
            new["spec"]["containers"][0]["image"] = json!("nginx:1.28");
            managed::record_update(
                res,
                &running,
                &mut new,
                Scope::Main,
                Some(&mgr("editor", "")),
                LATER,
            )
            .expect("update");
            black_box(new);
        }
        report("update (another manager takes spec fields)", t, n);
    }
}

fn report(what: &str, t: Instant, n: usize) {
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{what}: {us:.2} µs per write (clones of the object included)");
}
