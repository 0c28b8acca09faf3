//! Students' nodes joining and leaving the class: `POST /join` and `POST /leave`.
//!
//! A node asks to join with `Authorization: Bearer <join_token>` and
//! `{"name": "alice", "url": "https://alice.ngrok-free.app"}` (or `{"name", "port"}`,
//! and the proxy uses the address the request came from: the classroom-LAN case).
//! The proxy checks, in this order, and answers:
//! 403 joining is off (no `join_token` in the config) · 401 wrong or missing token
//! (429 after ten wrong ones in a minute) · 400 a bad name or URL, or an address a node
//! may not have ([`crate::address`]) · 409 the name belongs to another URL (without
//! that node's secret), or the URL to another name · 429 the class is full ·
//! 422 the URL does not speak the API · 200 joined, with a `secret`.
//!
//! The secret is the node's identity: `/leave`, and taking the name under another URL,
//! need it (or the teacher's `admin_token`), so one student cannot evict or impersonate
//! another. A rejoin with the same name and URL needs none: a node that restarted since
//! (a new `instance` in its `/health`: the laptop lost its secret) gets a new one, anyone
//! else gets none ([`rejoin`]). A refused join never echoes what the URL answered: the
//! proxy must not become a way to read the teacher's network.
//!
//! Joined nodes come after the config file's nodes, survive reloads of the file, and
//! never write the file: `GET /config` shows the whole class as YAML to save.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use storage::http::{self, HttpError, Response};

use crate::address::{self, NodeUrl};
use crate::cluster::{Cluster, Joined, NodeAddr};
use crate::config::{self, NodeConfig};
use crate::{doctor, guard, secret, Proxy};

/// The largest join or leave body read.
const MAX_BODY: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    name: String,
    /// The URL the node is reached at; without it, the request's source address and `port`.
    url: Option<String>,
    port: Option<u16>,
    /// The secret a previous join handed out: lets the node move to another URL.
    secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveBody {
    name: String,
    secret: Option<String>,
}

