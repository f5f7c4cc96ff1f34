//! Applying a strategic merge patch, following upstream's `strategicpatch.mergeMap` with the
//! API server's options (`MergeParallelList`, `IgnoreUnmatchedNulls`): `$patch` first, then
//! `$retainKeys`, then each `$setElementOrder/<field>` with its list, then the other fields,
//! then `$deleteFromPrimitiveList/<field>`.
//!
//! Merged lists are ordered as upstream orders them: items named in the patch (or in
//! `$setElementOrder`) in that order, with items only on the server slotted in by their
//! position in the live list. Items new to the list therefore come before the server-only
//! items that follow them, unless `$setElementOrder` says otherwise.
//!
//! One deliberate difference: a value that is new to the object (absent from the original, or
//! of another type) is merged into an empty value, so directives inside it are interpreted and
//! nulls dropped; upstream copies such values with only `$patch` maps removed.

use serde_json::{Map, Value};

use super::schema::{FieldMeta, Schema, Strategy};
use super::{
    type_name, PatchError, Path, DELETE_FROM_PRIMITIVE_LIST, DIRECTIVE_MARKER, RETAIN_KEYS,
    SET_ELEMENT_ORDER,
};

/// A key of a patch map: a directive naming a field, or a field.
enum Key<'a> {
    SetElementOrder(&'a str),
    DeleteFromPrimitiveList(&'a str),
    Field,
}

fn classify<'a>(key: &'a str, path: Path) -> Result<Key<'a>, PatchError> {
    if let Some(rest) = key.strip_prefix(SET_ELEMENT_ORDER) {
        return match rest.strip_prefix('/') {
            Some(field) => Ok(Key::SetElementOrder(field)),
            None => Err(PatchError::SetElementOrder {
                path: path.to_string(),
                reason: format!("{key:?} does not name a field"),
            }),
        };
    }
    if let Some(rest) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
        return match rest.strip_prefix('/') {
            Some(field) => Ok(Key::DeleteFromPrimitiveList(field)),
            None => Err(PatchError::PrimitiveList {
                path: path.to_string(),
                reason: "the directive does not name a field",
            }),
        };
    }
    Ok(Key::Field)
}

/// Merges patch map `patch` into `orig`.
pub(crate) fn merge_map(
    orig: &mut Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Schema,
    path: Path,
) -> Result<(), PatchError> {
    if let Some(d) = patch.remove(DIRECTIVE_MARKER) {
        match d.as_str() {
            Some("replace") => {
                *orig = Map::new();
                return merge_map(orig, patch, schema, path);
            }
            Some("delete") => {
                orig.clear();
                return Ok(());
            }
            Some("merge") => {}
            _ => {
                return Err(PatchError::UnknownDirective {
                    path: path.to_string(),
                    directive: directive_text(&d),
                })
            }
        }
    }

    if let Some(rk) = patch.remove(RETAIN_KEYS) {
        retain_keys(orig, &patch, rk, path)?;
    }

    let mut set_orders = Vec::new();
    let mut deletes = Vec::new();
    for (k, v) in std::mem::take(&mut patch) {
        match classify(&k, path)? {
            Key::SetElementOrder(f) => set_orders.push((f.to_string(), v)),
            Key::DeleteFromPrimitiveList(f) => deletes.push((f.to_string(), v)),
            Key::Field => {
                patch.insert(k, v);
            }
        }
    }

    for (field, order) in set_orders {
        set_element_order(orig, &mut patch, &field, order, schema, path)?;
    }

    for (k, v) in patch {
        merge_field(orig, k, v, schema, path)?;
    }

    for (field, v) in deletes {
        let p = path.child(&field);
        let Value::Array(del) = v else {
            return Err(PatchError::PrimitiveList {
                path: p.to_string(),
                reason: "the values to delete must be a list",
            });
        };
        if let Some(Value::Array(list)) = orig.get_mut(&field) {
            if !list.is_empty() && !del.is_empty() {
                element_kind(list, &del, p)?;
            }
            list.retain(|x| !del.contains(x));
        }
    }
    Ok(())
}

