//! Endpoints and EndpointSlices follow pods and Service selectors: ready and not-ready
//! addresses, named target ports, a selector switch (blue/green), Service deletion.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{eventually, namespace};

/// Creates a pod bound to a node and plays its kubelet: Running with `ip`, Ready as given.
async fn running_pod(pods: &Api<Pod>, name: &str, color: &str, ip: &str, ready: bool) {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web", "color": color}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

fn addresses(ep: &Endpoints) -> (Vec<String>, Vec<String>) {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in ep.subsets.iter().flatten() {
        ready.extend(s.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

#[tokio::test]
async fn endpoints_follow_pods_readiness_and_selector_switches() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "ep").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ep");
    let services: Api<Service> = Api::namespaced(client.clone(), "ep");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "ep");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "ep");

    running_pod(&pods, "blue-1", "blue", "10.42.0.11", true).await;
    running_pod(&pods, "blue-2", "blue", "10.42.0.12", false).await;
    running_pod(&pods, "green-1", "green", "10.42.0.21", true).await;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web", "color": "blue"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();

    let ep = eventually(Duration::from_secs(10), "blue endpoints", || async {
        let ep = endpoints.get("web").await.ok()?;
        (addresses(&ep)
            == (
                vec!["10.42.0.11".to_string()],
                vec!["10.42.0.12".to_string()],
            ))
            .then_some(ep)
    })
    .await;
    let port = &ep.subsets.as_ref().unwrap()[0].ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("http"), 8080),
        "named targetPort resolved"
    );

    // The slice says the same, with conditions.
    eventually(
        Duration::from_secs(10),
        "an EndpointSlice with both blue pods",
        || async {
            let l = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .ok()?
                .items;
            let eps: Vec<_> = l.iter().flat_map(|s| s.endpoints.iter()).collect();
            let ready = eps.iter().find(|e| e.addresses[0] == "10.42.0.11")?;
            let not_ready = eps.iter().find(|e| e.addresses[0] == "10.42.0.12")?;
            (eps.len() == 2
                && ready.conditions.as_ref()?.ready == Some(true)
                && not_ready.conditions.as_ref()?.ready == Some(false)
                && l[0].metadata.owner_references.as_ref()?[0].kind == "Service")
                .then_some(())
        },
    )
    .await;

    // Readiness changes move an address.
    pods.patch_status("blue-2", &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"}]}})))
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "both blue ready", || async {
        let ep = endpoints.get("web").await.ok()?;
        (addresses(&ep).0.len() == 2).then_some(())
    })
    .await;

    // Blue/green: switch the selector.
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"color": "green"}}})),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "green endpoints", || async {
        let ep = endpoints.get("web").await.ok()?;
        (addresses(&ep) == (vec!["10.42.0.21".to_string()], vec![])).then_some(())
    })
    .await;

    // Deleting the Service removes its Endpoints and slices.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "endpoints and slices gone",
        || async {
            let ep_gone = endpoints.get("web").await.is_err();
            let slices_gone = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .ok()?
                .items
                .is_empty();
            (ep_gone && slices_gone).then_some(())
        },
    )
    .await;
}

/// A second slice of the controller's own for a Service (what planning from an informer copy
/// that lacks the controller's last create leads to) is put right: a slice's change brings
/// its Service back to the controller, which keeps one slice with the right endpoints.
#[tokio::test]
async fn a_duplicate_slice_of_the_controllers_own_is_merged_away() {
    let server = TestServer::start_with(|_| {}).await.unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "dup").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "dup");
    let services: Api<Service> = Api::namespaced(client.clone(), "dup");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "dup");
    running_pod(&pods, "web-1", "blue", "10.42.0.31", true).await;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let by_service = ListParams::default().labels("kubernetes.io/service-name=web");
    let endpoint_ips = |l: &[EndpointSlice]| {
        let mut ips: Vec<String> = l
            .iter()
            .flat_map(|s| s.endpoints.iter().flat_map(|e| e.addresses.clone()))
            .collect();
        ips.sort();
        ips
    };
    let first = eventually(Duration::from_secs(10), "the Service's slice", || async {
        let l = slices.list(&by_service).await.ok()?.items;
        (l.len() == 1 && endpoint_ips(&l) == ["10.42.0.31"]).then(|| l[0].clone())
    })
    .await;

    // A copy of it under another name, with a stale endpoint, as a racing create would leave.
    let mut dup = first.clone();
    dup.metadata = kube::api::ObjectMeta {
        name: Some("web-dup".into()),
        labels: first.metadata.labels.clone(),
        owner_references: first.metadata.owner_references.clone(),
        ..Default::default()
    };
    dup.endpoints[0].addresses = vec!["10.42.0.99".into()];
    slices.create(&PostParams::default(), &dup).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "one slice with the pod",
        || async {
            let l = slices.list(&by_service).await.ok()?.items;
            (l.len() == 1 && endpoint_ips(&l) == ["10.42.0.31"]).then_some(())
        },
    )
    .await;
}
