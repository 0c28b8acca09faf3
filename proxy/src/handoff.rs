//! Hinted handoff, second half: hints go home.
//!
//! While a key's home was down, a write for it went to the next node of the key's list
//! and was kept there as a *hint* for the home ([`crate::quorum`]). The hints live on
//! the nodes, not here, so the proxy stays stateless: every second (with
//! `hinted_handoff: true`) it asks each node for the hints it holds (`GET /hints`),
//! sends each to its home when the home answers again (a put or delete with the hint's
//! version: a newer copy already there is kept), and then removes it from the node that
//! held it (`DELETE /hints?for=&key=&version=`, so a newer hint that came meanwhile
//! stays). Nodes that keep no hints (other languages) answer 404 and are left alone.

use std::collections::HashSet;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use storage::http::encode_component;
use storage::version::Version;

use crate::cluster::{Cluster, NodeAddr};
use crate::quorum::{self, Kind, Seen};
use crate::upstream::NodeRequest;
use crate::Proxy;

/// How many hints one node is asked for per round.
const BATCH: usize = 500;

/// `GET /hints`' answer.
#[derive(Deserialize)]
struct Hints {
    #[serde(default)]
    hints: Vec<Hint>,
}

/// A write kept by one node for another.
#[derive(Deserialize)]
struct Hint {
    #[serde(rename = "for")]
    home: String,
    key: String,
    version: Option<String>,
    #[serde(default)]
    deleted: bool,
    /// A value's JSON text (`null` is a value too), or nothing for a tombstone.
    #[serde(default, deserialize_with = "present")]
    value: Option<Box<RawValue>>,
}

/// A field that is there is `Some`, even when it is JSON `null` (serde's `Option` would
/// read a stored `null` as no value at all).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

impl Hint {
    /// The write that delivers it.
    fn delivery(&self) -> Option<NodeRequest> {
        let version: Option<Version> = self.version.as_deref().and_then(|v| v.parse().ok());
        let seen = match (&version, self.deleted) {
            (Some(v), true) => Seen::Versioned(v.clone(), Kind::Deleted),
            (Some(v), false) => Seen::Versioned(v.clone(), Kind::Value),
            (None, false) => Seen::Unversioned,
            (None, true) => return None,
        };
        quorum::repair_request(&self.key, &seen, self.value.as_ref().map(|v| v.get()))
    }

    /// The request that removes it from the node that held it, once delivered.
    fn removal(&self) -> NodeRequest {
        let mut path = format!(
            "/hints?for={}&key={}",
            encode_component(&self.home),
            encode_component(&self.key)
        );
        if let Some(v) = &self.version {
            path.push_str(&format!("&version={}", encode_component(v)));
        }
        NodeRequest {
            method: Method::DELETE,
            ..NodeRequest::get(path)
        }
    }
}

/// One round: every hint whose home answers is delivered and removed. Answers how many
/// went home, and says so on the page's feed.
pub async fn deliver(proxy: &Proxy, cluster: &Cluster) -> usize {
    let upstream = &proxy.upstream;
    let mut delivered = 0;
    let mut homes_got: Vec<String> = Vec::new();
    // A home that failed this round is not tried again for every hint it has.
    let mut unreachable: HashSet<String> = HashSet::new();
    for holder in &cluster.nodes {
        if upstream.health.is_down(&holder.base) {
            continue;
        }
        let ask = NodeRequest::get(format!("/hints?limit={BATCH}"));
        let Ok(answer) = upstream.send(holder, &ask, cluster.timeout).await else {
            continue;
        };
        if answer.status != StatusCode::OK {
            continue;
        }
        let Ok(list) = serde_json::from_slice::<Hints>(&answer.body) else {
            continue;
        };
        for hint in list.hints {
            let Some(home) = cluster.nodes.iter().find(|n| n.name == hint.home) else {
                continue; // its home left the class: the hint waits in case it rejoins
            };
            if unreachable.contains(&home.name) || upstream.health.is_down(&home.base) {
                continue;
            }
            if deliver_one(proxy, cluster, holder, home, &hint).await {
                delivered += 1;
                if !homes_got.contains(&home.name) {
                    homes_got.push(home.name.clone());
                }
            } else {
                unreachable.insert(home.name.clone());
            }
        }
    }
    if delivered > 0 {
        let text = format!(
            "hinted handoff: {delivered} write{} delivered to {} (kept as hints while it was down)",
            if delivered == 1 { "" } else { "s" },
            homes_got.join(", ")
        );
        tracing::info!("{text}");
        proxy.recent.event("handoff", text);
        proxy.snapshots.wrote();
    }
    delivered
}

/// Sends one hint home, then removes it from its holder. `false` when the home did not
/// take it (still down): the hint stays for the next round.
async fn deliver_one(
    proxy: &Proxy,
    cluster: &Cluster,
    holder: &NodeAddr,
    home: &NodeAddr,
    hint: &Hint,
) -> bool {
    let upstream = &proxy.upstream;
    let Some(write) = hint.delivery() else {
        // A hint that cannot be delivered (a tombstone without a version) is dropped.
        let _ = upstream
            .send(holder, &hint.removal(), cluster.timeout)
            .await;
        return true;
    };
    let took = upstream
        .send(home, &write, cluster.timeout)
        .await
        .is_ok_and(|a| a.status.is_success() || a.status == StatusCode::NOT_FOUND);
    if took {
        let _ = upstream
            .send(holder, &hint.removal(), cluster.timeout)
            .await;
    }
    took
}
