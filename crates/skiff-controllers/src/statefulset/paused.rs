//! The StatefulSet and DaemonSet controllers against an in-process API server on tokio's
//! paused clock: minReadySeconds holds OrderedReady creation and DaemonSet availability to the
//! second, without waiting for it.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;
use skiff_runtime::Runtime;

async fn runtime() -> (Runtime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        skiff_store::sqlite::SqliteStore::open(&dir.path().join("state.db"), Default::default())
            .unwrap();
    let api = skiff_apiserver::ApiServer::new(store, Default::default());
    api.bootstrap().await.unwrap();
    let rt = Runtime::new(api);
    let opts = crate::Options::default();
    super::start(&rt, &opts);
    crate::daemonset::start(&rt, &opts);
    (rt, dir)
}

/// Plays the kubelet: every pod becomes Running and Ready at once (on the runtime's clock).
fn kubelet(rt: &Runtime) {
    let client = rt.client("kubelet");
    let pods = rt.cache.informer::<Pod>();
    let clock = rt.clock;
    rt.spawn(async move {
        loop {
            for p in pods.list() {
                if crate::pods::is_ready(&p) || p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let now = clock.now_k8s();
                let name = p.metadata.name.clone().unwrap_or_default();
                let _ = client
                    .modify_status::<Pod>(Some("default"), &name, |p| {
                        let st = p.status.get_or_insert_with(Default::default);
                        st.phase = Some("Running".into());
                        st.conditions = Some(vec![serde_json::from_value(json!({
                            "type": "Ready", "status": "True", "lastTransitionTime": now
                        }))
                        .unwrap()]);
                        true
                    })
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Advances paused time by `n` seconds in 100 ms steps, letting the store's threads catch up
/// in real time between steps.
async fn secs(n: u64) {
    for _ in 0..n * 10 {
        std::thread::sleep(Duration::from_millis(2));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pod_names(rt: &Runtime) -> Vec<String> {
    let mut v: Vec<String> = rt
        .cache
        .informer::<Pod>()
        .list()
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    v.sort();
    v
}

#[tokio::test(start_paused = true)]
async fn ordered_ready_waits_min_ready_seconds_before_the_next_pod() {
    let (rt, _dir) = runtime().await;
    let client = rt.client("test");
    rt.cache.informer::<StatefulSet>().synced().await;
    kubelet(&rt);
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "minReadySeconds": 10, "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "v1"}]}}}
    }))
    .unwrap();
    client.create(&set).await.unwrap();
    secs(2).await;
    assert_eq!(pod_names(&rt), ["web-0"]);
    secs(6).await; // web-0 ready for about 8 s
    assert_eq!(pod_names(&rt), ["web-0"], "not before minReadySeconds");
    secs(4).await; // about 12 s
    assert_eq!(pod_names(&rt), ["web-0", "web-1"]);
    secs(12).await;
    let s = rt
        .cache
        .informer::<StatefulSet>()
        .get(Some("default"), "web")
        .unwrap()
        .status
        .clone()
        .unwrap();
    assert_eq!((s.ready_replicas, s.available_replicas), (Some(2), Some(2)));
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn daemonset_pods_count_as_available_after_min_ready_seconds() {
    let (rt, _dir) = runtime().await;
    let client = rt.client("test");
    rt.cache.informer::<DaemonSet>().synced().await;
    kubelet(&rt);
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
    client.create(&node).await.unwrap();
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {"minReadySeconds": 20,
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "v1"}]}}}
    }))
    .unwrap();
    client.create(&ds).await.unwrap();
    let status = |rt: &Runtime| {
        let s = rt
            .cache
            .informer::<DaemonSet>()
            .get(Some("default"), "agent")
            .unwrap()
            .status
            .clone()
            .unwrap();
        (s.number_ready, s.number_available)
    };
    secs(3).await;
    assert_eq!(status(&rt), (1, Some(0)), "ready, not yet available");
    secs(15).await; // about 18 s ready
    assert_eq!(status(&rt), (1, Some(0)));
    secs(4).await; // about 22 s, with no other event than the controller's own requeue
    assert_eq!(status(&rt), (1, Some(1)));
    rt.shutdown().await;
}
