//! Talking to nodes: one pooled HTTP client (keep-alive, HTTPS through rustls) and the
//! rules every request to a node follows, whoever wrote the node.
//!
//! - The request carries `ngrok-skip-browser-warning: 1`, so a student's node behind
//!   ngrok's free tier answers with its API and not with ngrok's warning page.
//! - It carries `Via` with this proxy's id ([`crate::hops`]), so a loop is caught.
//! - A deadline covers connecting and the whole answer (`timeout_ms`, 2 s by default).
//! - A request is sent again when the client library says it was never sent (the
//!   connection could not be made; hyper itself retries a request a closed pooled
//!   connection never took). One that may have reached the node is sent again only when
//!   a second time answers the same as the first: a read, or a put of the same value.
//!   A DELETE is not: a retried one would answer 404 for a delete that happened.
//! - Joined nodes (anyone's URL) go through a client whose resolver refuses link-local
//!   and loopback addresses at every connect ([`crate::address`]); the config's nodes,
//!   which the teacher wrote, through a plain one.
//! - A failure names the node, its URL and what happened, in words for a person.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT, VIA};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use storage::http::HttpError;

use crate::address::{self, GuardedResolver, Lookup, Rules, SharedRules};
use crate::cluster::NodeAddr;
use crate::health::{Health, Marked};
use crate::hops::ProxyId;
use storage::tls;
use storage::version::Version;

/// The header that carries a write's version to a node, and a copy's version back.
pub const VERSION_HEADER: &str = "x-kv-version";

/// The largest answer read from a node (a `/dump` of a big node is the largest).
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// The pooled clients; cloning shares the pools.
#[derive(Clone)]
pub struct Upstream {
    /// For the config file's nodes.
    open: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// For joined nodes: the resolver applies the join rules at every connect.
    guarded: Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    /// This proxy's name in `Via`.
    pub id: ProxyId,
    /// The join rules in force (loopback allowed? where do we listen?).
    pub rules: SharedRules,
    /// How hosts are looked up (a table in tests).
    pub lookup: Lookup,
    /// Which nodes timed out lately ([`crate::health`]), by URL.
    pub health: Arc<Health>,
    /// Seconds per answer, by node, for `/metrics`.
    pub latency: crate::metrics::Latency,
    /// Stamps every write with a version ([`crate::clock`]).
    pub clock: Arc<crate::clock::Clock>,
    /// Faults the teacher made from the page ([`crate::chaos`]), by URL.
    pub chaos: Arc<crate::chaos::Chaos>,
    /// Requests a node was skipped for, marked down, for `/metrics`.
    pub skipped: prometheus_client::metrics::family::Family<
        crate::metrics::NodeLabels,
        prometheus_client::metrics::counter::Counter,
    >,
}

/// What a node answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
    /// From sending the request to the last byte of the answer.
    pub latency: Duration,
    /// ngrok's error code, when ngrok answered instead of the node (its warning page).
    pub ngrok_error: Option<String>,
    /// The version of the copy the node holds (`X-Kv-Version`): on a 200, the value's; on
    /// a 404, a tombstone's. `None` from a node that keeps no versions.
    pub version: Option<Version>,
}

/// Why a node gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listens there, or the connection broke: the node is down.
    Down(String),
    /// It did not answer within the timeout: down, overloaded, or a black hole.
    Timeout(Duration),
}

/// A node that gave no answer, with enough to tell a person which one and why.
#[derive(Debug, Clone)]
pub struct NodeError {
    pub node: String,
    pub url: String,
    pub failure: Failure,
}

impl NodeError {
    /// In words: "node kv2 (http://...) did not answer within 2000 ms".
    pub fn reason(&self) -> String {
        match &self.failure {
            Failure::Down(why) => why.clone(),
            Failure::Timeout(t) => format!("no answer within {} ms", t.as_millis()),
        }
    }

