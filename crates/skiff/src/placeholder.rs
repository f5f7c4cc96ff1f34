//! A stand-in API handler used until `skiff_apiserver::ApiServer` is wired in (see
//! `server::build_handler`). It answers just enough to prove TLS, authentication and the
//! kubeconfig end to end: anonymous requests get kube-apiserver's 401 `Status` (k3s runs with
//! `--anonymous-auth=false`); authenticated ones get `/healthz`, `/livez`, `/readyz`, `/version`
//! and `SelfSubjectReview` (`kubectl auth whoami`); everything else is a 404 `Status`.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use hyper::body::Incoming;
use skiff_apiserver::{Body, Handler, UserInfo};
use skiff_core::ApiError;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Placeholder;

impl Handler for Placeholder {
    fn call(
        self: Arc<Self>,
        req: http::Request<Incoming>,
        user: Option<UserInfo>,
    ) -> BoxFuture<'static, http::Response<Body>> {
        let resp = answer(req.method(), req.uri().path(), user);
        Box::pin(async move { resp })
    }
}

fn answer(method: &http::Method, path: &str, user: Option<UserInfo>) -> http::Response<Body> {
    let Some(user) = user else {
        return status(&ApiError::unauthorized());
    };
    match (method, path) {
        (&http::Method::GET, "/healthz" | "/livez" | "/readyz") => {
            respond(200, "text/plain; charset=utf-8", Bytes::from_static(b"ok"))
        }
        (&http::Method::GET, "/version") => json(200, &crate::version::version_info()),
        (&http::Method::POST, "/apis/authentication.k8s.io/v1/selfsubjectreviews") => json(
            201,
            &serde_json::json!({
                "kind": "SelfSubjectReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": null},
                "status": {"userInfo": {
                    "username": user.name,
                    "uid": user.uid,
                    "groups": user.groups,
                }},
            }),
        ),
        _ => status(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}

fn status(e: &ApiError) -> http::Response<Body> {
    respond(e.code, "application/json", Bytes::from(e.to_json()))
}

fn json(code: u16, v: &serde_json::Value) -> http::Response<Body> {
    respond(code, "application/json", Bytes::from(v.to_string()))
}

fn respond(code: u16, content_type: &str, body: Bytes) -> http::Response<Body> {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(skiff_apiserver::tls::full(body))
        .expect("valid response parts")
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body(resp: http::Response<Body>) -> String {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn anonymous_is_unauthorized() {
        let resp = answer(&http::Method::GET, "/readyz", None);
        assert_eq!(resp.status(), 401);
        let v: serde_json::Value = serde_json::from_str(&body(resp).await).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},
                "status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})
        );
    }

    #[tokio::test]
    async fn authenticated_gets_version_and_whoami() {
        let user = UserInfo::new("alice", "1", vec!["g".into()]);
        let resp = answer(&http::Method::GET, "/version", Some(user.clone()));
        assert_eq!(resp.status(), 200);
        assert!(body(resp).await.contains("\"minor\":\"32\""));
        let path = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
        let resp = answer(&http::Method::POST, path, Some(user));
        let v: serde_json::Value = serde_json::from_str(&body(resp).await).unwrap();
        assert_eq!(v["status"]["userInfo"]["username"], "alice");
        let resp = answer(&http::Method::GET, "/api", Some(UserInfo::default()));
        assert_eq!(resp.status(), 404);
    }
}
