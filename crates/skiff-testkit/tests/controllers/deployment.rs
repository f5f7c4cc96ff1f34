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

/// Pod states in the order a watch delivered them (`None`: deleted).
type PodLog = Arc<Mutex<Vec<(String, Option<Pod>)>>>;

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
        let mut ips: HashMap<String, String> = HashMap::new();
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
                let n = ips.len();
                let ip = ips
                    .entry(uid.clone())
                    .or_insert_with(|| format!("10.42.{}.{}", n / 250, n % 250 + 2))
                    .clone();
                let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
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
    let pod_log: PodLog = Arc::default();
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

#[tokio::test]
async fn recreate_starts_no_new_pod_before_every_old_pod_is_gone() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "recreate").await;
    // Bound pods terminate gracefully: the kubelet keeps them 1 s after deletion starts.
    let _kubelet = kubelet(
        client.clone(),
        "recreate",
        Kubelet {
            bind: true,
            ready_after: Duration::from_millis(50),
            linger: Duration::from_secs(1),
        },
    );
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "recreate");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "recreate");
    deps.create(
        &PostParams::default(),
        &deployment("db", 3, json!({"type": "Recreate"}), "v1"),
    )
    .await
    .unwrap();
    wait_complete(&deps, "db", "v1").await;

    let list = pods.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.clone().unwrap();
    let mut old: BTreeMap<String, Pod> = list
        .items
        .into_iter()
        .map(|p| (p.metadata.name.clone().unwrap(), p))
        .collect();
    assert_eq!(old.len(), 3);
    let mut stream = pods
        .watch(&WatchParams::default().timeout(60), &rv)
        .await
        .unwrap()
        .boxed();
    set_image(&deps, "db", "v2").await;
    let mut saw_terminating = false;
    let mut new_pods = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while new_pods.len() < 3 {
        let ev = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("new pods in time")
            .expect("watch open")
            .unwrap();
        match ev {
            WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                let name = p.metadata.name.clone().unwrap();
                if image_of(&p) == "v1" {
                    saw_terminating |= p.metadata.deletion_timestamp.is_some();
                    old.insert(name, p);
                } else if !old.is_empty() {
                    panic!("new pod {name} while old pods remain: {:?}", old.keys());
                } else {
                    new_pods.insert(name);
                }
            }
            WatchEvent::Deleted(p) => {
                old.remove(p.metadata.name.as_deref().unwrap());
            }
            _ => {}
        }
    }
    assert!(
        saw_terminating,
        "old pods went through graceful termination"
    );
    wait_complete(&deps, "db", "v2").await;
}

#[tokio::test]
async fn rollback_to_a_revision_re_bumps_it_and_history_is_pruned() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "undo").await;
    let _kubelet = kubelet(
        client.clone(),
        "undo",
        Kubelet {
            bind: false,
            ready_after: Duration::ZERO,
            linger: Duration::ZERO,
        },
    );
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "undo");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "undo");
    let mut d = deployment("api", 2, rolling(json!(1), json!(0)), "v1");
    d.metadata.annotations = Some(
        [(
            "kubernetes.io/change-cause".to_string(),
            "first".to_string(),
        )]
        .into(),
    );
    d.spec.as_mut().unwrap().revision_history_limit = Some(2);
    deps.create(&PostParams::default(), &d).await.unwrap();
    wait_complete(&deps, "api", "v1").await;
    for (i, image) in ["v2", "v3"].into_iter().enumerate() {
        let p = json!({
            "metadata": {"annotations": {"kubernetes.io/change-cause": format!("step {}", i + 2)}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}
        });
        deps.patch("api", &PatchParams::default(), &Patch::Strategic(p))
            .await
            .unwrap();
        wait_complete(&deps, "api", image).await;
    }
    let all = sets_of(&sets, "api").await;
    let by_rev: BTreeMap<String, ReplicaSet> = all.iter().map(|r| (rev(r), r.clone())).collect();
    assert_eq!(by_rev.keys().cloned().collect::<Vec<_>>(), ["1", "2", "3"]);
    let cause = |r: &ReplicaSet| {
        r.metadata.annotations.as_ref().unwrap()["kubernetes.io/change-cause"].clone()
    };
    assert_eq!(cause(&by_rev["1"]), "first");
    assert_eq!(cause(&by_rev["3"]), "step 3");

    // What `kubectl rollout undo --to-revision=1` does (it sends a JSON patch; the e2e
    // script runs the real kubectl): the template of revision 1 without the hash label, and
    // its change-cause.
    let mut template = by_rev["1"].spec.as_ref().unwrap().template.clone().unwrap();
    template
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .remove("pod-template-hash");
    let patch = json!({
        "metadata": {"annotations": {"kubernetes.io/change-cause": "first"}},
        "spec": {"template": template}
    });
    deps.patch("api", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let d = wait_complete(&deps, "api", "v1").await;
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "4"
    );
    let all = eventually(LIMIT, "revision 1 pruned to the limit", || async {
        let all = sets_of(&sets, "api").await;
        (all.len() == 3).then_some(all)
    })
    .await;
    let rs1 = all
        .iter()
        .find(|r| r.metadata.uid == by_rev["1"].metadata.uid)
        .expect("the old ReplicaSet is reused, not recreated");
    assert_eq!(rev(rs1), "4");
    assert_eq!(
        rs1.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(spec_size(rs1), 2);

    // One more rollout: revisions 2 (oldest) is pruned to keep 2 old sets, those at 0.
    set_image(&deps, "api", "v5").await;
    wait_complete(&deps, "api", "v5").await;
    let revs = eventually(LIMIT, "history limited to 2 old sets", || async {
        let mut revs: Vec<String> = sets_of(&sets, "api").await.iter().map(rev).collect();
        revs.sort();
        (revs.len() == 3).then_some(revs)
    })
    .await;
    assert_eq!(revs, ["3", "4", "5"]);
}

