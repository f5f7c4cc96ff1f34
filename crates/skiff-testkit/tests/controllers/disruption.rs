//! PodDisruptionBudgets: status computed from pod health, evictions refused with 429 while
//! the budget allows none, allowed once it does.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

#[tokio::test]
async fn budgets_gate_evictions() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    // 429 answers must reach the test, not be retried by the client.
    let client = server.client_without_retries().await.unwrap();
    namespace(&client, "pdb").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "pdb");
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "pdb");
    for (i, name) in ["a", "b"].iter().enumerate() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "db"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "x"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
        let ip = format!("10.42.0.{}", i + 2);
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Running", "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})))
            .await
            .unwrap();
    }
    let b: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}
    }))
    .unwrap();
    budgets.create(&PostParams::default(), &b).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "status: 2 healthy, 0 allowed",
        || async {
            let s = budgets.get("db").await.ok()?.status?;
            (s.current_healthy == 2
                && s.desired_healthy == 2
                && s.disruptions_allowed == 0
                && s.expected_pods == 2
                && s.observed_generation == Some(1))
            .then_some(())
        },
    )
    .await;
    let err = pods.evict("a", &EvictParams::default()).await.unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 429, "{s:?}"),
        e => panic!("unexpected {e}"),
    }

    budgets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": 1}})),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "1 disruption allowed", || async {
        let s = budgets.get("db").await.ok()?.status?;
        (s.disruptions_allowed == 1 && s.observed_generation == Some(2)).then_some(())
    })
    .await;
    pods.evict("a", &EvictParams::default()).await.unwrap();
    // The eviction was recorded, and the next one is refused again.
    eventually(
        Duration::from_secs(10),
        "0 allowed after the eviction",
        || async {
            let s = budgets.get("db").await.ok()?.status?;
            (s.disruptions_allowed == 0).then_some(())
        },
    )
    .await;
    let err = pods.evict("b", &EvictParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 429),
        "{err}"
    );
}
