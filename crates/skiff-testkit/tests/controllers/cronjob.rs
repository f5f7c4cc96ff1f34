//! The CronJob controller on an accelerated clock (a minute passes every two seconds), so
//! `* * * * *` fires every two seconds: Jobs created with upstream's names and annotation,
//! status.active / lastScheduleTime / lastSuccessfulTime, history pruning, Forbid, Replace
//! and suspend. The tests finish the Jobs' pods themselves (they play the kubelet).

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

const T: Duration = Duration::from_secs(20);
/// Clock seconds per real second.
const RATE: u32 = 30;

async fn server() -> TestServer {
    TestServer::start_with(|o| {
        o.controllers.cronjob_clock = Some(skiff_runtime::Clock::accelerated(
            k8s_openapi::jiff::Timestamp::now(),
            RATE,
        ));
    })
    .await
    .unwrap()
}

fn cronjob(name: &str, extra: serde_json::Value) -> CronJob {
    let mut spec = json!({
        "schedule": "* * * * *",
        "jobTemplate": {"metadata": {"labels": {"from": name}}, "spec": {"template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "busybox", "command": ["date"]}]}}}}
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// The CronJob's Jobs (not being deleted), oldest name first.
async fn jobs_of(jobs: &Api<Job>, cj: &str) -> Vec<Job> {
    let mut v: Vec<Job> = jobs
        .list(&ListParams::default().labels(&format!("from={cj}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect();
    v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    v
}

/// Plays the kubelet: the Job's pod exits 0.
async fn complete(pods: &Api<Pod>, job: &str) {
    let pod = eventually(T, &format!("pod of {job}"), || async {
        pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
            .await
            .ok()?
            .items
            .into_iter()
            .next()
    })
    .await;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    pods.patch_status(
        pod.metadata.name.as_deref().unwrap(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded", "containerStatuses": [{
            "name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
        }]}})),
    )
    .await
    .unwrap();
}

async fn reasons(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

async fn wait_event(client: &kube::Client, ns: &str, name: &str, reason: &str) -> String {
    eventually(T, &format!("{reason} event"), || async {
        reasons(client, ns, name)
            .await
            .into_iter()
            .find(|(r, _)| r == reason)
            .map(|(_, m)| m)
    })
    .await
}

#[tokio::test]
async fn cronjob_fires_tracks_status_and_prunes_history() {
    let server = server().await;
    let client = server.client().await.unwrap();
    namespace(&client, "cj-allow").await;
    let cjs: Api<CronJob> = Api::namespaced(client.clone(), "cj-allow");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "cj-allow");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "cj-allow");
    let created = cjs
        .create(
            &PostParams::default(),
            &cronjob("tick", json!({"successfulJobsHistoryLimit": 1})),
        )
        .await
        .unwrap();
    let first = eventually(T, "first job", || async {
        jobs_of(&jobs, "tick").await.into_iter().next()
    })
    .await;
    let name = first.metadata.name.clone().unwrap();
    let minutes: i64 = name.strip_prefix("tick-").unwrap().parse().unwrap();
    let ann = first.metadata.annotations.clone().unwrap();
    let scheduled: k8s_openapi::jiff::Timestamp = ann
        ["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .parse()
        .unwrap();
    assert_eq!(
        scheduled.as_second(),
        minutes * 60,
        "name is minutes since epoch"
    );
    let owner = &first.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(owner.kind, "CronJob");
    assert_eq!(owner.uid, created.metadata.uid.clone().unwrap());
    let cj = eventually(T, "status.active", || async {
        let cj = cjs.get("tick").await.ok()?;
        let st = cj.status.clone()?;
        st.active
            .as_ref()?
            .iter()
            .any(|r| r.name.as_deref() == Some(name.as_str()))
            .then_some(cj)
    })
    .await;
    assert!(cj.status.unwrap().last_schedule_time.is_some());
    assert_eq!(
        wait_event(&client, "cj-allow", "tick", "SuccessfulCreate").await,
        format!("Created job {name}")
    );

    complete(&pods, &name).await;
    let msg = wait_event(&client, "cj-allow", "tick", "SawCompletedJob").await;
    assert_eq!(
        msg,
        format!("Saw completed job: {name}, condition: Complete")
    );
    eventually(T, "lastSuccessfulTime", || async {
        cjs.get("tick")
            .await
            .ok()?
            .status?
            .last_successful_time
            .map(|_| ())
    })
    .await;
    // Later runs complete too; with a history limit of 1, older successful Jobs go.
    let second = eventually(T, "a later job", || async {
        jobs_of(&jobs, "tick")
            .await
            .into_iter()
            .find(|j| j.metadata.name.as_deref() != Some(name.as_str()))
    })
    .await;
    let second_name = second.metadata.name.clone().unwrap();
    complete(&pods, &second_name).await;
    eventually(T, "first job pruned", || async {
        jobs.get_opt(&name).await.ok()?.is_none().then_some(())
    })
    .await;
    let deleted = (
        "SuccessfulDelete".to_string(),
        format!("Deleted job {name}"),
    );
    eventually(T, "SuccessfulDelete event", || async {
        reasons(&client, "cj-allow", "tick")
            .await
            .contains(&deleted)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn cronjob_forbid_skips_while_a_job_runs_and_replace_replaces_it() {
    let server = server().await;
    let client = server.client().await.unwrap();
    namespace(&client, "cj-policy").await;
    let cjs: Api<CronJob> = Api::namespaced(client.clone(), "cj-policy");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "cj-policy");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "cj-policy");

    cjs.create(
        &PostParams::default(),
        &cronjob("forbid", json!({"concurrencyPolicy": "Forbid"})),
    )
    .await
    .unwrap();
    cjs.create(
        &PostParams::default(),
        &cronjob("replace", json!({"concurrencyPolicy": "Replace"})),
    )
    .await
    .unwrap();
    cjs.create(
        &PostParams::default(),
        &cronjob("paused", json!({"suspend": true})),
    )
    .await
    .unwrap();

    let first = eventually(T, "first forbid job", || async {
        jobs_of(&jobs, "forbid").await.into_iter().next()
    })
    .await;
    let first_name = first.metadata.name.clone().unwrap();
    let msg = wait_event(&client, "cj-policy", "forbid", "JobAlreadyActive").await;
    assert_eq!(
        msg,
        "Not starting job because prior execution is running and concurrency policy is Forbid"
    );
    // Three more minutes pass on the clock: still the one Job.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(jobs_of(&jobs, "forbid").await.len(), 1);
    // Once it completes, the next run starts.
    complete(&pods, &first_name).await;
    eventually(T, "next forbid job", || async {
        jobs_of(&jobs, "forbid")
            .await
            .into_iter()
            .find(|j| j.metadata.name.as_deref() != Some(first_name.as_str()))
    })
    .await;

    // Replace: a new run deletes the running Job and starts another.
    let r1 = eventually(T, "first replace job", || async {
        jobs_of(&jobs, "replace").await.into_iter().next()
    })
    .await;
    let r1_name = r1.metadata.name.clone().unwrap();
    eventually(T, "replaced", || async {
        let gone = jobs
            .get_opt(&r1_name)
            .await
            .ok()?
            .is_none_or(|j| j.metadata.deletion_timestamp.is_some());
        let now = jobs_of(&jobs, "replace").await;
        (gone && now.len() == 1 && now[0].metadata.name.as_deref() != Some(r1_name.as_str()))
            .then_some(())
    })
    .await;
    let msg = wait_event(&client, "cj-policy", "replace", "SuccessfulDelete").await;
    assert!(msg.starts_with("Deleted job replace-"), "{msg}");
    let cj = cjs.get("replace").await.unwrap();
    let active = cj.status.unwrap().active.unwrap_or_default();
    assert_eq!(active.len(), 1, "only the new run is active");

    // Suspended: never fires.
    assert!(jobs_of(&jobs, "paused").await.is_empty());
}
