//! The CronJob controller, after upstream's `pkg/controller/cronjob` (the v2 controller of
//! Kubernetes 1.32).
//!
//! For each CronJob: reconcile `status.active` with the Jobs it controls (finished ones leave
//! it with SawCompletedJob, vanished ones with MissingJob, lastSuccessfulTime follows completed
//! Jobs); then, unless suspended, find the most recent unmet fire time of the schedule in the
//! CronJob's time zone (within startingDeadlineSeconds; TooManyMissedTimes past 100 missed),
//! apply the concurrency policy (Forbid skips with JobAlreadyActive, Replace deletes the
//! active Jobs first) and create the Job `<cronjob>-<minutes since epoch>` with the
//! scheduled-timestamp annotation; prune finished Jobs beyond the history limits; look again
//! at the next fire time. Decisions are in [`logic`].

pub mod logic;
#[cfg(test)]
mod paused;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use skiff_apiserver::objects::DeleteOptions;
use skiff_core::ApiError;
use skiff_runtime::cache::{key, key_of, split_key, Notification};
use skiff_runtime::client::revision_of;
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::events::Recorder;
use skiff_runtime::{Client, Clock, Informer, Runtime, WorkQueue};

use crate::pods::controller_of;
use logic::*;

/// Upstream's controller name (event source).
pub const COMPONENT: &str = "cronjob-controller";

pub struct Controller {
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
    client: Client,
    recorder: Recorder,
    clock: Clock,
}

/// Starts the controller; its clock is `opts.cronjob_clock` when set (tests), else the
/// runtime's.
pub fn start(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller {
        cronjobs: rt.cache.informer::<CronJob>(),
        jobs: rt.cache.informer::<Job>(),
        client: rt.client(crate::MANAGER),
        recorder: rt.recorder(COMPONENT),
        clock: opts.cronjob_clock.unwrap_or(rt.clock),
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.cronjobs.synced().await;
        ctl.jobs.synced().await;
        let mut cj_sub = ctl.cronjobs.subscribe();
        let (q, c) = (queue.clone(), ctl.clone());
        rt2.spawn(async move {
            while let Some(n) = cj_sub.recv().await {
                match n {
                    Notification::Changed(ch) => q.add(key_of(&ch.object().metadata)),
                    Notification::Resync => {
                        for cj in c.cronjobs.list() {
                            q.add(key_of(&cj.metadata));
                        }
                    }
                }
            }
        });
        let mut job_sub = ctl.jobs.subscribe();
        let (q, c) = (queue.clone(), ctl.clone());
        rt2.spawn(async move {
            while let Some(n) = job_sub.recv().await {
                match n {
                    Notification::Changed(ch) => {
                        for j in [&ch.old, &ch.new].into_iter().flatten() {
                            if let Some(r) =
                                controller_of(&j.metadata).filter(|r| r.kind == "CronJob")
                            {
                                q.add(key(j.metadata.namespace.as_deref(), &r.name));
                            }
                        }
                    }
                    Notification::Resync => {
                        for cj in c.cronjobs.list() {
                            q.add(key_of(&cj.metadata));
                        }
                    }
                }
            }
        });
        for cj in ctl.cronjobs.list() {
            queue.add(key_of(&cj.metadata));
        }
        controller::run(ctl, queue, workers).await;
    });
}

fn background() -> DeleteOptions {
    DeleteOptions {
        propagation_policy: Some("Background".into()),
        ..Default::default()
    }
}

impl Controller {
    /// Deletes a Job of `cj` in the background; returns whether it is gone or going.
    async fn delete_job(&self, cj: &CronJob, ns: Option<&str>, name: &str) -> bool {
        match self.client.delete::<Job>(ns, name, &background()).await {
            Ok(_) => {
                self.recorder
                    .normal(cj, "SuccessfulDelete", format!("Deleted job {name}"));
                true
            }
            Err(e) if e.code == 404 => true,
            Err(e) => {
                self.recorder
                    .warning(cj, "FailedDelete", format!("Deleted job: {}", e.message));
                false
            }
        }
    }

