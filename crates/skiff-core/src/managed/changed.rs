//! The `FieldsV1` text of the fields an update changed, written during the walk that finds
//! them instead of gathered into a [`FieldSet`](super::FieldSet) and encoded after.
//!
//! A manager's first write to fields nobody owns (a kubelet's first status: conditions,
//! container statuses, addresses, some fifty fields) appends an entry owning what it changed,
//! and that entry is all the bookkeeping writes ([`super::record_update_text`]). Built as a set,
//! every field is a node with its own allocations (its name copied, its children's vector),
//! walked again to be encoded and dropped after; here every field is its bytes in one buffer.
//!
//! The walk is [`diff_object`](super::walk::diff_object)'s, step for step, keeping only
//! `changed`. A node's text is written where the walk meets it: `{`, `".":{}` when it is
//! itself a member (walks mark a node before recording below it), then its children, each as
//! soon as it is complete, in the order the objects hold them. When the node closes, its
//! children are put in the set's order (fields, merge keys, values, each kind by its text),
//! which moves bytes only when the objects' order differs; a node that recorded nothing is
//! taken back out, a member without children is `{}`.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::fieldset::{push_json_scalar, push_json_str, write_key_json, PathElement};
use super::walk::{
    item_keys, list_kind, present, quick, same, same_key, same_map, Filter, ListKind,
};
use super::Scope;
use crate::ring::{same_json, Ring};
use crate::strategic::schema::Schema;
use crate::strategic::FieldMeta;
use crate::Resource;

/// The `FieldsV1` text of the `changed` set [`walk::diff_object`] finds from `old` to `new`,
/// byte for byte what [`super::FieldSet::write_fields_v1`] writes for it (`{}` when nothing
/// changed), provided no top-level field the update changes or removes is one `untouched`
/// refuses: `None` then, without walking below the top (nor for the rare element this writer
/// leaves to the set: a list position).
///
/// [`walk::diff_object`]: super::walk::diff_object
pub(crate) fn changed_fields_v1(
    res: &Resource,
    old: &Value,
    new: &Value,
    scope: Scope,
    untouched: impl Fn(&str) -> bool,
) -> Option<Vec<u8>> {
    let empty = Map::new();
    let om = old.as_object().unwrap_or(&empty);
    let nm = new.as_object().unwrap_or(&empty);
    let top = Filter::Top(scope);
    // The top-level fields that differ: changed, added or removed.
    let differs = |k: &str, ov: Option<&Value>, nv: Option<&Value>| match (ov, nv) {
        (Some(ov), Some(nv)) => !same(ov, nv) && !top.skips(k),
        (None, None) => false,
        _ => !top.skips(k),
    };
    for (k, nv) in nm {
        let nv = Some(nv).filter(|v| !v.is_null());
        if differs(k, present(om, k), nv) && !untouched(k) {
            return None;
        }
    }
    for (k, ov) in om {
        let ov = Some(ov).filter(|v| !v.is_null());
        if present(nm, k).is_none() && differs(k, ov, None) && !untouched(k) {
            return None;
        }
    }
    let mut w = Writer::default();
    let mut root = w.open();
    w.diff_map(&mut root, om, nm, Schema::of(res), top);
    if !w.close(root) {
        // Nothing changed: the empty set, its `{` closed.
        w.out.push(b'}');
    }
    (!w.failed).then_some(w.out)
}

/// A path element as the writer takes it: its kind and its text.
#[derive(Clone, Copy)]
enum Elem<'e> {
    Key(&'e str),
    Value(&'e str),
}

/// The `FieldsV1` text being written from objects that live for `'a`, with what it needs to
/// order children.
struct Writer<'a> {
    out: Vec<u8>,
    /// The complete children of the open nodes, innermost last.
    kids: Vec<Kid<'a>>,
    /// The texts of the elements of children that are not field names (merge keys and
    /// values, made during the walk).
    names: String,
    scratch: Vec<u8>,
    /// Something this writer leaves to the set came up: the text is not used.
    failed: bool,
}

