//! Sets of field paths, as structured-merge-diff's `fieldpath.Set`, and their `FieldsV1`
//! encoding: a tree whose keys are `f:<field>`, `k:<merge key as JSON>` for items of lists
//! keyed by a merge key, `v:<value as JSON>` for items of lists of primitives merged as sets
//! and `i:<index>`; `".": {}` marks a node that is itself a member and has children.

use crate::meta::Fields as _;
use std::fmt;

use serde_json::{Map, Value};

use super::ManagedError;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of a map or struct.
    Field(String),
    /// An item of a list of maps, by its merge key: compact JSON, e.g. `{"name":"web"}`.
    Key(String),
    /// An item of a set of primitives, by its value as compact JSON.
    Value(String),
    /// An item of a list by position.
    Index(usize),
}

impl PathElement {
    /// The `FieldsV1` key of this element.
    pub fn encode(&self) -> String {
        let len = match self {
            PathElement::Field(s) | PathElement::Key(s) | PathElement::Value(s) => s.len(),
            PathElement::Index(_) => 20,
        };
        let mut s = String::with_capacity(len + 2);
        self.encode_into(&mut s);
        s
    }

    /// Appends the `FieldsV1` key of this element to `out`.
    pub(crate) fn encode_into(&self, out: &mut String) {
        let (prefix, rest) = match self {
            PathElement::Field(f) => ("f:", f.as_str()),
            PathElement::Key(k) => ("k:", k.as_str()),
            PathElement::Value(v) => ("v:", v.as_str()),
            PathElement::Index(i) => {
                use std::fmt::Write;
                out.push_str("i:");
                write!(out, "{i}").expect("writing to a String");
                return;
            }
        };
        out.reserve(prefix.len() + rest.len());
        out.push_str(prefix);
        out.push_str(rest);
    }

    /// The `FieldsV1` key of this element as a JSON string, escaped as serde_json escapes:
    /// quotes and backslashes (a key's JSON text has quotes) with a backslash before them,
    /// without building the key first; an element with a control character goes through
    /// serde_json.
    pub(crate) fn write_json_key(&self, out: &mut Vec<u8>) {
        let (prefix, rest): (&[u8; 2], &str) = match self {
            PathElement::Field(f) => (b"f:", f),
            PathElement::Key(k) => (b"k:", k),
            PathElement::Value(v) => (b"v:", v),
            PathElement::Index(i) => {
                use std::io::Write;
                write!(out, "\"i:{i}\"").expect("writing to a Vec");
                return;
            }
        };
        write_key_json(out, prefix, rest);
    }

