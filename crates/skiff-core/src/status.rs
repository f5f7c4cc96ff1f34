//! API errors as `Status` objects, shaped byte for byte like upstream's (key order, omitted empty
//! fields), and the field errors that make up a 422 Invalid.

use serde::Serialize;

use crate::registry::Resource;

/// One cause in `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Details {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<i32>,
}

impl Details {
    fn is_empty(&self) -> bool {
        *self == Details::default()
    }
}

/// An API error; `Display` is its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// Boxed to keep `Result<_, ApiError>` small on the hot path.
    pub details: Box<Details>,
}

#[derive(Serialize)]
struct StatusBody<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: serde_json::Map<String, serde_json::Value>,
    status: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "Details::is_empty")]
    details: &'a Details,
    code: u16,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    fn for_object(mut self, res: &Resource, name: &str) -> Self {
        self.details.name = name.to_string();
        self.details.group = res.group.to_string();
        self.details.kind = res.plural.to_string();
        self
    }

    /// 404 `pods "x" not found`.
    pub fn not_found(res: &Resource, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", res.qualified_plural(), name),
        )
        .for_object(res, name)
    }

    /// 409 `pods "x" already exists`.
    pub fn already_exists(res: &Resource, name: &str) -> Self {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", res.qualified_plural(), name),
        )
        .for_object(res, name)
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn conflict(res: &Resource, name: &str, why: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                res.qualified_plural(),
                name,
                why
            ),
        )
        .for_object(res, name)
    }

    /// The usual optimistic-concurrency conflict.
    pub fn stale(res: &Resource, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with field causes.
    pub fn invalid(res: &Resource, name: &str, errors: &[FieldError]) -> Self {
        let list = if errors.len() == 1 {
            errors[0].to_string()
        } else {
            format!(
                "[{}]",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!("{} \"{}\" is invalid: {}", res.qualified_kind(), name, list),
        );
        e.details.name = name.to_string();
        e.details.group = res.group.to_string();
        e.details.kind = res.kind.to_string();
        e.details.causes = errors
            .iter()
            .map(|f| Cause {
                reason: f.kind.reason().to_string(),
                message: f.body(),
                field: f.field.clone(),
            })
            .collect();
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(res: &Resource, name: &str, why: &str) -> Self {
        let target = if name.is_empty() {
            res.qualified_plural()
        } else {
            format!("{} \"{}\"", res.qualified_plural(), name)
        };
        ApiError::new(403, "Forbidden", format!("{target} is forbidden: {why}"))
            .for_object(res, name)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    /// 410 for an expired resourceVersion or continue token.
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(413, "RequestEntityTooLarge", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type})"),
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        ApiError::new(406, "NotAcceptable", message)
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        ApiError::new(429, "TooManyRequests", message)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError::new(504, "Timeout", message)
    }

    /// The Status object as upstream serializes it (compact, Go's key order), without the
    /// trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let body = StatusBody {
            kind: "Status",
            api_version: "v1",
            metadata: serde_json::Map::new(),
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: &self.details,
            code: self.code,
        };
        serde_json::to_vec(&body).expect("status serializes")
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.to_json()).expect("status parses")
    }
}

/// A `Status` reporting success, as returned by a delete of a resource that is gone at once
/// in some paths and by `eviction`.
pub fn success_status() -> serde_json::Value {
    serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201})
}

/// The type of a field error, named as upstream's `field.ErrorType`.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldErrorKind {
    NotFound(serde_json::Value),
    Required,
    Duplicate(serde_json::Value),
    Invalid(serde_json::Value),
    /// An unsupported value and the supported ones.
    NotSupported(serde_json::Value, Vec<String>),
    Forbidden,
    TooLong,
    TooMany,
    Internal,
}

