//! The protobuf wire format: varints, the four wire types Kubernetes messages use, and a writer
//! for the few messages the server encodes itself (the OpenAPI v2 document).

use crate::Error;

/// Wire types.
pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// One field as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

/// Reads the fields of one message in order.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Whether everything has been read.
    pub fn is_done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, Error> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(Error::Truncated)?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(Error::Malformed("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::Malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// The next field, or `None` at the end of the message.
    pub fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, Error> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| Error::Malformed("field number"))?;
        if number == 0 {
            return Err(Error::Malformed("field number 0"));
        }
        let v = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            FIXED64 => {
                let b = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            }
            LEN => {
                let n = usize::try_from(self.varint()?).map_err(|_| Error::Truncated)?;
                Value::Len(self.take(n)?)
            }
            FIXED32 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes")))
            }
            _ => {
                return Err(Error::Malformed(
                    "unsupported wire type (groups are not used)",
                ))
            }
        };
        Ok(Some((number, v)))
    }
}

/// Builds a message. Nested messages are encoded first and added as length-delimited bytes.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, number: u32, wire: u8) {
        self.raw_varint((u64::from(number) << 3) | u64::from(wire));
    }

    pub fn varint(&mut self, number: u32, v: u64) -> &mut Self {
        self.key(number, VARINT);
        self.raw_varint(v);
        self
    }

    pub fn bool(&mut self, number: u32, v: bool) -> &mut Self {
        self.varint(number, u64::from(v))
    }

    pub fn int64(&mut self, number: u32, v: i64) -> &mut Self {
        self.varint(number, v as u64)
    }

    pub fn double(&mut self, number: u32, v: f64) -> &mut Self {
        self.key(number, FIXED64);
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
        self
    }

    pub fn bytes(&mut self, number: u32, v: &[u8]) -> &mut Self {
        self.key(number, LEN);
        self.raw_varint(v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn string(&mut self, number: u32, v: &str) -> &mut Self {
        self.bytes(number, v.as_bytes())
    }

    pub fn message(&mut self, number: u32, m: &Writer) -> &mut Self {
        self.bytes(number, &m.buf)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_every_wire_type() {
        let mut inner = Writer::new();
        inner.string(1, "x");
        let mut w = Writer::new();
        w.varint(1, 300)
            .int64(2, -1)
            .double(3, 1.5)
            .message(4, &inner)
            .bool(5, true);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.field().unwrap(), Some((1, Value::Varint(300))));
        assert_eq!(r.field().unwrap(), Some((2, Value::Varint(u64::MAX))));
        assert_eq!(
            r.field().unwrap(),
            Some((3, Value::Fixed64(1.5f64.to_bits())))
        );
        assert_eq!(r.field().unwrap(), Some((4, Value::Len(&[10, 1, b'x']))));
        assert_eq!(r.field().unwrap(), Some((5, Value::Varint(1))));
        assert_eq!(r.field().unwrap(), None);
    }

    #[test]
    fn truncated_and_malformed_input_is_an_error() {
        assert!(matches!(
            Reader::new(&[0x08]).field(),
            Err(Error::Truncated)
        ));
        assert!(matches!(
            Reader::new(&[0x0a, 5, 1]).field(),
            Err(Error::Truncated)
        ));
        assert!(Reader::new(&[0x0b]).field().is_err());
        assert!(Reader::new(&[0x00, 0]).field().is_err());
        assert!(
            Reader::new(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
                .field()
                .is_err()
        );
    }
}
