//! Object metadata helpers on JSON objects: names, namespaces, labels, timestamps, and the
//! canonical key order (upstream's Go struct order) that stored objects are written in.

use serde_json::{Map, Value};

/// `metadata.name`, or "".
pub fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.namespace`, or "".
pub fn namespace(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.resourceVersion`, or "".
pub fn resource_version(obj: &Value) -> &str {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.uid`, or "".
pub fn uid(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.labels` as (key, value) pairs.
pub fn labels(obj: &Value) -> impl Iterator<Item = (&str, &str)> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
        })
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// True when `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The `metadata` object, created if missing. Panics if `obj` is not an object.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let o = obj.as_object_mut().expect("object");
    o.entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let m = o.get_mut("metadata").unwrap();
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().unwrap()
}

/// The current time as upstream writes `metav1.Time`: RFC 3339, seconds, UTC.
pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

/// A timestamp as `2006-01-02T15:04:05Z`.
pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a `metav1.Time` (or MicroTime).
pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// A fresh random UID.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Upstream's `ObjectMeta` field order.
const META_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Rewrites `obj` in upstream's key order: `kind`, `apiVersion`, `metadata` (in `ObjectMeta`
/// order), then the rest as given, `status` last. Stored objects are kept in this order so that
/// [`inject_resource_version`] can find `metadata.resourceVersion` without parsing.
pub fn canonicalize(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    let mut out = Map::with_capacity(o.len());
    for k in ["kind", "apiVersion"] {
        if let Some(v) = o.remove(k) {
            out.insert(k.to_string(), v);
        }
    }
    if let Some(Value::Object(mut m)) = o.remove("metadata") {
        let mut mo = Map::with_capacity(m.len());
        for k in META_ORDER {
            if let Some(v) = m.remove(*k) {
                mo.insert((*k).to_string(), v);
            }
        }
        for (k, v) in m {
            mo.insert(k, v);
        }
        out.insert("metadata".into(), Value::Object(mo));
    }
    let status = o.remove("status");
    for (k, v) in std::mem::take(o) {
        out.insert(k, v);
    }
    if let Some(st) = status {
        out.insert("status".into(), st);
    }
    *o = out;
}

/// Sets `metadata.resourceVersion` inside canonical JSON bytes without parsing them: the first
/// `"resourceVersion":"…"` of a canonical object is the metadata's, since only kind,
/// apiVersion and quote-free metadata strings (name, generateName, namespace, uid) precede it.
/// Inserts the field after `"metadata":{` when it is absent.
pub fn inject_resource_version(bytes: &[u8], rv: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 24);
    inject_resource_version_into(bytes, rv, &mut out);
    out
}

/// [`inject_resource_version`] appending to `out`.
pub fn inject_resource_version_into(bytes: &[u8], rv: i64, out: &mut Vec<u8>) {
    const NEEDLE: &[u8] = b"\"resourceVersion\":\"";
    // Look only before the end of metadata's scalar fields; in canonical order the field can
    // only be in the first few hundred bytes, after at most five short strings.
    let meta = find(bytes, b"\"metadata\":{");
    if let Some(m) = meta {
        let start = m + b"\"metadata\":{".len();
        if let Some(p) = find(&bytes[start..], NEEDLE).map(|p| p + start) {
            // Check nothing but scalar metadata precedes it: no nested object opened.
            if !bytes[start..p].contains(&b'{') {
                let vstart = p + NEEDLE.len();
                if let Some(len) = bytes[vstart..].iter().position(|&b| b == b'"') {
                    out.extend_from_slice(&bytes[..vstart]);
                    out.extend_from_slice(rv.to_string().as_bytes());
                    out.extend_from_slice(&bytes[vstart + len..]);
                    return;
                }
            }
        }
        // Absent: insert after the scalar fields that precede it in canonical order.
        let mut at = start;
        for k in ["name", "generateName", "namespace", "selfLink", "uid"] {
            let key = format!("\"{k}\":\"");
            if bytes[at..].starts_with(key.as_bytes()) {
                let vs = at + key.len();
                if let Some(len) = bytes[vs..].iter().position(|&b| b == b'"') {
                    at = vs + len + 1;
                    if bytes.get(at) == Some(&b',') {
                        at += 1;
                    }
                }
            }
        }
        let empty = bytes.get(at) == Some(&b'}');
        let needs_comma_before = at > start && bytes[at - 1] != b',';
        out.extend_from_slice(&bytes[..at]);
        if needs_comma_before {
            out.push(b',');
        }
        out.extend_from_slice(NEEDLE);
        out.extend_from_slice(rv.to_string().as_bytes());
        out.push(b'"');
        if !empty && !needs_comma_before {
            out.push(b',');
        }
        out.extend_from_slice(&bytes[at..]);
        return;
    }
    out.extend_from_slice(bytes);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(v: Value, rv: i64) -> Value {
        let mut v = v;
        canonicalize(&mut v);
        let b = serde_json::to_vec(&v).unwrap();
        serde_json::from_slice(&inject_resource_version(&b, rv)).unwrap()
    }

    #[test]
    fn canonical_order() {
        let mut v = json!({"spec":{},"metadata":{"labels":{},"name":"a","uid":"u"},"apiVersion":"v1","kind":"Pod"});
        canonicalize(&mut v);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","uid":"u","labels":{}},"spec":{}}"#
        );
    }

    #[test]
    fn injects_over_existing_and_absent() {
        let v = roundtrip(
            json!({"kind":"Pod","metadata":{"name":"a","resourceVersion":"5","labels":{"resourceVersion":"x"}}}),
            42,
        );
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert_eq!(v["metadata"]["labels"]["resourceVersion"], "x");
        let v = roundtrip(
            json!({"kind":"Pod","metadata":{"name":"a","namespace":"d","uid":"u","labels":{"a":"b"}}}),
            7,
        );
        assert_eq!(v["metadata"]["resourceVersion"], "7");
        assert_eq!(v["metadata"]["labels"]["a"], "b");
        let v = roundtrip(json!({"kind":"Pod","metadata":{}}), 9);
        assert_eq!(v["metadata"]["resourceVersion"], "9");
        let v = roundtrip(
            json!({"kind":"Pod","metadata":{"annotations":{"resourceVersion":"1"}}}),
            3,
        );
        assert_eq!(v["metadata"]["resourceVersion"], "3");
        assert_eq!(v["metadata"]["annotations"]["resourceVersion"], "1");
        let v = roundtrip(json!({"kind":"Pod","metadata":{"name":"n"}}), 4);
        assert_eq!(v["metadata"], json!({"name":"n","resourceVersion":"4"}));
    }

    #[test]
    fn time_format() {
        let t: jiff::Timestamp = "2024-05-06T07:08:09.123Z".parse().unwrap();
        assert_eq!(format_time(t), "2024-05-06T07:08:09Z");
    }
}