    async fn sync(&self, cached: Arc<CronJob>) -> Result<Action, ApiError> {
        let mut cj = (*cached).clone();
        let ns = cj.metadata.namespace.clone();
        let ns = ns.as_deref();
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let now = self.clock.now();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .owned_by(&uid)
            .into_iter()
            .filter(|j| controller_of(&j.metadata).is_some_and(|r| r.kind == "CronJob"))
            .collect();
        let status = cj.status.get_or_insert_with(CronJobStatus::default);
        let mut active = status.active.take().unwrap_or_default();
        let mut last_success = status.last_successful_time.clone();
        let mut changed = false;

        // 1. status.active against the Jobs that exist.
        for j in &jobs {
            let found = active.iter().any(|r| r.uid == j.metadata.uid);
            let finished = finished_type(j);
            if !found && finished.is_none() {
                self.recorder.warning(
                    &cj,
                    "UnexpectedJob",
                    format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        j.metadata.name.as_deref().unwrap_or("")
                    ),
                );
            } else if found {
                if let Some(f) = finished {
                    active.retain(|r| r.uid != j.metadata.uid);
                    self.recorder.normal(
                        &cj,
                        "SawCompletedJob",
                        format!(
                            "Saw completed job: {}, condition: {f}",
                            j.metadata.name.as_deref().unwrap_or("")
                        ),
                    );
                    changed = true;
                }
            }
            if finished == Some("Complete") {
                if let Some(t) = j.status.as_ref().and_then(|s| s.completion_time.clone()) {
                    if last_success.as_ref().is_none_or(|l| t.0 > l.0) {
                        last_success = Some(t);
                        changed = true;
                    }
                }
            }
        }
        let mut kept = Vec::new();
        for r in active {
            if jobs.iter().any(|j| j.metadata.uid == r.uid) {
                kept.push(r);
                continue;
            }
            let name = r.name.clone().unwrap_or_default();
            match self.client.get::<Job>(ns, &name).await {
                Ok(j) if j.metadata.uid == r.uid => kept.push(r),
                Err(e) if e.code != 404 => return Err(e),
                _ => {
                    self.recorder.normal(
                        &cj,
                        "MissingJob",
                        format!("Active job went missing: {name}"),
                    );
                    changed = true;
                }
            }
        }
        let mut active = kept;

