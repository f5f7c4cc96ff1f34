//! The TTL-after-finished controller, after upstream's `pkg/controller/ttlafterfinished`: a
//! Job with `ttlSecondsAfterFinished` is deleted (background propagation, so its pods go
//! with it) that many seconds after its Complete or Failed condition was set. The Job is
//! read again from the store and the delete is preconditioned on its uid and
//! resourceVersion, so a Job changed meanwhile (a new TTL) is looked at again.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use skiff_apiserver::objects::DeleteOptions;
use skiff_core::ApiError;
use skiff_runtime::cache::{key_of, split_key, Notification};
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::{Client, Clock, Informer, Runtime, WorkQueue};

use super::logic::condition;

pub struct Controller {
    jobs: Informer<Job>,
    client: Client,
    clock: Clock,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller {
        jobs: rt.cache.informer::<Job>(),
        client: rt.client(crate::MANAGER),
        clock: rt.clock,
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.jobs.synced().await;
        let mut sub = ctl.jobs.subscribe();
        let (q, c) = (queue.clone(), ctl.clone());
        rt2.spawn(async move {
            while let Some(n) = sub.recv().await {
                match n {
                    Notification::Changed(ch) => {
                        if let Some(j) = &ch.new {
                            if expires_at(j).is_some() {
                                q.add(key_of(&j.metadata));
                            }
                        }
                    }
                    Notification::Resync => {
                        for j in c.jobs.list() {
                            q.add(key_of(&j.metadata));
                        }
                    }
                }
            }
        });
        for j in ctl.jobs.list() {
            queue.add(key_of(&j.metadata));
        }
        controller::run(ctl, queue, workers).await;
    });
}

/// When a finished Job with a TTL expires (`None`: no TTL, not finished, or being deleted).
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = condition(job, "Complete")
        .or_else(|| condition(job, "Failed"))?
        .last_transition_time
        .as_ref()?
        .0;
    finished
        .checked_add(SignedDuration::from_secs(i64::from(ttl)))
        .ok()
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        "ttl-after-finished-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(cached) = self.jobs.get_key(key) else {
            return Ok(Action::Done);
        };
        let Some(at) = expires_at(&cached) else {
            return Ok(Action::Done);
        };
        if self.clock.now() < at {
            return Ok(Action::RequeueAfter(
                self.clock.until(at) + Duration::from_millis(10),
            ));
        }
        let (ns, name) = split_key(key);
        let fresh = match self.client.get::<Job>(ns, name).await {
            Ok(j) => j,
            Err(e) if e.code == 404 => return Ok(Action::Done),
            Err(e) => return Err(e),
        };
        match expires_at(&fresh) {
            None => return Ok(Action::Done),
            Some(t) if self.clock.now() < t => {
                return Ok(Action::RequeueAfter(
                    self.clock.until(t) + Duration::from_millis(10),
                ))
            }
            Some(_) => {}
        }
        let opts = DeleteOptions {
            propagation_policy: Some("Background".into()),
            precondition_uid: fresh.metadata.uid.clone(),
            precondition_rv: fresh.metadata.resource_version.clone(),
            ..Default::default()
        };
        match self.client.delete::<Job>(ns, name, &opts).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if e.code == 404 => Ok(Action::Done),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_counts_from_the_finished_condition() {
        let j: Job = serde_json::from_value(json!({
            "metadata": {"name": "j"},
            "spec": {"ttlSecondsAfterFinished": 30, "template": {}},
            "status": {"conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"}
            ]}
        }))
        .unwrap();
        assert_eq!(
            expires_at(&j),
            Some("2026-01-01T00:00:31Z".parse().unwrap())
        );
        let mut running = j.clone();
        running.status = None;
        assert_eq!(expires_at(&running), None);
        let mut no_ttl = j;
        no_ttl.spec.as_mut().unwrap().ttl_seconds_after_finished = None;
        assert_eq!(expires_at(&no_ttl), None);
    }
}
