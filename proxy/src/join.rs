//! Students' nodes joining and leaving the class: `POST /join` and `POST /leave`.
//!
//! A node asks to join with `Authorization: Bearer <join_token>` and
//! `{"name": "alice", "url": "https://alice.ngrok-free.app"}` (or `{"name", "port"}`,
//! and the proxy uses the address the request came from: the classroom-LAN case).
//! The proxy checks, in this order, and answers:
//! 403 joining is off (no `join_token` in the config) · 401 wrong or missing token ·
//! 400 a bad name or URL · 409 the name belongs to another URL, or the URL to another
//! name · 429 the class is full ·
//! 422 the URL does not speak the API (the `doctor` checks) · 200 joined (or already in).
//!
//! Joined nodes come after the config file's nodes, survive reloads of the file, and
//! never write the file: `GET /config` shows the whole class as YAML to save.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use storage::http::{self, HttpError, Response};

use crate::cluster::Cluster;
use crate::config::{self, NodeConfig};
use crate::doctor;
use crate::Proxy;

/// The largest join or leave body read.
const MAX_BODY: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    name: String,
    /// The URL the node is reached at; without it, the request's source address and `port`.
    url: Option<String>,
    port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveBody {
    name: String,
}

/// What changes for the keys when the number of nodes changes, in words.
pub fn placement_note(before: usize, after: usize) -> String {
    format!(
        "the number of nodes changed from {before} to {after}: SHA-256 mod {after} places most \
         keys on another node than mod {before} did, so keys written before may now be looked \
         for on a node that does not have them"
    )
}

impl Proxy {
    /// Logs and shows on the page that the number of nodes changed, when it did.
    pub fn nodes_changed(&self, before: usize, after: usize) {
        if before != after {
            let note = placement_note(before, after);
            tracing::warn!("{note}");
            self.recent.set_notice(note);
        }
    }
}

impl Proxy {
    /// 403 when joining is off, 401 for a wrong token; the body, parsed, otherwise.
    async fn authorized<T: for<'de> Deserialize<'de>>(
        &self,
        req: Request<Incoming>,
    ) -> Result<T, HttpError> {
        let cluster = self.live.get();
        let Some(token) = cluster
            .config
            .join_token
            .as_deref()
            .filter(|t| !t.is_empty())
        else {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "joining is off on this proxy: the teacher adds `join_token: <a secret>` to its config to turn it on",
            ));
        };
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same(given.as_bytes(), token.as_bytes()) {
            return Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                "wrong or missing join token: send `Authorization: Bearer <token>` (storage --join-token)",
            ));
        }
        let body = http::read_body(req, MAX_BODY).await?;
        serde_json::from_slice(&body).map_err(|e| {
            HttpError::new(StatusCode::BAD_REQUEST, format!("the body must be JSON like {{\"name\": \"alice\", \"url\": \"https://...\"}}: {e}"))
        })
    }

    pub(crate) async fn join(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response, HttpError> {
        let body: JoinBody = self.authorized(req).await?;
        let url = match (body.url, body.port) {
            (Some(url), _) => url,
            (None, Some(port)) => match peer.ip() {
                std::net::IpAddr::V4(ip) => format!("http://{ip}:{port}"),
                std::net::IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
            },
            (None, None) => {
                return Err(HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "say where the node is: \"url\" (storage --advertise) or \"port\"",
                ))
            }
        };
        let node = NodeConfig {
            name: body.name,
            url,
        };
        config::check_node(&node.name, &node.url)
            .map_err(|why| HttpError::new(StatusCode::BAD_REQUEST, why))?;
        // Cheap refusals first, then the API check (which takes a few round trips).
        let cluster = self.live.get();
        if let Some(index) = admission(&cluster, &node)? {
            return Ok(already_in(&node, index, cluster.nodes.len()));
        }
        let addr = crate::cluster::NodeAddr::new(&node, true);
        let report = doctor::check_node(&self.upstream, &addr, cluster.timeout).await;
        if let Some(why) = report.first_failure() {
            tracing::warn!("node {} ({}) may not join: {why}", node.name, node.url);
            return Err(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{} does not speak the API: {why}", node.url),
            )
            .with(
                "checks",
                serde_json::to_value(&report.checks).unwrap_or_default(),
            ));
        }
        // Checked again under the lock: another join may have come in meanwhile.
        let ((admitted, before), after) = self.live.change_joined(|current, joined| {
            let admitted = admission(current, &node)?;
            if admitted.is_none() {
                joined.push(node.clone());
            }
            Ok::<_, HttpError>((admitted, current.nodes.len()))
        })?;
        if let Some(index) = admitted {
            return Ok(already_in(&node, index, after.nodes.len()));
        }
        let index = after.nodes.len() - 1;
        let n = after.nodes.len();
        let note = (n != before).then(|| placement_note(before, n));
        tracing::info!("node {} joined from {}: now {n} nodes", node.name, node.url);
        self.nodes_changed(before, n);
        Ok(http::json(
            StatusCode::OK,
            &json!({"message": format!("{} is in the class, node {} of {n}", node.name, index + 1),
                    "name": node.name, "url": node.url, "index": index, "nodes": n, "note": note}),
        ))
    }

    pub(crate) async fn leave(&self, req: Request<Incoming>) -> Result<Response, HttpError> {
        let body: LeaveBody = self.authorized(req).await?;
        let before = self.live.get().nodes.len();
        let (_, after) = self.live.change_joined(|current, joined| {
            match joined.iter().position(|n| n.name == body.name) {
                Some(i) => {
                    joined.remove(i);
                    Ok(())
                }
                None if current.nodes.iter().any(|n| n.name == body.name) => Err(HttpError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "{} is in the config file; the teacher removes it there",
                        body.name
                    ),
                )),
                None => Err(HttpError::new(
                    StatusCode::NOT_FOUND,
                    format!("no joined node is called {}", body.name),
                )),
            }
        })?;
        let n = after.nodes.len();
        tracing::info!("node {} left: now {n} nodes", body.name);
        self.nodes_changed(before, n);
        Ok(http::json(
            StatusCode::OK,
            &json!({"message": format!("{} left the class", body.name), "nodes": n,
                    "note": placement_note(before, n)}),
        ))
    }
}