impl Default for Writer<'_> {
    /// Room for a status write's set without growing.
    fn default() -> Self {
        Writer {
            out: Vec::with_capacity(2048),
            kids: Vec::with_capacity(32),
            names: String::with_capacity(256),
            scratch: Vec::new(),
            failed: false,
        }
    }
}

/// A complete child: its text in `out`, and its element's kind (the set's order: fields, keys,
/// values) and text.
struct Kid<'a> {
    text: (usize, usize),
    rank: u8,
    name: Name<'a>,
}

/// The text of a child's element: a field's name in the objects, or a range of `names`.
#[derive(Clone, Copy)]
enum Name<'a> {
    Field(&'a str),
    Made(usize, usize),
}

/// An open node: where its `{` is, where its children start in `kids` and `names`, and
/// whether it is itself a member.
struct Node {
    at: usize,
    kids: usize,
    names: usize,
    member: bool,
}

impl<'a> Writer<'a> {
    fn open(&mut self) -> Node {
        self.out.push(b'{');
        Node {
            at: self.out.len() - 1,
            kids: self.kids.len(),
            names: self.names.len(),
            member: false,
        }
    }

    /// Makes `n` a member. Walks mark a node before recording below it, so the marker comes
    /// first; were a node marked after a child, the text would be left to the set.
    fn mark(&mut self, n: &mut Node) {
        if n.member {
            return;
        }
        n.member = true;
        if self.kids.len() > n.kids {
            self.failed = true;
        }
        self.out.extend_from_slice(b"\".\":{}");
    }

    /// Starts a child of `n`: its comma and its key.
    fn key(&mut self, n: &Node, prefix: &[u8; 2], text: &str) -> usize {
        if self.out.len() > n.at + 1 {
            self.out.push(b',');
        }
        let start = self.out.len();
        write_key_json(&mut self.out, prefix, text);
        self.out.push(b':');
        start
    }

    /// Field `k` of `n` as a member without children: `{}`, the node of a changed scalar.
    fn leaf(&mut self, n: &Node, k: &'a str) {
        let start = self.key(n, b"f:", k);
        self.out.extend_from_slice(b"{}");
        let text = (start, self.out.len());
        let name = Name::Field(k);
        self.kids.push(Kid {
            text,
            rank: 0,
            name,
        });
    }

    /// Records field `k` of `n` with `f`, keeping it if it recorded something.
    fn field(&mut self, n: &Node, k: &'a str, f: impl FnOnce(&mut Self, &mut Node)) {
        self.child_named(n, 0, b"f:", Name::Field(k), f);
    }

    /// Records the list item `pe` of `n` with `f`, keeping it if it recorded something.
    fn item(&mut self, n: &Node, pe: Elem<'_>, f: impl FnOnce(&mut Self, &mut Node)) {
        let (rank, prefix, text) = match pe {
            Elem::Key(s) => (1, b"k:", s),
            Elem::Value(s) => (2, b"v:", s),
        };
        let at = self.names.len();
        self.names.push_str(text);
        let name = Name::Made(at, self.names.len());
        self.child_named(n, rank, prefix, name, f);
    }

    /// Records child `name` of `n` (its text in `names` when made) with `f`; where its text
    /// (key and node) is in `out` if it is kept.
    fn child_named(
        &mut self,
        n: &Node,
        rank: u8,
        prefix: &[u8; 2],
        name: Name<'a>,
        f: impl FnOnce(&mut Self, &mut Node),
    ) -> Option<(usize, usize)> {
        let undo = self.out.len();
        let start = match name {
            Name::Field(k) => self.key(n, prefix, k),
            Name::Made(a, b) => {
                let text = std::mem::take(&mut self.names);
                let start = self.key(n, prefix, &text[a..b]);
                self.names = text;
                start
            }
        };
        let mut c = self.open();
        f(self, &mut c);
        if self.close(c) {
            let text = (start, self.out.len());
            self.kids.push(Kid { text, rank, name });
            Some(text)
        } else {
            self.out.truncate(undo);
            if let Name::Made(a, _) = name {
                self.names.truncate(a);
            }
            None
        }
    }

