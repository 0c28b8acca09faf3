//! The proxy's HTTP API: the nodes' own API (`/put`, `/get`, `/delete`, `/clear`,
//! `/dump`, `/health`, `/state`), placed by the mode, plus what only a proxy can answer
//! (`/explain`, `/config`, `/join`, `/leave`, `/rebalance`, `/chaos`, `/events`, `/metrics`).
//!
//! The proxy checks what it can before any node sees the request (a missing key, a body
//! too large, a loop, a write from another site, a missing admin token), so a bad
//! request costs no node anything and gets the same error whichever node it would have
//! gone to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RETRY_AFTER, VIA};
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};
use storage::http::{self, HttpError, Response};
use storage::server::Handler;

use crate::cluster::Cluster;
use crate::forward::{self, Forwarded};
use crate::mode::{Op, Plan};
use crate::upstream::NodeRequest;
use crate::{events, explain, guard, state_page, Proxy};

/// Every route the proxy answers, for `/metrics`' labels.
const ROUTES: &[&str] = &[
    "/put",
    "/get",
    "/delete",
    "/clear",
    "/rebalance",
    "/chaos",
    "/join",
    "/leave",
    "/dump",
    "/health",
    "/state",
    "/state.json",
    "/state.js",
    "/events",
    "/metrics",
    "/explain",
    "/config",
    "/",
];

/// A request for one key, its body already read.
#[derive(Clone)]
pub(crate) struct KeyCall {
    pub method: Method,
    /// `/put`, `/get` or `/delete`.
    pub path: String,
    pub key: String,
    pub body: Bytes,
    pub content_type: Option<HeaderValue>,
    pub via: Option<HeaderValue>,
    /// Who asked (their next view waits for a sweep that saw this write).
    pub client: Option<IpAddr>,
}

/// The largest request body forwarded: a node's default value limit (1 MiB) with room
/// to spare, so a node configured for larger values still gets to say no itself.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// The methods each route takes; `None` for a path no route serves.
pub(crate) fn allowed_methods(path: &str) -> Option<&'static [Method]> {
    Some(match path {
        "/put" => &[Method::POST, Method::PUT],
        "/delete" => &[Method::DELETE, Method::POST],
        "/clear" => &[Method::POST, Method::DELETE],
        "/rebalance" => &[Method::POST],
        "/chaos" => &[Method::POST, Method::DELETE, Method::GET],
        "/join" | "/leave" => &[Method::POST],
        "/get" | "/dump" | "/health" | "/state" | "/state.json" | "/state.js" | "/events"
        | "/metrics" | "/explain" | "/config" | "/" => &[Method::GET, Method::HEAD],
        _ => return None,
    })
}

impl KeyCall {
    /// Reads a `/put`, `/get` or `/delete` request: its key, its headers that travel on,
    /// who sent it, and (a put) its body, within `body_timeout`.
    pub(crate) async fn read(
        req: Request<Incoming>,
        peer: SocketAddr,
        body_timeout: std::time::Duration,
    ) -> Result<KeyCall, HttpError> {
        let path = req.uri().path().to_string();
        let key = http::query_key(req.uri().query())?;
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let via = req.headers().get(VIA).cloned();
        let client = guard::client(peer, req.headers());
        let method = req.method().clone();
        let body = if path == "/put" {
            http::read_body(req, MAX_BODY_BYTES, body_timeout).await?
        } else {
            Bytes::new()
        };
        Ok(KeyCall {
            method,
            path,
            key,
            body,
            content_type,
            via,
            client: Some(client),
        })
    }
}

