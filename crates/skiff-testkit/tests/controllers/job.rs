//! The Job controller (and the TTL-after-finished controller): sequential, parallel,
//! work-queue and Indexed completions, back-off and BackoffLimitExceeded, pod failure policy,
//! suspend and resume, activeDeadlineSeconds, ttlSecondsAfterFinished. The tests play the
//! kubelet: they finish pods by writing their status, so every step is deterministic.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

const T: Duration = Duration::from_secs(15);

fn job(name: &str, spec: serde_json::Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({
        "spec": {"restartPolicy": "Never",
                  "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 0"]}]}
    });
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// The Job's pods that are neither finished nor being deleted, by name.
async fn active(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    let mut v: Vec<Pod> = pods
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
        })
        .collect();
    v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    v
}

async fn wait_active(pods: &Api<Pod>, job: &str, n: usize) -> Vec<Pod> {
    eventually(T, &format!("{n} active pods of {job}"), || async {
        let a = active(pods, job).await;
        (a.len() == n).then_some(a)
    })
    .await
}

/// Plays the kubelet: the pod's container exits with `code`.
async fn finish(pods: &Api<Pod>, pod: &Pod, code: i32) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    let status = json!({"status": {"phase": phase, "containerStatuses": [{
        "name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": code, "reason": if code == 0 {"Completed"} else {"Error"},
                                  "startedAt": now, "finishedAt": now}}
    }]}});
    pods.patch_status(
        pod.metadata.name.as_deref().unwrap(),
        &PatchParams::default(),
        &Patch::Merge(status),
    )
    .await
    .expect("pod status");
}

async fn wait_condition(jobs: &Api<Job>, name: &str, type_: &str, limit: Duration) -> Job {
    eventually(limit, &format!("{name} {type_}"), || async {
        let j = jobs.get(name).await.ok()?;
        j.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
            .then_some(j)
    })
    .await
}

fn cond<'a>(j: &'a Job, type_: &str) -> &'a k8s_openapi::api::batch::v1::JobCondition {
    j.status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("condition {type_}"))
}

async fn event_reasons(client: &kube::Client, ns: &str, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn job_runs_sequential_completions_and_counts_each_pod_once() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "job-seq").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "job-seq");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "job-seq");
    let created = jobs
        .create(
            &PostParams::default(),
            &job("seq", json!({"completions": 3, "parallelism": 1})),
        )
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    for round in 0..3 {
        let a = wait_active(&pods, "seq", 1).await;
        let p = &a[0];
        let name = p.metadata.name.as_deref().unwrap();
        assert!(name.starts_with("seq-"), "{name}");
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid);
        assert_eq!(labels["controller-uid"], uid);
        assert_eq!(labels["job-name"], "seq");
        let fin = p.metadata.finalizers.as_ref().unwrap();
        assert!(fin.contains(&"batch.kubernetes.io/job-tracking".to_string()));
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
        finish(&pods, p, 0).await;
        let done = eventually(T, "succeeded count", || async {
            let j = jobs.get("seq").await.ok()?;
            let s = j.status?;
            (s.succeeded == Some(round + 1)).then_some(())
        });
        done.await;
    }
    let j = wait_condition(&jobs, "seq", "Complete", T).await;
    let st = j.status.as_ref().unwrap();
    assert_eq!(st.succeeded, Some(3));
    assert_eq!(st.failed.unwrap_or(0), 0);
    assert_eq!(st.active, Some(0));
    assert!(st.completion_time.is_some() && st.start_time.is_some());
    assert_eq!(cond(&j, "SuccessCriteriaMet").status, "True");
    let u = st.uncounted_terminated_pods.clone().unwrap_or_default();
    assert!(u.succeeded.unwrap_or_default().is_empty() && u.failed.unwrap_or_default().is_empty());
    // Every pod was released by the controller, and no extra pod was made.
    let all = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(all.len(), 3);
    for p in &all {
        assert!(p.metadata.finalizers.clone().unwrap_or_default().is_empty());
    }
    let reasons = eventually(T, "Completed event", || async {
        let r = event_reasons(&client, "job-seq", "seq").await;
        r.contains(&"Completed".to_string()).then_some(r)
    })
    .await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "SuccessfulCreate").count(),
        3
    );
}

