//! Decoding request documents into `serde_json::Value` while noticing duplicate keys, which a
//! plain `Value` silently collapses (the last one wins, as it does upstream when the fields
//! are not checked). The decoder costs what serde_json's own `Value` visitor costs: the only
//! extra work is an entry lookup in place of an insert, and it enforces the nesting bound as it
//! goes instead of in a second pass.
//!
//! Where the duplicates are is only worked out when there are some ([`json_duplicates`]), by a
//! second scan of the JSON text that reports both the field path (`spec.replicas`, as
//! sigs.k8s.io/json's strict decoding names it) and the line (for YAML-style errors, as
//! go-yaml's `line N: key "replicas" already set in map`).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// What the decoder noticed besides the value.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Some object had a key twice.
    pub duplicates: bool,
    /// The document was nested deeper than allowed (the decode failed for it).
    pub too_deep: bool,
}

struct Ctx {
    seen: Seen,
    max_depth: usize,
    /// The fields of the objects being decoded, innermost last: an object's fields are
    /// gathered here and moved into a map of the right size at its end, so maps never grow
    /// (and rehash) field by field.
    fields: Vec<(String, Value)>,
}

struct ValueSeed<'a> {
    ctx: &'a mut Ctx,
    depth: usize,
}

const TOO_DEEP: &str = "nested too deeply";

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > self.ctx.max_depth {
            self.ctx.seen.too_deep = true;
            return Err(de::Error::custom(TOO_DEEP));
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        ValueSeed {
            ctx: self.ctx,
            depth: self.depth,
        }
        .deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(ValueSeed {
            ctx: &mut *self.ctx,
            depth: self.depth + 1,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let start = self.ctx.fields.len();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValueSeed {
                ctx: &mut *self.ctx,
                depth: self.depth + 1,
            })?;
            self.ctx.fields.push((key, v));
        }
        let mut out = Map::with_capacity(self.ctx.fields.len() - start);
        for (key, v) in self.ctx.fields.drain(start..) {
            match out.entry(key) {
                serde_json::map::Entry::Vacant(e) => {
                    e.insert(v);
                }
                serde_json::map::Entry::Occupied(mut e) => {
                    self.ctx.seen.duplicates = true;
                    e.insert(v);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Decodes JSON; `Err` carries serde_json's error and what was seen (`too_deep`).
pub(crate) fn from_json(
    body: &[u8],
    max_depth: usize,
) -> Result<(Value, Seen), (serde_json::Error, Seen)> {
    // Plain documents (nearly all) take the direct reader; it steps aside for anything
    // that needs this one's reports.
    if let Some(v) = super::fastjson::parse(body, max_depth) {
        return Ok((v, Seen::default()));
    }
    from_json_full(body, max_depth)
}

/// [`from_json`] through serde_json's reader, with duplicate and depth reports.
pub(crate) fn from_json_full(
    body: &[u8],
    max_depth: usize,
) -> Result<(Value, Seen), (serde_json::Error, Seen)> {
    let mut ctx = Ctx {
        seen: Seen::default(),
        max_depth,
        fields: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let r = ValueSeed {
        ctx: &mut ctx,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match r {
        Ok(v) => Ok((v, ctx.seen)),
        Err(e) => Err((e, ctx.seen)),
    }
}

/// Decodes YAML; `Err` as for [`from_json`].
pub(crate) fn from_yaml(
    text: &str,
    max_depth: usize,
) -> Result<(Value, Seen), (serde_yaml_ng::Error, Seen)> {
    let mut ctx = Ctx {
        seen: Seen::default(),
        max_depth,
        fields: Vec::new(),
    };
    let r = ValueSeed {
        ctx: &mut ctx,
        depth: 0,
    }
    .deserialize(serde_yaml_ng::Deserializer::from_str(text));
    match r {
        Ok(v) => Ok((v, ctx.seen)),
        Err(e) => Err((e, ctx.seen)),
    }
}

/// One duplicate key of a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Duplicate {
    /// The field path, as sigs.k8s.io/json names it: `spec.replicas`, `items[0].name`.
    pub path: String,
    /// The key itself.
    pub key: String,
    /// The 1-based line where the duplicate's value starts (go-yaml's position).
    pub line: usize,
    /// The byte offset of the repeated key.
    pub offset: usize,
}

enum Frame {
    Object {
        path: String,
        keys: HashSet<String>,
        /// The key whose value comes next.
        key: Option<String>,
    },
    Array {
        path: String,
        index: usize,
    },
}

/// One key of a JSON document, as [`scan_keys`] meets it.
pub(crate) struct KeyEvent<'a> {
    /// The path of the object holding the key (empty at the top).
    pub parent: &'a str,
    pub key: &'a str,
    /// Whether the object had this key before.
    pub repeated: bool,
    /// The byte offset of the key.
    pub offset: usize,
    /// The 1-based line where its value starts.
    pub value_line: usize,
}

impl KeyEvent<'_> {
    /// The key's field path: `parent.key`.
    pub fn path(&self) -> String {
        if self.parent.is_empty() {
            self.key.to_string()
        } else {
            format!("{}.{}", self.parent, self.key)
        }
    }
}

/// Calls `f` for every key of a JSON document, in document order. `body` must be valid JSON
/// (it is scanned, not validated).
pub(crate) fn scan_keys(body: &[u8], mut f: impl FnMut(&KeyEvent<'_>)) {
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1usize;
    let mut i = 0usize;
    // The path of the value about to start, from the enclosing frame.
    fn child_path(stack: &mut [Frame]) -> String {
        match stack.last_mut() {
            None => String::new(),
            Some(Frame::Object { path, key, .. }) => {
                let k = key.take().unwrap_or_default();
                if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                }
            }
            Some(Frame::Array { path, index }) => format!("{path}[{index}]"),
        }
    }
    while i < body.len() {
        match body[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b':' => i += 1,
            b',' => {
                if let Some(Frame::Array { index, .. }) = stack.last_mut() {
                    *index += 1;
                }
                i += 1;
            }
            b'{' => {
                let path = child_path(&mut stack);
                stack.push(Frame::Object {
                    path,
                    keys: HashSet::new(),
                    key: None,
                });
                i += 1;
            }
            b'[' => {
                let path = child_path(&mut stack);
                stack.push(Frame::Array { path, index: 0 });
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                let mut escaped = false;
                while i < body.len() && body[i] != b'"' {
                    if body[i] == b'\\' {
                        escaped = true;
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                let raw = &body[start..i.min(body.len())];
                let is_key = matches!(stack.last(), Some(Frame::Object { key: None, .. }));
                if !is_key {
                    child_path(&mut stack);
                    continue;
                }
                let k = if escaped {
                    serde_json::from_slice::<String>(raw).unwrap_or_default()
                } else {
                    String::from_utf8_lossy(&raw[1..raw.len().saturating_sub(1)]).into_owned()
                };
                // The line is where the value starts.
                let mut j = i;
                let mut value_line = line;
                while j < body.len() && matches!(body[j], b' ' | b'\t' | b'\r' | b'\n' | b':') {
                    if body[j] == b'\n' {
                        value_line += 1;
                    }
                    j += 1;
                }
                if let Some(Frame::Object { path, keys, key }) = stack.last_mut() {
                    let repeated = !keys.insert(k.clone());
                    f(&KeyEvent {
                        parent: path,
                        key: &k,
                        repeated,
                        offset: start,
                        value_line,
                    });
                    *key = Some(k);
                }
            }
            _ => {
                // A number or a literal: a value of the enclosing frame.
                child_path(&mut stack);
                while i < body.len()
                    && !matches!(body[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    i += 1;
                }
            }
        }
    }
}

/// The duplicate keys of a JSON document, in document order, each reported once per path.
/// `body` must be valid JSON.
pub(crate) fn json_duplicates(body: &[u8]) -> Vec<Duplicate> {
    let mut out: Vec<Duplicate> = Vec::new();
    scan_keys(body, |e| {
        if e.repeated {
            let path = e.path();
            if !out.iter().any(|d| d.path == path) {
                out.push(Duplicate {
                    path,
                    key: e.key.to_string(),
                    line: e.value_line,
                    offset: e.offset,
                });
            }
        }
    });
    out
}

/// The byte offset of the first occurrence of each key path of a JSON document.
pub(crate) fn key_offsets(body: &[u8]) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    scan_keys(body, |e| {
        if !e.repeated {
            out.entry(e.path()).or_insert(e.offset);
        }
    });
    out
}

/// The first duplicate key of a YAML document, as go-yaml reports it (`line N: key "k"
/// already set in map`, N the line of the duplicate's value), found by decoding it again into
/// serde_yaml_ng's own `Value`, which refuses duplicates and says where their mapping starts;
/// the duplicate is then looked for among that mapping's keys. Only the first is found.
pub(crate) fn yaml_first_duplicate(text: &str) -> Option<String> {
    let err = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text).err()?;
    let msg = err.to_string();
    let rest = &msg[msg.find("duplicate entry with key ")? + "duplicate entry with key ".len()..];
    let key: String = match rest.split(" at line ").next() {
        Some(k) if k.starts_with('"') => serde_json::from_str(k).unwrap_or_else(|_| k.into()),
        Some(k) => k.trim_matches('`').to_string(),
        None => return None,
    };
    let (map_line, map_col) = err.location().map_or((1, 1), |l| (l.line(), l.column()));
    let line = duplicate_line(text, &key, map_line, map_col).unwrap_or(map_line);
    Some(format!(
        "line {line}: key {} already set in map",
        crate::warnings::go_quote(&key)
    ))
}

/// The line of the value of the second `key` of the block mapping whose first key is at
/// `line`:`col` (1-based).
fn duplicate_line(text: &str, key: &str, line: usize, col: usize) -> Option<usize> {
    let indent = col.saturating_sub(1);
    let lines: Vec<&str> = text.lines().collect();
    let is_key = |s: &str| {
        let s = s.trim_start_matches(['"', '\'']);
        s.strip_prefix(key)
            .map(|r| {
                r.trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
            })
            .unwrap_or(false)
    };
    let mut seen = 0;
    for (i, l) in lines.iter().enumerate().skip(line.saturating_sub(1)) {
        let content = if i + 1 == line {
            l.get(indent..).unwrap_or("")
        } else {
            let trimmed = l.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let ind = l.len() - trimmed.len();
            if ind < indent {
                break;
            }
            if ind > indent {
                continue;
            }
            trimmed
        };
        if is_key(content) {
            seen += 1;
            if seen == 2 {
                // The value's line: this one, or the next non-empty one when the value
                // starts below the key.
                let after = content.split_once(':').map_or("", |(_, v)| v).trim();
                if after.is_empty() || after.starts_with('#') {
                    return lines
                        .iter()
                        .enumerate()
                        .skip(i + 1)
                        .find(|(_, l)| !l.trim().is_empty())
                        .map(|(j, _)| j + 1);
                }
                return Some(i + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_serde_json_and_flags_duplicates() {
        let body = br#"{"a":1,"b":[1.5,true,null,"x",{"c":-2}],"d":{"e":18446744073709551615}}"#;
        let (v, seen) = from_json(body, 100).unwrap();
        assert_eq!(v, serde_json::from_slice::<Value>(body).unwrap());
        assert!(!seen.duplicates);
        let (v, seen) = from_json(br#"{"a":1,"b":2,"a":3}"#, 100).unwrap();
        assert!(seen.duplicates);
        assert_eq!(v.to_string(), r#"{"a":3,"b":2}"#);
        let (_, seen) = from_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", 100).unwrap();
        assert!(seen.duplicates);
    }

    #[test]
    fn depth_is_bounded_while_decoding() {
        let deep = "[".repeat(102) + &"]".repeat(102);
        let (_, seen) = from_json(deep.as_bytes(), 100).unwrap_err();
        assert!(seen.too_deep);
        let ok = "[".repeat(100) + &"]".repeat(100);
        assert!(from_json(ok.as_bytes(), 100).is_ok());
        assert!(from_json(b"{} x", 100).is_err());
    }

    #[test]
    fn duplicate_paths_and_lines() {
        let body = b"{\"spec\":{\"replicas\":1,\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"name\":\"b\"}]}},\n\"replicas\":\n2},\"kind\":\"x\",\"kind\":\"y\",\"kind\":\"z\"}";
        let d = json_duplicates(body);
        let got: Vec<(&str, &str, usize)> = d
            .iter()
            .map(|d| (d.path.as_str(), d.key.as_str(), d.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("spec.template.spec.containers[0].name", "name", 1),
                ("spec.replicas", "replicas", 3),
                ("kind", "kind", 3),
            ]
        );
        assert!(json_duplicates(br#"{"a":[1,{"b":1},[{"c":"\"}","c":2}]]}"#)
            .iter()
            .any(|d| d.path == "a[2][0].c"));
        assert!(json_duplicates(br#"{"a\u0062":1,"ab":2}"#)
            .iter()
            .any(|d| d.path == "ab"));
    }

    #[test]
    fn yaml_duplicate_lines() {
        assert_eq!(
            yaml_first_duplicate("spec:\n  replicas: 1\n  replicas: 2\n").as_deref(),
            Some("line 3: key \"replicas\" already set in map")
        );
        assert_eq!(yaml_first_duplicate("a: 1\n"), None);
        assert_eq!(
            yaml_first_duplicate("a: 1\nitems:\n- b: 1\n  c:\n    x: 1\n  c:\n    x: 2\n")
                .as_deref(),
            Some("line 7: key \"c\" already set in map")
        );
    }
}
