//! Carries out a mode's [`Plan`] over HTTP and turns the nodes' answers into one answer.
//!
//! - [`Plan::One`]: the node's answer comes back with its status and body.
//! - [`Plan::All`]: every node at once; 200 when at least one stored it, with each node's
//!   outcome listed; when every node gave the same client error (a 404 for a delete), that
//!   status; otherwise 502 with each node's reason (504 when every node timed out).
//! - [`Plan::FirstFound`]: one node after the other; the first 200 comes back; 404 only
//!   when every node answered 404 (a node that did not answer may hold the key, so then
//!   the read is unknown: 502, or 504 when every failure was a timeout).
//!
//! A node's answer is data, never a page: it goes out as `application/json` whatever
//! type the node declared (nodes in other languages send `text/plain`), and a body that
//! is not JSON is a 502 naming the node, so no node can serve script on the proxy's
//! origin. A node that answers `508 Loop Detected` leads back to a proxy already on the
//! request's path: that is said, naming the node.
//!
//! Every answer carries `X-Kv-Mode` and `X-Kv-Node` (the node or nodes that answered),
//! so `curl -i` shows where a key went.

use hyper::header::{HeaderName, HeaderValue};
use hyper::StatusCode;
use serde_json::{json, Value};
use storage::http::{self, HttpError, Response};

use crate::cluster::{Cluster, NodeAddr};
use crate::decide::{self, Said, Verdict};
use crate::each::each_node;
use crate::mode::Plan;
use crate::upstream::{Answer, NodeError, NodeRequest, Upstream};

pub const MODE_HEADER: HeaderName = HeaderName::from_static("x-kv-mode");
pub const NODE_HEADER: HeaderName = HeaderName::from_static("x-kv-node");

/// The proxy's answer, and the nodes that answered (for the log and the recent list).
pub struct Forwarded {
    pub response: Response,
    pub nodes: Vec<String>,
    /// Every node the request went to (or skipped), in order, with what came of it: the
    /// page's feed shows it as `kv1 ✗ timeout → kv2 200`.
    pub trail: Vec<Step>,
    /// What the nodes' answers added up to, when there is more to say than the status:
    /// `W=2: 2 of 3 stored it, quorum met`, `repaired kv1`.
    pub note: String,
}

/// One node on a request's way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    pub node: String,
    /// Its status (`"200"`), or why there was none (`"refused"`, `"timeout"`,
    /// `"skipped: down"`).
    pub outcome: String,
    /// It answered, and not with a failure of its own (a 404 is an answer; a 5xx or no
    /// answer is not).
    pub ok: bool,
}

impl Step {
    pub(crate) fn of(node: &NodeAddr, result: &Result<Answer, NodeError>) -> Step {
        let (outcome, ok) = match result {
            Ok(a) => (a.status.as_u16().to_string(), a.status.as_u16() < 500),
            Err(e) => match &e.failure {
                crate::upstream::Failure::Timeout(_) => ("timeout".to_string(), false),
                crate::upstream::Failure::Down(why) if why.starts_with("connection refused") => {
                    ("refused".to_string(), false)
                }
                crate::upstream::Failure::Down(_) => ("failed".to_string(), false),
            },
        };
        Step {
            node: node.name.clone(),
            outcome,
            ok,
        }
    }

    pub(crate) fn skipped(node: &NodeAddr) -> Step {
        Step {
            node: node.name.clone(),
            outcome: "skipped: down".into(),
            ok: false,
        }
    }
}

