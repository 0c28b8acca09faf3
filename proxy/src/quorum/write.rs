//! A write under quorums: to every home at once, answered once W stored it (hints on
//! spares count), carried on in the background for the rest.

use std::collections::VecDeque;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use storage::http::{self, encode_component, HttpError};
use tokio::task::JoinSet;

use super::{preference, set, QUORUM_HEADER};
use crate::cluster::{Cluster, NodeAddr};
use crate::decide::{self, Said, Verdict};
use crate::forward::{self, ForKey, Forwarded, Step};
use crate::mode::Quorum;
use crate::upstream::{Answer, NodeError, NodeRequest, Upstream};

/// One node's part in a write: its own copy, or a hint kept for a home that failed.
struct Ack {
    node: NodeAddr,
    hint_for: Option<String>,
    result: Result<Answer, NodeError>,
}

impl Ack {
    /// It took the write: stored it, or (a delete) recorded the tombstone — a node with
    /// no live copy says 404 and keeps the tombstone all the same.
    fn took(&self, delete: bool) -> bool {
        match &self.result {
            Ok(_) if self.hint_for.is_some() => self.kept_hint(),
            Ok(a) => a.status.is_success() || (delete && a.status == StatusCode::NOT_FOUND),
            Err(_) => false,
        }
    }

    /// A spare that kept the write as a hint says so (`"message": "hint stored"`). A node
    /// in another language ignores `&hint=` and stores the key as its own: that is no
    /// hint (nothing would ever send it home), so it does not count.
    fn kept_hint(&self) -> bool {
        self.result.as_ref().is_ok_and(|a| {
            a.status.is_success()
                && serde_json::from_slice::<Value>(&a.body)
                    .is_ok_and(|v| v["message"] == "hint stored")
        })
    }

    fn step(&self) -> Step {
        let mut step = Step::of(&self.node, &self.result);
        if let Some(home) = &self.hint_for {
            step.outcome = format!("{} (hint for {home})", step.outcome);
        }
        step
    }

    fn outcome(&self) -> Value {
        let mut v = forward::outcome(&self.node, &self.result);
        if let Some(home) = &self.hint_for {
            v["hint_for"] = json!(home);
        }
        v
    }
}

/// What the write came to when it was decided, sent from the task that carries it on.
struct Decided {
    acks: Vec<Ack>,
    skipped: Vec<NodeAddr>,
}

pub(super) async fn write(
    upstream: &Upstream,
    cluster: &Cluster,
    q: Quorum,
    req: NodeRequest,
) -> Forwarded {
    let delete = req.method == Method::DELETE || req.path_and_query.starts_with("/delete");
    let homes: Vec<NodeAddr> = q.homes.iter().map(|&i| cluster.nodes[i].clone()).collect();
    let mut spares: VecDeque<NodeAddr> =
        q.spares.iter().map(|&i| cluster.nodes[i].clone()).collect();
    let (upstream_c, timeout, need, all) = (upstream.clone(), cluster.timeout, q.need, q.all);
    let handoff = !q.spares.is_empty();
    let key = req.key.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<Decided>();
    // The write goes on after the answer (the homes past W still get it): it runs in a
    // task of its own, which sends what it knows once the quorum is decided.
    tokio::spawn(async move {
        let upstream = upstream_c;
        let mut tasks = JoinSet::new();
        let mut skipped = Vec::new();
        let send = |tasks: &mut JoinSet<Ack>, node: NodeAddr, hint_for: Option<String>| {
            let (upstream, mut req) = (upstream.clone(), req.clone());
            if let Some(home) = &hint_for {
                req.path_and_query =
                    format!("{}&hint={}", req.path_and_query, encode_component(home));
            }
            tasks.spawn(async move {
                let result = upstream.send(&node, &req, timeout).await;
                Ack {
                    node,
                    hint_for,
                    result,
                }
            });
        };
        // A spare stands in for a failed home: the first spare not marked down.
        let stand_in = |spares: &mut VecDeque<NodeAddr>| -> Option<NodeAddr> {
            let up = spares
                .iter()
                .position(|s| !upstream.health.is_down(&s.base));
            up.and_then(|i| spares.remove(i))
                .or_else(|| spares.pop_front())
        };
        for home in homes {
            if handoff && upstream.health.is_down(&home.base) {
                // Known down: not waited for; its hint goes to a spare at once.
                if let Some(spare) = stand_in(&mut spares) {
                    send(&mut tasks, spare, Some(home.name.clone()));
                    skipped.push(home);
                    continue;
                }
            }
            send(&mut tasks, home, None);
        }
        let mut acks: Vec<Ack> = Vec::new();
        let mut tx = Some(tx);
        while let Some(done) = tasks.join_next().await {
            let Ok(mut ack) = done else { continue };
            if ack.hint_for.is_some() && ack.result.is_ok() && !ack.kept_hint() {
                // It stored a copy of a key it is no home of: take it back.
                let undo = NodeRequest {
                    method: Method::DELETE,
                    key: req.key.clone(),
                    ..NodeRequest::get(req.path_and_query.replacen("/put?", "/delete?", 1))
                };
                let _ = upstream.send(&ack.node, &undo, timeout).await;
                ack.result = Err(NodeError {
                    node: ack.node.name.clone(),
                    url: ack.node.url.clone(),
                    failure: crate::upstream::Failure::Down(
                        "it keeps no hints (a node without hinted handoff): not counted".into(),
                    ),
                });
            }
            if !ack.took(delete) && handoff {
                // The home failed (or the spare keeping its hint did): the next spare
                // keeps the hint instead.
                let home = ack
                    .hint_for
                    .clone()
                    .unwrap_or_else(|| ack.node.name.clone());
                if let Some(spare) = stand_in(&mut spares) {
                    send(&mut tasks, spare, Some(home));
                }
            }
            acks.push(ack);
            let took = acks.iter().filter(|a| a.took(delete)).count();
            if took >= need && !all {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Decided {
                        acks: std::mem::take(&mut acks),
                        skipped: std::mem::take(&mut skipped),
                    });
                }
            }
        }
        if let Some(tx) = tx.take() {
            let _ = tx.send(Decided { acks, skipped });
        }
    });
    let decided = rx.await.unwrap_or(Decided {
        acks: Vec::new(),
        skipped: Vec::new(),
    });
    write_answer(cluster, &q, delete, decided, &key)
}

