//! The Deployment controller: rolling updates that never break maxSurge / maxUnavailable
//! (recorded from watches at every step), Recreate ordering, revisions and rollback, history
//! limit, pause and resume, proportional scaling, and the progress deadline.
//!
//! The test plays the kubelet itself (binds pods when asked, marks them Running and Ready,
//! finishes graceful deletions after a delay) so that every step is deterministic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;
use skiff_testkit::TestServer;
use tokio::sync::Mutex;

use crate::{eventually, namespace};

const LIMIT: Duration = Duration::from_secs(30);

fn deployment(name: &str, replicas: i32, strategy: serde_json::Value, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))
    .unwrap()
}

fn rolling(surge: serde_json::Value, unavailable: serde_json::Value) -> serde_json::Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

fn image_of(p: &Pod) -> String {
    p.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[derive(Clone, Copy)]
struct Kubelet {
    /// Bind pods to `node-a` (so that deletion is graceful and the kubelet finishes it).
    bind: bool,
    /// How long after creation a pod becomes Ready.
    ready_after: Duration,
    /// How long a terminating pod lingers before the kubelet removes it.
    linger: Duration,
}

/// Plays the kubelet for the pods of namespace `ns`: pods whose image is `never-ready` stay
/// Pending; others become Running and Ready; terminating pods go after `linger`.
fn kubelet(client: kube::Client, ns: &str, k: Kubelet) -> tokio::task::JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, ns);
    tokio::spawn(async move {
        let mut seen: HashMap<String, tokio::time::Instant> = HashMap::new();
        let mut dying: HashMap<String, tokio::time::Instant> = HashMap::new();
        loop {
            let Ok(list) = pods.list(&ListParams::default()).await else {
                tokio::time::sleep(Duration::from_millis(30)).await;
                continue;
            };
            let now = tokio::time::Instant::now();
            for p in list.items {
                let name = p.metadata.name.clone().unwrap();
                let uid = p.metadata.uid.clone().unwrap();
                if p.metadata.deletion_timestamp.is_some() {
                    let since = *dying.entry(uid.clone()).or_insert(now);
                    if now.duration_since(since) >= k.linger {
                        let dp = DeleteParams {
                            grace_period_seconds: Some(0),
                            preconditions: Some(kube::api::Preconditions {
                                uid: Some(uid),
                                resource_version: None,
                            }),
                            ..Default::default()
                        };
                        let _ = pods.delete(&name, &dp).await;
                    }
                    continue;
                }
                let first = *seen.entry(uid.clone()).or_insert(now);
                if k.bind && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
                    let binding = json!({"apiVersion": "v1", "kind": "Binding",
                        "metadata": {"name": name}, "target": {"kind": "Node", "name": "node-a"}});
                    let _ = pods
                        .create_subresource::<_, serde_json::Value>(
                            "binding",
                            &name,
                            &PostParams::default(),
                            &binding,
                        )
                        .await;
                }
                if image_of(&p) == "never-ready" || is_ready(&p) {
                    continue;
                }
                if now.duration_since(first) < k.ready_after {
                    continue;
                }
                let t = k8s_openapi::jiff::Timestamp::now()
                    .round(k8s_openapi::jiff::Unit::Second)
                    .unwrap()
                    .to_string();
                let status = json!({"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": t},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": t},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": t}
                ]}});
                let _ = pods
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
}

async fn wait_complete(api: &Api<Deployment>, name: &str, image: &str) -> Deployment {
    eventually(
        LIMIT,
        &format!("{name} rolled out with {image}"),
        || async {
            let d = api.get(name).await.ok()?;
            let r = d.spec.as_ref()?.replicas.unwrap_or(1);
            let img = d.spec.as_ref()?.template.spec.as_ref()?.containers[0]
                .image
                .clone()?;
            let s = d.status.as_ref()?;
            let progressed = s.conditions.as_ref()?.iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
            });
            (img == image
                && s.observed_generation >= d.metadata.generation
                && s.updated_replicas.unwrap_or(0) == r
                && s.replicas.unwrap_or(0) == r
                && s.available_replicas.unwrap_or(0) == r
                && progressed)
                .then_some(d)
        },
    )
    .await
}

async fn sets_of(api: &Api<ReplicaSet>, app: &str) -> Vec<ReplicaSet> {
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
}

fn rev(rs: &ReplicaSet) -> String {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned()
        .unwrap_or_default()
}

fn spec_size(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

async fn set_image(api: &Api<Deployment>, name: &str, image: &str) {
    let p =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(p))
        .await
        .unwrap();
}