    /// Parses a `FieldsV1` key (not `.`).
    pub fn decode(s: &str) -> Result<PathElement, ManagedError> {
        let bad = || ManagedError::BadFieldsV1(format!("unknown path element {s:?}"));
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let json = |r: &str| -> Result<String, ManagedError> {
            let v: Value = serde_json::from_str(r).map_err(|_| bad())?;
            Ok(v.to_string())
        };
        match kind {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => {
                let k = json(rest)?;
                if !k.starts_with('{') {
                    return Err(bad());
                }
                Ok(PathElement::Key(k))
            }
            "v" => Ok(PathElement::Value(json(rest)?)),
            "i" => rest.parse().map(PathElement::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// The `FieldsV1` key `prefix` + `rest` (`f:`, `k:` or `v:` and the element's text) as a JSON
/// string, escaped as serde_json escapes: see [`PathElement::write_json_key`]. The text is
/// copied a run at a time between the bytes that need escaping (most keys have none).
pub(crate) fn write_key_json(out: &mut Vec<u8>, prefix: &[u8; 2], rest: &str) {
    let start = out.len();
    let b = rest.as_bytes();
    out.reserve(b.len() + 8);
    out.push(b'"');
    out.extend_from_slice(prefix);
    let mut at = 0;
    while let Some(i) = crate::meta::first_special(&b[at..]) {
        let c = b[at + i];
        if c < 0x20 {
            out.truncate(start);
            let mut key = String::with_capacity(rest.len() + 2);
            key.extend(prefix.iter().map(|&b| char::from(b)));
            key.push_str(rest);
            serde_json::to_writer(&mut *out, &key).expect("a string");
            return;
        }
        out.extend_from_slice(&b[at..at + i]);
        out.push(b'\\');
        out.push(c);
        at += i + 1;
    }
    out.extend_from_slice(&b[at..]);
    out.push(b'"');
}

/// The key element of a list item keyed by `key`, or `None` if the item has no scalar value
/// there.
pub fn key_element(key: &str, item: &Value) -> Option<PathElement> {
    let v = item.field(key)?;
    if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
        return None;
    }
    // `{"<key>":<value>}`, as serde_json prints a map of one entry.
    let mut out = String::with_capacity(key.len() + 8 + v.as_str().map_or(8, str::len));
    out.push('{');
    push_json_str(&mut out, key);
    out.push(':');
    push_json_scalar(&mut out, v);
    out.push('}');
    Some(PathElement::Key(out))
}

/// The element of an item of a set of primitives.
pub fn value_element(item: &Value) -> PathElement {
    match item {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            let mut out = String::new();
            push_json_scalar(&mut out, item);
            PathElement::Value(out)
        }
        _ => PathElement::Value(item.to_string()),
    }
}

/// Appends scalar `v` as serde_json prints it.
pub(crate) fn push_json_scalar(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => push_json_str(out, s),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Null => out.push_str("null"),
        other => {
            use std::fmt::Write;
            write!(out, "{other}").expect("writing to a String");
        }
    }
}

/// Appends `s` as a JSON string as serde_json prints it: a string without `"`, `\` or control
/// characters (serde_json escapes nothing else) is copied as it is.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        let mut buf = std::mem::take(out).into_bytes();
        serde_json::to_writer(&mut buf, s).expect("a string serialises");
        *out = String::from_utf8(buf).expect("serde_json writes UTF-8");
    }
}

/// A path as upstream prints it in conflicts: `.spec.containers[name="web"].image`.
pub struct DisplayPath<'a>(pub &'a [PathElement]);

impl fmt::Display for DisplayPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in self.0 {
            match pe {
                PathElement::Field(n) => write!(f, ".{n}")?,
                PathElement::Key(k) => {
                    let parsed: Value = serde_json::from_str(k).unwrap_or(Value::Null);
                    let parts: Vec<String> = parsed
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(n, v)| format!("{n}={v}"))
                        .collect();
                    write!(f, "[{}]", parts.join(","))?
                }
                PathElement::Value(v) => write!(f, "[={v}]")?,
                PathElement::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// A set of field paths, as a tree. A node is a member when the path to it is in the set;
/// nodes that are neither members nor lead to members are never kept.
///
/// A node's children are a vector sorted by element (the order of [`PathElement`]'s `Ord`,
/// each element once): nodes have a handful of children, and a vector is one small allocation
/// that is quick to search, walk and drop, where a B-tree allocates a node of eleven slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: Vec<(PathElement, FieldSet)>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// Where child `pe` is, or would be inserted.
    fn find(&self, pe: &PathElement) -> Result<usize, usize> {
        // Walks visit fields mostly in order: a new last child is the common case.
        match self.children.last() {
            None => Err(0),
            Some((last, _)) if *last < *pe => Err(self.children.len()),
            _ => self.children.binary_search_by(|(k, _)| k.cmp(pe)),
        }
    }

    /// The node of child `pe`, made empty if there is none (`pe` is copied only then).
    fn entry(&mut self, pe: &PathElement) -> &mut FieldSet {
        let i = match self.find(pe) {
            Ok(i) => i,
            Err(i) => {
                self.children.insert(i, (pe.clone(), FieldSet::default()));
                i
            }
        };
        &mut self.children[i].1
    }

