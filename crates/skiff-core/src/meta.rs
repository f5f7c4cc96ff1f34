//! Object metadata helpers on JSON objects: names, namespaces, labels, timestamps, and the
//! canonical key order (upstream's Go struct order) that stored objects are written in.

use serde_json::{Map, Value};

/// `metadata.name`, or "".
pub fn name(obj: &Value) -> &str {
    obj.at("metadata").at("name").as_str().unwrap_or("")
}

/// `metadata.namespace`, or "".
pub fn namespace(obj: &Value) -> &str {
    obj.at("metadata")
        .field("namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.resourceVersion`, or "".
pub fn resource_version(obj: &Value) -> &str {
    obj.at("metadata")
        .field("resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.uid`, or "".
pub fn uid(obj: &Value) -> &str {
    obj.at("metadata")
        .field("uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.labels` as (key, value) pairs.
pub fn labels(obj: &Value) -> impl Iterator<Item = (&str, &str)> {
    obj.at("metadata")
        .field("labels")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
        })
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.at("metadata")
        .field("finalizers")
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
    obj.at("metadata")
        .field("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The `metadata` object, created if missing. Panics if `obj` is not an object.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let o = obj.as_object_mut().expect("object");
    // Looked up without `entry`, which makes a key (an allocation) only to find it there.
    if !lookup_in(o, "metadata").is_some_and(Value::is_object) {
        o.insert("metadata".into(), Value::Object(Map::new()));
    }
    lookup_in_mut(o, "metadata")
        .and_then(Value::as_object_mut)
        .expect("an object")
}

/// The current time as upstream writes `metav1.Time`: RFC 3339, seconds, UTC.
/// Formatted once per second per thread: every write stamps a time, often several.
pub fn now_rfc3339() -> String {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = jiff::Timestamp::now();
    let secs = now.as_second();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != secs {
            *last = (secs, format_time(now));
        }
        last.1.clone()
    })
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

/// `a == b` for the short names of fields and resources, where most candidates differ in
/// length or first byte: those are told apart without a call to `memcmp`.
#[inline]
pub fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
}

/// Objects with at most this many fields are searched in order instead of by hash.
const SCAN_UP_TO: usize = 16;

/// `v.get(k)` for an object: the few fields of most Kubernetes objects are found by comparing
/// names in order, which costs less than hashing the name (serde_json's maps hash with
/// SipHash); larger objects are looked up by hash.
#[inline]
pub fn lookup<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    lookup_in(v.as_object()?, k)
}

/// [`lookup`], mutably.
#[inline]
pub fn lookup_mut<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Value> {
    lookup_in_mut(v.as_object_mut()?, k)
}

/// [`lookup`] on a map.
#[inline]
pub fn lookup_in<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    if m.len() > SCAN_UP_TO {
        return m.get(k);
    }
    m.iter().find(|(n, _)| same_name(n, k)).map(|(_, x)| x)
}

/// [`lookup_in`], mutably.
#[inline]
pub fn lookup_in_mut<'a>(m: &'a mut Map<String, Value>, k: &str) -> Option<&'a mut Value> {
    if m.len() > SCAN_UP_TO {
        return m.get_mut(k);
    }
    m.iter_mut().find(|(n, _)| same_name(n, k)).map(|(_, x)| x)
}

/// Field access through [`lookup`], for the write paths that read many fields of small
/// objects: `v.at("k")` reads like `v["k"]` (null when absent or not an object),
/// `v.field("k")` like `v.get("k")`, `v.field_mut("k")` like `v.get_mut("k")`.
pub trait Fields {
    /// The field, or null.
    fn at(&self, k: &str) -> &Value;
    /// The field, if present.
    fn field(&self, k: &str) -> Option<&Value>;
    /// The field, mutably, if present.
    fn field_mut(&mut self, k: &str) -> Option<&mut Value>;
}

static NULL: Value = Value::Null;

impl Fields for Value {
    #[inline]
    fn at(&self, k: &str) -> &Value {
        lookup(self, k).unwrap_or(&NULL)
    }
    #[inline]
    fn field(&self, k: &str) -> Option<&Value> {
        lookup(self, k)
    }
    #[inline]
    fn field_mut(&mut self, k: &str) -> Option<&mut Value> {
        lookup_mut(self, k)
    }
}

impl Fields for Map<String, Value> {
    #[inline]
    fn at(&self, k: &str) -> &Value {
        lookup_in(self, k).unwrap_or(&NULL)
    }
    #[inline]
    fn field(&self, k: &str) -> Option<&Value> {
        lookup_in(self, k)
    }
    #[inline]
    fn field_mut(&mut self, k: &str) -> Option<&mut Value> {
        lookup_in_mut(self, k)
    }
}

/// Appends the compact JSON text of `v` to `out`: byte for byte what `serde_json::to_writer`
/// writes, with strings that need no escape (nearly all of an object's) copied whole instead
/// of byte by byte through serde_json's escape table.
pub fn write_json(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => write_json_str(out, s),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, x);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, k);
                out.push(b':');
                write_json(out, x);
            }
            out.push(b'}');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("JSON scalar"),
    }
}

/// A JSON string: copied between quotes when it holds no quote, backslash or control
/// character, else escaped by serde_json.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("JSON string");
    }
}

