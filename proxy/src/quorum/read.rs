//! A read under quorums: R homes at once, the newest copy wins, stale copies repaired.

use std::collections::VecDeque;

use hyper::StatusCode;
use serde_json::{json, Value};
use storage::http::{self, HttpError, Response};
use tokio::task::JoinSet;

use super::{preference, repair, repair_request, set, Kind, Seen};
use super::{QUORUM_HEADER, REPAIRED_HEADER};
use crate::cluster::{Cluster, NodeAddr};
use crate::forward::{self, ForKey, Forwarded, Step};
use crate::mode::Quorum;
use crate::upstream::{Answer, NodeError, NodeRequest, Upstream};

/// One home's answer to a read.
struct Heard {
    node: NodeAddr,
    result: Result<Answer, NodeError>,
}

impl Heard {
    /// It answered for the key (a 200 or a 404), rather than failing.
    fn seen(&self) -> Option<Seen> {
        match &self.result {
            Ok(a) if a.status == StatusCode::OK || a.status == StatusCode::NOT_FOUND => {
                Some(Seen::of(a))
            }
            _ => None,
        }
    }
}

pub(super) async fn read(
    upstream: &Upstream,
    cluster: &Cluster,
    q: Quorum,
    req: NodeRequest,
) -> Forwarded {
    // Homes marked down are asked last: the next copy answers at once.
    let (up, down) = forward::skip_marked(upstream, cluster, &q.homes);
    let mut order: VecDeque<NodeAddr> = up
        .into_iter()
        .chain(down)
        .map(|i| cluster.nodes[i].clone())
        .collect();
    let ask = if q.all { q.homes.len() } else { q.need };
    let mut tasks = JoinSet::new();
    let send = |tasks: &mut JoinSet<Heard>, node: NodeAddr| {
        let (upstream, req, timeout) = (upstream.clone(), req.clone(), cluster.timeout);
        tasks.spawn(async move {
            let result = upstream.send(&node, &req, timeout).await;
            Heard { node, result }
        });
    };
    for _ in 0..ask {
        if let Some(node) = order.pop_front() {
            send(&mut tasks, node);
        }
    }
    let mut heard: Vec<Heard> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let Ok(h) = done else { continue };
        if h.seen().is_none() {
            // A home that failed is replaced by the next, so R answers may still come.
            if let Some(node) = order.pop_front() {
                send(&mut tasks, node);
            }
        }
        heard.push(h);
    }
    let answered: Vec<(&Heard, Seen)> = heard
        .iter()
        .filter_map(|h| h.seen().map(|s| (h, s)))
        .collect();
    let copies = q.homes.len();
    let r = cluster.consistency.read_quorum.map(|r| r.label());
    let quorum = format!("R={}", r.unwrap_or_else(|| q.need.to_string()));
    let mut trail: Vec<Step> = heard.iter().map(|h| Step::of(&h.node, &h.result)).collect();
    let outcomes = || -> Vec<Value> {
        heard
            .iter()
            .map(|h| forward::outcome(&h.node, &h.result))
            .collect()
    };
    if answered.len() < q.need {
        let reasons: Vec<String> = heard
            .iter()
            .map(|h| format!("{}: {}", h.node.name, forward::reason(&h.result)))
            .collect();
        let response = HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "read quorum not met ({quorum}): {} of {} needed copies answered, so the newest \
                 value is unknown ({})",
                answered.len(),
                q.need,
                reasons.join("; ")
            ),
        )
        .with("acked", answered.len())
        .with("needed", q.need)
        .with("nodes", outcomes())
        .for_key(&req.key)
        .into_response();
        let mut out = Forwarded {
            response,
            nodes: heard.iter().map(|h| h.node.name.clone()).collect(),
            trail,
            note: format!(
                "{}; {quorum}: {} of {copies} answered, quorum NOT met",
                preference(cluster, &q),
                answered.len()
            ),
        };
        set(
            &mut out.response,
            QUORUM_HEADER,
            &format!("{}/{copies}", answered.len()),
        );
        return out;
    }
    let newest = answered
        .iter()
        .map(|(_, s)| s.clone())
        .max()
        .unwrap_or(Seen::Missing);
    if let Seen::Versioned(v, _) = &newest {
        upstream.clock.observe(v);
    }
    let agreed = answered.iter().filter(|(_, s)| *s == newest).count();
    let winner = answered.iter().find(|(_, s)| *s == newest).map(|(h, _)| *h);
    let stale: Vec<NodeAddr> = answered
        .iter()
        .filter(|(_, s)| *s < newest)
        .map(|(h, _)| h.node.clone())
        .collect();
    let mut repaired = Vec::new();
    if q.repair && !stale.is_empty() && newest != Seen::Missing {
        let value = winner
            .and_then(|w| w.result.as_ref().ok())
            .and_then(raw_value);
        let fix = req
            .key
            .as_deref()
            .and_then(|k| repair_request(k, &newest, value.as_deref()));
        if let Some(mut fix) = fix {
            fix.via = req.via.clone();
            repaired = repair(upstream, cluster, &stale, &fix).await;
        }
    }
    for step in trail.iter_mut() {
        if repaired.contains(&step.node) {
            step.outcome = format!("{} → repaired", step.outcome);
        } else if stale.iter().any(|s| s.name == step.node) {
            step.outcome = format!("{} (stale)", step.outcome);
        }
    }
    let mut response = match (winner, newest.is_value()) {
        (Some(w), true) => value_answer(w, &req, &newest, agreed, copies, &repaired),
        _ => {
            let mut e = HttpError::new(
                StatusCode::NOT_FOUND,
                if matches!(newest, Seen::Versioned(_, Kind::Deleted)) {
                    "key not found: it was deleted (the newest copy is a tombstone)"
                } else {
                    "key not found on any copy asked"
                },
            )
            .with("nodes", outcomes())
            .for_key(&req.key);
            if !repaired.is_empty() {
                e = e.with("repaired", repaired.clone());
            }
            e.into_response()
        }
    };
    set(&mut response, QUORUM_HEADER, &format!("{agreed}/{copies}"));
    if !repaired.is_empty() {
        set(&mut response, REPAIRED_HEADER, &repaired.join(","));
    }
    let mut note = format!(
        "{}; {quorum}: {agreed} of {copies} copies agree on the newest, quorum met",
        preference(cluster, &q)
    );
    if !repaired.is_empty() {
        note.push_str(&format!(", repaired {}", repaired.join(", ")));
    } else if !stale.is_empty() {
        let names: Vec<&str> = stale.iter().map(|n| n.name.as_str()).collect();
        note.push_str(&format!(", stale: {}", names.join(", ")));
    }
    Forwarded {
        response,
        nodes: winner
            .map(|w| vec![w.node.name.clone()])
            .unwrap_or_default(),
        trail,
        note,
    }
}

