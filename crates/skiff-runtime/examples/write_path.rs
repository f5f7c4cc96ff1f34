//! The cost of each write a pod's life takes through the API server's storage path, with no
//! HTTP or TLS: create (from JSON bytes, as a request body), bind, a Scheduled event, and the
//! kubelet's status update. For profiling (`perf`, `valgrind --tool=callgrind`); the timed
//! figures users see come from `skiff bench`.
//!
//! `cargo run --release -p skiff-runtime --example write_path -- [PODS] [PHASE]`, PHASE one of
//! create, bind, event, status or all (default).

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use skiff_apiserver::{ApiOptions, ApiServer};
use skiff_runtime::client::Client;
use skiff_store::sqlite::{SqliteOptions, SqliteStore};

/// The allocator the `skiff` binary uses, so that costs here are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pod_json(name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default",
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
    }))
    .expect("json")
}

fn running(now: &Time) -> PodStatus {
    let cond = |t: &str| PodCondition {
        type_: t.into(),
        status: "True".into(),
        last_transition_time: Some(now.clone()),
        ..Default::default()
    };
    PodStatus {
        phase: Some("Running".into()),
        host_ip: Some("10.0.0.1".into()),
        pod_ip: Some("10.42.0.5".into()),
        start_time: Some(now.clone()),
        conditions: Some(vec![
            cond("PodReadyToStartContainers"),
            cond("Initialized"),
            cond("Ready"),
            cond("ContainersReady"),
            cond("PodScheduled"),
        ]),
        container_statuses: Some(vec![ContainerStatus {
            name: "web".into(),
            image: "docker.io/library/nginx:1.27.3-alpine".into(),
            image_id: "docker.io/library/nginx@sha256:0123".into(),
            container_id: Some("containerd://abc".into()),
            ready: true,
            started: Some(true),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let pods: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let phase = args.next().unwrap_or_else(|| "all".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SqliteStore::open(&dir.path().join("state.db"), SqliteOptions::default()).expect("store");
    let api: Arc<ApiServer> = ApiServer::new(store, ApiOptions::default());
    api.bootstrap().await.expect("bootstrap");
    let pod_res = skiff_core::registry::lookup("", "v1", "pods").expect("pods");
    let bodies: Vec<Vec<u8>> = (0..pods).map(|i| pod_json(&format!("p-{i}"))).collect();
    let client = Client::new(api.clone(), "bench");
    let now = Time(jiff::Timestamp::now());
    let want = |p: &str| phase == "all" || phase == p;

    let t = Meter::start();
    let bodies = Arc::new(bodies);
    let uids = Arc::new(parking_lot::Mutex::new(vec![String::new(); pods]));
    concurrently(pods, |i| {
        let (api, bodies, uids) = (api.clone(), bodies.clone(), uids.clone());
        async move {
            let obj: serde_json::Value = serde_json::from_slice(&bodies[i]).expect("pod");
            let created = api
                .create_object_as(pod_res, Some("default"), obj, false, Some("kubectl"))
                .await
                .expect("create");
            uids.lock()[i] = skiff_core::meta::uid(&created).to_string();
            std::hint::black_box(serde_json::to_vec(&created).expect("encode"));
        }
    })
    .await;
    t.report("create (body bytes → stored → response bytes)", pods);

    if want("bind") || want("status") || want("event") {
        let t = Meter::start();
        concurrently(pods, |i| {
            let client = client.clone();
            async move {
                client
                    .bind("default", &format!("p-{i}"), "node-1")
                    .await
                    .expect("bind");
            }
        })
        .await;
        t.report("bind", pods);
    }
    if want("event") {
        let t = Meter::start();
        concurrently(pods, |i| {
            let (client, now) = (client.clone(), now.clone());
            async move {
                let ev = k8s_openapi::api::core::v1::Event {
                    metadata: ObjectMeta {
                        name: Some(format!("p-{i}.1870a1b2c3d4e5f6")),
                        namespace: Some("default".into()),
                        ..Default::default()
                    },
                    involved_object: k8s_openapi::api::core::v1::ObjectReference {
                        kind: Some("Pod".into()),
                        name: Some(format!("p-{i}")),
                        namespace: Some("default".into()),
                        api_version: Some("v1".into()),
                        ..Default::default()
                    },
                    reason: Some("Scheduled".into()),
                    message: Some(format!("Successfully assigned default/p-{i} to node-1")),
                    type_: Some("Normal".into()),
                    first_timestamp: Some(now.clone()),
                    last_timestamp: Some(now.clone()),
                    count: Some(1),
                    ..Default::default()
                };
                client.create(&ev).await.expect("event");
            }
        })
        .await;
        t.report("event", pods);
    }
    if want("status") {
        let t = Meter::start();
        let status = Arc::new(serde_json::to_value(running(&now)).expect("status"));
        let uids = Arc::new(uids.lock().clone());
        concurrently(pods, |i| {
            let (client, status, uids) = (client.clone(), status.clone(), uids.clone());
            async move {
                let written = client
                    .replace_status::<Pod>(Some("default"), &format!("p-{i}"), &uids[i], &*status)
                    .await
                    .expect("status");
                assert!(written.is_some());
            }
        })
        .await;
        t.report("status (kubelet: Running, Ready)", pods);
    }
}

/// How many writes are in flight at once (as many as the benchmark's HTTP clients).
const IN_FLIGHT: usize = 64;

/// Runs `op(0..n)` with [`IN_FLIGHT`] of them at a time.
async fn concurrently<F, Fut>(n: usize, op: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        if set.len() >= IN_FLIGHT {
            set.join_next().await.expect("task").expect("join");
        }
        set.spawn(op(i));
    }
    while let Some(r) = set.join_next().await {
        r.expect("join");
    }
}

/// Wall time and the process's CPU time (every thread, the store's writer included).
struct Meter {
    wall: Instant,
    cpu: f64,
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<f64> = after.split(' ').map(|x| x.parse().unwrap_or(0.0)).collect();
    // Fields 14 and 15 (utime, stime), counted from field 3 here; clock ticks of 1/100 s.
    (f[11] + f[12]) / 100.0
}

impl Meter {
    fn start() -> Meter {
        Meter {
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    fn report(&self, what: &str, n: usize) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - self.cpu;
        println!(
            "{what:48} {n:>6}: {:>7.0}/s, {:>6.1} µs of CPU each",
            n as f64 / wall,
            cpu * 1e6 / n as f64
        );
    }
}