/// Whether `s` holds a byte JSON escapes (a quote, a backslash or a control character),
/// tested eight bytes at a time.
fn needs_escape(s: &[u8]) -> bool {
    first_special(s).is_some()
}

/// The index of the first byte of `s` that JSON escapes in strings (a quote, a backslash or
/// a control character), words of eight bytes at a time: where a JSON string's plain text
/// ends. A tail shorter than a word is read padded with spaces (which need no escape), so
/// short strings, most keys and values, take one test and no byte loop.
pub fn first_special(s: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let m = special_bytes(u64::from_le_bytes(w.try_into().expect("eight bytes")));
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words.remainder();
    if tail.is_empty() {
        return None;
    }
    let mut padded = [b' '; 8];
    padded[..tail.len()].copy_from_slice(tail);
    let m = special_bytes(u64::from_le_bytes(padded));
    (m != 0).then(|| at + (m.trailing_zeros() / 8) as usize)
}

/// The high bit of each byte of the little-endian word `x` that JSON escapes, exact up to
/// the first such byte: a byte's borrow can mark bytes above it, never below, so the lowest
/// bit set is the first special byte.
fn special_bytes(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    below_space | word_matches(x, b'"') | word_matches(x, b'\\')
}

/// The text an object is stored as: in canonical order, without `metadata.resourceVersion`
/// (the store's revision is the version) and `metadata.selfLink`, written from `obj` without
/// copying it unless it is out of order.
pub fn to_stored_json(obj: &Value) -> Vec<u8> {
    if !is_canonical(obj) {
        let mut v = obj.clone();
        canonicalize(&mut v);
        return to_stored_json(&v);
    }
    match obj {
        Value::Object(o) => write_object(o, &["resourceVersion", "selfLink"], None),
        _ => {
            let mut out = Vec::new();
            write_json(&mut out, obj);
            out
        }
    }
}

/// The JSON text of the object `o` with the `metadata` members named in `skip` left out and,
/// when given, `managedFields` (its JSON text) written last in `metadata`; in an allocation of
/// its length. The text is what the store keeps (in its index and watch window), so it is
/// written into a buffer each thread reuses and copied out: grown as it was written, a pod's
/// 2-2.5 KB sat in 4 KB (and its `Bytes` needed a second allocation to remember the room).
fn write_object(o: &Map<String, Value>, skip: &[&str], managed_fields: Option<&[u8]>) -> Vec<u8> {
    exact_text(|out| {
        write_object_into(out, o, skip, managed_fields);
        Some(())
    })
    .expect("an object always writes")
}

/// Text that `write` puts into a buffer this thread reuses, copied out in an allocation of its
/// length (for text the store keeps); `None` when `write` gives up. A rare large text's room
/// is not kept.
pub fn exact_text(write: impl FnOnce(&mut Vec<u8>) -> Option<()>) -> Option<Vec<u8>> {
    use std::cell::Cell;
    thread_local! {
        static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    }
    let mut out = SCRATCH.take();
    out.clear();
    let text = write(&mut out).map(|()| out.to_vec());
    if out.capacity() <= 256 * 1024 {
        SCRATCH.set(out);
    }
    text
}

fn write_object_into(
    out: &mut Vec<u8>,
    o: &Map<String, Value>,
    skip: &[&str],
    managed_fields: Option<&[u8]>,
) {
    let key = |out: &mut Vec<u8>, k: &str| {
        write_json_str(out, k);
        out.push(b':');
    };
    out.push(b'{');
    for (i, (k, v)) in o.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        key(out, k);
        let Value::Object(m) = v else {
            write_json(out, v);
            continue;
        };
        if k != "metadata" {
            write_json(out, v);
            continue;
        }
        out.push(b'{');
        let mut first = true;
        for (k, x) in m.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
            if !first {
                out.push(b',');
            }
            first = false;
            key(out, k);
            write_json(out, x);
        }
        if let Some(text) = managed_fields {
            if !first {
                out.push(b',');
            }
            key(out, "managedFields");
            out.extend_from_slice(text);
        }
        out.push(b'}');
    }
    out.push(b'}');
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
    order_fields(o, top_rank);
    if let Some(Value::Object(m)) = o.get_mut("metadata") {
        order_fields(m, meta_rank);
    }
}

/// Where a top-level field goes: kind, apiVersion, metadata, the rest, status.
fn top_rank(k: &str) -> usize {
    match k {
        "kind" => 0,
        "apiVersion" => 1,
        "metadata" => 2,
        "status" => 4,
        _ => 3,
    }
}

/// Where a metadata field goes: upstream's fields in `ObjectMeta` order, then the others.
fn meta_rank(k: &str) -> usize {
    META_ORDER
        .iter()
        .position(|x| *x == k)
        .unwrap_or(META_ORDER.len())
}

/// Sorts the fields of `m` by `rank`, keeping the order of equal ranks, by moving only the
/// fields that are out of place (a client's `apiVersion` before `kind`, the `uid` a create
/// appends): most objects need one or two moves, or none.
fn order_fields(m: &mut Map<String, Value>, rank: fn(&str) -> usize) {
    loop {
        let mut last = 0;
        let mut misplaced = None;
        for k in m.keys() {
            let r = rank(k);
            if r < last {
                misplaced = Some((k.clone(), r));
                break;
            }
            last = r;
        }
        let Some((key, r)) = misplaced else { return };
        let (key, v) = m.shift_remove_entry(&key).expect("present");
        let at = m.keys().position(|k| rank(k) > r).unwrap_or(m.len());
        m.shift_insert(at, key, v);
    }
}

