//! Which fields each built-in kind has: the OpenAPI schemas of k8s-openapi's types (the ones
//! `/openapi/v3` serves, see [`crate::openapi`]) compiled once into a compact tree of struct
//! types, lists and maps, and walked over an object to find the fields its type does not
//! declare — what upstream's typed decoding drops (and strict decoding reports).
//!
//! Scalars, `IntOrString`, `Quantity`, `RawExtension`, `FieldsV1` and anything else without
//! declared properties are opaque: nothing below them is checked. The walk only reads; removing
//! what it found ([`remove`]) is a second step that runs only when something was found.

use skiff_core::meta::Fields as _;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use k8s_openapi::schemars::{generate::SchemaSettings, SchemaGenerator};
use serde_json::{Map, Value};

/// The shape of a value.
#[derive(Debug, Clone)]
enum Shape {
    /// Not checked below this point.
    Any,
    /// A struct type (index into [`Shapes::types`]).
    Struct(usize),
    List(Box<Shape>),
    Map(Box<Shape>),
}

impl Shape {
    fn is_any(&self) -> bool {
        matches!(self, Shape::Any)
    }
}

/// One element of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A field path, displayed as sigs.k8s.io/json names fields in strict decoding errors:
/// `spec.template.spec.containers[0].bar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The fields of one type by name, looked up for every field of every request body: hashed
/// with foldhash rather than SipHash (the names come from the schema, not from clients).
type Fields = HashMap<Box<str>, Shape, foldhash::fast::RandomState>;

/// The compiled shapes of every kind with a schema.
pub(crate) struct Shapes {
    types: Vec<Fields>,
    kinds: HashMap<(&'static str, &'static str, &'static str), Shape>,
}

struct Compiler<'a> {
    defs: &'a Map<String, Value>,
    named: HashMap<String, Shape>,
    types: Vec<Fields>,
}

impl Compiler<'_> {
    fn named(&mut self, name: &str) -> Shape {
        if let Some(s) = self.named.get(name) {
            return s.clone();
        }
        let Some(def) = self.defs.get(name) else {
            return Shape::Any;
        };
        if let Some(props) = struct_properties(def) {
            // Registered before its fields, so recursive types end.
            let id = self.types.len();
            self.types.push(Fields::default());
            self.named.insert(name.to_string(), Shape::Struct(id));
            let fields = props
                .iter()
                .map(|(k, s)| (k.as_str().into(), self.shape(s)))
                .collect();
            self.types[id] = fields;
            Shape::Struct(id)
        } else {
            self.named.insert(name.to_string(), Shape::Any);
            let s = self.shape(def);
            self.named.insert(name.to_string(), s.clone());
            s
        }
    }

    fn shape(&mut self, schema: &Value) -> Shape {
        let Some(o) = schema.as_object() else {
            return Shape::Any;
        };
        if let Some(r) = o.field("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            return self.named(name);
        }
        if let Some(Value::Array(all)) = o.field("allOf") {
            if all.len() == 1 {
                return self.shape(&all[0]);
            }
            return Shape::Any;
        }
        if o.field("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
            return Shape::Any;
        }
        if let Some(props) = struct_properties(schema) {
            let id = self.types.len();
            self.types.push(Fields::default());
            let fields = props
                .iter()
                .map(|(k, s)| (k.as_str().into(), self.shape(s)))
                .collect();
            self.types[id] = fields;
            return Shape::Struct(id);
        }
        match o.field("type").and_then(Value::as_str) {
            Some("array") => match o.field("items").map(|i| self.shape(i)) {
                Some(s) if !s.is_any() => Shape::List(Box::new(s)),
                _ => Shape::Any,
            },
            Some("object") => match o.field("additionalProperties") {
                Some(ap @ Value::Object(_)) => match self.shape(ap) {
                    Shape::Any => Shape::Any,
                    s => Shape::Map(Box::new(s)),
                },
                _ => Shape::Any,
            },
            _ => Shape::Any,
        }
    }
}

/// The declared properties of a struct schema.
fn struct_properties(schema: &Value) -> Option<&Map<String, Value>> {
    let o = schema.as_object()?;
    if o.field("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return None;
    }
    o.field("properties")?.as_object().filter(|p| !p.is_empty())
}

impl Shapes {
    /// Compiles the schemas of every kind [`crate::openapi`] describes.
    fn compile() -> Shapes {
        let started = std::time::Instant::now();
        let mut generator: SchemaGenerator = SchemaSettings::openapi3().into_generator();
        for k in crate::openapi::KINDS {
            (k.generate)(&mut generator);
        }
        let defs = generator.take_definitions(true);
        let mut c = Compiler {
            defs: &defs,
            named: HashMap::new(),
            types: Vec::new(),
        };
        let mut kinds = HashMap::new();
        for k in crate::openapi::KINDS {
            let s = c.named(&(k.name)());
            kinds.insert((k.group, k.version, k.kind), s);
        }
        let types = c.types;
        tracing::debug!(
            kinds = kinds.len(),
            types = types.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled field validation schemas"
        );
        Shapes { types, kinds }
    }

