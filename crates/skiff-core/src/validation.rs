//! Validation of built-in kinds, as upstream's `Validate*` functions.

use serde_json::Value;

use crate::registry::Resource;
use crate::status::FieldError;

/// Field errors of a new object.
pub fn validate_create(_res: &Resource, _obj: &Value) -> Vec<FieldError> {
    Vec::new()
}

/// Field errors of an update (`old` is the stored object): includes immutable fields.
pub fn validate_update(_res: &Resource, _new: &Value, _old: &Value) -> Vec<FieldError> {
    Vec::new()
}