impl Proxy {
    async fn route(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Forwarded, HttpError> {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let Some(allowed) = allowed_methods(&path) else {
            return Err(http::no_route(&path));
        };
        if !allowed.contains(&method) {
            return Ok(local(http::wrong_method(&method, &path, allowed)));
        }
        let cluster = self.live.get();
        let query = req.uri().query().map(str::to_string);
        let writes = matches!(
            path.as_str(),
            "/put" | "/delete" | "/clear" | "/rebalance" | "/chaos"
        );
        if writes {
            if let Some(refused) = guard::cross_site(req.headers()) {
                return Err(refused);
            }
        }
        if path == "/clear" || path == "/rebalance" {
            self.admin_only(&cluster, &req, peer)?;
        }
        let via = req.headers().get(VIA).cloned();
        let req_etag = req.headers().get(IF_NONE_MATCH).cloned();
        // Who asks: a view waits for a sweep that saw this client's own writes.
        let client = guard::client(peer, req.headers());
        match path.as_str() {
            "/put" | "/get" | "/delete" => {
                let timeout = cluster.config.limits().body_timeout;
                let call = KeyCall::read(req, peer, timeout).await?;
                Ok(self.keyed(&cluster, call).await)
            }
            "/clear" => Ok(self.clear(&cluster, via, Some(client)).await),
            "/rebalance" => Ok(local(self.rebalance(&cluster).await)),
            "/chaos" => {
                if method != Method::GET {
                    self.teacher_only(&cluster, &req, peer)?;
                }
                Ok(local(self.chaos(&cluster, req).await?))
            }
            "/dump" => Ok(local(self.dump(&cluster).await)),
            "/health" => Ok(local(self.health(&cluster, Some(client)).await)),
            "/state" => Ok(local(http::html(
                state_page::render(self, &cluster, Some(client)).await,
            ))),
            "/state.json" => {
                let filter = http::query_param(query.as_deref(), "filter")?.unwrap_or_default();
                if !filter.is_empty() {
                    let snapshot =
                        state_page::filtered(self, &cluster, &filter, Some(client)).await;
                    let text = serde_json::to_string(&snapshot).unwrap_or_default();
                    return Ok(local(http::json_text(StatusCode::OK, text)));
                }
                let sweep = self.snapshots.fresh(self, &cluster, Some(client)).await;
                Ok(local(cached(&req_etag, &sweep.etag, &sweep.json)))
            }
            "/events" => Ok(local(events::stream(&self.snapshots))),
            "/metrics" => Ok(local(self.metrics.render(self))),
            "/state.js" => Ok(local(state_page::script())),
            "/explain" => {
                let key = http::query_key(query.as_deref())?;
                Ok(local(http::json(
                    StatusCode::OK,
                    &explain::explain(&cluster, &key),
                )))
            }
            "/config" => Ok(local(self.config_yaml(&cluster))),
            "/join" => Ok(local(self.join(req, peer).await?)),
            "/leave" => Ok(local(self.leave(req, peer).await?)),
            _ => Ok(local(http::redirect("/state"))),
        }
    }

    /// A request for one key (`/put`, `/get`, `/delete`), its body read: placed by the
    /// cluster's plan and carried out. Mirrored pools get root writes through here too.
    pub(crate) async fn keyed(&self, cluster: &Cluster, call: KeyCall) -> Forwarded {
        let op = if call.path == "/get" {
            Op::Read
        } else {
            Op::Write
        };
        let plan = cluster.plan(op, &call.key);
        let call_client = call.client;
        let node_req = NodeRequest {
            method: call.method,
            path_and_query: format!("{}?key={}", call.path, http::encode_component(&call.key)),
            body: call.body,
            content_type: call.content_type,
            via: call.via,
            key: Some(call.key),
            // Every write is versioned, so the newest copy can always be told.
            version: (op == Op::Write).then(|| self.upstream.clock.stamp()),
        };
        if op == Op::Write {
            self.wrote(call_client);
        }
        forward::run(&self.upstream, cluster, plan, node_req).await
    }

    /// `/clear`: every node of the cluster at once.
    pub(crate) async fn clear(
        &self,
        cluster: &Cluster,
        via: Option<HeaderValue>,
        client: Option<IpAddr>,
    ) -> Forwarded {
        let plan = Plan::All((0..cluster.nodes.len()).collect());
        let node_req = NodeRequest {
            method: Method::POST,
            via,
            ..NodeRequest::get("/clear")
        };
        self.wrote(client);
        self.recent.cleared();
        forward::run(&self.upstream, cluster, plan, node_req).await
    }

    /// The data changed at `client`'s request (or the proxy's own, for `None`).
    fn wrote(&self, client: Option<IpAddr>) {
        match client {
            Some(c) => self.snapshots.wrote_by(c),
            None => self.snapshots.wrote(),
        }
    }

    /// With `admin_token` set, the request must carry it (401 otherwise; a wrong one
    /// counts toward the client's throttle).
    pub(crate) fn admin_only(
        &self,
        cluster: &Cluster,
        req: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<(), HttpError> {
        let Some(token) = cluster.config.admin_token.as_deref() else {
            return Ok(());
        };
        if guard::carries(req.headers(), token) {
            return Ok(());
        }
        let client = guard::client(peer, req.headers());
        self.throttle.check(client)?;
        if guard::bearer(req.headers()).is_some() {
            self.throttle.failed(client);
        }
        Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "{} removes data in bulk: send the teacher's `Authorization: Bearer <admin_token>`",
                req.uri().path()
            ),
        ))
    }

    /// `/chaos` is the teacher's alone: refused outright when no `admin_token` is set
    /// (anyone could cut the class off), 401 without it.
    fn teacher_only(
        &self,
        cluster: &Cluster,
        req: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<(), HttpError> {
        if cluster.config.admin_token.is_none() {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "/chaos needs the teacher's token: set `admin_token:` in the config, then send \
                 `Authorization: Bearer <admin_token>`",
            ));
        }
        self.admin_only(cluster, req, peer)
    }

    /// Every node's pairs merged: each key with its value and the nodes that hold it.
    /// Built once per gather and shared by every request that asks meanwhile.
    async fn dump(&self, cluster: &Arc<Cluster>) -> Response {
        let gathered = self.snapshots.full(self, cluster).await;
        let (cluster, built) = (cluster.clone(), gathered.clone());
        // Built once per gather, off the thread that serves requests (it may be big).
        let body = tokio::task::spawn_blocking(move || {
            built
                .dump
                .get_or_init(|| Bytes::from(dump_json(&cluster, &built.views).to_string()))
                .clone()
        })
        .await
        .unwrap_or_default();
        http::bytes(StatusCode::OK, "application/json", body)
    }

    /// The proxy is up; each node up or down, with its count, from the latest sweep.
    async fn health(&self, cluster: &Arc<Cluster>, viewer: Option<IpAddr>) -> Response {
        http::json(StatusCode::OK, &self.health_json(cluster, viewer).await)
    }

    /// `/health`'s answer, as JSON (the pools' `/health` gathers one per pool).
    pub(crate) async fn health_json(
        &self,
        cluster: &Arc<Cluster>,
        viewer: Option<IpAddr>,
    ) -> Value {
        let sweep = self.snapshots.fresh(self, cluster, viewer).await;
        let nodes: Vec<Value> = sweep
            .views
            .iter()
            .map(|v| {
                let down_since = self.upstream.health.down_since(&v.node.base);
                json!({"name": v.node.name, "url": v.node.url, "joined": v.node.joined,
                       "up": v.up, "ms": v.latency_ms, "keys": v.count, "error": v.error,
                       "marked_down_since_ms": down_since,
                       "health": {"node": v.node.name, "keys": v.count}})
            })
            .collect();
        let up = sweep.views.iter().filter(|v| v.up).count();
        json!({"status": "ok", "mode": cluster.mode.name(), "nodes_up": up,
               "nodes_total": nodes.len(), "nodes": nodes,
               "snapshot_age_ms": sweep.at.elapsed().as_millis() as u64})
    }

    fn config_yaml(&self, cluster: &Cluster) -> Response {
        http::with_type(
            StatusCode::OK,
            "application/yaml; charset=utf-8",
            cluster.effective_config().to_yaml_without_token(),
        )
    }
}