/// Sends `req` as `plan` says and builds the one answer the client gets.
pub async fn run(
    upstream: &Upstream,
    cluster: &Cluster,
    plan: Plan,
    req: NodeRequest,
) -> Forwarded {
    let n = cluster.nodes.len();
    let indices = plan.nodes();
    // A mode with a bug (a new one, say) gets a clear 500, not a panic.
    if indices.is_empty() || indices.iter().any(|&i| i >= n) {
        let why = format!(
            "mode {} planned {plan:?} over {n} nodes",
            cluster.mode.name()
        );
        return Forwarded {
            response: HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
            nodes: Vec::new(),
            trail: Vec::new(),
            note: String::new(),
        };
    }
    let mut out = match plan {
        Plan::One(i) => one(upstream, cluster, &cluster.nodes[i], &req).await,
        Plan::All(list) => all(upstream, cluster, &list, req).await,
        Plan::FirstFound(list) => first_found(upstream, cluster, &list, &req).await,
        Plan::Quorum(q) => crate::quorum::run(upstream, cluster, q, req).await,
    };
    let headers = out.response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(cluster.mode.name()) {
        headers.insert(MODE_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&out.nodes.join(",")) {
        headers.insert(NODE_HEADER, v);
    }
    out
}

async fn one(
    upstream: &Upstream,
    cluster: &Cluster,
    node: &NodeAddr,
    req: &NodeRequest,
) -> Forwarded {
    let result = upstream.send(node, req, cluster.timeout).await;
    let trail = vec![Step::of(node, &result)];
    let response = match result {
        Ok(answer) => as_data(node, answer),
        Err(e) => e.into_http_error().for_key(&req.key).into_response(),
    };
    Forwarded {
        response,
        nodes: vec![node.name.clone()],
        trail,
        note: String::new(),
    }
}

/// A node's answer as the proxy's own: its status and its JSON body, as JSON. A body
/// that is not JSON is the node's fault (502, naming it); a 508 is a loop.
pub(crate) fn as_data(node: &NodeAddr, answer: Answer) -> Response {
    if answer.status == StatusCode::LOOP_DETECTED {
        return HttpError::new(
            StatusCode::LOOP_DETECTED,
            format!(
                "node {} ({}) leads back to a proxy this request already went through (a loop): \
                 take it out of the nodes",
                node.name, node.url
            ),
        )
        .with("node", node.name.as_str())
        .into_response();
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(&answer.body).is_err() {
        let status = if answer.status.is_success() {
            StatusCode::BAD_GATEWAY
        } else {
            answer.status
        };
        return HttpError::new(
            status,
            format!(
                "node {} ({}) answered {} with a body that is not JSON{}",
                node.name,
                node.url,
                answer.status.as_u16(),
                match &answer.content_type {
                    Some(t) => format!(" ({})", String::from_utf8_lossy(t.as_bytes())),
                    None => String::new(),
                }
            ),
        )
        .with("node", node.name.as_str())
        .into_response();
    }
    http::bytes(answer.status, "application/json", answer.body)
}

/// An error about a key says which: `"key"` beside the error, and, for a failure of the
/// nodes (5xx), the key in the sentence too. A node's own 4xx sentence is passed on as it is.
pub(crate) trait ForKey {
    fn for_key(self, key: &Option<String>) -> Self;
}

impl ForKey for HttpError {
    fn for_key(mut self, key: &Option<String>) -> Self {
        if let Some(key) = key {
            if self.status.is_server_error() {
                self.message = format!("key {key:?}: {}", self.message);
            }
            self = self.with("key", key.as_str());
        }
        self
    }
}

/// One node's outcome, as listed in a replicated write's answer.
pub(crate) fn outcome(node: &NodeAddr, result: &Result<Answer, NodeError>) -> Value {
    match result {
        Ok(a) => {
            let answer: Value = serde_json::from_slice(&a.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&a.body).into_owned()));
            json!({"node": node.name, "status": a.status.as_u16(), "ok": a.status.is_success(),
                   "ms": a.latency.as_millis() as u64, "answer": answer})
        }
        Err(e) => {
            json!({"node": node.name, "url": node.url, "status": e.status().as_u16(), "ok": false,
                         "error": e.reason()})
        }
    }
}

/// The text of a node's `{"error": ...}`, if it sent one.
pub(crate) fn error_text(answer: &Answer) -> Option<String> {
    serde_json::from_slice::<Value>(&answer.body)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_string)
}

/// Why a node did not do it: its status and error, or why it did not answer.
pub(crate) fn reason(result: &Result<Answer, NodeError>) -> String {
    match result {
        Ok(a) => match error_text(a) {
            Some(e) => format!("{} {e}", a.status.as_u16()),
            None => format!("answered {}", a.status),
        },
        Err(e) => e.reason(),
    }
}

/// The error for nodes that failed: `what` and each node's reason, their outcomes beside.
fn failed<N: std::borrow::Borrow<NodeAddr>>(
    status: StatusCode,
    what: &str,
    results: &[(N, Result<Answer, NodeError>)],
    outcomes: Vec<Value>,
    key: &Option<String>,
) -> Response {
    let reasons: Vec<String> = results
        .iter()
        .map(|(n, r)| format!("{}: {}", n.borrow().name, reason(r)))
        .collect();
    HttpError::new(status, format!("{what} ({})", reasons.join("; ")))
        .with("nodes", outcomes)
        .for_key(key)
        .into_response()
}

