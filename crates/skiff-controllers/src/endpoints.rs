//! Endpoints and EndpointSlices of Services with selectors (upstream's endpoints and
//! endpointslice controllers, run as one loop per Service).
//!
//! Which pods count (upstream's `ShouldPodBeInEndpoints`): pods with an IP, not finished, and
//! not being deleted unless `publishNotReadyAddresses`. Each Service port's `targetPort` is
//! resolved per pod (a name looks up the container port of that name; a pod without it is left
//! out of that port). Endpoints group addresses by their port set into subsets, ready ones in
//! `addresses` and the rest in `notReadyAddresses` (all ready with
//! `publishNotReadyAddresses`); a pod whose `hostname` is set and whose `subdomain` names the
//! Service gets that hostname. EndpointSlices (built in [`crate::endpointslice`]) carry the
//! same pods with ready/serving/terminating conditions, node names and zones. Services without
//! a selector are left alone: their Endpoints belong to the user.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Node, ObjectReference, Pod, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_core::ApiError;
use skiff_runtime::cache::{key, key_of, split_key};
use skiff_runtime::controller::{self, Action, Reconciler};
use skiff_runtime::{selector, Client, Informer, Runtime, WorkQueue};

use crate::endpointslice;
use crate::pods;

/// The label upstream puts on the Endpoints of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Whether `pod` belongs in the endpoints of a Service with this setting.
pub fn should_include(pod: &Pod, publish_not_ready: bool) -> bool {
    let has_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty());
    if !has_ip || pods::is_terminal(pod) {
        return false;
    }
    publish_not_ready || pod.metadata.deletion_timestamp.is_none()
}

/// The pod's port a Service port targets: a number as is, a name looked up among the pod's
/// container ports (same protocol); `None` when the pod has no port of that name.
pub fn resolve_target_port(
    pod: &Pod,
    target: Option<&IntOrString>,
    port: i32,
    protocol: &str,
) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec.as_ref()?.containers.iter().find_map(|c| {
                c.ports.iter().flatten().find_map(|p| {
                    let proto = p.protocol.as_deref().unwrap_or("TCP");
                    (p.name.as_deref() == Some(name.as_str()) && proto == protocol)
                        .then_some(p.container_port)
                })
            })
        }
    }
}

/// The selector of a Service, when it has a non-empty one.
pub fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The pod's hostname in this Service's DNS (set when the pod's subdomain is the Service).
pub fn hostname_for(pod: &Pod, svc_name: &str) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == Some(svc_name)).then(|| hostname.to_string())
}

/// The Endpoints subsets of `svc` over `pods` (already filtered to the selector), packed as
/// upstream's `RepackSubsets`: addresses with the same ports share a subset; subsets, their
/// addresses and ports are sorted.
pub fn subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses.unwrap_or(false);
    let svc_name = svc.metadata.name.as_deref().unwrap_or("");
    let ports = spec.ports.unwrap_or_default();
    // port set → (ready addresses, not-ready addresses), keyed by IP for a stable order.
    type Addrs = BTreeMap<String, EndpointAddress>;
    type Ports = Vec<(String, i32, String, Option<String>)>;
    let mut groups: BTreeMap<Ports, (Addrs, Addrs)> = BTreeMap::new();
    for pod in pods {
        if !should_include(pod, publish) {
            continue;
        }
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let addr = EndpointAddress {
            ip: ip.clone(),
            hostname: hostname_for(pod, svc_name),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_ref(pod)),
        };
        let mut set = Vec::new();
        for p in &ports {
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            if let Some(n) = resolve_target_port(pod, p.target_port.as_ref(), p.port, &proto) {
                set.push((
                    p.name.clone().unwrap_or_default(),
                    n,
                    proto,
                    p.app_protocol.clone(),
                ));
            }
        }
        if set.is_empty() && !ports.is_empty() {
            continue;
        }
        set.sort();
        let entry = groups.entry(set).or_default();
        if publish || pods::is_ready(pod) {
            entry.0.insert(ip, addr);
        } else {
            entry.1.insert(ip, addr);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: (!ready.is_empty()).then(|| ready.into_values().collect()),
            not_ready_addresses: (!not_ready.is_empty()).then(|| not_ready.into_values().collect()),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .into_iter()
                    .map(|(name, port, protocol, app_protocol)| EndpointPort {
                        name: (!name.is_empty()).then_some(name),
                        port,
                        protocol: Some(protocol),
                        app_protocol,
                    })
                    .collect()
            }),
        })
        .collect()
}