#[tokio::test]
async fn paused_deployment_scales_but_does_not_roll_out_until_resumed() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "pause").await;
    let _kubelet = kubelet(
        client.clone(),
        "pause",
        Kubelet {
            bind: false,
            ready_after: Duration::ZERO,
            linger: Duration::ZERO,
        },
    );
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "pause");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "pause");
    deps.create(
        &PostParams::default(),
        &deployment("web", 2, rolling(json!("25%"), json!("25%")), "v1"),
    )
    .await
    .unwrap();
    wait_complete(&deps, "web", "v1").await;
    let pp = PatchParams::default();
    deps.patch("web", &pp, &Patch::Merge(json!({"spec": {"paused": true}})))
        .await
        .unwrap();
    let progressing = |d: &Deployment| {
        d.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Progressing")
            .map(|c| {
                (
                    c.status.clone(),
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            })
    };
    eventually(LIMIT, "DeploymentPaused", || async {
        let d = deps.get("web").await.ok()?;
        (progressing(&d)?
            == (
                "Unknown".into(),
                "DeploymentPaused".into(),
                "Deployment is paused".into(),
            ))
            .then_some(())
    })
    .await;
    set_image(&deps, "web", "v2").await;
    deps.patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .unwrap();
    // Scaling happens; the rollout does not.
    eventually(LIMIT, "scaled to 4 while paused", || async {
        let d = deps.get("web").await.ok()?;
        let s = d.status.as_ref()?;
        (s.observed_generation >= d.metadata.generation && s.available_replicas == Some(4))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = sets_of(&sets, "web").await;
    assert_eq!(all.len(), 1, "no new ReplicaSet while paused");
    assert_eq!(spec_size(&all[0]), 4);

    deps.patch(
        "web",
        &pp,
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await
    .unwrap();
    let d = wait_complete(&deps, "web", "v2").await;
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );
    let evs = events_for(&client, "pause", "web").await;
    assert!(
        evs.iter().any(
            |e| e.starts_with("ScalingReplicaSet Scaled up replica set web-")
                && e.ends_with(" to 4 from 2")
        ),
        "{evs:?}"
    );
}

#[tokio::test]
async fn scaling_mid_rollout_is_proportional() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "prop").await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "prop");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "prop");
    // Ready pods for v1 only: the v2 rollout gets stuck half way.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "prop");
    let kubelet_v1 = kubelet(
        client.clone(),
        "prop",
        Kubelet {
            bind: false,
            ready_after: Duration::ZERO,
            linger: Duration::ZERO,
        },
    );
    deps.create(
        &PostParams::default(),
        &deployment("web", 10, rolling(json!(3), json!(2)), "v1"),
    )
    .await
    .unwrap();
    wait_complete(&deps, "web", "v1").await;
    set_image(&deps, "web", "never-ready").await;
    // 10 + 3 surge: the new set gets 5 (3 surge + 2 unavailable), the old keeps 8.
    let sizes = || async {
        let mut v: Vec<(String, i32)> = sets_of(&sets, "web")
            .await
            .iter()
            .map(|r| {
                (
                    r.spec
                        .as_ref()
                        .unwrap()
                        .template
                        .as_ref()
                        .unwrap()
                        .spec
                        .as_ref()
                        .unwrap()
                        .containers[0]
                        .image
                        .clone()
                        .unwrap(),
                    spec_size(r),
                )
            })
            .collect();
        v.sort();
        v
    };
    eventually(LIMIT, "stuck at 8 old + 5 new", || async {
        (sizes().await == [("never-ready".to_string(), 5), ("v1".to_string(), 8)]).then_some(())
    })
    .await;
    deps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 20}})),
    )
    .await
    .unwrap();
    // 20 + 3 surge = 23 allowed, 10 more: old 8*23/13 ≈ 14 (+6), new 5*23/13 ≈ 9 (+4).
    eventually(LIMIT, "proportional scale-up", || async {
        (sizes().await == [("never-ready".to_string(), 9), ("v1".to_string(), 14)]).then_some(())
    })
    .await;
    let all = sets_of(&sets, "web").await;
    for r in &all {
        let a = r.metadata.annotations.as_ref().unwrap();
        assert_eq!(a["deployment.kubernetes.io/desired-replicas"], "20");
        assert_eq!(a["deployment.kubernetes.io/max-replicas"], "23");
    }
    kubelet_v1.abort();
    let _ = pods;
}

