//! Pruning, as upstream's `structuralpruning.Prune`: fields the structural schema does not
//! specify are dropped, except under `x-kubernetes-preserve-unknown-fields: true`, and
//! `apiVersion`, `kind` and `metadata` at the root and in embedded resources. The dropped
//! paths are what `fieldValidation=Strict` reports as unknown fields.

use serde_json::Value;

use super::{child, flag, index};

/// Drops unknown fields from `obj`; returns their paths (`spec.foo`, `spec.items[0].bar`).
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    walk(schema, obj, "", true, &mut pruned);
    pruned
}

/// The paths [`prune`] would drop, without changing `obj`.
pub fn unknown_fields(schema: &Value, obj: &Value) -> Vec<String> {
    let mut copy = obj.clone();
    prune(schema, &mut copy)
}

fn walk(s: &Value, v: &mut Value, path: &str, resource: bool, pruned: &mut Vec<String>) {
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    match v {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = match s.get("additionalProperties") {
                Some(a @ Value::Object(_)) => Some(a),
                _ => None,
            };
            let allow_any = preserve || s.get("additionalProperties") == Some(&Value::Bool(true));
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if resource && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let sub = props.and_then(|p| p.get(&k)).or(additional);
                match sub {
                    Some(sub) => {
                        let embedded = flag(sub, "x-kubernetes-embedded-resource");
                        let c = m.get_mut(&k).expect("key");
                        walk(sub, c, &child(path, &k), embedded, pruned);
                    }
                    None if allow_any => {}
                    None => {
                        m.remove(&k);
                        pruned.push(child(path, &k));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                let embedded = flag(item_schema, "x-kubernetes-embedded-resource");
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item_schema, item, &index(path, i), embedded, pruned);
                }
            }
        }
        _ => {}
    }
}