/// Who is asking: a student (the class's join token) or the teacher (the admin token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Class,
    Teacher,
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
    /// 403 when joining is off, 401 for a wrong token (429 after too many); the role and
    /// the body, parsed, otherwise.
    async fn authorized<T: for<'de> Deserialize<'de>>(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<(Role, T), HttpError> {
        let cluster = self.live.get();
        let config = &cluster.config;
        let Some(token) = config.join_token.as_deref() else {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "joining is off on this proxy: the teacher adds `join_token: <a secret>` to its config to turn it on",
            ));
        };
        let headers = req.headers();
        let role = if guard::carries(headers, token) {
            Role::Class
        } else if config
            .admin_token
            .as_deref()
            .is_some_and(|admin| guard::carries(headers, admin))
        {
            Role::Teacher
        } else {
            let client = guard::client(peer, headers);
            self.throttle.check(client)?;
            self.throttle.failed(client);
            return Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                "wrong or missing join token: send `Authorization: Bearer <token>` (storage --join-token)",
            ));
        };
        let timeout = config.limits().body_timeout;
        let body = http::read_body(req, MAX_BODY, timeout).await?;
        let parsed = serde_json::from_slice(&body).map_err(|e| {
            HttpError::new(StatusCode::BAD_REQUEST, format!("the body must be JSON like {{\"name\": \"alice\", \"url\": \"https://...\"}}: {e}"))
        })?;
        Ok((role, parsed))
    }

    pub(crate) async fn join(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response, HttpError> {
        let (role, body): (Role, JoinBody) = self.authorized(req, peer).await?;
        let bad = |why: String| HttpError::new(StatusCode::BAD_REQUEST, why);
        let url = match (body.url, body.port) {
            (Some(url), _) => url,
            (None, Some(port)) => match peer.ip() {
                std::net::IpAddr::V4(ip) => format!("http://{ip}:{port}"),
                std::net::IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
            },
            (None, None) => {
                return Err(bad(
                    "say where the node is: \"url\" (storage --advertise) or \"port\"".into(),
                ))
            }
        };
        let node = NodeConfig {
            name: body.name,
            url,
        };
        config::check_node(&node.name, &node.url).map_err(bad)?;
        let parsed = NodeUrl::parse(&node.url).map_err(bad)?;
        let rules = self.upstream.rules();
        address::check(&parsed, &rules, &self.upstream.lookup)
            .await
            .map_err(|why| bad(format!("{} may not join: {why}", node.url)))?;
        // Cheap refusals first, then the API check (which takes a few round trips).
        let cluster = self.live.get();
        let secret_now = |name: &str| self.live.joined(name).map(|j| j.secret);
        let first = admission(&cluster, &node, role, body.secret.as_deref(), &secret_now)?;
        let addr = NodeAddr::new(&node, true);
        if first == Admission::New || first == Admission::Moves {
            let report = doctor::check_node(&self.upstream, &addr, cluster.timeout).await;
            if let Some(why) = report.first_failure() {
                // The teacher's terminal may see what the URL answered; the asker may not.
                tracing::warn!("node {} ({}) may not join: {why}", node.name, node.url);
                return Err(HttpError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "{} did not pass the API check (put, get and delete a throwaway key, a \
                         missing key answers 404, /state is a page): run `proxy doctor --node {}` \
                         on the node's machine to see why",
                        node.url, node.url
                    ),
                ));
            }
        }
        let instance = self.instance_of(&addr, cluster.timeout).await;
        let fresh = secret::random_hex(16);
        // Checked again under the lock: another join may have come in meanwhile.
        let ((admitted, given, before), after) = self.live.change_joined(|current, joined| {
            let secret_of = |name: &str| {
                joined
                    .iter()
                    .find(|j| j.node.name == name)
                    .map(|j| j.secret.clone())
            };
            let admitted = admission(current, &node, role, body.secret.as_deref(), &secret_of)?;
            let before = current.nodes.len();
            let at = joined.iter().position(|j| j.node.name == node.name);
            let given = match (admitted, at) {
                // A node of the config file: nothing to remember, no secret to give.
                (Admission::Already, None) => None,
                (Admission::Already, Some(i)) => {
                    rejoin(&mut joined[i], role, &body.secret, &instance, &fresh)
                }
                (Admission::New | Admission::Moves, _) => {
                    joined.retain(|j| j.node.name != node.name);
                    joined.push(Joined {
                        node: node.clone(),
                        secret: fresh.clone(),
                        instance: instance.clone(),
                    });
                    Some(fresh.clone())
                }
            };
            Ok::<_, HttpError>((admitted, given, before))
        })?;
        let index = after
            .nodes
            .iter()
            .position(|n| n.name == node.name)
            .unwrap_or(0);
        let n = after.nodes.len();
        let message = match admitted {
            Admission::Already if given.is_none() && after.nodes[index].joined => format!(
                "{} is already in the class (its secret stays with the node that joined)",
                node.name
            ),
            Admission::Already => format!("{} is already in the class", node.name),
            Admission::Moves => {
                tracing::info!("node {} moved to {}", node.name, node.url);
                format!("{} is in the class, now at {}", node.name, node.url)
            }
            Admission::New => {
                tracing::info!("node {} joined from {}: now {n} nodes", node.name, node.url);
                self.recent.event(
                    "joined",
                    format!("{} joined from {}: {n} nodes", node.name, node.url),
                );
                self.nodes_changed(before, n);
                format!("{} is in the class, node {} of {n}", node.name, index + 1)
            }
        };
        let note = (n != before).then(|| placement_note(before, n));
        Ok(http::json(
            StatusCode::OK,
            &json!({"message": message, "name": node.name, "url": node.url, "index": index,
                    "nodes": n, "secret": given, "note": note}),
        ))
    }

    pub(crate) async fn leave(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response, HttpError> {
        let (role, body): (Role, LeaveBody) = self.authorized(req, peer).await?;
        let before = self.live.get().nodes.len();
        let (_, after) = self.live.change_joined(|current, joined| {
            if current.config.nodes.iter().any(|n| n.name == body.name) {
                return Err(HttpError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "{} is in the config file, so it stays; the teacher removes it there",
                        body.name
                    ),
                ));
            }
            let Some(i) = joined.iter().position(|j| j.node.name == body.name) else {
                return Err(HttpError::new(
                    StatusCode::NOT_FOUND,
                    format!("no joined node is called {}", body.name),
                ));
            };
            if !holds_secret(role, &joined[i], body.secret.as_deref()) {
                return Err(HttpError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "only {} itself (with the secret its join was given) or the teacher \
                         (admin token) may take it out of the class",
                        body.name
                    ),
                ));
            }
            joined.remove(i);
            Ok(())
        })?;
        let n = after.nodes.len();
        tracing::info!("node {} left: now {n} nodes", body.name);
        self.recent
            .event("left", format!("{} left the class: {n} nodes", body.name));
        self.nodes_changed(before, n);
        Ok(http::json(
            StatusCode::OK,
            &json!({"message": format!("{} left the class", body.name), "nodes": n,
                    "note": placement_note(before, n)}),
        ))
    }
}

