//! The self-review APIs kubectl's `auth` commands post to: `SelfSubjectReview`
//! (`kubectl auth whoami`), `SelfSubjectAccessReview` (`kubectl auth can-i`) and
//! `SelfSubjectRulesReview` (`kubectl auth can-i --list`).
//!
//! Authorization is AlwaysAllow until RBAC is enforced, so every authenticated user may do
//! everything, and the reviews say so: exactly what upstream answers with
//! `--authorization-mode=AlwaysAllow`. kubectl sends these bodies as protobuf; the spec is
//! echoed back whatever the body's encoding.

use http::{Request, Response, StatusCode};
use serde_json::json;

use crate::codec::{self, Accept};
use crate::{Body, UserInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Subject,
    Access,
    Rules,
}

impl Review {
    pub fn from_path(path: &str) -> Option<Review> {
        match path {
            "/apis/authentication.k8s.io/v1/selfsubjectreviews" => Some(Review::Subject),
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" => Some(Review::Access),
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews" => Some(Review::Rules),
            _ => None,
        }
    }
}

/// Answers a review for `user`.
pub async fn answer(
    review: Review,
    req: Request<hyper::body::Incoming>,
    user: &UserInfo,
) -> Response<Body> {
    let (parts, body) = match codec::read_request(req).await {
        Ok(x) => x,
        Err(e) => return codec::error_response(&e),
    };
    // The spec, echoed back; kubectl sends protobuf, other clients JSON or YAML.
    let spec = if body.is_empty() {
        json!({})
    } else {
        match codec::decode(&body, &codec::content_type(&parts.headers)) {
            Ok(v) => v.get("spec").cloned().unwrap_or_else(|| json!({})),
            Err(e) => return codec::error_response(&e),
        }
    };
    let out = match review {
        Review::Subject => {
            let mut info = serde_json::Map::new();
            info.insert("username".into(), json!(user.name));
            if !user.uid.is_empty() {
                info.insert("uid".into(), json!(user.uid));
            }
            info.insert("groups".into(), json!(user.groups));
            json!({
                "kind": "SelfSubjectReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": skiff_core::meta::now_rfc3339()},
                "status": {"userInfo": info}
            })
        }
        Review::Access => json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": {"allowed": true, "reason": "authorization is not enforced (AlwaysAllow)"}
        }),
        Review::Rules => json!({
            "kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false
            }
        }),
    };
    codec::value_response(StatusCode::CREATED, &out, Accept::Json)
}
