//! The node's HTTP API, the classroom original's plus what the consistency lab needs:
//! one function per route, each turning a request into an answer over the [`Db`].
//!
//! | route | answer |
//! |---|---|
//! | `POST`/`PUT /put?key=K`, body `{"value": V}` | 200 `{"message": "stored" \| "kept newer", "key", "node"}` |
//! | `POST`/`PUT /put?key=K&hint=NODE` | 200 `{"message": "hint stored", "for", "key", "node"}`: held for NODE |
//! | `GET /get?key=K` | 200 `{"value": V, "key", "node"}`; 404, with `"deleted": true` for a tombstone |
//! | `DELETE`/`POST /delete?key=K` | 200 if a live value went, else 404 |
//! | `DELETE`/`POST /delete?key=K&hint=NODE` | 200: a deletion held for NODE (needs a version) |
//! | `GET /dump[?limit=N&preview=B&versions=1&bucket=I&buckets=64]` | live pairs (first N by key), name, count, digest |
//! | `GET /digests` | the 64 bucket digests, live and tombstone counts |
//! | `GET /hints[?limit=N]` | the hints held for other nodes |
//! | `DELETE /hints?for=NODE&key=K[&version=V]` | gives one hint back: 200, or 404 |
//! | `POST /clear` | removes every key, tombstone and hint |
//! | `GET /health` | name, live keys, tombstones, hints, bytes |
//! | `GET /state` | the HTML page (and `/state.js`, its script) |
//!
//! **Versions.** A write may carry `X-Kv-Version: ms.counter.writer` ([`Version`]). A
//! versioned put or delete is applied only if it is newer than the copy held (live or
//! tombstone), and the answer's `X-Kv-Version` is the version held afterwards: the
//! writer's own when applied, the newer one when kept. A write without the header
//! replaces whatever is held (a delete without it removes the key outright and leaves no
//! tombstone: the proxy's `/rebalance` relies on that). `/get` answers the held version
//! in the same header, for a tombstone's 404 too.
//!
//! **Hints** (`&hint=NODE`) are copies held for a node that could not take them, until
//! the proxy hands them over ([`crate::hints`]); the listing routes are in [`crate::listing`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::db::{Db, Lookup, Outcome, WriteError};
use crate::hints::valid_node_name;
use crate::http::{self, HttpError, Response};
use crate::server::{Handler, Limits};
use crate::settings::Settings;
use crate::state_page;
use crate::version::{self, Version};

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
    /// How long tombstones are kept (`--tombstone-grace-s`), for the pass in [`crate::grace`].
    pub tombstone_grace: Duration,
}

/// The body a put must carry. Borrowing the value as raw JSON text keeps it byte for byte.
#[derive(Deserialize)]
struct PutBody<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
}

impl Node {
    /// A node as `settings` describe it, its data replayed from `--data` when given.
    /// Fails, with a sentence naming the file, only when that file cannot be opened.
    pub fn open(settings: &Settings) -> Result<Node, String> {
        let db = Db::open(
            settings.max_keys,
            settings.max_bytes,
            settings.data.as_deref(),
        )?;
        Ok(Node {
            name: settings.name.clone(),
            db,
            max_value_bytes: settings.max_value_bytes,
            limits: settings.limits(),
            instance: instance_id(),
            tombstone_grace: Duration::from_secs(settings.tombstone_grace_s),
        })
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Response, HttpError> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        let method = req.method().clone();
        let allowed: &[Method] = match path.as_str() {
            "/put" => &[Method::POST, Method::PUT],
            "/get" | "/dump" | "/digests" | "/health" | "/state" | "/state.js" | "/" => {
                &[Method::GET, Method::HEAD]
            }
            "/hints" => &[Method::GET, Method::HEAD, Method::DELETE],
            "/delete" => &[Method::DELETE, Method::POST],
            "/clear" => &[Method::POST, Method::DELETE],
            _ => return Err(http::no_route(&path)),
        };
        if !allowed.contains(&method) {
            return Ok(http::wrong_method(&method, &path, allowed));
        }
        let query = query.as_deref();
        match path.as_str() {
            "/put" => {
                let key = http::query_key(query)?;
                let write = Write::of(&req, query)?;
                let limit = self.max_value_bytes.saturating_add(1024);
                let body = http::read_body(req, limit, self.limits.body_timeout).await?;
                self.put(key, &body, write)
            }
            "/get" => Ok(self.get(http::query_key(query)?)),
            "/delete" => {
                let key = http::query_key(query)?;
                self.delete(key, Write::of(&req, query)?)
            }
            "/dump" => self.dump(query),
            "/digests" => Ok(self.digests()),
            "/hints" if method == Method::DELETE => self.remove_hint(query),
            "/hints" => self.list_hints(query),
            "/clear" => self.clear(),
            "/health" => Ok(self.health()),
            "/state" => Ok(http::html(state_page::render(&self.name, &self.db))),
            "/state.js" => Ok(state_page::script()),
            _ => Ok(http::redirect("/state")),
        }
    }

