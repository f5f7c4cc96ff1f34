//! The HTTP/1.1 response framing the lean load generator needs, per RFC 9112: a status line,
//! header fields up to an empty line, then a body delimited by `Content-Length`, by the
//! `chunked` transfer coding (chunk sizes in hex, optional extensions and trailers), or by the
//! connection closing; 204 and 304 responses carry no body. `Transfer-Encoding` overrides
//! `Content-Length`, and differing `Content-Length` values are an error.
//!
//! The parser is pure: it is given every byte of one response received so far and says whether
//! the response is complete, so partial reads are handled by calling it again with more bytes.

use std::ops::Range;

/// A header section longer than this is an error rather than a reason to keep reading.
const MAX_HEAD: usize = 64 * 1024;

/// Why a response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("malformed status line {0:?}")]
    StatusLine(String),
    #[error("informational response {0} not expected")]
    Informational(u16),
    #[error("malformed header line {0:?}")]
    HeaderLine(String),
    #[error("bad Content-Length {0:?}")]
    ContentLength(String),
    #[error("response header section longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("bad chunk: {0}")]
    Chunk(&'static str),
    #[error("connection closed after {0} bytes of an incomplete response")]
    Truncated(usize),
}

/// Where a complete response's body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// These bytes of the buffer (Content-Length or close-delimited).
    Span(Range<usize>),
    /// A chunked body, decoded.
    Decoded(Vec<u8>),
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub status: u16,
    /// How many bytes of the buffer the response took.
    pub len: usize,
    pub body: Body,
}

impl Parsed {
    /// The body's bytes, given the buffer that was parsed.
    #[cfg(test)]
    pub(crate) fn body<'a>(&'a self, buf: &'a [u8]) -> &'a [u8] {
        match &self.body {
            Body::Span(r) => &buf[r.clone()],
            Body::Decoded(v) => v,
        }
    }
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Parses the response at the start of `buf`: `Ok(None)` while more bytes are needed. With
/// `at_eof` the connection has closed, so a close-delimited body ends here and any other
/// incomplete response is an error.
pub(crate) fn parse_response(buf: &[u8], at_eof: bool) -> Result<Option<Parsed>, ParseError> {
    let incomplete = || {
        if at_eof {
            Err(ParseError::Truncated(buf.len()))
        } else {
            Ok(None)
        }
    };
    let Some(head_end) = find(buf, b"\r\n\r\n", 0) else {
        if buf.len() > MAX_HEAD {
            return Err(ParseError::HeadTooLarge);
        }
        return incomplete();
    };
    let body_start = head_end + 4;
    let mut lines = buf[..head_end].split(|&b| b == b'\n').map(|l| match l {
        [rest @ .., b'\r'] => rest,
        l => l,
    });
    let status = status_code(lines.next().unwrap_or_default())?;
    if (100..200).contains(&status) {
        return Err(ParseError::Informational(status));
    }
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    for line in lines {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .filter(|&c| c > 0 && !line[..c].iter().any(|b| b.is_ascii_whitespace()))
            .ok_or_else(|| ParseError::HeaderLine(lossy(line)))?;
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or_else(|| ParseError::ContentLength(lossy(value)))?;
            if length.is_some_and(|m| m != n) {
                return Err(ParseError::ContentLength(lossy(value)));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            // Only the last coding decides whether the message is chunked.
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Length(0)
    } else if transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    match framing {
        Framing::Length(n) => {
            let end = body_start.checked_add(n).ok_or(ParseError::HeadTooLarge)?;
            if buf.len() < end {
                return incomplete();
            }
            Ok(Some(Parsed {
                status,
                len: end,
                body: Body::Span(body_start..end),
            }))
        }
        Framing::Close => {
            if !at_eof {
                return Ok(None);
            }
            Ok(Some(Parsed {
                status,
                len: buf.len(),
                body: Body::Span(body_start..buf.len()),
            }))
        }
        Framing::Chunked => match dechunk(buf, body_start)? {
            Some((body, len)) => Ok(Some(Parsed {
                status,
                len,
                body: Body::Decoded(body),
            })),
            None => incomplete(),
        },
    }
}

/// Decodes the chunked body starting at `pos`: the body and where the message ends, or `None`
/// while incomplete.
fn dechunk(buf: &[u8], mut pos: usize) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(buf, b"\r\n", pos) else {
            if buf.len() - pos > 1024 {
                return Err(ParseError::Chunk("chunk size line too long"));
            }
            return Ok(None);
        };
        let line = &buf[pos..line_end];
        let size_text = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let size = parse_hex(size_text).ok_or(ParseError::Chunk("bad chunk size"))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(end) = find(buf, b"\r\n", pos) else {
                    return Ok(None);
                };
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    return Ok(Some((body, pos)));
                }
            }
        }
        let data_end = pos
            .checked_add(size)
            .ok_or(ParseError::Chunk("chunk too large"))?;
        if buf.len() < data_end + 2 {
            return Ok(None);
        }
        if &buf[data_end..data_end + 2] != b"\r\n" {
            return Err(ParseError::Chunk("chunk data not followed by CRLF"));
        }
        body.extend_from_slice(&buf[pos..data_end]);
        pos = data_end + 2;
    }
}