#[tokio::test]
async fn job_runs_parallel_fixed_and_work_queue_completions() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "job-par").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "job-par");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "job-par");

    // Fixed completions: never more than parallelism, never more than still missing.
    jobs.create(
        &PostParams::default(),
        &job("fixed", json!({"completions": 5, "parallelism": 2})),
    )
    .await
    .unwrap();
    let mut done: i32 = 0;
    while done < 5 {
        let want = (5 - done).min(2) as usize;
        let a = wait_active(&pods, "fixed", want).await;
        finish(&pods, &a[0], 0).await;
        done += 1;
        eventually(T, "count", || async {
            let s = jobs.get("fixed").await.ok()?.status?;
            (s.succeeded == Some(done)).then_some(())
        })
        .await;
    }
    wait_condition(&jobs, "fixed", "Complete", T).await;

    // A work queue: parallelism pods; after the first success no new pods, and the Job
    // completes once the rest finished, whatever their result.
    jobs.create(
        &PostParams::default(),
        &job("queue", json!({"parallelism": 3})),
    )
    .await
    .unwrap();
    let a = wait_active(&pods, "queue", 3).await;
    finish(&pods, &a[0], 0).await;
    eventually(T, "first success counted", || async {
        let s = jobs.get("queue").await.ok()?.status?;
        (s.succeeded == Some(1)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(active(&pods, "queue").await.len(), 2, "no replacement");
    finish(&pods, &a[1], 0).await;
    finish(&pods, &a[2], 0).await;
    let j = wait_condition(&jobs, "queue", "Complete", T).await;
    assert_eq!(j.status.unwrap().succeeded, Some(3));
}

#[tokio::test]
async fn job_backs_off_after_failures_then_fails_with_backoff_limit_exceeded() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "job-fail").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "job-fail");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "job-fail");
    jobs.create(
        &PostParams::default(),
        &job("flaky", json!({"backoffLimit": 1})),
    )
    .await
    .unwrap();
    let a = wait_active(&pods, "flaky", 1).await;
    finish(&pods, &a[0], 1).await;
    let failed_at = Instant::now();
    eventually(T, "failure counted", || async {
        let s = jobs.get("flaky").await.ok()?.status?;
        (s.failed == Some(1)).then_some(())
    })
    .await;
    // The replacement waits out the 10 s back-off.
    let b = wait_active(&pods, "flaky", 1).await;
    let waited = failed_at.elapsed();
    assert!(
        waited >= Duration::from_secs(9),
        "replaced after {waited:?}"
    );
    assert_ne!(a[0].metadata.name, b[0].metadata.name);
    finish(&pods, &b[0], 1).await;
    let j = wait_condition(&jobs, "flaky", "Failed", T).await;
    let c = cond(&j, "Failed");
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        c.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert_eq!(
        cond(&j, "FailureTarget").reason.as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(j.status.as_ref().unwrap().failed, Some(2));
    assert!(j.status.as_ref().unwrap().completion_time.is_none());
    eventually(T, "BackoffLimitExceeded event", || async {
        event_reasons(&client, "job-fail", "flaky")
            .await
            .contains(&"BackoffLimitExceeded".to_string())
            .then_some(())
    })
    .await;

    // A FailJob rule of the pod failure policy fails the Job at the first match.
    let mut pj = job(
        "policy",
        json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}}
        ]}}),
    );
    pj.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .restart_policy = Some("Never".into());
    jobs.create(&PostParams::default(), &pj).await.unwrap();
    let a = wait_active(&pods, "policy", 1).await;
    finish(&pods, &a[0], 42).await;
    let j = wait_condition(&jobs, "policy", "Failed", T).await;
    let c = cond(&j, "Failed");
    assert_eq!(c.reason.as_deref(), Some("PodFailurePolicy"));
    let msg = c.message.clone().unwrap();
    assert!(
        msg.starts_with("Container c for pod job-fail/policy-")
            && msg.ends_with("failed with exit code 42 matching FailJob rule at index 0"),
        "{msg}"
    );
}

