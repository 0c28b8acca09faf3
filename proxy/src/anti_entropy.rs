//! Anti-entropy: a background pass that finds copies that disagree and heals them, with
//! no reads at all (`anti_entropy: true`, every `anti_entropy_ms`).
//!
//! Each node answers `GET /digests`: one hash per bucket of its keys (64 buckets, a key's
//! bucket is FNV-1a of the key mod 64): a one-level Merkle tree. Comparing 64 hashes
//! per node is cheap; only the buckets that can hide a difference are read in full
//! (`/dump?versions=1&bucket=b&buckets=64`):
//! - in replication every node holds every key, so a bucket is read when its hash
//!   differs between nodes;
//! - with R copies of N, nodes hold different keys and their hashes never match, so a
//!   bucket is read when its hash changed on some node since the last pass (a node back
//!   from a crash changed them all).
//!
//! For each key in a bucket read, the newest copy among the key's homes wins, and every
//! home that answered with an older or missing copy gets it written back (with its
//! version: a tombstone travels like a value, so a delete is never undone). A copy on a
//! node that is not one of the key's homes is left alone: moving keys is `/rebalance`.
//! Nodes without `/digests` (other languages) are read whole with `/dump`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use storage::buckets::{bucket_of, BUCKETS};
use storage::version::Version;

use crate::cluster::{Cluster, NodeAddr};
use crate::each::each_node;
use crate::quorum::{self, Kind, Seen};
use crate::upstream::NodeRequest;
use crate::Proxy;

/// What the last pass found, for the page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pass {
    /// When it ended, ms since the epoch (0: no pass yet).
    pub at_ms: u64,
    /// Buckets whose hashes said "look here".
    pub examined: Vec<usize>,
    /// Buckets where copies really differed, and were healed.
    pub differed: Vec<usize>,
    /// Copies written back.
    pub repaired: usize,
    /// Which nodes got them.
    pub healed_nodes: Vec<String>,
    /// Nodes that did not answer (skipped this pass).
    pub unreachable: Vec<String>,
}

/// The memory anti-entropy keeps between passes: each node's bucket hashes, and the
/// last pass. Std `Mutex`es, held to copy or replace.
#[derive(Default)]
pub struct AntiEntropy {
    seen: Mutex<HashMap<String, Vec<String>>>,
    last: Mutex<Option<Pass>>,
}