/// The status code of `HTTP/1.x NNN reason`.
fn status_code(line: &[u8]) -> Result<u16, ParseError> {
    let bad = || ParseError::StatusLine(lossy(line));
    let rest = line.strip_prefix(b"HTTP/1.").ok_or_else(bad)?;
    match rest {
        [v, b' ', a, b, c, tail @ ..]
            if v.is_ascii_digit()
                && [a, b, c].iter().all(|d| d.is_ascii_digit())
                && (tail.is_empty() || tail[0] == b' ') =>
        {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(bad()),
    }
}

fn parse_decimal(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')))
}

fn parse_hex(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    s.iter().try_fold(0usize, |n, &d| {
        let v = (d as char).to_digit(16)?;
        Some(n * 16 + v as usize)
    })
}

/// The position of `needle` in `hay` at or after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &[u8] = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\
        Content-Length: 11\r\ndate: Fri, 27 Nov 2026 12:00:00 GMT\r\n\r\n{\"kind\":1}\n";

    fn complete(buf: &[u8]) -> Parsed {
        parse_response(buf, false).unwrap().expect("complete")
    }

    #[test]
    fn content_length_body() {
        let p = complete(CREATED);
        assert_eq!(p.status, 201);
        assert_eq!(p.len, CREATED.len());
        assert_eq!(p.body(CREATED), b"{\"kind\":1}\n");
    }

    #[test]
    fn every_split_point_is_incomplete_until_the_last_byte() {
        for cut in 0..CREATED.len() {
            assert_eq!(
                parse_response(&CREATED[..cut], false),
                Ok(None),
                "cut at {cut}"
            );
            assert!(matches!(
                parse_response(&CREATED[..cut], true),
                Err(ParseError::Truncated(n)) if n == cut
            ));
        }
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\
            Content-Length: 999\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-t: 1\r\n\r\n";
        let p = complete(msg);
        assert_eq!(p.status, 200);
        assert_eq!(p.len, msg.len());
        assert_eq!(p.body(msg), b"hello, world");
        for cut in 0..msg.len() {
            assert_eq!(parse_response(&msg[..cut], false), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn chunk_sizes_in_hex() {
        let data = vec![b'a'; 0x1f];
        let mut msg = b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n1F\r\n".to_vec();
        msg.extend_from_slice(&data);
        msg.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(complete(&msg).body(&msg), &data[..]);
    }

    #[test]
    fn bad_chunks_are_errors() {
        let bad_size = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
        assert!(matches!(
            parse_response(bad_size, false),
            Err(ParseError::Chunk(_))
        ));
        let no_crlf = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabcd";
        assert!(matches!(
            parse_response(no_crlf, false),
            Err(ParseError::Chunk(_))
        ));
    }

    #[test]
    fn error_status_keeps_its_body() {
        let msg = b"HTTP/1.1 409 Conflict\r\ncontent-length: 8\r\n\r\nexists!!";
        let p = complete(msg);
        assert_eq!(p.status, 409);
        assert_eq!(p.body(msg), b"exists!!");
    }

    #[test]
    fn bodiless_statuses_and_close_delimited_bodies() {
        let no_content = b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(complete(no_content).len, no_content.len());
        let close = b"HTTP/1.0 200 OK\r\n\r\nuntil the end";
        assert_eq!(parse_response(close, false), Ok(None));
        let p = parse_response(close, true).unwrap().unwrap();
        assert_eq!(p.body(close), b"until the end");
    }

    #[test]
    fn malformed_heads_are_errors() {
        for (msg, what) in [
            (&b"HTTP/2 200 OK\r\n\r\n"[..], "version"),
            (b"HTTP/1.1 20 OK\r\n\r\n", "short status"),
            (b"HTTP/1.1 2000 OK\r\n\r\n", "long status"),
            (b"garbage\r\n\r\n", "no version"),
        ] {
            assert!(
                matches!(parse_response(msg, false), Err(ParseError::StatusLine(_))),
                "{what}"
            );
        }
        let no_colon = b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n";
        assert!(matches!(
            parse_response(no_colon, false),
            Err(ParseError::HeaderLine(_))
        ));
        let two_lengths = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab";
        assert!(matches!(
            parse_response(two_lengths, false),
            Err(ParseError::ContentLength(_))
        ));
        let bad_length = b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n";
        assert!(matches!(
            parse_response(bad_length, false),
            Err(ParseError::ContentLength(_))
        ));
        let continue_ = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(
            parse_response(continue_, false),
            Err(ParseError::Informational(100))
        );
        let huge = vec![b'x'; MAX_HEAD + 1];
        assert_eq!(parse_response(&huge, false), Err(ParseError::HeadTooLarge));
    }

    #[test]
    fn bytes_after_the_response_are_not_part_of_it() {
        let mut two = CREATED.to_vec();
        two.extend_from_slice(CREATED);
        assert_eq!(complete(&two).len, CREATED.len());
    }
}