/// Sends `req` to every node in `list` at once and waits for all of them (each is
/// bounded by the timeout), keeping the list's order.
pub async fn fan_out(
    upstream: &Upstream,
    cluster: &Cluster,
    list: &[usize],
    req: &NodeRequest,
) -> Vec<(NodeAddr, Result<Answer, NodeError>)> {
    let nodes = list.iter().map(|&i| cluster.nodes[i].clone()).collect();
    let (upstream, req, timeout) = (upstream.clone(), req.clone(), cluster.timeout);
    each_node(nodes, move |node| {
        let (upstream, req) = (upstream.clone(), req.clone());
        async move { upstream.send(&node, &req, timeout).await }
    })
    .await
    .into_iter()
    .map(|(node, r)| {
        let r = r.unwrap_or_else(|| Err(lost(&node)));
        (node, r)
    })
    .collect()
}

/// The nodes of `list` to ask and those to skip: a node marked down (it timed out
/// lately) is not waited for, unless every node is marked, when all are asked.
pub(crate) fn skip_marked(
    upstream: &Upstream,
    cluster: &Cluster,
    list: &[usize],
) -> (Vec<usize>, Vec<usize>) {
    let (ask, skip): (Vec<usize>, Vec<usize>) = list
        .iter()
        .partition(|&&i| !upstream.health.is_down(&cluster.nodes[i].base));
    if ask.is_empty() {
        (skip, Vec::new())
    } else {
        (ask, skip)
    }
}

/// A node that was not asked because it is marked down.
fn skipped(upstream: &Upstream, node: &NodeAddr) -> Value {
    let since = upstream.health.down_since(&node.base).unwrap_or(0);
    let labels = crate::metrics::NodeLabels {
        node: node.name.clone(),
    };
    upstream.skipped.get_or_create(&labels).inc();
    json!({"node": node.name, "url": node.url, "ok": false, "skipped": true,
           "error": format!("skipped: down since {} (it timed out; probed in the background)", clock(since))})
}

/// `HH:MM:SS` UTC of a time in ms since the epoch, for "down since".
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02} UTC", s / 3600 % 24, s / 60 % 60, s % 60)
}

async fn all(
    upstream: &Upstream,
    cluster: &Cluster,
    list: &[usize],
    req: NodeRequest,
) -> Forwarded {
    let (ask, mut skip) = skip_marked(upstream, cluster, list);
    let mut results = fan_out(upstream, cluster, &ask, &req).await;
    let stored_any = results
        .iter()
        .any(|(_, r)| r.as_ref().is_ok_and(|a| a.status.is_success()));
    if !stored_any && !skip.is_empty() {
        // It cannot succeed without the marked nodes: ask them after all.
        results.extend(fan_out(upstream, cluster, &skip, &req).await);
        skip.clear();
    }
    let mut outcomes: Vec<Value> = results.iter().map(|(n, r)| outcome(n, r)).collect();
    outcomes.extend(skip.iter().map(|&i| skipped(upstream, &cluster.nodes[i])));
    let stored: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.as_ref().is_ok_and(|a| a.status.is_success()))
        .map(|(n, _)| n.name.clone())
        .collect();
    let said: Vec<Said> = results.iter().map(|(_, r)| Said::of(r)).collect();
    let response = match decide::write(&said) {
        Verdict::Done(n) => http::json(
            StatusCode::OK,
            &json!({"message": format!("done on {n} of {} nodes", list.len()),
                    "nodes": outcomes}),
        ),
        // Every node answered the same client error (404 for a delete, 400 for a bad
        // body): that is the answer, not a failure of the nodes.
        Verdict::Refused(same) => {
            let first = match &results[0].1 {
                Ok(a) => error_text(a).unwrap_or_else(|| format!("every node answered {same}")),
                Err(e) => e.reason(),
            };
            HttpError::new(same, first)
                .with("nodes", outcomes)
                .for_key(&req.key)
                .into_response()
        }
        // (A write is never "not found": that is a read's verdict.)
        Verdict::Failed(status) => failed(status, "no node did it", &results, outcomes, &req.key),
        Verdict::NotFound => failed(
            StatusCode::BAD_GATEWAY,
            "no node did it",
            &results,
            outcomes,
            &req.key,
        ),
    };
    let nodes = if stored.is_empty() {
        results.iter().map(|(n, _)| n.name.clone()).collect()
    } else {
        stored
    };
    let mut trail: Vec<Step> = results.iter().map(|(n, r)| Step::of(n, r)).collect();
    trail.extend(skip.iter().map(|&i| Step::skipped(&cluster.nodes[i])));
    Forwarded {
        response,
        nodes,
        trail,
        note: String::new(),
    }
}

