//! Simulated nodes: registration (capacity, labels, taints, conditions, Leases), pods bound to
//! them going Running and Ready with an IP, Job-like pods succeeding, scripted failures and
//! crash loops, graceful deletion.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

fn bound_pod(name: &str, node: &str, restart: &str, annotations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart,
            "containers": [{"name": "c", "image": "nginx:1.27"}]
        }
    }))
    .unwrap()
}

fn condition(p: &Pod, t: &str) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

async fn wait_pod(pods: &Api<Pod>, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
    eventually(Duration::from_secs(15), what, || async {
        pods.get(name).await.ok().filter(|p| check(p))
    })
    .await
}

#[tokio::test]
async fn nodes_register_with_capacity_labels_taints_and_leases() {
    let server = TestServer::start_with(|o| {
        o.fake_nodes.count = 3;
        o.fake_nodes.labels.insert("pool".into(), "blue".into());
        o.fake_nodes.taints = vec!["dedicated=sim:NoSchedule".into()];
        o.fake_nodes.capacity.insert("cpu".into(), "8".into());
    })
    .await
    .unwrap();
    let client = server.client().await.unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let list = eventually(Duration::from_secs(10), "3 ready nodes", || async {
        let l = nodes.list(&Default::default()).await.ok()?;
        let ready = l
            .items
            .iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        (ready == 3).then_some(l.items)
    })
    .await;
    let n = list
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some("fake-node-1"))
        .expect("fake-node-1");
    let labels = n.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], "fake-node-1");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["pool"], "blue");
    let spec = n.spec.as_ref().unwrap();
    assert_eq!(spec.pod_cidr.as_deref(), Some("10.42.1.0/24"));
    let taint = &spec.taints.as_ref().unwrap()[0];
    assert_eq!(
        (
            taint.key.as_str(),
            taint.value.as_deref(),
            taint.effect.as_str()
        ),
        ("dedicated", Some("sim"), "NoSchedule")
    );
    let st = n.status.as_ref().unwrap();
    assert_eq!(st.capacity.as_ref().unwrap()["cpu"].0, "8");
    assert_eq!(st.allocatable.as_ref().unwrap()["memory"].0, "16Gi");
    assert_eq!(
        st.node_info.as_ref().unwrap().container_runtime_version,
        "skiff-simulated://0.1"
    );
    let addrs = st.addresses.as_ref().unwrap();
    assert!(addrs
        .iter()
        .any(|a| a.type_ == "InternalIP" && a.address.starts_with("198.18.")));

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = eventually(Duration::from_secs(10), "the lease", || async {
        leases.get("fake-node-2").await.ok()
    })
    .await;
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("fake-node-2"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let first = spec.renew_time.unwrap().0;
    // Renewed every 10 s.
    eventually(Duration::from_secs(15), "a lease renewal", || async {
        let l = leases.get("fake-node-2").await.ok()?;
        (l.spec?.renew_time?.0 > first).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bound_pods_run_finish_fail_crash_loop_and_delete_gracefully() {
    let server = TestServer::start_with(|o| {
        o.fake_nodes.count = 2;
        o.disable_scheduler = true;
    })
    .await
    .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "sim").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "sim");
    let pp = PostParams::default();

    // A service pod: Running and Ready with an IP from its node's range.
    pods.create(&pp, &bound_pod("web", "fake-node-1", "Always", json!({})))
        .await
        .unwrap();
    let web = wait_pod(&pods, "web", "web ready", |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    let st = web.status.as_ref().unwrap();
    assert_eq!(phase(&web), "Running");
    assert!(
        st.pod_ip.as_deref().unwrap().starts_with("10.42.1."),
        "{:?}",
        st.pod_ip
    );
    assert_eq!(st.host_ip.as_deref(), Some("198.18.0.2"));
    let cs = &st.container_statuses.as_ref().unwrap()[0];
    assert!(cs.ready);
    assert!(cs.state.as_ref().unwrap().running.is_some());
    assert_eq!(cs.image, "docker.io/library/nginx:1.27");
    for t in [
        "PodScheduled",
        "Initialized",
        "ContainersReady",
        "PodReadyToStartContainers",
    ] {
        assert_eq!(condition(&web, t).as_deref(), Some("True"), "{t}");
    }
    // The status is stable: nothing rewrites it.
    let rv = web.metadata.resource_version.clone();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(pods.get("web").await.unwrap().metadata.resource_version, rv);

    // A Job-like pod succeeds after about a second.
    pods.create(&pp, &bound_pod("job", "fake-node-0", "Never", json!({})))
        .await
        .unwrap();
    let job = wait_pod(&pods, "job", "job succeeded", |p| phase(p) == "Succeeded").await;
    let term = job.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (0, Some("Completed"))
    );

    // A scripted failure under restartPolicy Never fails the pod.
    pods.create(
        &pp,
        &bound_pod(
            "fails",
            "fake-node-0",
            "Never",
            json!({"sim.skiff.dev/exit-code": "3", "sim.skiff.dev/run-seconds": "0.2"}),
        ),
    )
    .await
    .unwrap();
    let failed = wait_pod(&pods, "fails", "pod failed", |p| phase(p) == "Failed").await;
    let term = failed.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((term.exit_code, term.reason.as_deref()), (3, Some("Error")));

    // Under OnFailure it crash-loops instead.
    pods.create(
        &pp,
        &bound_pod(
            "loops",
            "fake-node-0",
            "OnFailure",
            json!({"sim.skiff.dev/exit-code": "1", "sim.skiff.dev/run-seconds": "0"}),
        ),
    )
    .await
    .unwrap();
    let looping = wait_pod(&pods, "loops", "CrashLoopBackOff", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c[0].state.as_ref()?.waiting.as_ref()?.reason.clone())
            .as_deref()
            == Some("CrashLoopBackOff")
    })
    .await;
    let cs = &looping
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(phase(&looping), "Running");
    assert_eq!(cs.restart_count, 1);
    assert_eq!(
        cs.last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        1
    );
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "sim");
    eventually(Duration::from_secs(5), "a BackOff event", || async {
        let l = events.list(&Default::default()).await.ok()?;
        l.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("BackOff")
                    && e.involved_object.name.as_deref() == Some("loops")
                    && e.message.as_deref().is_some_and(|m| {
                        m.starts_with("Back-off restarting failed container c in pod loops_sim(")
                    })
            })
            .then_some(())
    })
    .await;

    // Readiness scripted to fail: Running, not Ready.
    pods.create(
        &pp,
        &bound_pod(
            "unready",
            "fake-node-1",
            "Always",
            json!({"sim.skiff.dev/ready": "false"}),
        ),
    )
    .await
    .unwrap();
    let unready = wait_pod(&pods, "unready", "running", |p| phase(p) == "Running").await;
    assert_eq!(condition(&unready, "Ready").as_deref(), Some("False"));

    // Graceful deletion: the pod is reported terminal (containers stopped), then deleted for
    // good; a watch sees both.
    let rv = pods
        .get("web")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = pods
        .watch(&WatchParams::default().fields("metadata.name=web"), &rv)
        .await
        .unwrap()
        .boxed();
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.next().await {
            match ev.unwrap() {
                WatchEvent::Modified(p) => seen.push((
                    p.metadata.deletion_timestamp.is_some(),
                    phase(&p).to_string(),
                )),
                WatchEvent::Deleted(_) => break,
                _ => {}
            }
        }
    })
    .await
    .expect("web deleted");
    assert!(
        seen.iter()
            .any(|(terminating, ph)| *terminating && ph == "Succeeded"),
        "no terminal status before deletion: {seen:?}"
    );

    // Its address went back to the node's range: the next pod there gets it.
    let ip = st.pod_ip.clone();
    pods.create(&pp, &bound_pod("web2", "fake-node-1", "Always", json!({})))
        .await
        .unwrap();
    let web2 = wait_pod(&pods, "web2", "web2 running", |p| phase(p) == "Running").await;
    // web had the lowest address; unready holds the next one.
    assert_eq!(web2.status.unwrap().pod_ip, ip);
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Scale check, ignored by default (heavy): `SKIFF_SIM_NODES` (default 1000) nodes register,
/// and within one renewal period (10 s) plus slack every Lease is renewed again. Prints the
/// registration time, the renewal lag and the process's resident memory growth.
/// `SKIFF_SIM_NODES=5000 cargo test -p skiff-testkit --test controllers simulated_scale -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn simulated_scale() {
    let n: usize = std::env::var("SKIFF_SIM_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rss0 = rss_kib();
    let t0 = tokio::time::Instant::now();
    let server = TestServer::start_with(|o| o.fake_nodes.count = n)
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let first = eventually(Duration::from_secs(300), "every lease", || async {
        let l = leases.list(&Default::default()).await.ok()?;
        (l.items.len() == n).then_some(l.items)
    })
    .await;
    let registered = t0.elapsed();
    let renew_of = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0)
    };
    let before: std::collections::HashMap<String, _> = first
        .iter()
        .map(|l| (l.metadata.name.clone().unwrap(), renew_of(l)))
        .collect();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = leases.list(&Default::default()).await.unwrap().items;
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut stale = 0;
    let mut worst = Duration::ZERO;
    for l in &after {
        let r = renew_of(l);
        if r <= before[l.metadata.name.as_deref().unwrap()] {
            stale += 1;
        }
        if let Some(r) = r {
            worst = worst.max(Duration::try_from(now.duration_since(r)).unwrap_or_default());
        }
    }
    let rss = rss_kib().saturating_sub(rss0);
    println!(
        "{n} simulated nodes: registered in {registered:?}; leases not renewed within 12 s: {stale}; \
         oldest renewal {worst:?} old; RSS growth {rss} KiB ({} bytes/node, whole server incl. caches)",
        rss * 1024 / n as u64
    );
    assert_eq!(stale, 0);
    assert!(worst < Duration::from_secs(12));
}