    /// Adds the members of `node` below child `pe` (nothing for an empty `node`).
    pub(crate) fn put(&mut self, pe: PathElement, node: FieldSet) {
        if node.is_empty() {
            return;
        }
        match self.find(&pe) {
            Ok(i) => self.children[i].1.union_with(&node),
            Err(i) => self.children.insert(i, (pe, node)),
        }
    }

    /// Removes child `pe` if it holds nothing.
    fn drop_if_empty(&mut self, pe: &PathElement) {
        if let Ok(i) = self.find(pe) {
            if self.children[i].1.is_empty() {
                self.children.remove(i);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Whether the path to this node is itself a member.
    pub(crate) fn is_member(&self) -> bool {
        self.member
    }

    /// The node of child `pe`.
    pub(crate) fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.find(pe).ok().map(|i| &self.children[i].1)
    }

    /// How many members the set has.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.member) + self.children.iter().map(|(_, c)| c.len()).sum::<usize>()
    }

    /// The nodes below this one, in the set's order.
    pub(crate) fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter().map(|(pe, c)| (pe, c))
    }

    /// Adds `path`.
    pub fn insert(&mut self, path: &[PathElement]) {
        let mut node = self;
        for pe in path {
            node = node.entry(pe);
        }
        node.member = true;
    }

    fn node(&self, path: &[PathElement]) -> Option<&FieldSet> {
        let mut node = self;
        for pe in path {
            node = node.child(pe)?;
        }
        Some(node)
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.node(path).is_some_and(|n| n.member)
    }

    /// Whether `path` or any path below it is a member.
    pub fn has_at_or_below(&self, path: &[PathElement]) -> bool {
        self.node(path).is_some_and(|n| !n.is_empty())
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (pe, c) in &other.children {
            self.entry(pe).union_with(c);
        }
    }

