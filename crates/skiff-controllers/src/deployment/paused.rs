//! The Deployment controller (with the ReplicaSet controller) against an in-process API server
//! on tokio's paused clock: progress deadlines and minReadySeconds are checked to the second
//! without waiting for them.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
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
    crate::replicaset::start(&rt, &opts);
    (rt, dir)
}

fn deployment(spec: serde_json::Value) -> Deployment {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "web"}});
    spec["template"] = json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "v1"}]}});
    serde_json::from_value(
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}),
    )
    .unwrap()
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

fn progressing(rt: &Runtime) -> Option<(String, String)> {
    progressing_since(rt).map(|(status, reason, _)| (status, reason))
}

/// The Progressing condition's status, reason and lastUpdateTime (the last progress it saw).
fn progressing_since(rt: &Runtime) -> Option<(String, String, Option<jiff::Timestamp>)> {
    let d = rt
        .cache
        .informer::<Deployment>()
        .get(Some("default"), "web")?;
    let c = d
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Progressing")?
        .clone();
    Some((
        c.status,
        c.reason.unwrap_or_default(),
        c.last_update_time.map(|t| t.0),
    ))
}

/// (image, size) of every ReplicaSet, sorted.
fn sizes(rt: &Runtime) -> Vec<(String, i32)> {
    let mut v: Vec<(String, i32)> = rt
        .cache
        .informer::<ReplicaSet>()
        .list()
        .iter()
        .map(|r| {
            let spec = r.spec.as_ref().unwrap();
            let image = spec
                .template
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .containers[0]
                .image
                .clone()
                .unwrap();
            (image, spec.replicas.unwrap_or(0))
        })
        .collect();
    v.sort();
    v
}

/// Advances paused time in 100 ms steps until the ReplicaSets have `want` sizes, at most
/// `n` seconds.
async fn until(rt: &Runtime, n: u64, want: &[(String, i32)]) {
    for _ in 0..n * 10 {
        if sizes(rt) == want {
            return;
        }
        tick().await;
    }
    assert_eq!(sizes(rt), want, "not within {n} s");
}

/// Advances paused time by `n` seconds in 100 ms steps, letting the store's threads (which
/// tokio does not see) catch up in real time between steps.
async fn secs(n: u64) {
    for _ in 0..n * 10 {
        tick().await;
    }
}

async fn tick() {
    std::thread::sleep(Duration::from_millis(2));
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test(start_paused = true)]
async fn the_progress_deadline_passes_on_time_without_a_resync() {
    let (rt, _dir) = runtime().await;
    let client = rt.client("test");
    rt.cache.informer::<Deployment>().synced().await;
    // No kubelet: the pods never become ready.
    client
        .create(&deployment(
            json!({"replicas": 2, "progressDeadlineSeconds": 30}),
        ))
        .await
        .unwrap();
    secs(2).await;
    let (status, reason) = progressing(&rt).unwrap();
    assert_eq!(status, "True");
    assert!(
        reason == "NewReplicaSetCreated" || reason == "ReplicaSetUpdated",
        "{reason}"
    );
    // The deadline runs from the last progress recorded. Paused time runs about fifty times
    // faster than the store's threads, so under load a late status write can record progress
    // a few seconds after creation, and the flip's write can reach the cache seconds of paused
    // time after the controller decided it: time the flip by the controller's own stamp on the
    // condition, from the last progress the condition showed.
    let mut last_progress = None;
    let mut flipped = None;
    for _ in 0..600 {
        let (status, reason, updated) = progressing_since(&rt).unwrap();
        if status == "False" {
            assert_eq!(reason, "ProgressDeadlineExceeded");
            flipped = Some(updated.expect("the flipped condition has a lastUpdateTime"));
            break;
        }
        last_progress = updated;
        tick().await;
    }
    let flipped = flipped.expect("no ProgressDeadlineExceeded within a minute");
    let waited = flipped.duration_since(last_progress.expect("no progress recorded"));
    // Not before the deadline; at second precision (lastUpdateTime is to the second) and a
    // step of 100 ms, within three seconds after it.
    assert!(
        waited >= jiff::SignedDuration::from_secs(30),
        "flipped {waited:?} after the last progress"
    );
    assert!(
        waited <= jiff::SignedDuration::from_secs(33),
        "flipped {waited:?} after the last progress"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn min_ready_seconds_gates_every_rolling_step() {
    let (rt, _dir) = runtime().await;
    let client = rt.client("test");
    rt.cache.informer::<Deployment>().synced().await;
    kubelet(&rt);
    client
        .create(&deployment(json!({
            "replicas": 2,
            "minReadySeconds": 10,
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        })))
        .await
        .unwrap();
    secs(12).await;
    assert_eq!(sizes(&rt), [("v1".to_string(), 2)]);
    let d = rt
        .cache
        .informer::<Deployment>()
        .get(Some("default"), "web")
        .unwrap();
    assert_eq!(d.status.as_ref().unwrap().available_replicas, Some(2));

    client
        .merge_patch::<Deployment>(
            Some("default"),
            "web",
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}}),
        )
        .await
        .unwrap();
    // One surge pod, ready at once but not available for 10 s: the old set waits.
    secs(9).await;
    assert_eq!(sizes(&rt), [("v1".to_string(), 2), ("v2".to_string(), 1)]);
    // Once it is available (10 s after it was ready, give or take the fake kubelet's
    // polling and the store's real-time commits), one old pod goes and one new one comes.
    let step = [("v1".to_string(), 1), ("v2".to_string(), 2)];
    until(&rt, 6, &step).await;
    // The second new pod is not available for another 10 s: the last old one waits.
    secs(8).await;
    assert_eq!(sizes(&rt), step);
    until(&rt, 6, &[("v1".to_string(), 0), ("v2".to_string(), 2)]).await;
    // The status follows the last step.
    for _ in 0..20 {
        if progressing(&rt).is_some_and(|(_, r)| r == "NewReplicaSetAvailable") {
            break;
        }
        tick().await;
    }
    assert_eq!(
        progressing(&rt).unwrap(),
        ("True".to_string(), "NewReplicaSetAvailable".to_string())
    );
    rt.shutdown().await;
}