        // 2. Time to run?
        let mut requeue = None;
        let mut last_schedule = cj
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.clone());
        let runnable = cj.metadata.deletion_timestamp.is_none()
            && cj.spec.as_ref().and_then(|s| s.suspend) != Some(true);
        if runnable {
            let text = cj.spec.as_ref().map(|s| s.schedule.as_str()).unwrap_or("");
            if text.contains("TZ") {
                // Stored before validation refused it; its TZ= wins over timeZone.
                self.recorder.warning(
                    &cj,
                    "UnsupportedSchedule",
                    format!("CRON_TZ or TZ used in schedule {text:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"),
                );
            }
            match schedule(&cj) {
                Err(e) => self.recorder.warning(&cj, e.reason, e.message),
                Ok(sched) => {
                    let mut view = cj.clone();
                    view.status.as_mut().expect("status").active = Some(active.clone());
                    match time_to_run(&view, &sched, now) {
                        Err(e) => self.recorder.warning(&cj, e.reason, e.message),
                        Ok(None) => {}
                        Ok(Some((scheduled, missed))) => {
                            if missed > MAX_MISSED_REPORTED {
                                self.recorder.warning(
                                    &cj,
                                    "TooManyMissedTimes",
                                    format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
                                );
                            }
                            let name =
                                job_name(cj.metadata.name.as_deref().unwrap_or(""), scheduled);
                            let done_already = active
                                .iter()
                                .any(|r| r.name.as_deref() == Some(name.as_str()))
                                || last_schedule.as_ref().is_some_and(|t| t.0 == scheduled);
                            if too_late(&cj, scheduled, now) {
                                self.recorder.warning(
                                    &cj,
                                    "MissSchedule",
                                    format!(
                                        "Missed scheduled time to start a job: {}",
                                        rfc1123z(scheduled)
                                    ),
                                );
                            } else if !done_already {
                                let go = match concurrency(&cj, active.len()) {
                                    Concurrency::Skip => {
                                        self.recorder.normal(
                                            &cj,
                                            "JobAlreadyActive",
                                            "Not starting job because prior execution is running and concurrency policy is Forbid",
                                        );
                                        false
                                    }
                                    Concurrency::ReplaceThenStart => {
                                        let mut all_gone = true;
                                        for r in active.clone() {
                                            let n = r.name.clone().unwrap_or_default();
                                            if self.delete_job(&cj, ns, &n).await {
                                                active.retain(|x| x.uid != r.uid);
                                                changed = true;
                                            } else {
                                                all_gone = false;
                                            }
                                        }
                                        all_gone
                                    }
                                    Concurrency::Start => true,
                                };
                                if go {
                                    let job = job_for(&cj, scheduled, sched.time_zone());
                                    match self.client.create(&job).await {
                                        Ok(created) => {
                                            self.recorder.normal(
                                                &cj,
                                                "SuccessfulCreate",
                                                format!("Created job {name}"),
                                            );
                                            self.jobs
                                                .wait_for_revision_timeout(
                                                    revision_of(&created),
                                                    Duration::from_secs(5),
                                                )
                                                .await;
                                            active.push(reference(&created));
                                            last_schedule = Some(
                                                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                                                    scheduled,
                                                ),
                                            );
                                            changed = true;
                                        }
                                        Err(e) if e.code == 409 => {
                                            // Made before a crash, or by someone else: adopt
                                            // our own unfinished Job, leave others alone.
                                            if let Ok(existing) =
                                                self.client.get::<Job>(ns, &name).await
                                            {
                                                let ours = controller_of(&existing.metadata)
                                                    .is_some_and(|r| r.uid == uid);
                                                if ours {
                                                    if finished_type(&existing).is_none()
                                                        && !active
                                                            .iter()
                                                            .any(|r| r.uid == existing.metadata.uid)
                                                    {
                                                        active.push(reference(&existing));
                                                    }
                                                    last_schedule = Some(
                                                        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                                                            scheduled,
                                                        ),
                                                    );
                                                    changed = true;
                                                }
                                            }
                                        }
                                        Err(e) => {
                                            self.recorder.warning(
                                                &cj,
                                                "FailedCreate",
                                                format!("Error creating job: {}", e.message),
                                            );
                                            requeue = Some(Err(e));
                                        }
                                    }
                                }
                            }
                        }
                    }
                    if requeue.is_none() {
                        let mut view = cj.clone();
                        view.status.as_mut().expect("status").last_schedule_time =
                            last_schedule.clone();
                        requeue = requeue_after(&view, &sched, now)
                            .and_then(|d| now.checked_add(d).ok())
                            .map(|at| Ok(self.clock.until(at)));
                    }
                }
            }
        }

        // 3. History limits.
        if cj.metadata.deletion_timestamp.is_none() {
            for j in beyond_history(&cj, &jobs) {
                let name = j.metadata.name.clone().unwrap_or_default();
                if self.delete_job(&cj, ns, &name).await {
                    active.retain(|r| r.uid != j.metadata.uid);
                }
            }
        }

        // 4. Status.
        let old = cached.status.clone().unwrap_or_default();
        let new_active = (!active.is_empty()).then_some(active);
        if changed
            || old.active != new_active
            || old.last_schedule_time != last_schedule
            || old.last_successful_time != last_success
        {
            let st = cj.status.as_mut().expect("status");
            st.active = new_active;
            st.last_schedule_time = last_schedule;
            st.last_successful_time = last_success;
            let stored = self.client.update_status(&cj).await?;
            self.cronjobs
                .wait_for_revision_timeout(revision_of(&stored), Duration::from_secs(5))
                .await;
        }
        match requeue {
            Some(Err(e)) => Err(e),
            Some(Ok(d)) => Ok(Action::RequeueAfter(d)),
            None => Ok(Action::Done),
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let (_, _) = split_key(key);
        let Some(cj) = self.cronjobs.get_key(key) else {
            return Ok(Action::Done);
        };
        match self.sync(cj).await {
            Err(e) if e.code == 404 => Ok(Action::Done),
            r => r,
        }
    }
}