fn directive_text(d: &Value) -> String {
    match d {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `$retainKeys`: every field the patch sets must be listed, and fields of the original not
/// listed are cleared.
fn retain_keys(
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    rk: Value,
    path: Path,
) -> Result<(), PatchError> {
    let Value::Array(keep) = rk else {
        return Err(PatchError::RetainKeys {
            path: path.to_string(),
            reason: "the directive must be a list of field names",
        });
    };
    let listed = |k: &str| keep.iter().any(|x| x.as_str() == Some(k));
    for (k, v) in patch {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(PatchError::RetainKeys {
                path: path.to_string(),
                reason: "the patch sets a field not listed in $retainKeys",
            });
        }
    }
    orig.retain(|k, _| listed(k));
    Ok(())
}

/// Merges one field of a patch map into `orig`.
fn merge_field(
    orig: &mut Map<String, Value>,
    key: String,
    pv: Value,
    schema: Schema,
    path: Path,
) -> Result<(), PatchError> {
    if pv.is_null() {
        orig.remove(&key);
        return Ok(());
    }
    let (meta, sub) = schema.field(&key);
    let p = path.child(&key);
    match (orig.get_mut(&key), pv) {
        (Some(Value::Object(om)), Value::Object(pm)) if meta.strategy != Strategy::Replace => {
            merge_map(om, pm, sub, p)?;
        }
        (Some(Value::Array(ol)), Value::Array(pl)) if meta.is_merge() => {
            let merged = merge_list(std::mem::take(ol), pl, meta, sub, p)?;
            *ol = merged;
        }
        (_, pv) => match fresh(pv, meta, sub, p)? {
            Some(v) => {
                orig.insert(key, v);
            }
            None => {
                orig.remove(&key);
            }
        },
    }
    Ok(())
}

/// A patch value taken as a whole (new to the object, or replacing a scalar, an atomic list or
/// a `replace` map): directives are applied against an empty value and nulls dropped. `None`
/// when the value is a `$patch: delete` map.
fn fresh(pv: Value, meta: FieldMeta, sub: Schema, path: Path) -> Result<Option<Value>, PatchError> {
    Ok(match pv {
        Value::Object(m) => {
            if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete") {
                return Ok(None);
            }
            let mut out = Map::new();
            merge_map(&mut out, m, sub, path)?;
            Some(Value::Object(out))
        }
        Value::Array(l) => Some(Value::Array(fresh_list(l, meta, sub, path)?)),
        Value::Null => None,
        other => Some(other),
    })
}

fn fresh_list(
    l: Vec<Value>,
    meta: FieldMeta,
    sub: Schema,
    path: Path,
) -> Result<Vec<Value>, PatchError> {
    if meta.is_merge() {
        return merge_list(Vec::new(), l, meta, sub, path);
    }
    let mut out = Vec::with_capacity(l.len());
    for item in l {
        match item {
            Value::Null => out.push(Value::Null),
            item => {
                if let Some(v) = fresh(item, FieldMeta::DEFAULT, sub, path)? {
                    out.push(v);
                }
            }
        }
    }
    Ok(out)
}

/// The JSON type shared by every item of the lists, checked as upstream's `sliceElementType`.
pub(crate) fn element_kind(a: &[Value], b: &[Value], path: Path) -> Result<u8, PatchError> {
    let kind = |v: &Value| match v {
        Value::Null => 0u8,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    let mut it = a.iter().chain(b);
    let Some(first) = it.next() else {
        return Ok(0);
    };
    let k = kind(first);
    if k == 4 {
        return Err(PatchError::ListOfLists {
            path: path.to_string(),
        });
    }
    if it.any(|v| kind(v) != k) {
        return Err(PatchError::MixedList {
            path: path.to_string(),
        });
    }
    Ok(k)
}

pub(crate) const KIND_MAP: u8 = 5;

/// What identifies a list item: its merge key's value, or the item itself for primitives.
pub(crate) fn ident<'v>(v: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match key {
        Some(k) => v.get(k),
        None => Some(v),
    }
}

