//! The node's HTTP API, the classroom original's: one function per route, each turning a
//! request into an answer over the [`Db`].
//!
//! | route | answer |
//! |---|---|
//! | `POST`/`PUT /put?key=K`, body `{"value": V}` | 200 `{"message", "key", "node"}` |
//! | `GET /get?key=K` | 200 `{"value": V, ...}` or 404 |
//! | `DELETE`/`POST /delete?key=K` | 200 or 404 |
//! | `GET /dump[?limit=N]` | every pair (or the first N by key), the node's name, the count |
//! | `POST /clear` | removes every key |
//! | `GET /health` | name and key count |
//! | `GET /state` | the HTML page (and `/state.js`, its script) |

use std::net::SocketAddr;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::db::{Db, PutError};
use crate::http::{self, HttpError, Response};
use crate::server::{Handler, Limits};
use crate::settings::Settings;
use crate::state_page;

/// How deeply a value may nest. serde_json checks depth only when it builds a tree, and
/// a value is kept as text, so the node checks it itself: every reader of `/dump` (the
/// proxy, Python's `json`) has a recursion limit, and one hostile value must not make a
/// whole node unreadable.
const MAX_DEPTH: usize = 64;

/// The deepest nesting of arrays and objects in valid JSON text (brackets inside strings
/// do not count).
fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// One running node: its name, its data and its limits.
pub struct Node {
    pub name: String,
    pub db: Db,
    /// Bodies are refused past this many bytes plus room for the `{"value": }` around it.
    pub max_value_bytes: usize,
    /// Connections, body and send deadlines: what one client may hold of the node.
    pub limits: Limits,
    /// New at every start, shown by `/health`: a proxy tells a restarted node (which lost
    /// the secret its join was given) from a stranger rejoining under its name.
    pub instance: String,
}

/// The body a put must carry. Borrowing the value as raw JSON text keeps it byte for byte.
#[derive(Deserialize)]
struct PutBody<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
}

impl Node {
    pub fn new(settings: &Settings) -> Node {
        Node {
            name: settings.name.clone(),
            db: Db::new(settings.max_keys, settings.max_bytes),
            max_value_bytes: settings.max_value_bytes,
            limits: settings.limits(),
            instance: instance_id(),
        }
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Response, HttpError> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        let method = req.method().clone();
        let allowed: &[Method] = match path.as_str() {
            "/put" => &[Method::POST, Method::PUT],
            "/get" | "/dump" | "/health" | "/state" | "/state.js" | "/" => {
                &[Method::GET, Method::HEAD]
            }
            "/delete" => &[Method::DELETE, Method::POST],
            "/clear" => &[Method::POST, Method::DELETE],
            _ => return Err(http::no_route(&path)),
        };
        if !allowed.contains(&method) {
            return Ok(http::wrong_method(&method, &path, allowed));
        }
        match path.as_str() {
            "/put" => {
                let key = http::query_key(query.as_deref())?;
                let limit = self.max_value_bytes.saturating_add(1024);
                let body = http::read_body(req, limit, self.limits.body_timeout).await?;
                self.put(key, &body)
            }
            "/get" => self.get(http::query_key(query.as_deref())?),
            "/delete" => self.delete(http::query_key(query.as_deref())?),
            "/dump" => {
                let number = |name: &str| -> Result<Option<usize>, HttpError> {
                    http::query_param(query.as_deref(), name)?
                        .map(|l| l.parse::<usize>())
                        .transpose()
                        .map_err(|_| {
                            HttpError::new(
                                StatusCode::BAD_REQUEST,
                                format!("{name} must be a whole number"),
                            )
                        })
                };
                let limit = number("limit")?.unwrap_or(usize::MAX);
                Ok(self.dump(limit, number("preview")?))
            }
            "/clear" => Ok(self.clear()),
            "/health" => Ok(self.health()),
            "/state" => Ok(http::html(state_page::render(&self.name, &self.db))),
            "/state.js" => Ok(state_page::script()),
            _ => Ok(http::redirect("/state")),
        }
    }

