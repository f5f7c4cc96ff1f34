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
pub mod schema;
pub mod status;
pub mod strategic;
pub mod table;
pub mod validation;

pub use registry::Resource;
pub use status::{ApiError, FieldError};