    /// The shapes, compiled on first use.
    pub(crate) fn get() -> &'static Shapes {
        static SHAPES: OnceLock<Shapes> = OnceLock::new();
        SHAPES.get_or_init(Shapes::compile)
    }

    /// Whether kind `group/version, kind` has a schema.
    pub(crate) fn has(&self, group: &str, version: &str, kind: &str) -> bool {
        self.kinds.contains_key(&(group, version, kind))
    }

    /// The fields of `obj` that kind `group/version, kind` does not declare, in document order
    /// (outermost first); `None` for a kind without a schema.
    pub(crate) fn unknown_fields(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        obj: &Value,
    ) -> Option<Vec<FieldPath>> {
        let shape = self.kinds.get(&(group, version, kind))?;
        let mut out = Vec::new();
        let mut path = Vec::new();
        self.walk(shape, obj, &mut path, &mut out);
        Some(out)
    }

    fn walk<'a>(
        &self,
        shape: &Shape,
        v: &'a Value,
        path: &mut Vec<Seg<'a>>,
        out: &mut Vec<FieldPath>,
    ) {
        match (shape, v) {
            (Shape::Struct(id), Value::Object(o)) => {
                let fields = &self.types[*id];
                for (k, child) in o {
                    match fields.get(k.as_str()) {
                        Some(Shape::Any) => {}
                        Some(s) => {
                            path.push(Seg::Key(k));
                            self.walk(s, child, path, out);
                            path.pop();
                        }
                        None => {
                            path.push(Seg::Key(k));
                            out.push(owned(path));
                            path.pop();
                        }
                    }
                }
            }
            (Shape::List(s), Value::Array(a)) => {
                for (i, child) in a.iter().enumerate() {
                    path.push(Seg::Index(i));
                    self.walk(s, child, path, out);
                    path.pop();
                }
            }
            (Shape::Map(s), Value::Object(o)) => {
                for (k, child) in o {
                    path.push(Seg::Key(k));
                    self.walk(s, child, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
}

/// A path segment borrowed from the object being walked.
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn owned(path: &[Seg<'_>]) -> FieldPath {
    FieldPath(
        path.iter()
            .map(|s| match s {
                Seg::Key(k) => Segment::Key((*k).to_string()),
                Seg::Index(i) => Segment::Index(*i),
            })
            .collect(),
    )
}

/// Removes the field at `path` from `obj` (keeping the order of the others).
pub(crate) fn remove(obj: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.0.split_last() else {
        return;
    };
    let mut cur = obj;
    for s in parents {
        let next = match (s, cur) {
            (Segment::Key(k), Value::Object(o)) => o.get_mut(k),
            (Segment::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let (Segment::Key(k), Value::Object(o)) = (last, cur) {
        o.shift_remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unknown(group: &str, version: &str, kind: &str, obj: &Value) -> Vec<String> {
        Shapes::get()
            .unknown_fields(group, version, kind, obj)
            .expect("kind known")
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn finds_unknown_fields_of_deployments() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"a": "b"}, "bogus": 1,
                         "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicass": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [
                                      {"name": "a", "image": "x", "ports": [{"containerPort": 80, "port": 1}],
                                       "resources": {"limits": {"cpu": "1"}}},
                                      {"name": "b", "image": "y", "bar": {"x": 1}}
                                  ]}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}},
            "status": {"replicas": 1, "nope": true}
        });
        assert_eq!(
            unknown("apps", "v1", "Deployment", &d),
            vec![
                "metadata.bogus",
                "spec.replicass",
                "spec.template.spec.containers[0].ports[0].port",
                "spec.template.spec.containers[1].bar",
                "status.nope"
            ]
        );
    }

    #[test]
    fn maps_of_structs_and_opaque_values() {
        // ResourceQuota's hard is a map of quantities; ConfigMap data a map of strings;
        // ControllerRevision's data is a RawExtension.
        let cm = json!({"metadata": {"name": "c"}, "data": {"anything": "v"}, "binaryData": {}});
        assert!(unknown("", "v1", "ConfigMap", &cm).is_empty());
        let cr = json!({"metadata": {"name": "r"}, "revision": 1, "data": {"whatever": {"x": 1}}});
        assert!(unknown("apps", "v1", "ControllerRevision", &cr).is_empty());
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": "http", "nodePortt": 1}]}});
        assert_eq!(
            unknown("", "v1", "Service", &svc),
            vec!["spec.ports[0].nodePortt"]
        );
        assert!(Shapes::get()
            .unknown_fields("example.com", "v1", "Foo", &svc)
            .is_none());
    }

    #[test]
    fn custom_resource_definitions_keep_their_schemas() {
        // JSONSchemaProps is recursive and names fields `$ref`, `x-kubernetes-…`; `default`
        // and `example` are free-form JSON.
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true,
                        "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                        "additionalPrinterColumns": [{"name": "Color", "type": "string", "jsonPath": ".spec.color"}],
                        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                     "required": ["color"],
                                     "properties": {"color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                                                    "size": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                                                    "items": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer", "example": 1}}}}},
                                     "x-kubernetes-validations": [{"rule": "self.color != ''", "message": "m"}]}}}}}],
                     "conversion": {"strategy": "None"}}
        });
        assert!(unknown(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            &crd
        )
        .is_empty());
        let mut bad = crd.clone();
        bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["typo"] =
            json!(1);
        assert_eq!(
            unknown(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                &bad
            ),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties.spec.typo"]
        );
    }

    #[test]
    fn remove_keeps_order() {
        let mut v = json!({"a": 1, "spec": {"x": 1, "bad": 2, "y": [{"z": 1, "bad": 3}]}, "b": 2});
        remove(
            &mut v,
            &FieldPath(vec![
                Segment::Key("spec".into()),
                Segment::Key("bad".into()),
            ]),
        );
        remove(
            &mut v,
            &FieldPath(vec![
                Segment::Key("spec".into()),
                Segment::Key("y".into()),
                Segment::Index(0),
                Segment::Key("bad".into()),
            ]),
        );
        assert_eq!(
            v.to_string(),
            r#"{"a":1,"spec":{"x":1,"y":[{"z":1}]},"b":2}"#
        );
    }
}
