//! `managedFields` entries as they are stored, read without decoding them.
//!
//! Every write re-encodes the entries it keeps in upstream's `ManagedFieldsEntry` form (fields in
//! the order `manager`, `operation`, `apiVersion`, `time`, `fieldsType`, `fieldsV1`,
//! `subresource`, the empty ones left out) with `FieldsV1` keys in the order of the set (`.`
//! first, then fields, keys, values and indices). An entry already in exactly that form (see
//! [`entry_is_canonical`]) that a write does not touch would come out of a decode and re-encode
//! byte for byte as it went in, so the update path keeps it as it is and asks its questions of
//! the stored `FieldsV1` directly: does a write's set share a member with it ([`touches`]), does
//! it hold every member of a set ([`contains_all`]).

use crate::meta::Fields as _;
use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, PathElement};
use super::Manager;

/// Whether entry `v` decodes and re-encodes to exactly itself (key order included) and owns at
/// least one field.
pub(super) fn entry_is_canonical(v: &Value) -> bool {
    let Value::Object(m) = v else {
        return false;
    };
    let mut it = m.iter().peekable();
    let mut next_if = |key: &str| it.next_if(|(k, _)| k.as_str() == key).map(|(_, v)| v);
    let nonempty_str = |v: &Value| matches!(v, Value::String(s) if !s.is_empty());
    if next_if("manager").is_some_and(|v| !nonempty_str(v)) {
        return false;
    }
    if !next_if("operation").is_some_and(|v| v == "Apply" || v == "Update") {
        return false;
    }
    if !next_if("apiVersion").is_some_and(Value::is_string) {
        return false;
    }
    if next_if("time").is_some_and(|v| !v.is_string()) {
        return false;
    }
    if !next_if("fieldsType").is_some_and(|v| v == "FieldsV1") {
        return false;
    }
    match next_if("fieldsV1") {
        Some(Value::Object(f)) if !f.is_empty() && node_is_canonical(f) => {}
        _ => return false,
    }
    if next_if("subresource").is_some_and(|v| !nonempty_str(v)) {
        return false;
    }
    it.next().is_none()
}

/// The `FieldsV1` of a canonical entry.
pub(super) fn fields_v1(entry: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match entry.field("fieldsV1") {
        Some(Value::Object(m)) => m,
        _ => EMPTY.get_or_init(Map::new),
    }
}

/// Whether canonical entry `v` is the `Update` entry of manager `m`.
pub(super) fn is_update_by(v: &Value, m: &Manager) -> bool {
    let s = |k: &str| v.field(k).and_then(Value::as_str).unwrap_or("");
    s("operation") == "Update"
        && s("manager") == m.name
        && s("subresource") == m.subresource
        && s("apiVersion") == m.api_version
}

/// Whether the node is in the form a set encodes to: `.` (as `{}`) first and only beside
/// children, then keys in canonical form and strictly in the set's order, each child a map in
/// this form (`{}` being a leaf).
fn node_is_canonical(m: &Map<String, Value>) -> bool {
    let mut it = m.iter().peekable();
    let dot = it.next_if(|(k, _)| k.as_str() == ".");
    if dot.is_some_and(|(_, v)| m.len() < 2 || !v.as_object().is_some_and(Map::is_empty)) {
        return false;
    }
    let mut prev: Option<&str> = None;
    for (k, v) in it {
        if !key_is_canonical(k) || prev.is_some_and(|p| key_order(p, k) != Ordering::Less) {
            return false;
        }
        match v {
            Value::Object(c) if c.is_empty() || node_is_canonical(c) => {}
            _ => return false,
        }
        prev = Some(k);
    }
    true
}

/// Whether `k` decodes to a path element that encodes back to `k`.
fn key_is_canonical(k: &str) -> bool {
    let (kind, rest) = match k.split_at_checked(2) {
        Some(p) => p,
        None => return false,
    };
    match kind {
        "f:" => true,
        "i:" => {
            !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_digit())
                && (rest == "0" || !rest.starts_with('0'))
                && rest.parse::<usize>().is_ok()
        }
        "k:" => rest.starts_with('{') && json_is_canonical(rest),
        "v:" => json_is_canonical(rest),
        _ => false,
    }
}

