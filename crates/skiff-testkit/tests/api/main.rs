//! Black-box conformance tests of the Skiff API server through the `kube` crate, in one test
//! binary (as hickory-dns does): each module is one area of upstream Kubernetes API semantics.
//!
//! Tests that do not interfere share one server per module ([`shared`]), each in namespaces of
//! its own; tests that need the datastore's history (compaction, replay from a revision) or
//! write heavily start a server of their own.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::core::Status;
use serde_json::{json, Value};
use skiff_testkit::TestServer;

mod apply;
mod bad_input;
mod consistency;
mod crd;
mod crud;
mod deletion;
mod discovery;
mod errors;
mod field_validation;
mod openapi;
mod pagination;
mod protobuf;
mod selectors;
mod subresources;
mod watch;

/// A server that outlives the test that first asked for it: it runs on a runtime of its own,
/// since every `#[tokio::test]` has its own runtime that stops when the test ends.
struct Shared {
    _rt: tokio::runtime::Runtime,
    server: TestServer,
}

/// The server shared by the tests of module `name`, started on first use.
pub fn shared(name: &'static str) -> &'static TestServer {
    static SERVERS: OnceLock<Mutex<HashMap<&'static str, &'static Shared>>> = OnceLock::new();
    let mut servers = SERVERS
        .get_or_init(|| {
            // Shared servers live until the process exits, so their data cannot be removed
            // on drop: it goes under cargo's scratch folder for tests, which each run clears
            // of the previous run's.
            let _ = std::fs::remove_dir_all(shared_parent());
            Default::default()
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let s = servers.entry(name).or_insert_with(|| {
        // Started from a plain thread: a runtime cannot be blocked on inside another one.
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let server = rt
                .block_on(TestServer::start_under(&shared_parent()))
                .expect("start server");
            &*Box::leak(Box::new(Shared { _rt: rt, server }))
        })
        .join()
        .expect("server thread")
    });
    &s.server
}

/// Where the shared servers keep their data.
fn shared_parent() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("api-shared")
}

/// A client of the shared server of module `name`.
pub async fn client(name: &'static str) -> kube::Client {
    shared(name).client().await.expect("client")
}

/// A client of the shared server of module `name` that does not retry 429/503/504 answers
/// (kube's default client retries them, honouring Retry-After, for minutes).
pub async fn client_without_retries(name: &'static str) -> kube::Client {
    let kc =
        kube::config::Kubeconfig::read_from(shared(name).kubeconfig_path()).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

/// The resourceVersion of a fresh list of `api`.
pub async fn list_rv<K>(api: &Api<K>) -> String
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&kube::api::ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list resourceVersion")
}

/// The names of the objects `api` lists, in list order.
pub async fn list_names<K>(api: &Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&kube::api::ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|o| o.meta().name.clone().expect("name"))
        .collect()
}

/// Creates namespace `name` and returns it.
pub async fn namespace(client: &kube::Client, name: &str) -> String {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &from_json(json!({"metadata": {"name": name}})),
    )
    .await
    .with_context(|| format!("creating namespace {name}"))
    .unwrap();
    name.to_string()
}

/// Deserializes a typed object from a JSON literal.
pub fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("object from json")
}

/// The API `Status` of a failed call; panics if the call succeeded or failed otherwise.
#[track_caller]
pub fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Asserts that `r` failed with HTTP `code` and `reason`, and returns the Status.
#[track_caller]
pub fn expect_status<T: std::fmt::Debug>(
    r: Result<T, kube::Error>,
    code: u16,
    reason: &str,
) -> Status {
    let s = api_error(r);
    assert_eq!((s.code, s.reason.as_str()), (code, reason), "status: {s:?}");
    assert!(s.is_failure(), "status must be Failure: {s:?}");
    s
}

/// A resourceVersion as a number (Skiff's are revisions of its datastore).
pub fn rv_num(rv: Option<&String>) -> u64 {
    rv.expect("resourceVersion")
        .parse()
        .expect("numeric resourceVersion")
}

/// A raw response: status, headers and body.
pub struct Raw {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Raw {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("json body ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends a raw request through `client` (which adds the server URL and credentials).
pub async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Raw {
    let mut b = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(kube::client::Body::from(body)).expect("request");
    let res = client.send(req).await.expect("send");
    let (parts, body) = res.into_parts();
    let body = body.collect_bytes().await.expect("body");
    Raw {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