#[tokio::test]
async fn indexed_job_gives_each_index_a_pod_and_reports_completed_indexes() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "job-idx").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "job-idx");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "job-idx");
    jobs.create(
        &PostParams::default(),
        &job(
            "idx",
            json!({"completions": 4, "parallelism": 2, "completionMode": "Indexed"}),
        ),
    )
    .await
    .unwrap();
    let a = wait_active(&pods, "idx", 2).await;
    let mut seen = BTreeSet::new();
    for p in &a {
        let ix = p.metadata.annotations.as_ref().unwrap()
            ["batch.kubernetes.io/job-completion-index"]
            .clone();
        assert_eq!(
            p.metadata.labels.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"],
            ix
        );
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(format!("idx-{ix}").as_str()));
        assert!(p
            .metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with(&format!("idx-{ix}-")));
        let env = spec.containers[0].env.as_ref().unwrap();
        let e = env
            .iter()
            .find(|e| e.name == "JOB_COMPLETION_INDEX")
            .unwrap();
        assert_eq!(
            e.value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.labels['batch.kubernetes.io/job-completion-index']"
        );
        seen.insert(ix);
    }
    assert_eq!(seen, BTreeSet::from(["0".to_string(), "1".to_string()]));
    // Index 1 succeeds first.
    let by_index = |ix: &str| {
        a.iter()
            .find(|p| {
                p.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"]
                    == ix
            })
            .unwrap()
            .clone()
    };
    finish(&pods, &by_index("1"), 0).await;
    let j = eventually(T, "index 1 completed", || async {
        let j = jobs.get("idx").await.ok()?;
        (j.status.as_ref()?.completed_indexes.as_deref() == Some("1")).then_some(j)
    })
    .await;
    assert_eq!(j.status.unwrap().succeeded, Some(1));
    // Index 2 is started next (the lowest pending).
    let a2 = wait_active(&pods, "idx", 2).await;
    let indexes: BTreeSet<String> = a2
        .iter()
        .map(|p| {
            p.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"]
                .clone()
        })
        .collect();
    assert_eq!(indexes, BTreeSet::from(["0".to_string(), "2".to_string()]));
    for p in &a2 {
        finish(&pods, p, 0).await;
    }
    let a3 = wait_active(&pods, "idx", 1).await;
    assert_eq!(
        a3[0].metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"],
        "3"
    );
    let j = eventually(T, "indexes 0-2", || async {
        let j = jobs.get("idx").await.ok()?;
        (j.status.as_ref()?.completed_indexes.as_deref() == Some("0-2")).then_some(j)
    })
    .await;
    assert_eq!(j.status.unwrap().succeeded, Some(3));
    finish(&pods, &a3[0], 0).await;
    let j = wait_condition(&jobs, "idx", "Complete", T).await;
    let st = j.status.unwrap();
    assert_eq!(st.completed_indexes.as_deref(), Some("0-3"));
    assert_eq!(st.succeeded, Some(4));
}

#[tokio::test]
async fn job_suspend_resume_deadline_and_ttl() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "job-life").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "job-life");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "job-life");

    // Created suspended: no pods, no start time, Suspended=True.
    jobs.create(
        &PostParams::default(),
        &job(
            "sus",
            json!({"suspend": true, "parallelism": 2, "completions": 2}),
        ),
    )
    .await
    .unwrap();
    let j = wait_condition(&jobs, "sus", "Suspended", T).await;
    assert_eq!(
        cond(&j, "Suspended").reason.as_deref(),
        Some("JobSuspended")
    );
    assert!(j.status.as_ref().unwrap().start_time.is_none());
    assert!(active(&pods, "sus").await.is_empty());
    // Resumed: pods, a start time, Suspended=False with JobResumed.
    jobs.patch(
        "sus",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    wait_active(&pods, "sus", 2).await;
    let j = eventually(T, "resumed", || async {
        let j = jobs.get("sus").await.ok()?;
        let c = j
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Suspended")?
            .clone();
        (c.status == "False" && j.status.as_ref()?.start_time.is_some()).then_some(j)
    })
    .await;
    assert_eq!(cond(&j, "Suspended").reason.as_deref(), Some("JobResumed"));
    // Suspended again: its active pods are deleted, nothing is counted as failed.
    jobs.patch(
        "sus",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": true}})),
    )
    .await
    .unwrap();
    eventually(T, "pods deleted", || async {
        let all = pods
            .list(&ListParams::default().labels("job-name=sus"))
            .await
            .ok()?
            .items;
        all.is_empty().then_some(())
    })
    .await;
    let j = wait_condition(&jobs, "sus", "Suspended", T).await;
    assert_eq!(j.status.as_ref().unwrap().failed.unwrap_or(0), 0);
    assert_eq!(j.status.as_ref().unwrap().active, Some(0));

    // activeDeadlineSeconds: DeadlineExceeded, active pods deleted.
    jobs.create(
        &PostParams::default(),
        &job("late", json!({"activeDeadlineSeconds": 2})),
    )
    .await
    .unwrap();
    wait_active(&pods, "late", 1).await;
    let j = wait_condition(&jobs, "late", "Failed", T).await;
    let c = cond(&j, "Failed");
    assert_eq!(c.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        c.message.as_deref(),
        Some("Job was active longer than specified deadline")
    );
    assert!(active(&pods, "late").await.is_empty());

    // ttlSecondsAfterFinished: the finished Job is deleted, its pods with it.
    jobs.create(
        &PostParams::default(),
        &job("brief", json!({"ttlSecondsAfterFinished": 1})),
    )
    .await
    .unwrap();
    let a = wait_active(&pods, "brief", 1).await;
    finish(&pods, &a[0], 0).await;
    wait_condition(&jobs, "brief", "Complete", T).await;
    eventually(T, "job deleted after its TTL", || async {
        jobs.get_opt("brief").await.ok()?.is_none().then_some(())
    })
    .await;
}