/// The set's order of two canonical keys: fields, then keys, then values (each by their text),
/// then indices (by number).
fn key_order(a: &str, b: &str) -> Ordering {
    let rank = |k: &str| match k.as_bytes()[0] {
        b'f' => 0,
        b'k' => 1,
        b'v' => 2,
        _ => 3,
    };
    let (ra, rb) = (rank(a), rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    if ra == 3 {
        return (a.len(), a).cmp(&(b.len(), b));
    }
    a[2..].cmp(&b[2..])
}

/// Whether `s` is JSON that serde_json prints back exactly as `s` (compact, its own escapes
/// and number forms). The forms merge keys and set values take are recognised directly; the
/// rest are parsed and printed.
fn json_is_canonical(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let plain = if b.first() == Some(&b'{') {
        i = 1;
        plain_string(b, &mut i)
            && b.get(i) == Some(&b':')
            && {
                i += 1;
                plain_scalar(b, &mut i)
            }
            && b.get(i) == Some(&b'}')
            && {
                i += 1;
                true
            }
    } else {
        plain_scalar(b, &mut i)
    };
    if plain && i == b.len() {
        return true;
    }
    serde_json::from_str::<Value>(s)
        .and_then(|v| serde_json::to_string(&v))
        .is_ok_and(|printed| printed == s)
}

/// A string without escapes or control characters (printed as it is), at `b[*i..]`.
fn plain_string(b: &[u8], i: &mut usize) -> bool {
    if b.get(*i) != Some(&b'"') {
        return false;
    }
    let mut j = *i + 1;
    while let Some(&c) = b.get(j) {
        match c {
            b'"' => {
                *i = j + 1;
                return true;
            }
            b'\\' | 0..=0x1f => return false,
            _ => j += 1,
        }
    }
    false
}

/// A plain string, `true`, `false`, `null` or an integer of at most 18 digits without leading
/// zeros (not `-0`), at `b[*i..]`.
fn plain_scalar(b: &[u8], i: &mut usize) -> bool {
    let rest = &b[(*i).min(b.len())..];
    for word in [&b"true"[..], b"false", b"null"] {
        if rest.starts_with(word) {
            *i += word.len();
            return true;
        }
    }
    if rest.first() == Some(&b'"') {
        return plain_string(b, i);
    }
    let neg = rest.first() == Some(&b'-');
    let digits = &rest[usize::from(neg)..];
    let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 18 || (digits[0] == b'0' && (n > 1 || neg)) {
        return false;
    }
    if matches!(digits.get(n), Some(b'.' | b'e' | b'E')) {
        return false;
    }
    *i += usize::from(neg) + n;
    true
}

/// Whether a stored node is a member: `.` marks one with children; below the top, `{}` is a leaf.
fn is_member(node: &Map<String, Value>, top: bool) -> bool {
    node.keys().next().is_some_and(|k| k == ".") || (!top && node.is_empty())
}

fn child<'a>(
    node: &'a Map<String, Value>,
    pe: &PathElement,
    key: &mut String,
) -> Option<&'a Map<String, Value>> {
    key.clear();
    pe.encode_into(key);
    node.field(key.as_str()).and_then(Value::as_object)
}

/// Whether removing the members of `changed` and the subtrees of `removed` (see
/// [`FieldSet::remove_members`], [`FieldSet::remove_subtrees`]) would change canonical
/// `FieldsV1` `stored`.
pub(super) fn touches(stored: &Map<String, Value>, changed: &FieldSet, removed: &FieldSet) -> bool {
    let mut key = String::new();
    shares_member(stored, true, changed, &mut key) || holds_subtree(stored, removed, &mut key)
}

fn shares_member(node: &Map<String, Value>, top: bool, set: &FieldSet, key: &mut String) -> bool {
    if set.is_member() && is_member(node, top) {
        return true;
    }
    set.children()
        .any(|(pe, c)| child(node, pe, key).is_some_and(|n| shares_member(n, false, c, key)))
}

/// Whether canonical `FieldsV1` `stored` has anything at or below a member of `set`.
fn holds_subtree(stored: &Map<String, Value>, set: &FieldSet, key: &mut String) -> bool {
    // A node a canonical encoding holds is never empty (the top one is checked).
    if set.is_member() {
        return true;
    }
    set.children()
        .any(|(pe, c)| child(stored, pe, key).is_some_and(|n| holds_subtree(n, c, key)))
}