/// The write's answer from what the nodes said by the time it was decided.
fn write_answer(
    cluster: &Cluster,
    q: &Quorum,
    delete: bool,
    decided: Decided,
    key: &Option<String>,
) -> Forwarded {
    let Decided { acks, skipped } = decided;
    let took: Vec<&Ack> = acks.iter().filter(|a| a.took(delete)).collect();
    let copies = q.homes.len();
    let mut outcomes: Vec<Value> = acks.iter().map(Ack::outcome).collect();
    outcomes.extend(skipped.iter().map(|n| {
        json!({"node": n.name, "url": n.url, "ok": false, "skipped": true,
               "error": "marked down (it timed out lately): a spare keeps a hint for it"})
    }));
    let mut trail: Vec<Step> = acks.iter().map(Ack::step).collect();
    trail.extend(skipped.iter().map(Step::skipped));
    let who = |a: &Ack| match &a.hint_for {
        Some(home) => format!("{} (hint for {home})", a.node.name),
        None => a.node.name.clone(),
    };
    let stored: Vec<String> = took.iter().map(|a| who(a)).collect();
    let w = cluster.consistency.write_quorum.map(|w| w.label());
    let quorum = format!("W={}", w.unwrap_or_else(|| q.need.to_string()));
    let response = if took.len() >= q.need {
        let removed = acks
            .iter()
            .any(|a| a.result.as_ref().is_ok_and(|a| a.status.is_success()));
        if delete && !removed {
            HttpError::new(
                StatusCode::NOT_FOUND,
                "key not found on any copy (a tombstone is kept)",
            )
            .with("acked", took.len())
            .with("needed", q.need)
            .with("nodes", outcomes)
            .for_key(key)
            .into_response()
        } else {
            http::json(
                StatusCode::OK,
                &json!({"message": format!("{} on {} of {copies} copies ({quorum}): {}",
                                           if delete { "deleted" } else { "stored" },
                                           took.len(), stored.join(", ")),
                        "acked": took.len(), "needed": q.need, "nodes": outcomes}),
            )
        }
    } else {
        let said: Vec<Said> = acks.iter().map(|a| Said::of(&a.result)).collect();
        match decide::write(&said) {
            // Every node refused the same way (a bad body): that is the answer.
            Verdict::Refused(same) if took.is_empty() => {
                let first = acks
                    .first()
                    .and_then(|a| a.result.as_ref().ok())
                    .and_then(forward::error_text)
                    .unwrap_or_else(|| format!("every node answered {same}"));
                HttpError::new(same, first)
                    .with("nodes", outcomes)
                    .for_key(key)
                    .into_response()
            }
            _ => {
                let failed: Vec<String> = acks
                    .iter()
                    .filter(|a| !a.took(delete))
                    .map(|a| format!("{}: {}", who(a), forward::reason(&a.result)))
                    .chain(skipped.iter().map(|n| format!("{}: marked down", n.name)))
                    .collect();
                let left = if stored.is_empty() {
                    "no copy took it".to_string()
                } else {
                    format!(
                        "{} took it and keep{} it (a failed write is not undone: a read may \
                         return it)",
                        stored.join(", "),
                        if stored.len() == 1 { "s" } else { "" }
                    )
                };
                HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "write quorum not met ({quorum}): {} of {} needed copies took it; {left} ({})",
                        took.len(),
                        q.need,
                        failed.join("; ")
                    ),
                )
                .with("acked", took.len())
                .with("needed", q.need)
                .with("nodes", outcomes)
                .for_key(key)
                .into_response()
            }
        }
    };
    let met = took.len() >= q.need;
    let note = format!(
        "{}; {quorum}: {} of {copies} copies took it, quorum {}",
        preference(cluster, q),
        took.len(),
        if met { "met" } else { "NOT met" }
    );
    let mut out = Forwarded {
        response,
        nodes: if stored.is_empty() {
            acks.iter().map(|a| a.node.name.clone()).collect()
        } else {
            took.iter().map(|a| a.node.name.clone()).collect()
        },
        trail,
        note,
    };
    set(
        &mut out.response,
        QUORUM_HEADER,
        &format!("{}/{copies}", took.len()),
    );
    out
}
