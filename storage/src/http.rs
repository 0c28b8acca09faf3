//! The small HTTP vocabulary both binaries share: JSON answers, JSON errors, reading a
//! request body under a size limit, and finding the `key` in a query string.
//!
//! Everything a client can get wrong ends here as an [`HttpError`]: a status and one
//! sentence, always sent as `{"error": "..."}`, so a student's `curl` never sees an HTML
//! error page or a dropped connection.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

/// Almost every answer is buffered ([`full`]): keys and values are small, and a buffered
/// body keeps the handlers plain functions from request to response. The body is boxed
/// so that one answer, the proxy's live event stream, can stream.
pub type Response = hyper::Response<Body>;

/// An answer's body: buffered bytes, or a stream.
pub type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// A buffered body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    use http_body_util::BodyExt;
    Full::new(bytes.into()).boxed()
}

/// An answer of `content_type` with `body`, bytes already built (shared, not copied).
pub fn bytes(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut res = hyper::Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// The longest key accepted, in bytes after percent-decoding.
pub const MAX_KEY_BYTES: usize = 1024;

/// A request that cannot be served, with the status and the sentence the client will see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
    /// Extra fields for the JSON body (for example the key, or which node failed).
    pub fields: serde_json::Map<String, Value>,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
            fields: serde_json::Map::new(),
        }
    }

    /// Adds a field beside `error` in the JSON body.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.to_string(), value.into());
        self
    }

    pub fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), Value::String(self.message));
        body.extend(self.fields);
        json(self.status, &Value::Object(body))
    }
}

/// A JSON answer with the given status.
pub fn json(status: StatusCode, value: &Value) -> Response {
    json_text(status, value.to_string())
}

/// A JSON answer from text that is already JSON (a stored value is kept as its text).
pub fn json_text(status: StatusCode, text: String) -> Response {
    with_type(status, "application/json", text)
}

/// An HTML page (always rendered by askama, so user content in it is escaped).
pub fn html(text: String) -> Response {
    with_type(StatusCode::OK, "text/html; charset=utf-8", text)
}

/// A script for a page (served as a file, so the pages carry no inline code).
pub fn script(text: &'static str) -> Response {
    with_type(
        StatusCode::OK,
        "text/javascript; charset=utf-8",
        text.to_string(),
    )
}

/// An answer of any textual type (YAML, say).
pub fn with_type(status: StatusCode, content_type: &'static str, text: String) -> Response {
    bytes(status, content_type, Bytes::from(text))
}

/// A redirect, used to send `/` to the `/state` page a teacher wants to see.
pub fn redirect(to: &'static str) -> Response {
    let mut res = hyper::Response::new(full(Bytes::new()));
    *res.status_mut() = StatusCode::FOUND;
    res.headers_mut()
        .insert(hyper::header::LOCATION, HeaderValue::from_static(to));
    res
}

/// 404 for a path no route serves.
pub fn no_route(path: &str) -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, format!("no route {path}")).with("path", path)
}

/// 405 naming the methods the route takes, with the `Allow` header HTTP asks for.
pub fn wrong_method(method: &Method, path: &str, allowed: &[Method]) -> Response {
    let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    let mut res = HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{path} does not take {method}; use {}", names.join(" or ")),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
        res.headers_mut().insert(ALLOW, v);
    }
    res
}

/// How much of an oversized body is read (and dropped) before answering 413. A client
/// like curl or Python's http.client sends its whole body before it reads the answer; if
/// the server hung up first, the client would see a broken pipe instead of the 413.
const MAX_DRAIN_BYTES: usize = 64 << 20;

/// How long draining an oversized body may take.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the whole body, refusing more than `limit` bytes with 413 (and keeping none of
/// it), and a body that has not all arrived within `timeout` with 408: a client that
/// declares 4 MiB and stops sending holds a connection for that long, not for ever.
pub async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, HttpError> {
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A client that asked `Expect: 100-continue` has not sent its body yet: saying 413
    // now spares it the upload.
    let waits_for_continue = req
        .headers()
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > limit as u64) {
        if !waits_for_continue {
            drain(&mut body).await;
        }
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(HttpError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within {} ms ({} bytes came)",
                        timeout.as_millis(),
                        buf.len()
                    ),
                ))
            }
            Ok(None) => break,
            Ok(Some(frame)) => frame,
        };
        let frame = frame.map_err(|e| {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {e}"),
            )
        })?;
        if let Some(data) = frame.data_ref() {
            if buf.len() + data.len() > limit {
                drain(&mut body).await;
                return Err(too_large());
            }
            buf.extend_from_slice(data);
        }
    }
    Ok(buf.freeze())
}

/// Reads and drops the rest of a body, within [`MAX_DRAIN_BYTES`] and [`DRAIN_TIMEOUT`].
async fn drain(body: &mut Incoming) {
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > MAX_DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Percent-decodes one query-string component the way HTML forms and Flask do (`+` is a
/// space). `None` when the bytes are not UTF-8.
pub fn decode_component(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Finds the first `name=` parameter of a query string, decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Result<Option<String>, HttpError> {
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode_component(k).as_deref() == Some(name) {
            return decode_component(v).map(Some).ok_or_else(|| {
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the {name} parameter is not valid UTF-8 after percent-decoding"),
                )
            });
        }
    }
    Ok(None)
}

/// The request's key, decoded; empty when it has none (for the log and the page).
pub fn request_key(query: Option<&str>) -> String {
    query_param(query, "key").ok().flatten().unwrap_or_default()
}

/// A key as a log line shows it: at most 80 characters.
pub fn key_for_log(key: &str) -> String {
    key.chars().take(80).collect()
}

/// The `key` of `/get?key=K` and friends: present, non-empty, at most [`MAX_KEY_BYTES`].
pub fn query_key(query: Option<&str>) -> Result<String, HttpError> {
    match query_param(query, "key")? {
        None => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "missing key: add ?key=... to the URL",
        )),
        Some(k) if k.is_empty() => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "empty key: ?key= needs a value",
        )),
        Some(k) if k.len() > MAX_KEY_BYTES => Err(HttpError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the key is {} bytes; keys are at most {MAX_KEY_BYTES} bytes",
                k.len()
            ),
        )),
        Some(k) => Ok(k),
    }
}

/// Percent-encodes a key for a query string: everything but unreserved characters, so a
/// key with `&`, `=`, `%`, `+`, spaces or Cyrillic reaches the next server unchanged.
pub fn encode_component(raw: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(raw, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_follows_forms() {
        assert_eq!(decode_component("a+b%20c%26").as_deref(), Some("a b c&"));
        assert_eq!(decode_component("%FF"), None);
    }

    #[test]
    fn encode_then_decode_is_identity() {
        for k in ["a&b=c", "100%", "с пробелом", "a+b", "x/y?z#"] {
            assert_eq!(decode_component(&encode_component(k)).as_deref(), Some(k));
        }
    }

    #[test]
    fn key_rules() {
        assert_eq!(query_key(Some("key=a&key=b")).unwrap(), "a");
        assert_eq!(query_key(None).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(
            query_key(Some("key=")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let long = format!("key={}", "k".repeat(MAX_KEY_BYTES + 1));
        assert_eq!(
            query_key(Some(&long)).unwrap_err().status,
            StatusCode::URI_TOO_LONG
        );
    }
}
