//! The scheduler loop against an in-process API server and the shared runtime: binding,
//! events and conditions, re-queueing on cluster events, taints with tolerations, and
//! preemption.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::{json, Value};
use skiff_apiserver::{ApiOptions, ApiServer};
use skiff_runtime::{Client, Runtime};
use skiff_store::sqlite::{SqliteOptions, SqliteStore};

struct Cluster {
    _dir: tempfile::TempDir,
    rt: Runtime,
    client: Client,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let api = ApiServer::new(store, ApiOptions::default());
        api.bootstrap().await.unwrap();
        let rt = Runtime::new(api);
        skiff_scheduler::start(&rt, skiff_scheduler::Config::default());
        let client = rt.client("test");
        Cluster {
            _dir: dir,
            rt,
            client,
        }
    }

    async fn node(&self, name: &str, cpu: &str, labels: Value, taints: Value) {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
        }))
        .unwrap();
        self.client.create(&n).await.unwrap();
        self.client
            .modify_status::<Node>(None, name, |n| {
                let alloc =
                    serde_json::from_value(json!({"cpu": cpu, "memory": "8Gi", "pods": "110"}))
                        .unwrap();
                let st = n.status.get_or_insert_with(Default::default);
                st.allocatable = Some(alloc);
                true
            })
            .await
            .unwrap();
    }

    async fn pod(&self, spec: Value) -> Pod {
        let p: Pod = serde_json::from_value(spec).unwrap();
        self.client.create(&p).await.unwrap()
    }

    async fn get(&self, name: &str) -> Option<Pod> {
        self.client.get::<Pod>(Some("default"), name).await.ok()
    }

    async fn node_of(&self, name: &str) -> Option<String> {
        self.get(name)
            .await
            .and_then(|p| p.spec.and_then(|s| s.node_name))
    }

    async fn events(&self, pod: &str) -> Vec<Event> {
        let inf = self.rt.cache.synced::<Event>().await;
        inf.list()
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(pod))
            .map(|e| (**e).clone())
            .collect()
    }
}

fn pod(name: &str, cpu: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]
        }
    })
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn binds_pods_with_a_scheduled_event() {
    let c = Cluster::start().await;
    c.node("n1", "4", json!({}), json!([])).await;
    c.node("n2", "4", json!({}), json!([])).await;
    c.pod(pod("a", "3")).await;
    let first = eventually("a bound", || c.node_of("a")).await;
    c.pod(pod("b", "3")).await;
    let second = eventually("b bound", || c.node_of("b")).await;
    assert_ne!(first, second, "least allocated spreads the two pods");
    let p = c.get("b").await.unwrap();
    let cond = p.status.unwrap().conditions.unwrap();
    assert!(cond
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.status == "True"));
    let ev = eventually("Scheduled event", || async {
        c.events("b")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Scheduled"))
    })
    .await;
    assert_eq!(
        ev.message.as_deref(),
        Some(format!("Successfully assigned default/b to {second}").as_str())
    );
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    c.rt.shutdown().await;
}

