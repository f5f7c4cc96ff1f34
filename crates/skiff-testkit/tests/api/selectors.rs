//! Label selectors with every operator and the field selectors upstream supports per kind
//! (metadata.name/namespace everywhere, pods' spec.nodeName and status.phase, events'
//! involvedObject.*); an unsupported field is a 400.

use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{client, expect_status, from_json, namespace};

const M: &str = "selectors";

async fn names<K>(api: &Api<K>, lp: ListParams) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut v: Vec<String> = api
        .list(&lp)
        .await
        .unwrap_or_else(|e| panic!("list {lp:?}: {e:?}"))
        .items
        .iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn label_selector_operators() {
    let c = client(M).await;
    let ns = namespace(&c, "sel-labels").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    for (name, labels) in [
        ("a", json!({"env": "prod", "tier": "web"})),
        ("b", json!({"env": "dev", "tier": "web"})),
        ("c", json!({"env": "qa"})),
        ("d", json!({})),
    ] {
        let cm: ConfigMap = from_json(json!({"metadata": {"name": name, "labels": labels}}));
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let cases: &[(&str, &[&str])] = &[
        ("", &["a", "b", "c", "d"]),
        ("env=prod", &["a"]),
        ("env==prod", &["a"]),
        ("env!=prod", &["b", "c", "d"]),
        ("env in (prod,dev)", &["a", "b"]),
        ("env notin (prod,dev)", &["c", "d"]),
        ("tier", &["a", "b"]),
        ("!tier", &["c", "d"]),
        ("env=prod,tier=web", &["a"]),
        ("tier,env!=prod", &["b"]),
        ("env in (qa),!tier", &["c"]),
        ("env=none", &[]),
    ];
    for (sel, want) in cases {
        let got = names(&api, ListParams::default().labels(sel)).await;
        assert_eq!(got, *want, "labelSelector {sel:?}");
    }
    for bad in ["env in prod", "=x", "env=(", "a b"] {
        let r = api.list(&ListParams::default().labels(bad)).await;
        expect_status(r, 400, "BadRequest");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn field_selectors() {
    let c = client(M).await;
    let ns = namespace(&c, "sel-fields").await;
    let other = namespace(&c, "sel-fields-other").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), &ns);
    for (name, node) in [("p1", Some("n1")), ("p2", Some("n2")), ("p3", None)] {
        let mut spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        let p: Pod = from_json(json!({"metadata": {"name": name}, "spec": spec}));
        let p = pods.create(&PostParams::default(), &p).await.unwrap();
        assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    }
    let op: Api<Pod> = Api::namespaced(c.clone(), &other);
    let p: Pod = from_json(
        json!({"metadata": {"name": "p1"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
    );
    op.create(&PostParams::default(), &p).await.unwrap();
    pods.patch_status(
        "p2",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();

    let lp = |f: &str| ListParams::default().fields(f);
    assert_eq!(names(&pods, lp("metadata.name=p1")).await, ["p1"]);
    assert_eq!(names(&pods, lp("metadata.name!=p1")).await, ["p2", "p3"]);
    assert_eq!(names(&pods, lp("spec.nodeName=n1")).await, ["p1"]);
    assert_eq!(names(&pods, lp("spec.nodeName=")).await, ["p3"]);
    assert_eq!(names(&pods, lp("status.phase=Running")).await, ["p2"]);
    assert_eq!(
        names(&pods, lp("status.phase!=Running")).await,
        ["p1", "p3"]
    );
    assert_eq!(
        names(&pods, lp("status.phase=Pending,spec.nodeName=n1")).await,
        ["p1"]
    );

    let all: Api<Pod> = Api::all(c.clone());
    let got: Vec<(String, String)> = all
        .list(&lp("metadata.name=p1"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| (p.metadata.namespace.unwrap(), p.metadata.name.unwrap()))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    let got = all
        .list(&lp(&format!("metadata.namespace={other}")))
        .await
        .unwrap()
        .items;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].metadata.namespace.as_deref(), Some(other.as_str()));

    // events by involvedObject
    let events: Api<Event> = Api::namespaced(c.clone(), &ns);
    for (name, obj) in [("e1", "p1"), ("e2", "p2"), ("e3", "p1")] {
        let e: Event = from_json(json!({
            "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": obj, "namespace": ns},
            "reason": "Test", "message": "m", "type": "Normal"
        }));
        events.create(&PostParams::default(), &e).await.unwrap();
    }
    assert_eq!(
        names(&events, lp("involvedObject.name=p1")).await,
        ["e1", "e3"]
    );
    assert_eq!(
        names(
            &events,
            lp("involvedObject.kind=Pod,involvedObject.name=p2")
        )
        .await,
        ["e2"]
    );

    // unsupported fields
    for bad in ["spec.foo=bar", "status.podIP.x=1", "data.k=v"] {
        let s = expect_status(pods.list(&lp(bad)).await, 400, "BadRequest");
        assert!(s.message.contains("not supported"), "{bad}: {}", s.message);
    }
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    expect_status(cms.list(&lp("spec.nodeName=n1")).await, 400, "BadRequest");
}