    /// 504 for a timeout, 502 for anything else: the HTTP words for "the node failed".
    pub fn status(&self) -> StatusCode {
        match self.failure {
            Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Failure::Down(_) => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn into_http_error(self) -> HttpError {
        HttpError::new(
            self.status(),
            format!(
                "node {} ({}) failed: {}",
                self.node,
                self.url,
                self.reason()
            ),
        )
        .with("node", self.node)
        .with("url", self.url)
    }
}

/// One request to a node, cheap to clone (the body is reference-counted).
#[derive(Debug, Clone)]
pub struct NodeRequest {
    pub method: Method,
    /// Path and query under the node's base URL, like `/get?key=a%26b`.
    pub path_and_query: String,
    pub body: Bytes,
    pub content_type: Option<HeaderValue>,
    /// The `Via` the client's request came with (another proxy in front of us), kept so
    /// a loop through several proxies is seen too.
    pub via: Option<HeaderValue>,
    /// The key it is about, decoded, so an error can name it.
    pub key: Option<String>,
    /// The write's version, sent as `X-Kv-Version` ([`crate::clock`]).
    pub version: Option<Version>,
}

impl NodeRequest {
    pub fn get(path_and_query: impl Into<String>) -> NodeRequest {
        NodeRequest {
            method: Method::GET,
            path_and_query: path_and_query.into(),
            body: Bytes::new(),
            content_type: None,
            via: None,
            key: None,
            version: None,
        }
    }
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream::new()
    }
}

impl Upstream {
    pub fn new() -> Upstream {
        Upstream::with_lookup(address::system_lookup())
    }

    /// A client whose joined nodes' hosts are looked up by `lookup` (tests pass a table).
    pub fn with_lookup(lookup: Lookup) -> Upstream {
        let rules = SharedRules::default();
        let resolver = GuardedResolver {
            lookup: lookup.clone(),
            rules: rules.clone(),
        };
        let builder = || {
            let mut b = Client::builder(TokioExecutor::new());
            b.pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(64);
            b
        };
        let id = ProxyId::new();
        Upstream {
            clock: Arc::new(crate::clock::Clock::new(id.as_str())),
            open: builder().build(tls::connector()),
            guarded: builder().build(tls::wrap(HttpConnector::new_with_resolver(resolver))),
            id,
            rules,
            lookup,
            health: Arc::default(),
            latency: crate::metrics::latency_family(),
            chaos: Arc::default(),
            skipped: Default::default(),
        }
    }

