//! A per-thread memo of the `FieldsV1` a create records, by the shape of the object.
//!
//! The create's entry owns every field of the new object, so its `FieldsV1` depends only on
//! the kind, the scope and the object's shape (its field names, and the merge keys and set
//! values of its list items), not on its values: the pods of one ReplicaSet, or the events of
//! one kind, all get the same one. Building it hashes every key into a `serde_json::Map`;
//! cloning a built one copies the maps' tables without hashing. So each thread keeps, per kind
//! and scope, the last shape it saw ([`walk::object_shape`], a byte string walked without
//! allocating) and, once that shape comes again, the entry built for it; a create of the same
//! shape by the same manager clones it and sets its `time`. The result is the same as
//! building, byte for byte.

use crate::meta::Fields as _;
use std::cell::RefCell;

use serde_json::{Map, Value};

use super::{entry_value, walk, Manager, Operation, Scope};
use crate::Resource;

/// Kinds and scopes remembered per thread.
const SLOTS: usize = 16;
/// Shapes longer than this (objects with thousands of fields) are not remembered.
const MAX_SHAPE: usize = 32 * 1024;

struct Slot {
    group: &'static str,
    kind: &'static str,
    scope: Scope,
    shape: Vec<u8>,
    /// The entry, built once the shape has been seen twice in a row, and who it is for
    /// (manager, apiVersion, subresource).
    entry: Option<(Value, [String; 3])>,
    /// The shape's `FieldsV1` as JSON text, for creates whose entry is written as text
    /// ([`created_entry_json`]); it depends on the shape alone, not on the manager.
    fields_json: Option<Vec<u8>>,
}

#[derive(Default)]
struct Memo {
    shape: Vec<u8>,
    slots: Vec<Slot>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::default();
}

/// The entry of a create of `obj` by `m` at `now`: an `Update` owning
/// [`walk::object_fields_v1`], cloned from this thread's memo when the object has the shape of
/// the last one of its kind and scope.
pub(super) fn created_entry(
    res: &Resource,
    obj: &Value,
    scope: Scope,
    m: &Manager,
    now: &str,
) -> Value {
    let build = |fields: Map<String, Value>| {
        let fields = Value::Object(fields);
        let op = Operation::Update;
        entry_value(m.name, op, m.api_version, Some(now), m.subresource, fields)
    };
    MEMO.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return build(walk::object_fields_v1(res, obj, scope));
        };
        let Memo { shape, slots } = &mut *memo;
        walk::object_shape(res, obj, scope, shape);
        if shape.len() > MAX_SHAPE {
            shape.clear();
            shape.shrink_to(MAX_SHAPE);
            return build(walk::object_fields_v1(res, obj, scope));
        }
        let slot = slot_for(slots, res, scope);
        if slot.shape != *shape {
            std::mem::swap(&mut slot.shape, shape);
            slot.entry = None;
            slot.fields_json = None;
            return build(walk::object_fields_v1(res, obj, scope));
        }
        match &slot.entry {
            Some((entry, [name, av, sub]))
                if name == m.name && av == m.api_version && sub == m.subresource =>
            {
                let mut entry = entry.clone();
                entry["time"] = Value::String(now.to_string());
                entry
            }
            Some((entry, _)) => {
                let fields = entry
                    .at("fieldsV1")
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                build(fields)
            }
            None => {
                let entry = build(walk::object_fields_v1(res, obj, scope));
                let who = [m.name, m.api_version, m.subresource].map(str::to_string);
                slot.entry = Some((entry.clone(), who));
                entry
            }
        }
    })
}