    fn put(&self, key: String, body: &[u8]) -> Result<Response, HttpError> {
        let value = parse_value(body).map_err(|why| {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                format!("{why}; send a JSON body like {{\"value\": \"hello\"}}"),
            )
            .with("key", key.as_str())
        })?;
        if value.len() > self.max_value_bytes {
            return Err(HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the value is {} bytes; this node takes at most {}",
                    value.len(),
                    self.max_value_bytes
                ),
            )
            .with("key", key.as_str()));
        }
        match self.db.put(&key, value) {
            Ok(_) => Ok(http::json(
                StatusCode::OK,
                &json!({"message": "stored", "key": key, "node": self.name}),
            )),
            Err(PutError::OverBudget { used, max_bytes }) => Err(HttpError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "node {} is full: it holds {used} bytes of keys and values, and this one \
                     would pass its budget of {max_bytes} (--max-bytes); delete some or POST /clear",
                    self.name
                ),
            )
            .with("key", key)
            .with("node", self.name.as_str())),
            Err(PutError::Full { max_keys }) => Err(HttpError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "node {} is full: it holds {max_keys} keys, its limit (--max-keys); \
                     delete some or POST /clear",
                    self.name
                ),
            )
            .with("key", key)
            .with("node", self.name.as_str())),
        }
    }

    fn get(&self, key: String) -> Result<Response, HttpError> {
        match self.db.get(&key) {
            Some(value) => {
                // The stored text goes back as it came; only the other fields are encoded.
                let text = format!(
                    "{{\"value\":{value},\"key\":{},\"node\":{}}}",
                    json!(key),
                    json!(self.name)
                );
                Ok(http::json_text(StatusCode::OK, text))
            }
            None => Err(self.not_found(key)),
        }
    }

    fn delete(&self, key: String) -> Result<Response, HttpError> {
        if self.db.delete(&key) {
            Ok(http::json(
                StatusCode::OK,
                &json!({"message": "deleted", "key": key, "node": self.name}),
            ))
        } else {
            Err(self.not_found(key))
        }
    }

    fn not_found(&self, key: String) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, "key not found")
            .with("key", key)
            .with("node", self.name.as_str())
    }

    /// Every pair (or the first `limit` by key), with the count of all of them and the
    /// digest of the whole (a proxy re-reads everything only when that changed).
    ///
    /// With `preview`, a value whose JSON text is longer than that many bytes is sent as
    /// a string of its first characters, and listed in `"cut"` with its full size: a page
    /// showing 300 keys of a node holding 70 one-MB values reads kilobytes, not 70 MB.
    fn dump(&self, limit: usize, preview: Option<usize>) -> Response {
        let summary = self.db.first(limit);
        let mut text = format!(
            "{{\"node\":{},\"count\":{},\"digest\":\"{:016x}\",\"data\":{{",
            json!(self.name),
            summary.count,
            summary.digest,
        );
        let mut cut = Vec::new();
        for (i, (k, v)) in summary.pairs.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let key = json!(k).to_string();
            text.push_str(&key);
            text.push(':');
            match preview.filter(|p| v.len() > *p) {
                Some(p) => {
                    let mut end = p;
                    while !v.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.push_str(&json!(&v[..end]).to_string());
                    cut.push(format!("{key}:{}", v.len()));
                }
                None => text.push_str(v),
            }
        }
        text.push('}');
        if preview.is_some() {
            text.push_str(&format!(",\"cut\":{{{}}}", cut.join(",")));
        }
        text.push('}');
        http::json_text(StatusCode::OK, text)
    }

    fn clear(&self) -> Response {
        let removed = self.db.clear();
        http::json(
            StatusCode::OK,
            &json!({"message": "cleared", "removed": removed, "node": self.name}),
        )
    }

    fn health(&self) -> Response {
        let (bytes, max_bytes) = self.db.bytes();
        http::json(
            StatusCode::OK,
            &json!({"status": "ok", "node": self.name, "keys": self.db.len(),
                    "bytes": bytes, "max_bytes": max_bytes, "instance": self.instance}),
        )
    }
}

/// A value no other start of any node is likely to have: the clock, the process id and
/// std's per-process random hash keys, hashed.
fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// The value of a put's body `{"value": V}`, as the JSON text it came as; or why the body
/// is not that. Pure, so it is fuzzed (`fuzz/`) without a server.
pub fn parse_value(body: &[u8]) -> Result<&str, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    // Only an object will do: serde would also read `["x"]` as a struct.
    if !text.trim_start().starts_with('{') {
        return Err("the body is not a JSON object".into());
    }
    let parsed: PutBody =
        serde_json::from_str(text).map_err(|e| format!("the body is not valid: {e}"))?;
    let value = parsed.value.get();
    if nesting_depth(value) > MAX_DEPTH {
        return Err(format!(
            "the value nests deeper than {MAX_DEPTH} levels of [ and {{"
        ));
    }
    Ok(value)
}

impl Handler for Node {
    /// Answers and logs one line per request, so the teacher's terminal shows the traffic.
    async fn handle(&self, req: Request<Incoming>, _peer: SocketAddr) -> Response {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let key = http::key_for_log(&http::request_key(req.uri().query()));
        let res = self
            .route(req)
            .await
            .unwrap_or_else(HttpError::into_response);
        tracing::info!(
            "{} {method} {path} key={key:?} -> {} in {}µs",
            self.name,
            res.status().as_u16(),
            started.elapsed().as_micros()
        );
        res
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::nesting_depth;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(r#""[[[""#), 0);
        assert_eq!(nesting_depth(r#"{"a": [1, "\"[", [2]]}"#), 3);
        assert_eq!(nesting_depth("[[[]]]"), 3);
    }
}
