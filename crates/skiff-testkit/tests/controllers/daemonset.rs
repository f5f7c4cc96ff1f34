//! The DaemonSet controller: one pod per eligible node following node labels, taints and new
//! nodes; automatic tolerations and node affinity on its pods; rolling update within
//! maxUnavailable; ControllerRevisions renumbered by an undo (the patch `kubectl rollout undo`
//! sends). The test plays scheduler and kubelet itself (binds pods to the node their affinity
//! names, marks them Running and Ready, finishes graceful deletions), so each step is
//! deterministic.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

/// The node a daemon pod is meant for (its `matchFields metadata.name` affinity).
fn target(p: &Pod) -> Option<String> {
    let v = serde_json::to_value(p.spec.as_ref()?.affinity.as_ref()?).ok()?;
    v.pointer("/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")?
        .as_str()
        .map(str::to_string)
}

fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref()?.node_name.clone().filter(|n| !n.is_empty())
}

/// One round of a scheduler and kubelet: bind pods to their target nodes, mark bound pods
/// Running and Ready, finish graceful deletions.
pub async fn kubelet_round(pods: &Api<Pod>) {
    kubelet_round_on(pods, None, |_| true).await
}

/// [`kubelet_round`] binding pods without a target node to `default`, and marking ready only
/// the pods `ready` accepts.
pub async fn kubelet_round_on(
    pods: &Api<Pod>,
    default: Option<&str>,
    ready: impl Fn(&Pod) -> bool,
) {
    let Ok(list) = pods.list(&ListParams::default()).await else {
        return;
    };
    for p in list.items {
        let name = p.metadata.name.clone().unwrap();
        if p.metadata.deletion_timestamp.is_some() {
            let _ = pods
                .delete(
                    &name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    },
                )
                .await;
            continue;
        }
        let node = match node_of(&p) {
            Some(n) => n,
            None => {
                let Some(t) = target(&p).or(default.map(str::to_string)) else {
                    continue;
                };
                let body = json!({"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name}, "target": {"apiVersion": "v1", "kind": "Node", "name": t}});
                let _ = pods
                    .create_subresource::<serde_json::Value, serde_json::Value>(
                        "binding",
                        &name,
                        &PostParams::default(),
                        &body,
                    )
                    .await;
                t
            }
        };
        let _ = node;
        if !ready(&p) {
            continue;
        }
        let is_ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if !is_ready {
            mark_ready(pods, &name).await;
        }
    }
}

/// Marks a pod Running and Ready (what a kubelet reports).
pub async fn mark_ready(pods: &Api<Pod>, name: &str) {
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::TimestampRound::new().smallest(k8s_openapi::jiff::Unit::Second))
        .unwrap()
        .to_string();
    let _ = pods
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running", "podIP": "10.42.0.9",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}})),
        )
        .await;
}

async fn make_node(nodes: &Api<Node>, name: &str, labels: serde_json::Value) {
    // Ready with a fresh heartbeat, so that node lifecycle leaves its pods alone.
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::TimestampRound::new().smallest(k8s_openapi::jiff::Unit::Second))
        .unwrap()
        .to_string();
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "status": {"conditions": [{"type": "Ready", "status": "True",
            "lastHeartbeatTime": now, "lastTransitionTime": now}]}
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &n).await.unwrap();
}

/// Live pods by the node they are for.
async fn placement(pods: &Api<Pod>) -> BTreeMap<String, Vec<Pod>> {
    let mut m: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for p in pods.list(&ListParams::default()).await.unwrap().items {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(n) = node_of(&p).or_else(|| target(&p)) {
            m.entry(n).or_default().push(p);
        }
    }
    m
}

fn nodes_with_pods(m: &BTreeMap<String, Vec<Pod>>) -> Vec<String> {
    m.keys().cloned().collect()
}

fn hash_of(p: &Pod) -> String {
    p.metadata.labels.as_ref().unwrap()["controller-revision-hash"].clone()
}

