//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) decoded into the
//! JSON value the same object sent as JSON would be, so that they take the server's ordinary
//! JSON path (defaulting, validation, storage).
//!
//! client-go's typed clients send built-in kinds as protobuf (`kubectl create namespace`,
//! `kubectl create deployment`, `kubectl auth can-i`, ...). The body is the magic `k8s\0`
//! followed by a `runtime.Unknown` envelope: `typeMeta` (apiVersion, kind), `raw` (the object's
//! own message), `contentEncoding` and `contentType` (see apimachinery's protobuf serializer).
//!
//! Decoding is driven by a table ([`table`]) generated from the Go API types by
//! `examples/gen-table.rs`: per message, its fields' numbers, JSON names and wire types, and
//! whether the Go field is a pointer or `omitempty`, which decides whether a zero value appears
//! in JSON as Go's `encoding/json` would write it. apimachinery's types with hand-written JSON
//! forms (`Time`, `MicroTime`, `Duration`, `IntOrString`, `Quantity`, `RawExtension`, `FieldsV1`)
//! are decoded by [`decode`]'s special cases. Fields unknown to the table are skipped, as Go's
//! generated unmarshallers do.

mod decode;
pub mod schema;
pub mod table;
pub mod wire;

pub use decode::{decode_body, decode_message, go_duration};

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\x00";

/// Deepest nesting of messages accepted in a body (as the JSON decoder's bound).
pub const MAX_DEPTH: usize = 100;

/// Why a protobuf body could not be decoded. Every case is the client's fault (400).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the protobuf body does not start with the Kubernetes protobuf prefix (k8s\\x00)")]
    NoMagic,
    #[error("the protobuf body is truncated")]
    Truncated,
    #[error("the protobuf body is malformed: {0}")]
    Malformed(&'static str),
    #[error("the protobuf body is malformed: {0}")]
    Invalid(String),
    #[error("the protobuf body names no kind (typeMeta is empty)")]
    NoKind,
    #[error("no kind \"{kind}\" is registered for version \"{api_version}\" in protobuf")]
    UnknownKind { api_version: String, kind: String },
    #[error("the protobuf body has content encoding {0:?}, which is not supported")]
    ContentEncoding(String),
    #[error("the protobuf body is nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// The table entry of a kind, if it can be decoded. `DeleteOptions` is accepted under any
/// group-version, as every group registers it.
pub fn root(api_version: &str, kind: &str) -> Option<&'static schema::Root> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    table::ROOTS
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .or_else(|| {
            (kind == "DeleteOptions")
                .then(|| table::ROOTS.iter().find(|r| r.kind == "DeleteOptions"))
                .flatten()
        })
}