/// Sets `metadata.resourceVersion`, inserted in its canonical place.
pub fn set_resource_version(obj: &mut Value, rv: String) {
    let m = metadata_mut(obj);
    if let Some(v) = m.get_mut("resourceVersion") {
        *v = Value::String(rv);
        return;
    }
    let rank = |k: &str| {
        META_ORDER
            .iter()
            .position(|x| *x == k)
            .unwrap_or(META_ORDER.len())
    };
    let own = rank("resourceVersion");
    let at = m.keys().position(|k| rank(k) > own).unwrap_or(m.len());
    m.shift_insert(at, "resourceVersion".into(), Value::String(rv));
    canonicalize(obj);
}

/// The JSON text of `obj` (in canonical order, without `metadata.managedFields`) with
/// `managed_fields` (the JSON text of a managedFields list) as its `metadata.managedFields`:
/// byte for byte what serializing `obj` with that list inserted in its canonical place gives.
/// `None` when that place is not the end of `metadata` (a field upstream does not know comes
/// after it), or `obj` has no `metadata` object, or already has managedFields.
pub fn to_vec_with_managed_fields(obj: &Value, managed_fields: &[u8]) -> Option<Vec<u8>> {
    let o = obj.as_object()?;
    let Some(Value::Object(m)) = o.get("metadata") else {
        return None;
    };
    if m.keys()
        .any(|k| k == "managedFields" || !META_ORDER.contains(&k.as_str()))
    {
        return None;
    }
    Some(write_object(o, &[], Some(managed_fields)))
}

/// Whether `obj` is in [`canonicalize`]'s order.
pub fn is_canonical(obj: &Value) -> bool {
    let sorted =
        |m: &Map<String, Value>, rank: fn(&str) -> usize| m.keys().map(|k| rank(k)).is_sorted();
    let Some(o) = obj.as_object() else {
        return true;
    };
    sorted(o, top_rank)
        && match o.get("metadata") {
            Some(Value::Object(m)) => sorted(m, meta_rank),
            _ => true,
        }
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
        // Only scalar metadata may precede it: look no further than the first nested object.
        let scalars_end = memchr::memchr(b'{', &bytes[start..]).map_or(bytes.len(), |e| start + e);
        if let Some(p) = find(&bytes[start..scalars_end], NEEDLE).map(|p| p + start) {
            let vstart = p + NEEDLE.len();
            if let Some(len) = memchr::memchr(b'"', &bytes[vstart..]) {
                out.extend_from_slice(&bytes[..vstart]);
                out.extend_from_slice(itoa::Buffer::new().format(rv).as_bytes());
                out.extend_from_slice(&bytes[vstart + len..]);
                return;
            }
        }
        // Absent: insert after the scalar fields that precede it in canonical order.
        let mut at = start;
        for key in [
            &b"\"name\":\""[..],
            b"\"generateName\":\"",
            b"\"namespace\":\"",
            b"\"selfLink\":\"",
            b"\"uid\":\"",
        ] {
            if bytes[at..].starts_with(key) {
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
        out.extend_from_slice(itoa::Buffer::new().format(rv).as_bytes());
        out.push(b'"');
        if !empty && !needs_comma_before {
            out.push(b',');
        }
        out.extend_from_slice(&bytes[at..]);
        return;
    }
    out.extend_from_slice(bytes);
}

/// The first occurrence of `needle` (non-empty) in `hay`: the needles here are short and
/// found near the start, where building a `memmem` searcher costs more than the search.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, &hay[from..]) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The JSON bytes of an object without its `metadata.managedFields`, cut out of the bytes
/// without parsing the rest (what in-process caches keep: no control loop reads them, and
/// they are often the larger part of an object). `None` when there are none, or when the
/// bytes are not an object whose top-level `metadata` comes before any nested value (stored
/// objects are canonical: kind, apiVersion, metadata); then use the bytes as they are.
pub fn without_managed_fields(bytes: &[u8]) -> Option<Vec<u8>> {
    const META: &[u8] = b"\"metadata\":{";
    let m = find(bytes, META)?;
    // Only scalars (kind, apiVersion) may come before a top-level metadata.
    if bytes.first() != Some(&b'{') || bytes[1..m].iter().any(|&b| b == b'{' || b == b'[') {
        return None;
    }
    let mut at = m + META.len();
    let mut first = true;
    loop {
        at = skip_space(bytes, at);
        match bytes.get(at)? {
            b'}' => return None,
            b',' if !first => at = skip_space(bytes, at + 1),
            _ if first => {}
            _ => return None,
        }
        let key_start = at;
        let key_end = skip_json_value(bytes, at)?;
        let key = bytes.get(key_start + 1..key_end.checked_sub(1)?)?;
        at = skip_space(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let value_end = skip_json_value(bytes, skip_space(bytes, at + 1))?;
        if key == b"managedFields" {
            let (cut_from, cut_to) = if first {
                // The first member: take the comma after it, if any.
                let after = skip_space(bytes, value_end);
                if bytes.get(after) == Some(&b',') {
                    (key_start, after + 1)
                } else {
                    (key_start, value_end)
                }
            } else {
                // Take the comma before it.
                let comma = bytes[..key_start].iter().rposition(|&b| b == b',')?;
                (comma, value_end)
            };
            let mut out = Vec::with_capacity(bytes.len() - (cut_to - cut_from));
            out.extend_from_slice(&bytes[..cut_from]);
            out.extend_from_slice(&bytes[cut_to..]);
            return Some(out);
        }
        at = value_end;
        first = false;
    }
}

/// Calls `f` with the name and the raw JSON text of each member of a stored object's
/// `metadata`, read from its bytes without parsing them (same layout as
/// [`without_managed_fields`] expects: kind, apiVersion, then metadata). `false` when the
/// bytes are not laid out that way.
pub fn metadata_members<'a>(bytes: &'a [u8], f: impl FnMut(&'a [u8], &'a [u8])) -> bool {
    metadata_members_before(bytes, None, f)
}

/// [`metadata_members`] up to the member named `stop` (then `true`, as far as it read: that
/// member's value and the rest are not looked at). Readers of the members before
/// `managedFields`, last in canonical order and by far the longest, stop there.
pub fn metadata_members_before<'a>(
    bytes: &'a [u8],
    stop: Option<&[u8]>,
    mut f: impl FnMut(&'a [u8], &'a [u8]),
) -> bool {
    const META: &[u8] = b"\"metadata\":{";
    let Some(m) = find(bytes, META) else {
        return false;
    };
    if bytes.first() != Some(&b'{') || bytes[1..m].iter().any(|&b| b == b'{' || b == b'[') {
        return false;
    }
    let mut at = m + META.len();
    let mut first = true;
    loop {
        at = skip_space(bytes, at);
        match bytes.get(at) {
            // The members were walked one by one, so this brace closes metadata.
            Some(b'}') => return true,
            Some(b',') if !first => at = skip_space(bytes, at + 1),
            Some(b'"') if first => {}
            _ => return false,
        }
        let key_start = at;
        let Some(key_end) = skip_json_value(bytes, at) else {
            return false;
        };
        at = skip_space(bytes, key_end);
        if bytes.get(at) != Some(&b':') || bytes.get(key_start) != Some(&b'"') {
            return false;
        }
        let key = &bytes[key_start + 1..key_end - 1];
        if stop == Some(key) {
            return true;
        }
        let value_start = skip_space(bytes, at + 1);
        let Some(value_end) = skip_json_value(bytes, value_start) else {
            return false;
        };
        f(key, &bytes[value_start..value_end]);
        at = value_end;
        first = false;
    }
}