/// This thread's slot for `res` and `scope`, made (in place of the oldest) if there is none.
fn slot_for<'a>(slots: &'a mut Vec<Slot>, res: &Resource, scope: Scope) -> &'a mut Slot {
    let at = slots
        .iter()
        .position(|s| s.group == res.group && s.kind == res.kind && s.scope == scope);
    match at {
        Some(i) => &mut slots[i],
        None => {
            if slots.len() >= SLOTS {
                slots.remove(0);
            }
            slots.push(Slot {
                group: res.group,
                kind: res.kind,
                scope,
                shape: Vec::new(),
                entry: None,
                fields_json: None,
            });
            slots.last_mut().expect("just pushed")
        }
    }
}

/// Writes the entry [`created_entry`] gives as JSON text to `out`, without building it as a
/// `Value`: the shape's `FieldsV1` text is remembered per thread (from the first create of a
/// shape on), so a create of a known shape costs the shape walk and a copy.
pub(super) fn created_entry_json(
    res: &Resource,
    obj: &Value,
    scope: Scope,
    m: &Manager,
    now: &str,
    out: &mut Vec<u8>,
) {
    let fields_text = || {
        serde_json::to_vec(&Value::Object(walk::object_fields_v1(res, obj, scope)))
            .expect("FieldsV1 serializes")
    };
    MEMO.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return entry_json(m, now, &fields_text(), out);
        };
        let Memo { shape, slots } = &mut *memo;
        walk::object_shape(res, obj, scope, shape);
        if shape.len() > MAX_SHAPE {
            shape.clear();
            shape.shrink_to(MAX_SHAPE);
            return entry_json(m, now, &fields_text(), out);
        }
        let slot = slot_for(slots, res, scope);
        if slot.shape != *shape {
            std::mem::swap(&mut slot.shape, shape);
            slot.entry = None;
            slot.fields_json = None;
        }
        let fields = slot.fields_json.get_or_insert_with(fields_text);
        entry_json(m, now, fields, out);
    })
}