    /// Closes `n`: its children in the set's order and its `}`. `false`, with its `{` left for
    /// the caller to take out, when it holds nothing.
    fn close(&mut self, n: Node) -> bool {
        let kids = &mut self.kids[n.kids..];
        if kids.is_empty() {
            if !n.member {
                return false;
            }
            // A member without children is a leaf: `{}`.
            self.out.truncate(n.at + 1);
            self.out.push(b'}');
            self.names.truncate(n.names);
            return true;
        }
        let names = &self.names;
        let text = |k: &Kid<'a>| match k.name {
            Name::Field(s) => s.as_bytes(),
            Name::Made(a, b) => &names.as_bytes()[a..b],
        };
        let order =
            |a: &Kid<'a>, b: &Kid<'a>| a.rank.cmp(&b.rank).then_with(|| text(a).cmp(text(b)));
        if !kids.windows(2).all(|p| order(&p[0], &p[1]).is_lt()) {
            let first = kids[0].text.0;
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.out[first..]);
            kids.sort_by(order);
            // One element twice would be one node in the set, merged: left to the set.
            if !kids.windows(2).all(|p| order(&p[0], &p[1]).is_lt()) {
                self.failed = true;
            }
            self.out.truncate(first);
            for (i, k) in kids.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                self.out
                    .extend_from_slice(&self.scratch[k.text.0 - first..k.text.1 - first]);
            }
        }
        self.out.push(b'}');
        self.kids.truncate(n.kids);
        self.names.truncate(n.names);
        true
    }

    /// A list item's element, from the walks' own (fields and positions are left to the set:
    /// walks make neither for list items).
    fn elem<'e>(&mut self, pe: &'e PathElement) -> Elem<'e> {
        match pe {
            PathElement::Key(s) => Elem::Key(s),
            PathElement::Value(s) => Elem::Value(s),
            PathElement::Field(_) | PathElement::Index(_) => {
                self.failed = true;
                Elem::Value("")
            }
        }
    }

    /// The element's text of a keyed list item, by merge key `key` (a scalar the caller
    /// checked), written straight into `names` as [`super::fieldset::key_element`] writes it.
    fn key_name(&mut self, key: &str, value: &Value) -> Name<'a> {
        let at = self.names.len();
        self.names.push('{');
        push_json_str(&mut self.names, key);
        self.names.push(':');
        push_json_scalar(&mut self.names, value);
        self.names.push('}');
        Name::Made(at, self.names.len())
    }

    /// The child of a keyed list item (see [`Self::key_name`]) recorded with `f`.
    fn keyed_item(
        &mut self,
        n: &Node,
        key: &str,
        value: &Value,
        f: impl FnOnce(&mut Self, &mut Node),
    ) {
        let name = self.key_name(key, value);
        self.child_named(n, 1, b"k:", name, f);
    }

    /// The child of an item a keyed list did not have (see [`Self::key_name`]): every field of
    /// it, which depends on the item, the list's merge key and the schema alone. The items of a
    /// workload's lists repeat from write to write (the conditions a kubelet adds, the same in
    /// one second), so the child's text is taken from this thread's last ones when the item is
    /// the same (its members in the same order), and remembered when it is new.
    fn added_item(&mut self, n: &Node, key: &str, value: &Value, item: &'a Value, schema: Schema) {
        ADDED.with(|memo| {
            let Ok(mut memo) = memo.try_borrow_mut() else {
                self.keyed_item(n, key, value, |w, c| {
                    w.value_fields(c, item, FieldMeta::DEFAULT, schema, Filter::None, true)
                });
                return;
            };
            let same = |a: &Added| a.schema == schema && a.key == key && same_json(&a.item, item);
            if let Some(known) = memo.find(same) {
                if self.out.len() > n.at + 1 {
                    self.out.push(b',');
                }
                let start = self.out.len();
                self.out.extend_from_slice(&known.text);
                let at = self.names.len();
                self.names.push_str(&known.name);
                self.kids.push(Kid {
                    text: (start, self.out.len()),
                    rank: 1,
                    name: Name::Made(at, self.names.len()),
                });
                return;
            }
            let failed = std::mem::replace(&mut self.failed, false);
            let name = self.key_name(key, value);
            let child = self.child_named(n, 1, b"k:", name, |w, c| {
                w.value_fields(c, item, FieldMeta::DEFAULT, schema, Filter::None, true)
            });
            if let (Some((a, b)), Name::Made(na, nb), false) = (child, name, self.failed) {
                memo.put(
                    Added {
                        schema,
                        key: key.to_string(),
                        item: item.clone(),
                        name: self.names[na..nb].to_string(),
                        text: self.out[a..b].to_vec(),
                    },
                    ADDED_ITEMS,
                );
            }
            self.failed |= failed;
        });
    }

    // The walk: `walk::diff_map`, `diff_value`, `diff_keyed`, `value_fields` and `map_fields`
    // with `changed` alone, in the same order. A scalar's node is a leaf, written as one.

    fn diff_map(
        &mut self,
        n: &mut Node,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        schema: Schema,
        filter: Filter,
    ) {
        for (k, nv) in new {
            if nv.is_null() || filter.skips(k) {
                continue;
            }
            let ov = present(old, k);
            let (cf, member) = filter.child(k);
            if cf != Filter::Meta && quick() && ov.is_some_and(|ov| same(ov, nv)) {
                continue;
            }
            if !is_container(nv) && ov.is_none_or(|ov| !is_container(ov)) {
                // Set, or replaced by another value: `value_fields` and `diff_value` mark it.
                if ov != Some(nv) {
                    self.leaf(n, k);
                }
                continue;
            }
            let (meta, s) = schema.field(k);
            self.field(n, k, |w, c| match ov {
                None => w.value_fields(c, nv, meta, s, cf, member),
                Some(ov) => w.diff_value(c, ov, nv, meta, s, cf),
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn diff_value(
        &mut self,
        n: &mut Node,
        ov: &'a Value,
        nv: &'a Value,
        meta: FieldMeta,
        schema: Schema,
        filter: Filter,
    ) {
        match (ov, nv) {
            (Value::Object(om), Value::Object(nm)) => {
                if nm.is_empty() && !om.is_empty() {
                    self.mark(n);
                }
                self.diff_map(n, om, nm, schema, filter)
            }
            (Value::Array(oi), Value::Array(ni)) if !oi.is_empty() && !ni.is_empty() => {
                if let Some(k) = meta.merge_key().filter(|_| quick()) {
                    if let (Some(ok), Some(nk)) = (item_keys(k, oi), item_keys(k, ni)) {
                        self.diff_keyed(n, k, (oi, &ok), (ni, &nk), schema);
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
                                    let e = self.elem(pe);
                                    self.item(n, e, |w, c| {
                                        w.diff_map(c, a, b, schema, Filter::None)
                                    });
                                }
                                None => {
                                    let e = self.elem(pe);
                                    self.item(n, e, |w, c| {
                                        let meta = FieldMeta::DEFAULT;
                                        w.value_fields(c, item, meta, schema, Filter::None, true)
                                    });
                                }
                            }
                        }
                    }
                    (ListKind::Set(oe), ListKind::Set(ne)) => {
                        let olds: HashSet<&PathElement> = oe.iter().collect();
                        for pe in ne.iter().filter(|pe| !olds.contains(pe)) {
                            let e = self.elem(pe);
                            self.item(n, e, |w, c| w.mark(c));
                        }
                    }
                    _ if ov != nv => self.mark(n),
                    _ => {}
                }
            }
            _ if ov != nv => self.mark(n),
            _ => {}
        }
    }

    fn diff_keyed(
        &mut self,
        n: &mut Node,
        key: &str,
        (oi, ok): (&'a [Value], &[&Value]),
        (ni, nk): (&'a [Value], &[&Value]),
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
                    self.keyed_item(n, key, k, |w, c| w.diff_map(c, a, b, schema, Filter::None));
                }
                Some(_) => continue,
                None => self.added_item(n, key, k, item, schema),
            }
        }
    }

    /// `walk::value_fields` of an added value (`added` set).
    fn value_fields(
        &mut self,
        n: &mut Node,
        v: &'a Value,
        meta: FieldMeta,
        schema: Schema,
        filter: Filter,
        member: bool,
    ) {
        match v {
            Value::Object(m) => {
                if member || m.is_empty() {
                    self.mark(n);
                }
                self.map_fields(n, m, schema, filter);
            }
            Value::Array(items) => match list_kind(meta, items) {
                _ if items.is_empty() => self.mark(n),
                ListKind::Atomic => self.mark(n),
                ListKind::Keyed(elems) => {
                    for (item, pe) in items.iter().zip(&elems) {
                        let e = self.elem(pe);
                        self.item(n, e, |w, c| {
                            w.mark(c);
                            if let Value::Object(im) = item {
                                w.map_fields(c, im, schema, Filter::None);
                            }
                        });
                    }
                }
                ListKind::Set(elems) => {
                    for pe in &elems {
                        let e = self.elem(pe);
                        self.item(n, e, |w, c| w.mark(c));
                    }
                }
            },
            _ => self.mark(n),
        }
    }

    fn map_fields(
        &mut self,
        n: &mut Node,
        m: &'a Map<String, Value>,
        schema: Schema,
        filter: Filter,
    ) {
        for (k, v) in m {
            if v.is_null() || filter.skips(k) {
                continue;
            }
            if !is_container(v) {
                self.leaf(n, k);
                continue;
            }
            let (meta, s) = schema.field(k);
            let (cf, member) = filter.child(k);
            self.field(n, k, |w, c| w.value_fields(c, v, meta, s, cf, member));
        }
    }
}

