//! The StatefulSet controller: OrderedReady creation observed through a watch while the test
//! marks pods Ready one by one, reverse-order scale-down one at a time, claims per pod with
//! owner references following the retention policy, a rolling update held at a partition,
//! undo, and never two pods with one ordinal. The test plays scheduler and kubelet.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::daemonset::kubelet_round_on;
use crate::{eventually, namespace};

/// What the watch saw, in order: (event, pod name, ready, terminating).
type Seen = Arc<Mutex<Vec<(&'static str, String, bool, bool)>>>;

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn record(pods: Api<Pod>) -> Seen {
    let seen: Seen = Arc::default();
    let out = seen.clone();
    let stream = pods
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch pods");
    tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Ok(Some(ev)) = stream.try_next().await {
            let (kind, p) = match ev {
                WatchEvent::Added(p) => ("ADDED", p),
                WatchEvent::Modified(p) => ("MODIFIED", p),
                WatchEvent::Deleted(p) => ("DELETED", p),
                _ => continue,
            };
            let name = p.metadata.name.clone().unwrap_or_default();
            out.lock().unwrap().push((
                kind,
                name,
                is_ready(&p),
                p.metadata.deletion_timestamp.is_some(),
            ));
        }
    });
    seen
}

/// No pod name was added while a pod of that name still existed.
fn never_doubled(seen: &Seen) {
    let mut live = HashSet::new();
    for (kind, name, _, _) in seen.lock().unwrap().iter() {
        match *kind {
            "ADDED" => assert!(live.insert(name.clone()), "{name} added twice"),
            "DELETED" => {
                live.remove(name);
            }
            _ => {}
        }
    }
}

async fn live_names(pods: &Api<Pod>) -> Vec<String> {
    let mut v: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect();
    v.sort();
    v
}

async fn make_node(client: &kube::Client, name: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    // Ready with a fresh heartbeat, so that node lifecycle leaves its pods alone.
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::TimestampRound::new().smallest(k8s_openapi::jiff::Unit::Second))
        .unwrap()
        .to_string();
    let n: Node = serde_json::from_value(json!({"metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": "True",
            "lastHeartbeatTime": now, "lastTransitionTime": now}]}}))
    .unwrap();
    nodes.create(&PostParams::default(), &n).await.unwrap();
}

fn owners(c: &PersistentVolumeClaim) -> Vec<(String, String, bool)> {
    c.metadata
        .owner_references
        .iter()
        .flatten()
        .map(|r| (r.kind.clone(), r.name.clone(), r.controller == Some(true)))
        .collect()
}

