//! The table-driven decoder: protobuf message → the JSON value Go's `encoding/json` writes for
//! the same Go object (field order of the Go struct, zero values as pointers and `omitempty`
//! decide, map keys sorted, `[]byte` as base64).

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::schema::{Field, Presence, Shape, Special, Ty};
use crate::table::MESSAGES;
use crate::wire::{Reader, Value as W};
use crate::{Error, MAGIC, MAX_DEPTH};

/// Decodes a whole body: the magic, the `runtime.Unknown` envelope, and the object, returned
/// with `kind` and `apiVersion` first, as a JSON body carries them.
pub fn decode_body(body: &[u8]) -> Result<Value, Error> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or(Error::NoMagic)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut encoding = String::new();
    let mut r = Reader::new(rest);
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, W::Len(tm)) => {
                let mut t = Reader::new(tm);
                while let Some((n, v)) = t.field()? {
                    match (n, v) {
                        (1, W::Len(s)) => api_version = utf8(s, "typeMeta.apiVersion")?,
                        (2, W::Len(s)) => kind = utf8(s, "typeMeta.kind")?,
                        _ => {}
                    }
                }
            }
            (2, W::Len(b)) => raw = b,
            (3, W::Len(s)) => encoding = utf8(s, "contentEncoding")?,
            (4, W::Len(_)) => {}
            (1..=4, _) => return Err(Error::Malformed("envelope field of the wrong wire type")),
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(Error::ContentEncoding(encoding));
    }
    if kind.is_empty() || api_version.is_empty() {
        return Err(Error::NoKind);
    }
    let object = decode_message(&api_version, &kind, raw)?;
    // Lists, maps and embedded JSON add levels that message nesting alone does not count; hold
    // the result to the bound JSON bodies have.
    if !within_depth(&object, 1) {
        return Err(Error::TooDeep);
    }
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind));
    out.insert("apiVersion".into(), Value::String(api_version));
    if let Value::Object(o) = object {
        out.extend(o);
    }
    Ok(Value::Object(out))
}

