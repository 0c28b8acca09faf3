//! The proxy's `/state` page, the projector view of the lesson: the mode in large type,
//! one card per node (its colour, URL, up or down, latency, how many keys and which),
//! how evenly the keys spread (or, in replication, how complete each node is), a node
//! down said plainly, config events, the last requests and the way each went, the keys
//! replicas disagree on, what would move if the class changed, and in consistent-hashing
//! mode the ring itself.
//!
//! The same [`Snapshot`] is rendered once on the server (askama, so the page works
//! without JavaScript) and served as `/state.json` and `/events`, which keep the page up
//! to date; the script writes text only (`textContent`), never markup. A snapshot is
//! built once per sweep of the nodes ([`crate::snapshot`]) and shared by every viewer.

use std::sync::Arc;

use askama::Template;
use serde::Serialize;

use crate::cluster::Cluster;
use crate::divergence::Divergence;
use crate::overview::NodeView;
use crate::recent::Entry;
use crate::snapshot::KEYS_PER_CARD;
use crate::Proxy;

/// One colour per node, in config order, repeating past the end.
const COLOURS: &[&str] = &[
    "#1f5f99", "#b8211c", "#1e7a1e", "#6a3d9a", "#a04f00", "#0b6e7a", "#7a4a3a", "#a8327f",
    "#555555", "#626200",
];
// Every colour carries white bold text (names on the bar) and is text itself (names in
// the feed): each is at least 4.5:1 against white and the page's background (WCAG AA;
// the browser test computes it from the page's own styles).

/// Everything the page shows, at one moment.
#[derive(Serialize, Clone)]
pub struct Snapshot {
    /// When the nodes were asked, in ms since the epoch: the page shows the age.
    swept_at_ms: u64,
    mode: String,
    rule: String,
    n: usize,
    timeout_ms: u64,
    /// Keys held across all nodes (a replicated key counts once per node).
    total_keys: usize,
    /// In replication: how many distinct keys (each held by every node that is whole).
    replicated: bool,
    distinct_keys: usize,
    /// The count in words: "21 keys held in all", or "21 keys × 3 copies".
    headline: String,
    /// What a node being down means for the keys, in this mode, when one is.
    down_warning: Option<String>,
    nodes: Vec<Card>,
    recent: Vec<Entry>,
    /// Reloads, refused edits, joins and leaves, newest first.
    events: Vec<crate::recent::Event>,
    /// What would move for each strategy if a node joined or left, on the keys held.
    pub moves: Option<Arc<crate::moves::Table>>,
    /// In consistent-hashing mode, the ring to draw: every token, and the keys shown.
    ring: Option<RingDraw>,
    divergent: Vec<Divergence>,
    /// The last change of the number of nodes, in words (that moves most keys).
    notice: Option<String>,
    /// The filter the cards' keys were narrowed by ("" for none): the script must not
    /// take keys it filtered out for keys that are gone.
    filter: String,
    /// Quorums and healing in force, in words (`W=2 · R=2 of 3 copies · read repair`).
    consistency: Option<String>,
    /// What anti-entropy's last pass found, in words.
    anti_entropy: Option<String>,
    /// The teacher's chaos buttons can work: an `admin_token` is set.
    chaos_enabled: bool,
}

/// The ring as the page draws it: positions are shares of the way round (0 to 1).
#[derive(Serialize, Clone)]
struct RingDraw {
    /// (position, node index): the tokens, coloured by their node.
    tokens: Vec<(f64, usize)>,
    /// (position, node index): the keys on the cards, as dots.
    keys: Vec<(f64, usize)>,
}

#[derive(Serialize, Clone)]
struct Card {
    name: String,
    url: String,
    joined: bool,
    up: bool,
    latency_ms: u64,
    count: Option<usize>,
    /// Its share of all keys, in percent, for the distribution bar (sharding).
    share_pct: f64,
    /// In replication: how many of the distinct keys it holds, in percent.
    complete_pct: Option<f64>,
    /// Down: what that means for its keys, in words.
    down_note: Option<String>,
    colour: &'static str,
    keys: Vec<Pair>,
    foreign_html: Option<String>,
    error: Option<String>,
    /// A fault the teacher made from the page (`/chaos`), in words.
    fault: Option<String>,
    /// The other pools this node is in too (several clusters on one proxy).
    also_in: Vec<String>,
}

#[derive(Serialize, Clone)]
struct Pair {
    key: String,
    value: String,
    /// The value's full size in bytes when it was cut for the page.
    cut_from: Option<usize>,
}

#[derive(Template)]
#[template(path = "proxy_state.html")]
struct Page<'a> {
    s: &'a Snapshot,
    json: String,
}