/// Pod throughput check, ignored by default (heavy): `SKIFF_SIM_PODS` (default 2000) pods bound
/// by nodeName across 100 simulated nodes are created 32 at a time; prints the create rate and
/// the rate at which they became Ready (the simulator should keep up with creates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn simulated_pod_throughput() {
    let n: usize = std::env::var("SKIFF_SIM_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let server = TestServer::start_with(|o| {
        o.fake_nodes.count = 100;
        o.disable_scheduler = true;
    })
    .await
    .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "tp").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "tp");
    let t0 = tokio::time::Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let pods = pods.clone();
            async move {
                let p = bound_pod(
                    &format!("p{i}"),
                    &format!("fake-node-{}", i % 100),
                    "Always",
                    json!({}),
                );
                pods.create(&PostParams::default(), &p).await.unwrap();
            }
        })
        .await;
    let created = t0.elapsed();
    eventually(Duration::from_secs(600), "every pod ready", || async {
        let l = pods.list(&Default::default()).await.ok()?;
        let ready = l
            .items
            .iter()
            .filter(|p| condition(p, "Ready").as_deref() == Some("True"))
            .count();
        (ready == n).then_some(())
    })
    .await;
    let all_ready = t0.elapsed();
    println!(
        "{n} pods: created in {created:?} ({:.0}/s); all Ready after {all_ready:?} ({:.0}/s); ratio {:.2}",
        n as f64 / created.as_secs_f64(),
        n as f64 / all_ready.as_secs_f64(),
        created.as_secs_f64() / all_ready.as_secs_f64()
    );
}
