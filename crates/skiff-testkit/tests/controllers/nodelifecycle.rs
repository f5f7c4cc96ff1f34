//! Node health on simulated nodes: a node whose heartbeats stop goes Ready=Unknown and gets the
//! unreachable taints, its pods are evicted by their tolerations, it recovers when heartbeats
//! resume; a NoExecute taint evicts intolerant pods at once; pods of a deleted node are
//! collected.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

fn pod(name: &str, node: &str, tolerations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": tolerations,
            "containers": [{"name": "c", "image": "nginx"}]
        }
    }))
    .unwrap()
}

fn unreachable_for(secs: Option<i64>) -> serde_json::Value {
    let mut t = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"});
    if let Some(s) = secs {
        t["tolerationSeconds"] = json!(s);
    }
    json!([t])
}

fn ready_condition(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

fn node_ready(n: &Node) -> Option<(String, Option<String>)> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn has_taint(n: &Node, key: &str, effect: &str) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == key && t.effect == effect))
}

async fn ready_pod(pods: &Api<Pod>, name: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("{name} ready"),
        || async {
            let p = pods.get(name).await.ok()?;
            (ready_condition(&p).as_deref() == Some("True")).then_some(())
        },
    )
    .await;
}

async fn terminating(pods: &Api<Pod>, name: &str) -> bool {
    match pods.get(name).await {
        Ok(p) => p.metadata.deletion_timestamp.is_some(),
        Err(_) => true,
    }
}