/// An `Update` entry by `m` at `now` owning `fields` (JSON text of a `FieldsV1`), as
/// [`super::entry_value`] builds it and serde_json writes it: the same keys in the same order.
pub(super) fn entry_json(m: &Manager, now: &str, fields: &[u8], out: &mut Vec<u8>) {
    let string = |out: &mut Vec<u8>, s: &str| serde_json::to_writer(&mut *out, s).expect("string");
    out.push(b'{');
    if !m.name.is_empty() {
        out.extend_from_slice(b"\"manager\":");
        string(out, m.name);
        out.push(b',');
    }
    out.extend_from_slice(b"\"operation\":");
    string(out, Operation::Update.as_str());
    out.extend_from_slice(b",\"apiVersion\":");
    string(out, m.api_version);
    out.extend_from_slice(b",\"time\":");
    string(out, now);
    out.extend_from_slice(b",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":");
    out.extend_from_slice(fields);
    if !m.subresource.is_empty() {
        out.extend_from_slice(b",\"subresource\":");
        string(out, m.subresource);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::managed::stored::tests::{arb_pod, pods};

    const MANAGERS: [Manager<'static>; 2] = [
        Manager {
            name: "a",
            api_version: "v1",
            subresource: "",
        },
        Manager {
            name: "b",
            api_version: "v1",
            subresource: "",
        },
    ];

    /// The object with other values but the same shape: label values, images and condition
    /// statuses changed.
    fn revalued(mut v: Value) -> Value {
        if let Some(Value::Object(labels)) = v.pointer_mut("/metadata/labels") {
            for l in labels.values_mut() {
                *l = json!("other");
            }
        }
        if let Some(Value::Array(cs)) = v.pointer_mut("/spec/containers") {
            for c in cs.iter_mut().filter(|c| c.get("image").is_some()) {
                c["image"] = json!("other");
            }
        }
        if let Some(Value::Array(cs)) = v.pointer_mut("/status/conditions") {
            for c in cs {
                c["status"] = json!("Unknown");
            }
        }
        v
    }

    /// The object with other merge keys and set values: other `FieldsV1`, same field names.
    fn rekeyed(mut v: Value) -> Value {
        if let Some(Value::Array(cs)) = v.pointer_mut("/spec/containers") {
            for c in cs {
                c["name"] = json!(format!("{}x", c["name"].as_str().unwrap_or("")));
            }
        }
        if let Some(Value::Array(fs)) = v.pointer_mut("/metadata/finalizers") {
            for f in fs {
                *f = json!(format!("{}x", f.as_str().unwrap_or("")));
            }
        }
        v
    }

    /// The object as it is (0), revalued (1) or rekeyed (2).
    fn varied(obj: Value, variant: u8) -> Value {
        match variant {
            0 => obj,
            1 => revalued(obj),
            _ => rekeyed(obj),
        }
    }

    proptest! {
        /// Whatever this thread created before, the memo's `FieldsV1` is byte for byte the
        /// one built for the object.
        #[test]
        fn memo_matches_building(
            pool in prop::collection::vec(arb_pod(), 1..4),
            order in prop::collection::vec((0usize..4, 0u8..3, any::<bool>(), 0usize..2), 1..12),
        ) {
            let res = pods();
            for (n, (i, variant, status, who)) in order.into_iter().enumerate() {
                let m = &MANAGERS[who];
                let now = format!("t{n}");
                let obj = varied(pool[i % pool.len()].clone(), variant);
                let scope = if status { Scope::Status } else { Scope::Main };
                let memo = created_entry(res, &obj, scope, m, &now);
                let fields = Value::Object(walk::object_fields_v1(res, &obj, scope));
                let built = entry_value(m.name, Operation::Update, m.api_version, Some(&now), m.subresource, fields);
                prop_assert_eq!(memo.to_string(), built.to_string());
            }
        }
    }

    proptest! {
        /// The text written for a create is byte for byte the built entry's serialization,
        /// whatever this thread created before, for managers whose names need escaping too.
        #[test]
        fn text_matches_building(
            pool in prop::collection::vec(arb_pod(), 1..4),
            order in prop::collection::vec((0usize..4, 0u8..3, any::<bool>(), 0usize..3), 1..12),
        ) {
            let res = pods();
            let managers = [
                MANAGERS[0],
                Manager { name: "", api_version: "v1", subresource: "status" },
                Manager { name: "k\"ubectl\u{e9}\n", api_version: "v1", subresource: "" },
            ];
            for (n, (i, variant, status, who)) in order.into_iter().enumerate() {
                let m = &managers[who];
                let now = format!("2026-11-27T10:00:{n:02}Z");
                let obj = varied(pool[i % pool.len()].clone(), variant);
                let scope = if status { Scope::Status } else { Scope::Main };
                let mut text = Vec::new();
                crate::managed::created_json(res, &obj, scope, m, &now, &mut text);
                let fields = Value::Object(walk::object_fields_v1(res, &obj, scope));
                let built = entry_value(m.name, Operation::Update, m.api_version, Some(&now), m.subresource, fields);
                let built = serde_json::to_vec(&Value::Array(vec![built])).unwrap();
                prop_assert_eq!(String::from_utf8(text).unwrap(), String::from_utf8(built).unwrap());
            }
        }
    }

    /// The second create of a shape builds and remembers; the third clones.
    #[test]
    fn a_shape_seen_twice_is_remembered() {
        let res = pods();
        let obj = json!({"metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let has = |obj: &Value| {
            created_entry(res, obj, Scope::Main, &MANAGERS[0], "t");
            MEMO.with(|m| {
                m.borrow()
                    .slots
                    .iter()
                    .any(|s| s.kind == "Pod" && s.scope == Scope::Main && s.entry.is_some())
            })
        };
        assert!(!has(&obj));
        assert!(has(&obj));
        assert!(has(&revalued(obj.clone())));
        let mut other = obj.clone();
        other["spec"]["containers"][0]["name"] = json!("d");
        assert!(!has(&other));
    }
}
