//! The routes that list what a node holds, for the proxy's pages, anti-entropy and
//! hinted handoff: `/dump`, `/digests`, `/hints` (and giving a hint back).
//!
//! Anti-entropy in three steps: the proxy asks every replica for `/digests` (64 numbers
//! each), compares them bucket by bucket, and reads only the buckets that differ with
//! `/dump?bucket=I&buckets=64&versions=1`, which lists their keys with versions and
//! tombstones. Hinted handoff: the proxy reads `/hints`, writes each hint to the node it
//! is for, then gives it back with `DELETE /hints?for=..&key=..&version=..`, which keeps
//! a newer hint that arrived in the meantime.

use hyper::StatusCode;
use serde_json::json;

use crate::buckets::BUCKETS;
use crate::db::HintRemoval;
use crate::http::{self, HttpError, Response};
use crate::routes::{with_version, Node};
use crate::version::Version;

/// How many hints `/hints` lists unless asked for another number.
const DEFAULT_HINT_LIMIT: usize = 1000;

/// A whole-number query parameter, if given.
fn number(query: Option<&str>, name: &str) -> Result<Option<usize>, HttpError> {
    http::query_param(query, name)?
        .map(|l| l.parse::<usize>())
        .transpose()
        .map_err(|_| {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                format!("{name} must be a whole number"),
            )
        })
}

/// Whether a yes/no query parameter says yes (`1` or `true`).
fn flag(query: Option<&str>, name: &str) -> Result<bool, HttpError> {
    Ok(matches!(
        http::query_param(query, name)?.as_deref(),
        Some("1" | "true")
    ))
}

/// `bucket=I&buckets=64`: the bucket asked for, checked against how this node cuts keys.
fn bucket(query: Option<&str>) -> Result<Option<usize>, HttpError> {
    let buckets = number(query, "buckets")?;
    if buckets.is_some_and(|n| n != BUCKETS) {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "only buckets={BUCKETS} is supported: a node cuts its keys into {BUCKETS} \
                 buckets (FNV-1a 64 of the key, mod {BUCKETS})"
            ),
        ));
    }
    match number(query, "bucket")? {
        None => Ok(None),
        Some(_) if buckets.is_none() => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("bucket needs buckets={BUCKETS} beside it: the number of buckets it is one of"),
        )),
        Some(i) if i >= BUCKETS => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("bucket must be from 0 to {}", BUCKETS - 1),
        )),
        Some(i) => Ok(Some(i)),
    }
}

impl Node {
    /// Every live pair (or the first `limit` by key), with the count of all of them and
    /// the digest of the whole (a proxy re-reads everything only when that changed).
    ///
    /// With `preview`, a value whose JSON text is longer than that many bytes is sent as
    /// a string of its first characters, and listed in `"cut"` with its full size: a page
    /// showing 300 keys of a node holding 70 one-MB values reads kilobytes, not 70 MB.
    /// With `versions=1`, the listed pairs' versions and every tombstone come too; with
    /// `bucket=I&buckets=64`, only that bucket's keys (the count stays the whole node's).
    pub(crate) fn dump(&self, query: Option<&str>) -> Result<Response, HttpError> {
        let limit = number(query, "limit")?.unwrap_or(usize::MAX);
        let preview = number(query, "preview")?;
        let versions = flag(query, "versions")?;
        let summary = self.db.dump(limit, bucket(query)?, versions);
        let mut text = format!(
            "{{\"node\":{},\"count\":{},\"digest\":\"{:016x}\",\"data\":{{",
            json!(self.name),
            summary.count,
            summary.digest,
        );
        let mut cut = Vec::new();
        for (i, pair) in summary.pairs.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let (key, v) = (json!(pair.key).to_string(), &pair.value);
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
        if versions {
            let listed: serde_json::Map<String, serde_json::Value> = summary
                .pairs
                .iter()
                .filter_map(|p| Some((p.key.clone(), json!(p.version.as_ref()?))))
                .collect();
            let deleted: serde_json::Map<String, serde_json::Value> = summary
                .deleted
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            text.push_str(&format!(",\"versions\":{}", json!(listed)));
            text.push_str(&format!(",\"deleted\":{}", json!(deleted)));
        }
        if preview.is_some() {
            text.push_str(&format!(",\"cut\":{{{}}}", cut.join(",")));
        }
        text.push('}');
        Ok(http::json_text(StatusCode::OK, text))
    }

    /// The 64 bucket digests (16 hex digits each), read at one moment with the counts.
    pub(crate) fn digests(&self) -> Response {
        let (digests, counts) = self.db.digests();
        let hex: Vec<String> = digests
            .buckets()
            .iter()
            .map(|d| format!("{d:016x}"))
            .collect();
        http::json(
            StatusCode::OK,
            &json!({"node": self.name, "buckets": BUCKETS, "digests": hex,
                    "count": counts.live, "tombstones": counts.tombstones}),
        )
    }

    /// The first hints by (node, key), values as the JSON text they came as.
    pub(crate) fn list_hints(&self, query: Option<&str>) -> Result<Response, HttpError> {
        let limit = number(query, "limit")?.unwrap_or(DEFAULT_HINT_LIMIT);
        let (count, hints) = self.db.hints(limit);
        let items: Vec<String> = hints
            .iter()
            .map(|h| {
                format!(
                    "{{\"for\":{},\"key\":{},\"version\":{},\"deleted\":{},\"value\":{}}}",
                    json!(h.node),
                    json!(h.key),
                    json!(h.version),
                    h.value.is_none(),
                    h.value.as_deref().unwrap_or("null")
                )
            })
            .collect();
        let text = format!(
            "{{\"node\":{},\"count\":{count},\"hints\":[{}]}}",
            json!(self.name),
            items.join(",")
        );
        Ok(http::json_text(StatusCode::OK, text))
    }

    /// `DELETE /hints?for=NODE&key=K[&version=V]`: gives one hint back, only if it is
    /// still the version the proxy handed over (any version without `version`).
    pub(crate) fn remove_hint(&self, query: Option<&str>) -> Result<Response, HttpError> {
        let node = http::query_param(query, "for")?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "missing for: add ?for=NODE&key=... (the node the hint is held for)",
                )
            })?;
        let key = http::query_key(query)?;
        let version = match http::query_param(query, "version")? {
            None => None,
            Some(text) => Some(text.parse::<Version>().map_err(|_| {
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "version must look like 1765000000000.0.proxy-id \
                         (milliseconds.counter.writer): got {:?}",
                        text.chars().take(100).collect::<String>()
                    ),
                )
            })?),
        };
        let removal = self
            .db
            .remove_hint(&node, &key, version.as_ref())
            .map_err(|e| self.refused(&key, e))?;
        let fields = |e: HttpError| {
            e.with("for", node.as_str())
                .with("key", key.as_str())
                .with("node", self.name.as_str())
        };
        match removal {
            HintRemoval::Removed => Ok(http::json(
                StatusCode::OK,
                &json!({"message": "hint removed", "for": node, "key": key, "node": self.name}),
            )),
            HintRemoval::Missing => Err(fields(HttpError::new(
                StatusCode::NOT_FOUND,
                format!("no hint held for {node} and this key"),
            ))),
            HintRemoval::Changed { held } => {
                let held_text = held.clone().unwrap_or_else(|| "none".into());
                let err = fields(HttpError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "the hint held for {node} and this key has version {held_text}, not \
                         the one given: it was kept"
                    ),
                ))
                .with("version", held.clone());
                Ok(with_version(err.into_response(), held.as_deref()))
            }
        }
    }
}