    /// The members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.remove_members(other);
        out
    }

    /// Removes the members of `other` (only those paths, not what is below them).
    pub fn remove_members(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (pe, oc) in &other.children {
            if let Ok(i) = self.find(pe) {
                let c = &mut self.children[i].1;
                c.remove_members(oc);
                if c.is_empty() {
                    self.children.remove(i);
                }
            }
        }
    }

    /// Removes the members of `other` and everything below them: the fields of a removed
    /// value.
    pub fn remove_subtrees(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
            self.children.clear();
            return;
        }
        for (pe, oc) in &other.children {
            if let Ok(i) = self.find(pe) {
                let c = &mut self.children[i].1;
                c.remove_subtrees(oc);
                if c.is_empty() {
                    self.children.remove(i);
                }
            }
        }
    }

    /// The members in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: Vec::new(),
        };
        for (pe, c) in &self.children {
            if let Some(oc) = other.child(pe) {
                let i = c.intersection(oc);
                if !i.is_empty() {
                    out.children.push((pe.clone(), i));
                }
            }
        }
        out
    }

    /// Every member path, parents before children, in the set's order.
    pub fn members(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        self.collect(&mut path, &mut out);
        out
    }

    fn collect(&self, path: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        if self.member {
            out.push(path.clone());
        }
        for (pe, c) in &self.children {
            path.push(pe.clone());
            c.collect(path, out);
            path.pop();
        }
    }

    /// The `FieldsV1` form of the set. Subtrees this thread encoded before are cloned from
    /// its memo (see [`Subtrees`]), which gives the same maps without hashing every key again.
    pub fn to_fields_v1(&self) -> Value {
        SUBTREES.with(|memo| {
            let mut memo = memo.try_borrow_mut().ok();
            Value::Object(self.fields_v1_map(memo.as_deref_mut(), 0))
        })
    }

    /// The JSON text of [`Self::to_fields_v1`], written straight from the set.
    pub fn write_fields_v1(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        if self.member && !self.children.is_empty() {
            out.extend_from_slice(b"\".\":{}");
            first = false;
        }
        for (pe, c) in &self.children {
            if !first {
                out.push(b',');
            }
            first = false;
            pe.write_json_key(out);
            out.push(b':');
            c.write_fields_v1(out);
        }
        out.push(b'}');
    }

    /// The `FieldsV1` map of this node at `depth`: a leaf is `{}` without allocating (a map
    /// made with a capacity allocates its table even for nothing).
    fn fields_v1_map(&self, mut memo: Option<&mut Subtrees>, depth: u8) -> Map<String, Value> {
        if self.children.is_empty() {
            return Map::new();
        }
        let probe = (1..=3).contains(&depth) && self.children.len() >= 2;
        if probe {
            if let Some(m) = memo.as_deref().and_then(|memo| memo.get(self)) {
                return m.clone();
            }
        }
        let mut m = Map::with_capacity(self.children.len() + usize::from(self.member));
        if self.member {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (pe, c) in &self.children {
            let node = c.fields_v1_map(memo.as_deref_mut(), depth + 1);
            m.insert(pe.encode(), Value::Object(node));
        }
        if probe {
            if let Some(memo) = memo {
                memo.note(self, &m);
            }
        }
        m
    }

    /// A hash of the node's structure (members and elements), and its number of nodes.
    fn fingerprint(&self) -> (u64, usize) {
        fn mix(h: u64, x: u64) -> u64 {
            (h.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95)
        }
        fn bytes(mut h: u64, b: &[u8]) -> u64 {
            let mut chunks = b.chunks_exact(8);
            for c in &mut chunks {
                h = mix(h, u64::from_le_bytes(c.try_into().expect("eight bytes")));
            }
            for &x in chunks.remainder() {
                h = mix(h, u64::from(x));
            }
            mix(h, b.len() as u64)
        }
        let mut h = mix(0, u64::from(self.member));
        let mut n = 1;
        for (pe, c) in &self.children {
            h = match pe {
                PathElement::Field(f) => bytes(mix(h, 1), f.as_bytes()),
                PathElement::Key(k) => bytes(mix(h, 2), k.as_bytes()),
                PathElement::Value(v) => bytes(mix(h, 3), v.as_bytes()),
                PathElement::Index(i) => mix(mix(h, 4), *i as u64),
            };
            let (ch, cn) = c.fingerprint();
            h = mix(h, ch);
            n += cn;
        }
        (mix(h, 0xff), n)
    }

    /// Parses `FieldsV1`.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, ManagedError> {
        let Value::Object(m) = v else {
            return Err(ManagedError::BadFieldsV1("expected a map".into()));
        };
        let mut out = FieldSet::new();
        for (k, c) in m {
            if k == "." {
                out.member = true;
                continue;
            }
            let pe = PathElement::decode(k)?;
            let mut child = FieldSet::from_fields_v1(c)?;
            if child.children.is_empty() {
                // A leaf: `{}` is a member with nothing below it.
                child.member = true;
            }
            // Two keys of one element (JSON written two ways): the last one counts.
            match out.find(&pe) {
                Ok(i) => out.children[i].1 = child,
                Err(i) => out.children.insert(i, (pe, child)),
            }
        }
        Ok(out)
    }
}

/// Subtrees of the `FieldsV1` of recent sets, remembered per thread: a write's set differs
/// from the last one of its kind in a few places (a kubelet's first status write owns the same
/// conditions and container statuses pod after pod, but the pod's own `podIPs` key), and
/// cloning an encoded map copies its table where building it hashes every key. Nodes one to
/// three levels down with two or more children are looked up by equality; a subtree is kept
/// (with its encoding) the second time it is encoded, recognised by its fingerprint, so that
/// subtrees that never repeat cost a fingerprint and no copies.
#[derive(Default)]
struct Subtrees {
    /// Fingerprints of subtrees encoded once lately.
    seen: Vec<u64>,
    /// Subtrees encoded at least twice, and their `FieldsV1`.
    kept: Vec<(FieldSet, Map<String, Value>)>,
    /// The slot of `kept` to replace next.
    next: usize,
}