impl AntiEntropy {
    pub fn last(&self) -> Option<Pass> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `GET /digests`' answer.
#[derive(Deserialize)]
struct Digests {
    digests: Vec<String>,
}

/// `GET /dump?versions=1`'s answer (of a bucket, or whole).
#[derive(Deserialize)]
struct Dump {
    #[serde(default)]
    data: HashMap<String, Box<RawValue>>,
    #[serde(default)]
    versions: HashMap<String, String>,
    #[serde(default)]
    deleted: HashMap<String, Option<String>>,
}

/// What one node holds of one bucket: each key's copy, and a value's JSON text.
type Held = HashMap<String, (Seen, Option<String>)>;

impl Dump {
    fn held(self, bucket: Option<usize>) -> Held {
        let mut held = Held::new();
        let parse = |v: Option<&String>| v.and_then(|v| v.parse::<Version>().ok());
        for (key, value) in self.data {
            if bucket.is_some_and(|b| bucket_of(&key) != b) {
                continue;
            }
            let seen = match parse(self.versions.get(&key)) {
                Some(v) => Seen::Versioned(v, Kind::Value),
                None => Seen::Unversioned,
            };
            held.insert(key, (seen, Some(value.get().to_string())));
        }
        for (key, version) in self.deleted {
            if let Some(v) = parse(version.as_ref()) {
                held.insert(key, (Seen::Versioned(v, Kind::Deleted), None));
            }
        }
        held
    }
}

/// One pass over the cluster. Answers what it found and did.
pub async fn pass(proxy: &Proxy, cluster: &Cluster) -> Pass {
    let upstream = proxy.upstream.clone();
    let timeout = cluster.timeout;
    let digests = each_node(cluster.nodes.clone(), move |node| {
        let upstream = upstream.clone();
        async move {
            let a = upstream
                .send(&node, &NodeRequest::get("/digests"), timeout)
                .await
                .ok()?;
            // 404: a node without buckets, read whole; anything else: skipped this pass.
            match a.status {
                StatusCode::OK => serde_json::from_slice::<Digests>(&a.body)
                    .ok()
                    .filter(|d| d.digests.len() == BUCKETS)
                    .map(|d| Some(d.digests)),
                StatusCode::NOT_FOUND => Some(None),
                _ => None,
            }
        }
    })
    .await;
    let mut report = Pass::default();
    // Index in the cluster → its bucket hashes (None: read it whole).
    let mut answered: BTreeMap<usize, Option<Vec<String>>> = BTreeMap::new();
    for (i, (node, d)) in digests.into_iter().enumerate() {
        match d.flatten() {
            Some(d) => {
                answered.insert(i, d);
            }
            None => report.unreachable.push(node.name),
        }
    }
    let everywhere = cluster.copies >= cluster.nodes.len();
    let examine: Vec<usize> = {
        let seen = proxy
            .anti_entropy
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (0..BUCKETS)
            .filter(|&b| {
                let hashes: Vec<Option<&String>> = answered
                    .values()
                    .map(|d| d.as_ref().map(|d| &d[b]))
                    .collect();
                if hashes.iter().any(Option::is_none) {
                    return true; // a node read whole may hide anything
                }
                if everywhere {
                    hashes.windows(2).any(|w| w[0] != w[1])
                } else {
                    answered.iter().any(|(&i, d)| {
                        let before = seen.get(&cluster.nodes[i].base).map(|s| &s[b]);
                        before != d.as_ref().map(|d| &d[b])
                    })
                }
            })
            .collect()
    };
    report.examined = examine.clone();
    let mut read = read_buckets(proxy, cluster, &answered, &examine).await;
    for b in examine {
        let holdings = read.remove(&b).unwrap_or_default();
        let (repaired, healed) = heal_bucket(proxy, cluster, holdings).await;
        if repaired > 0 {
            report.differed.push(b);
            report.repaired += repaired;
            for n in healed {
                if !report.healed_nodes.contains(&n) {
                    report.healed_nodes.push(n);
                }
            }
        }
    }
    {
        let mut seen = proxy
            .anti_entropy
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (&i, d) in &answered {
            if let Some(d) = d {
                // A bucket healed this pass has changed again: it is looked at once more.
                let mut d = d.clone();
                for &b in &report.differed {
                    d[b] = String::new();
                }
                seen.insert(cluster.nodes[i].base.clone(), d);
            }
        }
    }
    report.at_ms = crate::health::now_ms();
    if report.repaired > 0 {
        let text = format!(
            "anti-entropy: bucket{} {} differed; {} cop{} repaired on {}",
            if report.differed.len() == 1 { "" } else { "s" },
            report
                .differed
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            report.repaired,
            if report.repaired == 1 { "y" } else { "ies" },
            report.healed_nodes.join(", ")
        );
        tracing::info!("{text}");
        proxy.recent.event("repair", text);
        proxy.snapshots.wrote();
    }
    *proxy
        .anti_entropy
        .last
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
    report
}

/// Past this many buckets to look at, a node is read whole once rather than bucket by
/// bucket (a node back from a crash changed every bucket).
const WHOLE_PAST: usize = 8;

/// Reads `buckets` from every node that answered, all nodes at once: bucket → node →
/// what it holds there.
async fn read_buckets(
    proxy: &Proxy,
    cluster: &Cluster,
    answered: &BTreeMap<usize, Option<Vec<String>>>,
    buckets: &[usize],
) -> BTreeMap<usize, BTreeMap<usize, Held>> {
    let mut out: BTreeMap<usize, BTreeMap<usize, Held>> = BTreeMap::new();
    if buckets.is_empty() {
        return out;
    }
    let nodes: Vec<NodeAddr> = answered.keys().map(|&i| cluster.nodes[i].clone()).collect();
    let index: Vec<usize> = answered.keys().copied().collect();
    let whole: Vec<bool> = answered
        .values()
        .map(|d| d.is_none() || buckets.len() > WHOLE_PAST)
        .collect();
    let (upstream, timeout, list) = (proxy.upstream.clone(), cluster.timeout, buckets.to_vec());
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let read = each_node(nodes, move |node| {
        let (upstream, list) = (upstream.clone(), list.clone());
        let whole = whole[names.iter().position(|n| *n == node.name).unwrap_or(0)];
        async move {
            let fetch = |path: String| {
                let (upstream, node) = (upstream.clone(), node.clone());
                async move {
                    let a = upstream
                        .send(&node, &NodeRequest::get(path), timeout)
                        .await
                        .ok()?;
                    serde_json::from_slice::<Dump>(&a.body).ok()
                }
            };
            let mut held: Vec<(usize, Held)> = Vec::new();
            if whole {
                let dump = fetch("/dump?versions=1".into()).await?;
                let all = dump.held(None);
                for &b in &list {
                    let part = all
                        .iter()
                        .filter(|(k, _)| bucket_of(k) == b)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    held.push((b, part));
                }
            } else {
                for &b in &list {
                    let path = format!("/dump?versions=1&bucket={b}&buckets={BUCKETS}");
                    held.push((b, fetch(path).await?.held(Some(b))));
                }
            }
            Some(held)
        }
    })
    .await;
    for (n, (_, held)) in read.into_iter().enumerate() {
        // A node that failed midway is left out of every bucket: it is not repaired
        // from what it did not say.
        for (b, h) in held.flatten().into_iter().flatten() {
            out.entry(b).or_default().insert(index[n], h);
        }
    }
    out
}

/// Writes the newest copy of each key in one bucket (as each node holds it) to the key's
/// homes that hold less. Answers the copies written and where.
async fn heal_bucket(
    proxy: &Proxy,
    cluster: &Cluster,
    holdings: BTreeMap<usize, Held>,
) -> (usize, Vec<String>) {
    let upstream = &proxy.upstream;
    let mut keys: Vec<&String> = holdings.values().flat_map(|h| h.keys()).collect();
    keys.sort();
    keys.dedup();
    let (mut repaired, mut healed) = (0, Vec::new());
    for key in keys {
        let homes = cluster.homes(key);
        // Only the key's homes count, and only those whose bucket was read.
        let copies: Vec<(usize, Seen, Option<&String>)> = homes
            .iter()
            .filter_map(|h| {
                let held = holdings.get(h)?;
                Some(match held.get(key) {
                    Some((seen, value)) => (*h, seen.clone(), value.as_ref()),
                    None => (*h, Seen::Missing, None),
                })
            })
            .collect();
        let Some((_, newest, value)) = copies.iter().max_by(|a, b| a.1.cmp(&b.1)).cloned() else {
            continue;
        };
        let stale: Vec<NodeAddr> = copies
            .iter()
            .filter(|(_, seen, _)| *seen < newest)
            .map(|(h, _, _)| cluster.nodes[*h].clone())
            .collect();
        if stale.is_empty() {
            continue;
        }
        let Some(fix) = quorum::repair_request(key, &newest, value.map(String::as_str)) else {
            continue;
        };
        for name in quorum::repair(upstream, cluster, &stale, &fix).await {
            repaired += 1;
            if !healed.contains(&name) {
                healed.push(name);
            }
        }
    }
    (repaired, healed)
}