    fn put(&self, key: String, body: &[u8], write: Write) -> Result<Response, HttpError> {
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
        let version = write.version.as_ref();
        if let Some(node) = write.hint {
            let done = self
                .db
                .put_hint(&node, &key, value, version)
                .map_err(|e| self.refused(&key, e))?;
            return Ok(self.hint_stored(node, key, false, &done));
        }
        let done = self
            .db
            .put_versioned(&key, value, version)
            .map_err(|e| self.refused(&key, e))?;
        let message = if done.applied { "stored" } else { "kept newer" };
        let res = http::json(
            StatusCode::OK,
            &json!({"message": message, "key": key, "node": self.name}),
        );
        Ok(with_version(res, done.version.as_deref()))
    }

    /// The answer to a hint stored (or kept, when the hint held was newer).
    fn hint_stored(&self, node: String, key: String, deleted: bool, done: &Outcome) -> Response {
        let mut body =
            json!({"message": "hint stored", "for": node, "key": key, "node": self.name});
        if deleted {
            body["deleted"] = json!(true);
        }
        if !done.applied {
            body["kept_newer"] = json!(true);
        }
        with_version(http::json(StatusCode::OK, &body), done.version.as_deref())
    }

    /// Why a write was refused, for the person who sent it.
    pub(crate) fn refused(&self, key: &str, why: WriteError) -> HttpError {
        let message = match why {
            WriteError::OverBudget { used, max_bytes } => format!(
                "node {} is full: it holds {used} bytes of keys and values, and this one \
                 would pass its budget of {max_bytes} (--max-bytes); delete some or POST /clear",
                self.name
            ),
            WriteError::Full { max_keys } => format!(
                "node {} is full: it holds {max_keys} keys, its limit (--max-keys); \
                 delete some or POST /clear",
                self.name
            ),
            WriteError::Disk { path, why } => {
                format!(
                    "node {} could not write its data file {path}: {why}",
                    self.name
                )
            }
        };
        HttpError::new(StatusCode::INSUFFICIENT_STORAGE, message)
            .with("key", key)
            .with("node", self.name.as_str())
    }

    fn get(&self, key: String) -> Response {
        match self.db.lookup(&key) {
            Lookup::Live { value, version } => {
                // The stored text goes back as it came; only the other fields are encoded.
                let text = format!(
                    "{{\"value\":{value},\"key\":{},\"node\":{}}}",
                    json!(key),
                    json!(self.name)
                );
                with_version(http::json_text(StatusCode::OK, text), version.as_deref())
            }
            Lookup::Deleted { version } => self.deleted(key, version.as_deref()),
            Lookup::Missing => self.not_found(key).into_response(),
        }
    }