/// `/dump`'s answer from one gather.
fn dump_json(cluster: &Cluster, views: &[crate::overview::NodeView]) -> Value {
    let mut data = serde_json::Map::new();
    let mut nodes = Vec::new();
    for v in views {
        nodes.push(json!({"name": v.node.name, "url": v.node.url, "up": v.up, "count": v.count, "error": v.error}));
        for (k, text) in &v.pairs {
            let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            let entry = data
                .entry(k.clone())
                .or_insert_with(|| json!({"value": value, "nodes": []}));
            if let Some(list) = entry.get_mut("nodes").and_then(Value::as_array_mut) {
                list.push(json!(v.node.name));
            }
        }
    }
    json!({"mode": cluster.mode.name(), "count": data.len(), "data": data, "nodes": nodes})
}

/// An answer the proxy made itself, not a node.
fn local(response: Response) -> Forwarded {
    Forwarded {
        response,
        nodes: Vec::new(),
        trail: Vec::new(),
        note: String::new(),
    }
}

/// A body already built, with its ETag; 304 when the client has it already.
fn cached(asked: &Option<HeaderValue>, etag: &str, body: &Bytes) -> Response {
    let mut res = if asked
        .as_ref()
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        let mut res = http::bytes(StatusCode::NOT_MODIFIED, "application/json", Bytes::new());
        res.headers_mut().remove(CONTENT_TYPE);
        res
    } else {
        http::bytes(StatusCode::OK, "application/json", body.clone())
    };
    if let Ok(v) = HeaderValue::from_str(etag) {
        res.headers_mut().insert(ETAG, v);
    }
    res
}