/// Whether the members of canonical `FieldsV1` `stored` at or below the members of `removed`
/// are all members of `changed`, given that `stored` holds every member of `changed` (see
/// [`contains_all`]): then removing those subtrees and adding `changed` gives `stored` back, as
/// for an owner replacing values it owns.
pub(super) fn removed_are_changed(
    stored: &Map<String, Value>,
    removed: &FieldSet,
    changed: &FieldSet,
) -> bool {
    fn walk(
        node: &Map<String, Value>,
        top: bool,
        removed: &FieldSet,
        changed: Option<&FieldSet>,
        key: &mut String,
    ) -> bool {
        if removed.is_member() {
            // `changed` is within `stored` here, so equal counts make equal sets.
            return members(node, top) == changed.map_or(0, FieldSet::len);
        }
        removed
            .children()
            .all(|(pe, r)| match child(node, pe, key) {
                None => true,
                Some(n) => walk(n, false, r, changed.and_then(|c| c.child(pe)), key),
            })
    }
    walk(stored, true, removed, Some(changed), &mut String::new())
}

/// How many members a canonical stored node and the nodes below it hold.
fn members(node: &Map<String, Value>, top: bool) -> usize {
    usize::from(is_member(node, top))
        + node
            .iter()
            .filter(|(k, _)| k.as_str() != ".")
            .map(|(_, c)| c.as_object().map_or(0, |c| members(c, false)))
            .sum::<usize>()
}