/// Binds the namespace's unscheduled pods to the simulated nodes, round robin (what the
/// scheduler does; harmless beside it, a pod bound twice is refused).
fn play_scheduler(client: kube::Client, ns: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(client, ns);
        let mut n = 0usize;
        loop {
            if let Ok(list) = pods.list(&ListParams::default()).await {
                for p in list.items {
                    let unbound = p.spec.as_ref().is_some_and(|s| s.node_name.is_none());
                    if !unbound || p.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    let name = p.metadata.name.clone().unwrap();
                    let binding = json!({"apiVersion": "v1", "kind": "Binding",
                        "metadata": {"name": name},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": format!("fake-node-{}", n % 3)}});
                    n += 1;
                    let _ = pods
                        .create_subresource::<_, serde_json::Value>(
                            "binding",
                            &name,
                            &PostParams::default(),
                            &binding,
                        )
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

#[tokio::test]
async fn jobs_run_to_completion_on_simulated_nodes() {
    let server = TestServer::start_with(|o| o.fake_nodes.count = 3)
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "job-sim").await;
    let binder = play_scheduler(client.clone(), "job-sim");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "job-sim");
    jobs.create(
        &PostParams::default(),
        &job("sim", json!({"completions": 4, "parallelism": 2})),
    )
    .await
    .unwrap();
    // Scripted to fail: exit 3 on the node, no retries.
    let mut bad = job("sim-fail", json!({"backoffLimit": 0}));
    bad.spec.as_mut().unwrap().template.metadata = Some(
        serde_json::from_value(json!({"annotations": {"sim.skiff.dev/exit-code": "3", "sim.skiff.dev/run-seconds": "0.2"}}))
            .unwrap(),
    );
    jobs.create(&PostParams::default(), &bad).await.unwrap();
    let j = wait_condition(&jobs, "sim", "Complete", Duration::from_secs(30)).await;
    assert_eq!(j.status.as_ref().unwrap().succeeded, Some(4));
    let j = wait_condition(&jobs, "sim-fail", "Failed", Duration::from_secs(30)).await;
    assert_eq!(
        cond(&j, "Failed").reason.as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(j.status.as_ref().unwrap().failed, Some(1));
    binder.abort();
}

#[tokio::test]
async fn indexed_job_with_backoff_limit_per_index_fails_only_the_exhausted_index() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "job-pix").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "job-pix");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "job-pix");
    jobs.create(
        &PostParams::default(),
        &job(
            "pix",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed", "backoffLimitPerIndex": 1}),
        ),
    )
    .await
    .unwrap();
    let index_of = |p: &Pod| {
        p.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"].clone()
    };
    let a = wait_active(&pods, "pix", 3).await;
    for p in &a {
        assert_eq!(
            p.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-index-failure-count"],
            "0"
        );
        match index_of(p).as_str() {
            "1" => finish(&pods, p, 1).await,
            _ => finish(&pods, p, 0).await,
        }
    }
    // Index 1 gets one retry (after its back-off), counted in the annotation.
    let retry = eventually(Duration::from_secs(20), "index 1 retried", || async {
        active(&pods, "pix").await.into_iter().next()
    })
    .await;
    assert_eq!(index_of(&retry), "1");
    assert_eq!(
        retry.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-index-failure-count"],
        "1"
    );
    finish(&pods, &retry, 1).await;
    let j = wait_condition(&jobs, "pix", "Failed", T).await;
    let st = j.status.as_ref().unwrap();
    assert_eq!(cond(&j, "Failed").reason.as_deref(), Some("FailedIndexes"));
    assert_eq!(st.failed_indexes.as_deref(), Some("1"));
    assert_eq!(st.completed_indexes.as_deref(), Some("0,2"));
    assert_eq!(st.failed, Some(2));
}

#[tokio::test]
async fn job_with_a_manual_selector_adopts_matching_orphans() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "job-adopt").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "job-adopt");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "job-adopt");
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "batch"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    let mut j = job(
        "adopter",
        json!({"manualSelector": true, "selector": {"matchLabels": {"app": "batch"}}}),
    );
    j.spec.as_mut().unwrap().template.metadata =
        Some(serde_json::from_value(json!({"labels": {"app": "batch"}})).unwrap());
    let created = jobs.create(&PostParams::default(), &j).await.unwrap();
    let adopted = eventually(T, "orphan adopted", || async {
        let p = pods.get("orphan").await.ok()?;
        let r = p.metadata.owner_references.clone()?.into_iter().next()?;
        (r.controller == Some(true)).then_some(r)
    })
    .await;
    assert_eq!(adopted.kind, "Job");
    assert_eq!(Some(adopted.uid), created.metadata.uid);
    // The adopted pod is the one active pod: no other is made.
    let j = eventually(T, "active 1", || async {
        let j = jobs.get("adopter").await.ok()?;
        (j.status.as_ref()?.active == Some(1)).then_some(j)
    })
    .await;
    assert!(j.status.unwrap().start_time.is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}
