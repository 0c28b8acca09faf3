//! What every node holds right now, fetched from all of them at once: the data behind
//! the /state page, `/dump` and `/health`.
//!
//! Each fetch is bounded by the timeout and they all run concurrently, so a class of 30
//! nodes with a few dead ones still answers within one timeout. Our nodes (and any node
//! with `/dump`) are read as data; a node that only has an HTML `/state` (the classroom
//! original) is kept as that HTML, which the page shows in a sandboxed frame.

use std::collections::BTreeMap;
use std::time::Instant;

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::cluster::{Cluster, NodeAddr};
use crate::each::each_node;
use crate::upstream::{NodeRequest, Upstream};

/// The most HTML kept from a foreign node's /state page.
const MAX_FOREIGN_HTML: usize = 256 << 10;

/// One node as the page shows it.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub node: NodeAddr,
    /// It answered at all.
    pub up: bool,
    pub latency_ms: u64,
    /// How many keys it says it holds (when it has `/dump`).
    pub count: Option<usize>,
    /// Its pairs (all, or the first by key for a summary), sorted by key, values as JSON text.
    pub pairs: Vec<(String, String)>,
    /// Values a summary cut short (their pairs hold the first characters, as a JSON
    /// string), with their full size in bytes.
    pub cut: std::collections::HashMap<String, usize>,
    /// The digest of everything it holds, when it sends one (our nodes do): a changed
    /// digest is what makes a full gather worth its cost.
    pub digest: Option<String>,
    /// A node without `/dump`: its own /state page, shown sandboxed.
    pub foreign_html: Option<String>,
    /// Why it is shown as down (or why its data could not be read).
    pub error: Option<String>,
}

/// The `/dump` body our nodes send: `{"node", "count", "data": {key: value}}`.
#[derive(Deserialize)]
struct Dump {
    count: Option<usize>,
    digest: Option<String>,
    data: BTreeMap<String, Box<RawValue>>,
    #[serde(default)]
    cut: std::collections::HashMap<String, usize>,
}

/// How much of a long value a summary carries: a card shows 120 characters.
pub const PREVIEW_BYTES: usize = 200;

/// How much of each node to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The count, the digest and the first `n` pairs by key (`/dump?limit=n`): what a
    /// card shows, cheap for the node whatever it holds.
    Summary(usize),
    /// Every pair (`/dump`): for the merged `/dump`, a filter, and divergence.
    Everything,
}

/// Fetches every node of `cluster` concurrently. A node marked down (it timed out lately)
/// is not asked: it is shown down, and the background probe tells when it is back.
pub async fn gather(upstream: &Upstream, cluster: &Cluster, depth: Depth) -> Vec<NodeView> {
    let (upstream, timeout) = (upstream.clone(), cluster.timeout);
    each_node(cluster.nodes.clone(), move |node| {
        let upstream = upstream.clone();
        async move {
            if let Some(since) = upstream.health.down_since(&node.base) {
                let why = format!(
                    "down since {}: it did not answer within the timeout; probed in the background",
                    crate::forward::clock(since)
                );
                return down(node, 0, why);
            }
            view(&upstream, node, timeout, depth).await
        }
    })
    .await
    .into_iter()
    .map(|(node, v)| v.unwrap_or_else(|| down(node, 0, "the fetch was lost".into())))
    .collect()
}

fn down(node: NodeAddr, latency_ms: u64, error: String) -> NodeView {
    NodeView {
        node,
        up: false,
        latency_ms,
        count: None,
        pairs: Vec::new(),
        cut: Default::default(),
        digest: None,
        foreign_html: None,
        error: Some(error),
    }
}

/// Past this size a `/dump` is parsed on a blocking thread.
const BIG_BODY: usize = 256 << 10;

/// A `/dump` body: its count, digest and cut values, and its first `shown` pairs (a node
/// that ignores `limit` sends everything: keep what a summary keeps). `None` when it is
/// not our `/dump` format.
fn parse(body: &[u8], shown: usize) -> Option<(Dump, Vec<(String, String)>)> {
    let mut dump = serde_json::from_slice::<Dump>(body).ok()?;
    let total = dump.data.len();
    let pairs = std::mem::take(&mut dump.data)
        .into_iter()
        .take(shown)
        .map(|(k, v)| (k, v.get().to_string()))
        .collect();
    dump.count = Some(dump.count.unwrap_or(total));
    Some((dump, pairs))
}

async fn view(
    upstream: &Upstream,
    node: NodeAddr,
    timeout: std::time::Duration,
    depth: Depth,
) -> NodeView {
    let started = Instant::now();
    let ms = || started.elapsed().as_millis() as u64;
    let path = match depth {
        Depth::Summary(n) => format!("/dump?limit={n}&preview={PREVIEW_BYTES}"),
        Depth::Everything => "/dump".to_string(),
    };
    let answer = match upstream.send(&node, &NodeRequest::get(path), timeout).await {
        Ok(a) => a,
        Err(e) => return down(node, ms(), e.reason()),
    };
    if answer.status == StatusCode::LOOP_DETECTED {
        let why =
            "a loop: this URL leads back to this proxy (or a proxy already asked), not to a node"
                .into();
        return down(node, ms(), why);
    }
    if answer.status == StatusCode::OK {
        let shown = match depth {
            Depth::Summary(n) => n,
            Depth::Everything => usize::MAX,
        };
        let body = answer.body.clone();
        // A big dump takes a while to read: off the thread that serves requests.
        let parsed = if body.len() > BIG_BODY {
            tokio::task::spawn_blocking(move || parse(&body, shown))
                .await
                .ok()
                .flatten()
        } else {
            parse(&body, shown)
        };
        if let Some((dump, pairs)) = parsed {
            let total = dump.count.unwrap_or(pairs.len());
            return NodeView {
                latency_ms: answer.latency.as_millis() as u64,
                up: true,
                count: Some(total),
                digest: dump.digest,
                cut: dump.cut,
                pairs,
                foreign_html: None,
                error: None,
                node,
            };
        }
    }
    // No usable /dump: a foreign node. Its own page is the best we can show.
    let left = timeout.saturating_sub(started.elapsed());
    match upstream
        .send(&node, &NodeRequest::get("/state"), left)
        .await
    {
        Ok(page) if page.status.is_success() => {
            let mut html = String::from_utf8_lossy(&page.body).into_owned();
            if html.len() > MAX_FOREIGN_HTML {
                let mut cut = MAX_FOREIGN_HTML;
                while !html.is_char_boundary(cut) {
                    cut -= 1;
                }
                html.truncate(cut);
            }
            NodeView {
                latency_ms: answer.latency.as_millis() as u64,
                up: true,
                count: None,
                pairs: Vec::new(),
                cut: Default::default(),
                digest: None,
                foreign_html: Some(html),
                error: None,
                node,
            }
        }
        Ok(page) => NodeView {
            up: true,
            error: Some(format!(
                "it has neither /dump nor /state (answered {})",
                page.status
            )),
            ..down(node, ms(), String::new())
        },
        Err(e) => down(node, ms(), e.reason()),
    }
}