#[tokio::test]
async fn daemonset_follows_nodes_labels_and_taints_and_rolls_out() {
    let server = TestServer::start_with(|o| o.disable_scheduler = true)
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "ds").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ds");
    let sets: Api<DaemonSet> = Api::namespaced(client.clone(), "ds");
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), "ds");
    let nodes: Api<Node> = Api::all(client.clone());
    make_node(&nodes, "dsn-a", json!({"role": "web"})).await;
    make_node(&nodes, "dsn-b", json!({"role": "web"})).await;
    make_node(&nodes, "dsn-c", json!({"role": "db"})).await;

    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"nodeSelector": {"role": "web"},
                         "containers": [{"name": "c", "image": "busybox:1"}]}
            }
        }
    }))
    .unwrap();
    let created = sets.create(&PostParams::default(), &ds).await.unwrap();
    let uid = created.metadata.uid.clone().unwrap();

    // One pod on each node the selector picks, aimed by node affinity, with the automatic
    // tolerations and the revision hash.
    let m = eventually(Duration::from_secs(10), "pods on a and b", || async {
        let m = placement(&pods).await;
        (nodes_with_pods(&m) == ["dsn-a", "dsn-b"] && m.values().all(|v| v.len() == 1)).then_some(m)
    })
    .await;
    let p = &m["dsn-a"][0];
    assert!(p.metadata.name.as_deref().unwrap().starts_with("agent-"));
    assert_eq!(target(p).as_deref(), Some("dsn-a"));
    let r = &p.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (r.kind.as_str(), r.uid.as_str()),
        ("DaemonSet", uid.as_str())
    );
    let tols = p.spec.as_ref().unwrap().tolerations.clone().unwrap();
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        assert!(
            tols.iter().any(|t| t.key.as_deref() == Some(key)
                && t.effect.as_deref() == Some(effect)
                && t.operator.as_deref() == Some("Exists")
                && t.toleration_seconds.is_none()),
            "toleration {key}:{effect} in {tols:?}"
        );
    }
    let first_hash = hash_of(p);
    let list = revs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].revision, 1);
    assert_eq!(
        list[0].metadata.name.as_deref(),
        Some(format!("agent-{first_hash}").as_str())
    );
    assert_eq!(
        list[0].data.as_ref().unwrap().0["spec"]["template"]["$patch"],
        "replace"
    );

    // Bound, running and ready: the status counts them and rollout status would finish.
    eventually(Duration::from_secs(10), "status 2/2 available", || async {
        kubelet_round(&pods).await;
        let s = sets.get("agent").await.unwrap().status?;
        (s.desired_number_scheduled == 2
            && s.current_number_scheduled == 2
            && s.number_ready == 2
            && s.number_available == Some(2)
            && s.updated_number_scheduled == Some(2)
            && s.observed_generation == Some(1))
        .then_some(())
    })
    .await;

    // A relabelled node gains a pod; a new node joins and gets one.
    nodes
        .patch(
            "dsn-c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"role": "web"}}})),
        )
        .await
        .unwrap();
    make_node(&nodes, "dsn-d", json!({"role": "web"})).await;
    eventually(Duration::from_secs(10), "pods on a, b, c, d", || async {
        kubelet_round(&pods).await;
        let m = placement(&pods).await;
        (nodes_with_pods(&m) == ["dsn-a", "dsn-b", "dsn-c", "dsn-d"]).then_some(())
    })
    .await;

    // NoSchedule keeps the running pod (misscheduled now); NoExecute evicts it; a label
    // removed takes the pod away.
    nodes
        .patch(
            "dsn-b",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}})),
        )
        .await
        .unwrap();
    nodes
        .patch(
            "dsn-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoExecute"}]}})),
        )
        .await
        .unwrap();
    nodes
        .patch(
            "dsn-d",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"role": null}}})),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "pods on b and c only", || async {
        kubelet_round(&pods).await;
        let m = placement(&pods).await;
        (nodes_with_pods(&m) == ["dsn-b", "dsn-c"]).then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "status with 1 misscheduled",
        || async {
            // Pods being deleted still count until the kubelet finishes them.
            kubelet_round(&pods).await;
            let s = sets.get("agent").await.unwrap().status?;
            (s.desired_number_scheduled == 1
                && s.current_number_scheduled == 1
                && s.number_misscheduled == 1)
                .then_some(())
        },
    )
    .await;
    // Untainted, dsn-a gets its pod back.
    nodes
        .patch(
            "dsn-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": null}})),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "pod back on a", || async {
        kubelet_round(&pods).await;
        let m = placement(&pods).await;
        (nodes_with_pods(&m) == ["dsn-a", "dsn-b", "dsn-c"]).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "all ready again", || async {
        kubelet_round(&pods).await;
        let s = sets.get("agent").await.unwrap().status?;
        (s.desired_number_scheduled == 2 && s.number_available == Some(2)).then_some(())
    })
    .await;

    // A rolling update: a second revision, old pods replaced one at a time (never more than
    // one of the nodes that should run a pod without an available one).
    sets.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}})),
    )
    .await
    .unwrap();
    let worst = std::sync::atomic::AtomicUsize::new(0);
    let new_hash = eventually(Duration::from_secs(20), "all pods updated", || async {
        // Before playing kubelet: count eligible nodes (a, c) without an available pod.
        let m = placement(&pods).await;
        let unavailable = ["dsn-a", "dsn-c"]
            .iter()
            .filter(|n| {
                !m.get(**n).is_some_and(|v| {
                    v.iter().any(|p| {
                        p.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            })
                    })
                })
            })
            .count();
        worst.fetch_max(unavailable, std::sync::atomic::Ordering::Relaxed);
        kubelet_round(&pods).await;
        let s = sets.get("agent").await.unwrap().status?;
        let revs = revs.list(&ListParams::default()).await.unwrap().items;
        let cur = revs.iter().find(|r| r.revision == 2)?;
        let h = cur.metadata.labels.as_ref()?["controller-revision-hash"].clone();
        let m = placement(&pods).await;
        let on = |n: &str| {
            m.get(n)
                .is_some_and(|v| v.len() == 1 && hash_of(&v[0]) == h)
        };
        (s.observed_generation == Some(2)
            && s.updated_number_scheduled == Some(2)
            && s.number_available == Some(2)
            && on("dsn-a")
            && on("dsn-c"))
        .then_some(h)
    })
    .await;
    let worst = worst.into_inner();
    assert!(
        worst <= 1,
        "at most maxUnavailable=1 node without an available pod, saw {worst}"
    );
    assert_ne!(new_hash, first_hash);
    assert_eq!(
        revs.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );

    // Undo as kubectl does it: the old revision's data as a strategic merge patch. The old
    // revision is renumbered 3; no new revision appears.
    let old = revs.get(&format!("agent-{first_hash}")).await.unwrap();
    sets.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Strategic(old.data.unwrap().0),
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(20),
        "undo renumbers revision 1 to 3",
        || async {
            kubelet_round(&pods).await;
            let list = revs.list(&ListParams::default()).await.unwrap().items;
            let r = list
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(&format!("agent-{first_hash}")))?;
            let m = placement(&pods).await;
            let back = m
                .values()
                .flatten()
                .filter(|p| node_of(p).is_some_and(|n| n != "dsn-b"))
                .all(|p| hash_of(p) == first_hash);
            (list.len() == 2 && r.revision == 3 && back).then_some(())
        },
    )
    .await;
    let image = sets
        .get("agent")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("busybox:1"));

    // Events tell the story.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "ds");
    eventually(Duration::from_secs(10), "events", || async {
        let l = events.list(&ListParams::default()).await.ok()?.items;
        let has = |r: &str| {
            l.iter().any(|e| {
                e.reason.as_deref() == Some(r)
                    && e.involved_object.name.as_deref() == Some("agent")
                    && e.source.as_ref().and_then(|s| s.component.as_deref())
                        == Some("daemonset-controller")
                    && e.message.as_deref().is_some_and(|m| {
                        m.starts_with(if r == "SuccessfulCreate" {
                            "Created pod: agent-"
                        } else {
                            "Deleted pod: agent-"
                        })
                    })
            })
        };
        (has("SuccessfulCreate") && has("SuccessfulDelete")).then_some(())
    })
    .await;
    for n in ["dsn-a", "dsn-b", "dsn-c", "dsn-d"] {
        let _ = nodes.delete(n, &DeleteParams::default()).await;
    }
}