#[tokio::test]
async fn progress_deadline_exceeded_when_new_pods_never_become_ready() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "stuck").await;
    let _kubelet = kubelet(
        client.clone(),
        "stuck",
        Kubelet {
            bind: false,
            ready_after: Duration::ZERO,
            linger: Duration::ZERO,
        },
    );
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "stuck");
    let mut d = deployment("web", 2, rolling(json!(1), json!(0)), "v1");
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(2);
    deps.create(&PostParams::default(), &d).await.unwrap();
    wait_complete(&deps, "web", "v1").await;
    set_image(&deps, "web", "never-ready").await;
    let started = tokio::time::Instant::now();
    let cond = eventually(
        Duration::from_secs(15),
        "ProgressDeadlineExceeded",
        || async {
            let d = deps.get("web").await.ok()?;
            d.status?.conditions?.into_iter().find(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
        },
    )
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "not before the deadline: {took:?}"
    );
    assert!(
        took < Duration::from_secs(6),
        "requeued for the deadline: {took:?}"
    );
    assert_eq!(cond.status, "False");
    let msg = cond.message.unwrap();
    assert!(
        msg.starts_with("ReplicaSet \"web-") && msg.ends_with("\" has timed out progressing."),
        "{msg}"
    );
    // The old pods stay: maxUnavailable 0.
    let d = deps.get("web").await.unwrap();
    assert_eq!(d.status.unwrap().available_replicas, Some(2));
}