/// How many added items [`ADDED`] remembers.
const ADDED_ITEMS: usize = 8;

thread_local! {
    /// The last items added to keyed lists (see [`Writer::added_item`]).
    static ADDED: std::cell::RefCell<Ring<Added>> = const { std::cell::RefCell::new(Ring::new()) };
}

/// An item added to a keyed list: where it was (the schema of the list's items and its merge
/// key), the item, its element's text and its child's text (key and node).
struct Added {
    schema: Schema,
    key: String,
    item: Value,
    name: String,
    text: Vec<u8>,
}

/// Whether `v` is a map or a list (whose node the walks may give children).
fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::managed::stored::tests::{arb_pod, pods};
    use crate::managed::walk::{diff_object, PLAIN};

    /// The set's text of what changed from `old` to `new`.
    fn via_set(old: &Value, new: &Value, scope: Scope) -> String {
        let mut text = Vec::new();
        diff_object(pods(), old, new, scope)
            .0
            .write_fields_v1(&mut text);
        String::from_utf8(text).unwrap()
    }

    fn written(old: &Value, new: &Value, scope: Scope) -> String {
        let text = changed_fields_v1(pods(), old, new, scope, |_| true).expect("written");
        String::from_utf8(text).unwrap()
    }

    proptest! {
        /// The text is the set's, byte for byte, for updates of every kind of field (maps,
        /// sets, keyed and atomic lists, added, changed and removed, in orders other than the
        /// set's), with the walk's shortcuts and without them.
        #[test]
        fn text_matches_the_set(a in arb_pod(), b in arb_pod(), status: bool, plain: bool) {
            let scope = if status { Scope::Status } else { Scope::All };
            PLAIN.with(|p| p.set(plain));
            for (old, new) in [(&a, &b), (&b, &a), (&Value::Null, &a), (&a, &a)] {
                prop_assert_eq!(written(old, new, scope), via_set(old, new, scope));
            }
            PLAIN.with(|p| p.set(false));
        }
    }

    /// A kubelet's first status write, its fields in the order a typed status serializes them
    /// (not the set's), with keys and values that need escaping.
    #[test]
    fn a_first_status_write_is_the_sets() {
        let t = "2026-01-01T00:00:00Z";
        let old = json!({"metadata": {}, "status": {"phase": "Pending", "qosClass": "Burstable",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": t}]}});
        let cond = |c: &str| json!({"type": c, "status": "True", "lastTransitionTime": t});
        let new = json!({"metadata": {}, "status": {
            "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"),
                cond("ContainersReady"), cond("Ready"),
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
                cond("x\"y\\z\u{1}")],
            "containerStatuses": [{"containerID": "skiff-sim://0", "image": "nginx",
                "imageID": "nginx@sha256:0", "lastState": {}, "name": "web", "ready": true,
                "restartCount": 0, "started": true,
                "state": {"running": {"startedAt": t}}}],
            "hostIP": "198.18.0.1", "hostIPs": [{"ip": "198.18.0.1"}],
            "phase": "Running", "podIP": "10.42.0.2", "podIPs": [{"ip": "10.42.0.2"}],
            "qosClass": "Burstable", "startTime": t, "a\"\u{2}": 1}});
        let text = written(&old, &new, Scope::Status);
        assert_eq!(text, via_set(&old, &new, Scope::Status));
        assert!(text.starts_with(r#"{"f:status":{"f:a\"\u0002":{},"f:conditions":{"k:{\"type\":\"ContainersReady\"}""#), "{text}");
        // Nothing changed: an empty set.
        assert_eq!(written(&new, &new, Scope::Status), "{}");
    }

    /// Items added to a keyed list are written from the text of the same item added before,
    /// and only from it: an item with its members in another order, or with other values in
    /// its maps and lists, is written anew.
    #[test]
    fn added_items_are_the_sets_when_remembered() {
        let old = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}});
        let item = json!({"type": "Ready", "status": "True", "x": {"b": [1, 2], "a": {"c": null}}});
        let mut reordered = serde_json::Map::new();
        for k in ["x", "status", "type"] {
            reordered.insert(k.into(), item[k].clone());
        }
        let mut other = item.clone();
        other["x"]["a"] = json!({"c": 1, "d": {}});
        let items = [
            item,
            Value::Object(reordered),
            other,
            json!({"type": "Ready"}),
        ];
        for round in 0..2 {
            for (i, it) in items.iter().enumerate() {
                let mut new = old.clone();
                new["status"]["conditions"]
                    .as_array_mut()
                    .unwrap()
                    .insert(0, it.clone());
                for scope in [Scope::Status, Scope::All] {
                    assert_eq!(
                        written(&old, &new, scope),
                        via_set(&old, &new, scope),
                        "item {i}, round {round}"
                    );
                }
            }
        }
        assert!(ADDED.with(|m| !m.borrow().is_empty()));
    }

    /// A top-level field the update changes or removes that the caller says is owned stops
    /// the text before any walk; fields that are the same on both sides are not asked about.
    #[test]
    fn owned_top_level_fields_are_left_to_the_set() {
        let old =
            json!({"metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}, "status": {"phase": "A"}});
        let mut new = old.clone();
        new["status"]["phase"] = json!("B");
        let asked = std::cell::RefCell::new(Vec::new());
        let ask = |owned: &'static str| {
            let asked = &asked;
            move |k: &str| {
                asked.borrow_mut().push(k.to_string());
                k != owned
            }
        };
        assert_eq!(
            changed_fields_v1(pods(), &old, &new, Scope::All, ask("status")),
            None
        );
        assert!(changed_fields_v1(pods(), &old, &new, Scope::All, ask("spec")).is_some());
        assert_eq!(*asked.borrow(), ["status", "status"]);
        // A removed field is asked about too.
        new.as_object_mut().unwrap().shift_remove("spec");
        assert_eq!(
            changed_fields_v1(pods(), &old, &new, Scope::All, ask("spec")),
            None
        );
    }
}