/// The labels of a Service's Endpoints: the Service's, plus the headless marker.
fn endpoints_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    let headless = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
    if headless {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

struct Controller {
    services: Informer<Service>,
    pods: Informer<Pod>,
    endpoints: Informer<Endpoints>,
    slices: Informer<EndpointSlice>,
    nodes: Informer<Node>,
    client: Client,
}

pub fn start(rt: &Runtime, opts: &crate::Options) {
    let ctl = Arc::new(Controller {
        services: rt.cache.informer(),
        pods: rt.cache.informer(),
        endpoints: rt.cache.informer(),
        slices: rt.cache.informer(),
        nodes: rt.cache.informer(),
        client: rt.client(crate::MANAGER),
    });
    let queue = WorkQueue::new();
    let workers = opts.workers;
    let rt2 = rt.clone();
    rt.spawn(async move {
        ctl.services.synced().await;
        ctl.pods.synced().await;
        ctl.endpoints.synced().await;
        ctl.slices.synced().await;
        ctl.nodes.synced().await;
        let resync = |c: Arc<Controller>, q: WorkQueue| move || c.enqueue_all(&q);
        let q = queue.clone();
        ctl.services.for_each_change(
            &rt2.tasks,
            move |ch| q.add(key_of(&ch.object().metadata)),
            resync(ctl.clone(), queue.clone()),
        );
        let (c, q) = (ctl.clone(), queue.clone());
        ctl.pods.for_each_change(
            &rt2.tasks,
            move |ch| {
                for p in [&ch.old, &ch.new].into_iter().flatten() {
                    c.enqueue_for_pod(p, &q);
                }
            },
            resync(ctl.clone(), queue.clone()),
        );
        // A slice of ours changed, appeared or went: its Service is looked at again, as
        // upstream's controller does. Slices are planned from the informer's copy, which may
        // not have this controller's last write yet: a reconcile in between plans from the
        // stale copy (and may create a second slice), and the event of that write brings the
        // one that puts it right.
        let q = queue.clone();
        ctl.slices.for_each_change(
            &rt2.tasks,
            move |ch| {
                if let Some(key) = slice_service_key(ch.object()) {
                    q.add(key);
                }
            },
            resync(ctl.clone(), queue.clone()),
        );
        // Someone else changed or deleted an Endpoints we manage: put it back.
        let q = queue.clone();
        ctl.endpoints.for_each_change(
            &rt2.tasks,
            move |ch| q.add(key_of(&ch.object().metadata)),
            resync(ctl.clone(), queue.clone()),
        );
        ctl.enqueue_all(&queue);
        controller::run(ctl, queue, workers).await;
    });
}

/// Whether this controller manages slice `s` (others' slices are left alone).
fn managed_here(s: &EndpointSlice) -> bool {
    s.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(endpointslice::MANAGED_BY_LABEL))
        .map(String::as_str)
        == Some(endpointslice::MANAGED_BY)
}

/// The work queue key of the Service a slice managed by this controller belongs to.
fn slice_service_key(s: &EndpointSlice) -> Option<String> {
    if !managed_here(s) {
        return None;
    }
    let name = s
        .metadata
        .labels
        .as_ref()?
        .get(endpointslice::SERVICE_NAME_LABEL)?;
    Some(key(s.metadata.namespace.as_deref(), name))
}

impl Controller {
    fn enqueue_all(&self, q: &WorkQueue) {
        for s in self.services.list() {
            q.add(key_of(&s.metadata));
        }
    }

