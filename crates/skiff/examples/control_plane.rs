//! The CPU cost of a pod's whole life in the control plane, without HTTP or TLS: the API
//! server, controllers, scheduler and simulated nodes in this process; pods created through
//! the API server's storage path 64 at a time; the time and CPU until every pod is Running
//! and Ready. For profiling (`perf`, `valgrind --tool=callgrind`: with few nodes, so that
//! heartbeats, which follow wall time, weigh little); the figures users see come from
//! `skiff bench`.
//!
//! `cargo run --release -p skiff --example control_plane -- [NODES] [PODS] [pods|deployment]`
//! (`KEEP_WRITTEN=0` in the environment: the API server keeps no written objects for the next
//! write's read, to compare costs.)
//!
//! With `deployment`, one Deployment of PODS replicas makes the pods (as `make bench` does), so
//! the Deployment and ReplicaSet controllers' work is counted too. At the end the store's writes
//! during the run are tallied by resource (from a watch read during the run), per pod.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use skiff_apiserver::{ApiOptions, ApiServer};
use skiff_store::sqlite::{SqliteOptions, SqliteStore};
use skiff_store::Store;

/// The allocator the `skiff` binary uses, so that costs here are the server's.
#[global_allocator]
static GLOBAL: skiff::alloc::Allocator = skiff::alloc::Allocator;

const IN_FLIGHT: usize = 64;

fn pod_json(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench"}},
        "spec": {"containers": [{
            "name": "web", "image": "docker.io/library/nginx:1.27.3-alpine",
            "ports": [{"name": "http", "containerPort": 80}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
        }]}
    })
}

fn deployment_json(replicas: usize) -> serde_json::Value {
    let pod = pod_json("unused");
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {"metadata": {"labels": {"app": "bench"}}, "spec": pod["spec"].clone()}
        }
    })
}

/// The store's writes after `from`, by resource (`group/plural`), tallied as they happen (a
/// watch read while the pods are made, so that the tally never falls behind the store's watch
/// window and replays its log): each write's revision and resource, cut at the run's end.
struct Tally {
    seen: Arc<std::sync::atomic::AtomicI64>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<(i64, String)>>,
}

impl Tally {
    fn start(store: Arc<SqliteStore>, from: i64) -> Tally {
        let seen = Arc::new(std::sync::atomic::AtomicI64::new(from));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let seen_w = seen.clone();
        let task = tokio::spawn(async move {
            let mut writes = Vec::new();
            let mut w = store.watch("/registry/", from).await.expect("watch");
            loop {
                let batch = tokio::select! {
                    b = w.next() => b,
                    _ = &mut stopped => break,
                };
                let Some(batch) = batch else { break };
                for ev in batch.expect("watch batch") {
                    let mut parts = ev.kv.key.trim_start_matches("/registry/").split('/');
                    let res = format!(
                        "{}/{}",
                        parts.next().unwrap_or(""),
                        parts.next().unwrap_or("")
                    );
                    writes.push((ev.kv.mod_revision, res));
                    seen_w.fetch_max(ev.kv.mod_revision, std::sync::atomic::Ordering::Release);
                }
            }
            writes
        });
        Tally { seen, stop, task }
    }

