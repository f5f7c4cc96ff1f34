//! Walks of objects along the kind's schema: the field set of an object, the fields an update
//! changed or removed, the apply merge, and reading and removing the value at a path.
//!
//! Lists follow the strategic-merge-patch metadata ([`crate::strategic::schema`]): a list with
//! a `patchMergeKey` is a map keyed by it (`k:{"name":"web"}`), a merge list of primitives is a
//! set (`v:"x"`), every other list is atomic and owned as a whole. A keyed list whose items
//! lack the key, or repeat one, is treated as atomic too.

use crate::meta::Fields as _;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::fieldset::{key_element, value_element, Builder, FieldSet, PathElement};
use super::Scope;
use crate::strategic::schema::Schema;
use crate::strategic::{FieldMeta, Strategy};
use crate::Resource;

/// Metadata fields nobody owns (upstream's `stripMetaManager`).
const META_STRIPPED: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

/// Which fields of a map a walk looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    /// The top level of an object, for a write of `Scope`.
    Top(Scope),
    /// `metadata`.
    Meta,
    None,
}

impl Filter {
    pub(super) fn skips(self, key: &str) -> bool {
        match self {
            Filter::Top(scope) => {
                key == "apiVersion"
                    || key == "kind"
                    || match scope {
                        Scope::All => false,
                        Scope::Main => key == "status",
                        Scope::Status => key != "status" && key != "metadata",
                    }
            }
            Filter::Meta => META_STRIPPED.contains(&key),
            Filter::None => false,
        }
    }

    /// The filter of child `key`, and whether a map there is itself a member when added
    /// (structs at the top of an object are not, as upstream's typed objects).
    pub(super) fn child(self, key: &str) -> (Filter, bool) {
        match self {
            Filter::Top(_) if key == "metadata" => (Filter::Meta, false),
            Filter::Top(_) if key == "spec" || key == "status" => (Filter::None, false),
            _ => (Filter::None, true),
        }
    }
}

/// How a list value is merged and owned.
pub(crate) enum ListKind {
    /// By merge key; the elements of the items, in order.
    Keyed(Vec<PathElement>),
    /// A set of primitives; the elements of the items.
    Set(Vec<PathElement>),
    Atomic,
}