impl FieldErrorKind {
    pub fn reason(&self) -> &'static str {
        match self {
            FieldErrorKind::NotFound(_) => "FieldValueNotFound",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorKind::Invalid(_) => "FieldValueInvalid",
            FieldErrorKind::NotSupported(..) => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Internal => "InternalError",
        }
    }

    fn label(&self) -> &'static str {
        match self {
            FieldErrorKind::NotFound(_) => "Not found",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Duplicate(_) => "Duplicate value",
            FieldErrorKind::Invalid(_) => "Invalid value",
            FieldErrorKind::NotSupported(..) => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Internal => "Internal error",
        }
    }
}

/// One field error: what is wrong with which field, as upstream's `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    /// The path, as `spec.template.spec.containers[0].image`.
    pub field: String,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Required,
            field: field.into(),
            detail: detail.into(),
        }
    }
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<serde_json::Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind: FieldErrorKind::Invalid(value.into()),
            field: field.into(),
            detail: detail.into(),
        }
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Forbidden,
            field: field.into(),
            detail: detail.into(),
        }
    }
    pub fn duplicate(field: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        FieldError {
            kind: FieldErrorKind::Duplicate(value.into()),
            field: field.into(),
            detail: String::new(),
        }
    }
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<serde_json::Value>,
        supported: &[&str],
    ) -> Self {
        let supported: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
        let detail = if supported.is_empty() {
            String::new()
        } else {
            format!(
                "supported values: {}",
                supported
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        FieldError {
            kind: FieldErrorKind::NotSupported(value.into(), supported),
            field: field.into(),
            detail,
        }
    }
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            kind: FieldErrorKind::TooLong,
            field: field.into(),
            detail: format!("may not be more than {max} bytes"),
        }
    }

    /// The message without the field, as upstream's `ErrorBody`.
    pub fn body(&self) -> String {
        let mut s = match &self.kind {
            FieldErrorKind::Required
            | FieldErrorKind::Forbidden
            | FieldErrorKind::TooLong
            | FieldErrorKind::Internal
            | FieldErrorKind::TooMany => self.kind.label().to_string(),
            FieldErrorKind::NotFound(v)
            | FieldErrorKind::Duplicate(v)
            | FieldErrorKind::Invalid(v)
            | FieldErrorKind::NotSupported(v, _) => {
                format!("{}: {}", self.kind.label(), go_value(v))
            }
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// How Go's `%q`/`%v` would print a bad value in a field error.
fn go_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        serde_json::Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup;

    #[test]
    fn already_exists_is_byte_exact() {
        let r = lookup("apiregistration.k8s.io", "v1", "apiservices").unwrap();
        let e = ApiError::already_exists(r, "v1alpha1.wardle.k8s.io");
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"apiservices.apiregistration.k8s.io \"v1alpha1.wardle.k8s.io\" already exists","reason":"AlreadyExists","details":{"name":"v1alpha1.wardle.k8s.io","group":"apiregistration.k8s.io","kind":"apiservices"},"code":409}"#
        );
    }

    #[test]
    fn not_found_core_has_no_group() {
        let r = lookup("", "v1", "pods").unwrap();
        assert_eq!(
            String::from_utf8(ApiError::not_found(r, "x").to_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}"#
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let r = lookup("apps", "v1", "deployments").unwrap();
        let e = ApiError::invalid(
            r,
            "web",
            &[
                FieldError::required("spec.selector", ""),
                FieldError::invalid("metadata.name", "Web", "a lowercase RFC 1123 subdomain"),
            ],
        );
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Deployment.apps \"web\" is invalid: [spec.selector: Required value, metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain]"
        );
        let v = e.to_value();
        assert_eq!(v["details"]["kind"], "Deployment");
        assert_eq!(v["details"]["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(v["details"]["causes"][1]["field"], "metadata.name");
    }

    #[test]
    fn not_supported_lists_values() {
        let f = FieldError::not_supported("spec.type", "Foo", &["ClusterIP", "NodePort"]);
        assert_eq!(
            f.to_string(),
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"NodePort\""
        );
    }
}
