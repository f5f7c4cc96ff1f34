//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`), as upstream's API
//! server: `Strict` refuses unknown and duplicate fields with upstream's messages and stores
//! nothing; `Warn` (also the default) answers `Warning: 299 - "…"` headers and drops the
//! unknown fields; `Ignore` drops them silently; patches are judged by their result; server-side
//! apply refuses undeclared fields in every mode.

use http::StatusCode;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::{json, Value};

use crate::{client, expect_status, namespace, raw, Raw};

const M: &str = "field_validation";

/// A Deployment with a typo at the top of its spec and an unknown field in its container.
fn typo_deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicass": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": "nginx", "bar": true}]}}}
    })
}

fn warnings(r: &Raw) -> Vec<String> {
    r.headers
        .get_all(http::header::WARNING)
        .iter()
        .map(|v| v.to_str().expect("ascii warning").to_string())
        .collect()
}

fn message(r: &Raw) -> String {
    r.json()["message"].as_str().unwrap_or_default().to_string()
}

async fn post(c: &kube::Client, path: &str, ct: &str, body: impl Into<Vec<u8>>) -> Raw {
    raw(c, "POST", path, &[("content-type", ct)], body.into()).await
}

/// The stored object, as raw JSON (typed clients would hide fields they do not know).
async fn stored(c: &kube::Client, path: &str) -> Value {
    let r = raw(c, "GET", path, &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", message(&r));
    r.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_refuses_unknown_and_duplicate_fields_and_stores_nothing() {
    let c = client(M).await;
    let ns = namespace(&c, "fv-strict").await;
    let deploys = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let strict = format!("{deploys}?fieldValidation=Strict");

    let r = post(
        &c,
        &strict,
        "application/json",
        typo_deployment("web").to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", message(&r));
    assert_eq!(r.json()["reason"], "BadRequest");
    assert_eq!(
        message(&r),
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replicass", unknown field "spec.template.spec.containers[0].bar""#
    );
    let api: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    expect_status(api.get("web").await, 404, "NotFound");

    // A key given twice in JSON.
    let dup = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1"},"data":{"b":"2"}}"#;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let r = post(
        &c,
        &format!("{cms}?fieldValidation=Strict"),
        "application/json",
        dup,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&r),
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data""#
    );
    // … and in YAML: go-yaml's line.
    let yaml =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\ndata:\n  a: \"1\"\n  a: \"2\"\n";
    let r = post(
        &c,
        &format!("{cms}?fieldValidation=Strict"),
        "application/yaml",
        yaml,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&r),
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: yaml: unmarshal errors:\n  line 7: key \"a\" already set in map"
    );
    let cm_api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    expect_status(cm_api.get("dup").await, 404, "NotFound");

    // An update (PUT) is judged the same way and leaves the object as it was.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}});
    let r = post(&c, &cms, "application/json", cm.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let mut put = r.json();
    put["data"]["k"] = json!("changed");
    put["extra"] = json!({"x": 1});
    let r = raw(
        &c,
        "PUT",
        &format!("{cms}/cm?fieldValidation=Strict"),
        &[("content-type", "application/json")],
        put.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&r),
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "extra""#
    );
    assert_eq!(stored(&c, &format!("{cms}/cm")).await["data"]["k"], "v");

    // A value the server does not know.
    let r = post(
        &c,
        &format!("{cms}?fieldValidation=strict"),
        "application/json",
        cm.to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        message(&r),
        r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn""#
    );
    assert_eq!(r.json()["details"]["causes"][0]["field"], "fieldValidation");
}