/// A task that panicked: reported like a node that failed, so the answer is still whole.
pub(crate) fn lost(node: &NodeAddr) -> NodeError {
    NodeError {
        node: node.name.clone(),
        url: node.url.clone(),
        failure: crate::upstream::Failure::Down("the request to it was lost".into()),
    }
}

async fn first_found(
    upstream: &Upstream,
    cluster: &Cluster,
    list: &[usize],
    req: &NodeRequest,
) -> Forwarded {
    let mut tried: Vec<(&NodeAddr, Result<Answer, NodeError>)> = Vec::new();
    // Nodes marked down are asked last: the next replica answers at once.
    let (up, down) = skip_marked(upstream, cluster, list);
    for i in up.into_iter().chain(down) {
        let node = &cluster.nodes[i];
        let result = upstream.send(node, req, cluster.timeout).await;
        if decide::read_ends(Said::of(&result)) {
            if let Ok(answer) = &result {
                let mut trail: Vec<Step> = tried.iter().map(|(n, r)| Step::of(n, r)).collect();
                trail.push(Step::of(node, &result));
                return Forwarded {
                    response: as_data(node, answer.clone()),
                    nodes: vec![node.name.clone()],
                    trail,
                    note: String::new(),
                };
            }
        }
        tried.push((node, result));
    }
    let outcomes: Vec<Value> = tried.iter().map(|(n, r)| outcome(n, r)).collect();
    let said: Vec<Said> = tried.iter().map(|(_, r)| Said::of(r)).collect();
    let response = match decide::read(&said) {
        Verdict::NotFound => HttpError::new(StatusCode::NOT_FOUND, "key not found on any node")
            .with("nodes", outcomes)
            .for_key(&req.key)
            .into_response(),
        Verdict::Failed(status) => failed(
            status,
            "the read is unknown: no node that may hold the key answered it",
            &tried,
            outcomes,
            &req.key,
        ),
        // (A read is "done" at its first 200, above; it is never refused.)
        Verdict::Done(_) | Verdict::Refused(_) => failed(
            StatusCode::BAD_GATEWAY,
            "no node answered",
            &tried,
            outcomes,
            &req.key,
        ),
    };
    Forwarded {
        response,
        nodes: tried.iter().map(|(n, _)| n.name.clone()).collect(),
        trail: tried.iter().map(|(n, r)| Step::of(n, r)).collect(),
        note: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::mode::{Mode, Op};

    /// A mode with a bug: it names a node that is not there.
    struct OffByOne;

    impl Mode for OffByOne {
        fn name(&self) -> &'static str {
            "off-by-one"
        }
        fn rule(&self) -> &'static str {
            "a broken rule"
        }
        fn placement(
            &self,
            names: Vec<String>,
            _params: &crate::mode::Params,
        ) -> Arc<dyn crate::placement::Placement> {
            Arc::new(crate::placement::everywhere::Everywhere { names })
        }
        fn plan(&self, _op: Op, homes: Vec<usize>) -> Plan {
            Plan::One(homes.len())
        }
    }

    /// A mode that plans a node out of range gets a 500 naming the mode, not a panic.
    #[tokio::test]
    async fn a_plan_out_of_range_is_a_500() {
        let config =
            Config::parse("mode: sharding\nnodes:\n  - name: kv1\n    url: http://127.0.0.1:9\n")
                .unwrap();
        let mut cluster = Cluster::new(config, &[]);
        cluster.mode = Arc::new(OffByOne);
        let plan = cluster.plan(Op::Read, "k");
        let out = run(
            &Upstream::new(),
            &cluster,
            plan,
            NodeRequest::get("/get?key=k"),
        )
        .await;
        assert_eq!(out.response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(out.nodes.is_empty());
    }
}
