//! Bad input is refused with a Status and never harms the cluster: oversized bodies (413),
//! malformed JSON, YAML alias bombs and deep nesting (400, fast), unknown paths (404); YAML
//! bodies are accepted.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::Api;

use crate::{client, expect_status, namespace, raw, Raw};

const M: &str = "bad_input";

fn assert_status(r: &Raw, code: u16, what: &str) {
    assert_eq!(
        r.status.as_u16(),
        code,
        "{what}: {}",
        String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
    );
    let s = r.json();
    assert_eq!(s["kind"], "Status", "{what}");
    assert_eq!(s["status"], "Failure", "{what}");
    assert_eq!(s["code"], code, "{what}");
}

async fn post(c: &kube::Client, ns: &str, ct: &str, body: Vec<u8>) -> Raw {
    raw(
        c,
        "POST",
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        &[("content-type", ct)],
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_input_leaves_the_server_serving() {
    let c = client(M).await;
    let ns = namespace(&c, "bad-input").await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);

    // 4 MiB body: over the 3 MiB limit
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"k":"{}"}}}}"#,
        "x".repeat(4 << 20)
    );
    let r = post(&c, &ns, "application/json", big.into_bytes()).await;
    assert_status(&r, 413, "4 MiB body");
    assert_eq!(r.json()["reason"], "RequestEntityTooLarge");
    expect_status(cms.get("big").await, 404, "NotFound");

    // malformed JSON
    for body in [
        &b"{"[..],
        b"{\"apiVersion\":\"v1\",",
        b"not json",
        b"[1,2,3]",
        b"\"string\"",
    ] {
        let r = post(&c, &ns, "application/json", body.to_vec()).await;
        assert_status(&r, 400, &String::from_utf8_lossy(body));
    }

    // YAML works
    let yaml = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n  namespace: {ns}\ndata:\n  k: v\n");
    let r = post(&c, &ns, "application/yaml", yaml.into_bytes()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(cms.get("from-yaml").await.unwrap().data.unwrap()["k"], "v");

    // YAML alias bomb (billion laughs): refused quickly
    let mut bomb = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\na0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    bomb.push_str("data: *a9\n");
    // The bound is against a blow-up (expanding the bomb would take hours), not a speed target:
    // the deep documents below take about a second in a debug build, twice that on a machine
    // busy with other builds.
    const REFUSED_WITHIN: Duration = Duration::from_secs(10);
    let t = Instant::now();
    let r = post(&c, &ns, "application/yaml", bomb.into_bytes()).await;
    assert_status(&r, 400, "alias bomb");
    assert!(
        t.elapsed() < REFUSED_WITHIN,
        "alias bomb took {:?}",
        t.elapsed()
    );
    expect_status(cms.get("bomb").await, 404, "NotFound");

    // 10,000-deep nesting, as JSON and as YAML
    let deep_json = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"deep"}},"x":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let t = Instant::now();
    let r = post(&c, &ns, "application/json", deep_json.into_bytes()).await;
    assert_status(&r, 400, "deep JSON");
    let deep_yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\nx: {}1{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let r = post(&c, &ns, "application/yaml", deep_yaml.into_bytes()).await;
    assert_status(&r, 400, "deep YAML");
    assert!(
        t.elapsed() < REFUSED_WITHIN,
        "deep documents took {:?}",
        t.elapsed()
    );
    expect_status(cms.get("deep").await, 404, "NotFound");

    // unsupported media type
    let r = post(&c, &ns, "text/plain", b"hello".to_vec()).await;
    assert_status(&r, 415, "text/plain");

    // unknown paths and resources
    for path in [
        "/api/v1/namespaces/default/widgets",
        "/apis/nope.example.com/v1/things",
        "/apis/apps/v9/deployments",
        "/not/an/api/path",
    ] {
        let r = raw(&c, "GET", path, &[], vec![]).await;
        assert_status(&r, 404, path);
    }

    // still serving, and nothing stray was created
    let names = crate::list_names(&cms).await;
    assert_eq!(names, ["from-yaml"]);
    let nss: Api<Namespace> = Api::all(c.clone());
    assert!(nss.get("default").await.is_ok());
    let r = raw(&c, "GET", "/readyz", &[], vec![]).await;
    assert_eq!(r.status, 200);
}