pub(crate) fn list_kind(meta: FieldMeta, items: &[Value]) -> ListKind {
    let elems: Option<Vec<PathElement>> = match meta.strategy {
        Strategy::Merge { key: Some(k) } => items.iter().map(|i| key_element(k, i)).collect(),
        Strategy::Merge { key: None } => items
            .iter()
            .map(|i| match i {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(value_element(i)),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    let Some(elems) = elems else {
        return ListKind::Atomic;
    };
    let unique = if elems.len() <= 16 {
        elems
            .iter()
            .enumerate()
            .all(|(i, e)| !elems[..i].contains(e))
    } else {
        let mut seen = HashSet::with_capacity(elems.len());
        elems.iter().all(|e| seen.insert(e))
    };
    if !unique {
        return ListKind::Atomic;
    }
    match meta.strategy {
        Strategy::Merge { key: Some(_) } => ListKind::Keyed(elems),
        _ => ListKind::Set(elems),
    }
}

/// Records the fields of object `obj` into `b`. With `added`, maps are members too (the
/// fields an update adds); otherwise only leaves and list items are (an applied
/// configuration).
pub(crate) fn object_fields<B: Builder>(
    b: &mut B,
    res: &Resource,
    obj: &Value,
    scope: Scope,
    added: bool,
) {
    if let Value::Object(m) = obj {
        map_fields(b, m, Schema::of(res), Filter::Top(scope), added);
    }
}

fn map_fields<B: Builder>(
    b: &mut B,
    m: &Map<String, Value>,
    schema: Schema,
    filter: Filter,
    added: bool,
) {
    for (k, v) in m {
        if v.is_null() || filter.skips(k) {
            continue;
        }
        let (meta, s) = schema.field(k);
        let (cf, member) = filter.child(k);
        let pe = PathElement::Field(k.clone());
        b.with_child(pe, |c| {
            value_fields(c, v, meta, s, cf, added, added && member)
        });
    }
}

fn value_fields<B: Builder>(
    b: &mut B,
    v: &Value,
    meta: FieldMeta,
    schema: Schema,
    filter: Filter,
    added: bool,
    member: bool,
) {
    match v {
        Value::Object(m) => {
            if member || m.is_empty() {
                b.mark();
            }
            b.expect_children(m.len());
            map_fields(b, m, schema, filter, added);
        }
        Value::Array(items) => match list_kind(meta, items) {
            _ if items.is_empty() => b.mark(),
            ListKind::Atomic => b.mark(),
            ListKind::Keyed(elems) => {
                for (item, pe) in items.iter().zip(elems) {
                    b.with_child(pe, |c| {
                        c.mark();
                        if let Value::Object(im) = item {
                            c.expect_children(im.len());
                            map_fields(c, im, schema, Filter::None, added);
                        }
                    });
                }
            }
            ListKind::Set(elems) => {
                for pe in elems {
                    b.with_child(pe, Builder::mark);
                }
            }
        },
        _ => b.mark(),
    }
}

/// The fields an update from `old` to `new` set or changed (`changed`, added maps and items
/// included as members) and the fields it removed (`removed`; everything below them goes too).
pub(crate) fn diff_object(
    res: &Resource,
    old: &Value,
    new: &Value,
    scope: Scope,
) -> (FieldSet, FieldSet) {
    let mut changed = FieldSet::new();
    let mut removed = FieldSet::new();
    let empty = Map::new();
    let om = old.as_object().unwrap_or(&empty);
    let nm = new.as_object().unwrap_or(&empty);
    diff_map(
        &mut changed,
        &mut removed,
        om,
        nm,
        Schema::of(res),
        Filter::Top(scope),
    );
    (changed, removed)
}

pub(super) fn present<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    m.field(k).filter(|v| !v.is_null())
}

fn diff_map(
    changed: &mut FieldSet,
    removed: &mut FieldSet,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    schema: Schema,
    filter: Filter,
) {
    for (k, nv) in new {
        if nv.is_null() || filter.skips(k) {
            continue;
        }
        let ov = present(old, k);
        let (cf, member) = filter.child(k);
        // Equal values differ nowhere: skip them without building their nodes (but not
        // `metadata`, whose managedFields no walk looks at and which rarely are all equal).
        if cf != Filter::Meta && quick() && ov.is_some_and(|ov| same(ov, nv)) {
            continue;
        }
        let (meta, s) = schema.field(k);
        let pe = PathElement::Field(k.clone());
        match ov {
            None => changed.with_child(pe, |c| value_fields(c, nv, meta, s, cf, true, member)),
            Some(ov) => {
                // Both nodes start empty (each key comes once), and the removed one mostly
                // stays so: the element is copied only for a removed node that is kept.
                let (mut c, mut r) = (FieldSet::new(), FieldSet::new());
                diff_value(&mut c, &mut r, ov, nv, meta, s, cf);
                if !r.is_empty() {
                    removed.put(pe.clone(), r);
                }
                changed.put(pe, c);
            }
        }
    }
    for (k, ov) in old {
        if ov.is_null() || filter.skips(k) || present(new, k).is_some() {
            continue;
        }
        removed.insert(&[PathElement::Field(k.clone())]);
    }
}

#[allow(clippy::too_many_arguments)]
fn diff_value(
    changed: &mut FieldSet,
    removed: &mut FieldSet,
    ov: &Value,
    nv: &Value,
    meta: FieldMeta,
    schema: Schema,
    filter: Filter,
) {
    match (ov, nv) {
        (Value::Object(om), Value::Object(nm)) => {
            if nm.is_empty() && !om.is_empty() {
                changed.mark();
            }
            diff_map(changed, removed, om, nm, schema, filter)
        }
        (Value::Array(oi), Value::Array(ni)) if !oi.is_empty() && !ni.is_empty() => {
            if let Some(k) = meta.merge_key().filter(|_| quick()) {
                if let (Some(ok), Some(nk)) = (item_keys(k, oi), item_keys(k, ni)) {
                    diff_keyed(changed, removed, k, (oi, &ok), (ni, &nk), schema);
                    return;
                }
            }
            match (list_kind(meta, oi), list_kind(meta, ni)) {
                (ListKind::Keyed(oe), ListKind::Keyed(ne)) => {
                    let olds: HashMap<&PathElement, &Value> = oe.iter().zip(oi).collect();
                    for (pe, item) in ne.iter().zip(ni) {
                        match olds.get(pe) {
                            Some(oitem) => {
                                let (Value::Object(a), Value::Object(b)) = (oitem, item) else {
                                    continue;
                                };
                                if quick() && same_map(a, b) {
                                    continue;
                                }
                                diff_map(
                                    changed.child(pe.clone()),
                                    removed.child(pe.clone()),
                                    a,
                                    b,
                                    schema,
                                    Filter::None,
                                );
                                removed.close(pe);
                            }
                            None => {
                                value_fields(
                                    changed.child(pe.clone()),
                                    item,
                                    FieldMeta::DEFAULT,
                                    schema,
                                    Filter::None,
                                    true,
                                    true,
                                );
                            }
                        }
                        changed.close(pe);
                    }
                    let news: HashSet<&PathElement> = ne.iter().collect();
                    for pe in oe.iter().filter(|pe| !news.contains(pe)) {
                        removed.insert(std::slice::from_ref(pe));
                    }
                }
                (ListKind::Set(oe), ListKind::Set(ne)) => {
                    let olds: HashSet<&PathElement> = oe.iter().collect();
                    let news: HashSet<&PathElement> = ne.iter().collect();
                    for pe in ne.iter().filter(|pe| !olds.contains(pe)) {
                        changed.insert(std::slice::from_ref(pe));
                    }
                    for pe in oe.iter().filter(|pe| !news.contains(pe)) {
                        removed.insert(std::slice::from_ref(pe));
                    }
                }
                _ if ov != nv => replaced(changed, removed),
                _ => {}
            }
        }
        _ if ov != nv => replaced(changed, removed),
        _ => {}
    }
}

/// Whether the walks take their shortcuts (the tests compare them with the plain walks).
#[cfg(not(test))]
pub(super) fn quick() -> bool {
    true
}

#[cfg(test)]
thread_local! {
    pub(crate) static PLAIN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
pub(super) fn quick() -> bool {
    !PLAIN.with(std::cell::Cell::get)
}

/// The merge-key values of the items of a short keyed list, when every item has a scalar one
/// and no two are the same; `None` sends the list to [`list_kind`] (long lists, and lists it
/// treats as atomic).
pub(super) fn item_keys<'a>(key: &str, items: &'a [Value]) -> Option<Vec<&'a Value>> {
    if items.len() > 32 {
        return None;
    }
    let mut keys: Vec<&Value> = Vec::with_capacity(items.len());
    for item in items {
        let k = item
            .field(key)
            .filter(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))?;
        if keys.iter().any(|seen| same_key(seen, k)) {
            return None;
        }
        keys.push(k);
    }
    Some(keys)
}