/// Decodes the message of `kind` in `api_version` (without `kind` and `apiVersion`).
pub fn decode_message(api_version: &str, kind: &str, raw: &[u8]) -> Result<Value, Error> {
    let root = crate::root(api_version, kind).ok_or_else(|| Error::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    Ok(message(root.message, raw, 0)?.unwrap_or_else(|| Value::Object(Map::new())))
}

fn within_depth(v: &Value, d: usize) -> bool {
    if d > MAX_DEPTH {
        return false;
    }
    match v {
        Value::Array(a) => a.iter().all(|x| within_depth(x, d + 1)),
        Value::Object(o) => o.values().all(|x| within_depth(x, d + 1)),
        _ => true,
    }
}

fn utf8(b: &[u8], what: &str) -> Result<String, Error> {
    String::from_utf8(b.to_vec()).map_err(|_| Error::Invalid(format!("{what} is not valid UTF-8")))
}

/// What has been read of one field so far.
#[derive(Clone)]
enum Acc<'a> {
    None,
    One(Value),
    /// A single message field: every occurrence, merged (concatenated) as protobuf specifies.
    Parts(Vec<&'a [u8]>),
    List(Vec<Value>),
    Map(std::collections::BTreeMap<String, Value>),
}

/// Decodes one message. `None` means the value is unset in JSON (a zero `Time`).
fn message(idx: u16, buf: &[u8], depth: usize) -> Result<Option<Value>, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep);
    }
    let m = &MESSAGES[usize::from(idx)];
    match m.special {
        Special::None
        | Special::Items
        | Special::SchemaOrArray
        | Special::SchemaOrBool
        | Special::SchemaOrStringArray => {}
        s => return special(s, m.name, buf),
    }
    let mut acc: Vec<Acc> = vec![Acc::None; m.fields.len()];
    let mut r = Reader::new(buf);
    while let Some((n, v)) = r.field()? {
        let Some(i) = m.fields.iter().position(|f| f.number == n) else {
            continue;
        };
        let f = &m.fields[i];
        match f.shape {
            Shape::Single => match f.ty {
                Ty::Message(_) => {
                    let W::Len(b) = v else {
                        return Err(wrong_wire(m.name, f));
                    };
                    match &mut acc[i] {
                        Acc::Parts(p) => p.push(b),
                        a => *a = Acc::Parts(vec![b]),
                    }
                }
                ty => acc[i] = Acc::One(scalar(ty, v, m.name, f)?),
            },
            Shape::Repeated => {
                let list = match &mut acc[i] {
                    Acc::List(l) => l,
                    a => {
                        *a = Acc::List(Vec::new());
                        let Acc::List(l) = a else { unreachable!() };
                        l
                    }
                };
                match (f.ty, v) {
                    (Ty::Message(t), W::Len(b)) => {
                        list.push(message(t, b, depth + 1)?.unwrap_or(Value::Null))
                    }
                    (Ty::Bool | Ty::Int32 | Ty::Int64, W::Len(b)) => {
                        let mut p = Reader::new(b);
                        while !p.is_done() {
                            let x = p.varint()?;
                            list.push(scalar(f.ty, W::Varint(x), m.name, f)?);
                        }
                    }
                    (Ty::Double, W::Len(b)) => {
                        if b.len() % 8 != 0 {
                            return Err(wrong_wire(m.name, f));
                        }
                        for c in b.chunks(8) {
                            let x = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                            list.push(scalar(f.ty, W::Fixed64(x), m.name, f)?);
                        }
                    }
                    (ty, v) => list.push(scalar(ty, v, m.name, f)?),
                }
            }
            Shape::Map => {
                let W::Len(entry) = v else {
                    return Err(wrong_wire(m.name, f));
                };
                let mut key = String::new();
                let mut val: Option<W> = None;
                let mut e = Reader::new(entry);
                while let Some((n, v)) = e.field()? {
                    match (n, v) {
                        (1, W::Len(k)) => key = utf8(k, &format!("a key of {}", f.json))?,
                        (1, _) => return Err(wrong_wire(m.name, f)),
                        (2, v) => val = Some(v),
                        _ => {}
                    }
                }
                let value = match (f.ty, val) {
                    (Ty::Message(t), Some(W::Len(b))) => {
                        message(t, b, depth + 1)?.unwrap_or(Value::Null)
                    }
                    (Ty::Message(t), None) => message(t, &[], depth + 1)?.unwrap_or(Value::Null),
                    (Ty::Message(_), Some(_)) => return Err(wrong_wire(m.name, f)),
                    (ty, Some(v)) => scalar(ty, v, m.name, f)?,
                    (ty, None) => zero(ty).unwrap_or(Value::Null),
                };
                match &mut acc[i] {
                    Acc::Map(map) => {
                        map.insert(key, value);
                    }
                    a => *a = Acc::Map([(key, value)].into_iter().collect()),
                }
            }
        }
    }
    if m.special == Special::Items {
        return Ok(Some(match acc.into_iter().next() {
            Some(Acc::List(l)) => Value::Array(l),
            _ => Value::Array(Vec::new()),
        }));
    }
    let mut out = Map::new();
    for (f, a) in m.fields.iter().zip(acc) {
        let value = match a {
            Acc::None => match (f.shape, f.presence) {
                (Shape::Single, Presence::Always) => zero(f.ty),
                _ => None,
            },
            Acc::One(v) => (f.presence != Presence::OmitEmpty || !is_zero(&v)).then_some(v),
            Acc::Parts(parts) => {
                let Ty::Message(t) = f.ty else { unreachable!() };
                let v = if parts.len() == 1 {
                    message(t, parts[0], depth + 1)?
                } else {
                    message(t, &parts.concat(), depth + 1)?
                };
                if f.inline() {
                    if let Some(Value::Object(o)) = v {
                        out.extend(o);
                    }
                    continue;
                }
                v
            }
            Acc::List(l) => Some(Value::Array(l)),
            Acc::Map(map) => Some(Value::Object(map.into_iter().collect())),
        };
        if let Some(v) = value {
            out.insert(f.json.to_string(), v);
        }
    }
    Ok(either(m.special, out))
}

