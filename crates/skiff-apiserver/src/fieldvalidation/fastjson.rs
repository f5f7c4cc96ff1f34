//! A direct JSON reader for request bodies, for the common case only: a well-formed document
//! with integer numbers, no duplicate keys and no deeper nesting than allowed. It builds the
//! same `serde_json::Value` that serde_json's own reader builds, without serde's visitor
//! machinery: each object's fields are gathered first and moved into a map of the right size,
//! and string contents are checked for UTF-8 once, for the whole body.
//!
//! Anything else (a syntax error, a duplicate key, a fraction or exponent, an integer beyond
//! 64 bits, `-0`, a lone surrogate, nesting beyond the bound) makes it answer `None`, and the
//! caller decodes with the full reader ([`super::decode::from_json`]), which reports errors,
//! duplicates and depth exactly as before. So this reader decides nothing: it is a shortcut
//! whose answers equal the full reader's (property-tested below).

use serde_json::{Map, Number, Value};
use skiff_core::meta::first_special;

/// Decodes `body` if it is plain, well-formed JSON; `None` otherwise (see the module docs).
pub(crate) fn parse(body: &[u8], max_depth: usize) -> Option<Value> {
    // Valid JSON outside strings is ASCII, so one check covers every string's bytes, and a
    // string's text can be sliced out of the body at its quotes.
    let text = std::str::from_utf8(body).ok()?;
    let mut r = Reader {
        text,
        bytes: body,
        pos: 0,
        max_depth,
        fields: Vec::new(),
        scratch: String::new(),
    };
    let v = r.value(0)?;
    r.skip_ws();
    (r.pos == body.len()).then_some(v)
}

/// Spare room in each object's map.
const SLACK: usize = 4;

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    max_depth: usize,
    /// The fields of the objects being read, innermost last.
    fields: Vec<(String, Value)>,
    scratch: String,
}

