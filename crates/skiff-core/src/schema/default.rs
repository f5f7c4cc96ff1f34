//! Defaulting from a structural schema, as upstream's `structuraldefaulting.Default` and
//! `PruneNonNullableNullsWithoutDefaults`: a property that is absent (or null where the schema
//! does not allow null) takes a copy of its `default`; a null without a default in a
//! non-nullable property is dropped. Defaults are applied top-down, so a defaulted object gets
//! the defaults of its own properties too. Runs on every write and on every read.

use serde_json::Value;

use super::flag;

/// Fills in `obj`'s defaults from `schema`.
pub fn default(schema: &Value, obj: &mut Value) {
    walk(schema, obj, true);
}

fn walk(s: &Value, v: &mut Value, root: bool) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = s.get("properties") {
                for (k, p) in props {
                    if root && k == "metadata" {
                        continue;
                    }
                    let missing = match m.get(k) {
                        None => true,
                        Some(Value::Null) => !flag(p, "nullable"),
                        Some(_) => false,
                    };
                    if !missing {
                        continue;
                    }
                    match p.get("default") {
                        Some(d) => {
                            m.insert(k.clone(), d.clone());
                        }
                        None => {
                            if m.get(k).is_some_and(Value::is_null) {
                                m.remove(k);
                            }
                        }
                    }
                }
            }
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m.iter_mut() {
                if root && k == "metadata" {
                    continue;
                }
                let sub = s.get("properties").and_then(|p| p.get(k)).or(additional);
                if let Some(sub) = sub {
                    walk(sub, child, false);
                }
            }
            if let Some(a) = additional {
                // Nulls in maps follow the value schema.
                if !flag(a, "nullable") && a.get("default").is_none() {
                    m.retain(|_, v| !v.is_null());
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for item in items.iter_mut() {
                    if item.is_null() {
                        if let Some(d) = item_schema.get("default") {
                            *item = d.clone();
                        }
                    }
                    walk(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}