/// Merges a patch list into a `patchStrategy:"merge"` list (upstream's `mergeSlice`).
fn merge_list(
    orig: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
    sub: Schema,
    path: Path,
) -> Result<Vec<Value>, PatchError> {
    if orig.is_empty() && patch.is_empty() {
        return Ok(orig);
    }
    if element_kind(&orig, &patch, path)? != KIND_MAP {
        let mut merged: Vec<Value> = Vec::with_capacity(orig.len() + patch.len());
        for v in orig.iter().chain(&patch) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only) = merged.into_iter().partition(|v| patch.contains(v));
        return Ok(normalize(in_patch, server_only, &patch, &orig, None));
    }
    let Some(key) = meta.merge_key() else {
        return Err(PatchError::ListOfMapsWithoutMergeKey {
            path: path.to_string(),
        });
    };

    let mut orig = orig;
    let mut items = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(mut m) = item else {
            unreachable!("element_kind checked that every item is a map")
        };
        let Some(d) = m.remove(DIRECTIVE_MARKER) else {
            items.push(m);
            continue;
        };
        match d.as_str() {
            Some("delete") => {
                let Some(kv) = m.get(key) else {
                    return Err(PatchError::NoMergeKey {
                        path: path.to_string(),
                        key,
                    });
                };
                orig.retain(|o| o.get(key) != Some(kv));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                if !m.is_empty() {
                    items.push(m);
                }
            }
            _ => {
                return Err(PatchError::UnknownDirective {
                    path: path.to_string(),
                    directive: directive_text(&d),
                })
            }
        }
    }
    if replace {
        let mut out = Vec::with_capacity(items.len());
        for m in items {
            let mut v = Map::new();
            merge_map(&mut v, m, sub, path)?;
            out.push(Value::Object(v));
        }
        return Ok(out);
    }

    let server_order: Vec<Value> = orig.iter().filter_map(|o| o.get(key).cloned()).collect();
    let mut patch_order = Vec::with_capacity(items.len());
    let mut merged = orig;
    for m in items {
        let Some(kv) = m.get(key).cloned() else {
            return Err(PatchError::NoMergeKey {
                path: path.to_string(),
                key,
            });
        };
        match merged.iter_mut().find(|o| o.get(key) == Some(&kv)) {
            Some(Value::Object(om)) => merge_map(om, m, sub, path)?,
            _ => {
                let mut v = Map::new();
                merge_map(&mut v, m, sub, path)?;
                merged.push(Value::Object(v));
            }
        }
        patch_order.push(kv);
    }
    let (in_patch, server_only) = merged
        .into_iter()
        .partition(|v| v.get(key).is_some_and(|kv| patch_order.contains(kv)));
    Ok(normalize(
        in_patch,
        server_only,
        &patch_order,
        &server_order,
        Some(key),
    ))
}

