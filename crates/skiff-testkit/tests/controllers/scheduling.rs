//! The scheduler on simulated nodes: upstream's default spreading counts the pods of the
//! Services that select a pod, so replicas behind a Service land in different zones even
//! when the least-allocated score alone would stack them on the emptiest node.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

fn pod(name: &str, app: &str, cpu: &str, memory: &str, node: Option<&str>) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "nginx:1.27",
                "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
        }
    }))
    .unwrap()
}

async fn node_of(pods: &Api<Pod>, name: &str) -> String {
    eventually(
        Duration::from_secs(15),
        &format!("{name} bound"),
        || async { pods.get(name).await.ok()?.spec?.node_name },
    )
    .await
}

#[tokio::test]
async fn service_pods_spread_across_zones() {
    let server = TestServer::start_with(|o| o.fake_nodes.count = 3)
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    eventually(Duration::from_secs(10), "3 nodes", || async {
        let l = nodes.list(&Default::default()).await.ok()?;
        (l.items.len() == 3).then_some(())
    })
    .await;
    for (i, zone) in ["zone-a", "zone-b", "zone-c"].iter().enumerate() {
        let patch = json!({"metadata": {"labels": {"topology.kubernetes.io/zone": zone}}});
        nodes
            .patch(
                &format!("fake-node-{i}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }
    namespace(&client, "svc-spread").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "svc-spread");
    let pp = PostParams::default();
    // Half of nodes 1 and 2 taken: least-allocated alone prefers node 0 for every pod.
    for n in ["fake-node-1", "fake-node-2"] {
        let filler = pod(&format!("filler-{n}"), "filler", "2", "8Gi", Some(n));
        pods.create(&pp, &filler).await.unwrap();
    }
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "svc-spread")
        .create(&pp, &svc)
        .await
        .unwrap();
    let mut placed = Vec::new();
    for i in 0..3 {
        let name = format!("web-{i}");
        pods.create(&pp, &pod(&name, "web", "100m", "128Mi", None))
            .await
            .unwrap();
        placed.push(node_of(&pods, &name).await);
    }
    assert_eq!(placed[0], "fake-node-0", "the emptiest node first");
    let mut distinct = placed.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "one pod per zone: {placed:?}");
    // A pod no Service selects is not spread: it goes to the emptiest node.
    pods.create(&pp, &pod("lone", "lone", "100m", "128Mi", None))
        .await
        .unwrap();
    assert_eq!(node_of(&pods, "lone").await, "fake-node-0");
}