/// An error as an answer; a 429 says when to try again.
fn error_response(e: HttpError) -> Response {
    let wait = e.fields.get("retry_after_s").and_then(Value::as_u64);
    let mut res = e.into_response();
    if let Some(v) = wait.and_then(|w| HeaderValue::from_str(&w.to_string()).ok()) {
        res.headers_mut().insert(RETRY_AFTER, v);
    }
    res
}

impl Handler for Proxy {
    /// Answers, then logs one line and remembers the request for the /state page.
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let key = http::request_key(req.uri().query());
        if let Some(why) = self.upstream.id.loop_in(req.headers()) {
            tracing::warn!("{method} {path}: {why}");
            return HttpError::new(StatusCode::LOOP_DETECTED, why).into_response();
        }
        let watching = matches!(path.as_str(), "/state" | "/state.json" | "/events");
        if watching {
            self.metrics.viewed(guard::client(peer, req.headers()));
        }
        let out = self
            .route(req, peer)
            .await
            .unwrap_or_else(|e| local(error_response(e)));
        self.finish(&method, &path, &key, started, out)
    }

    fn limits(&self) -> storage::server::Limits {
        self.live.get().config.limits()
    }
}

impl Proxy {
    /// What every answer goes through: one log line, the metrics, and (for a request
    /// placed on nodes) the page's list of recent requests.
    pub(crate) fn finish(
        &self,
        method: &Method,
        path: &str,
        key: &str,
        started: Instant,
        out: Forwarded,
    ) -> Response {
        let watching = matches!(path, "/state" | "/state.json" | "/events");
        let status = out.response.status();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let proxied = matches!(path, "/put" | "/get" | "/delete" | "/clear");
        let line = format_args!(
            "{method} {path} key={:?} -> {} via [{}] in {ms:.1} ms",
            http::key_for_log(key),
            status.as_u16(),
            out.nodes.join(",")
        );
        // Pages poll every second: with thirty phones watching, their lines would bury
        // the requests and joins a teacher reads. They log at debug.
        if watching || matches!(path, "/state.js" | "/health" | "/metrics") {
            tracing::debug!("{line}");
        } else {
            tracing::info!("{line}");
        }
        // Known routes by name; anything else is one label, so a scan of random paths
        // cannot grow the metrics without bound.
        let route = if ROUTES.contains(&path) {
            path
        } else {
            "other"
        };
        let mode = self.live.get().mode.name();
        self.metrics.request(route, mode, &out.nodes, status);
        if proxied {
            let way = crate::recent::Way {
                nodes: out.nodes,
                trail: out.trail,
                note: out.note,
            };
            self.recent
                .record(method.as_str(), key, way, status.as_u16(), ms);
        }
        out.response
    }
}