#[tokio::test]
async fn unschedulable_pod_reports_why_and_fits_when_a_node_arrives() {
    let c = Cluster::start().await;
    c.node("small", "1", json!({}), json!([])).await;
    c.node(
        "gpu",
        "8",
        json!({}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    )
    .await;
    c.pod(pod("big", "2")).await;
    let msg = eventually("PodScheduled=False", || async {
        let p = c.get("big").await?;
        let cond = p.status?.conditions?;
        let cs = cond
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
        assert_eq!(cs.reason.as_deref(), Some("Unschedulable"));
        cs.message
    })
    .await;
    assert_eq!(
        msg,
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    );
    let ev = eventually("FailedScheduling event", || async {
        c.events("big")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
    })
    .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(ev.message.as_deref(), Some(msg.as_str()));
    assert!(c.node_of("big").await.is_none());

    // A node that fits arrives: the pod is moved back and placed.
    c.node("large", "4", json!({}), json!([])).await;
    assert_eq!(eventually("big bound", || c.node_of("big")).await, "large");
    c.rt.shutdown().await;
}

#[tokio::test]
async fn dedicated_pool_with_toleration_and_node_selector() {
    let c = Cluster::start().await;
    c.node("general", "8", json!({"pool": "general"}), json!([]))
        .await;
    c.node(
        "gpu-1",
        "8",
        json!({"pool": "gpu"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    )
    .await;
    let mut p = pod("trainer", "1");
    p["spec"]["nodeSelector"] = json!({"pool": "gpu"});
    p["spec"]["tolerations"] =
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    c.pod(p).await;
    assert_eq!(
        eventually("trainer bound", || c.node_of("trainer")).await,
        "gpu-1"
    );
    c.pod(pod("web", "1")).await;
    assert_eq!(
        eventually("web bound", || c.node_of("web")).await,
        "general"
    );
    c.rt.shutdown().await;
}

#[tokio::test]
async fn other_schedulers_pods_are_left_alone() {
    let c = Cluster::start().await;
    c.node("n1", "4", json!({}), json!([])).await;
    let mut p = pod("mine", "1");
    p["spec"]["schedulerName"] = json!("my-scheduler");
    c.pod(p).await;
    c.pod(pod("theirs", "1")).await;
    eventually("default pod bound", || c.node_of("theirs")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(c.node_of("mine").await.is_none());
    c.rt.shutdown().await;
}

#[tokio::test]
async fn higher_priority_pod_preempts_and_is_nominated() {
    let c = Cluster::start().await;
    c.node("n1", "2", json!({}), json!([])).await;
    for (name, value) in [("low", 10), ("high", 1000)] {
        let pc: PriorityClass =
            serde_json::from_value(json!({"metadata": {"name": name}, "value": value})).unwrap();
        c.client.create(&pc).await.unwrap();
    }
    let mut v = pod("victim", "2");
    v["spec"]["priorityClassName"] = json!("low");
    c.pod(v).await;
    eventually("victim bound", || c.node_of("victim")).await;
    let mut h = pod("urgent", "2");
    h["spec"]["priorityClassName"] = json!("high");
    c.pod(h).await;
    assert_eq!(
        eventually("urgent bound", || c.node_of("urgent")).await,
        "n1"
    );
    assert!(c.get("victim").await.is_none(), "the victim was deleted");
    let ev = c.events("victim").await;
    assert!(
        ev.iter().any(|e| e.reason.as_deref() == Some("Preempted")),
        "{ev:?}"
    );
    c.rt.shutdown().await;
}

#[tokio::test]
async fn admission_refuses_bad_scheduling_specs() {
    let c = Cluster::start().await;
    let mut p = pod("bad-affinity", "1");
    p["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}}
    ]}});
    let p: Pod = serde_json::from_value(p).unwrap();
    let e = c.client.create(&p).await.unwrap_err();
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty"),
        "{}",
        e.message
    );

    let mut p = pod("unknown-class", "1");
    p["spec"]["priorityClassName"] = json!("gold");
    let p: Pod = serde_json::from_value(p).unwrap();
    let e = c.client.create(&p).await.unwrap_err();
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "pods \"unknown-class\" is forbidden: no PriorityClass with name gold was found"
    );

    let mut p = pod("self-promoted", "1");
    p["spec"]["priority"] = json!(1000);
    let p: Pod = serde_json::from_value(p).unwrap();
    let e = c.client.create(&p).await.unwrap_err();
    assert_eq!(e.code, 403);
    assert!(e.message.contains("the integer value of priority (1000) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"), "{}", e.message);

    // The system classes exist and resolve.
    let mut p = pod("critical", "1");
    p["spec"]["priorityClassName"] = json!("system-node-critical");
    let created = c.pod(p).await;
    let spec = created.spec.unwrap();
    assert_eq!(spec.priority, Some(2_000_001_000));
    assert_eq!(
        spec.preemption_policy.as_deref(),
        Some("PreemptLowerPriority")
    );
    c.rt.shutdown().await;
}

/// Throughput through the API server (debug builds are slow; run with `--release
/// --ignored --nocapture` for a figure): 100 nodes, 2,000 pods created, until all are bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_two_thousand_pods() {
    let c = Cluster::start().await;
    for i in 0..100 {
        c.node(&format!("n{i}"), "64", json!({}), json!([])).await;
    }
    let pods = c.rt.cache.synced::<Pod>().await;
    let start = std::time::Instant::now();
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..2000 {
        let client = c.client.clone();
        creates.spawn(async move {
            let p: Pod = serde_json::from_value(pod(&format!("p{i}"), "10m")).unwrap();
            client.create(&p).await.unwrap();
        });
        if creates.len() >= 64 {
            creates.join_next().await;
        }
    }
    while creates.join_next().await.is_some() {}
    let created = start.elapsed();
    eventually("all bound", || async {
        let bound = pods
            .list()
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count();
        (bound == 2000).then_some(())
    })
    .await;
    let all = start.elapsed();
    println!(
        "2000 pods: created in {created:?} ({:.0}/s), all bound after {all:?} ({:.0}/s)",
        2000.0 / created.as_secs_f64(),
        2000.0 / all.as_secs_f64()
    );
    c.rt.shutdown().await;
}

