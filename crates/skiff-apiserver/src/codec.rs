//! Request bodies in and responses out: the 3 MiB body limit (enforced while reading), JSON,
//! YAML and Kubernetes protobuf decoding with bounded depth, content negotiation (JSON, YAML, Table) and `Status` error
//! responses.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use skiff_core::ApiError;

use crate::Body;

/// Upstream's request body limit.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Deepest nesting accepted in a request document.
const MAX_DEPTH: usize = 100;

/// Reads a request body, refusing bodies over [`MAX_BODY_BYTES`] without buffering them whole.
pub async fn read_body(
    body: hyper::body::Incoming,
    headers: &HeaderMap,
) -> Result<Bytes, ApiError> {
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let declared_too_large = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES);
    if !declared_too_large {
        let mut over = false;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::bad_request(format!("error reading request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX_BODY_BYTES {
                    over = true;
                    break;
                }
                buf.extend_from_slice(&data);
            }
        }
        if !over {
            return Ok(buf.freeze());
        }
    }
    discard_rest(body).await;
    Err(too_large())
}

/// Splits a request and reads its body (see [`read_body`]).
pub async fn read_request(
    req: http::Request<hyper::body::Incoming>,
) -> Result<(http::request::Parts, Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(body, &parts.headers).await?;
    Ok((parts, bytes))
}

/// Reads and drops what is left of a refused body, so that a client still sending it reads
/// the 413 instead of a broken pipe (as Go's server lingers); bounded in bytes and time.
async fn discard_rest(mut body: hyper::body::Incoming) {
    const MAX_DISCARD: usize = 4 * MAX_BODY_BYTES;
    let mut seen = 0usize;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(d) = frame.data_ref() {
                seen += d.len();
            }
            if seen > MAX_DISCARD {
                break;
            }
        }
    })
    .await;
}

fn too_large() -> ApiError {
    ApiError::too_large(format!(
        "Request entity too large: limit is {MAX_BODY_BYTES}"
    ))
}

/// The media type of a request body, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/json".to_string())
}

/// Decodes a JSON or YAML document into a JSON value.
pub fn decode(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    decode_checked(body, content_type).map(|(v, _)| v)
}

/// Decodes a JSON or YAML document and tells whether some object in it had a key twice (the
/// value keeps the last; `crate::fieldvalidation` reports where).
pub fn decode_checked(body: &[u8], content_type: &str) -> Result<(Value, bool), ApiError> {
    match content_type {
        "application/json"
        | "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json"
        | "*/*" => decode_json_checked(body),
        "application/yaml"
        | "application/apply-patch+yaml"
        | "text/yaml"
        | "application/x-yaml" => decode_yaml_checked(body),
        PROTOBUF => Ok((decode_protobuf(body)?, false)),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// The media type of Kubernetes protobuf bodies, which client-go's typed clients send for
/// built-in kinds (`kubectl create namespace`, `kubectl auth can-i`).
pub const PROTOBUF: &str = skiff_proto::MEDIA_TYPE;

/// Decodes a Kubernetes protobuf body (`k8s\0` and a `runtime.Unknown` envelope) into the JSON
/// value of the same object sent as JSON (see `skiff_proto`).
pub fn decode_protobuf(body: &[u8]) -> Result<Value, ApiError> {
    skiff_proto::decode_body(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as protobuf: {e}"
        ))
    })
}

pub fn decode_json(body: &[u8]) -> Result<Value, ApiError> {
    decode_json_checked(body).map(|(v, _)| v)
}

pub fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    decode_yaml_checked(body).map(|(v, _)| v)
}

fn too_deep() -> ApiError {
    ApiError::bad_request(format!(
        "the body of the request is nested deeper than {MAX_DEPTH} levels"
    ))
}

/// JSON, with the depth bound enforced while decoding (serde_json itself stops at 128).
fn decode_json_checked(body: &[u8]) -> Result<(Value, bool), ApiError> {
    match crate::fieldvalidation::decode::from_json(body, MAX_DEPTH) {
        Ok((v, seen)) => Ok((v, seen.duplicates)),
        Err((_, seen)) if seen.too_deep => Err(too_deep()),
        Err((e, _)) => Err(ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))),
    }
}