/// Whether two merge-key values make the same path element (the same JSON text).
pub(super) fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            x.to_string() == y.to_string()
        }
        _ => a == b,
    }
}

/// [`diff_value`] of two keyed lists whose items' keys are `ok` and `nk`: items are paired by
/// key (usually at the same position), and path elements are made only for items that differ.
fn diff_keyed(
    changed: &mut FieldSet,
    removed: &mut FieldSet,
    key: &str,
    (oi, ok): (&[Value], &[&Value]),
    (ni, nk): (&[Value], &[&Value]),
    schema: Schema,
) {
    for (j, (item, k)) in ni.iter().zip(nk).enumerate() {
        let at = if ok.get(j).is_some_and(|o| same_key(o, k)) {
            Some(j)
        } else {
            ok.iter().position(|o| same_key(o, k))
        };
        match at.map(|i| &oi[i]) {
            Some(Value::Object(a)) => {
                let Value::Object(b) = item else { continue };
                if same_map(a, b) {
                    continue;
                }
                let pe = key_element(key, item).expect("a scalar key");
                let (mut c, mut r) = (FieldSet::new(), FieldSet::new());
                diff_map(&mut c, &mut r, a, b, schema, Filter::None);
                if !r.is_empty() {
                    removed.put(pe.clone(), r);
                }
                changed.put(pe, c);
            }
            Some(_) => continue,
            None => {
                let pe = key_element(key, item).expect("a scalar key");
                let meta = FieldMeta::DEFAULT;
                changed.with_child(pe, |c| {
                    value_fields(c, item, meta, schema, Filter::None, true, true)
                });
            }
        }
    }
    for (item, k) in oi.iter().zip(ok) {
        if !nk.iter().any(|n| same_key(n, k)) {
            removed.insert(&[key_element(key, item).expect("a scalar key")]);
        }
    }
}

