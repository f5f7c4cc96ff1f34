//! Decoding a typed object for the cache from a kept `Value`, without its
//! `metadata.managedFields`.
//!
//! No control loop reads managedFields, and they are often the larger part of a stored object
//! (a pod's after its first status write: two entries, a tree of `FieldsV1` each), so the
//! cache keeps objects without them, as upstream's control loops trim them from their
//! informers. Stored bytes have them cut out of the text before parsing
//! ([`skiff_core::meta::without_managed_fields`]). An object the API server kept decoded (for
//! its next write, or for the informers: [`skiff_apiserver::recent`]) is read instead through
//! a filter: the typed object's deserializer sees its top-level members and the members of
//! `metadata` through [`Members`], which passes every member but `metadata.managedFields`, and
//! that one is dropped without being read.

use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess};
use serde::de::{SeqAccess, Visitor};
use serde_json::Value;

/// `K` from `v`, without `metadata.managedFields`.
pub(crate) fn from_value_without_managed_fields<K: DeserializeOwned>(
    v: &Value,
) -> serde_json::Result<K> {
    K::deserialize(Filter::top(v))
}

/// Where a filtered map sits: the object itself, or its `metadata`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Object,
    Metadata,
}

/// A deserializer that hands the maps it reads (a struct is read as one) to the visitor
/// through [`Members`]; every other request goes to `inner` unchanged.
struct Filter<D> {
    inner: D,
    level: Level,
}

impl<D> Filter<D> {
    fn top(inner: D) -> Filter<D> {
        Filter {
            inner,
            level: Level::Object,
        }
    }
}

