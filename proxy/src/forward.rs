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

use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use serde_json::{json, Value};
use storage::http::{self, HttpError, Response};

use crate::cluster::{Cluster, NodeAddr};
use crate::each::each_node;
use crate::mode::Plan;
use crate::upstream::{Answer, NodeError, NodeRequest, Upstream};

pub const MODE_HEADER: HeaderName = HeaderName::from_static("x-kv-mode");
pub const NODE_HEADER: HeaderName = HeaderName::from_static("x-kv-node");

/// The proxy's answer, and the nodes that answered (for the log and the recent list).
pub struct Forwarded {
    pub response: Response,
    pub nodes: Vec<String>,
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
        };
    }
    let mut out = match plan {
        Plan::One(i) => one(upstream, cluster, &cluster.nodes[i], &req).await,
        Plan::All(list) => all(upstream, cluster, &list, req).await,
        Plan::FirstFound(list) => first_found(upstream, cluster, &list, &req).await,
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
    let response = match upstream.send(node, req, cluster.timeout).await {
        Ok(answer) => as_data(node, answer),
        Err(e) => e.into_http_error().into_response(),
    };
    Forwarded {
        response,
        nodes: vec![node.name.clone()],
    }
}

/// A node's answer as the proxy's own: its status and its JSON body, as JSON. A body
/// that is not JSON is the node's fault (502, naming it); a 508 is a loop.
fn as_data(node: &NodeAddr, answer: Answer) -> Response {
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
    let mut res = hyper::Response::new(Full::new(answer.body));
    *res.status_mut() = answer.status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// One node's outcome, as listed in a replicated write's answer.
fn outcome(node: &NodeAddr, result: &Result<Answer, NodeError>) -> Value {
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
fn error_text(answer: &Answer) -> Option<String> {
    serde_json::from_slice::<Value>(&answer.body)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_string)
}

/// Why a node did not do it: its status and error, or why it did not answer.
fn reason(result: &Result<Answer, NodeError>) -> String {
    match result {
        Ok(a) => match error_text(a) {
            Some(e) => format!("{} {e}", a.status.as_u16()),
            None => format!("answered {}", a.status),
        },
        Err(e) => e.reason(),
    }
}

/// 504 when every node timed out (the nodes are slow or black holes), else 502.
fn failure_status<'a>(
    results: impl IntoIterator<Item = &'a Result<Answer, NodeError>>,
) -> StatusCode {
    let mut results = results.into_iter().peekable();
    let timed_out = results.peek().is_some()
        && results.all(|r| {
            r.as_ref()
                .is_err_and(|e| e.status() == StatusCode::GATEWAY_TIMEOUT)
        });
    if timed_out {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    }
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

async fn all(
    upstream: &Upstream,
    cluster: &Cluster,
    list: &[usize],
    req: NodeRequest,
) -> Forwarded {
    let results = fan_out(upstream, cluster, list, &req).await;
    let outcomes: Vec<Value> = results.iter().map(|(n, r)| outcome(n, r)).collect();
    let stored: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.as_ref().is_ok_and(|a| a.status.is_success()))
        .map(|(n, _)| n.name.clone())
        .collect();
    let statuses: Vec<Option<StatusCode>> = results
        .iter()
        .map(|(_, r)| r.as_ref().ok().map(|a| a.status))
        .collect();
    let response = if !stored.is_empty() {
        http::json(
            StatusCode::OK,
            &json!({"message": format!("done on {} of {} nodes", stored.len(), list.len()),
                    "nodes": outcomes}),
        )
    } else if let Some(same) = statuses
        .first()
        .copied()
        .flatten()
        .filter(|s| s.is_client_error() && statuses.iter().all(|x| *x == Some(*s)))
    {
        // Every node answered the same client error (404 for a delete, 400 for a bad
        // body): that is the answer, not a failure of the nodes.
        let first = match &results[0].1 {
            Ok(a) => error_text(a).unwrap_or_else(|| format!("every node answered {same}")),
            Err(e) => e.reason(),
        };
        HttpError::new(same, first)
            .with("nodes", outcomes)
            .into_response()
    } else {
        let reasons: Vec<String> = results
            .iter()
            .map(|(n, r)| format!("{}: {}", n.name, reason(r)))
            .collect();
        HttpError::new(
            failure_status(results.iter().map(|(_, r)| r)),
            format!("no node did it ({})", reasons.join("; ")),
        )
        .with("nodes", outcomes)
        .into_response()
    };
    let nodes = if stored.is_empty() {
        results.iter().map(|(n, _)| n.name.clone()).collect()
    } else {
        stored
    };
    Forwarded { response, nodes }
}

/// A task that panicked: reported like a node that failed, so the answer is still whole.
fn lost(node: &NodeAddr) -> NodeError {
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
    for &i in list {
        let node = &cluster.nodes[i];
        let result = upstream.send(node, req, cluster.timeout).await;
        if let Ok(answer) = &result {
            if answer.status == StatusCode::OK {
                return Forwarded {
                    response: as_data(node, answer.clone()),
                    nodes: vec![node.name.clone()],
                };
            }
        }
        tried.push((node, result));
    }
    let outcomes: Vec<Value> = tried.iter().map(|(n, r)| outcome(n, r)).collect();
    // Not found only when every node said so: one that did not answer may hold it.
    let all_said_404 = tried
        .iter()
        .all(|(_, r)| r.as_ref().is_ok_and(|a| a.status == StatusCode::NOT_FOUND));
    let response = if all_said_404 {
        HttpError::new(StatusCode::NOT_FOUND, "key not found on any node")
            .with("nodes", outcomes)
            .into_response()
    } else {
        let status = failure_status(tried.iter().map(|(_, r)| r));
        let reasons: Vec<String> = tried
            .iter()
            .map(|(n, r)| format!("{}: {}", n.name, reason(r)))
            .collect();
        HttpError::new(
            status,
            format!(
                "the read is unknown: no node that may hold the key answered it ({})",
                reasons.join("; ")
            ),
        )
        .with("nodes", outcomes)
        .into_response()
    };
    Forwarded {
        response,
        nodes: tried.iter().map(|(n, _)| n.name.clone()).collect(),
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
        fn plan(&self, _op: Op, _key: &str, nodes: usize) -> Plan {
            Plan::One(nodes)
        }
        fn rule(&self) -> &'static str {
            "a broken rule"
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
        let plan = cluster.mode.plan(Op::Read, "k", 1);
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