#[tokio::test]
async fn dead_nodes_go_unknown_get_tainted_and_their_pods_evicted_by_toleration() {
    let server = TestServer::start_with(|o| {
        o.fake_nodes.count = 2;
        o.disable_scheduler = true;
        o.controllers.node_monitor_grace_period = Duration::from_secs(2);
    })
    .await
    .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "nl").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "nl");
    let nodes: Api<Node> = Api::all(client.clone());
    let pp = PostParams::default();

    // DefaultTolerationSeconds gives a plain pod 300 s tolerations of not-ready/unreachable.
    let plain = pods
        .create(&pp, &pod("plain", "fake-node-0", json!([])))
        .await
        .unwrap();
    let tols = plain.spec.unwrap().tolerations.unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let t = tols
            .iter()
            .find(|t| t.key.as_deref() == Some(key))
            .expect(key);
        assert_eq!(t.toleration_seconds, Some(300));
        assert_eq!(t.operator.as_deref(), Some("Exists"));
        assert_eq!(t.effect.as_deref(), Some("NoExecute"));
    }
    pods.create(&pp, &pod("quick", "fake-node-0", unreachable_for(Some(0))))
        .await
        .unwrap();
    pods.create(&pp, &pod("later", "fake-node-0", unreachable_for(Some(4))))
        .await
        .unwrap();
    pods.create(&pp, &pod("forever", "fake-node-0", unreachable_for(None)))
        .await
        .unwrap();
    for p in ["plain", "quick", "later", "forever"] {
        ready_pod(&pods, p).await;
    }
    // Healthy nodes stay Ready past the grace period (heartbeats come in time).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n0 = nodes.get("fake-node-0").await.unwrap();
    assert_eq!(node_ready(&n0).unwrap().0, "True");
    assert!(!has_taint(
        &n0,
        "node.kubernetes.io/unreachable",
        "NoExecute"
    ));

    // The kubelet of fake-node-0 dies.
    nodes
        .patch(
            "fake-node-0",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"sim.skiff.dev/heartbeat": "stopped"}}}),
            ),
        )
        .await
        .unwrap();
    let dead = eventually(
        Duration::from_secs(10),
        "fake-node-0 unknown and tainted",
        || async {
            let n = nodes.get("fake-node-0").await.ok()?;
            let (status, _) = node_ready(&n)?;
            (status == "Unknown"
                && has_taint(&n, "node.kubernetes.io/unreachable", "NoExecute")
                && has_taint(&n, "node.kubernetes.io/unreachable", "NoSchedule"))
            .then_some(n)
        },
    )
    .await;
    let ready = dead
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let marked_at = tokio::time::Instant::now();

    // tolerationSeconds 0: evicted at once, with the DisruptionTarget condition. The dead
    // kubelet never finishes the deletion, so the pod stays Terminating.
    let quick = eventually(Duration::from_secs(5), "quick evicted", || async {
        let p = pods.get("quick").await.ok()?;
        p.metadata.deletion_timestamp.is_some().then_some(p)
    })
    .await;
    let dt = quick
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("DisruptionTarget");
    assert_eq!(dt.reason.as_deref(), Some("DeletionByTaintManager"));
    // Pods on the dead node are marked not ready.
    eventually(Duration::from_secs(5), "plain not ready", || async {
        let p = pods.get("plain").await.ok()?;
        (ready_condition(&p).as_deref() == Some("False")).then_some(())
    })
    .await;
    // tolerationSeconds 4: still there for a while, evicted later.
    assert!(!terminating(&pods, "later").await);
    eventually(Duration::from_secs(10), "later evicted", || async {
        terminating(&pods, "later").await.then_some(())
    })
    .await;
    assert!(
        marked_at.elapsed() >= Duration::from_secs(2),
        "evicted too early: {:?}",
        marked_at.elapsed()
    );
    // No tolerationSeconds: stays. 300 s: stays for now.
    assert!(!terminating(&pods, "forever").await);
    assert!(!terminating(&pods, "plain").await);

    let events: Api<Event> = Api::namespaced(client.clone(), "nl");
    eventually(
        Duration::from_secs(5),
        "TaintManagerEviction event",
        || async {
            let l = events.list(&ListParams::default()).await.ok()?;
            l.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("TaintManagerEviction")
                        && e.message.as_deref() == Some("Marking for deletion Pod nl/quick")
                })
                .then_some(())
        },
    )
    .await;

    // The kubelet comes back: Ready again, taints gone, surviving pods Ready again, and the
    // terminating ones finish their deletion.
    nodes
        .patch(
            "fake-node-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"sim.skiff.dev/heartbeat": null}}})),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "fake-node-0 back", || async {
        let n = nodes.get("fake-node-0").await.ok()?;
        let (status, _) = node_ready(&n)?;
        (status == "True" && !has_taint(&n, "node.kubernetes.io/unreachable", "NoExecute"))
            .then_some(())
    })
    .await;
    ready_pod(&pods, "forever").await;
    ready_pod(&pods, "plain").await;
    eventually(Duration::from_secs(10), "evicted pods gone", || async {
        let quick = pods.get_opt("quick").await.ok()?;
        let later = pods.get_opt("later").await.ok()?;
        (quick.is_none() && later.is_none()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_noexecute_taint_evicts_at_once_and_pods_of_deleted_nodes_are_collected() {
    let server = TestServer::start_with(|o| {
        o.fake_nodes.count = 2;
        o.disable_scheduler = true;
        o.controllers.pod_gc_period = Duration::from_millis(300);
    })
    .await
    .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "te").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "te");
    let nodes: Api<Node> = Api::all(client.clone());
    let pp = PostParams::default();
    pods.create(&pp, &pod("victim", "fake-node-0", json!([])))
        .await
        .unwrap();
    pods.create(
        &pp,
        &pod(
            "tolerant",
            "fake-node-0",
            json!([{"key": "maintenance", "operator": "Exists", "effect": "NoExecute"}]),
        ),
    )
    .await
    .unwrap();
    pods.create(&pp, &pod("orphan", "fake-node-1", json!([])))
        .await
        .unwrap();
    for p in ["victim", "tolerant", "orphan"] {
        ready_pod(&pods, p).await;
    }

    // kubectl taint nodes fake-node-0 maintenance=now:NoExecute
    nodes
        .patch(
            "fake-node-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "maintenance", "value": "now", "effect": "NoExecute"}]}})),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "victim gone", || async {
        pods.get_opt("victim").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(!terminating(&pods, "tolerant").await);

    // The node of "orphan" is deleted: the pod GC removes its pods after the quarantine.
    nodes
        .delete("fake-node-1", &DeleteParams::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "orphan collected", || async {
        pods.get_opt("orphan").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(pods.get_opt("tolerant").await.unwrap().is_some());
}

#[tokio::test]
async fn pods_of_a_dead_node_are_replaced_on_the_others() {
    let server = TestServer::start_with(|o| {
        o.fake_nodes.count = 3;
        o.controllers.node_monitor_grace_period = Duration::from_secs(2);
    })
    .await
    .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "rep").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "rep");
    let nodes: Api<Node> = Api::all(client.clone());
    let sets: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(client.clone(), "rep");
    let rs = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 6,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "tolerations": [
                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1},
                        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}
                    ],
                    "containers": [{"name": "c", "image": "nginx"}]
                }
            }
        }
    }))
    .unwrap();
    sets.create(&PostParams::default(), &rs).await.unwrap();
    let live = || async {
        let l = pods.list(&ListParams::default()).await.ok()?;
        Some(
            l.items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect::<Vec<_>>(),
        )
    };
    let running = eventually(Duration::from_secs(20), "6 ready pods", || async {
        let l = live().await?;
        (l.len() == 6
            && l.iter()
                .all(|p| ready_condition(p).as_deref() == Some("True")))
        .then_some(l)
    })
    .await;
    let victim_node = running[0].spec.as_ref().unwrap().node_name.clone().unwrap();

    nodes
        .patch(
            &victim_node,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"sim.skiff.dev/heartbeat": "stopped"}}}),
            ),
        )
        .await
        .unwrap();
    // Evicted after their 1 s toleration, replaced, and the scheduler keeps the replacements
    // off the tainted node.
    eventually(
        Duration::from_secs(30),
        "6 ready pods elsewhere",
        || async {
            let l = live().await?;
            let ok = l.len() == 6
                && l.iter().all(|p| {
                    ready_condition(p).as_deref() == Some("True")
                        && p.spec.as_ref().and_then(|s| s.node_name.as_deref())
                            != Some(victim_node.as_str())
                });
            ok.then_some(())
        },
    )
    .await;
}