/// `a == b`, quicker for the usual case of maps whose keys are in the same order (an object
/// and its changed copy), where it compares entry by entry instead of looking each key up.
pub(super) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => same_map(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        _ => a == b,
    }
}

pub(super) fn same_map(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    if a.len() != b.len() {
        return false;
    }
    for ((ak, av), (bk, bv)) in a.iter().zip(b) {
        if ak != bk {
            // Another order: compare by key.
            return a == b;
        }
        if !same(av, bv) {
            return false;
        }
    }
    true
}

/// A value replaced whole: what was below it is gone, the value itself is set.
fn replaced(changed: &mut FieldSet, removed: &mut FieldSet) {
    changed.mark();
    removed.mark();
}

/// Merges applied configuration `cfg` into `live`: maps key by key, keyed lists item by item
/// (new items appended), sets by union, everything else replaced.
pub(crate) fn merge(res: &Resource, live: &mut Value, cfg: &Value) {
    merge_value(live, cfg, FieldMeta::DEFAULT, Schema::of(res));
}

fn merge_value(live: &mut Value, cfg: &Value, meta: FieldMeta, schema: Schema) {
    match (&mut *live, cfg) {
        (Value::Object(lm), Value::Object(cm)) => {
            for (k, cv) in cm {
                if cv.is_null() {
                    continue;
                }
                let (m, s) = schema.field(k);
                match lm.get_mut(k) {
                    Some(lv) if !lv.is_null() => merge_value(lv, cv, m, s),
                    _ => {
                        lm.insert(k.clone(), strip_nulls(cv));
                    }
                }
            }
        }
        (Value::Array(li), Value::Array(ci)) => match (list_kind(meta, li), list_kind(meta, ci)) {
            (ListKind::Keyed(le), ListKind::Keyed(ce)) => {
                let pos: HashMap<PathElement, usize> =
                    le.into_iter().enumerate().map(|(i, e)| (e, i)).collect();
                for (pe, item) in ce.iter().zip(ci) {
                    match pos.get(pe) {
                        Some(&i) => merge_value(&mut li[i], item, FieldMeta::DEFAULT, schema),
                        None => li.push(strip_nulls(item)),
                    }
                }
            }
            (ListKind::Set(le), ListKind::Set(ce)) => {
                let have: HashSet<PathElement> = le.into_iter().collect();
                for (pe, item) in ce.iter().zip(ci) {
                    if !have.contains(pe) {
                        li.push(item.clone());
                    }
                }
            }
            _ => *live = strip_nulls(cfg),
        },
        _ => *live = strip_nulls(cfg),
    }
}