#[tokio::test]
async fn statefulset_orders_pods_and_manages_claims() {
    let server = TestServer::start_with(|o| o.disable_scheduler = true)
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "sts").await;
    make_node(&client, "stsn-1").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "sts");
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "sts");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "sts");
    let seen = record(pods.clone()).await;

    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "web"}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    }))
    .unwrap();
    let created = sets.create(&PostParams::default(), &set).await.unwrap();
    let uid = created.metadata.uid.unwrap();

    // One at a time: web-N+1 only once web-N is Running and Ready.
    for i in 0..3 {
        let me = format!("web-{i}");
        eventually(Duration::from_secs(10), &me, || async {
            kubelet_round_on(&pods, Some("stsn-1"), |_| false).await;
            live_names(&pods).await.contains(&me).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let names = live_names(&pods).await;
        assert_eq!(
            names.len(),
            i + 1,
            "nothing after {me} while it is not ready: {names:?}"
        );
        kubelet_round_on(&pods, Some("stsn-1"), |p| {
            p.metadata.name.as_deref() == Some(&me)
        })
        .await;
    }
    let s = eventually(Duration::from_secs(10), "3 ready", || async {
        let s = sets.get("web").await.unwrap().status?;
        (s.replicas == 3
            && s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.updated_replicas == Some(3)
            && s.current_replicas == Some(3)
            && s.observed_generation == Some(1))
        .then_some(s)
    })
    .await;
    assert!(s.current_revision.as_deref().unwrap().starts_with("web-"));
    assert_eq!(s.current_revision, s.update_revision);
    {
        let seen = seen.lock().unwrap();
        let added: Vec<&str> = seen
            .iter()
            .filter(|e| e.0 == "ADDED")
            .map(|e| e.1.as_str())
            .collect();
        assert_eq!(added, ["web-0", "web-1", "web-2"]);
        // When web-N was added, web-N-1 had been seen ready.
        for n in 1..3 {
            let at = seen
                .iter()
                .position(|e| e.0 == "ADDED" && e.1 == format!("web-{n}"))
                .unwrap();
            assert!(
                seen[..at]
                    .iter()
                    .any(|e| e.1 == format!("web-{}", n - 1) && e.2),
                "web-{} was ready before web-{n}",
                n - 1
            );
        }
    }

    // Identity and storage.
    let p1 = pods.get("web-1").await.unwrap();
    let l = p1.metadata.labels.as_ref().unwrap();
    assert_eq!(l["statefulset.kubernetes.io/pod-name"], "web-1");
    assert_eq!(l["apps.kubernetes.io/pod-index"], "1");
    assert_eq!(
        Some(&l["controller-revision-hash"]),
        s.update_revision.as_ref()
    );
    let spec = p1.spec.as_ref().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("web-1"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let vol = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "www")
        .unwrap();
    assert_eq!(
        vol.persistent_volume_claim.as_ref().unwrap().claim_name,
        "www-web-1"
    );
    for i in 0..3 {
        let c = pvcs.get(&format!("www-web-{i}")).await.unwrap();
        assert_eq!(
            owners(&c),
            vec![("StatefulSet".to_string(), "web".to_string(), true)]
        );
        assert_eq!(c.metadata.labels.as_ref().unwrap()["app"], "web");
        assert_eq!(c.metadata.owner_references.as_ref().unwrap()[0].uid, uid);
    }

    // Scale down to 1: web-2 goes first; web-1 only once web-2 is gone; their claims pass to
    // the pods (whenScaled: Delete), web-0's stays with the set.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    let terminating = |n: &'static str| {
        let pods = pods.clone();
        async move {
            pods.get(n)
                .await
                .ok()
                .is_some_and(|p| p.metadata.deletion_timestamp.is_some())
        }
    };
    eventually(Duration::from_secs(10), "web-2 terminating", || async {
        terminating("web-2").await.then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !terminating("web-1").await,
        "web-1 waits for web-2 to be gone"
    );
    let c2 = pvcs.get("www-web-2").await.unwrap();
    assert_eq!(
        owners(&c2),
        vec![("Pod".to_string(), "web-2".to_string(), true)]
    );
    eventually(Duration::from_secs(10), "only web-0", || async {
        kubelet_round_on(&pods, Some("stsn-1"), |_| true).await;
        (live_names(&pods).await == ["web-0"]).then_some(())
    })
    .await;
    {
        // The watch saw web-2 gone before web-1 began terminating.
        let seen = seen.lock().unwrap();
        let gone2 = seen
            .iter()
            .position(|e| e.0 == "DELETED" && e.1 == "web-2")
            .unwrap();
        let term1 = seen.iter().position(|e| e.1 == "web-1" && e.3).unwrap();
        assert!(gone2 < term1, "web-1 waited for web-2 to be gone");
    }
    let c1 = pvcs.get("www-web-1").await.unwrap();
    assert_eq!(
        owners(&c1),
        vec![("Pod".to_string(), "web-1".to_string(), true)]
    );
    let c0 = pvcs.get("www-web-0").await.unwrap();
    assert_eq!(
        owners(&c0),
        vec![("StatefulSet".to_string(), "web".to_string(), true)]
    );
    eventually(Duration::from_secs(10), "status 1", || async {
        let s = sets.get("web").await.unwrap().status?;
        (s.replicas == 1 && s.ready_replicas == Some(1)).then_some(())
    })
    .await;
    never_doubled(&seen);

    // Events in upstream's words.
    let events: Api<Event> = Api::namespaced(client.clone(), "sts");
    eventually(Duration::from_secs(10), "events", || async {
        let l = events.list(&ListParams::default()).await.ok()?.items;
        let has = |reason: &str, msg: &str| {
            l.iter().any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.message.as_deref() == Some(msg)
                    && e.source.as_ref().and_then(|s| s.component.as_deref())
                        == Some("statefulset-controller")
            })
        };
        (has(
            "SuccessfulCreate",
            "create Pod web-0 in StatefulSet web successful",
        ) && has(
            "SuccessfulCreate",
            "create Claim www-web-0 Pod web-0 in StatefulSet web success",
        ) && has(
            "SuccessfulDelete",
            "delete Pod web-2 in StatefulSet web successful",
        ))
        .then_some(())
    })
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    let _ = nodes.delete("stsn-1", &DeleteParams::default()).await;
}