    fn enqueue_for_pod(&self, pod: &Pod, q: &WorkQueue) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        for s in self.services.list_namespace(ns) {
            if service_selector(&s)
                .is_some_and(|sel| selector::matches_map(sel, pod.metadata.labels.as_ref()))
            {
                q.add(key_of(&s.metadata));
            }
        }
    }

    async fn sync_endpoints(
        &self,
        svc: &Service,
        subsets: Vec<EndpointSubset>,
    ) -> Result<(), ApiError> {
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let labels = endpoints_labels(svc);
        let subsets = (!subsets.is_empty()).then_some(subsets);
        match self.endpoints.get(Some(&ns), &name) {
            Some(cur) => {
                if cur.subsets == subsets
                    && cur.metadata.labels.clone().unwrap_or_default() == labels
                {
                    return Ok(());
                }
                let mut next = (*cur).clone();
                next.subsets = subsets;
                next.metadata.labels = Some(labels);
                match self.client.update(&next).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.code == 404 => Err(ApiError::conflict(
                        skiff_runtime::cache::resource_of::<Endpoints>(),
                        &name,
                        "deleted meanwhile",
                    )),
                    Err(e) => Err(e),
                }
            }
            None => {
                let ep = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(name),
                        namespace: Some(ns),
                        labels: Some(labels),
                        ..Default::default()
                    },
                    subsets,
                };
                match self.client.create(&ep).await {
                    Ok(_) => Ok(()),
                    // Namespace going away: nothing to publish.
                    Err(e) if e.code == 403 || e.code == 404 => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn sync_slices(&self, svc: &Service, pods: &[Arc<Pod>]) -> Result<(), ApiError> {
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let uid = svc.metadata.uid.clone().unwrap_or_default();
        let zone_of = |node: &str| {
            self.nodes.get(None, node).and_then(|n| {
                n.metadata
                    .labels
                    .as_ref()?
                    .get("topology.kubernetes.io/zone")
                    .cloned()
            })
        };
        let desired = endpointslice::desired(svc, pods, &zone_of);
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .owned_by(&uid)
            .into_iter()
            .filter(|s| managed_here(s))
            .collect();
        let plan = endpointslice::plan(&existing, desired);
        for s in plan.update {
            match self.client.update(&s).await {
                Ok(_) | Err(ApiError { code: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for mut s in plan.create {
            s.metadata.namespace = Some(ns.clone());
            s.metadata.owner_references = Some(vec![pods::controller_ref(svc)]);
            match self.client.create(&s).await {
                Ok(_) => {}
                Err(e) if e.code == 403 || e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        for s in plan.delete {
            let name = s.metadata.name.as_deref().unwrap_or("");
            match self
                .client
                .delete_uid::<EndpointSlice>(
                    Some(&ns),
                    name,
                    s.metadata.uid.as_deref().unwrap_or(""),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for Controller {
    fn name(&self) -> &'static str {
        "endpoint-controller"
    }

    async fn reconcile(&self, k: &str) -> Result<Action, ApiError> {
        let (ns, name) = split_key(k);
        let Some(svc) = self.services.get(ns, name) else {
            // The Service is gone: so is the Endpoints we made (slices go by owner reference).
            if let Some(ep) = self.endpoints.get(ns, name) {
                let managed = ep
                    .metadata
                    .labels
                    .as_ref()
                    .is_none_or(|l| !l.contains_key("endpointslice.kubernetes.io/skip-mirror"));
                if managed {
                    let uid = ep.metadata.uid.clone().unwrap_or_default();
                    match self.client.delete_uid::<Endpoints>(ns, name, &uid).await {
                        Ok(_) => {}
                        Err(e) if e.code == 404 || e.code == 409 => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            return Ok(Action::Done);
        };
        let Some(sel) = service_selector(&svc) else {
            return Ok(Action::Done);
        };
        if svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            return Ok(Action::Done);
        }
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns.unwrap_or(""))
            .into_iter()
            .filter(|p| selector::matches_map(sel, p.metadata.labels.as_ref()))
            .collect();
        self.sync_endpoints(&svc, subsets(&svc, &pods)).await?;
        self.sync_slices(&svc, &pods).await?;
        Ok(Action::Done)
    }
}

/// The key of a Service's Endpoints (the same as the Service's).
pub fn endpoints_key(svc: &Service) -> String {
    key(
        svc.metadata.namespace.as_deref(),
        svc.metadata.name.as_deref().unwrap_or(""),
    )
}

/// Ports of a subset as a set, for tests and comparisons.
pub fn port_set(s: &EndpointSubset) -> BTreeSet<(Option<String>, i32)> {
    s.ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone(), p.port))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn pod(name: &str, ip: &str, ready: bool, extra: serde_json::Value) -> Arc<Pod> {
        let mut v = json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        });
        json_patch::merge(&mut v, &extra);
        Arc::new(serde_json::from_value(v).unwrap())
    }

    pub(crate) fn svc(extra: serde_json::Value) -> Service {
        let mut v = json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}
            ]}
        });
        json_patch::merge(&mut v, &extra);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ready_and_not_ready_addresses_with_named_ports_resolved_per_pod() {
        let pods = vec![
            pod("a", "10.42.0.2", true, json!({})),
            pod("b", "10.42.0.3", false, json!({})),
            // No container port named http: only the numeric port applies to it.
            pod(
                "c",
                "10.42.0.4",
                true,
                json!({"spec": {"containers": [{"name": "c", "image": "x", "ports": null}]}}),
            ),
            pod("no-ip", "", true, json!({})),
            pod(
                "done",
                "10.42.0.5",
                true,
                json!({"status": {"phase": "Succeeded"}}),
            ),
            pod(
                "going",
                "10.42.0.6",
                true,
                json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            ),
        ];
        let s = subsets(&svc(json!({})), &pods);
        assert_eq!(s.len(), 2);
        let full = s
            .iter()
            .find(|x| x.ports.as_ref().unwrap().len() == 2)
            .unwrap();
        let ips = |a: &Option<Vec<EndpointAddress>>| {
            a.iter().flatten().map(|x| x.ip.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ips(&full.addresses), ["10.42.0.2"]);
        assert_eq!(ips(&full.not_ready_addresses), ["10.42.0.3"]);
        assert!(full
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .any(|p| p.port == 8080 && p.name.as_deref() == Some("http")));
        let partial = s
            .iter()
            .find(|x| x.ports.as_ref().unwrap().len() == 1)
            .unwrap();
        assert_eq!(ips(&partial.addresses), ["10.42.0.4"]);
        assert_eq!(
            full.addresses.as_ref().unwrap()[0]
                .target_ref
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            full.addresses.as_ref().unwrap()[0].node_name.as_deref(),
            Some("n1")
        );
    }

    #[test]
    fn publish_not_ready_addresses_puts_every_pod_in_addresses() {
        let pods = vec![
            pod("b", "10.42.0.3", false, json!({})),
            pod(
                "going",
                "10.42.0.6",
                true,
                json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            ),
        ];
        let s = subsets(
            &svc(json!({"spec": {"publishNotReadyAddresses": true}})),
            &pods,
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].addresses.as_ref().unwrap().len(), 2);
        assert!(s[0].not_ready_addresses.is_none());
    }

    #[test]
    fn hostname_only_for_pods_whose_subdomain_is_the_service() {
        let p = pod(
            "a",
            "10.42.0.2",
            true,
            json!({"spec": {"hostname": "web-0", "subdomain": "web"}}),
        );
        let q = pod(
            "b",
            "10.42.0.3",
            true,
            json!({"spec": {"hostname": "web-1", "subdomain": "other"}}),
        );
        let s = subsets(&svc(json!({"spec": {"clusterIP": "None"}})), &[p, q]);
        let addrs = s[0].addresses.as_ref().unwrap();
        assert_eq!(addrs[0].hostname.as_deref(), Some("web-0"));
        assert_eq!(addrs[1].hostname, None);
        assert!(
            endpoints_labels(&svc(json!({"spec": {"clusterIP": "None"}})))
                .contains_key(HEADLESS_LABEL)
        );
        assert_eq!(endpoints_labels(&svc(json!({})))["team"], "a");
    }

    #[test]
    fn numeric_string_target_ports_and_defaults() {
        let p = pod("a", "10.42.0.2", true, json!({}));
        assert_eq!(resolve_target_port(&p, None, 80, "TCP"), Some(80));
        assert_eq!(
            resolve_target_port(&p, Some(&IntOrString::String("8081".into())), 80, "TCP"),
            Some(8081)
        );
        assert_eq!(
            resolve_target_port(&p, Some(&IntOrString::String("http".into())), 80, "UDP"),
            None
        );
    }
}