#[tokio::test]
async fn preemptor_is_nominated_while_its_victim_terminates() {
    let c = Cluster::start().await;
    c.node("n1", "2", json!({}), json!([])).await;
    for (name, value) in [("low", 10), ("high", 1000)] {
        let pc: PriorityClass =
            serde_json::from_value(json!({"metadata": {"name": name}, "value": value})).unwrap();
        c.client.create(&pc).await.unwrap();
    }
    let mut v = pod("slow-victim", "2");
    v["spec"]["priorityClassName"] = json!("low");
    v["spec"]["terminationGracePeriodSeconds"] = json!(300);
    c.pod(v).await;
    eventually("victim bound", || c.node_of("slow-victim")).await;
    let mut h = pod("urgent", "2");
    h["spec"]["priorityClassName"] = json!("high");
    c.pod(h).await;
    let nominated = eventually("urgent nominated", || async {
        c.get("urgent").await?.status?.nominated_node_name
    })
    .await;
    assert_eq!(nominated, "n1");
    let victim = c.get("slow-victim").await.expect("still terminating");
    assert!(victim.metadata.deletion_timestamp.is_some());
    let conds = victim.status.unwrap().conditions.unwrap();
    let dt = conds
        .iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("DisruptionTarget");
    assert_eq!(dt.reason.as_deref(), Some("PreemptionByScheduler"));
    assert_eq!(
        dt.message.as_deref(),
        Some("default-scheduler: preempting to accommodate a higher priority pod")
    );
    // The terminating victim still holds its cpu: the preemptor waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.node_of("urgent").await.is_none());
    c.rt.shutdown().await;
}

#[tokio::test]
async fn global_default_priority_class_applies_to_pods_without_one() {
    let c = Cluster::start().await;
    let before = c.pod(pod("before", "1")).await.spec.unwrap();
    assert_eq!(before.priority, Some(0));
    assert_eq!(before.priority_class_name, None);
    let pc: PriorityClass = serde_json::from_value(json!({
        "metadata": {"name": "normal"}, "value": 500, "globalDefault": true,
        "preemptionPolicy": "Never"
    }))
    .unwrap();
    c.client.create(&pc).await.unwrap();
    let after = c.pod(pod("after", "1")).await.spec.unwrap();
    assert_eq!(after.priority, Some(500));
    assert_eq!(after.priority_class_name.as_deref(), Some("normal"));
    assert_eq!(after.preemption_policy.as_deref(), Some("Never"));
    c.rt.shutdown().await;
}

#[tokio::test]
async fn decisions_are_timed_on_the_api_servers_metrics() {
    let c = Cluster::start().await;
    c.node("n1", "4", json!({}), json!([])).await;
    c.pod(pod("a", "1")).await;
    c.pod(pod("b", "1")).await;
    eventually("a bound", || c.node_of("a")).await;
    eventually("b bound", || c.node_of("b")).await;
    let text = c.rt.api.metrics().encode();
    let name = skiff_scheduler::metrics::ALGORITHM_DURATION;
    assert!(
        text.contains(&format!("{name}_count 2\n")),
        "two decisions timed: {text}"
    );
    assert!(text.contains(&format!("{name}_bucket{{le=\"+Inf\"}} 2\n")));
    // The scheduler's family comes before the exposition's end marker.
    assert!(text.find(name) < text.find("# EOF"), "{text}");
    c.rt.shutdown().await;
}

/// Threads of this process named `scheduler`.
fn scheduler_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                .filter(|c| c.trim() == "scheduler")
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_multi_threaded_runtime_the_loop_has_a_thread_of_its_own() {
    let c = Cluster::start().await;
    eventually("the scheduler thread", || async {
        (scheduler_threads() == 1).then_some(())
    })
    .await;
    c.node("n1", "4", json!({}), json!([])).await;
    c.pod(pod("a", "1")).await;
    c.pod(pod("b", "1")).await;
    eventually("a bound", || c.node_of("a")).await;
    eventually("b bound", || c.node_of("b")).await;
    // Both bindings persisted and counted; the Scheduled events written on the runtime.
    let scheduled =
        "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 2\n";
    eventually("two counted", || async {
        c.rt.api
            .metrics()
            .encode()
            .contains(scheduled)
            .then_some(())
    })
    .await;
    eventually("Scheduled event", || async {
        c.events("b")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Scheduled"))
    })
    .await;
    c.rt.shutdown().await;
    eventually("the scheduler thread gone", || async {
        (scheduler_threads() == 0).then_some(())
    })
    .await;
}