thread_local! {
    static SUBTREES: std::cell::RefCell<Subtrees> = std::cell::RefCell::default();
}

impl Subtrees {
    const SEEN: usize = 32;
    const KEPT: usize = 16;
    /// Larger subtrees are not kept.
    const MAX_NODES: usize = 512;

    fn get(&self, set: &FieldSet) -> Option<&Map<String, Value>> {
        self.kept.iter().find(|(s, _)| s == set).map(|(_, m)| m)
    }

    /// Records that `set` was encoded as `m` (and was not kept).
    fn note(&mut self, set: &FieldSet, m: &Map<String, Value>) {
        let (f, nodes) = set.fingerprint();
        if nodes > Self::MAX_NODES {
            return;
        }
        if let Some(i) = self.seen.iter().position(|&s| s == f) {
            self.seen.remove(i);
            let entry = (set.clone(), m.clone());
            if self.kept.len() < Self::KEPT {
                self.kept.push(entry);
            } else {
                self.kept[self.next] = entry;
                self.next = (self.next + 1) % Self::KEPT;
            }
        } else {
            if self.seen.len() >= Self::SEEN {
                self.seen.remove(0);
            }
            self.seen.push(f);
        }
    }
}

/// Where a walk of an object records paths: a [`FieldSet`] or, on the create path, `FieldsV1`
/// JSON built directly (a `serde_json::Map` per node).
pub(crate) trait Builder {
    /// The node of child `pe`, created empty.
    fn child(&mut self, pe: PathElement) -> &mut Self;
    /// Makes this node a member.
    fn mark(&mut self);
    /// Says that about `n` children are coming.
    fn expect_children(&mut self, _n: usize) {}
    /// Called on the parent once child `pe` is complete: drops it if it recorded nothing.
    fn close(&mut self, pe: &PathElement);
    /// Records into the node of child `pe` with `f`, then closes it.
    fn with_child(&mut self, pe: PathElement, f: impl FnOnce(&mut Self)) {
        f(self.child(pe.clone()));
        self.close(&pe);
    }
}

impl Builder for FieldSet {
    fn child(&mut self, pe: PathElement) -> &mut Self {
        let i = match self.find(&pe) {
            Ok(i) => i,
            Err(i) => {
                self.children.insert(i, (pe, FieldSet::default()));
                i
            }
        };
        &mut self.children[i].1
    }
    fn mark(&mut self) {
        self.member = true;
    }
    fn expect_children(&mut self, n: usize) {
        self.children.reserve(n);
    }
    fn close(&mut self, pe: &PathElement) {
        self.drop_if_empty(pe);
    }
    /// Without a copy of `pe`: a new node is kept only if it recorded something.
    fn with_child(&mut self, pe: PathElement, f: impl FnOnce(&mut Self)) {
        match self.find(&pe) {
            Ok(i) => {
                f(&mut self.children[i].1);
                if self.children[i].1.is_empty() {
                    self.children.remove(i);
                }
            }
            Err(i) => {
                let mut node = FieldSet::default();
                f(&mut node);
                if !node.is_empty() {
                    self.children.insert(i, (pe, node));
                }
            }
        }
    }
}