/// `v` without map entries that are `null` (an applied `null` sets nothing).
pub(crate) fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Whether list item `item` is the one `pe` names.
fn item_matches(pe: &PathElement, item: &Value) -> bool {
    match pe {
        PathElement::Key(k) => {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(k) else {
                return false;
            };
            key.iter().all(|(n, v)| item.get(n) == Some(v))
        }
        PathElement::Value(s) => serde_json::from_str::<Value>(s).is_ok_and(|v| v == *item),
        _ => false,
    }
}

/// The value at `path` in `obj`.
pub(crate) fn value_at<'a>(obj: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    let mut cur = obj;
    for pe in path {
        cur = match (pe, cur) {
            (PathElement::Field(f), Value::Object(m)) => m.get(f)?,
            (PathElement::Index(i), Value::Array(a)) => a.get(*i)?,
            (pe, Value::Array(a)) => a.iter().find(|i| item_matches(pe, i))?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the value at `path` from `obj`, if it is there.
pub(crate) fn remove_at(obj: &mut Value, path: &[PathElement]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for pe in parent {
        let next = match (pe, cur) {
            (PathElement::Field(f), Value::Object(m)) => m.get_mut(f),
            (PathElement::Index(i), Value::Array(a)) => a.get_mut(*i),
            (pe, Value::Array(a)) => a.iter_mut().find(|i| item_matches(pe, i)),
            _ => None,
        };
        let Some(next) = next else { return };
        cur = next;
    }
    match (last, cur) {
        (PathElement::Field(f), Value::Object(m)) => {
            m.shift_remove(f);
        }
        (PathElement::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        (pe, Value::Array(a)) => a.retain(|i| !item_matches(pe, i)),
        _ => {}
    }
}

/// The `FieldsV1` of an object a write adds whole (a create): [`object_fields`] with `added`,
/// built straight into JSON, one key string per node, for the create path.
pub(crate) fn object_fields_v1(res: &Resource, obj: &Value, scope: Scope) -> Map<String, Value> {
    let Value::Object(m) = obj else {
        return Map::new();
    };
    let mut entries = Vec::with_capacity(m.len());
    v1_fields(&mut entries, m, Schema::of(res), Filter::Top(scope));
    v1_map(false, entries)
}

/// A node's entries: `f:<field>` and its node for each field of `m` a walk records, in `m`'s
/// order.
fn v1_fields(
    out: &mut Vec<(String, Value)>,
    m: &Map<String, Value>,
    schema: Schema,
    filter: Filter,
) {
    for (k, v) in m {
        if v.is_null() || filter.skips(k) {
            continue;
        }
        let (meta, s) = schema.field(k);
        let (cf, member) = filter.child(k);
        if let Some(node) = v1_node(v, meta, s, cf, member) {
            let mut key = String::with_capacity(k.len() + 2);
            key.push_str("f:");
            key.push_str(k);
            out.push((key, Value::Object(node)));
        }
    }
}

/// A node of `entries` (not empty), `.` first when it is a `member`, then the entries sorted as
/// upstream writes them: each key hashed once into a map of the right size.
fn v1_map(member: bool, mut entries: Vec<(String, Value)>) -> Map<String, Value> {
    if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    let mut out = Map::with_capacity(entries.len() + usize::from(member));
    if member {
        out.insert(".".into(), Value::Object(Map::new()));
    }
    for (k, v) in entries {
        out.insert(k, v);
    }
    out
}

/// The node of value `v`: `None` when nothing in it is recorded, `{}` for a leaf.
fn v1_node(
    v: &Value,
    meta: FieldMeta,
    schema: Schema,
    filter: Filter,
    member: bool,
) -> Option<Map<String, Value>> {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut entries = Vec::with_capacity(m.len());
            v1_fields(&mut entries, m, schema, filter);
            match (entries.is_empty(), member) {
                (false, _) => Some(v1_map(member, entries)),
                (true, true) => Some(Map::new()),
                (true, false) => None,
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let Some(keys) = v1_item_keys(meta, items) else {
                return Some(Map::new());
            };
            let entries = keys
                .into_iter()
                .zip(items)
                .map(|(key, item)| {
                    let node = match item {
                        Value::Object(im) if !im.is_empty() => {
                            let mut fields = Vec::with_capacity(im.len());
                            v1_fields(&mut fields, im, schema, Filter::None);
                            if fields.is_empty() {
                                Map::new()
                            } else {
                                v1_map(true, fields)
                            }
                        }
                        _ => Map::new(),
                    };
                    (key, Value::Object(node))
                })
                .collect();
            Some(v1_map(false, entries))
        }
        _ => Some(Map::new()),
    }
}

/// The `FieldsV1` keys of the items of a keyed list or set, as [`list_kind`]; `None` for an
/// atomic list.
fn v1_item_keys(meta: FieldMeta, items: &[Value]) -> Option<Vec<String>> {
    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    let keys: Vec<String> = match meta.strategy {
        Strategy::Merge { key: Some(k) } => items
            .iter()
            .map(|i| {
                let v = i.field(k).filter(|v| scalar(v))?;
                let mut s = Vec::with_capacity(k.len() + 24);
                s.extend_from_slice(b"k:{");
                serde_json::to_writer(&mut s, k).expect("a string serialises");
                s.push(b':');
                serde_json::to_writer(&mut s, v).expect("a scalar serialises");
                s.push(b'}');
                Some(String::from_utf8(s).expect("serde_json writes UTF-8"))
            })
            .collect::<Option<_>>()?,
        Strategy::Merge { key: None } => items
            .iter()
            .map(|i| scalar(i).then(|| format!("v:{i}")))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    let unique = if keys.len() <= 16 {
        keys.iter().enumerate().all(|(i, k)| !keys[..i].contains(k))
    } else {
        let mut seen = HashSet::with_capacity(keys.len());
        keys.iter().all(|k| seen.insert(k))
    };
    unique.then_some(keys)
}

/// Writes into `out` a byte string that determines [`object_fields_v1`] of `obj` for `res` and
/// `scope`: the fields it records, nested, with the merge keys and set values of list items (as
/// JSON), each name and value length-prefixed, so that two objects with the same string get the
/// same `FieldsV1`. No allocation beyond `out`, no hashing: a cheap key for a memo.
pub(crate) fn object_shape(res: &Resource, obj: &Value, scope: Scope, out: &mut Vec<u8>) {
    out.clear();
    if let Value::Object(m) = obj {
        shape_fields(out, m, Schema::of(res), Filter::Top(scope));
    }
}

fn shape_fields(out: &mut Vec<u8>, m: &Map<String, Value>, schema: Schema, filter: Filter) {
    out.push(b'{');
    for (k, v) in m {
        if v.is_null() || filter.skips(k) {
            continue;
        }
        let (meta, s) = schema.field(k);
        out.push(b'f');
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        shape_value(out, v, meta, s, filter.child(k).0);
    }
    out.push(b'}');
}

fn shape_value(out: &mut Vec<u8>, v: &Value, meta: FieldMeta, schema: Schema, filter: Filter) {
    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match v {
        Value::Object(m) => shape_fields(out, m, schema, filter),
        Value::Array(items) => {
            out.push(b'[');
            match meta.strategy {
                Strategy::Merge { key: Some(k) } => {
                    for item in items {
                        match (item.field(k).filter(|v| scalar(v)), item) {
                            (Some(kv), Value::Object(im)) => {
                                out.push(b'k');
                                shape_json(out, kv);
                                shape_fields(out, im, schema, Filter::None);
                            }
                            _ => out.push(b'x'),
                        }
                    }
                }
                Strategy::Merge { key: None } => {
                    for item in items {
                        if scalar(item) {
                            out.push(b'v');
                            shape_json(out, item);
                        } else {
                            out.push(b'x');
                        }
                    }
                }
                _ => {}
            }
            out.push(b']');
        }
        _ => out.push(b's'),
    }
}

/// `v` as JSON, length-prefixed.
fn shape_json(out: &mut Vec<u8>, v: &Value) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *out, v).expect("a scalar serialises");
    let n = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&n.to_le_bytes());
}
