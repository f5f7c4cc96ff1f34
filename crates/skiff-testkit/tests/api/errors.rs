//! Failures come back as `Status` objects with upstream's codes and reasons: NotFound,
//! AlreadyExists, Conflict, Invalid (with field causes), Forbidden in a terminating namespace,
//! BadRequest for a body of the wrong kind, and the immutable fields of Deployments and Services.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{client, eventually, expect_status, from_json, namespace, raw};

const M: &str = "errors";

fn cm(name: &str) -> ConfigMap {
    from_json(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
}

#[tokio::test(flavor = "multi_thread")]
async fn not_found_already_exists_and_conflict() {
    let c = client(M).await;
    let ns = namespace(&c, "err-basic").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);

    let s = expect_status(api.get("nope").await, 404, "NotFound");
    assert_eq!(s.message, "configmaps \"nope\" not found");
    let d = s.details.unwrap();
    assert_eq!((d.name.as_str(), d.kind.as_str()), ("nope", "configmaps"));
    expect_status(
        api.delete("nope", &DeleteParams::default()).await,
        404,
        "NotFound",
    );
    expect_status(
        api.patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
        404,
        "NotFound",
    );

    let first = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let s = expect_status(
        api.create(&PostParams::default(), &cm("a")).await,
        409,
        "AlreadyExists",
    );
    assert_eq!(s.message, "configmaps \"a\" already exists");

    // a write with the read resourceVersion wins once; the second is stale
    let mut w1 = first.clone();
    w1.data = Some([("k".to_string(), "1".to_string())].into());
    api.replace("a", &PostParams::default(), &w1).await.unwrap();
    let mut w2 = first.clone();
    w2.data = Some([("k".to_string(), "2".to_string())].into());
    let s = expect_status(
        api.replace("a", &PostParams::default(), &w2).await,
        409,
        "Conflict",
    );
    assert!(
        s.message.contains("the object has been modified"),
        "{}",
        s.message
    );
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["k"], "1");

    // a merge patch carrying a stale resourceVersion conflicts too
    let stale = first.metadata.resource_version.clone().unwrap();
    let r = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": stale}, "data": {"k": "3"}})),
        )
        .await;
    expect_status(r, 409, "Conflict");

    // a name in the body that differs from the URL
    let r = api.replace("a", &PostParams::default(), &cm("b")).await;
    expect_status(r, 400, "BadRequest");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_objects_carry_field_causes() {
    let c = client(M).await;
    let ns = namespace(&c, "err-invalid").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let s = expect_status(
        api.create(&PostParams::default(), &cm("Not_A_Name")).await,
        422,
        "Invalid",
    );
    let causes = s.details.unwrap().causes;
    assert!(
        causes.iter().any(|c| c.field == "metadata.name"),
        "{causes:?}"
    );

    let bad_key: ConfigMap =
        from_json(json!({"metadata": {"name": "k"}, "data": {"bad key!": "v"}}));
    let s = expect_status(
        api.create(&PostParams::default(), &bad_key).await,
        422,
        "Invalid",
    );
    assert!(s
        .details
        .unwrap()
        .causes
        .iter()
        .any(|c| c.field.starts_with("data")));

    let deploys: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let d: Deployment = from_json(json!({
        "metadata": {"name": "d"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "other"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    }));
    let s = expect_status(
        deploys.create(&PostParams::default(), &d).await,
        422,
        "Invalid",
    );
    let fields: Vec<String> = s
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(fields.iter().any(|f| f == "spec.replicas"), "{fields:?}");
    assert!(
        fields.iter().any(|f| f == "spec.template.metadata.labels"),
        "{fields:?}"
    );

    // missing required container image
    let d: Deployment = from_json(json!({
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "a"}},
                 "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c"}]}}}
    }));
    let s = expect_status(
        deploys.create(&PostParams::default(), &d).await,
        422,
        "Invalid",
    );
    assert!(
        s.details
            .unwrap()
            .causes
            .iter()
            .any(|c| c.field == "spec.template.spec.containers[0].image"),
        "image cause"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_missing_and_terminating() {
    let c = client(M).await;
    let missing: Api<ConfigMap> = Api::namespaced(c.clone(), "err-no-such-ns");
    let s = expect_status(
        missing.create(&PostParams::default(), &cm("x")).await,
        404,
        "NotFound",
    );
    assert!(
        s.message
            .contains("namespaces \"err-no-such-ns\" not found"),
        "{}",
        s.message
    );

    // a finalizer on its content keeps the namespace Terminating
    let ns = namespace(&c, "err-terminating").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let held: ConfigMap =
        from_json(json!({"metadata": {"name": "held", "finalizers": ["skiff.test/hold"]}}));
    api.create(&PostParams::default(), &held).await.unwrap();
    let nss: Api<Namespace> = Api::all(c.clone());
    nss.delete(&ns, &DeleteParams::default()).await.unwrap();
    let phase = nss.get(&ns).await.unwrap().status.unwrap().phase;
    assert_eq!(phase.as_deref(), Some("Terminating"));
    let s = expect_status(
        api.create(&PostParams::default(), &cm("late")).await,
        403,
        "Forbidden",
    );
    assert!(
        s.message.contains("because it is being terminated"),
        "{}",
        s.message
    );

    // releasing the finalizer lets the namespace go
    eventually(10, "the held configmap to be marked for deletion", || {
        let api = api.clone();
        async move { api.get("held").await.ok()?.metadata.deletion_timestamp }
    })
    .await;
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(10, "the namespace to go", || {
        let nss = nss.clone();
        let ns = ns.clone();
        async move { nss.get(&ns).await.err() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_kind_or_api_version_in_body() {
    let c = client(M).await;
    let ns = namespace(&c, "err-kind").await;
    for body in [
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    ] {
        let r = raw(
            &c,
            "POST",
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &[("content-type", "application/json")],
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
        assert_eq!(
            r.status,
            400,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let s = r.json();
        assert_eq!(
            (s["kind"].as_str(), s["reason"].as_str()),
            (Some("Status"), Some("BadRequest"))
        );
    }
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    expect_status(api.get("x").await, 404, "NotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn immutable_fields() {
    let c = client(M).await;
    let ns = namespace(&c, "err-immutable").await;
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let d: Deployment = from_json(json!({
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "a"}},
                 "template": {"metadata": {"labels": {"app": "a", "tier": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }));
    deploys.create(&PostParams::default(), &d).await.unwrap();
    let r = deploys
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"selector": {"matchLabels": {"app": "a", "tier": "web"}}}}),
            ),
        )
        .await;
    let s = expect_status(r, 422, "Invalid");
    assert!(s
        .details
        .unwrap()
        .causes
        .iter()
        .any(|c| c.field == "spec.selector"));

    let svcs: Api<Service> = Api::namespaced(c.clone(), &ns);
    let svc: Service =
        from_json(json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}));
    let svc = svcs.create(&PostParams::default(), &svc).await.unwrap();
    let ip: std::net::Ipv4Addr = svc.spec.unwrap().cluster_ip.unwrap().parse().unwrap();
    let mut o = ip.octets();
    o[3] = o[3].wrapping_add(1);
    let other = std::net::Ipv4Addr::from(o).to_string();
    let r = svcs
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterIP": other, "clusterIPs": [other]}})),
        )
        .await;
    let s = expect_status(r, 422, "Invalid");
    assert!(s
        .details
        .unwrap()
        .causes
        .iter()
        .any(|c| c.field.starts_with("spec.clusterIP")));
    assert_eq!(
        svcs.get("s").await.unwrap().spec.unwrap().cluster_ip,
        Some(ip.to_string())
    );
}
