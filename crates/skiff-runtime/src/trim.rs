//! Stored objects without their `metadata.managedFields`, cut out of the bytes.
//!
//! Upstream's control loops trim managedFields from their informers' objects: no loop reads
//! them, and they are often the larger part of an object. The informer cuts them out of the
//! stored bytes before parsing, with the same rules as
//! [`skiff_core::meta::without_managed_fields`] (the result is byte for byte the same, which
//! the tests below check on generated objects), but a faster scan over the JSON it skips:
//! a managedFields entry is mostly short quoted names (`"f:app"`) between braces, and here
//! a string is skipped eight bytes at a time inline and structure by a byte-class table,
//! instead of one bounds-checked step and one `memchr` call per string.

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
fn matches(w: u64, byte: u8) -> u64 {
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
            let m = matches(w, b'"') | matches(w, b'\\');
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

/// The index just past the object or array that starts at `at`.
fn skip_container(b: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    loop {
        match CLASS[*b.get(i)? as usize] {
            0 => i += 1,
            1 => i = skip_string(b, i + 1)?,
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
/// a scalar); `None` when the bytes end first.
fn skip_value(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at)? {
        b'"' => skip_string(b, at + 1),
        b'{' | b'[' => skip_container(b, at),
        _ => {
            let len = b[at..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
                .unwrap_or(b.len() - at);
            Some(at + len)
        }
    }
}

fn skip_space(b: &[u8], mut at: usize) -> usize {
    while b.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// The JSON bytes of a stored object without its `metadata.managedFields`; `None` when there
/// are none, or when the bytes are not an object whose top-level `metadata` comes before any
/// nested value (then use the bytes as they are). Same answer as
/// [`skiff_core::meta::without_managed_fields`].
pub fn without_managed_fields(bytes: &[u8]) -> Option<Vec<u8>> {
    const META: &[u8] = b"\"metadata\":{";
    let m = memchr::memmem::find(bytes, META)?;
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
        let key_end = skip_value(bytes, at)?;
        let key = bytes.get(key_start + 1..key_end.checked_sub(1)?)?;
        at = skip_space(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let value_end = skip_value(bytes, skip_space(bytes, at + 1))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn same(bytes: &[u8]) {
        assert_eq!(
            without_managed_fields(bytes),
            skiff_core::meta::without_managed_fields(bytes),
            "{}",
            String::from_utf8_lossy(bytes)
        );
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

        #[test]
        fn skips_any_value_to_its_end(v in json_value(), tail in "[,}\\] ]{0,2}") {
            let text = serde_json::to_string(&v).unwrap();
            let bytes = format!("{text}{tail}").into_bytes();
            prop_assert_eq!(skip_value(&bytes, 0), Some(text.len()));
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
