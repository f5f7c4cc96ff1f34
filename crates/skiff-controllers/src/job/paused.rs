//! The Job controller against an in-process API server on tokio's paused clock, for what
//! takes real minutes: the back-off doubling between pod recreations and
//! activeDeadlineSeconds. The store works on threads in real time while tokio's clock may jump
//! to the next timer, so time advances in small steps with a moment of real time between them,
//! and assertions are lower bounds where extra time may pass.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use skiff_runtime::Runtime;

use crate::paused_clock;

async fn runtime() -> (Runtime, tempfile::TempDir) {
    paused_clock::runtime(super::start).await
}

/// Polls `check` every `every` of paused time, for at most 1,000 polls.
async fn poll<T>(what: &str, every: Duration, check: impl FnMut() -> Option<T>) -> T {
    paused_clock::poll(what, every, 1000, check).await
}

/// The Job's pods that are not finished, by name.
fn running(rt: &Runtime, job: &str) -> Vec<Pod> {
    rt.cache
        .informer::<Pod>()
        .list()
        .into_iter()
        .filter(|p| {
            p.metadata
                .name
                .as_deref()
                .unwrap_or("")
                .starts_with(&format!("{job}-"))
                && !crate::pods::is_terminal(p)
                && p.metadata.deletion_timestamp.is_none()
        })
        .map(|p| (*p).clone())
        .collect()
}

/// Plays the kubelet: the pod's container exits 1 at `at`.
async fn fail(rt: &Runtime, pod: &Pod, at: Timestamp) {
    let t = at.to_string();
    rt.client("test")
        .merge_patch_status::<Pod>(
            Some("default"),
            pod.metadata.name.as_deref().unwrap(),
            &json!({"status": {"phase": "Failed", "containerStatuses": [{
                "name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "startedAt": t, "finishedAt": t}}}]}}),
        )
        .await
        .unwrap();
}

fn job(name: &str, spec: serde_json::Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox"}]}});
    serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn failed_pods_are_replaced_after_a_doubling_back_off() {
    let (rt, _dir) = runtime().await;
    rt.client("test")
        .create(&job("retry", json!({"backoffLimit": 3})))
        .await
        .unwrap();
    let mut expected = [10, 20, 40].into_iter();
    let mut pod = poll("the first pod", Duration::from_millis(100), || {
        running(&rt, "retry").pop()
    })
    .await;
    for _ in 0..3 {
        let failed_at = rt.clock.now();
        fail(&rt, &pod, failed_at).await;
        let name = pod.metadata.name.clone();
        pod = poll("a replacement", Duration::from_millis(100), || {
            running(&rt, "retry")
                .into_iter()
                .find(|p| p.metadata.name != name)
        })
        .await;
        let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let waited = rt.clock.now().duration_since(failed_at);
        let want = SignedDuration::from_secs(expected.next().unwrap());
        assert!(
            waited >= want,
            "replaced after {waited:?}, want {want:?} ({created:?})"
        );
    }
    // The fourth failure exceeds backoffLimit 3.
    fail(&rt, &pod, rt.clock.now()).await;
    poll("Failed", Duration::from_millis(100), || {
        let j = rt.cache.informer::<Job>().get(Some("default"), "retry")?;
        let c = super::logic::condition(&j, "Failed")?.clone();
        (c.reason.as_deref() == Some("BackoffLimitExceeded")).then_some(())
    })
    .await;
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_active_deadline_counts_from_the_start_time() {
    let (rt, _dir) = runtime().await;
    rt.client("test")
        .create(&job("slow", json!({"activeDeadlineSeconds": 600})))
        .await
        .unwrap();
    poll("a pod", Duration::from_millis(100), || {
        running(&rt, "slow").pop()
    })
    .await;
    let start = poll("startTime", Duration::from_millis(100), || {
        let j = rt.cache.informer::<Job>().get(Some("default"), "slow")?;
        j.status.as_ref()?.start_time.as_ref().map(|t| t.0)
    })
    .await;
    let failed = poll("DeadlineExceeded", Duration::from_secs(1), || {
        let j = rt.cache.informer::<Job>().get(Some("default"), "slow")?;
        let c = super::logic::condition(&j, "FailureTarget")?;
        (c.reason.as_deref() == Some("DeadlineExceeded")).then(|| rt.clock.now())
    })
    .await;
    assert!(failed.duration_since(start) >= SignedDuration::from_secs(600));
    rt.shutdown().await;
}