    fn delete(&self, key: String, write: Write) -> Result<Response, HttpError> {
        if let Some(node) = write.hint {
            let version = write.version.ok_or_else(|| {
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "a deletion held as a hint needs its version: add the header \
                     X-Kv-Version: 1765000000000.0.proxy-id",
                )
                .with("key", key.as_str())
            })?;
            let done = self
                .db
                .put_hint(&node, &key, "", Some(&version))
                .map_err(|e| self.refused(&key, e))?;
            return Ok(self.hint_stored(node, key, true, &done));
        }
        let Some(version) = write.version else {
            return match self.db.delete(&key).map_err(|e| self.refused(&key, e))? {
                true => Ok(self.deleted_ok(key, None)),
                false => Err(self.not_found(key)),
            };
        };
        let done = self
            .db
            .delete_versioned(&key, &version)
            .map_err(|e| self.refused(&key, e))?;
        Ok(match (done.applied, done.was_live, done.live) {
            (true, true, _) => self.deleted_ok(key, done.version.as_deref()),
            // A newer value is held: the delete lost, and says so.
            (false, _, true) => with_version(
                http::json(
                    StatusCode::OK,
                    &json!({"message": "kept newer", "key": key, "node": self.name}),
                ),
                done.version.as_deref(),
            ),
            // No live value was there: 404, and a tombstone is held (this one or newer).
            _ => self.deleted(key, done.version.as_deref()),
        })
    }

    fn deleted_ok(&self, key: String, version: Option<&str>) -> Response {
        let res = http::json(
            StatusCode::OK,
            &json!({"message": "deleted", "key": key, "node": self.name}),
        );
        with_version(res, version)
    }

    fn not_found(&self, key: String) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, "key not found")
            .with("key", key)
            .with("node", self.name.as_str())
    }

    /// The 404 of a key held as a tombstone: `"deleted": true` and the deletion's version.
    fn deleted(&self, key: String, version: Option<&str>) -> Response {
        let res = self.not_found(key).with("deleted", true).into_response();
        with_version(res, version)
    }

    fn clear(&self) -> Result<Response, HttpError> {
        let removed = self.db.clear().map_err(|e| self.refused("", e))?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"message": "cleared", "removed": removed, "node": self.name}),
        ))
    }

    fn health(&self) -> Response {
        let counts = self.db.counts();
        let (_, max_bytes) = self.db.bytes();
        http::json(
            StatusCode::OK,
            &json!({"status": "ok", "node": self.name, "keys": counts.live,
                    "tombstones": counts.tombstones, "hints": counts.hints,
                    "bytes": counts.bytes, "max_bytes": max_bytes, "instance": self.instance}),
        )
    }
}

/// What a write carries besides its key and body: its version, and the node it is held
/// for when it is a hint.
struct Write {
    version: Option<Version>,
    hint: Option<String>,
}

impl Write {
    /// Reads `X-Kv-Version` and `&hint=`, before the body is read (which consumes the request).
    fn of(req: &Request<Incoming>, query: Option<&str>) -> Result<Write, HttpError> {
        let version = match req.headers().get(version::HEADER) {
            None => None,
            Some(raw) => {
                let text = String::from_utf8_lossy(raw.as_bytes());
                let parsed = text
                    .parse::<Version>()
                    .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
                Some(parsed)
            }
        };
        let hint = match http::query_param(query, "hint")? {
            Some(node) if !valid_node_name(&node) => {
                return Err(HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "hint must name the node the copy is held for: 1 to 64 characters, \
                     no control characters",
                ))
            }
            other => other,
        };
        Ok(Write { version, hint })
    }
}

/// Adds `X-Kv-Version: version` to an answer (nothing for an unversioned copy).
pub(crate) fn with_version(mut res: Response, version: Option<&str>) -> Response {
    if let Some(v) = version.and_then(|v| hyper::header::HeaderValue::from_str(v).ok()) {
        res.headers_mut().insert(version::HEADER, v);
    }
    res
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
