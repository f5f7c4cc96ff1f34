//! The CronJob controller against an in-process API server on tokio's paused clock: hours
//! pass in seconds. The store works on threads in real time while tokio's clock may jump to
//! the next timer, so time is advanced in small steps with a moment of real time between
//! them, and the assertions hold whatever extra time passes (no exact minute counts).

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Event;
use serde_json::json;
use skiff_runtime::{Client, Runtime};

use crate::paused_clock::{self, step, within};

async fn runtime() -> (Runtime, tempfile::TempDir) {
    paused_clock::runtime(super::start).await
}

fn cronjob(name: &str, spec: serde_json::Value) -> CronJob {
    let mut spec = spec;
    spec["jobTemplate"] = json!({"spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
    )
    .unwrap()
}

fn jobs_of(rt: &Runtime, cj: &str) -> Vec<String> {
    let mut v: Vec<String> = rt
        .cache
        .informer::<Job>()
        .list()
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .filter_map(|j| j.metadata.name.clone())
        .filter(|n| n.starts_with(&format!("{cj}-")))
        .collect();
    v.sort();
    v
}

fn events(rt: &Runtime, cj: &str, reason: &str) -> Vec<String> {
    rt.cache
        .informer::<Event>()
        .list()
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(cj))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.message.clone())
        .collect()
}

/// Plays the Job controller: marks the Job Complete.
async fn complete(client: &Client, name: &str) {
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
    client
        .modify_status::<Job>(Some("default"), name, |j| {
            let st = j.status.get_or_insert_with(Default::default);
            st.start_time = Some(now.clone());
            st.completion_time = Some(now.clone());
            st.succeeded = Some(1);
            st.conditions = Some(vec![serde_json::from_value(json!({
                "type": "Complete", "status": "True", "lastTransitionTime": now
            }))
            .unwrap()]);
            true
        })
        .await
        .unwrap();
}

async fn minutes(n: u64) {
    for _ in 0..n * 12 {
        step(Duration::from_secs(5)).await;
    }
}

/// Polls `check` every 100 ms of (paused) time, for at most a minute.
async fn eventually<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    within(what, Duration::from_secs(60), check).await
}

#[tokio::test(start_paused = true)]
async fn forbid_waits_for_the_running_job_and_replace_replaces_it() {
    let (rt, _dir) = runtime().await;
    let client = rt.client("test");
    rt.cache.informer::<Event>().synced().await;
    client
        .create(&cronjob(
            "f",
            json!({"schedule": "* * * * *", "concurrencyPolicy": "Forbid"}),
        ))
        .await
        .unwrap();
    client
        .create(&cronjob(
            "r",
            json!({"schedule": "* * * * *", "concurrencyPolicy": "Replace"}),
        ))
        .await
        .unwrap();
    let f = eventually("a Forbid job", || {
        let v = jobs_of(&rt, "f");
        (!v.is_empty()).then_some(v)
    })
    .await;
    let first_r = eventually("a Replace job", || {
        let v = jobs_of(&rt, "r");
        (!v.is_empty()).then_some(v)
    })
    .await;
    minutes(3).await;
    // Forbid: still the one Job, and the skips were reported.
    assert_eq!(jobs_of(&rt, "f"), f);
    eventually("JobAlreadyActive", || {
        events(&rt, "f", "JobAlreadyActive").first().cloned()
    })
    .await;
    // Replace: newer Jobs took the place of the first, one at a time.
    eventually("a replacement", || {
        let r = jobs_of(&rt, "r");
        (r.len() == 1 && r != first_r).then_some(())
    })
    .await;
    let deleted = format!("Deleted job {}", first_r[0]);
    eventually("SuccessfulDelete", || {
        events(&rt, "r", "SuccessfulDelete")
            .contains(&deleted)
            .then_some(())
    })
    .await;
    // The Forbid Job completes: another starts, and status follows.
    complete(&client, &f[0]).await;
    eventually("the next Forbid job", || {
        (jobs_of(&rt, "f").len() == 2).then_some(())
    })
    .await;
    // (SawCompletedJob is checked by the integration test: on a paused clock it shares its
    // name `<object>.<nanoseconds>` with the SuccessfulCreate of the same instant, and the
    // recorder drops the second.)
    let st = eventually("lastSuccessfulTime", || {
        let cj = rt.cache.informer::<CronJob>().get(Some("default"), "f")?;
        let st = cj.status.clone()?;
        st.last_successful_time.is_some().then_some(st)
    })
    .await;
    assert_eq!(st.active.unwrap().len(), 1);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn missed_schedules_run_once_and_respect_the_starting_deadline() {
    let (rt, _dir) = runtime().await;
    let client = rt.client("test");
    rt.cache.informer::<Event>().synced().await;
    client
        .create(&cronjob(
            "late",
            json!({"schedule": "* * * * *", "suspend": true}),
        ))
        .await
        .unwrap();
    client
        .create(&cronjob(
            "strict",
            json!({"schedule": "*/30 * * * *", "suspend": true, "startingDeadlineSeconds": 10}),
        ))
        .await
        .unwrap();
    // Two hours pass while suspended: nothing runs.
    minutes(120).await;
    assert!(jobs_of(&rt, "late").is_empty());
    let resumed = rt.clock.now();
    for name in ["late", "strict"] {
        client
            .merge_patch::<CronJob>(Some("default"), name, &json!({"spec": {"suspend": false}}))
            .await
            .unwrap();
    }
    // 120 missed times or more: one run (the most recent) and a warning.
    eventually("a late job", || {
        (!jobs_of(&rt, "late").is_empty()).then_some(())
    })
    .await;
    let w = eventually("TooManyMissedTimes", || {
        events(&rt, "late", "TooManyMissedTimes").first().cloned()
    })
    .await;
    let n: i64 = w
        .strip_prefix("too many missed start times: ")
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(n >= 120, "{w}");
    // With a 10 s starting deadline, the half hours that passed are not run late: every Job
    // is for a fire time after the resume (less the deadline).
    minutes(31).await;
    let strict = eventually("a strict job", || {
        let v = jobs_of(&rt, "strict");
        (!v.is_empty()).then_some(v)
    })
    .await;
    for name in strict {
        let minute: i64 = name.strip_prefix("strict-").unwrap().parse().unwrap();
        assert!(minute * 60 >= resumed.as_second() - 10, "{name} ran late");
    }
    rt.shutdown().await;
}
