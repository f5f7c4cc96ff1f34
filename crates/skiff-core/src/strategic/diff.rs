//! Computing a two-way strategic merge patch, as upstream's
//! `strategicpatch.CreateTwoWayMergePatch` does for kubectl (`diffMaps`, `diffLists`, with
//! `SetElementOrder` on): added and changed fields, `null` for removed keys, `$patch: delete`
//! items after the changed ones for merge lists of maps, a parallel
//! `$deleteFromPrimitiveList/<field>` for merge lists of primitives, `$setElementOrder/<field>`
//! whenever a merge list's content or order changed, `$retainKeys` on `retainKeys` fields, and
//! `replace` maps sent whole.

use serde_json::{Map, Value};

use super::merge::{element_kind, ident, KIND_MAP};
use super::schema::{FieldMeta, Schema, Strategy};
use super::{
    PatchError, Path, DELETE_FROM_PRIMITIVE_LIST, DIRECTIVE_MARKER, RETAIN_KEYS, SET_ELEMENT_ORDER,
};

pub(crate) fn diff_maps(
    orig: &Map<String, Value>,
    modified: &Map<String, Value>,
    schema: Schema,
    build_retain_keys: bool,
    path: Path,
) -> Result<Map<String, Value>, PatchError> {
    let mut patch = Map::new();
    let mut retain = Vec::new();
    for (k, mv) in modified {
        if build_retain_keys && !mv.is_null() {
            retain.push(k.clone());
        }
        let Some(ov) = orig.get(k) else {
            patch.insert(k.clone(), mv.clone());
            continue;
        };
        let (meta, sub) = schema.field(k);
        let p = path.child(k);
        match (ov, mv) {
            (Value::Object(o), Value::Object(m)) => {
                if meta.strategy == Strategy::Replace {
                    patch.insert(k.clone(), mv.clone());
                } else {
                    let d = diff_maps(o, m, sub, meta.retain_keys, p)?;
                    if !d.is_empty() {
                        patch.insert(k.clone(), Value::Object(d));
                    }
                }
            }
            (Value::Array(o), Value::Array(m)) if meta.is_merge() => {
                let (add, del, order) = diff_lists(o, m, meta, sub, p)?;
                if !add.is_empty() {
                    patch.insert(k.clone(), Value::Array(add));
                }
                if !del.is_empty() {
                    patch.insert(
                        format!("{DELETE_FROM_PRIMITIVE_LIST}/{k}"),
                        Value::Array(del),
                    );
                }
                if !order.is_empty() {
                    patch.insert(format!("{SET_ELEMENT_ORDER}/{k}"), Value::Array(order));
                }
            }
            _ => {
                if ov != mv {
                    patch.insert(k.clone(), mv.clone());
                }
            }
        }
    }
    for k in orig.keys() {
        if !modified.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    let has_additional = orig
        .iter()
        .any(|(k, v)| !v.is_null() && !modified.contains_key(k));
    if !retain.is_empty() && (!patch.is_empty() || has_additional) {
        retain.sort();
        patch.insert(
            RETAIN_KEYS.to_string(),
            Value::Array(retain.into_iter().map(Value::String).collect()),
        );
    }
    Ok(patch)
}

/// How `fmt.Sprintf("%v")` shows a scalar, which is how upstream sorts scalars and merge keys.
fn sort_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The patch list, the parallel deletion list and the `$setElementOrder` list of a merge list.
type ListDiff = (Vec<Value>, Vec<Value>, Vec<Value>);

fn diff_lists(
    orig: &[Value],
    modified: &[Value],
    meta: FieldMeta,
    sub: Schema,
    path: Path,
) -> Result<ListDiff, PatchError> {
    if orig.is_empty() {
        return Ok((modified.to_vec(), Vec::new(), Vec::new()));
    }
    if element_kind(orig, modified, path)? != KIND_MAP {
        let add: Vec<Value> = modified
            .iter()
            .filter(|v| !orig.contains(v))
            .cloned()
            .collect();
        let mut del: Vec<Value> = Vec::new();
        for v in orig {
            if !modified.contains(v) && !del.contains(v) {
                del.push(v.clone());
            }
        }
        del.sort_by_key(sort_text);
        let order = if !del.is_empty() || orig != modified {
            modified.to_vec()
        } else {
            Vec::new()
        };
        return Ok((add, del, order));
    }

    let Some(key) = meta.merge_key() else {
        return Err(PatchError::ListOfMapsWithoutMergeKey {
            path: path.to_string(),
        });
    };
    let key_of = |v: &Value| -> Result<Value, PatchError> {
        ident(v, Some(key)).cloned().ok_or(PatchError::NoMergeKey {
            path: path.to_string(),
            key,
        })
    };
    let mut patch = Vec::new();
    for m in modified {
        let mk = key_of(m)?;
        match orig.iter().find(|o| o.get(key) == Some(&mk)) {
            Some(o) => {
                let (Value::Object(o), Value::Object(mm)) = (o, m) else {
                    unreachable!("element_kind checked that every item is a map")
                };
                let mut d = diff_maps(o, mm, sub, meta.retain_keys, path)?;
                if !d.is_empty() {
                    d.insert(key.to_string(), mk);
                    patch.push(Value::Object(d));
                }
            }
            None => patch.push(m.clone()),
        }
    }
    let mut deletions = Vec::new();
    for o in orig {
        let ok = key_of(o)?;
        if !modified.iter().any(|m| m.get(key) == Some(&ok)) {
            deletions.push(ok);
        }
    }
    deletions.sort_by_key(sort_text);
    let order_same = orig.len() == modified.len()
        && orig
            .iter()
            .zip(modified)
            .all(|(o, m)| o.get(key) == m.get(key));
    patch.extend(deletions.into_iter().map(|kv| {
        let mut d = Map::new();
        d.insert(key.to_string(), kv);
        d.insert(DIRECTIVE_MARKER.to_string(), Value::String("delete".into()));
        Value::Object(d)
    }));
    let order = if !patch.is_empty() || !order_same {
        modified
            .iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert(key.to_string(), m.get(key).cloned().unwrap_or(Value::Null));
                Value::Object(o)
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok((patch, Vec::new(), order))
}
