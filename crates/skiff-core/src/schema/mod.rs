//! Structural OpenAPI v3 schemas of CustomResourceDefinitions, applied to custom objects as
//! upstream's apiextensions-apiserver does on every write: pruning of fields the schema does
//! not know ([`prune`]), defaulting from `default` ([`default`]), and validation ([`validate`])
//! with kube-openapi's messages, turned into `field.Error`s the way upstream's
//! `kubeOpenAPIResultToFieldErrors` does (`spec.replicas: Invalid value: "string":
//! spec.replicas in body must be of type integer: "string"`).
//!
//! [`structural`] checks that a CRD's schema is structural (upstream's
//! `apiextensions-apiserver/pkg/apiserver/schema` rules). `x-kubernetes-validations` (CEL rules)
//! are accepted in schemas and not evaluated.
//!
//! Schemas are the CRD's `openAPIV3Schema` JSON as stored; nothing is compiled ahead.

mod default;
mod prune;
pub mod structural;
mod validate;

pub use default::default;
pub use prune::{prune, unknown_fields};
pub use validate::validate;

use serde_json::Value;

/// A child path: `spec` under the root, `spec.replicas` below it.
pub(crate) fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// An element path: `spec.items[0]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

pub(crate) fn flag(s: &Value, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool).unwrap_or(false)
}

pub(crate) fn type_of(s: &Value) -> &str {
    s.get("type").and_then(Value::as_str).unwrap_or("")
}