/// `$setElementOrder/<field>`: merges the field's patch list (if any) and orders the result as
/// the directive lists it, server-only items slotted in by their live position.
fn set_element_order(
    orig: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    field: &str,
    order: Value,
    schema: Schema,
    path: Path,
) -> Result<(), PatchError> {
    let p = path.child(field);
    let Value::Array(order) = order else {
        return Err(PatchError::SetElementOrder {
            path: p.to_string(),
            reason: "the directive must be a list".into(),
        });
    };
    let (meta, sub) = schema.field(field);
    let orig_list = match orig.get_mut(field) {
        Some(Value::Array(l)) => Some(std::mem::take(l)),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(PatchError::BadType {
                path: p.to_string(),
                expected: "list",
                actual: type_name(other),
            })
        }
    };
    let patch_list = match patch.remove(field) {
        Some(Value::Array(l)) => Some(l),
        None => None,
        Some(other) => {
            if let Some(l) = orig_list {
                orig.insert(field.to_string(), Value::Array(l));
            }
            return Err(PatchError::BadType {
                path: p.to_string(),
                expected: "list",
                actual: type_name(&other),
            });
        }
    };
    let key = meta.merge_key();
    validate_order(patch_list.as_deref().unwrap_or(&[]), &order, key, p)?;
    if !meta.is_merge() {
        // Not a merge list: there is no order to set; the list (if sent) replaces as usual.
        if let Some(l) = orig_list {
            orig.insert(field.to_string(), Value::Array(l));
        }
        if let Some(l) = patch_list {
            merge_field(orig, field.to_string(), Value::Array(l), schema, path)?;
        }
        return Ok(());
    }
    let server_order: Vec<Value> = orig_list
        .iter()
        .flatten()
        .filter_map(|v| ident(v, key).cloned())
        .collect();
    let merged = match (orig_list, patch_list) {
        (Some(o), None) => o,
        (None, Some(pl)) => fresh_list(pl, meta, sub, p)?,
        (Some(o), Some(pl)) => merge_list(o, pl, meta, sub, p)?,
        (None, None) => return Ok(()),
    };
    let mut wanted = Vec::with_capacity(order.len());
    for o in &order {
        match ident(o, key) {
            Some(v) => wanted.push(v.clone()),
            None => {
                return Err(PatchError::NoMergeKey {
                    path: p.to_string(),
                    key: key.unwrap_or_default(),
                })
            }
        }
    }
    let (in_order, server_only) = merged
        .into_iter()
        .partition(|v| ident(v, key).is_some_and(|i| wanted.contains(i)));
    orig.insert(
        field.to_string(),
        Value::Array(normalize(
            in_order,
            server_only,
            &wanted,
            &server_order,
            key,
        )),
    );
    Ok(())
}

/// The patch list's items (deletions aside) must appear in the `$setElementOrder` list, in the
/// same relative order.
fn validate_order(
    patch: &[Value],
    order: &[Value],
    key: Option<&'static str>,
    path: Path,
) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let is_directive = |v: &Value| v.get(DIRECTIVE_MARKER).is_some();
    let items: Vec<&Value> = patch
        .iter()
        .filter(|v| {
            key.is_none() || v.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some("delete")
        })
        .collect();
    let (mut pi, mut si) = (0, 0);
    while pi < items.len() && si < order.len() {
        if is_directive(items[pi]) {
            pi += 1;
            continue;
        }
        let same = match key {
            None => items[pi] == &order[si],
            Some(k) => {
                let a = items[pi].get(k);
                let b = order[si].get(k);
                match (a, b) {
                    (Some(a), Some(b)) => a == b,
                    _ => {
                        return Err(PatchError::NoMergeKey {
                            path: path.to_string(),
                            key: k,
                        })
                    }
                }
            }
        };
        if same {
            pi += 1;
        }
        si += 1;
    }
    if pi < items.len() {
        return Err(PatchError::SetElementOrder {
            path: path.to_string(),
            reason: "the items of the patch list are not in the order, or not among the items, of the $setElementOrder list".into(),
        });
    }
    Ok(())
}

/// Upstream's `normalizeElementOrder`: `in_patch` sorted by `patch_order`, `server_only` by
/// `server_order`, then interleaved — a server-only item goes first only when both it and the
/// next patch item are in the live list and it comes before that item there.
fn normalize(
    mut in_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let pos =
        |order: &[Value], v: &Value| ident(v, key).and_then(|i| order.iter().position(|o| o == i));
    in_patch.sort_by_key(|v| pos(patch_order, v).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| pos(server_order, v).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(in_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = in_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (pos(server_order, l), pos(server_order, r)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}