/// `FieldsV1` built directly: a marked node holds `"."` while it is built; `close` turns a
/// marked node without children into the leaf `{}` and drops nodes that recorded nothing.
impl Builder for Map<String, Value> {
    fn child(&mut self, pe: PathElement) -> &mut Self {
        let e = self
            .entry(pe.encode())
            .or_insert_with(|| Value::Object(Map::new()));
        match e {
            Value::Object(m) => m,
            _ => unreachable!("FieldsV1 nodes are maps"),
        }
    }
    fn mark(&mut self) {
        self.insert(".".into(), Value::Object(Map::new()));
    }
    fn close(&mut self, pe: &PathElement) {
        let k = pe.encode();
        let Some(Value::Object(m)) = self.get_mut(&k) else {
            return;
        };
        if m.is_empty() {
            self.shift_remove(&k);
        } else if m.len() == 1 && m.contains_key(".") {
            m.clear();
        } else {
            m.sort_keys();
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    /// Keys written straight as JSON are serde_json's text of the encoded key: quotes and
    /// backslashes escaped, control characters too, non-ASCII left as it is.
    #[test]
    fn json_keys_are_escaped_as_serde_json_escapes() {
        for pe in [
            PathElement::Field("containers".into()),
            PathElement::Key(r#"{"name":"a\b"}"#.into()),
            PathElement::Value("\"tab\there\"".into()),
            PathElement::Value("\"é\u{7f}\"".into()),
            PathElement::Index(12),
            PathElement::Key(r#"{"type":"PodReadyToStartContainers"}"#.into()),
            PathElement::Value(r#""a\"b\\c, longer than a word""#.into()),
            PathElement::Field("a quote\" then, past a word, a control\u{1}".into()),
            PathElement::Field(String::new()),
        ] {
            let mut out = Vec::new();
            pe.write_json_key(&mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&pe.encode()).unwrap()
            );
        }
    }

    /// Up to five paths over a few names, keys, values and indices.
    fn arb_paths() -> impl Strategy<Value = Vec<Vec<PathElement>>> {
        let pe = prop_oneof![
            prop::sample::select(vec!["a", "b", "spec", "status"])
                .prop_map(|f| PathElement::Field(f.into())),
            (0u8..3).prop_map(|k| PathElement::Key(format!("{{\"name\":\"{k}\"}}"))),
            prop::sample::select(vec!["\"x\"", "1"]).prop_map(|v| PathElement::Value(v.into())),
            (0usize..12).prop_map(PathElement::Index),
        ];
        prop::collection::vec(prop::collection::vec(pe, 0..5), 0..6)
    }

    fn set_of(paths: &[Vec<PathElement>]) -> FieldSet {
        let mut set = FieldSet::new();
        for p in paths {
            set.insert(p);
        }
        set
    }

    fn arb_set() -> impl Strategy<Value = FieldSet> {
        arb_paths().prop_map(|paths| set_of(&paths))
    }

    /// The plain model of a set: its member paths, ordered.
    type Model = std::collections::BTreeSet<Vec<PathElement>>;

    /// `FieldsV1` of the model, built the obvious way: a node per path prefix, its children
    /// in the elements' order, `.` first on members with children.
    fn model_fields_v1(m: &Model, prefix: &[PathElement]) -> Value {
        let mut next: Vec<&PathElement> = m
            .iter()
            .filter(|p| p.len() > prefix.len() && p.starts_with(prefix))
            .map(|p| &p[prefix.len()])
            .collect();
        next.dedup();
        let mut out = serde_json::Map::new();
        if !next.is_empty() && m.contains(prefix) {
            out.insert(".".into(), json!({}));
        }
        for pe in next {
            let mut p = prefix.to_vec();
            p.push(pe.clone());
            out.insert(pe.encode(), model_fields_v1(m, &p));
        }
        Value::Object(out)
    }

    proptest! {
        /// The set operations and the encoding agree with the model (a sorted set of paths):
        /// same members in the same order, same `FieldsV1` text.
        #[test]
        fn sets_behave_as_sorted_sets_of_paths(a in arb_paths(), b in arb_paths()) {
            let (ma, mb): (Model, Model) = (a.iter().cloned().collect(), b.iter().cloned().collect());
            let (sa, sb) = (set_of(&a), set_of(&b));
            let members = |s: &FieldSet| s.members();
            let model = |m: &Model| m.iter().cloned().collect::<Vec<_>>();
            prop_assert_eq!(members(&sa), model(&ma));
            prop_assert_eq!(sa.to_fields_v1().to_string(), model_fields_v1(&ma, &[]).to_string());
            // (`{}` is the empty set: a root that is a member with nothing below it is lost.)
            if !sa.children.is_empty() {
                prop_assert_eq!(FieldSet::from_fields_v1(&sa.to_fields_v1()).unwrap(), sa.clone());
            }
            let mut u = sa.clone();
            u.union_with(&sb);
            prop_assert_eq!(members(&u), model(&ma.union(&mb).cloned().collect()));
            let mut d = sa.clone();
            d.remove_members(&sb);
            prop_assert_eq!(members(&d), model(&ma.difference(&mb).cloned().collect()));
            prop_assert_eq!(members(&sa.difference(&sb)), members(&d));
            let mut t = sa.clone();
            t.remove_subtrees(&sb);
            let kept: Model = ma.iter().filter(|p| !mb.iter().any(|q| p.starts_with(q))).cloned().collect();
            prop_assert_eq!(members(&t), model(&kept));
            prop_assert_eq!(members(&sa.intersection(&sb)), model(&ma.intersection(&mb).cloned().collect()));
            for p in &b {
                prop_assert_eq!(sa.contains(p), ma.contains(p));
                let below = ma.iter().any(|q| q.starts_with(p));
                prop_assert_eq!(sa.has_at_or_below(p), below);
            }
            prop_assert_eq!(sa.len(), ma.len());
            prop_assert_eq!(sa.is_empty(), ma.is_empty());
        }
    }

    proptest! {
        /// Whatever this thread encoded before, the memo gives the map built for the set,
        /// byte for byte.
        #[test]
        fn memo_encodes_as_building(
            pool in prop::collection::vec(arb_set(), 1..5),
            order in prop::collection::vec(0usize..5, 1..24),
        ) {
            for i in order {
                let set = &pool[i % pool.len()];
                let built = Value::Object(set.fields_v1_map(None, 0));
                prop_assert_eq!(set.to_fields_v1().to_string(), built.to_string());
            }
        }
    }

    /// A subtree is kept the second time it is encoded, and then cloned.
    #[test]
    fn a_subtree_encoded_twice_is_kept() {
        let field = |f: &str| PathElement::Field(f.into());
        let mut set = FieldSet::new();
        for f in ["a", "b", "c"] {
            set.insert(&[field("spec"), field(f)]);
        }
        let spec = set.child(&field("spec")).expect("spec").clone();
        let kept = || SUBTREES.with(|m| m.borrow().get(&spec).is_some());
        let first = set.to_fields_v1();
        assert!(!kept());
        assert_eq!(set.to_fields_v1(), first);
        assert!(kept());
        assert_eq!(set.to_fields_v1().to_string(), first.to_string());
        assert_eq!(first, json!({"f:spec": {"f:a": {}, "f:b": {}, "f:c": {}}}));
    }

    proptest! {
        /// Scalars are written as serde_json writes them, escapes and number forms included.
        #[test]
        fn scalars_print_as_serde_json(
            s in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}é])*",
            i in any::<i64>(),
            u in any::<u64>(),
            f in any::<f64>().prop_filter("finite", |f| f.is_finite()),
            b in any::<bool>(),
        ) {
            for v in [json!(s), json!(i), json!(u), json!(f), json!(b), Value::Null] {
                let mut out = String::from("x");
                push_json_scalar(&mut out, &v);
                prop_assert_eq!(&out[1..], v.to_string());
            }
            let item = json!({"name": s, "port": i});
            for key in ["name", "port"] {
                let expected = format!("{{{}:{}}}", json!(key), item[key]);
                prop_assert_eq!(key_element(key, &item), Some(PathElement::Key(expected)));
            }
            prop_assert_eq!(value_element(&json!(s)), PathElement::Value(json!(s).to_string()));
        }
    }
}
