//! The Deployment controller (with the ReplicaSet controller) against an in-process API server
//! on tokio's paused clock: progress deadlines and minReadySeconds are checked to the second
//! without waiting for them.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use skiff_runtime::Runtime;

use crate::paused_clock::{self, kubelet, ready_since, step, until_clock, within};

async fn runtime() -> (Runtime, tempfile::TempDir) {
    paused_clock::runtime(|rt, opts| {
        super::start(rt, opts);
        crate::replicaset::start(rt, opts);
    })
    .await
}

/// How long a step the controllers take on their own may take in paused time, at most: long
/// enough for a loaded machine's late commits, and still a failure when a controller waits for
/// an event that never comes instead of its own requeue.
const BY: Duration = Duration::from_secs(60);

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
    let (status, reason) = within("a Progressing condition", BY, || progressing(&rt)).await;
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
        step(Duration::from_millis(100)).await;
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

/// The ready v2 pods' latest Ready stamp, when `n` of them are ready.
fn v2_ready(rt: &Runtime, n: usize) -> Option<jiff::Timestamp> {
    let since: Vec<jiff::Timestamp> = rt
        .cache
        .informer::<Pod>()
        .list()
        .iter()
        .filter(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("v2"))
        .filter_map(|p| ready_since(p))
        .collect();
    (since.len() == n).then(|| since.into_iter().max().unwrap())
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
    within("two available pods", BY, || {
        let d = rt
            .cache
            .informer::<Deployment>()
            .get(Some("default"), "web")?;
        (d.status.as_ref()?.available_replicas == Some(2)).then_some(())
    })
    .await;
    assert_eq!(sizes(&rt), [("v1".to_string(), 2)]);

    client
        .merge_patch::<Deployment>(
            Some("default"),
            "web",
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}}),
        )
        .await
        .unwrap();
    // Each step: a new pod is ready at once but not available for 10 s, and the old set waits
    // that long by the controllers' clock; then one old pod goes (and one new comes).
    let steps = [
        [("v1".to_string(), 2), ("v2".to_string(), 1)],
        [("v1".to_string(), 1), ("v2".to_string(), 2)],
        [("v1".to_string(), 0), ("v2".to_string(), 2)],
    ];
    for (n, w) in steps.windows(2).enumerate() {
        let ready = within("the new pod ready", BY, || {
            v2_ready(&rt, n + 1).filter(|_| sizes(&rt) == w[0])
        })
        .await;
        until_clock(&rt, ready + jiff::SignedDuration::from_secs(9)).await;
        assert_eq!(sizes(&rt), w[0], "not before minReadySeconds");
        within("the next step", BY, || (sizes(&rt) == w[1]).then_some(())).await;
    }
    // The status follows the last step.
    within("NewReplicaSetAvailable", BY, || {
        progressing(&rt).filter(|(_, r)| r == "NewReplicaSetAvailable")
    })
    .await;
    assert_eq!(progressing(&rt).unwrap().0, "True");
    rt.shutdown().await;
}