fn skip_space(b: &[u8], mut at: usize) -> usize {
    while b.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

// The scan over JSON it skips (metadata members, managedFields): a managedFields entry is
// mostly short quoted names (`"f:app"`) between braces, so a string is skipped eight bytes at
// a time inline and structure by a byte-class table, rather than one bounds-checked step and
// one `memchr` call per string. Word-wide scans of the structure too (quote parity and bracket
// counts eight bytes at a time) cost more than this loop on such dense text: about one
// structural byte in three.

/// The class of each byte for [`skip_container`]: 1 a quote, 2 an opening and 3 a closing
/// bracket or brace, 0 anything else.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 1;
    t[b'{' as usize] = 2;
    t[b'[' as usize] = 2;
    t[b'}' as usize] = 3;
    t[b']' as usize] = 3;
    t
};

/// The bytes of `w` equal to `byte`, as their high bits. Bits above the lowest set one may be
/// false positives (borrows); the lowest is exact.
#[inline]
fn word_matches(w: u64, byte: u8) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let x = w ^ (LO * byte as u64);
    x.wrapping_sub(LO) & !x & HI
}

/// The index just past the closing quote of a string whose content starts at `i`.
#[inline]
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        while let Some(chunk) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            let m = word_matches(w, b'"') | word_matches(w, b'\\');
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index just past the object or array that starts at `at`. Kept out of line, so that
/// [`skip_json_value`], inlined where it is called, is only the test and the string scan.
#[inline(never)]
fn skip_container(b: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    loop {
        match CLASS[*b.get(i)? as usize] {
            0 => i += 1,
            1 => {
                i = skip_string(b, i + 1)?;
                // A member's name is followed by its colon: taken here rather than by one
                // more turn of the loop.
                if b.get(i) == Some(&b':') {
                    i += 1;
                }
            }
            2 => {
                depth += 1;
                i += 1;
            }
            _ => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return Some(i);
                }
            }
        }
    }
}

/// The index just past the JSON value that starts at `at` (a string, an object, an array or
/// a scalar); `None` when the bytes end first. Not a validator: a container ends at the
/// bracket that brings its depth back to zero, whatever its kind, and a scalar at the first
/// comma, closing bracket or space. Inlined into its callers (member names, the most frequent
/// values, are short strings); containers and scalars are scanned out of line.
#[inline]
pub fn skip_json_value(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at)? {
        b'"' => skip_string(b, at + 1),
        b'{' | b'[' => skip_container(b, at),
        _ => Some(skip_scalar(b, at)),
    }
}

/// The index just past the scalar (number, `true`, `false`, `null`) that starts at `at`.
#[inline(never)]
fn skip_scalar(b: &[u8], at: usize) -> usize {
    let len = b[at..]
        .iter()
        .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
        .unwrap_or(b.len() - at);
    at + len
}

