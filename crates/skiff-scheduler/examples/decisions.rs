//! Decision cost on 5,000 nodes in three zones, for profiling (`valgrind --tool=callgrind`,
//! `perf`) and for timing with and without a concurrent CPU load: bursts shaped as
//! `make bench`'s section 7 (upstream's scheduler_perf workloads) scheduled one pod after
//! the other on an empty cluster, each decision assumed before the next, as the scheduler's
//! loop does.
//!
//! `cargo run --release -p skiff-scheduler --example decisions -- [plain|anti|spread|all] [PODS] [LOAD_THREADS]`
//!
//! `anti`: required anti-affinity on `kubernetes.io/hostname` among groups of 2,000 pods;
//! `spread`: `maxSkew` 1 on the zone, `DoNotSchedule`, among all pods of the burst.
//! LOAD_THREADS threads spin over 64 MiB of memory meanwhile (cache and CPU contention, as the
//! API server's work inside `skiff server`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use skiff_scheduler::{Config, Scheduler};

const NODES: usize = 5_000;
const GROUP: usize = 2_000;

fn node(i: usize) -> Node {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("fake-node-{i}"), "labels": {
            "kubernetes.io/hostname": format!("fake-node-{i}"),
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": format!("zone-{}", i % 3),
        }},
        "spec": {},
        "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110"}}
    }))
    .expect("node")
}

fn pod(variant: &str, i: usize) -> Pod {
    let mut p = serde_json::json!({
        "metadata": {"name": format!("{variant}-{i}"), "namespace": "default",
            "uid": format!("uid-{variant}-{i}"),
            "labels": {"app.kubernetes.io/name": "web", "tier": "frontend"}},
        "spec": {"containers": [{"name": "web", "image": "nginx",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
    });
    match variant {
        "anti" => {
            let g = format!("g{}", i / GROUP);
            p["metadata"]["labels"]["anti-group"] = g.clone().into();
            p["spec"]["affinity"] = serde_json::json!({"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"anti-group": g}},
                    "topologyKey": "kubernetes.io/hostname"}]}});
        }
        "spread" => {
            p["metadata"]["labels"]["spread"] = "zone".into();
            p["spec"]["topologySpreadConstraints"] = serde_json::json!([{
                "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"spread": "zone"}}}]);
        }
        _ => {}
    }
    serde_json::from_value(p).expect("pod")
}

fn load(stop: Arc<AtomicBool>) {
    let mut buf = vec![0u64; 8 << 20];
    let mut x = 1u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..(1 << 16) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 20) as usize % buf.len();
            buf[i] = buf[i].wrapping_add(x);
        }
    }
    std::hint::black_box(&buf);
}

fn pct(v: &[Duration], p: usize) -> Duration {
    v[(v.len() * p / 100).min(v.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("all", String::as_str);
    let pods: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let threads: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..threads)
        .map(|_| {
            let s = stop.clone();
            std::thread::spawn(move || load(s))
        })
        .collect();
    let variants: Vec<&str> = match which {
        "all" => vec!["plain", "anti", "spread"],
        v => vec![v],
    };
    for variant in variants {
        let mut s = Scheduler::new(Config::default());
        for i in 0..NODES {
            s.snapshot.upsert_node(Arc::new(node(i)));
        }
        let burst: Vec<Arc<Pod>> = (0..pods).map(|i| Arc::new(pod(variant, i))).collect();
        let mut times = Vec::with_capacity(pods);
        let mut evaluated = 0;
        let all = Instant::now();
        for p in &burst {
            let t = Instant::now();
            let ctx = skiff_scheduler::plugins::PodCtx::new(p.clone());
            let r = s.schedule_ctx(&ctx).expect("fits");
            let d = t.elapsed();
            if std::env::var_os("SLOW").is_some() && d > Duration::from_millis(1) {
                println!(
                    "slow {:?}: {:?} evaluated {} feasible {}",
                    p.metadata.name, d, r.evaluated, r.feasible
                );
            }
            times.push(d);
            evaluated += r.evaluated;
            s.assume_info(ctx.info.clone(), &r.node);
        }
        let total = all.elapsed();
        times.sort();
        println!(
            "{variant}: {pods} pods, {threads} load threads: p50 {:?} p90 {:?} p99 {:?} max {:?}; {:.0} decisions/s with assume; {} nodes filtered per pod",
            pct(&times, 50),
            pct(&times, 90),
            pct(&times, 99),
            times[times.len() - 1],
            pods as f64 / total.as_secs_f64(),
            evaluated / pods
        );
    }
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        let _ = l.join();
    }
}