fn available(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn daemonset_surges_and_waits_for_on_delete() {
    let server = TestServer::start_with(|o| o.disable_scheduler = true)
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "dss").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "dss");
    let sets: Api<DaemonSet> = Api::namespaced(client.clone(), "dss");
    let nodes: Api<Node> = Api::all(client.clone());
    let names = ["dss-a", "dss-b", "dss-c"];
    for n in names {
        make_node(&nodes, n, json!({"pool": "surge"})).await;
    }
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "surge"},
        "spec": {
            "selector": {"matchLabels": {"app": "surge"}},
            "updateStrategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "surge"}},
                "spec": {"nodeSelector": {"pool": "surge"},
                         "containers": [{"name": "c", "image": "busybox:1"}]}
            }
        }
    }))
    .unwrap();
    sets.create(&PostParams::default(), &ds).await.unwrap();
    eventually(Duration::from_secs(10), "3 available", || async {
        kubelet_round(&pods).await;
        let s = sets.get("surge").await.unwrap().status?;
        (s.number_available == Some(3)).then_some(())
    })
    .await;

    // maxSurge 1, maxUnavailable 0: a new pod starts beside an old one, the old one goes once
    // the new one is ready; every node keeps an available pod, at most one extra pod exists.
    sets.patch(
        "surge",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}})),
    )
    .await
    .unwrap();
    let most = std::sync::atomic::AtomicUsize::new(0);
    let bare = std::sync::atomic::AtomicUsize::new(0);
    eventually(Duration::from_secs(20), "surge rollout done", || async {
        let m = placement(&pods).await;
        let total: usize = m.values().map(Vec::len).sum();
        most.fetch_max(total, std::sync::atomic::Ordering::Relaxed);
        let without = names
            .iter()
            .filter(|n| !m.get(**n).is_some_and(|v| v.iter().any(available)))
            .count();
        bare.fetch_max(without, std::sync::atomic::Ordering::Relaxed);
        kubelet_round(&pods).await;
        let s = sets.get("surge").await.unwrap().status?;
        let m = placement(&pods).await;
        let images: Vec<String> = m
            .values()
            .flatten()
            .map(|p| {
                p.spec.as_ref().unwrap().containers[0]
                    .image
                    .clone()
                    .unwrap()
            })
            .collect();
        (s.observed_generation == Some(2)
            && s.updated_number_scheduled == Some(3)
            && s.number_available == Some(3)
            && images.len() == 3
            && images.iter().all(|i| i == "busybox:2"))
        .then_some(())
    })
    .await;
    assert_eq!(bare.into_inner(), 0, "no node lost its available pod");
    let most = most.into_inner();
    assert!(
        most <= 4,
        "at most one surge pod at a time, saw {most} pods"
    );
    assert_eq!(most, 4, "a surge pod was started");

    // OnDelete: a new template replaces nothing until a pod is deleted.
    sets.patch(
        "surge",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null},
            "template": {"spec": {"containers": [{"name": "c", "image": "busybox:3"}]}}}}),
        ),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(10), "generation 3 observed", || async {
        let s = sets.get("surge").await.unwrap().status?;
        (s.observed_generation == Some(3) && s.updated_number_scheduled == Some(0)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = placement(&pods).await;
    assert!(m
        .values()
        .flatten()
        .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("busybox:2")));
    let victim = m["dss-b"][0].metadata.name.clone().unwrap();
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "dss-b replaced at the new template",
        || async {
            kubelet_round(&pods).await;
            let m = placement(&pods).await;
            let img = |n: &str| {
                m.get(n)
                    .and_then(|v| v.first())
                    .and_then(|p| p.spec.as_ref()?.containers[0].image.clone())
            };
            (img("dss-b").as_deref() == Some("busybox:3")
                && img("dss-a").as_deref() == Some("busybox:2")
                && img("dss-c").as_deref() == Some("busybox:2"))
            .then_some(())
        },
    )
    .await;
    for n in names {
        let _ = nodes.delete(n, &DeleteParams::default()).await;
    }
}
