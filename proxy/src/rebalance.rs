//! `POST /rebalance`: after the class changed, every key goes where the placement now puts
//! it. For each key held somewhere it does not belong, the value is first copied to each
//! of its homes that lacks it, and only once every copy succeeded is the misplaced copy
//! deleted: a failure midway (a node killed, a timeout) leaves an extra copy, never a lost
//! key. The answer, when all is done, counts per node what moved, stayed and failed; the
//! page's event list shows the progress.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use storage::http::{self, encode_component, Response};
use tokio::task::JoinSet;

use crate::cluster::Cluster;
use crate::overview::{self, Depth};
use crate::upstream::{NodeRequest, Upstream};
use crate::Proxy;

/// Keys moved at once.
const AT_ONCE: usize = 16;

/// What happened on one node.
#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Counts {
    /// Misplaced copies removed from it once their homes held the key.
    moved_out: usize,
    /// Copies it received as a key's new home.
    moved_in: usize,
    /// Keys it holds where they belong.
    stayed: usize,
    /// Keys it holds that could not be moved (a home did not take them): still here.
    failed: usize,
}

/// One key to put right: its value, the nodes that hold it, its homes.
struct Move {
    key: String,
    value: String,
    holders: Vec<usize>,
    homes: Vec<usize>,
}

impl Proxy {
    pub(crate) async fn rebalance(&self, cluster: &Arc<Cluster>) -> Response {
        let views = overview::gather(&self.upstream, cluster, Depth::Everything).await;
        let mut counts = vec![Counts::default(); cluster.nodes.len()];
        let mut by_key: BTreeMap<&str, (&str, Vec<usize>)> = BTreeMap::new();
        for (i, view) in views.iter().enumerate() {
            for (key, value) in &view.pairs {
                let entry = by_key.entry(key).or_insert((value, Vec::new()));
                entry.1.push(i);
            }
        }
        let unreadable: Vec<&str> = views
            .iter()
            .filter(|v| !v.up || v.count.is_none())
            .map(|v| v.node.name.as_str())
            .collect();
        let mut moves = Vec::new();
        for (key, (value, holders)) in by_key {
            let homes = cluster.homes(key);
            for &h in &holders {
                if homes.contains(&h) {
                    counts[h].stayed += 1;
                }
            }
            let misplaced = holders.iter().any(|h| !homes.contains(h));
            let missing = homes.iter().any(|h| !holders.contains(h));
            if misplaced || missing {
                moves.push(Move {
                    key: key.to_string(),
                    value: value.to_string(),
                    holders,
                    homes,
                });
            }
        }
        let total = moves.len();
        self.recent.event(
            "progress",
            format!(
                "rebalance: {total} keys to move over {} nodes",
                cluster.nodes.len()
            ),
        );
        let mut done = 0;
        let mut tasks = JoinSet::new();
        let mut pending = moves.into_iter();
        loop {
            while tasks.len() < AT_ONCE {
                let Some(m) = pending.next() else { break };
                let (upstream, cluster) = (self.upstream.clone(), cluster.clone());
                tasks.spawn(async move { apply(&upstream, &cluster, m).await });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            if let Ok(outcome) = joined {
                for (i, c) in outcome {
                    counts[i].moved_in += c.moved_in;
                    counts[i].moved_out += c.moved_out;
                    counts[i].failed += c.failed;
                }
            }
            done += 1;
            if done % 20 == 0 {
                // One line that counts up on the page while the keys move.
                self.recent.event(
                    "progress",
                    format!("rebalance: {done} of {total} keys moved"),
                );
            }
        }
        self.snapshots.wrote();
        let moved: usize = counts.iter().map(|c| c.moved_in).sum();
        let failed: usize = counts.iter().map(|c| c.failed).sum();
        let stayed: usize = counts.iter().map(|c| c.stayed).sum();
        let message = format!(
            "rebalanced: {total} keys put where {} places them ({moved} copies moved to a new \
             home, {stayed} stayed, {failed} could not move and stay where they were)",
            cluster.mode.name()
        );
        self.recent.event(
            if failed > 0 { "rejected" } else { "reload" },
            message.clone(),
        );
        tracing::info!("{message}");
        let nodes: BTreeMap<&str, Counts> = cluster
            .nodes
            .iter()
            .zip(&counts)
            .map(|(n, c)| (n.name.as_str(), *c))
            .collect();
        http::json(
            StatusCode::OK,
            &json!({"message": message, "keys": total, "moved": moved, "stayed": stayed,
                    "failed": failed, "nodes": nodes, "unreadable": unreadable}),
        )
    }
}

/// Copies one key to its homes that lack it, then, only if all took it, deletes it from
/// the nodes that are not its homes. Answers what that did to each node.
async fn apply(upstream: &Upstream, cluster: &Cluster, m: Move) -> Vec<(usize, Counts)> {
    let q = encode_component(&m.key);
    let mut out = Vec::new();
    let mut all_home = true;
    for &h in m.homes.iter().filter(|h| !m.holders.contains(h)) {
        let put = NodeRequest {
            method: Method::POST,
            path_and_query: format!("/put?key={q}"),
            body: format!("{{\"value\":{}}}", m.value).into(),
            content_type: Some(HeaderValue::from_static("application/json")),
            via: None,
            key: Some(m.key.clone()),
            // Unversioned: the copy moves as it is (the gather reads values, not versions).
            version: None,
        };
        let ok = upstream
            .send(&cluster.nodes[h], &put, cluster.timeout)
            .await
            .is_ok_and(|a| a.status.is_success());
        all_home &= ok;
        out.push((
            h,
            Counts {
                moved_in: ok as usize,
                ..Counts::default()
            },
        ));
    }
    for &from in m.holders.iter().filter(|h| !m.homes.contains(h)) {
        if !all_home {
            out.push((
                from,
                Counts {
                    failed: 1,
                    ..Counts::default()
                },
            ));
            continue;
        }
        let delete = NodeRequest {
            method: Method::DELETE,
            key: Some(m.key.clone()),
            ..NodeRequest::get(format!("/delete?key={q}"))
        };
        let ok = upstream
            .send(&cluster.nodes[from], &delete, cluster.timeout)
            .await
            .is_ok_and(|a| a.status.is_success() || a.status == StatusCode::NOT_FOUND);
        out.push((
            from,
            Counts {
                moved_out: ok as usize,
                failed: (!ok) as usize,
                ..Counts::default()
            },
        ));
    }
    out
}
