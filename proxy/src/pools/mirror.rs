//! Writes at the root go to the first pool and to every pool with `mirror: true`, at
//! once; the root answers with the first pool's answer once all are done, and says how
//! each mirror went (`X-Kv-Mirrored: replicated 200`). A write refused before any pool
//! sees it (a bad key, a drive-by page, a missing admin token) is refused once.

use std::net::SocketAddr;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use storage::http::{self, HttpError, Response};

use super::Pools;
use crate::forward::Forwarded;
use crate::guard;
use crate::routes::{allowed_methods, KeyCall};
use crate::Proxy;

impl Pools {
    /// A write at the root: the first pool's, and every mirror's, at once; the first
    /// pool's answer, once all are done, with how each mirror went.
    pub(super) async fn mirrored(&self, req: Request<Incoming>, peer: SocketAddr) -> Response {
        let first = self.first().clone();
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let key = http::request_key(req.uri().query());
        let client = guard::client(peer, req.headers());
        if let Some(why) = first.upstream.id.loop_in(req.headers()) {
            return HttpError::new(StatusCode::LOOP_DETECTED, why).into_response();
        }
        let call = match self.read_call(&first, req, peer).await {
            Ok(call) => call,
            // Refused before any pool saw it: said once, as the first pool would.
            Err(response) => {
                let out = Forwarded {
                    response,
                    nodes: Vec::new(),
                    trail: Vec::new(),
                    note: String::new(),
                };
                return first.finish(&method, &path, &key, started, out);
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (i, pool) in std::iter::once(&self.pools[0])
            .chain(self.mirrors())
            .enumerate()
        {
            let (proxy, call, name) = (pool.proxy.clone(), call.clone(), pool.name.clone());
            let (method, path, key) = (method.clone(), path.clone(), key.clone());
            tasks.spawn(async move {
                let cluster = proxy.live.get();
                let out = match call {
                    Some(call) => proxy.keyed(&cluster, call).await,
                    None => proxy.clear(&cluster, None, Some(client)).await,
                };
                let res = proxy.finish(&method, &path, &key, started, out);
                (i, name, res)
            });
        }
        let mut answers: Vec<(usize, String, Response)> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(a) = done {
                answers.push(a);
            }
        }
        answers.sort_by_key(|(i, _, _)| *i);
        let mirrored: Vec<String> = answers
            .iter()
            .skip(1)
            .map(|(_, name, r)| format!("{name} {}", r.status().as_u16()))
            .collect();
        let mut res = match answers.into_iter().next() {
            Some((0, _, res)) => res,
            _ => HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the root pool's write was lost",
            )
            .into_response(),
        };
        if let Ok(v) = HeaderValue::from_str(&mirrored.join(", ")) {
            res.headers_mut().insert("x-kv-mirrored", v);
        }
        res
    }

    /// The checks a root write passes before any pool sees it (the first pool's: the
    /// guards are shared), and its body: `None` for a `/clear`.
    async fn read_call(
        &self,
        first: &Proxy,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Option<KeyCall>, Response> {
        let cluster = first.live.get();
        let path = req.uri().path().to_string();
        if let Some(refused) = guard::cross_site(req.headers()) {
            return Err(refused.into_response());
        }
        // A root write's path is always a route: `/put`, `/delete` or `/clear`.
        let allowed = allowed_methods(&path).unwrap_or(&[]);
        if !allowed.contains(req.method()) {
            return Err(http::wrong_method(req.method(), &path, allowed));
        }
        if path == "/clear" {
            first
                .admin_only(&cluster, &req, peer)
                .map_err(HttpError::into_response)?;
            return Ok(None);
        }
        let timeout = cluster.config.limits().body_timeout;
        KeyCall::read(req, peer, timeout)
            .await
            .map(Some)
            .map_err(HttpError::into_response)
    }
}
