//! The ServiceAccount controller: every active namespace has a `default` ServiceAccount
//! (upstream's `pkg/controller/serviceaccount`), recreated if deleted.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_core::ApiError;
use skiff_runtime::cache::Notification;
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::{Client, Informer, Runtime, WorkQueue};

pub const DEFAULT: &str = "default";

struct Controller {
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
    client: Client,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller {
        namespaces: rt.cache.informer(),
        accounts: rt.cache.informer(),
        client: rt.client(crate::MANAGER),
    });
    let queue = WorkQueue::new();
    let workers = opts.workers.min(2);
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.namespaces.synced().await;
        ctl.accounts.synced().await;
        let mut ns_sub = ctl.namespaces.subscribe();
        let mut sa_sub = ctl.accounts.subscribe();
        let (c, q) = (ctl.clone(), queue.clone());
        rt2.spawn(async move {
            loop {
                tokio::select! {
                    n = ns_sub.recv() => match n {
                        Some(Notification::Changed(ch)) => q.add(ch.object().metadata.name.clone().unwrap_or_default()),
                        Some(Notification::Resync) => for ns in c.namespaces.list() { q.add(ns.metadata.name.clone().unwrap_or_default()) },
                        None => return,
                    },
                    n = sa_sub.recv() => match n {
                        Some(Notification::Changed(ch)) if ch.new.is_none() => {
                            q.add(ch.object().metadata.namespace.clone().unwrap_or_default())
                        }
                        Some(Notification::Resync) => for ns in c.namespaces.list() { q.add(ns.metadata.name.clone().unwrap_or_default()) },
                        Some(_) => {}
                        None => return,
                    },
                }
            }
        });
        for ns in ctl.namespaces.list() {
            queue.add(ns.metadata.name.clone().unwrap_or_default());
        }
        controller::run(ctl, queue, workers).await;
    });
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    async fn reconcile(&self, ns: &str) -> Result<Action, ApiError> {
        let Some(namespace) = self.namespaces.get(None, ns) else {
            return Ok(Action::Done);
        };
        let terminating = namespace.metadata.deletion_timestamp.is_some()
            || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if terminating || self.accounts.get(Some(ns), DEFAULT).is_some() {
            return Ok(Action::Done);
        }
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match self.client.create(&sa).await {
            Ok(_) => Ok(Action::Done),
            // Already there, or the namespace went away or started terminating meanwhile.
            Err(e) if matches!(e.code, 409 | 404 | 403) => Ok(Action::Done),
            Err(e) => Err(e),
        }
    }
}