#[tokio::test]
async fn statefulset_rolling_update_with_partition_and_undo() {
    let server = TestServer::start_with(|o| o.disable_scheduler = true)
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "stsru").await;
    make_node(&client, "stsn-2").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "stsru");
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "stsru");
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), "stsru");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "stsru");
    let seen = record(pods.clone()).await;
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 3,
            "serviceName": "db",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "db"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    // Parallel: all three at once, before any is ready.
    eventually(Duration::from_secs(10), "3 pods at once", || async {
        (live_names(&pods).await == ["db-0", "db-1", "db-2"]).then_some(())
    })
    .await;
    let rev1 = eventually(Duration::from_secs(10), "3 ready", || async {
        kubelet_round_on(&pods, Some("stsn-2"), |_| true).await;
        let s = sets.get("db").await.unwrap().status?;
        (s.ready_replicas == Some(3) && s.current_revision == s.update_revision)
            .then_some(s.current_revision?)
    })
    .await;
    let revision_label =
        |p: &Pod| p.metadata.labels.as_ref().unwrap()["controller-revision-hash"].clone();

    // New image, partition 2: only db-2 moves.
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "db", "image": "postgres:17"}]}}}})),
    )
    .await
    .unwrap();
    let rev2 = eventually(Duration::from_secs(10), "db-2 updated", || async {
        kubelet_round_on(&pods, Some("stsn-2"), |_| true).await;
        let s = sets.get("db").await.unwrap().status?;
        let upd = s.update_revision.clone()?;
        let p2 = pods.get("db-2").await.ok()?;
        (upd != rev1
            && revision_label(&p2) == upd
            && is_ready(&p2)
            && s.updated_replicas == Some(1)
            && s.current_revision.as_ref() == Some(&rev1)
            && s.ready_replicas == Some(3))
        .then_some(upd)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in ["db-0", "db-1"] {
        let p = pods.get(n).await.unwrap();
        assert_eq!(revision_label(&p), rev1, "{n} stays below the partition");
        assert_eq!(
            p.spec.unwrap().containers[0].image.as_deref(),
            Some("postgres:16")
        );
    }

    // Partition 0: the rest follow, from the top down; the rollout completes.
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(20), "all updated", || async {
        kubelet_round_on(&pods, Some("stsn-2"), |_| true).await;
        let s = sets.get("db").await.unwrap().status?;
        (s.current_revision.as_ref() == Some(&rev2)
            && s.updated_replicas == Some(3)
            && s.current_replicas == Some(3)
            && s.ready_replicas == Some(3))
        .then_some(())
    })
    .await;
    {
        // db-1 was replaced before db-0.
        let seen = seen.lock().unwrap();
        let term = |n: &str| seen.iter().position(|e| e.1 == n && e.3).unwrap();
        assert!(term("db-1") < term("db-0"));
    }
    let list = revs.list(&ListParams::default()).await.unwrap().items;
    let numbers: BTreeMap<String, i64> = list
        .iter()
        .map(|r| (r.metadata.name.clone().unwrap(), r.revision))
        .collect();
    assert_eq!(numbers.len(), 2);
    assert_eq!((numbers[&rev1], numbers[&rev2]), (1, 2));
    let r1 = list
        .iter()
        .find(|r| r.metadata.name.as_ref() == Some(&rev1))
        .unwrap();
    assert!(r1
        .metadata
        .labels
        .as_ref()
        .unwrap()
        .contains_key("controller.kubernetes.io/hash"));

    // Undo as kubectl does: the revision's data as a strategic merge patch.
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(r1.data.clone().unwrap().0),
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(20),
        "back at revision 1, renumbered 3",
        || async {
            kubelet_round_on(&pods, Some("stsn-2"), |_| true).await;
            let s = sets.get("db").await.unwrap().status?;
            let numbers: BTreeMap<String, i64> = revs
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .map(|r| (r.metadata.name.clone().unwrap(), r.revision))
                .collect();
            (s.current_revision.as_ref() == Some(&rev1)
                && s.updated_replicas == Some(3)
                && s.ready_replicas == Some(3)
                && numbers.get(&rev1) == Some(&3)
                && numbers.len() == 2)
                .then_some(())
        },
    )
    .await;
    never_doubled(&seen);

    // Retain: claims have no owners and outlive the set.
    for i in 0..3 {
        let c = pvcs.get(&format!("data-db-{i}")).await.unwrap();
        assert!(owners(&c).is_empty(), "{:?}", owners(&c));
    }
    sets.delete("db", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        pvcs.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
    let nodes: Api<Node> = Api::all(client.clone());
    let _ = nodes.delete("stsn-2", &DeleteParams::default()).await;
}