#[tokio::test(flavor = "multi_thread")]
async fn warn_is_the_default_answers_warnings_and_prunes() {
    let c = client(M).await;
    let ns = namespace(&c, "fv-warn").await;
    let deploys = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    for (name, query) in [("default", ""), ("warn", "?fieldValidation=Warn")] {
        let r = post(
            &c,
            &format!("{deploys}{query}"),
            "application/json",
            typo_deployment(name).to_string(),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", message(&r));
        assert_eq!(
            warnings(&r),
            vec![
                r#"299 - "unknown field \"spec.replicass\"""#,
                r#"299 - "unknown field \"spec.template.spec.containers[0].bar\"""#,
            ],
            "{name}"
        );
        // Neither the answer nor the stored object has them.
        for obj in [r.json(), stored(&c, &format!("{deploys}/{name}")).await] {
            assert!(obj["spec"].get("replicass").is_none(), "{obj}");
            assert!(obj["spec"]["template"]["spec"]["containers"][0]
                .get("bar")
                .is_none());
            assert_eq!(
                obj["spec"]["template"]["spec"]["containers"][0]["image"],
                "nginx"
            );
        }
    }
    // Duplicates: the last value wins, with a warning.
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let dup = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1","a":"2"}}"#;
    let r = post(&c, &cms, "application/json", dup).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(warnings(&r), vec![r#"299 - "duplicate field \"data.a\"""#]);
    assert_eq!(
        stored(&c, &format!("{cms}/dup")).await["data"],
        json!({"a": "2"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ignore_prunes_silently() {
    let c = client(M).await;
    let ns = namespace(&c, "fv-ignore").await;
    let deploys = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let r = post(
        &c,
        &format!("{deploys}?fieldValidation=Ignore"),
        "application/json",
        typo_deployment("web").to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", message(&r));
    assert!(warnings(&r).is_empty());
    let obj = stored(&c, &format!("{deploys}/web")).await;
    assert!(obj["spec"].get("replicass").is_none(), "{obj}");
    assert!(obj["spec"]["template"]["spec"]["containers"][0]
        .get("bar")
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn patches_are_judged_by_their_result() {
    let c = client(M).await;
    let ns = namespace(&c, "fv-patch").await;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}});
    assert_eq!(
        post(&c, &cms, "application/json", cm.to_string())
            .await
            .status,
        StatusCode::CREATED
    );
    let item = format!("{cms}/cm");
    let patch = |ct: &'static str, query: &'static str, body: &'static str| {
        let c = c.clone();
        let path = format!("{item}?{query}");
        async move { raw(&c, "PATCH", &path, &[("content-type", ct)], body.into()).await }
    };
    let merge = "application/merge-patch+json";
    let json_patch = "application/json-patch+json";
    let strategic = "application/strategic-merge-patch+json";

    // Strict: 422 on `patch`, nothing stored.
    let r = patch(
        merge,
        "fieldValidation=Strict",
        r#"{"data":{"k":"2"},"foo":1}"#,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        message(&r)
    );
    let m = message(&r);
    assert!(
        m.starts_with(r#" "" is invalid: patch: Invalid value: "{"#),
        "{m}"
    );
    assert!(
        m.ends_with(r#"": strict decoding error: unknown field "foo""#),
        "{m}"
    );
    assert_eq!(r.json()["details"]["causes"][0]["field"], "patch");
    let r = patch(
        json_patch,
        "fieldValidation=Strict",
        r#"[{"op":"add","path":"/foo","value":{"a":1}}]"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&r).ends_with(r#"": strict decoding error: unknown field "foo""#));
    let r = patch(
        strategic,
        "fieldValidation=Strict",
        r#"{"metadata":{"labelz":{"a":"b"}},"data":{"k":"3"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        message(&r),
        r#" "" is invalid: patch: Invalid value: "map[data:map[k:3] metadata:map[labelz:map[a:b]]]": strict decoding error: unknown field "metadata.labelz""#
    );
    let r = patch(
        merge,
        "fieldValidation=Strict",
        r#"{"data":{"k":"4","k":"5"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&r).ends_with(r#"": strict decoding error: duplicate field "data.k""#));
    let obj = stored(&c, &item).await;
    assert_eq!(obj["data"], json!({"k": "v"}));
    assert!(obj.get("foo").is_none());

    // Warn (and the default): applied without the unknown field, with a warning.
    for (ct, query, body, warning, k) in [
        (
            merge,
            "fieldValidation=Warn",
            r#"{"data":{"k":"w1"},"foo":1}"#,
            "foo",
            "w1",
        ),
        (
            json_patch,
            "",
            r#"[{"op":"replace","path":"/data/k","value":"w2"},{"op":"add","path":"/bar","value":1}]"#,
            "bar",
            "w2",
        ),
        (
            strategic,
            "fieldValidation=Warn",
            r#"{"data":{"k":"w3"},"metadata":{"labelz":{"a":"b"}}}"#,
            "metadata.labelz",
            "w3",
        ),
    ] {
        let r = patch(ct, query, body).await;
        assert_eq!(r.status, StatusCode::OK, "{ct}: {}", message(&r));
        assert_eq!(
            warnings(&r),
            vec![format!(r#"299 - "unknown field \"{warning}\"""#)],
            "{ct}"
        );
        let obj = stored(&c, &item).await;
        assert_eq!(obj["data"]["k"], k, "{ct}");
        assert!(
            obj.get("foo").is_none() && obj.get("bar").is_none(),
            "{obj}"
        );
        assert!(obj["metadata"].get("labelz").is_none(), "{obj}");
    }

    // Ignore: silently.
    let r = patch(
        merge,
        "fieldValidation=Ignore",
        r#"{"data":{"k":"i"},"foo":1}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(warnings(&r).is_empty());
    let obj = stored(&c, &item).await;
    assert_eq!(obj["data"]["k"], "i");
    assert!(obj.get("foo").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_refuses_undeclared_fields_in_every_mode() {
    let c = client(M).await;
    let ns = namespace(&c, "fv-apply").await;
    let ct = [("content-type", "application/apply-patch+yaml")];
    let item = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    let mut cfg = typo_deployment("web");
    cfg["metadata"]["namespace"] = json!(ns);
    for mode in ["Strict", "Warn", "Ignore"] {
        let r = raw(
            &c,
            "PATCH",
            &format!("{item}?fieldManager=m&fieldValidation={mode}"),
            &ct,
            cfg.to_string().into_bytes(),
        )
        .await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{mode}");
        assert_eq!(
            message(&r),
            format!("failed to create typed patch object ({ns}/web; apps/v1, Kind=Deployment): errors:\n  .spec.replicass: field not declared in schema\n  .spec.template.spec.containers[name=\"web\"].bar: field not declared in schema"),
            "{mode}"
        );
    }
    let api: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    expect_status(api.get("web").await, 404, "NotFound");

    // Duplicate keys: refused under Strict, warned about under Warn.
    let body = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  replicas: 1\n  replicas: 2\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n"
    );
    let r = raw(
        &c,
        "PATCH",
        &format!("{item}?fieldManager=m&fieldValidation=Strict"),
        &ct,
        body.clone().into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", message(&r));
    assert_eq!(
        message(&r),
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 8: key \"replicas\" already set in map"
    );
    expect_status(api.get("web").await, 404, "NotFound");
    let r = raw(
        &c,
        "PATCH",
        &format!("{item}?fieldManager=m"),
        &ct,
        body.into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", message(&r));
    assert_eq!(
        warnings(&r),
        vec![r#"299 - "line 8: key \"replicas\" already set in map""#]
    );
    assert_eq!(r.json()["spec"]["replicas"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn subresources_are_judged_against_their_own_kind() {
    let c = client(M).await;
    let ns = namespace(&c, "fv-sub").await;
    let deploys = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let mut d = typo_deployment("web");
    d["spec"]["replicas"] = json!(1);
    let r = post(
        &c,
        &format!("{deploys}?fieldValidation=Ignore"),
        "application/json",
        d.to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", message(&r));
    let scale = format!("{deploys}/web/scale");

    // The scale subresource takes an autoscaling/v1 Scale.
    let body = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                      "metadata": {"name": "web", "namespace": ns},
                      "spec": {"replicas": 2, "replicaz": 3}});
    let r = raw(
        &c,
        "PUT",
        &format!("{scale}?fieldValidation=Strict"),
        &[("content-type", "application/json")],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", message(&r));
    assert_eq!(
        message(&r),
        r#"Scale in version "v1" cannot be handled as a Scale: strict decoding error: unknown field "spec.replicaz""#
    );
    let merge = [("content-type", "application/merge-patch+json")];
    let r = raw(
        &c,
        "PATCH",
        &format!("{scale}?fieldValidation=Strict"),
        &merge,
        br#"{"spec":{"replicas":4,"replicaz":5}}"#.to_vec(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        message(&r)
    );
    assert!(message(&r).ends_with(r#"": strict decoding error: unknown field "spec.replicaz""#));
    assert_eq!(
        stored(&c, &format!("{deploys}/web")).await["spec"]["replicas"],
        1
    );
    let r = raw(
        &c,
        "PATCH",
        &scale,
        &merge,
        br#"{"spec":{"replicas":4,"replicaz":5}}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", message(&r));
    assert_eq!(
        warnings(&r),
        vec![r#"299 - "unknown field \"spec.replicaz\"""#]
    );
    assert_eq!(
        stored(&c, &format!("{deploys}/web")).await["spec"]["replicas"],
        4
    );

    // The status subresource takes the whole object.
    let mut obj = stored(&c, &format!("{deploys}/web")).await;
    obj["status"]["bogus"] = json!(1);
    let r = raw(
        &c,
        "PUT",
        &format!("{deploys}/web/status?fieldValidation=Strict"),
        &[("content-type", "application/json")],
        obj.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&r),
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "status.bogus""#
    );
}