/// The secret a rejoin under the same name and URL gets: its own back when it shows it;
/// a new one when the node restarted since it joined (a new `instance`: the laptop lost
/// its secret) or the teacher asks; none otherwise, so a classmate who rejoins under
/// another's name and URL learns nothing that would let them evict or move it.
fn rejoin(
    joined: &mut Joined,
    role: Role,
    shown: &Option<String>,
    instance: &Option<String>,
    fresh: &str,
) -> Option<String> {
    if shown
        .as_deref()
        .is_some_and(|s| secret::same(s, &joined.secret))
    {
        return Some(joined.secret.clone());
    }
    let restarted = instance.is_some() && *instance != joined.instance;
    if restarted || role == Role::Teacher {
        joined.secret = fresh.to_string();
        joined.instance.clone_from(instance);
        return Some(joined.secret.clone());
    }
    None
}

impl Proxy {
    /// The node's `instance` from its `/health` (our nodes send one; others do not).
    async fn instance_of(&self, node: &NodeAddr, timeout: std::time::Duration) -> Option<String> {
        let answer = self
            .upstream
            .send(node, &crate::upstream::NodeRequest::get("/health"), timeout)
            .await
            .ok()?;
        let health: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
        health.get("instance")?.as_str().map(str::to_string)
    }
}

/// What a join does to the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// The same name at the same URL: a restarted laptop, or a classmate (see [`rejoin`]).
    Already,
    /// A joined name moves to another URL (its secret or the teacher said so).
    Moves,
    /// A new node.
    New,
}

/// Whether `node` may join `cluster`; else 409 (its name or its URL is another node's)
/// or 429 (the class is full).
fn admission(
    cluster: &Cluster,
    node: &NodeConfig,
    role: Role,
    secret: Option<&str>,
    secret_of: &dyn Fn(&str) -> Option<String>,
) -> Result<Admission, HttpError> {
    // One laptop under two names (or `localhost` and `127.0.0.1`) would get two shares.
    if let Some(other) = cluster
        .nodes
        .iter()
        .find(|n| n.name != node.name && address::same_node(&n.url, &node.url))
    {
        return Err(url_taken(&node.url, &other.name));
    }
    if let Some(i) = cluster.nodes.iter().position(|n| n.name == node.name) {
        let current = &cluster.nodes[i];
        if address::same_node(&current.url, &node.url) {
            return Ok(Admission::Already);
        }
        let may_move = current.joined
            && (role == Role::Teacher
                || secret.is_some_and(|s| {
                    secret_of(&node.name).is_some_and(|own| secret::same(s, &own))
                }));
        return if may_move {
            Ok(Admission::Moves)
        } else {
            Err(taken(&node.name, &current.url))
        };
    }
    let joined = cluster.nodes.iter().filter(|n| n.joined).count();
    if joined >= cluster.config.max_joined() {
        return Err(full(joined));
    }
    Ok(Admission::New)
}

/// Whether a leave may remove `joined`: the teacher may, the node itself with its secret.
fn holds_secret(role: Role, joined: &Joined, secret: Option<&str>) -> bool {
    role == Role::Teacher || secret.is_some_and(|s| secret::same(s, &joined.secret))
}

fn taken(name: &str, url: &str) -> HttpError {
    HttpError::new(
        StatusCode::CONFLICT,
        format!(
            "the name {name} is taken by {url}: pick another name (-n); moving it to another \
             URL needs the secret its join was given, or the teacher"
        ),
    )
}

fn url_taken(url: &str, name: &str) -> HttpError {
    HttpError::new(
        StatusCode::CONFLICT,
        format!("{url} is in the class already, as {name}: one node, one name"),
    )
}

fn full(joined: usize) -> HttpError {
    HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("the class is full: {joined} nodes have joined (max_joined in the config)"),
    )
}