    /// The writes up to `to`, by resource, once the watch has delivered `to`.
    async fn until(self, to: i64) -> BTreeMap<String, usize> {
        while self.seen.load(std::sync::atomic::Ordering::Acquire) < to {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.stop.send(());
        let mut out = BTreeMap::new();
        for (rev, res) in self.task.await.expect("tally task") {
            if rev <= to {
                *out.entry(res).or_default() += 1;
            }
        }
        out
    }
}

/// The newest revision after `since` of a write that is not a node heartbeat (Lease or Node),
/// or `since`.
async fn quiet_revision(store: &dyn Store, since: i64) -> i64 {
    let mut newest = since;
    let mut w = store.watch("/registry/", since).await.expect("watch");
    while let Ok(Some(batch)) = tokio::time::timeout(Duration::from_millis(50), w.next()).await {
        for ev in batch.expect("watch batch") {
            let k = &ev.kv.key;
            if !k.starts_with("/registry/coordination.k8s.io/leases/")
                && !k.starts_with("/registry/core/nodes/")
            {
                newest = newest.max(ev.kv.mod_revision);
            }
        }
    }
    newest
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<f64> = after.split(' ').map(|x| x.parse().unwrap_or(0.0)).collect();
    // utime and stime (fields 14 and 15 of the line), in ticks of 1/100 s.
    (f[11] + f[12]) / 100.0
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let pods: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let deployment = args.next().as_deref() == Some("deployment");
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SqliteStore::open(&dir.path().join("state.db"), SqliteOptions::default()).expect("store");
    let history = store.clone();
    let api: Arc<ApiServer> = ApiServer::new(store, ApiOptions::default());
    // KEEP_WRITTEN=0: every read for a write parses the stored bytes (to compare costs).
    if std::env::var("KEEP_WRITTEN").as_deref() == Ok("0") {
        api.set_kept_objects_capacity(0);
    }
    api.bootstrap().await.expect("bootstrap");
    let rt = skiff_runtime::Runtime::new(api.clone());
    skiff_controllers::start(&rt, &skiff_controllers::Options::default());
    skiff_scheduler::start(&rt, skiff_scheduler::Config::default());
    let fake = skiff_agent::simulated::Options {
        count: nodes,
        capacity: [("cpu", "64"), ("memory", "256Gi"), ("pods", "110")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    skiff_agent::simulated::start(&rt, &fake).expect("simulated nodes");

    let node_inf = rt.cache.synced::<Node>().await;
    while node_inf.len() < nodes {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Idle cost (heartbeats) over a short window, to tell apart from the pods' own.
    let (idle_t, idle_c) = (Instant::now(), cpu_seconds());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rate = (cpu_seconds() - idle_c) / idle_t.elapsed().as_secs_f64();

    let pod_res = skiff_core::registry::lookup("", "v1", "pods").expect("pods");
    let pod_inf = rt.cache.synced::<Pod>().await;
    let rev0 = history.current_revision();
    let tally = Tally::start(history.clone(), rev0);
    let loops0 = skiff_runtime::controller::reconcile_counts();
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    let mut set = tokio::task::JoinSet::new();
    if deployment {
        let res = skiff_core::registry::lookup("apps", "v1", "deployments").expect("deployments");
        api.create_object_as(
            res,
            Some("default"),
            deployment_json(pods),
            false,
            Some("kubectl"),
        )
        .await
        .expect("create deployment");
    }
    for i in (0..pods).filter(|_| !deployment) {
        if set.len() >= IN_FLIGHT {
            set.join_next().await.expect("task").expect("join");
        }
        let api = api.clone();
        set.spawn(async move {
            api.create_object_as(
                pod_res,
                Some("default"),
                pod_json(&format!("p-{i}")),
                false,
                Some("kubectl"),
            )
            .await
            .expect("create");
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("join");
    }
    let mut created = (!deployment).then(|| start.elapsed());
    loop {
        let all = pod_inf.list_namespace("default");
        if created.is_none() && all.len() >= pods {
            created = Some(start.elapsed());
        }
        let ready = all.iter().filter(|p| is_ready(p)).count();
        if ready >= pods {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            panic!("{ready} of {pods} pods ready after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = start.elapsed();
    let created = created.unwrap_or(all);
    let cpu = cpu_seconds() - cpu0;
    let pod_cpu = cpu - idle_rate * all.as_secs_f64();
    println!(
        "{nodes} nodes, {pods} pods: created in {:.0} ms ({:.0}/s), all Ready in {:.0} ms ({:.0}/s)",
        created.as_secs_f64() * 1e3,
        pods as f64 / created.as_secs_f64(),
        all.as_secs_f64() * 1e3,
        pods as f64 / all.as_secs_f64()
    );
    println!(
        "CPU: {:.2} s in all, {:.0} µs per pod beyond the idle heartbeat load ({:.2} cores when idle)",
        cpu,
        pod_cpu * 1e6 / pods as f64,
        idle_rate
    );
    // Work that trails the pods (events written by the recorders' queues, status counts):
    // settled once nothing but heartbeats has been written for a second.
    let mut last = (history.current_revision(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rev = quiet_revision(history.as_ref(), last.0).await;
        if rev != last.0 {
            last = (rev, Instant::now());
        } else if last.1.elapsed() >= Duration::from_secs(1) {
            break;
        }
    }
    let settled = start.elapsed() - Duration::from_secs(1);
    let settled_cpu = cpu_seconds() - cpu0 - idle_rate * (start.elapsed().as_secs_f64());
    println!(
        "settled (events and status counts written) after {:.0} ms: {:.0} µs per pod beyond the idle load",
        settled.as_secs_f64() * 1e3,
        settled_cpu * 1e6 / pods as f64
    );
    let rev1 = last.0;
    let writes = tally.until(rev1).await;
    let total: usize = writes.values().sum();
    let per: Vec<String> = writes
        .iter()
        .map(|(k, v)| format!("{k} {:.2}", *v as f64 / pods as f64))
        .collect();
    println!(
        "writes: {:.2} per pod ({})",
        total as f64 / pods as f64,
        per.join(", ")
    );
    let loops: Vec<String> = skiff_runtime::controller::reconcile_counts()
        .into_iter()
        .map(|(name, n)| {
            let before = loops0.iter().find(|(m, _)| *m == name).map_or(0, |l| l.1);
            (name, n - before)
        })
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {:.2}", n as f64 / pods as f64))
        .collect();
    println!("reconciles per pod: {}", loops.join(", "));
    let (hits, misses) = api.kept_object_reads();
    println!(
        "reads for writes: {:.2} per pod took the object the write before kept, {:.2} parsed the store",
        hits as f64 / pods as f64,
        misses as f64 / pods as f64
    );
    rt.shutdown().await;
}