#[cfg(test)]
mod tests {
    #[test]
    fn managed_fields_are_cut_out_of_the_bytes() {
        let cases = [
            // Last member of metadata (canonical order).
            json!({
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {
                    "name": "p",
                    "labels": {"managedFields": "x"},
                    "managedFields": [{"manager": "m", "fieldsV1": {"f:a\\\"]}": {}}}],
                    "annotations": {"a": "{\"managedFields\":[]}"}
                },
                "spec": {"x": [1, {"y": "]"}]}
            }),
            // First member, followed by others.
            json!({"metadata": {"managedFields": [], "name": "p"}, "status": {}}),
            // Only member.
            json!({"metadata": {"managedFields": [{"a": 1}]}}),
        ];
        for v in cases {
            let bytes = serde_json::to_vec(&v).unwrap();
            let cut = without_managed_fields(&bytes).expect("cut");
            let mut want = v.clone();
            want["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("managedFields");
            let got: Value = serde_json::from_slice(&cut).unwrap();
            assert_eq!(got, want);
        }
        // Nothing to cut, or not the shape relied on.
        for v in [
            json!({"metadata": {"name": "p"}}),
            json!({"spec": {"metadata": {"managedFields": []}}, "metadata": {"managedFields": []}}),
            json!([1]),
        ] {
            assert_eq!(
                without_managed_fields(&serde_json::to_vec(&v).unwrap()),
                None
            );
        }
        assert_eq!(
            without_managed_fields(b"{\"metadata\":{\"managedFields\":[{\"a\""),
            None
        );
    }

    use super::*;

    use proptest::prelude::*;
    use serde_json::json;

    /// Objects come out in canonical order with the fields of equal rank in their given order,
    /// whatever order they come in.
    #[test]
    fn canonical_order_from_any_order() {
        let want = json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "p", "namespace": "n", "uid": "u", "creationTimestamp": "t",
                "labels": {"z": "1", "a": "2"}, "managedFields": [], "x-other": 1, "a-other": 2},
            "spec": {"b": 1, "a": 2}, "data": {}, "status": {"phase": "P"}});
        let text = serde_json::to_string(&want).unwrap();
        let mut inputs = vec![
            json!({"status": {"phase": "P"}, "spec": {"b": 1, "a": 2}, "apiVersion": "v1",
                "metadata": {"x-other": 1, "creationTimestamp": "t", "labels": {"z": "1", "a": "2"},
                    "uid": "u", "a-other": 2, "managedFields": [], "namespace": "n", "name": "p"},
                "data": {}, "kind": "Pod"}),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "n", "labels": {"z": "1", "a": "2"},
                    "managedFields": [], "x-other": 1, "a-other": 2, "uid": "u", "creationTimestamp": "t"},
                "spec": {"b": 1, "a": 2}, "status": {"phase": "P"}, "data": {}}),
            want.clone(),
        ];
        for v in &mut inputs {
            canonicalize(v);
            assert!(is_canonical(v));
            assert_eq!(serde_json::to_string(v).unwrap(), text);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
            "[a-z\"\\\\\n\t\u{1}\u{7f}é]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-z\"\\\\\u{1}]{0,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The writer's text is serde_json's, byte for byte.
        #[test]
        fn write_json_is_serde_jsons(v in arb_json()) {
            let mut out = Vec::new();
            write_json(&mut out, &v);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&v).unwrap());
        }

        /// The stored text is what removing resourceVersion and selfLink from a canonical copy
        /// and serializing it gives, for objects in any order.
        #[test]
        fn stored_json_is_the_canonical_copys(
            spec in arb_json(),
            rv_first in any::<bool>(),
            self_link in any::<bool>(),
        ) {
            let mut meta = serde_json::Map::new();
            if rv_first {
                meta.insert("resourceVersion".into(), json!("5"));
            }
            meta.insert("name".into(), json!("n\"x"));
            meta.insert("uid".into(), json!("u"));
            if self_link {
                meta.insert("selfLink".into(), json!("/x"));
            }
            if !rv_first {
                meta.insert("resourceVersion".into(), json!("6"));
            }
            meta.insert("labels".into(), json!({"a": "b"}));
            let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
            let mut want = obj.clone();
            let m = want["metadata"].as_object_mut().unwrap();
            m.shift_remove("resourceVersion");
            m.shift_remove("selfLink");
            canonicalize(&mut want);
            prop_assert_eq!(
                String::from_utf8(to_stored_json(&obj)).unwrap(),
                serde_json::to_string(&want).unwrap()
            );
        }
    }

    /// The word-at-a-time test agrees with the byte-by-byte one at every position.
    #[test]
    fn escapes_found_anywhere() {
        let slow = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for len in 0..24 {
            let pool = b"azAZ09 ~\x7f\xff!#[";
            let clean: Vec<u8> = (0..len).map(|i| pool[i % pool.len()]).collect();
            assert!(!needs_escape(&clean));
            for at in 0..len {
                for b in [
                    0u8, 0x1f, b'"', b'\\', b'\n', 0x20, 0x21, 0x5b, 0x5d, 0x80, 0xa2, 0xdc,
                ] {
                    let mut v = clean.clone();
                    v[at] = b;
                    assert_eq!(needs_escape(&v), slow(&v), "{v:?}");
                }
            }
        }
    }

    /// The members of metadata come out as written, nested values whole; other layouts are
    /// refused.
    #[test]
    fn metadata_members_are_read_from_the_bytes() {
        let text = br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","uid":"u","ownerReferences":[{"uid":"o","name":"a}]\""}],"finalizers":["f"]},"spec":{"x":{"metadata":{}}}}"#;
        let mut seen = Vec::new();
        assert!(metadata_members(text, |k, v| seen.push((
            String::from_utf8(k.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap()
        ))));
        let want = [
            ("name", r#""p""#),
            ("uid", r#""u""#),
            ("ownerReferences", r#"[{"uid":"o","name":"a}]\""}]"#),
            ("finalizers", r#"["f"]"#),
        ];
        assert_eq!(seen.len(), want.len());
        for ((k, v), (wk, wv)) in seen.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
        assert!(metadata_members(br#"{"metadata":{}}"#, |_, _| panic!(
            "no members"
        )));
        // Stopping before a member reads neither it nor what follows, even bytes that would
        // not parse.
        let mut names = Vec::new();
        assert!(metadata_members_before(
            br#"{"metadata":{"name":"p","uid":"u","managedFields":[{"x":1"#,
            Some(b"managedFields"),
            |k, _| names.push(String::from_utf8(k.to_vec()).unwrap())
        ));
        assert_eq!(names, ["name", "uid"]);
        for bad in [
            &br#"{"spec":{"metadata":{"a":1}}}"#[..],
            br#"{"metadata":{"a":1"#,
            br#"[{"metadata":{}}]"#,
            br#"{"metadata":{"a" 1}}"#,
        ] {
            assert!(
                !metadata_members(bad, |_, _| {}),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Looking up by scanning finds what hashing finds, in small and large objects.
    #[test]
    fn lookup_matches_get() {
        let mut small = json!({"a": 1, "bb": 2, "": 3, "é": 4, "ab": null});
        let mut large = Value::Object((0..40).map(|i| (format!("k{i}"), json!(i))).collect());
        for v in [&mut small, &mut large] {
            for k in ["a", "bb", "", "é", "ab", "abc", "k7", "k39", "k40"] {
                assert_eq!(lookup(v, k), v.get(k), "{k}");
                let want = v.get(k).cloned();
                assert_eq!(lookup_mut(v, k).map(|x| x.clone()), want, "{k}");
            }
        }
        assert_eq!(lookup(&json!([1]), "a"), None);
        assert_eq!(lookup(&json!(null), "a"), None);
    }

    #[test]
    fn first_special_finds_the_first_quote_backslash_or_control() {
        let specials = [b'"', b'\\', 0, b'\n', 0x1f];
        for len in 0..40 {
            for at in 0..=len {
                for &c in &specials {
                    // Plain bytes around, including high ones that must not count.
                    let mut s: Vec<u8> =
                        (0..len).map(|i| [b'a', 0x7f, 0xc3, b' '][i % 4]).collect();
                    if at < len {
                        s[at] = c;
                    }
                    let want = s.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\');
                    assert_eq!(first_special(&s), want, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn fields_read_like_indexing() {
        let mut small = json!({"a": {"b": 1}, "bb": 2, "n": null});
        let mut large = Value::Object((0..40).map(|i| (format!("k{i}"), json!(i))).collect());
        for v in [&mut small, &mut large] {
            for k in ["a", "bb", "n", "zz", "k7", "k39", "k40"] {
                assert_eq!(v.at(k), &v[k], "{k}");
                assert_eq!(v.field(k), v.get(k), "{k}");
                let m = v.as_object().unwrap().clone();
                assert_eq!(m.at(k), &v[k], "{k}");
                assert_eq!(m.field(k), m.get(k), "{k}");
                let want = v.get(k).cloned();
                assert_eq!(v.field_mut(k).map(|x| x.clone()), want, "{k}");
            }
        }
        assert_eq!(small.at("a").at("b"), &json!(1));
        assert_eq!(json!("s").at("a"), &Value::Null);
        assert_eq!(small.at("a").at("b").at("c"), &Value::Null);
    }

    /// Splicing the list's text in gives what inserting it and serializing gives, and the
    /// objects where the end of metadata is not its place are left to the general path.
    #[test]
    fn managed_fields_spliced_as_serialized() {
        let mf = json!([{"manager": "m\"x", "operation": "Update", "fieldsV1": {"f:a": {}}}]);
        let text = serde_json::to_vec(&mf).unwrap();
        for obj in [
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "uid": "u",
                "labels": {"a": "b"}, "finalizers": ["f"]}, "spec": {"x": [1, "é\n"]}, "status": {}}),
            json!({"metadata": {}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}),
        ] {
            let mut inserted = obj.clone();
            inserted["metadata"]["managedFields"] = mf.clone();
            assert!(is_canonical(&inserted));
            let spliced = to_vec_with_managed_fields(&obj, &text).expect("spliced");
            assert_eq!(
                String::from_utf8(spliced).unwrap(),
                serde_json::to_string(&inserted).unwrap()
            );
        }
        for obj in [
            json!({"metadata": {"name": "p", "zzz": 1}}),
            json!({"metadata": {"name": "p", "managedFields": []}}),
            json!({"metadata": null}),
            json!({"kind": "Pod"}),
        ] {
            assert_eq!(to_vec_with_managed_fields(&obj, &text), None, "{obj}");
        }
    }

    /// Stored text comes in an allocation of its length, whatever the size, and the buffer a
    /// thread writes in leaves nothing of one object in the next.
    #[test]
    fn stored_text_takes_the_room_of_its_length() {
        let text = br#"[{"manager":"m","operation":"Update"}]"#;
        for n in [3000, 10, 70_000, 300_000, 1, 2500] {
            let obj = json!({"kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"name": "c", "resourceVersion": "5"}, "data": {"k": "x".repeat(n)}});
            let stored = to_stored_json(&obj);
            assert_eq!(stored.capacity(), stored.len());
            let mut want = obj.clone();
            want["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("resourceVersion");
            assert_eq!(stored, serde_json::to_vec(&want).unwrap());
            let spliced = to_vec_with_managed_fields(&want, text).unwrap();
            assert_eq!(spliced.capacity(), spliced.len());
            want["metadata"]["managedFields"] = serde_json::from_slice(text).unwrap();
            assert_eq!(spliced, serde_json::to_vec(&want).unwrap());
        }
    }

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
    fn canonical_objects_are_left_as_they_are() {
        for v in [
            json!({"spec":{},"data":{},"metadata":{"labels":{},"x":1,"name":"a"},"status":{},"kind":"K"}),
            json!({"kind":"K","apiVersion":"v1","metadata":{"name":"a","uid":"u","labels":{},"zz":1},"spec":{},"data":{},"status":{}}),
            json!({"status":{},"spec":{}}),
            json!({"metadata":{"managedFields":[],"name":"a"}}),
        ] {
            let mut once = v.clone();
            canonicalize(&mut once);
            assert!(is_canonical(&once), "{once}");
            let mut twice = once.clone();
            canonicalize(&mut twice);
            assert_eq!(
                serde_json::to_string(&twice).unwrap(),
                serde_json::to_string(&once).unwrap()
            );
            // The rest keeps the order it was given in.
            let keys: Vec<&String> = once.as_object().unwrap().keys().collect();
            let spec = keys.iter().position(|k| *k == "spec");
            let data = keys.iter().position(|k| *k == "data");
            if let (Some(s), Some(d)) = (spec, data) {
                assert!(s < d, "{once}");
            }
            assert_eq!(
                is_canonical(&v),
                serde_json::to_string(&v).unwrap() == serde_json::to_string(&once).unwrap()
            );
        }
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

#[cfg(test)]
mod scan_tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// The cut agrees with removing `metadata.managedFields` from the parsed object, and the
    /// bytes stay as they were when there is nothing to cut; malformed bytes only must not
    /// panic.
    fn same(bytes: &[u8]) {
        let cut = without_managed_fields(bytes);
        let Ok(mut v) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        let removed = v
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .and_then(|m| m.shift_remove("managedFields"));
        match cut {
            Some(c) => {
                assert!(removed.is_some(), "{}", String::from_utf8_lossy(bytes));
                assert_eq!(
                    serde_json::from_slice::<Value>(&c).unwrap(),
                    v,
                    "{}",
                    String::from_utf8_lossy(bytes)
                );
            }
            // Objects laid out as stored (compact, metadata first of the nested values) always
            // have their managedFields found; others are left as they are.
            None => assert!(
                removed.is_none() || find(bytes, b"\"metadata\":{").is_none(),
                "{}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    /// What [`skip_json_value`] answers, one byte at a time: a string ends at its first
    /// unescaped quote, a container at the bracket that brings the depth back to zero (strings
    /// skipped), a scalar at a comma, a closing bracket or a space.
    fn reference_skip(b: &[u8], at: usize) -> Option<usize> {
        let string_end = |mut i: usize| loop {
            match *b.get(i)? {
                b'"' => return Some(i + 1),
                b'\\' => i += 2,
                _ => i += 1,
            }
        };
        match *b.get(at)? {
            b'"' => string_end(at + 1),
            b'{' | b'[' => {
                let mut depth = 0;
                let mut i = at;
                loop {
                    match *b.get(i)? {
                        b'"' => i = string_end(i + 1)?,
                        b'{' | b'[' => {
                            depth += 1;
                            i += 1;
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            i += 1;
                            if depth == 0 {
                                return Some(i);
                            }
                        }
                        _ => i += 1,
                    }
                }
            }
            _ => Some(
                b[at..]
                    .iter()
                    .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
                    .map_or(b.len(), |n| at + n),
            ),
        }
    }

    /// Cases a wrong skip would get wrong: escapes (quotes, backslashes, `\u00e9`) at every
    /// offset of a word, brackets and quotes inside strings, names and their colons, nesting,
    /// scalars, and the same cut short or spoiled.
    #[test]
    fn skips_awkward_text_as_the_byte_by_byte_scan() {
        let mut texts: Vec<String> = vec![
            r#"{"a":"b\"c","d":["}",{"e":"\\"},"\\\""],"f":{}}"#.into(),
            r#"{"k:{\"name\":\"web\"}":{".":{},"f:image":{}},"x":[[],[{}],"]["]}"#.into(),
            r#"["\u00e9t\u00e9",true,false,null,-1.5e3,{"a":{"b":{"c":[1,2,{"d":"{"}]}}}]"#.into(),
            "{\"caf\u{e9}\":\"\u{e9}t\u{e9}\",\"s\" : [ 1 , 2 ] }".into(),
            r#"{"a":1]"#.into(),
            r#"[{"a":"b"}}"#.into(),
            r#"{"a":"\"#.into(),
            r#"{"a":"b\"}"#.into(),
            r#""abc\"#.into(),
            "{\"a\":\"\\\u{1}\"}".into(),
        ];
        for pad in 0..9 {
            texts.push(format!(r#"{{"{}":"\"","b":{{}}}}"#, "x".repeat(pad)));
            texts.push(format!(r#"["{}\\","]"]"#, "y".repeat(pad)));
        }
        for t in &texts {
            let t = t.as_bytes();
            for end in 0..=t.len() {
                for at in 0..=end {
                    assert_eq!(
                        skip_json_value(&t[..end], at),
                        reference_skip(&t[..end], at),
                        "{:?} at {at}",
                        String::from_utf8_lossy(&t[..end])
                    );
                }
            }
        }
        // The valid ones end where serde_json says.
        for t in &texts {
            let mut de = serde_json::Deserializer::from_slice(t.as_bytes()).into_iter::<Value>();
            if let Some(Ok(_)) = de.next() {
                if !t.contains(' ') {
                    assert_eq!(
                        skip_json_value(t.as_bytes(), 0),
                        Some(de.byte_offset()),
                        "{t}"
                    );
                }
            }
        }
    }

    /// Strings with the characters that matter to a scanner (quotes, backslashes, brackets)
    /// at every offset within and across eight-byte words.
    fn awkward_string() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('{'),
                Just('}'),
                Just('['),
                Just(']'),
                Just(','),
                Just(':'),
                Just('é'),
                Just('\u{1}'),
                proptest::char::range('a', 'z'),
            ],
            0..24,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            awkward_string().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((awkward_string(), inner), 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An object whose metadata has `members`, with managedFields at `at` (or none).
    fn object(members: Vec<(String, Value)>, managed: Option<(usize, Value)>) -> Value {
        let mut meta = serde_json::Map::new();
        let n = members.len();
        for (i, (k, v)) in members.into_iter().enumerate() {
            if let Some((at, m)) = &managed {
                if *at % (n + 1) == i {
                    meta.insert("managedFields".into(), m.clone());
                }
            }
            meta.insert(k, v);
        }
        if let Some((at, m)) = &managed {
            if *at % (n + 1) == n {
                meta.insert("managedFields".into(), m.clone());
            }
        }
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": {"a": [1, "}"]}})
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn cuts_exactly_as_the_core_function(
            members in proptest::collection::vec((awkward_string(), json_value()), 0..5),
            managed in proptest::option::of((0usize..8, json_value())),
            pretty in any::<bool>(),
        ) {
            let v = object(members, managed);
            let bytes = if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            };
            same(&bytes);
            // And on every truncation of the bytes (malformed input).
            for cut in (0..bytes.len()).step_by(7) {
                same(&bytes[..cut]);
            }
        }

        /// Every start in generated JSON, compact and pretty, whole and cut short, skips to
        /// where the byte-by-byte scan ends.
        #[test]
        fn skips_as_the_byte_by_byte_scan_on_json(v in json_value(), pretty in any::<bool>()) {
            let bytes = if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            };
            for end in (0..=bytes.len()).rev().step_by(5) {
                let b = &bytes[..end];
                for at in 0..=b.len() {
                    prop_assert_eq!(
                        skip_json_value(b, at),
                        reference_skip(b, at),
                        "{:?} at {}",
                        String::from_utf8_lossy(b),
                        at
                    );
                }
            }
        }

        /// And on any bytes (malformed text): stray brackets of the other kind, escapes at
        /// the end, unclosed strings, words of every alignment.
        #[test]
        fn skips_as_the_byte_by_byte_scan_on_any_bytes(
            b in proptest::collection::vec(
                prop_oneof![
                    Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'),
                    Just(b':'), Just(b','), Just(b' '), Just(b'\n'), Just(0xc3), Just(0x01),
                    Just(b'a'), Just(b'1'),
                ],
                0..80,
            ),
        ) {
            for at in 0..=b.len() {
                prop_assert_eq!(
                    skip_json_value(&b, at),
                    reference_skip(&b, at),
                    "{:?} at {}",
                    String::from_utf8_lossy(&b),
                    at
                );
            }
        }

        #[test]
        fn skips_any_value_to_its_end(v in json_value(), tail in "[,}\\] ]{0,2}") {
            let text = serde_json::to_string(&v).unwrap();
            let bytes = format!("{text}{tail}").into_bytes();
            prop_assert_eq!(skip_json_value(&bytes, 0), Some(text.len()));
        }
    }

    #[test]
    fn a_pod_as_stored_loses_only_its_managed_fields() {
        let v = json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "p", "labels": {"managedFields": "x"},
                "managedFields": [{"manager": "m", "fieldsV1": {"f:a\\\"]}": {}}}]},
            "spec": {"containers": [{"name": "c"}]}
        });
        let bytes = serde_json::to_vec(&v).unwrap();
        let cut = without_managed_fields(&bytes).unwrap();
        let mut want = v.clone();
        want["metadata"]
            .as_object_mut()
            .unwrap()
            .shift_remove("managedFields");
        assert_eq!(serde_json::from_slice::<Value>(&cut).unwrap(), want);
        same(&bytes);
        for text in [
            &b"[]"[..],
            b"{}",
            b"{\"metadata\":{}}",
            b"{\"metadata\":{\"managedFields\":",
            b"",
        ] {
            same(text);
        }
    }
}
