//! The ReplicaSet controller: pods created and deleted to match replicas, adoption of orphans,
//! release of pods whose labels no longer match, status counts.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

fn rs(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))
    .unwrap()
}

async fn owned_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn relabel(pods: &Api<Pod>, name: &str, app: &str) {
    pods.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": app}}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn replicaset_creates_scales_adopts_and_releases() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "rs").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "rs");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "rs");

    // An orphan that matches is adopted rather than duplicated.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();

    let created = sets
        .create(&PostParams::default(), &rs("web", 3))
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    let list = eventually(Duration::from_secs(10), "3 pods", || async {
        let l = owned_pods(&pods, "web").await;
        (l.len() == 3).then_some(l)
    })
    .await;
    for p in &list {
        let r = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(r.uid, uid);
        assert_eq!(r.kind, "ReplicaSet");
        assert_eq!(r.controller, Some(true));
        assert_eq!(r.block_owner_deletion, Some(true));
        assert!(
            p.metadata.name.as_deref().unwrap().starts_with("web-")
                || p.metadata.name.as_deref() == Some("orphan")
        );
    }
    assert!(
        list.iter()
            .any(|p| p.metadata.name.as_deref() == Some("orphan")),
        "orphan adopted"
    );
    eventually(Duration::from_secs(10), "status.replicas 3", || async {
        let s = sets.get("web").await.unwrap().status?;
        (s.replicas == 3 && s.observed_generation == Some(1) && s.fully_labeled_replicas == Some(3))
            .then_some(())
    })
    .await;

    // Scale down: unscheduled pods go first and immediately.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(10), "1 pod", || async {
        (owned_pods(&pods, "web").await.len() == 1).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "status.replicas 1", || async {
        let s = sets.get("web").await.unwrap().status?;
        (s.replicas == 1 && s.observed_generation == Some(2)).then_some(())
    })
    .await;

    // Relabeling the last pod releases it, and a replacement is made.
    let last = owned_pods(&pods, "web").await.remove(0);
    let last_name = last.metadata.name.clone().unwrap();
    relabel(&pods, &last_name, "other").await;
    eventually(
        Duration::from_secs(10),
        "release and replacement",
        || async {
            let released = pods.get(&last_name).await.ok()?;
            let free = released
                .metadata
                .owner_references
                .as_ref()
                .is_none_or(|r| r.is_empty());
            (free && owned_pods(&pods, "web").await.len() == 1).then_some(())
        },
    )
    .await;

    // The released pod, labeled back, is an orphan again that the ReplicaSet adopts; one of
    // the two it then controls goes. A pod that something else controls is left alone, labels
    // or not. (Its owner exists, or the garbage collector would delete it; no controller
    // claims pods for a ConfigMap.)
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "rs");
    let x = maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
        )
        .await
        .unwrap();
    let foreign: Pod = serde_json::from_value(json!({
        "metadata": {"name": "foreign", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x",
                "uid": x.metadata.uid, "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &foreign).await.unwrap();
    relabel(&pods, &last_name, "web").await;
    eventually(Duration::from_secs(10), "re-adoption", || async {
        let p = pods.get(&last_name).await.ok()?;
        let r = p.metadata.owner_references.as_ref()?.first()?.clone();
        (r.uid == uid).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "back to 1 pod", || async {
        let mine: Vec<Pod> = owned_pods(&pods, "web")
            .await
            .into_iter()
            .filter(|p| p.metadata.name.as_deref() != Some("foreign"))
            .collect();
        let s = sets.get("web").await.unwrap().status?;
        (mine.len() == 1 && s.replicas == 1).then_some(())
    })
    .await;
    let foreign = pods.get("foreign").await.unwrap();
    assert_eq!(
        foreign.metadata.owner_references.unwrap()[0].name,
        "x",
        "another controller's pod stays its"
    );

    // Events tell the story.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "rs");
    eventually(
        Duration::from_secs(10),
        "SuccessfulCreate and SuccessfulDelete events",
        || async {
            let l = events.list(&ListParams::default()).await.ok()?.items;
            let has = |r: &str| {
                l.iter().any(|e| {
                    e.reason.as_deref() == Some(r)
                        && e.involved_object.name.as_deref() == Some("web")
                })
            };
            (has("SuccessfulCreate") && has("SuccessfulDelete")).then_some(())
        },
    )
    .await;
}