/// The read's 200: the newest value, where it came from, and what agreed and healed.
fn value_answer(
    winner: &Heard,
    req: &NodeRequest,
    newest: &Seen,
    agreed: usize,
    copies: usize,
    repaired: &[String],
) -> Response {
    let Ok(answer) = &winner.result else {
        return HttpError::new(StatusCode::BAD_GATEWAY, "the newest copy went missing")
            .into_response();
    };
    let Some(value) = raw_value(answer) else {
        // Not JSON with a value: the usual 502 that names the node.
        return forward::as_data(&winner.node, answer.clone());
    };
    let version = match newest {
        Seen::Versioned(v, _) => json!(v.to_string()),
        _ => Value::Null,
    };
    let text = format!(
        "{{\"value\":{value},\"key\":{},\"node\":{},\"version\":{version},\"quorum\":\"{agreed}/{copies}\",\"repaired\":{}}}",
        json!(req.key),
        json!(winner.node.name),
        json!(repaired)
    );
    http::json_text(StatusCode::OK, text)
}

/// The `value` of a node's `{"value": ...}` answer, as the JSON text it came as.
fn raw_value(answer: &Answer) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        value: &'a serde_json::value::RawValue,
    }
    serde_json::from_slice::<Body>(&answer.body)
        .ok()
        .map(|b| b.value.get().to_string())
}
