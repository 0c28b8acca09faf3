//! Talking to nodes: one pooled HTTP client (keep-alive, HTTPS through rustls) and the
//! rules every request to a node follows, whoever wrote the node.
//!
//! - The request carries `ngrok-skip-browser-warning: 1`, so a student's node behind
//!   ngrok's free tier answers with its API and not with ngrok's warning page.
//! - A deadline covers connecting and the whole answer (`timeout_ms`, 2 s by default).
//! - A request that fails on a pooled connection the node had closed (it was restarted)
//!   is sent once more on a fresh one. Every request the proxy sends is idempotent
//!   (putting the same value twice, deleting twice, reading), so a retry is safe.
//! - A failure names the node, its URL and what happened, in words for a person.

use std::error::Error as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use storage::http::HttpError;

use crate::cluster::NodeAddr;
use storage::tls;

/// The largest answer read from a node (a `/dump` of a big node is the largest).
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// The pooled client; cloning shares the pool.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// What a node answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
    /// From sending the request to the last byte of the answer.
    pub latency: Duration,
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
}

impl NodeRequest {
    pub fn get(path_and_query: impl Into<String>) -> NodeRequest {
        NodeRequest {
            method: Method::GET,
            path_and_query: path_and_query.into(),
            body: Bytes::new(),
            content_type: None,
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
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(tls::connector());
        Upstream { client }
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
        let mut retried = false;
        loop {
            match tokio::time::timeout_at(deadline, self.once(node, req)).await {
                Err(_) => return Err(fail(Failure::Timeout(timeout))),
                Ok(Ok((status, content_type, body))) => {
                    return Ok(Answer {
                        status,
                        content_type,
                        body,
                        latency: started.elapsed(),
                    })
                }
                Ok(Err(e)) if !retried && e.stale => retried = true,
                Ok(Err(e)) => return Err(fail(Failure::Down(e.why))),
            }
        }
    }

    async fn once(
        &self,
        node: &NodeAddr,
        req: &NodeRequest,
    ) -> Result<(StatusCode, Option<HeaderValue>, Bytes), SendError> {
        let uri = format!("{}{}", node.base, req.path_and_query);
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(&uri)
            .header("ngrok-skip-browser-warning", "1")
            .header(USER_AGENT, concat!("kv-proxy/", env!("CARGO_PKG_VERSION")));
        if let Some(ct) = &req.content_type {
            builder = builder.header(CONTENT_TYPE, ct.clone());
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|e| SendError {
                why: format!("cannot build a request for {uri}: {e}"),
                stale: false,
            })?;
        let res = self.client.request(request).await.map_err(|e| SendError {
            // A connect error means nothing was sent; anything else on a pooled
            // connection may be a socket the node closed when it restarted.
            stale: !e.is_connect(),
            why: describe(&e),
        })?;
        let status = res.status();
        let content_type = res.headers().get(CONTENT_TYPE).cloned();
        let body = Limited::new(res.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| SendError {
                why: format!("the answer broke off: {e}"),
                stale: false,
            })?
            .to_bytes();
        Ok((status, content_type, body))
    }
}

struct SendError {
    why: String,
    stale: bool,
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
