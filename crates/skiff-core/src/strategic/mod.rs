//! Strategic merge patch (`application/strategic-merge-patch+json`), as upstream's
//! k8s.io/apimachinery/pkg/util/strategicpatch applies it in the API server and computes it in
//! kubectl: maps merge key by key and `null` deletes a key; lists declared
//! `patchStrategy:"merge"` merge item by item (by `patchMergeKey` for lists of maps, by value
//! for lists of primitives); other lists are replaced whole. The directives kubectl sends are
//! all understood: `$patch` (`replace`, `delete`, `merge`), `$retainKeys`,
//! `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`.
//!
//! The per-kind metadata lives in [`schema`]; [`apply`] is the server side, [`create_two_way`]
//! the client side (what `kubectl` sends for an edit), so that the two can be tested against
//! each other.

mod diff;
mod merge;
pub mod schema;

use std::fmt;

use serde_json::Value;

use crate::Resource;
pub use schema::{field_meta, FieldMeta, Strategy};

/// The key of the `$patch` directive.
pub const DIRECTIVE_MARKER: &str = "$patch";
/// The key of the `$retainKeys` directive.
pub const RETAIN_KEYS: &str = "$retainKeys";
/// The prefix of `$setElementOrder/<field>`.
pub const SET_ELEMENT_ORDER: &str = "$setElementOrder";
/// The prefix of `$deleteFromPrimitiveList/<field>`.
pub const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Why a strategic merge patch could not be applied or computed. `path` names the field, as
/// field names from the top of the object with list indices left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("invalid patch format of retainKeys at {path}: {reason}")]
    RetainKeys { path: String, reason: &'static str },
    #[error("invalid patch format of setElementOrder list at {path}: {reason}")]
    SetElementOrder { path: String, reason: String },
    #[error("invalid patch format of primitive list at {path}: {reason}")]
    PrimitiveList { path: String, reason: &'static str },
    #[error("unknown patch type: {directive} in map at {path}")]
    UnknownDirective { path: String, directive: String },
    #[error("map at {path} does not contain declared merge key: {key}")]
    NoMergeKey { path: String, key: &'static str },
    #[error("cannot merge lists without merge key at {path}")]
    ListOfMapsWithoutMergeKey { path: String },
    #[error("lists of lists are not supported at {path}")]
    ListOfLists { path: String },
    #[error("list element types are not identical at {path}")]
    MixedList { path: String },
    #[error("expected {expected} at {path}, but received {actual}")]
    BadType {
        path: String,
        expected: &'static str,
        actual: &'static str,
    },
    #[error("the {what} must be a JSON object")]
    NotAnObject { what: &'static str },
}

impl PatchError {
    /// Whether upstream's API server answers 400 Bad Request (a malformed patch document or
    /// directive) rather than 422 Unprocessable Entity (a patch that does not fit the object).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            PatchError::RetainKeys { .. }
                | PatchError::SetElementOrder { .. }
                | PatchError::PrimitiveList { .. }
                | PatchError::NotAnObject { .. }
        )
    }
}

/// Applies strategic merge patch `patch` to `original`, an object of kind `res`.
pub fn apply(res: &Resource, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(orig) = original else {
        return Err(PatchError::NotAnObject { what: "object" });
    };
    let Value::Object(p) = patch else {
        return Err(PatchError::NotAnObject { what: "patch" });
    };
    let mut out = orig.clone();
    merge::merge_map(&mut out, p.clone(), schema::Schema::of(res), Path::ROOT)?;
    Ok(Value::Object(out))
}

/// The strategic merge patch that turns `original` into `modified` (objects of kind `res`), as
/// kubectl computes it for `edit` and two-way diffs: changed and added fields, `null` for
/// removed keys, `$patch: delete` items and `$setElementOrder` lists for merge lists of maps,
/// `$deleteFromPrimitiveList` and `$setElementOrder` for merge lists of primitives, and
/// `$retainKeys` for `retainKeys` fields.
pub fn create_two_way(
    res: &Resource,
    original: &Value,
    modified: &Value,
) -> Result<Value, PatchError> {
    let (Value::Object(o), Value::Object(m)) = (original, modified) else {
        return Err(PatchError::NotAnObject { what: "object" });
    };
    let p = diff::diff_maps(o, m, schema::Schema::of(res), false, Path::ROOT)?;
    Ok(Value::Object(p))
}

/// A field path for error messages, built on the stack as the merge descends.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    name: &'a str,
}

impl<'a> Path<'a> {
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        name: "",
    };

    pub(crate) fn child(&'a self, name: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            name,
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parent {
            None => f.write_str("<root>"),
            Some(p) if p.parent.is_none() => f.write_str(self.name),
            Some(p) => write!(f, "{p}.{}", self.name),
        }
    }
}

/// The JSON type of a value, for type checks and messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}
