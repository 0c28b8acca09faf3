//! Several clusters on one proxy, side by side: each pool is a whole [`Proxy`] (its
//! cluster, page, feed, joins and healers) answering under `/name/`, and all of them
//! share one client, so a node's failure memory and the teacher's chaos belong to its
//! URL whichever pool asks.
//!
//! - `/sharded/put?key=k` goes to pool `sharded` alone; `/sharded/state` is its page.
//! - The root is the first pool's, so every command of the one-cluster lesson keeps
//!   working; a write at the root (`/put`, `/delete`, `/clear`) also goes to every pool
//!   with `mirror: true`, and the root answers once they are done too (`X-Kv-Mirrored`
//!   says how each went).
//! - With more than one pool, `/state` shows every pool's page side by side (one column
//!   each), and `/state.json`, `/health`, `/config` and `/metrics` cover every pool.
//!
//! A one-cluster config is one pool, and then this router only hands requests on.
//! [`pages`] holds the root's views of every pool, [`mirror`] the root's writes.

mod mirror;
mod pages;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use storage::http::{self, Response};
use storage::server::Handler;

use crate::config::Config;
use crate::pool_config;
use crate::upstream::Upstream;
use crate::{guard, Proxy};

/// One pool: a name (its URL prefix) and the proxy that serves it.
pub struct Pool {
    pub name: String,
    /// Receives the root's writes too. Atomic: a reload may turn it on or off.
    pub mirror: AtomicBool,
    pub proxy: Arc<Proxy>,
}

/// Every pool of the config, the first answering at the root.
pub struct Pools {
    pub pools: Vec<Pool>,
}

impl Pools {
    pub fn new(config: Config) -> Pools {
        Pools::with_upstream(config, Upstream::new())
    }

    /// Pools sharing `upstream` (its pools of connections, failure memory and chaos).
    pub fn with_upstream(config: Config, upstream: Upstream) -> Pools {
        let pools: Vec<Pool> = pool_config::specs(&config)
            .into_iter()
            .map(|spec| Pool {
                name: spec.name,
                mirror: AtomicBool::new(spec.mirror),
                proxy: Arc::new(Proxy::with_upstream(spec.config, upstream.clone())),
            })
            .collect();
        let pools = Pools { pools };
        pools.note_shared_nodes();
        pools
    }

    /// The pool that answers at the root.
    pub fn first(&self) -> &Arc<Proxy> {
        &self.pools[0].proxy
    }

    /// More than one pool: the root's pages cover them all.
    pub fn many(&self) -> bool {
        self.pools.len() > 1
    }

    pub fn by_name(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// Tells each pool which of its nodes are in other pools too, for its page.
    pub fn note_shared_nodes(&self) {
        let mut by_url: HashMap<String, Vec<String>> = HashMap::new();
        for pool in &self.pools {
            for node in &pool.proxy.live.get().nodes {
                by_url
                    .entry(node.base.clone())
                    .or_default()
                    .push(pool.name.clone());
            }
        }
        for pool in &self.pools {
            let mut also = HashMap::new();
            for (url, names) in &by_url {
                let others: Vec<String> =
                    names.iter().filter(|n| **n != pool.name).cloned().collect();
                if !others.is_empty() && names.contains(&pool.name) {
                    also.insert(url.clone(), others);
                }
            }
            *pool
                .proxy
                .also_in
                .write()
                .unwrap_or_else(|e| e.into_inner()) = also;
        }
    }

    /// The pool a path names (`/sharded/put` → `sharded`, `/put`), if it names one.
    fn by_prefix(&self, path: &str) -> Option<(&Pool, String)> {
        let rest = path.strip_prefix('/')?;
        let (name, tail) = match rest.split_once('/') {
            Some((name, tail)) => (name, format!("/{tail}")),
            None => (rest, String::new()),
        };
        self.by_name(name).map(|p| (p, tail))
    }

    /// The pools a root write also goes to.
    fn mirrors(&self) -> Vec<&Pool> {
        self.pools
            .iter()
            .skip(1)
            .filter(|p| p.mirror.load(Ordering::Relaxed))
            .collect()
    }
}

impl Handler for Pools {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response {
        if !self.many() {
            return self.first().handle(req, peer).await;
        }
        let path = req.uri().path().to_string();
        if let Some((pool, tail)) = self.by_prefix(&path) {
            if tail.is_empty() || tail == "/" {
                return to_page(&pool.name);
            }
            let (mut parts, body) = req.into_parts();
            let uri = match parts.uri.query() {
                Some(q) => format!("{tail}?{q}"),
                None => tail,
            };
            parts.uri = uri.parse::<Uri>().unwrap_or_else(|_| Uri::from_static("/"));
            let mut res = pool
                .proxy
                .handle(Request::from_parts(parts, body), peer)
                .await;
            framed_by_us(&mut res);
            return res;
        }
        // The root's views of every pool answer GET (and HEAD); anything else there goes
        // to the first pool, which answers it (or says which methods it takes).
        let read = req.method() == Method::GET || req.method() == Method::HEAD;
        let viewer = guard::client(peer, req.headers());
        match path.as_str() {
            "/" | "/state" if read => http::html(self.page()),
            "/state.json" if read => self.state_json(viewer).await,
            "/health" if read => self.health(viewer).await,
            "/config" if read => self.config_yaml(),
            "/metrics" if read => self.metrics(),
            "/put" | "/delete" | "/clear" if !self.mirrors().is_empty() => {
                self.mirrored(req, peer).await
            }
            _ => self.first().handle(req, peer).await,
        }
    }

    fn limits(&self) -> storage::server::Limits {
        self.first().live.get().config.limits()
    }
}

/// `/name` and `/name/` lead to the pool's page.
fn to_page(name: &str) -> Response {
    let mut res = http::json_text(StatusCode::FOUND, String::new());
    if let Ok(v) = HeaderValue::from_str(&format!("/{name}/state")) {
        res.headers_mut().insert(hyper::header::LOCATION, v);
    }
    res
}

/// A pool's page may be framed by the root's side-by-side page (the same origin), and
/// by no other site.
fn framed_by_us(res: &mut Response) {
    let html = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    if html {
        let h = res.headers_mut();
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'",
            ),
        );
        h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    }
}