fn decode_yaml_checked(body: &[u8]) -> Result<(Value, bool), ApiError> {
    // A JSON document is YAML too; take the fast path when it parses as JSON.
    match crate::fieldvalidation::decode::from_json(body, MAX_DEPTH) {
        Ok((v, seen)) => return Ok((v, seen.duplicates)),
        Err((_, seen)) if seen.too_deep => return Err(too_deep()),
        Err(_) => {}
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the body of the request is not valid UTF-8"))?;
    // serde_yaml_ng refuses alias expansion beyond a repetition limit and recursion beyond 128
    // levels, so alias bombs and deep nesting fail fast in bounded memory.
    match crate::fieldvalidation::decode::from_yaml(text, MAX_DEPTH) {
        Ok((v, seen)) => Ok((v, seen.duplicates)),
        Err((_, seen)) if seen.too_deep => Err(too_deep()),
        Err((e, _)) => Err(ApiError::bad_request(format!(
            "the body of the request could not be decoded as YAML: {e}"
        ))),
    }
}

/// What the client accepts, as far as we serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    Yaml,
    /// `application/json;as=Table;v=v1;g=meta.k8s.io` (or v1beta1).
    Table(TableVersion),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableVersion {
    V1,
    V1beta1,
}

/// Picks the response format from the Accept header: the first listed that we serve.
pub fn negotiate(headers: &HeaderMap) -> Result<Accept, ApiError> {
    let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(Accept::Json);
    };
    let mut saw_any = false;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = None;
        let mut g = None;
        let mut v = None;
        for p in parts {
            if let Some((k, val)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = Some(val.trim().to_string()),
                    "g" => g = Some(val.trim().to_string()),
                    "v" => v = Some(val.trim().to_string()),
                    _ => {}
                }
            }
        }
        saw_any = true;
        match (media.as_str(), as_.as_deref()) {
            ("application/json", Some("Table")) if g.as_deref() == Some("meta.k8s.io") => {
                match v.as_deref() {
                    Some("v1") => return Ok(Accept::Table(TableVersion::V1)),
                    Some("v1beta1") => return Ok(Accept::Table(TableVersion::V1beta1)),
                    _ => continue,
                }
            }
            (_, Some(_)) => continue,
            ("application/json", None) | ("*/*", None) | ("application/*", None) | ("", None) => {
                return Ok(Accept::Json)
            }
            ("application/yaml", None) => return Ok(Accept::Yaml),
            _ => continue,
        }
    }
    if saw_any {
        Err(ApiError::not_acceptable(
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ))
    } else {
        Ok(Accept::Json)
    }
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A JSON response with a trailing newline, as upstream writes.
pub fn json_response(status: StatusCode, mut body: Vec<u8>) -> Response<Body> {
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .body(full(body))
        .expect("response")
}

/// A value as JSON, or YAML when asked.
pub fn value_response(status: StatusCode, v: &Value, accept: Accept) -> Response<Body> {
    if accept == Accept::Yaml {
        let text = serde_yaml_ng::to_string(v).unwrap_or_default();
        return Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/yaml")
            .body(full(text))
            .expect("response");
    }
    json_response(status, serde_json::to_vec(v).expect("json"))
}

/// A `Status` error response.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(status, e.to_json());
    if let Some(secs) = e.details.retry_after_seconds {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(accept: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(http::header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        m
    }

    #[test]
    fn negotiation() {
        assert_eq!(
            negotiate(&h("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")).unwrap(),
            Accept::Table(TableVersion::V1)
        );
        assert_eq!(
            negotiate(&h("application/vnd.kubernetes.protobuf,application/json")).unwrap(),
            Accept::Json
        );
        assert_eq!(
            negotiate(&h("application/vnd.kubernetes.protobuf, */*")).unwrap(),
            Accept::Json
        );
        assert_eq!(negotiate(&h("application/yaml")).unwrap(), Accept::Yaml);
        assert!(negotiate(&h("application/vnd.kubernetes.protobuf")).is_err());
        assert_eq!(
            negotiate(&h("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")).unwrap(),
            Accept::Json
        );
    }

    #[test]
    fn yaml_alias_bomb_is_refused_quickly() {
        let mut doc = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let mut prev = 'a';
        for c in 'b'..='k' {
            doc.push_str(&format!("{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = c;
        }
        let start = std::time::Instant::now();
        assert_eq!(decode_yaml(doc.as_bytes()).unwrap_err().code, 400);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(decode_json(deep.as_bytes()).unwrap_err().code, 400);
        let deep_yaml = "a:\n".to_string()
            + &(1..200)
                .map(|i| format!("{}b:\n", " ".repeat(i)))
                .collect::<String>();
        assert_eq!(decode_yaml(deep_yaml.as_bytes()).unwrap_err().code, 400);
        let mid = "[".repeat(120) + &"]".repeat(120);
        assert_eq!(decode_json(mid.as_bytes()).unwrap_err().code, 400);
    }

    #[test]
    fn malformed() {
        assert_eq!(decode_json(b"{\"a\":").unwrap_err().code, 400);
        assert_eq!(decode_yaml(b"a: [").unwrap_err().code, 400);
    }
}