async fn events_for(client: &kube::Client, ns: &str, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| {
            format!(
                "{} {}",
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn rolling_update_never_exceeds_surge_or_unavailable() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "roll").await;
    let _kubelet = kubelet(
        client.clone(),
        "roll",
        Kubelet {
            bind: false,
            ready_after: Duration::from_millis(150),
            linger: Duration::ZERO,
        },
    );
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "roll");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "roll");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "roll");
    let (replicas, surge, unavailable) = (6, 2, 1);
    deps.create(
        &PostParams::default(),
        &deployment("web", replicas, rolling(json!(surge), json!("20%")), "v1"),
    )
    .await
    .unwrap();
    let d = wait_complete(&deps, "web", "v1").await;
    let first = sets_of(&sets, "web").await;
    assert_eq!(first.len(), 1);
    let rs1 = &first[0];
    let hash = rs1.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(
        rs1.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert!(hash.len() <= 10);
    assert_eq!(
        rs1.spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()["pod-template-hash"],
        hash
    );
    assert_eq!(rev(rs1), "1");
    let ann = rs1.metadata.annotations.as_ref().unwrap();
    assert_eq!(ann["deployment.kubernetes.io/desired-replicas"], "6");
    assert_eq!(ann["deployment.kubernetes.io/max-replicas"], "8");
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );
    let owner = &rs1.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Deployment", Some(true))
    );
    for p in pods.list(&ListParams::default()).await.unwrap().items {
        assert_eq!(
            p.metadata.labels.as_ref().unwrap()["pod-template-hash"],
            hash
        );
    }
    let st = d.status.as_ref().unwrap();
    let cond = |t: &str| {
        st.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == t)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        cond("Available").reason.as_deref(),
        Some("MinimumReplicasAvailable")
    );
    assert_eq!(
        cond("Progressing").message.unwrap(),
        format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
    );

    // Record every ReplicaSet and pod state from watches during the update.
    let rv_sets = sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let pod_list = pods.list(&ListParams::default()).await.unwrap();
    let rv_pods = pod_list.metadata.resource_version.clone().unwrap();
    let set_log: Arc<Mutex<Vec<(String, i32)>>> = Arc::default();
    let pod_log: Arc<Mutex<Vec<(String, Option<Pod>)>>> = Arc::default();
    let w1 = {
        let log = set_log.clone();
        let mut s = sets
            .watch(&WatchParams::default().timeout(60), &rv_sets)
            .await
            .unwrap()
            .boxed();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = s.next().await {
                match ev {
                    WatchEvent::Added(r) | WatchEvent::Modified(r) => log
                        .lock()
                        .await
                        .push((r.metadata.name.clone().unwrap(), spec_size(&r))),
                    WatchEvent::Deleted(r) => {
                        log.lock().await.push((r.metadata.name.clone().unwrap(), 0))
                    }
                    _ => {}
                }
            }
        })
    };
    let w2 = {
        let log = pod_log.clone();
        let mut s = pods
            .watch(&WatchParams::default().timeout(60), &rv_pods)
            .await
            .unwrap()
            .boxed();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = s.next().await {
                match ev {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) => log
                        .lock()
                        .await
                        .push((p.metadata.name.clone().unwrap(), Some(p))),
                    WatchEvent::Deleted(p) => log
                        .lock()
                        .await
                        .push((p.metadata.name.clone().unwrap(), None)),
                    _ => {}
                }
            }
        })
    };
    set_image(&deps, "web", "v2").await;
    let d = wait_complete(&deps, "web", "v2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w1.abort();
    w2.abort();

    // ReplicaSets: the sum of sizes never above replicas + maxSurge.
    let mut sizes: BTreeMap<String, i32> = first
        .iter()
        .map(|r| (r.metadata.name.clone().unwrap(), spec_size(r)))
        .collect();
    let log = set_log.lock().await.clone();
    assert!(log.len() >= 4, "the update took several steps: {log:?}");
    for (name, size) in &log {
        sizes.insert(name.clone(), *size);
        let total: i32 = sizes.values().sum();
        assert!(total <= replicas + surge, "{total} replicas in {sizes:?}");
    }
    // Pods: never fewer than replicas - maxUnavailable ready (20% of 6 rounds down to 1),
    // never more than replicas + maxSurge alive.
    let mut state: BTreeMap<String, Pod> = pod_list
        .items
        .into_iter()
        .map(|p| (p.metadata.name.clone().unwrap(), p))
        .collect();
    assert_eq!(state.values().filter(|p| is_ready(p)).count(), 6);
    let plog = pod_log.lock().await.clone();
    assert!(plog.len() >= 12, "every pod was replaced: {}", plog.len());
    for (step, (name, p)) in plog.into_iter().enumerate() {
        match p {
            Some(p) if p.metadata.deletion_timestamp.is_none() => {
                state.insert(name, p);
            }
            _ => {
                state.remove(&name);
            }
        }
        let ready = state.values().filter(|p| is_ready(p)).count() as i32;
        assert!(
            ready >= replicas - unavailable,
            "only {ready} ready pods at step {step}"
        );
        assert!(
            state.len() as i32 <= replicas + surge,
            "{} pods at step {step}",
            state.len()
        );
    }

    // Revisions and events.
    let all = sets_of(&sets, "web").await;
    assert_eq!(all.len(), 2);
    let new = all.iter().find(|r| rev(r) == "2").expect("revision 2");
    let old = all.iter().find(|r| rev(r) == "1").expect("revision 1");
    assert_eq!(spec_size(new), 6);
    assert_eq!(spec_size(old), 0);
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );
    let newname = new.metadata.name.clone().unwrap();
    let oldname = old.metadata.name.clone().unwrap();
    let evs = events_for(&client, "roll", "web").await;
    assert!(
        evs.contains(&format!(
            "ScalingReplicaSet Scaled up replica set {oldname} from 0 to 6"
        )),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|e| e.starts_with(&format!(
            "ScalingReplicaSet Scaled up replica set {newname} from 0 to "
        ))),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|e| e.starts_with(&format!(
            "ScalingReplicaSet Scaled down replica set {oldname} to 0 from "
        ))),
        "{evs:?}"
    );
}
