//! Subresources: status (spec and status written apart), scale (autoscaling/v1 Scale),
//! pods/binding, pods/eviction against PodDisruptionBudgets, and graceful pod deletion.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use crate::{client, eventually, expect_status, from_json, namespace};

const M: &str = "subresources";

fn deployment(name: &str) -> Deployment {
    from_json(json!({
        "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
}

fn pod(name: &str, labels: Value, node: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    from_json(json!({"metadata": {"name": name, "labels": labels}, "spec": spec}))
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_main_resource_are_written_apart() {
    let c = client(M).await;
    let ns = namespace(&c, "sub-status").await;
    let api: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    api.create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    let pp = PatchParams::default();

    // a status write that also tries to change spec and labels changes only status
    let d = api
        .patch_status(
            "d",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"sneaky": "1"}}, "spec": {"replicas": 7}, "status": {"replicas": 2, "readyReplicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(d.status.as_ref().unwrap().ready_replicas, Some(1));
    assert!(d
        .metadata
        .labels
        .as_ref()
        .is_none_or(|l| !l.contains_key("sneaky")));
    assert_eq!(d.metadata.generation, Some(1));
    // replace of status through the subresource
    let mut d2 = d.clone();
    d2.status.as_mut().unwrap().ready_replicas = Some(2);
    d2.spec.as_mut().unwrap().replicas = Some(9);
    let d = api
        .replace_status("d", &PostParams::default(), &d2)
        .await
        .unwrap();
    assert_eq!(
        (
            d.spec.as_ref().unwrap().replicas,
            d.status.as_ref().unwrap().ready_replicas
        ),
        (Some(2), Some(2))
    );

    // a main write that tries to change status changes only spec
    let d = api
        .patch(
            "d",
            &pp,
            &Patch::Merge(
                json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 0, "replicas": 99}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(d.status.as_ref().unwrap().ready_replicas, Some(2));
    assert_eq!(d.status.as_ref().unwrap().replicas, Some(2));
    // GET status returns the whole object
    let got = api.get_status("d").await.unwrap();
    assert_eq!(got.status.unwrap().ready_replicas, Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_subresource() {
    let c = client(M).await;
    let ns = namespace(&c, "sub-scale").await;
    let api: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let s = api.get_scale("web").await.unwrap();
    assert_eq!(s.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(
        s.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );
    assert_eq!(s.metadata.name.as_deref(), Some("web"));
    let raw = crate::raw(
        &c,
        "GET",
        &format!("/apis/apps/v1/namespaces/{ns}/deployments/web/scale"),
        &[],
        vec![],
    )
    .await;
    let v = raw.json();
    assert_eq!(
        (v["apiVersion"].as_str(), v["kind"].as_str()),
        (Some("autoscaling/v1"), Some("Scale"))
    );

    let s = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(5));
    let d = api.get("web").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(5));
    assert_eq!(d.metadata.generation, Some(2), "a scale is a spec change");

    let r = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await;
    let st = expect_status(r, 422, "Invalid");
    assert!(st
        .details
        .unwrap()
        .causes
        .iter()
        .any(|c| c.field == "spec.replicas"));
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(5)
    );
    expect_status(api.get_scale("missing").await, 404, "NotFound");
}

/// The node a pod is bound to.
async fn node_of(pods: &Api<Pod>, name: &str) -> Option<String> {
    pods.get(name).await.unwrap().spec.unwrap().node_name
}

#[tokio::test(flavor = "multi_thread")]
async fn binding_assigns_a_node_once() {
    let c = client(M).await;
    let ns = namespace(&c, "sub-binding").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), &ns);
    pods.create(&PostParams::default(), &pod("p", json!({}), None))
        .await
        .unwrap();
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}});
    let r: Value = pods
        .create_subresource("binding", "p", &PostParams::default(), &binding)
        .await
        .unwrap();
    assert_eq!(r["status"], "Success", "{r}");
    let p = pods.get("p").await.unwrap();
    assert_eq!(p.spec.unwrap().node_name.as_deref(), Some("node-1"));
    let conds = p.status.unwrap().conditions.unwrap_or_default();
    let sched = conds
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .expect("PodScheduled condition");
    assert_eq!(sched.status, "True");

    let again = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-2"}});
    let r = pods
        .create_subresource::<_, Value>("binding", "p", &PostParams::default(), &again)
        .await;
    expect_status(r, 409, "Conflict");
    assert_eq!(node_of(&pods, "p").await.as_deref(), Some("node-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binding_with_another_pods_uid_is_refused() {
    let c = client(M).await;
    let ns = namespace(&c, "sub-binding-uid").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), &ns);
    let created = pods
        .create(&PostParams::default(), &pod("p", json!({}), None))
        .await
        .unwrap();
    let uid = created.metadata.uid.unwrap();
    let stale = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "uid": "0b4c5a4e-0000-4000-8000-000000000000"}, "target": {"kind": "Node", "name": "node-1"}});
    let st = expect_status(
        pods.create_subresource::<_, Value>("binding", "p", &PostParams::default(), &stale)
            .await,
        409,
        "Conflict",
    );
    assert_eq!(
        st.message,
        format!("Operation cannot be fulfilled on pods \"p\": Precondition failed: UID in precondition: 0b4c5a4e-0000-4000-8000-000000000000, UID in object meta: {uid}")
    );
    assert_eq!(
        node_of(&pods, "p").await,
        None,
        "a refused binding assigns nothing"
    );
    let current = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "uid": uid}, "target": {"kind": "Node", "name": "node-1"}});
    pods.create_subresource::<_, Value>("binding", "p", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(node_of(&pods, "p").await.as_deref(), Some("node-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn eviction_respects_disruption_budgets() {
    let c = crate::client_without_retries(M).await;
    let ns = namespace(&c, "sub-evict").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.clone(), &ns);
    pods.create(
        &PostParams::default(),
        &pod("p", json!({"app": "db"}), None),
    )
    .await
    .unwrap();
    let pdb: PodDisruptionBudget = from_json(json!({
        "metadata": {"name": "db"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}
    }));
    let pdb = pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    let generation = pdb.metadata.generation.unwrap();
    let set_allowed = |n: i32| {
        let pdbs = pdbs.clone();
        async move {
            pdbs.patch_status(
                "db",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {
                    "observedGeneration": generation, "disruptionsAllowed": n,
                    "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1
                }})),
            )
            .await
            .unwrap()
        }
    };
    // Pending pods ignore budgets upstream (canIgnorePDB); a Running one does not
    pods.patch_status(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    set_allowed(0).await;
    let r = pods.evict("p", &EvictParams::default()).await;
    let s = expect_status(r, 429, "TooManyRequests");
    assert!(s.message.contains("disruption budget"), "{}", s.message);
    let d = s.details.expect("details");
    assert!(
        d.causes.iter().any(|c| c.reason == "DisruptionBudget"),
        "{d:?}"
    );
    assert!(
        pods.get("p").await.is_ok(),
        "a blocked eviction leaves the pod"
    );

    set_allowed(1).await;
    let s = pods.evict("p", &EvictParams::default()).await.unwrap();
    assert!(s.is_success() || s.code == 201, "{s:?}");
    expect_status(pods.get("p").await, 404, "NotFound");
    let left = pdbs
        .get("db")
        .await
        .unwrap()
        .status
        .unwrap()
        .disruptions_allowed;
    assert_eq!(left, 0, "the eviction consumed the budget");

    // a pod no budget covers is evicted freely, and so is a Pending one a budget covers;
    // a missing one is 404
    pods.create(
        &PostParams::default(),
        &pod("free", json!({"app": "other"}), None),
    )
    .await
    .unwrap();
    pods.patch_status(
        "free",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &pod("pending", json!({"app": "db"}), None),
    )
    .await
    .unwrap();
    pods.evict("pending", &EvictParams::default())
        .await
        .unwrap();
    expect_status(pods.get("pending").await, 404, "NotFound");
    pods.evict("free", &EvictParams::default()).await.unwrap();
    expect_status(pods.get("free").await, 404, "NotFound");
    expect_status(
        pods.evict("nope", &EvictParams::default()).await,
        404,
        "NotFound",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_deletion_of_bound_pods() {
    let c = client(M).await;
    let ns = namespace(&c, "sub-graceful").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), &ns);
    pods.create(&PostParams::default(), &pod("unbound", json!({}), None))
        .await
        .unwrap();
    pods.delete("unbound", &DeleteParams::default())
        .await
        .unwrap();
    expect_status(pods.get("unbound").await, 404, "NotFound");

    pods.create(
        &PostParams::default(),
        &pod("bound", json!({}), Some("node-1")),
    )
    .await
    .unwrap();
    let r = pods
        .delete("bound", &DeleteParams::default())
        .await
        .unwrap();
    let left = r.left().expect("the pod comes back, marked for deletion");
    assert!(left.metadata.deletion_timestamp.is_some());
    let p = pods.get("bound").await.unwrap();
    assert!(p.metadata.deletion_timestamp.is_some());
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(30));

    // a shorter grace period may follow; zero removes it at once
    pods.delete("bound", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually(5, "the pod to be gone", || {
        let pods = pods.clone();
        async move { pods.get("bound").await.err() }
    })
    .await;
    expect_status(pods.get("bound").await, 404, "NotFound");
}