/// The sorted ready addresses of an Endpoints object.
fn addresses(e: &k8s_openapi::api::core::v1::Endpoints) -> Vec<String> {
    let mut v: Vec<String> = e
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten().map(|a| a.ip.clone()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn blue_green_switch_moves_the_endpoints_at_once() {
    use k8s_openapi::api::core::v1::{Endpoints, Service};
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "bg").await;
    let _kubelet = kubelet(
        client.clone(),
        "bg",
        Kubelet {
            bind: false,
            ready_after: Duration::ZERO,
            linger: Duration::ZERO,
        },
    );
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "bg");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bg");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "bg");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "bg");
    for version in ["blue", "green"] {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": format!("shop-{version}")},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "shop", "version": version}},
                "template": {
                    "metadata": {"labels": {"app": "shop", "version": version}},
                    "spec": {"containers": [{"name": "c", "image": "v1"}]}
                }
            }
        }))
        .unwrap();
        deps.create(&PostParams::default(), &d).await.unwrap();
    }
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "shop"},
        "spec": {"selector": {"app": "shop", "version": "blue"}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();
    wait_complete(&deps, "shop-blue", "v1").await;
    wait_complete(&deps, "shop-green", "v1").await;
    let ips_of = |version: &'static str| {
        let pods = pods.clone();
        async move {
            let mut v: Vec<String> = pods
                .list(&ListParams::default().labels(&format!("version={version}")))
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|p| p.status?.pod_ip)
                .collect();
            v.sort();
            v
        }
    };
    let blue = ips_of("blue").await;
    let green = ips_of("green").await;
    assert_eq!((blue.len(), green.len()), (2, 2));
    let current = eventually(LIMIT, "endpoints of blue", || async {
        let e = eps.get("shop").await.ok()?;
        (addresses(&e) == blue).then_some(e)
    })
    .await;
    let rv = current.metadata.resource_version.clone().unwrap();
    let mut stream = eps
        .watch(
            &WatchParams::default()
                .fields("metadata.name=shop")
                .timeout(30),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    let started = tokio::time::Instant::now();
    svcs.patch(
        "shop",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"selector": {"app": "shop", "version": "green"}}})),
    )
    .await
    .unwrap();
    let took = loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("endpoints change in time")
            .expect("watch open")
            .unwrap();
        if let WatchEvent::Modified(e) = ev {
            let a = addresses(&e);
            assert!(
                a.iter().all(|ip| green.contains(ip) || blue.contains(ip)),
                "{a:?}"
            );
            if a == green {
                break started.elapsed();
            }
        }
    };
    println!("endpoints followed the selector switch in {took:?}");
    // Nothing resyncs the endpoints controller: only the Service's change can move them, so
    // this bounds how the change is followed (no polling, no delayed requeue), loosely enough
    // for a debug build on a loaded machine; `make bench` measures latency.
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn a_hash_collision_bumps_collision_count_and_picks_another_name() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "first").await;
    namespace(&client, "second").await;
    // The hash depends on the template only: learn it in one namespace...
    let first: Api<ReplicaSet> = Api::namespaced(client.clone(), "first");
    Api::<Deployment>::namespaced(client.clone(), "first")
        .create(
            &PostParams::default(),
            &deployment("web", 1, rolling(json!(1), json!(0)), "v1"),
        )
        .await
        .unwrap();
    let taken = eventually(LIMIT, "the first ReplicaSet", || async {
        sets_of(&first, "web")
            .await
            .first()
            .and_then(|r| r.metadata.name.clone())
    })
    .await;
    // ...and take that name in another with a foreign ReplicaSet.
    let second: Api<ReplicaSet> = Api::namespaced(client.clone(), "second");
    let foreign: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": taken, "labels": {"app": "other"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "other"}},
            "template": {
                "metadata": {"labels": {"app": "other"}},
                "spec": {"containers": [{"name": "c", "image": "other"}]}
            }
        }
    }))
    .unwrap();
    second
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "second");
    deps.create(
        &PostParams::default(),
        &deployment("web", 1, rolling(json!(1), json!(0)), "v1"),
    )
    .await
    .unwrap();
    // The Deployment is read after its ReplicaSet is seen: the collision count is written
    // before the ReplicaSet under the new name is created, so a read before could miss it.
    let d = eventually(LIMIT, "a ReplicaSet under another name", || async {
        let ours = sets_of(&second, "web").await;
        if ours.len() != 1 || ours[0].metadata.name.as_deref() == Some(taken.as_str()) {
            return None;
        }
        deps.get("web").await.ok()
    })
    .await;
    assert_eq!(d.status.unwrap().collision_count, Some(1));
    let untouched = second.get(&taken).await.unwrap();
    assert!(
        untouched.metadata.owner_references.is_none(),
        "the foreign set is left alone"
    );
}

#[tokio::test]
async fn orphan_replica_sets_are_adopted_and_unmatched_ones_released() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "adopt").await;
    let _kubelet = kubelet(
        client.clone(),
        "adopt",
        Kubelet {
            bind: false,
            ready_after: Duration::ZERO,
            linger: Duration::ZERO,
        },
    );
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "adopt");
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "adopt");
    // An orphan ReplicaSet with the Deployment's template (and labels the selector matches).
    let orphan: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "legacy", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "v1"}]}
            }
        }
    }))
    .unwrap();
    sets.create(&PostParams::default(), &orphan).await.unwrap();
    deps.create(
        &PostParams::default(),
        &deployment("web", 2, rolling(json!(1), json!(0)), "v1"),
    )
    .await
    .unwrap();
    let d = wait_complete(&deps, "web", "v1").await;
    let all = sets_of(&sets, "web").await;
    assert_eq!(
        all.len(),
        1,
        "the orphan is the new ReplicaSet: no second one"
    );
    let legacy = &all[0];
    assert_eq!(legacy.metadata.name.as_deref(), Some("legacy"));
    let owner = &legacy.metadata.owner_references.as_ref().expect("adopted")[0];
    assert_eq!(Some(&owner.uid), d.metadata.uid.as_ref());
    assert_eq!(rev(legacy), "1");

    // Relabelled out of the selector: released, and a new ReplicaSet takes over.
    sets.patch(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "retired"}}})),
    )
    .await
    .unwrap();
    eventually(LIMIT, "released and replaced", || async {
        let legacy = sets.get("legacy").await.ok()?;
        let free = legacy
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(|r| r.is_empty());
        let ours = sets_of(&sets, "web").await;
        (free && ours.len() == 1 && ours[0].metadata.name.as_deref() != Some("legacy"))
            .then_some(())
    })
    .await;
    wait_complete(&deps, "web", "v1").await;
}
