//! Pure Kubernetes object logic for Skiff: no I/O.
//!
//! Objects are handled as `serde_json::Value` in the exact JSON shape of the Kubernetes API, so
//! that the API server can store and serve any built-in kind through one generic path, with
//! per-kind behaviour (defaulting, validation, table columns, field selectors) looked up by the
//! kind's [`registry::Resource`].

pub mod crd;
pub mod cron;
pub mod defaults;
pub mod events;
pub mod fields;
pub mod labels;
pub mod managed;
pub mod meta;
pub mod registry;
pub mod ring;
pub mod schema;
pub mod status;
pub mod strategic;
pub mod table;
pub mod validation;

pub use registry::Resource;
pub use status::{ApiError, FieldError};

/// The strings of `parts` one after the other, in one allocation of the right size: keys and
/// paths are made on every read and write, where `format!` costs about ten times as much.
pub fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn concat_joins_without_separators() {
        assert_eq!(
            super::concat(&["/registry/", "core", "/pods/"]),
            "/registry/core/pods/"
        );
        assert_eq!(super::concat(&[]), "");
    }
}