/// The JSON form of apiextensions' either-or schema types, from their decoded fields; `None`
/// (unset) when neither side is set, which Go writes as `null`.
fn either(s: Special, mut fields: Map<String, Value>) -> Option<Value> {
    let non_empty = |v: &Option<Value>| matches!(v, Some(Value::Array(a)) if !a.is_empty());
    match s {
        Special::SchemaOrArray => {
            let list = fields.remove("jSONSchemas");
            if non_empty(&list) {
                list
            } else {
                fields.remove("schema")
            }
        }
        Special::SchemaOrBool => match fields.remove("schema") {
            Some(v) => Some(v),
            None => Some(fields.remove("allows").unwrap_or(Value::Bool(false))),
        },
        Special::SchemaOrStringArray => {
            let list = fields.remove("property");
            if non_empty(&list) {
                list
            } else {
                fields.remove("schema")
            }
        }
        _ => Some(Value::Object(fields)),
    }
}

fn wrong_wire(message: &str, f: &Field) -> Error {
    Error::Invalid(format!(
        "field {} ({}) of {message} has the wrong wire type",
        f.number, f.json
    ))
}

fn scalar(ty: Ty, v: W, message: &str, f: &Field) -> Result<Value, Error> {
    Ok(match (ty, v) {
        (Ty::String, W::Len(b)) => Value::String(
            std::str::from_utf8(b)
                .map_err(|_| {
                    Error::Invalid(format!("field {} of {message} is not valid UTF-8", f.json))
                })?
                .to_string(),
        ),
        (Ty::Bytes, W::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Ty::Bool, W::Varint(x)) => Value::Bool(x != 0),
        (Ty::Int32, W::Varint(x)) => Value::from(x as i64 as i32),
        (Ty::Int64, W::Varint(x)) => Value::from(x as i64),
        (Ty::Double, W::Fixed64(x)) => {
            Value::Number(Number::from_f64(f64::from_bits(x)).ok_or_else(|| {
                Error::Invalid(format!(
                    "field {} of {message} is not a finite number",
                    f.json
                ))
            })?)
        }
        _ => return Err(wrong_wire(message, f)),
    })
}

/// The JSON Go writes for a plain (non-pointer, non-`omitempty`) field left at its zero value.
fn zero(ty: Ty) -> Option<Value> {
    match ty {
        Ty::String => Some(Value::String(String::new())),
        Ty::Bool => Some(Value::Bool(false)),
        Ty::Int32 | Ty::Int64 | Ty::Double => Some(Value::from(0)),
        Ty::Bytes | Ty::Message(_) => None,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Reads the scalar fields of a small special message by number.
fn fields_of(buf: &[u8]) -> Result<Vec<(u32, W<'_>)>, Error> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while let Some(f) = r.field()? {
        out.push(f);
    }
    Ok(out)
}

fn last_varint(fields: &[(u32, W)], n: u32) -> Result<i64, Error> {
    let mut out = 0;
    for (num, v) in fields {
        if *num == n {
            match v {
                W::Varint(x) => out = *x as i64,
                _ => return Err(Error::Malformed("a number field has the wrong wire type")),
            }
        }
    }
    Ok(out)
}

fn last_bytes<'a>(fields: &[(u32, W<'a>)], n: u32) -> Result<Option<&'a [u8]>, Error> {
    let mut out = None;
    for (num, v) in fields {
        if *num == n {
            match v {
                W::Len(b) => out = Some(*b),
                _ => return Err(Error::Malformed("a bytes field has the wrong wire type")),
            }
        }
    }
    Ok(out)
}

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which marshals as `null`.
const GO_ZERO_TIME: i64 = -62_135_596_800;