    /// The join rules in force now.
    pub fn rules(&self) -> Rules {
        *self.rules.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the join rules (a reload, or the proxy starting to listen).
    pub fn set_rules(&self, change: impl FnOnce(&mut Rules)) {
        change(&mut self.rules.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// Sends `req` to `node`, within `timeout` in all, retrying once on a stale connection.
    pub async fn send(
        &self,
        node: &NodeAddr,
        req: &NodeRequest,
        timeout: Duration,
    ) -> Result<Answer, NodeError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let fail = |failure| NodeError {
            node: node.name.clone(),
            url: node.url.clone(),
            failure,
        };
        match self.chaos.of(&node.base) {
            Some(crate::chaos::Fault::Partition) => {
                return Err(fail(Failure::Down(format!(
                    "cut off: {}",
                    crate::chaos::Fault::Partition.describe()
                ))))
            }
            Some(crate::chaos::Fault::Slow { ms }) => {
                let slowed = tokio::time::sleep(Duration::from_millis(ms));
                if tokio::time::timeout_at(deadline, slowed).await.is_err() {
                    self.health.timed_out(&node.base);
                    self.probe(node, timeout);
                    return Err(fail(Failure::Timeout(timeout)));
                }
            }
            None => {}
        }
        let mut retried = false;
        loop {
            match tokio::time::timeout_at(deadline, self.once(node, req)).await {
                Err(_) => {
                    if self.health.timed_out(&node.base) == Marked::Newly {
                        tracing::warn!(
                            "node {} ({}) did not answer within {} ms: marked down, probed in the background",
                            node.name,
                            node.url,
                            timeout.as_millis()
                        );
                    }
                    self.probe(node, timeout);
                    return Err(fail(Failure::Timeout(timeout)));
                }
                Ok(Ok((status, headers, body))) => {
                    self.health.answered(&node.base);
                    let labels = crate::metrics::NodeLabels {
                        node: node.name.clone(),
                    };
                    self.latency
                        .get_or_create(&labels)
                        .observe(started.elapsed().as_secs_f64());
                    return Ok(Answer {
                        status,
                        content_type: headers.get(CONTENT_TYPE).cloned(),
                        ngrok_error: headers
                            .get("ngrok-error-code")
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                        version: headers
                            .get(VERSION_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse().ok()),
                        body,
                        latency: started.elapsed(),
                    });
                }
                Ok(Err(e)) if !retried && (e.never_sent || same_twice(req)) => retried = true,
                Ok(Err(e)) => return Err(fail(Failure::Down(e.why))),
            }
        }
    }

    /// Probes a node marked down, in the background, until it answers: one task per
    /// node, waiting the back-off between tries.
    fn probe(&self, node: &NodeAddr, timeout: Duration) {
        if !self.health.start_probe(&node.base) {
            return;
        }
        let (upstream, node) = (self.clone(), node.clone());
        tokio::spawn(async move {
            while let Some(wait) = upstream.health.next_probe(&node.base) {
                tokio::time::sleep(wait).await;
                match upstream
                    .send(&node, &NodeRequest::get("/health"), timeout)
                    .await
                {
                    Ok(_) => {
                        tracing::info!("node {} answers again: no longer marked down", node.name)
                    }
                    // A timeout has doubled the back-off already; anything else does it here.
                    Err(e) if e.status() != StatusCode::GATEWAY_TIMEOUT => {
                        upstream.health.timed_out(&node.base);
                    }
                    Err(_) => {}
                }
            }
        });
    }

    async fn once(
        &self,
        node: &NodeAddr,
        req: &NodeRequest,
    ) -> Result<(StatusCode, HeaderMap, Bytes), SendError> {
        let uri = format!("{}{}", node.base, req.path_and_query);
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(&uri)
            .header("ngrok-skip-browser-warning", "1")
            .header(VIA, self.id.via(req.via.as_ref()))
            .header(USER_AGENT, concat!("kv-proxy/", env!("CARGO_PKG_VERSION")));
        if let Some(ct) = &req.content_type {
            builder = builder.header(CONTENT_TYPE, ct.clone());
        }
        if let Some(version) = &req.version {
            builder = builder.header(VERSION_HEADER, version.to_string());
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|e| SendError {
                why: format!("cannot build a request for {uri}: {e}"),
                never_sent: false,
            })?;
        let sent = if node.joined {
            self.guarded.request(request).await
        } else {
            self.open.request(request).await
        };
        let res = sent.map_err(|e| SendError {
            // Only a failed connect is sure to have sent nothing.
            never_sent: e.is_connect(),
            why: describe(&e),
        })?;
        let (parts, body) = res.into_parts();
        let body = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| SendError {
                why: format!("the answer broke off: {e}"),
                never_sent: false,
            })?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }
}

/// Whether sending `req` twice answers what sending it once does: a read, or a put.
fn same_twice(req: &NodeRequest) -> bool {
    matches!(req.method, Method::GET | Method::HEAD) || req.path_and_query.starts_with("/put?")
}

struct SendError {
    why: String,
    never_sent: bool,
}

/// The client's error in a person's words: the innermost cause says what happened
/// ("Connection refused", "invalid peer certificate: UnknownIssuer").
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    let text = inner.to_string();
    if let Some(io) = find_io(e) {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                return "connection refused: nothing listens there (is the node running?)".into()
            }
            std::io::ErrorKind::ConnectionReset => return "the node reset the connection".into(),
            _ => {}
        }
    }
    if let Some(io) = find_io(e).filter(|io| io.kind() == std::io::ErrorKind::PermissionDenied) {
        return format!("refused by the join rules: {io}");
    }
    if text.to_lowercase().contains("certificate") {
        return format!("TLS failed: {text} (a self-signed certificate needs SSL_CERT_FILE)");
    }
    if e.is_connect() {
        format!("cannot connect: {text}")
    } else {
        format!("the connection failed: {text}")
    }
}

fn find_io(e: &hyper_util::client::legacy::Error) -> Option<&std::io::Error> {
    let mut next = e.source();
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        next = err.source();
    }
    None
}
