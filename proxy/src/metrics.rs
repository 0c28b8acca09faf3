//! `GET /metrics`: what the proxy sees, in the Prometheus text format, for a teacher who
//! wants a graph (or a test that wants a number): requests by route, mode, node and
//! status; how long each node takes to answer; nodes down and marked down; how many
//! pages watch; how old the snapshot they see is.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use storage::http::{self, Response};

use crate::Proxy;

/// A request through the proxy.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub mode: String,
    /// The node that answered (one sample per node for a replicated request; "" for the
    /// proxy's own routes).
    pub node: String,
    pub status: u16,
}

/// One node.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

/// A viewer is a client that looked at the page in this window.
const VIEWER_WINDOW: Duration = Duration::from_secs(5);

/// Seconds per answer, by node.
pub type Latency = Family<NodeLabels, Histogram, fn() -> Histogram>;

/// An empty latency family (the upstream client fills it; `/metrics` shows it).
pub fn latency_family() -> Latency {
    Family::new_with_constructor(latency_histogram)
}

/// The counters, kept as requests go; gauges are read when `/metrics` is asked.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    /// Who looked at the page lately (a std lock, one map operation at a time).
    viewers: Mutex<HashMap<IpAddr, Instant>>,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to ~6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            viewers: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// Counts one request: one sample per node that answered it.
    pub fn request(&self, route: &str, mode: &str, nodes: &[String], status: StatusCode) {
        let mut labels = RequestLabels {
            route: route.to_string(),
            mode: mode.to_string(),
            node: String::new(),
            status: status.as_u16(),
        };
        if nodes.is_empty() {
            self.requests.get_or_create(&labels).inc();
        }
        for node in nodes {
            labels.node.clone_from(node);
            self.requests.get_or_create(&labels).inc();
        }
    }

    /// A client looked at the page.
    pub fn viewed(&self, client: IpAddr) {
        let mut viewers = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        viewers.retain(|_, at| at.elapsed() < VIEWER_WINDOW);
        viewers.insert(client, Instant::now());
    }

    fn viewers(&self) -> usize {
        let viewers = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        viewers
            .values()
            .filter(|at| at.elapsed() < VIEWER_WINDOW)
            .count()
    }

    /// The text format, with the gauges read now.
    pub fn render(&self, proxy: &Proxy) -> Response {
        let mut registry = <Registry>::with_prefix("kv");
        register_shared(&proxy.upstream, &mut registry);
        self.register(proxy, &mut registry);
        encoded(&registry)
    }

    /// This proxy's (one pool's) counters and gauges, into `registry`.
    pub fn register(&self, proxy: &Proxy, registry: &mut Registry) {
        registry.register(
            "requests",
            "Requests through the proxy, by route, mode, node and status",
            self.requests.clone(),
        );
        let gauge = |value: i64| {
            let g = Gauge::<i64>::default();
            g.set(value);
            g
        };
        let latest = proxy.snapshots.latest();
        let down = latest
            .as_ref()
            .map_or(0, |s| s.views.iter().filter(|v| !v.up).count());
        registry.register(
            "nodes",
            "Nodes in the cluster",
            gauge(proxy.live.get().nodes.len() as i64),
        );
        registry.register(
            "nodes_down",
            "Nodes the last sweep found down",
            gauge(down as i64),
        );
        registry.register(
            "viewers",
            "Clients that looked at the page in the last 5 seconds",
            gauge(self.viewers() as i64),
        );
        registry.register(
            "event_streams",
            "Pages holding a live event stream open",
            gauge(proxy.snapshots.streams() as i64),
        );
        let age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        age.set(proxy.snapshots.age().map_or(-1.0, |a| a.as_secs_f64()));
        registry.register(
            "snapshot_age_seconds",
            "Age of the snapshot the page shows (-1 before the first)",
            age,
        );
    }
}

/// What the client shared by every pool measured: node latency, skipped requests, nodes
/// marked down (by URL, whichever pool asked).
pub fn register_shared(upstream: &crate::upstream::Upstream, registry: &mut Registry) {
    registry.register(
        "node_latency_seconds",
        "How long each node takes to answer, sending to the last byte",
        upstream.latency.clone(),
    );
    registry.register(
        "skipped",
        "Requests a node was skipped for, because it was marked down",
        upstream.skipped.clone(),
    );
    let marked = Gauge::<i64>::default();
    marked.set(upstream.health.marked().len() as i64);
    registry.register(
        "nodes_marked_down",
        "Nodes marked down after a timeout, probed in the background",
        marked,
    );
}

/// A registry as the answer to `GET /metrics`.
pub fn encoded(registry: &Registry) -> Response {
    let mut text = String::new();
    let _ = encode(&mut text, registry);
    http::with_type(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        text,
    )
}