/// The page's data with the cards' keys narrowed to those containing `filter`: from
/// a full gather (the summaries hold only the first keys of each node), shared with
/// every request in flight.
pub async fn filtered(
    proxy: &Proxy,
    cluster: &Arc<Cluster>,
    filter: &str,
    viewer: Option<std::net::IpAddr>,
) -> Snapshot {
    let sweep = proxy.snapshots.fresh(proxy, cluster, viewer).await;
    let full = proxy.snapshots.full(proxy, cluster).await;
    let distinct = crate::divergence::distinct_keys(&full.views);
    build(
        proxy,
        cluster,
        &full.views,
        &sweep.divergent,
        Some(distinct),
        filter,
    )
}

/// The page's data from every node's view; `filter` keeps the keys containing it.
pub fn build(
    proxy: &Proxy,
    cluster: &Cluster,
    views: &[NodeView],
    divergent: &Arc<Vec<Divergence>>,
    distinct: Option<usize>,
    filter: &str,
) -> Snapshot {
    let recent_keys = proxy.recent.keys();
    let total_keys: usize = views.iter().filter_map(|v| v.count).sum();
    let replicated = cluster.mode.name() == "replication";
    // Without a full gather for these very views, the fullest node is the best count.
    let distinct_keys =
        distinct.unwrap_or_else(|| views.iter().filter_map(|v| v.count).max().unwrap_or(0));
    let down: Vec<&str> = views
        .iter()
        .filter(|v| !v.up)
        .map(|v| v.node.name.as_str())
        .collect();
    let meaning = if replicated {
        "the other nodes answer for its keys; it misses every write made meanwhile"
    } else {
        "its keys cannot be read or written"
    };
    let down_warning = (!down.is_empty()).then(|| {
        format!(
            "{} DOWN — {meaning}{}",
            down.join(", "),
            if replicated {
                ""
            } else {
                " (the count above leaves them out)"
            }
        )
    });
    let headline = if replicated {
        format!(
            "{distinct_keys} keys × {} copies ({total_keys} held in all)",
            cluster.nodes.len()
        )
    } else {
        format!("{total_keys} keys held in all")
    };
    let also_in = proxy
        .also_in
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let nodes = views
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut c = card(i, v, total_keys, &recent_keys, filter);
            if replicated {
                c.complete_pct = v.count.map(|n| match distinct_keys {
                    0 => 100.0,
                    d => (n as f64 * 1000.0 / d as f64).round() / 10.0,
                });
            }
            if !v.up {
                c.down_note = Some(format!("{} DOWN — {meaning}", v.node.name));
            }
            c.fault = proxy.upstream.chaos.of(&v.node.base).map(|f| f.describe());
            c.also_in = also_in.get(&v.node.base).cloned().unwrap_or_default();
            c
        })
        .collect();
    Snapshot {
        swept_at_ms: crate::health::now_ms(),
        mode: cluster.mode.name().to_string(),
        rule: cluster.mode.rule().to_string(),
        n: cluster.nodes.len(),
        timeout_ms: cluster.timeout.as_millis() as u64,
        total_keys,
        replicated,
        distinct_keys,
        headline,
        down_warning,
        nodes,
        recent: proxy.recent.list(),
        events: proxy.recent.events(),
        moves: None,
        ring: cluster
            .placement
            .as_ring()
            .map(|ring| ring_draw(ring, views)),
        divergent: divergent.to_vec(),
        notice: proxy.recent.notice(),
        filter: filter.to_string(),
        consistency: consistency_line(cluster),
        anti_entropy: anti_entropy_line(proxy, cluster),
        chaos_enabled: cluster.config.admin_token.is_some(),
    }
}

/// The consistency settings in force, in words, when any is set.
fn consistency_line(cluster: &Cluster) -> Option<String> {
    let c = &cluster.consistency;
    let mut parts = Vec::new();
    if let Some(w) = c.write_quorum {
        parts.push(format!("W={} ({})", w.of(cluster.copies), w.label()));
    }
    if let Some(r) = c.read_quorum {
        parts.push(format!("R={} ({})", r.of(cluster.copies), r.label()));
    }
    if parts.is_empty() && !(c.read_repair || c.hinted_handoff || c.anti_entropy) {
        return None;
    }
    let mut line = format!("{} of {} copies", parts.join(" · "), cluster.copies);
    if parts.is_empty() {
        line = format!("{} copies", cluster.copies);
    }
    if let (Some(w), Some(r)) = (c.write_quorum, c.read_quorum) {
        let (w, r) = (w.of(cluster.copies), r.of(cluster.copies));
        line.push_str(&if w + r > cluster.copies {
            format!(
                " — W+R={} > {}: every read meets the newest write",
                w + r,
                cluster.copies
            )
        } else {
            format!(
                " — W+R={} ≤ {}: a read may miss the newest write",
                w + r,
                cluster.copies
            )
        });
    }
    for (on, what) in [
        (c.read_repair, "read repair"),
        (c.hinted_handoff, "hinted handoff"),
    ] {
        if on {
            line.push_str(&format!(" · {what}"));
        }
    }
    if c.anti_entropy {
        line.push_str(&format!(" · anti-entropy every {} ms", c.anti_entropy_ms));
    }
    Some(line)
}