/// Removes from canonical `FieldsV1` `stored` the subtrees at the members of `removed`, then
/// the members of `changed`, leaving it in canonical form: what [`FieldSet::remove_subtrees`],
/// [`FieldSet::remove_members`] and encoding the set again would give. Returns `false` when
/// nothing is left (the entry goes).
pub(super) fn remove_in_place(
    stored: &mut Map<String, Value>,
    removed: &FieldSet,
    changed: &FieldSet,
) -> bool {
    let mut key = String::new();
    prune(stored, true, removed, Prune::Subtrees, &mut key)
        && prune(stored, true, changed, Prune::Members, &mut key)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prune {
    Subtrees,
    Members,
}

/// [`remove_in_place`] on one node; `false` when the node is left empty and must go.
fn prune(
    node: &mut Map<String, Value>,
    top: bool,
    set: &FieldSet,
    how: Prune,
    key: &mut String,
) -> bool {
    let mut member = is_member(node, top);
    if set.is_member() {
        match how {
            Prune::Subtrees => return false,
            Prune::Members if member => {
                member = false;
                node.shift_remove(".");
            }
            Prune::Members => {}
        }
    }
    for (pe, c) in set.children() {
        key.clear();
        pe.encode_into(key);
        let gone = match node.field_mut(key.as_str()) {
            Some(Value::Object(child)) => !prune(child, false, c, how, key),
            _ => false,
        };
        if gone {
            key.clear();
            pe.encode_into(key);
            node.shift_remove(key.as_str());
        }
    }
    // `.` is still there exactly when the node is a member; without children a member is
    // the leaf `{}` and anything else goes.
    let children = node.len() - usize::from(node.keys().next().is_some_and(|k| k == "."));
    if children > 0 {
        return true;
    }
    if member {
        node.clear();
    }
    member
}

/// Whether every member of `set` is a member of canonical `FieldsV1` `stored`.
pub(super) fn contains_all(stored: &Map<String, Value>, set: &FieldSet) -> bool {
    fn walk(node: &Map<String, Value>, top: bool, set: &FieldSet, key: &mut String) -> bool {
        if set.is_member() && !is_member(node, top) {
            return false;
        }
        set.children()
            .all(|(pe, c)| child(node, pe, key).is_some_and(|n| walk(n, false, c, key)))
    }
    walk(stored, true, set, &mut String::new())
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::super::{apply, created, record, record_update_text, update_stored, Manager, Scope};
    use super::*;
    use crate::registry::{self, Resource};

    pub(crate) fn pods() -> &'static Resource {
        registry::lookup("", "v1", "pods").unwrap()
    }

    /// Pods drawn from small alphabets, so that successive writes often share, change and
    /// remove the same fields: labels (a map), finalizers (a set), keyed containers with keyed
    /// env and atomic args, and a status with a phase and keyed conditions.
    pub(crate) fn arb_pod() -> impl Strategy<Value = Value> {
        let container = (
            prop::option::of("[ab]"),
            prop::collection::btree_map("[AB]", "[ab]?", 0..3),
            prop::collection::vec("[ab]", 0..2),
            prop::collection::btree_map(0u8..3, prop::option::of("[ab]"), 0..3),
        );
        (
            prop::collection::btree_map("[a-c]", "[ab]", 0..3),
            prop::collection::btree_set("[a-c]", 0..3),
            prop::collection::btree_map("[a-c]", container, 0..3),
            prop::option::of("[AB]"),
            prop::collection::btree_map("[A-C]", ("[TF]", prop::option::of("[01]")), 0..3),
        )
            .prop_map(|(labels, finalizers, containers, phase, conditions)| {
                let containers: Vec<Value> = containers
                    .into_iter()
                    .map(|(name, (image, env, args, ports))| {
                        let mut c = json!({"name": name});
                        if let Some(i) = image {
                            c["image"] = json!(i);
                        }
                        if !env.is_empty() {
                            let env = env.into_iter().map(|(n, v)| json!({"name": n, "value": v}));
                            c["env"] = Value::Array(env.collect());
                        }
                        if !args.is_empty() {
                            c["args"] = json!(args);
                        }
                        if !ports.is_empty() {
                            let ports = ports.into_iter().map(|(p, n)| match n {
                                Some(n) => json!({"containerPort": p, "name": n}),
                                None => json!({"containerPort": p}),
                            });
                            c["ports"] = Value::Array(ports.collect());
                        }
                        c
                    })
                    .collect();
                let mut status = json!({});
                if let Some(p) = phase {
                    status["phase"] = json!(p);
                }
                if !conditions.is_empty() {
                    let conds = conditions.into_iter().map(|(t, (s, at))| {
                        let mut c = json!({"type": t, "status": s});
                        if let Some(at) = at {
                            c["lastTransitionTime"] = json!(at);
                        }
                        c
                    });
                    status["conditions"] = Value::Array(conds.collect());
                }
                let mut meta = json!({"name": "p"});
                if !labels.is_empty() {
                    meta["labels"] = json!(labels);
                }
                if !finalizers.is_empty() {
                    meta["finalizers"] = json!(finalizers);
                }
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                    "spec": {"containers": containers}, "status": status})
            })
    }

    /// One write of a sequence: the object it writes, who writes it (manager, apiVersion,
    /// main resource or status), whether it is an apply, whether the request carries the
    /// managedFields (and how they are spoiled, 0 for not at all).
    type Write = (Value, usize, bool, bool, bool, bool, u8);

    fn arb_write() -> impl Strategy<Value = Write> {
        (
            arb_pod(),
            0usize..3,
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.15),
            any::<bool>(),
            prop_oneof![6 => Just(0u8), 1 => 1u8..7],
        )
    }

    const MANAGERS: [&str; 3] = ["kubectl", "kubelet", "controller"];

    /// Makes the stored form of `list` non-canonical in one of several ways a client could.
    fn spoil(list: &mut Value, how: u8) {
        let Some(e) = list.as_array_mut().and_then(|l| l.first_mut()) else {
            return;
        };
        let m = e.as_object_mut().unwrap();
        match how {
            1 => {
                // Keys out of upstream's order.
                let t = m.shift_remove("apiVersion").unwrap_or(json!("v1"));
                m.insert("apiVersion".into(), t);
            }
            2 => {
                m.shift_remove("fieldsType");
            }
            3 => {
                m.insert("manager".into(), json!(""));
            }
            4 => {
                // FieldsV1 keys reversed.
                if let Some(Value::Object(f)) = m.field_mut("fieldsV1") {
                    *f = std::mem::take(f).into_iter().rev().collect();
                }
            }
            5 => {
                // A leaf written as `{".": {}}`.
                if let Some(Value::Object(f)) = m.field_mut("fieldsV1") {
                    if let Some((_, Value::Object(first))) = f.iter_mut().next() {
                        first.clear();
                        first.insert(".".into(), json!({}));
                    }
                }
            }
            _ => {
                m.insert("extra".into(), json!(1));
            }
        }
    }

    /// Replays `writes` over `first` (created by kubectl): applies directly, and every other
    /// write through `update`, given the live object, the object written, its manager and
    /// scope, the time, and whether and how the request carries the managedFields; `update`
    /// returns the next live object (`None` keeps it).
    fn replay(
        first: Value,
        writes: Vec<Write>,
        mut update: impl FnMut(
            &Value,
            Value,
            &Manager,
            Scope,
            &str,
            (bool, u8),
        ) -> Result<Option<Value>, TestCaseError>,
    ) -> Result<(), TestCaseError> {
        let res = pods();
        let mut live = first;
        let mf = created(
            res,
            &live,
            Scope::Main,
            &Manager {
                name: "kubectl",
                api_version: "v1",
                subresource: "",
            },
            "t0",
        );
        live["metadata"]["managedFields"] = mf;
        for (i, (obj, who, v2, status, is_apply, carry, spoiled)) in writes.into_iter().enumerate()
        {
            let now = format!("t{}", i + 1);
            let m = Manager {
                name: MANAGERS[who],
                api_version: if v2 { "v2" } else { "v1" },
                subresource: if status { "status" } else { "" },
            };
            let scope = if status { Scope::Status } else { Scope::Main };
            if is_apply {
                if let Ok(out) = apply(res, Some(&live), &obj, scope, &m, false, &now) {
                    live = out;
                }
                continue;
            }
            if let Some(next) = update(&live, obj, &m, scope, &now, (carry, spoiled))? {
                live = next;
            }
        }
        Ok(())
    }

    /// `obj` without its managedFields, and those as the JSON text they are stored as.
    fn split_entries(obj: &Value) -> (Value, Option<Vec<u8>>) {
        let mut side = obj.clone();
        let list = side["metadata"]
            .as_object_mut()
            .and_then(|m| m.shift_remove("managedFields"));
        (side, list.map(|l| serde_json::to_vec(&l).unwrap()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The in-place bookkeeping writes exactly, byte for byte, what decoding every entry
        /// writes, over sequences of updates, status updates and applies by several managers,
        /// with requests that carry the managedFields, omit them or spoil them.
        #[test]
        fn in_place_matches_decoding(first in arb_pod(), writes in prop::collection::vec(arb_write(), 1..6)) {
            replay(first, writes, |live, mut new, m, scope, now, (carry, spoiled)| {
                if carry {
                    let mut list = live.at("metadata").at("managedFields").clone();
                    spoil(&mut list, spoiled);
                    new["metadata"]["managedFields"] = list;
                }
                let mut fast = new.clone();
                let a = record(pods(), live, &mut fast, scope, Some(m), now, true);
                let b = record(pods(), live, &mut new, scope, Some(m), now, false);
                prop_assert_eq!(&a, &b);
                prop_assert_eq!(fast.to_string(), new.to_string());
                Ok(a.is_ok().then_some(fast))
            })?;
        }

        /// The bookkeeping on entries kept as text gives, whenever it answers, the entries the
        /// decoded bookkeeping writes, byte for byte, over sequences of writes by several
        /// managers (the entries beside the object, as a status write's are).
        #[test]
        fn text_entries_match_decoding(first in arb_pod(), writes in prop::collection::vec(arb_write(), 1..6)) {
            replay(first, writes, |live, mut new, m, scope, now, _| {
                let (old, entries) = split_entries(live);
                if let Some(l) = live.at("metadata").field("managedFields") {
                    new["metadata"]["managedFields"] = l.clone();
                }
                let (new_side, _) = split_entries(&new);
                let decoded = record(pods(), &old, &mut new, scope, Some(m), now, true);
                prop_assert!(decoded.is_ok());
                if let Some(entries) = entries {
                    if let Some(text) = record_update_text(pods(), &old, &new_side, scope, &entries, m, now) {
                        let want = new.at("metadata").field("managedFields").map(|l| serde_json::to_vec(l).unwrap());
                        prop_assert_eq!(Some(String::from_utf8(text).unwrap()), want.map(|w| String::from_utf8(w).unwrap()));
                    }
                }
                Ok(Some(new))
            })?;
        }
    }

    /// A kubelet's first status write after a controller's create is answered on the text:
    /// its entry is appended; a second status write (its own entry is there) and a write of
    /// fields another manager owns are left to the decoded bookkeeping.
    #[test]
    fn first_status_write_appends_its_entry_to_the_text() {
        let res = pods();
        let kcm = Manager {
            name: "kube-controller-manager",
            api_version: "v1",
            subresource: "",
        };
        let kubelet = Manager {
            name: "kubelet",
            api_version: "v1",
            subresource: "status",
        };
        let created_pod = json!({"metadata": {"name": "p", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Pending"}});
        let entries =
            serde_json::to_vec(&created(res, &created_pod, Scope::Main, &kcm, "t0")).unwrap();
        let mut running = created_pod.clone();
        running["status"] = json!({"phase": "Running", "podIP": "10.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}]});
        let text = record_update_text(
            res,
            &created_pod,
            &running,
            Scope::Status,
            &entries,
            &kubelet,
            "t1",
        )
        .expect("answered on the text");
        let list: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert_eq!(
            list[0],
            serde_json::from_slice::<Value>(&entries).unwrap()[0]
        );
        assert_eq!(list[1]["manager"], "kubelet");
        assert_eq!(list[1]["subresource"], "status");
        assert_eq!(
            list[1]["fieldsV1"],
            json!({"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}},
                "f:phase": {}, "f:podIP": {}}})
        );
        // The kubelet's next write finds its own entry there.
        let mut ready = running.clone();
        ready["status"]["podIP"] = json!("10.0.0.2");
        assert_eq!(
            record_update_text(res, &running, &ready, Scope::Status, &text, &kubelet, "t2"),
            None
        );
        // Another manager writing the kubelet's fields takes them from its entry.
        let other = Manager {
            name: "other",
            api_version: "v1",
            subresource: "status",
        };
        assert_eq!(
            record_update_text(res, &running, &ready, Scope::Status, &text, &other, "t2"),
            None
        );
        // Nothing changed: the entries stay as they are.
        assert_eq!(
            record_update_text(res, &running, &running, Scope::Status, &text, &other, "t2"),
            Some(text.clone())
        );
    }

    proptest! {
        /// A set's `FieldsV1` text is what its tree form serializes to.
        #[test]
        fn fields_v1_text_matches_the_tree(a in arb_pod(), b in arb_pod()) {
            let (changed, removed) = crate::managed::walk::diff_object(pods(), &a, &b, Scope::All);
            for set in [changed, removed] {
                let mut text = Vec::new();
                set.write_fields_v1(&mut text);
                prop_assert_eq!(String::from_utf8(text).unwrap(), set.to_fields_v1().to_string());
            }
        }
    }

    /// Lists in another order, so that keyed items are found away from their old position.
    fn shuffled(mut v: Value) -> Value {
        if let Some(cs) = v
            .pointer_mut("/spec/containers")
            .and_then(Value::as_array_mut)
        {
            cs.reverse();
            for c in cs {
                if let Some(ps) = c.field_mut("ports").and_then(Value::as_array_mut) {
                    ps.reverse();
                }
            }
        }
        if let Some(cs) = v
            .pointer_mut("/status/conditions")
            .and_then(Value::as_array_mut)
        {
            let n = cs.len().min(1);
            cs.rotate_left(n);
        }
        v
    }

    proptest! {
        /// The walk's shortcuts (equal values skipped, keyed lists paired without a map of
        /// path elements) find the same changed and removed fields as the plain walk.
        #[test]
        fn quick_diff_matches_plain(a in arb_pod(), b in arb_pod(), status: bool, shuffle: bool) {
            let res = pods();
            let scope = if status { Scope::Status } else { Scope::All };
            let b = if shuffle { shuffled(b) } else { b };
            for (old, new) in [(&a, &b), (&b, &a), (&a, &shuffled(a.clone()))] {
                let quick = crate::managed::walk::diff_object(res, old, new, scope);
                crate::managed::walk::PLAIN.with(|p| p.set(true));
                let plain = crate::managed::walk::diff_object(res, old, new, scope);
                crate::managed::walk::PLAIN.with(|p| p.set(false));
                prop_assert_eq!(&quick.0, &plain.0);
                prop_assert_eq!(&quick.1, &plain.1);
            }
        }
    }

    proptest! {
        /// The create's entry, built straight into JSON, is byte for byte the entry an update
        /// from nothing records through a field set.
        #[test]
        fn created_matches_the_set(obj in arb_pod(), status: bool) {
            let res = pods();
            let scope = if status { Scope::Status } else { Scope::Main };
            let m = Manager { name: "m", api_version: "v1", subresource: "" };
            let direct = created(res, &obj, scope, &m, "t");
            let mut via = obj.clone();
            record(res, &Value::Null, &mut via, scope, Some(&m), "t", false).unwrap();
            prop_assert_eq!(direct.to_string(), via.at("metadata").at("managedFields").to_string());
        }
    }

    fn kubelet() -> Manager<'static> {
        Manager {
            name: "kubelet",
            api_version: "v1",
            subresource: "status",
        }
    }

    fn running(ready: &str, at: &str) -> Value {
        json!({"phase": "Running", "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": at},
            {"type": "Ready", "status": ready, "lastTransitionTime": at}]})
    }

    /// A kubelet status update that changes only fields the kubelet's entry owns keeps every
    /// other entry as it was stored and moves only the kubelet's `time`.
    #[test]
    fn an_owner_changing_its_own_fields_only_moves_its_time() {
        let res = pods();
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
            "labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let c = Manager {
            name: "kubectl",
            api_version: "v1",
            subresource: "",
        };
        pod["metadata"]["managedFields"] = created(res, &pod, Scope::Main, &c, "t0");
        let mut first = pod.clone();
        first["status"] = running("False", "t1");
        record(
            res,
            &pod,
            &mut first,
            Scope::Status,
            Some(&kubelet()),
            "t1",
            true,
        )
        .unwrap();
        let mut second = first.clone();
        second["status"] = running("True", "t2");
        let mut fast = second.clone();
        assert!({
            let d = crate::managed::walk::diff_object(res, &first, &second, Scope::Status);
            update_stored(&mut fast, &d.0, &d.1, &kubelet(), "t2")
        });
        record(
            res,
            &first,
            &mut second,
            Scope::Status,
            Some(&kubelet()),
            "t2",
            false,
        )
        .unwrap();
        assert_eq!(fast.to_string(), second.to_string());
        let before = &first.at("metadata").at("managedFields");
        let after = &fast.at("metadata").at("managedFields");
        assert_eq!(after[0], before[0]);
        let mut moved = before[1].clone();
        moved["time"] = json!("t2");
        assert_eq!(after[1], moved);
    }

    #[test]
    fn canonical_entries_are_recognised() {
        let e = json!({"manager": "m", "operation": "Update", "apiVersion": "v1",
            "time": "t", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"a\"": {}, "v:3": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}},
                    "f:x": {"i:2": {}, "i:10": {}}}},
            "subresource": "status"});
        assert!(entry_is_canonical(&e));
        let spoiled = |f: &dyn Fn(&mut Value)| {
            let mut s = e.clone();
            f(&mut s);
            entry_is_canonical(&s)
        };
        assert!(!spoiled(&|s| s["manager"] = json!("")));
        assert!(!spoiled(&|s| s["subresource"] = json!("")));
        assert!(!spoiled(&|s| s["fieldsV1"] = json!({})));
        assert!(!spoiled(
            &|s| s["fieldsV1"]["f:spec"]["f:x"] = json!({"i:10": {}, "i:2": {}})
        ));
        assert!(!spoiled(
            &|s| s["fieldsV1"]["f:spec"]["f:x"] = json!({"i:02": {}})
        ));
        assert!(!spoiled(
            &|s| s["fieldsV1"]["f:spec"]["f:x"] = json!({".": {}})
        ));
        assert!(!spoiled(
            &|s| s["fieldsV1"]["f:spec"]["f:x"] = json!({"k:{\"a\": 1}": {}})
        ));
        assert!(!spoiled(
            &|s| s["fieldsV1"]["f:spec"]["f:x"] = json!({"v:1.50": {}})
        ));
        assert!(!spoiled(
            &|s| s["fieldsV1"]["f:spec"]["f:x"] = json!({"x:1": {}})
        ));
        assert!(!spoiled(
            &|s| s["fieldsV1"]["f:spec"]["f:x"] = json!({"f:a": 1})
        ));
        // Forms serde_json prints the same way are recognised even off the quick path.
        assert!(spoiled(
            &|s| s["fieldsV1"]["f:spec"]["f:x"] = json!({"v:\"a\\\"b\"": {}})
        ));
        assert!(spoiled(
            &|s| s["fieldsV1"]["f:spec"]["f:x"] = json!({"k:{\"a\":1,\"b\":2}": {}})
        ));
        assert!(spoiled(&|s| {
            s.as_object_mut().unwrap().shift_remove("time");
        }));
    }
}