impl Reader<'_> {
    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, lit: &[u8]) -> Option<()> {
        if self.bytes[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Some(())
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > self.max_depth {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(Value::String),
            b't' => self.eat(b"true").map(|()| Value::Bool(true)),
            b'f' => self.eat(b"false").map(|()| Value::Bool(false)),
            b'n' => self.eat(b"null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    fn object(&mut self, depth: usize) -> Option<Value> {
        self.pos += 1;
        let start = self.fields.len();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(Value::Object(Map::new()));
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            if self.peek()? != b':' {
                return None;
            }
            self.pos += 1;
            let v = self.value(depth + 1)?;
            self.fields.push((key, v));
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    break;
                }
                _ => return None,
            }
        }
        // Room for a few more: defaulting adds fields to most objects of a request (a pod's
        // spec, containers, metadata), and a map sized exactly would grow (and rehash) then.
        let mut map = Map::with_capacity(self.fields.len() - start + SLACK);
        for (k, v) in self.fields.drain(start..) {
            if map.insert(k, v).is_some() {
                // A duplicate: the full reader reports where.
                return None;
            }
        }
        Some(Value::Object(map))
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        self.pos += 1;
        let mut out = Vec::new();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(Value::Array(out));
        }
        loop {
            out.push(self.value(depth + 1)?);
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(Value::Array(out));
                }
                _ => return None,
            }
        }
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Option<String> {
        let start = self.pos + 1;
        let mut i = start + first_special(self.bytes.get(start..)?)?;
        match self.bytes[i] {
            b'"' => {
                self.pos = i + 1;
                return Some(self.text[start..i].to_string());
            }
            b'\\' => {}
            _ => return None,
        }
        // Escapes: copy what came before, then decode the rest piece by piece.
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        s.push_str(&self.text[start..i]);
        loop {
            match *self.bytes.get(i)? {
                b'"' => {
                    self.pos = i + 1;
                    let out = s.as_str().to_string();
                    self.scratch = s;
                    return Some(out);
                }
                b'\\' => {
                    let c = match *self.bytes.get(i + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let (c, used) = self.unicode_escape(i)?;
                            s.push(c);
                            i += used;
                            continue;
                        }
                        _ => return None,
                    };
                    s.push(c);
                    i += 2;
                }
                0..=0x1f => return None,
                _ => {
                    // Copy up to the next quote or backslash at once.
                    let run = first_special(&self.bytes[i..])?;
                    s.push_str(&self.text[i..i + run]);
                    i += run;
                }
            }
        }
    }

    /// `\uXXXX` at `i` (or a surrogate pair `\uXXXX\uXXXX`): the character and the bytes read.
    fn unicode_escape(&self, i: usize) -> Option<(char, usize)> {
        let hex = |at: usize| -> Option<u32> {
            let h = self.bytes.get(at..at + 4)?;
            let h = std::str::from_utf8(h).ok()?;
            if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(h, 16).ok()
        };
        let first = hex(i + 2)?;
        match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(i + 6..i + 8)? != b"\\u" {
                    return None;
                }
                let second = hex(i + 8)?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                Some((char::from_u32(c)?, 12))
            }
            0xDC00..=0xDFFF => None,
            _ => Some((char::from_u32(first)?, 6)),
        }
    }

    /// An integer as serde_json reads one: u64 when not negative, i64 when negative.
    fn integer(&mut self) -> Option<Value> {
        let negative = self.bytes[self.pos] == b'-';
        let start = self.pos + usize::from(negative);
        let mut i = start;
        let mut n: u64 = 0;
        while let Some(&d @ b'0'..=b'9') = self.bytes.get(i) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            i += 1;
        }
        let digits = i - start;
        // No digits, a leading zero, or a fraction or exponent: the full reader decides.
        if digits == 0 || (digits > 1 && self.bytes[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.bytes.get(i) {
            return None;
        }
        self.pos = i;
        if negative {
            if n == 0 {
                return None;
            }
            let v = i64::try_from(n)
                .ok()
                .map(|v| -v)
                .or_else(|| (n == 1u64 << 63).then_some(i64::MIN))?;
            Some(Value::Number(Number::from(v)))
        } else {
            Some(Value::Number(Number::from(n)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn full(body: &[u8]) -> Option<Value> {
        super::super::decode::from_json_full(body, 100)
            .ok()
            .filter(|(_, seen)| !seen.duplicates)
            .map(|(v, _)| v)
    }

    /// Whenever the shortcut answers, it answers what the full reader does, key order
    /// included; it answers for the documents clients send.
    fn agrees(body: &[u8]) -> bool {
        match parse(body, 100) {
            Some(v) => {
                let want = full(body).expect("the full reader accepts what the shortcut does");
                assert_eq!(
                    serde_json::to_string(&v).unwrap(),
                    serde_json::to_string(&want).unwrap()
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn pods_and_plain_documents_take_the_shortcut() {
        let pod = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p-1","labels":{"app":"web"}},
            "spec":{"containers":[{"name":"c","image":"nginx:1.27","ports":[{"containerPort":80}],
            "env":[{"name":"A","value":"x\"y\\z\n\u00e9\ud83d\ude00"}],
            "resources":{"requests":{"cpu":"100m"}}}],"terminationGracePeriodSeconds":-5,
            "enableServiceLinks":false,"x":null,"big":18446744073709551615,"min":-9223372036854775808}}"#;
        assert!(agrees(pod));
        for plain in [
            &b"{}"[..],
            b"[]",
            b" [ 1 , [ ] , { } ] ",
            b"\"s\"",
            b"0",
            b"-1",
            b"true",
        ] {
            assert!(agrees(plain), "{}", String::from_utf8_lossy(plain));
        }
    }

    #[test]
    fn the_rest_is_left_to_the_full_reader() {
        for odd in [
            &b"{\"a\":1,\"a\":2}"[..],
            b"1.5",
            b"1e3",
            b"-0",
            b"01",
            b"18446744073709551616",
            b"-9223372036854775809",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"a\tb\"",
            b"{\"a\":1,}",
            b"[1,]",
            b"{} x",
            b"",
            b"nul",
            b"\"\\x\"",
            b"\xff",
        ] {
            assert_eq!(parse(odd, 100), None, "{}", String::from_utf8_lossy(odd));
        }
        let deep = format!("{}{}", "[".repeat(102), "]".repeat(102));
        assert_eq!(parse(deep.as_bytes(), 100), None);
        let ok = format!("{}{}", "[".repeat(101), "]".repeat(101));
        assert!(agrees(ok.as_bytes()));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            any::<u64>().prop_map(|n| Value::Number(n.into())),
            "[a-z\"\\\\\n\u{e9}\u{1F600}/ ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-zA-Z\"\\\\é]{0,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn written_documents_read_back_the_same(v in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            };
            // -0 is the one integer text the shortcut leaves alone; serde never writes it.
            prop_assert!(agrees(&text));
        }

        #[test]
        fn damaged_documents_never_disagree(v in json_value(), at in any::<prop::sample::Index>(),
                                            byte in prop::sample::select(b"{}[]\",:\\ u0-e.x".to_vec())) {
            let mut text = serde_json::to_vec(&v).unwrap();
            let i = at.index(text.len() + 1);
            if i < text.len() && byte == b'x' {
                text.remove(i);
            } else {
                text.insert(i.min(text.len()), byte);
            }
            // Either both accept the same value, or the shortcut steps aside.
            agrees(&text);
        }
    }
}
