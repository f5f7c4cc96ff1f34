//! The StatefulSet and DaemonSet controllers against an in-process API server on tokio's
//! paused clock: minReadySeconds holds OrderedReady creation and DaemonSet availability to the
//! second, without waiting for it.

use std::time::Duration;

use jiff::SignedDuration;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;
use skiff_runtime::Runtime;

use crate::paused_clock::{self, kubelet, ready_since, until_clock, within};

async fn runtime() -> (Runtime, tempfile::TempDir) {
    paused_clock::runtime(|rt, opts| {
        super::start(rt, opts);
        crate::daemonset::start(rt, opts);
    })
    .await
}

/// At most how long a step the controllers take on their own may take in paused time (see
/// [`paused_clock`]).
const BY: Duration = Duration::from_secs(60);

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

fn pod_ready_since(rt: &Runtime, name: &str) -> Option<jiff::Timestamp> {
    ready_since(&*rt.cache.informer::<Pod>().get(Some("default"), name)?)
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
    let ready = within("web-0 ready", BY, || pod_ready_since(&rt, "web-0")).await;
    until_clock(&rt, ready + SignedDuration::from_secs(9)).await;
    assert_eq!(pod_names(&rt), ["web-0"], "not before minReadySeconds");
    within("web-1", BY, || {
        (pod_names(&rt) == ["web-0", "web-1"]).then_some(())
    })
    .await;
    within("two available", BY, || {
        let s = rt
            .cache
            .informer::<StatefulSet>()
            .get(Some("default"), "web")?
            .status
            .clone()?;
        (s.available_replicas == Some(2)).then_some(s)
    })
    .await;
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
            .get(Some("default"), "agent")?
            .status
            .clone()?;
        Some((s.number_ready, s.number_available))
    };
    let ready = within("the pod ready and counted", BY, || {
        let pod = rt.cache.informer::<Pod>().list().first().cloned()?;
        (status(&rt)?.0 == 1).then(|| ready_since(&pod)).flatten()
    })
    .await;
    until_clock(&rt, ready + SignedDuration::from_secs(19)).await;
    assert_eq!(status(&rt), Some((1, Some(0))), "ready, not yet available");
    // With no other event than the controller's own requeue.
    within("available", BY, || {
        (status(&rt)? == (1, Some(1))).then_some(())
    })
    .await;
    rt.shutdown().await;
}
