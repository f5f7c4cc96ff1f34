//! Discovery (legacy and aggregated v2), /version, and Table output with upstream's columns.

use kube::discovery::{Discovery, Scope};
use serde_json::{json, Value};

use crate::{client, namespace, raw};

const M: &str = "discovery";

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

async fn get(c: &kube::Client, path: &str, accept: &str) -> crate::Raw {
    let r = raw(c, "GET", path, &[("accept", accept)], vec![]).await;
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r
}

fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {}", list["groupVersion"]))
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_discovery_documents() {
    let c = client(M).await;
    let api = get(&c, "/api", "application/json").await.json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));

    let apis = get(&c, "/apis", "application/json").await;
    assert!(apis.content_type().starts_with("application/json"));
    let apis = apis.json();
    assert_eq!(apis["kind"], "APIGroupList");
    let groups: Vec<&str> = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "batch",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
        "events.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
    ] {
        assert!(groups.contains(&g), "{g} in {groups:?}");
    }

    let v1 = get(&c, "/api/v1", "application/json").await.json();
    assert_eq!(
        (v1["kind"].as_str(), v1["groupVersion"].as_str()),
        (Some("APIResourceList"), Some("v1"))
    );
    let pods = resource(&v1, "pods");
    assert_eq!(
        (pods["kind"].as_str(), pods["namespaced"].as_bool()),
        (Some("Pod"), Some(true))
    );
    assert!(pods["shortNames"]
        .as_array()
        .unwrap()
        .contains(&json!("po")));
    let eviction = resource(&v1, "pods/eviction");
    assert_eq!(
        (
            eviction["group"].as_str(),
            eviction["version"].as_str(),
            eviction["kind"].as_str()
        ),
        (Some("policy"), Some("v1"), Some("Eviction"))
    );
    assert_eq!(resource(&v1, "namespaces")["namespaced"], false);
    assert!(resource(&v1, "pods/status")["verbs"]
        .as_array()
        .unwrap()
        .contains(&json!("patch")));

    let apps = get(&c, "/apis/apps/v1", "application/json").await.json();
    assert_eq!(apps["groupVersion"], "apps/v1");
    let d = resource(&apps, "deployments");
    assert_eq!(d["kind"], "Deployment");
    assert!(d["categories"].as_array().unwrap().contains(&json!("all")));
    let scale = resource(&apps, "deployments/scale");
    assert_eq!(
        (
            scale["group"].as_str(),
            scale["version"].as_str(),
            scale["kind"].as_str()
        ),
        (Some("autoscaling"), Some("v1"), Some("Scale"))
    );
    let group = get(&c, "/apis/apps", "application/json").await.json();
    assert_eq!(group["preferredVersion"]["groupVersion"], "apps/v1");
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregated_discovery() {
    let c = client(M).await;
    let accept = format!("{AGGREGATED},application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json");
    for path in ["/api", "/apis"] {
        let r = get(&c, path, &accept).await;
        assert_eq!(r.content_type(), AGGREGATED, "{path}");
        let doc = r.json();
        assert_eq!(
            (doc["kind"].as_str(), doc["apiVersion"].as_str()),
            (
                Some("APIGroupDiscoveryList"),
                Some("apidiscovery.k8s.io/v2")
            )
        );
        if path == "/api" {
            let core = &doc["items"][0];
            assert_eq!(core["metadata"]["name"], "");
            let v1 = &core["versions"][0];
            assert_eq!(v1["version"], "v1");
            let pods = v1["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["resource"] == "pods")
                .unwrap();
            assert_eq!(pods["scope"], "Namespaced");
            assert_eq!(pods["responseKind"]["kind"], "Pod");
            let ev = pods["subresources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["subresource"] == "eviction")
                .unwrap();
            assert_eq!(
                ev["responseKind"],
                json!({"group": "policy", "version": "v1", "kind": "Eviction"})
            );
        } else {
            let apps = doc["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["metadata"]["name"] == "apps")
                .unwrap();
            let d = apps["versions"][0]["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["resource"] == "deployments")
                .unwrap();
            let scale = d["subresources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["subresource"] == "scale")
                .unwrap();
            assert_eq!(
                scale["responseKind"],
                json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
            );
        }
    }
    // plain JSON stays legacy
    let r = get(&c, "/apis", "application/json").await;
    assert_ne!(r.content_type(), AGGREGATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_discovery_and_version() {
    let c = client(M).await;
    let v = c.apiserver_version().await.unwrap();
    assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "32"));
    assert!(v.git_version.starts_with("v1.32"), "{}", v.git_version);

    let d = Discovery::new(c.clone()).run().await.unwrap();
    assert!(d.has_group("apps") && d.has_group("") && d.has_group("batch"));
    let (ar, caps) = d
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "apps",
            "v1",
            "Deployment",
        ))
        .expect("Deployment");
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps
        .subresources
        .iter()
        .any(|(s, _)| s.plural == "deployments/scale" || s.plural == "scale"));
    let (ns_ar, ns_caps) = d
        .resolve_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Namespace"))
        .expect("Namespace");
    assert_eq!(
        (ns_ar.plural.as_str(), ns_caps.scope),
        ("namespaces", Scope::Cluster)
    );
}

fn column_names(table: &Value) -> Vec<(String, i64)> {
    table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["priority"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn table_output_has_upstream_columns() {
    let c = client(M).await;
    let ns = namespace(&c, "disc-table").await;
    let create = |path: String, body: Value| {
        let c = c.clone();
        async move {
            let r = raw(
                &c,
                "POST",
                &path,
                &[("content-type", "application/json")],
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
            assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        }
    };
    create(
        format!("/api/v1/namespaces/{ns}/pods"),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
    )
    .await;
    create(
        format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"selector": {"matchLabels": {"app": "d"}},
                        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await;
    create(
        format!("/api/v1/namespaces/{ns}/services"),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    let accept =
        format!("{TABLE},application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json");
    let cases: [(String, &[(&str, i64)]); 3] = [
        (
            format!("/api/v1/namespaces/{ns}/pods"),
            &[
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1),
            ],
        ),
        (
            format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            &[
                ("Name", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ],
        ),
        (
            format!("/api/v1/namespaces/{ns}/services"),
            &[
                ("Name", 0),
                ("Type", 0),
                ("Cluster-IP", 0),
                ("External-IP", 0),
                ("Port(s)", 0),
                ("Age", 0),
                ("Selector", 1),
            ],
        ),
    ];
    for (path, want) in cases {
        let t = get(&c, &path, &accept).await.json();
        assert_eq!(
            (t["kind"].as_str(), t["apiVersion"].as_str()),
            (Some("Table"), Some("meta.k8s.io/v1")),
            "{path}"
        );
        let want: Vec<(String, i64)> = want.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        assert_eq!(column_names(&t), want, "{path}");
        let rows = t["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{path}");
        assert_eq!(rows[0]["cells"].as_array().unwrap().len(), want.len());
        assert_eq!(rows[0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(rows[0]["object"]["metadata"]["namespace"], ns.as_str());
    }
    // a single object as a Table too
    let t = get(&c, &format!("/api/v1/namespaces/{ns}/pods/p"), TABLE)
        .await
        .json();
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["rows"][0]["cells"][0], "p");
    assert_eq!(t["rows"][0]["cells"][1], "0/1");
    assert_eq!(t["rows"][0]["cells"][2], "Pending");
}
