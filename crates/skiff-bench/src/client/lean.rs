//! Lean connections for the pod-create load, built the way purpose-built load generators (wrk,
//! h2load) are rather than on a general HTTP client, so that the load generator's own CPU, which
//! shares the machine with the server, stays small:
//!
//! - HTTP/1.1: one TLS stream per client; each request is written as pre-built bytes (request
//!   line, `host`, `accept`, `content-type`, `content-length`, body) in one write, and the
//!   response is framed by [`super::h1`] from the bytes read, in the same task, with no
//!   connection task or channels in between. One request is in flight at a time (no
//!   pipelining), as with a keep-alive client.
//! - h2: the `h2` crate directly, with the connection settings hyper's client uses (stream
//!   window 2 MiB, connection window 5 MiB, 16 KiB frames and header lists, push disabled), so
//!   each request is a HEADERS frame and a DATA frame ending the stream, and the response body
//!   is read to its end with the flow-control window released as it arrives.
//!
//! Header names are lower case on both, as hyper writes them.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Uri};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::h1::{self, ParseError};

/// Why an exchange failed. After any of these the connection is not reused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP/1.1 response: {0}")]
    Parse(#[from] ParseError),
    #[error("{0} bytes after the response to a request that was not pipelined")]
    Trailing(usize),
    #[error("h2: {0}")]
    H2(#[from] h2::Error),
    #[error("building the request: {0}")]
    Http(#[from] http::Error),
}

/// A whole HTTP/1.1 request message: the request line, the headers a keep-alive client sends
/// with a JSON body, and the body.
pub(crate) fn h1_request(
    method: &Method,
    path: &str,
    authority: &str,
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\naccept: application/json\r\nhost: {authority}\r\n\
         content-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut msg = Vec::with_capacity(head.len() + body.len());
    msg.extend_from_slice(head.as_bytes());
    msg.extend_from_slice(body);
    msg
}

/// One HTTP/1.1 connection carrying one request at a time.
pub(crate) struct H1Conn<S> {
    stream: S,
    buf: Vec<u8>,
    /// The last chunked body, decoded.
    decoded: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1Conn<S> {
    pub(crate) fn new(stream: S) -> Self {
        H1Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            decoded: Vec::new(),
        }
    }

    /// Writes `request` (a whole message, see [`h1_request`]) and reads the whole response:
    /// its status and body.
    pub(crate) async fn exchange(&mut self, request: &[u8]) -> Result<(u16, &[u8]), ExchangeError> {
        self.stream.write_all(request).await?;
        self.stream.flush().await?;
        self.buf.clear();
        let parsed = loop {
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(self.buf.capacity().max(16 * 1024));
            }
            let n = self.stream.read_buf(&mut self.buf).await?;
            if let Some(p) = h1::parse_response(&self.buf, n == 0)? {
                break p;
            }
        };
        if parsed.len != self.buf.len() {
            return Err(ExchangeError::Trailing(self.buf.len() - parsed.len));
        }
        let body = match parsed.body {
            h1::Body::Span(range) => &self.buf[range],
            h1::Body::Decoded(decoded) => {
                self.decoded = decoded;
                &self.decoded
            }
        };
        Ok((parsed.status, body))
    }
}

/// Opens an h2 connection on `io` with hyper's client settings; the connection itself is driven
/// by a task spawned on the current runtime.
pub(crate) async fn h2_handshake<T>(io: T) -> Result<h2::client::SendRequest<Bytes>, h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(2 * 1024 * 1024)
        .initial_connection_window_size(5 * 1024 * 1024)
        .max_frame_size(16 * 1024)
        .max_header_list_size(16 * 1024)
        .max_send_buffer_size(1024 * 1024)
        .enable_push(false)
        .handshake(io)
        .await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// One h2 client: a handle on a shared connection, sending one request at a time.
pub(crate) struct H2Conn {
    send: h2::client::SendRequest<Bytes>,
    uri: Uri,
    content_type: HeaderValue,
}

impl H2Conn {
    /// A client sending `POST`s to `https://{authority}{path}` on the connection `send`.
    pub(crate) fn new(
        send: h2::client::SendRequest<Bytes>,
        authority: &str,
        path: &str,
        content_type: &str,
    ) -> Result<Self, ExchangeError> {
        Ok(H2Conn {
            send,
            uri: format!("https://{authority}{path}")
                .parse::<Uri>()
                .map_err(http::Error::from)?,
            content_type: HeaderValue::from_str(content_type).map_err(http::Error::from)?,
        })
    }

    /// POSTs `body` and reads the whole response: its status and body.
    pub(crate) async fn post(&mut self, body: Bytes) -> Result<(u16, Bytes), ExchangeError> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(header::ACCEPT, HeaderValue::from_static("application/json"))
            .header(header::CONTENT_TYPE, self.content_type.clone())
            .header(header::CONTENT_LENGTH, HeaderValue::from(body.len()))
            .body(())?;
        let mut send = self.send.clone().ready().await?;
        let (response, mut stream) = send.send_request(req, false)?;
        stream.send_data(body, true)?;
        let response = response.await?;
        let status = response.status().as_u16();
        let mut recv = response.into_body();
        let mut first: Option<Bytes> = None;
        let mut rest: Vec<u8> = Vec::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            recv.flow_control().release_capacity(chunk.len())?;
            match &first {
                None => first = Some(chunk),
                Some(f) => {
                    if rest.is_empty() {
                        rest.extend_from_slice(f);
                    }
                    rest.extend_from_slice(&chunk);
                }
            }
        }
        let body = if rest.is_empty() {
            first.unwrap_or_default()
        } else {
            Bytes::from(rest)
        };
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[tokio::test]
    async fn request_bytes_are_a_complete_message() {
        let msg = h1_request(
            &Method::POST,
            "/api/v1/namespaces/default/pods",
            "127.0.0.1:6443",
            "application/json",
            b"{\"a\":1}",
        );
        let text = String::from_utf8(msg).unwrap();
        assert_eq!(
            text,
            "POST /api/v1/namespaces/default/pods HTTP/1.1\r\naccept: application/json\r\n\
             host: 127.0.0.1:6443\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\
             \r\n{\"a\":1}"
        );
    }

    /// A peer that reads one request and answers with `parts`, one write each.
    async fn exchange_with(
        parts: Vec<&'static [u8]>,
        close: bool,
    ) -> Result<(u16, Vec<u8>), String> {
        let (client, mut server) = duplex(64 * 1024);
        let peer = tokio::spawn(async move {
            let mut req = vec![0u8; 4096];
            let n = server.read(&mut req).await.unwrap();
            assert!(req[..n].starts_with(b"POST /p HTTP/1.1\r\n"));
            for p in parts {
                server.write_all(p).await.unwrap();
                server.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            if !close {
                // Keep the connection open until the client is done.
                let _ = server.read(&mut req).await;
            }
        });
        let mut conn = H1Conn::new(client);
        let request = h1_request(&Method::POST, "/p", "h", "application/json", b"{}");
        let result = conn
            .exchange(&request)
            .await
            .map(|(s, b)| (s, b.to_vec()))
            .map_err(|e| e.to_string());
        drop(conn);
        peer.await.unwrap();
        result
    }

    #[tokio::test]
    async fn response_split_across_reads() {
        let got = exchange_with(
            vec![
                b"HTTP/1.1 201 Cre",
                b"ated\r\ncontent-length: 10\r",
                b"\n\r\n01234",
                b"56789",
            ],
            false,
        )
        .await;
        assert_eq!(got, Ok((201, b"0123456789".to_vec())));
    }

    #[tokio::test]
    async fn chunked_response_split_across_reads() {
        let got = exchange_with(
            vec![
                b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nab",
                b"c\r\n2\r\nde\r\n0\r",
                b"\n\r\n",
            ],
            false,
        )
        .await;
        assert_eq!(got, Ok((201, b"abcde".to_vec())));
    }

    #[tokio::test]
    async fn error_status_is_returned_with_its_body() {
        let got = exchange_with(
            vec![b"HTTP/1.1 409 Conflict\r\ncontent-length: 7\r\n\r\nexists!"],
            false,
        )
        .await;
        assert_eq!(got, Ok((409, b"exists!".to_vec())));
    }

    #[tokio::test]
    async fn a_connection_closed_mid_response_is_an_error() {
        let got = exchange_with(
            vec![b"HTTP/1.1 201 Created\r\ncontent-length: 10\r\n\r\n0123"],
            true,
        )
        .await;
        assert!(got.unwrap_err().contains("closed"), "connection close");
    }

    #[tokio::test]
    async fn a_malformed_status_line_is_an_error() {
        let got = exchange_with(vec![b"HTTP/1.1 2x1 Created\r\n\r\n"], false).await;
        assert!(got.unwrap_err().contains("status line"));
    }

    #[tokio::test]
    async fn bytes_beyond_the_response_are_an_error() {
        let got = exchange_with(
            vec![b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nokHTTP/1.1"],
            false,
        )
        .await;
        assert!(got.unwrap_err().contains("not pipelined"));
    }
}
