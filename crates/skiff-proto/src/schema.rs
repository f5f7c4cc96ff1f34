//! The shape of the generated message table ([`crate::table`]): for every protobuf message that
//! a request body of a built-in kind can contain, its fields with their protobuf numbers, their
//! Kubernetes JSON names and what decides whether a zero value appears in the JSON form.

/// A message whose JSON form is not an object of its fields (apimachinery's hand-written
/// marshallers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// An ordinary message: a JSON object of its fields.
    None,
    /// `meta/v1.Time`: `{seconds, nanos}`, RFC 3339 in seconds in JSON; empty means unset.
    Time,
    /// `meta/v1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `meta/v1.Duration`: nanoseconds, Go's duration string in JSON.
    Duration,
    /// `intstr.IntOrString`: `{type, intVal, strVal}`, a number or a string in JSON.
    IntOrString,
    /// `resource.Quantity`: `{string}`, the string in JSON.
    Quantity,
    /// `runtime.RawExtension`: bytes holding the embedded JSON object.
    RawExtension,
    /// `meta/v1.FieldsV1`: bytes holding the JSON field set.
    FieldsV1,
    /// `runtime.Unknown` inside an object: its raw bytes, which must be JSON.
    Unknown,
    /// apiextensions' `JSONSchemaPropsOrArray`: `schemas` as an array when set, else `schema`.
    SchemaOrArray,
    /// apiextensions' `JSONSchemaPropsOrBool`: `schema` when set, else the bool `allows`.
    SchemaOrBool,
    /// apiextensions' `JSONSchemaPropsOrStringArray`: `property` when set, else `schema`.
    SchemaOrStringArray,
    /// A named Go slice used as a map value (`ExtraValue`): `{repeated items = 1}`, a JSON array.
    Items,
}

/// What a field's value is on the wire and in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    /// Bytes, a base64 string in JSON (Go's `[]byte`).
    Bytes,
    /// A message, by index into [`crate::table::MESSAGES`].
    Message(u16),
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Single,
    Repeated,
    /// A map with string keys (entries: key = 1, value = 2 of the field's [`Ty`]).
    Map,
}

/// When a single scalar field appears in the JSON form, mirroring Go's `encoding/json` over the
/// Go field: a pointer is written whenever set, `omitempty` drops zero values, and a plain
/// field is always written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Pointer,
    OmitEmpty,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub number: u32,
    /// The JSON name; empty for an inlined message (`json:",inline"`) whose fields join the
    /// parent's.
    pub json: &'static str,
    pub ty: Ty,
    pub shape: Shape,
    pub presence: Presence,
}

impl Field {
    pub const fn inline(&self) -> bool {
        self.json.is_empty()
    }
}

/// A message: its upstream OpenAPI definition name (`io.k8s.api.core.v1.Pod`) and fields in
/// the Go struct's order, which is the JSON key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub name: &'static str,
    pub special: Special,
    pub fields: &'static [Field],
}

/// A kind a request body may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub message: u16,
}

pub(crate) const fn f(
    number: u32,
    json: &'static str,
    ty: Ty,
    shape: Shape,
    presence: Presence,
) -> Field {
    Field {
        number,
        json,
        ty,
        shape,
        presence,
    }
}