macro_rules! forward {
    ($($method:ident ( $($arg:ident : $ty:ty),* )),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.inner.$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Filter<D> {
    type Error = D::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner
            .deserialize_struct(name, fields, Maps { visitor, level })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_map(Maps { visitor, level })
    }

    /// Typed objects read their members as options (`metadata` among them).
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_option(Some_ { visitor, level })
    }

    forward! {
        deserialize_any(),
        deserialize_bool(),
        deserialize_i8(),
        deserialize_i16(),
        deserialize_i32(),
        deserialize_i64(),
        deserialize_i128(),
        deserialize_u8(),
        deserialize_u16(),
        deserialize_u32(),
        deserialize_u64(),
        deserialize_u128(),
        deserialize_f32(),
        deserialize_f64(),
        deserialize_char(),
        deserialize_str(),
        deserialize_string(),
        deserialize_bytes(),
        deserialize_byte_buf(),
        deserialize_unit(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_seq(),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(),
        deserialize_ignored_any(),
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// The visitor of a filtered struct or map: a map is handed on as [`Members`]; a sequence (a
/// struct may be written as an array) as it is.
struct Maps<V> {
    visitor: V,
    level: Level,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Maps<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(Members {
            inner: map,
            level: self.level,
            metadata_next: false,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_seq(seq)
    }
}

/// The visitor of a filtered option: what is there is read through a [`Filter`] again.
#[allow(non_camel_case_types)]
struct Some_<V> {
    visitor: V,
    level: Level,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Some_<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_some(Filter {
            inner: d,
            level: self.level,
        })
    }
}

/// The members of a filtered map: in `metadata`, all but `managedFields`; in the object, all,
/// with `metadata`'s value read through a [`Filter`] of its own.
struct Members<A> {
    inner: A,
    level: Level,
    /// The member whose value is read next is the object's `metadata`.
    metadata_next: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Members<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(name) = self.inner.next_key_seed(NameSeed)? else {
                return Ok(None);
            };
            match self.level {
                Level::Metadata if name.as_str() == "managedFields" => {
                    self.inner.next_value::<IgnoredAny>()?;
                    continue;
                }
                Level::Metadata => {}
                Level::Object => self.metadata_next = name.as_str() == "metadata",
            }
            return match name {
                Name::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s)),
                Name::Owned(s) => seed.deserialize(StringDeserializer::new(s)),
            }
            .map(Some);
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        if std::mem::take(&mut self.metadata_next) {
            self.inner.next_value_seed(MetadataSeed(seed))
        } else {
            self.inner.next_value_seed(seed)
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// A member's name: borrowed from the text when it has no escapes, as it mostly has.
enum Name<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Name<'_> {
    fn as_str(&self) -> &str {
        match self {
            Name::Borrowed(s) => s,
            Name::Owned(s) => s,
        }
    }
}

struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Name<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Name<'de>, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Name<'de>, E> {
        Ok(Name::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Name<'de>, E> {
        Ok(Name::Owned(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Name<'de>, E> {
        Ok(Name::Owned(s))
    }
}

/// Reads the object's `metadata` through a [`Filter`] that leaves out its managedFields.
struct MetadataSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for MetadataSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Filter {
            inner: d,
            level: Level::Metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use serde_json::json;

    /// What decoding without managedFields gives: decoding the object with them removed.
    fn without(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        v
    }

    #[test]
    fn managed_fields_are_left_out_and_nothing_else() {
        let entry = json!({"manager": "m", "operation": "Update", "apiVersion": "v1",
            "time": "2026-11-28T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:a\\\"]}": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}}}}}});
        let cases = [
            // Last member of metadata (canonical order), with look-alikes elsewhere.
            json!({
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {
                    "name": "p", "namespace": "n",
                    "labels": {"managedFields": "x"},
                    "annotations": {"a": "{\"managedFields\":[]}"},
                    "managedFields": [entry.clone(), entry.clone()],
                },
                "spec": {"containers": [{"name": "c", "image": "nginx",
                    "env": [{"name": "managedFields", "value": "kept"}]}]},
                "status": {"phase": "Running"}
            }),
            // First member, followed by others; metadata after spec.
            json!({"spec": {"containers": []},
                "metadata": {"managedFields": [entry.clone()], "name": "p"}}),
            // Only member; none at all.
            json!({"metadata": {"managedFields": [entry]}}),
            json!({"metadata": {"name": "p"}}),
        ];
        for v in cases {
            let got: Pod = from_value_without_managed_fields(&v).unwrap();
            let want: Pod = serde_json::from_value(without(&v)).unwrap();
            assert_eq!(got, want, "{v}");
            assert_eq!(got.metadata.managed_fields, None);
        }
        // A nested metadata (a pod template's) keeps what it has: only the object's own is
        // filtered. A ConfigMap's data may be named anything.
        let d = json!({"metadata": {"name": "d", "managedFields": [{"manager": "m"}]},
            "spec": {"selector": {}, "template": {"metadata": {"name": "t",
                "managedFields": [{"manager": "n"}]}}}});
        let got: Deployment = from_value_without_managed_fields(&d).unwrap();
        assert_eq!(
            got,
            serde_json::from_value::<Deployment>(without(&d)).unwrap()
        );
        let template = got.spec.unwrap().template.metadata.unwrap();
        assert_eq!(
            template.managed_fields.unwrap()[0].manager.as_deref(),
            Some("n")
        );
        let cm = json!({"metadata": {"name": "c", "managedFields": [{"manager": "m"}]},
            "data": {"metadata": "x", "managedFields": "y"}});
        let got: ConfigMap = from_value_without_managed_fields(&cm).unwrap();
        assert_eq!(
            got,
            serde_json::from_value::<ConfigMap>(without(&cm)).unwrap()
        );
    }

    #[test]
    fn errors_are_the_decoders() {
        for bad in [
            json!({"metadata": {"name": 1}}),
            json!({"metadata": {"managedFields": [{"manager": "m"}]}, "spec": 3}),
            json!([1]),
        ] {
            let got = from_value_without_managed_fields::<Pod>(&bad).map_err(|e| e.to_string());
            let want = serde_json::from_value::<Pod>(without(&bad)).map_err(|e| e.to_string());
            assert!(got.is_err(), "{bad}");
            assert_eq!(got, want);
        }
    }
}