/// Anti-entropy's last pass, in words.
fn anti_entropy_line(proxy: &Proxy, cluster: &Cluster) -> Option<String> {
    if !cluster.consistency.anti_entropy {
        return None;
    }
    let Some(pass) = proxy.anti_entropy.last() else {
        return Some("anti-entropy: first pass soon".into());
    };
    let at = crate::forward::clock(pass.at_ms);
    let list = |b: &[usize]| {
        b.iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut line = if pass.differed.is_empty() {
        format!(
            "anti-entropy at {at}: {} of 64 buckets looked at, every copy agrees",
            pass.examined.len()
        )
    } else {
        format!(
            "anti-entropy at {at}: buckets {} differed → {} cop{} healed on {}",
            list(&pass.differed),
            pass.repaired,
            if pass.repaired == 1 { "y" } else { "ies" },
            pass.healed_nodes.join(", ")
        )
    };
    if !pass.unreachable.is_empty() {
        line.push_str(&format!(
            " ({} did not answer)",
            pass.unreachable.join(", ")
        ));
    }
    Some(line)
}

/// The cluster's ring with the keys `views` show.
fn ring_draw(ring: &crate::placement::ring::Ring, views: &[NodeView]) -> RingDraw {
    use crate::placement::ring::fraction;
    RingDraw {
        tokens: ring
            .tokens
            .iter()
            .map(|&(t, i, _)| (fraction(t), i))
            .collect(),
        keys: views
            .iter()
            .enumerate()
            .flat_map(|(i, v)| {
                v.pairs
                    .iter()
                    .map(move |(k, _)| (fraction(crate::placement::hash64(k)), i))
            })
            .collect(),
    }
}

/// One node's card: its newest keys first (those written through this proxy lately),
/// then the rest by key, at most [`KEYS_PER_CARD`] of those matching `filter`.
fn card(i: usize, v: &NodeView, total: usize, recent_keys: &[String], filter: &str) -> Card {
    let count = v.count;
    let filter = filter.to_lowercase();
    let mut pairs: Vec<&(String, String)> = v
        .pairs
        .iter()
        .filter(|(k, _)| filter.is_empty() || k.to_lowercase().contains(&filter))
        .collect();
    let rank: std::collections::HashMap<&str, usize> = recent_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    // Stable: keys not written lately keep their order by key, after the recent ones.
    pairs.sort_by_key(|(k, _)| rank.get(k.as_str()).copied().unwrap_or(usize::MAX));
    let keys = pairs
        .into_iter()
        .take(KEYS_PER_CARD)
        .map(|(key, value)| {
            let (value, cut_from) = match v.cut.get(key) {
                // The node sent the start of a long value: show it as such.
                Some(&full) => {
                    let start: String = serde_json::from_str(value).unwrap_or_default();
                    (storage::state_page::shorten(start).0, Some(full))
                }
                None => storage::state_page::shorten(value.clone()),
            };
            Pair {
                key: key.clone(),
                value,
                cut_from,
            }
        })
        .collect();
    Card {
        name: v.node.name.clone(),
        url: v.node.url.clone(),
        joined: v.node.joined,
        up: v.up,
        latency_ms: v.latency_ms,
        count,
        share_pct: match (count, total) {
            (Some(c), t) if t > 0 => (c as f64 * 1000.0 / t as f64).round() / 10.0,
            _ => 0.0,
        },
        complete_pct: None,
        down_note: None,
        fault: None,
        also_in: Vec::new(),
        colour: COLOURS[i % COLOURS.len()],
        keys,
        foreign_html: v.foreign_html.clone(),
        error: v.error.clone(),
    }
}

/// The whole page, rendered on the server from the latest sweep.
pub async fn render(
    proxy: &Proxy,
    cluster: &Arc<Cluster>,
    viewer: Option<std::net::IpAddr>,
) -> String {
    let sweep = proxy.snapshots.fresh(proxy, cluster, viewer).await;
    let s = &sweep.page;
    // The first snapshot rides along for the script; every `<` is escaped (as JSON's
    // `\u003c`) so no value can close the script element early.
    let json = String::from_utf8_lossy(&sweep.json).replace('<', "\\u003c");
    Page { s, json }
        .render()
        .unwrap_or_else(|e| format!("the page failed to render: {e}"))
}

/// The page's script, served as a file so the page itself carries no inline code.
pub fn script() -> storage::http::Response {
    storage::http::script(include_str!("../static/state.js"))
}