fn special(s: Special, name: &str, buf: &[u8]) -> Result<Option<Value>, Error> {
    let fields = fields_of(buf)?;
    let json_bytes = |b: Option<&[u8]>, what: &str| -> Result<Option<Value>, Error> {
        match b {
            None | Some([]) => Ok(None),
            Some(b) => serde_json::from_slice(b)
                .map(Some)
                .map_err(|e| Error::Invalid(format!("the {what} in {name} is not JSON: {e}"))),
        }
    };
    match s {
        Special::Time | Special::MicroTime => {
            if buf.is_empty() {
                return Ok(None);
            }
            let secs = last_varint(&fields, 1)?;
            let nanos = last_varint(&fields, 2)? as i32;
            if secs == GO_ZERO_TIME && (s == Special::Time || nanos == 0) {
                return Ok(None);
            }
            let ts = jiff::Timestamp::new(secs, 0)
                .map_err(|e| Error::Invalid(format!("time out of range in {name}: {e}")))?;
            let base = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
            Ok(Some(Value::String(if s == Special::Time {
                format!("{base}Z")
            } else {
                if !(0..1_000_000_000).contains(&nanos) {
                    return Err(Error::Invalid(format!("nanos out of range in {name}")));
                }
                format!("{base}.{:06}Z", nanos / 1000)
            })))
        }
        Special::Duration => Ok(Some(Value::String(go_duration(last_varint(&fields, 1)?)))),
        Special::IntOrString => {
            let t = last_varint(&fields, 1)?;
            match t {
                0 => Ok(Some(Value::from(last_varint(&fields, 2)? as i32))),
                1 => {
                    let s = last_bytes(&fields, 3)?.unwrap_or_default();
                    Ok(Some(Value::String(utf8(s, "IntOrString.strVal")?)))
                }
                _ => Err(Error::Invalid(format!("IntOrString has type {t}"))),
            }
        }
        Special::Quantity => {
            let s = last_bytes(&fields, 1)?.unwrap_or_default();
            let s = utf8(s, "a quantity")?;
            Ok(Some(Value::String(if s.is_empty() {
                "0".into()
            } else {
                s
            })))
        }
        Special::RawExtension | Special::FieldsV1 => {
            json_bytes(last_bytes(&fields, 1)?, "embedded object")
        }
        Special::Unknown => json_bytes(last_bytes(&fields, 2)?, "embedded object"),
        Special::None
        | Special::Items
        | Special::SchemaOrArray
        | Special::SchemaOrBool
        | Special::SchemaOrStringArray => unreachable!("decoded field by field"),
    }
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if d < 0 {
        out.push('-');
    }
    let u = d.unsigned_abs();
    fn frac(v: u64, digits: u32) -> String {
        let div = 10u64.pow(digits);
        let (whole, rest) = (v / div, v % div);
        if rest == 0 {
            return whole.to_string();
        }
        let f = format!("{rest:0width$}", width = digits as usize);
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
    if u < 1_000 {
        out += &format!("{u}ns");
    } else if u < 1_000_000 {
        out += &format!("{}µs", frac(u, 3));
    } else if u < 1_000_000_000 {
        out += &format!("{}ms", frac(u, 6));
    } else {
        let secs = u / 1_000_000_000;
        let (h, m) = (secs / 3600, (secs / 60) % 60);
        if h > 0 {
            out += &format!("{h}h");
        }
        if h > 0 || m > 0 {
            out += &format!("{m}m");
        }
        out += &format!("{}s", frac(u % 60_000_000_000, 9));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1), "1ns");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(3_723_000_000_000), "1h2m3s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
    }
}