/// Whether `node` may join `cluster`: `Some(index)` when it is in already (same name and
/// URL: a restarted laptop), `None` when it may join; else 409 (its name or its URL is
/// another node's) or 429 (the class is full).
fn admission(cluster: &Cluster, node: &NodeConfig) -> Result<Option<usize>, HttpError> {
    if let Some(i) = cluster.nodes.iter().position(|n| n.name == node.name) {
        return if cluster.nodes[i].url == node.url {
            Ok(Some(i))
        } else {
            Err(taken(&node.name, &cluster.nodes[i].url))
        };
    }
    // One laptop under two names would get two shares of the keys.
    if let Some(other) = cluster.nodes.iter().find(|n| same_url(&n.url, &node.url)) {
        return Err(url_taken(&node.url, &other.name));
    }
    let joined = cluster.nodes.iter().filter(|n| n.joined).count();
    if joined >= cluster.config.max_joined() {
        return Err(full(joined));
    }
    Ok(None)
}

/// The answer to a rejoin: nothing changes.
fn already_in(node: &NodeConfig, index: usize, nodes: usize) -> Response {
    http::json(
        StatusCode::OK,
        &json!({"message": format!("{} is already in the class", node.name),
                "name": node.name, "url": node.url, "index": index, "nodes": nodes}),
    )
}

fn taken(name: &str, url: &str) -> HttpError {
    HttpError::new(
        StatusCode::CONFLICT,
        format!("the name {name} is taken by {url}: pick another name (-n)"),
    )
}

fn url_taken(url: &str, name: &str) -> HttpError {
    HttpError::new(
        StatusCode::CONFLICT,
        format!("{url} is in the class already, as {name}: one node, one name"),
    )
}

/// The same node, whether or not one of the URLs ends in `/`.
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

fn full(joined: usize) -> HttpError {
    HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("the class is full: {joined} nodes have joined (max_joined in the config)"),
    )
}

/// Compares a token in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
