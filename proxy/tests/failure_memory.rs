//! Failure memory: a node that timed out is marked down, so a closed laptop costs the
//! class one timeout, not one per request; marked nodes are asked last and skipped by
//! replicated writes; a node that answers again is used again at once.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{get, post, start_server};
use hyper::body::Incoming;
use hyper::Request;
use support::{black_hole, start_nodes, start_proxy, url, value_on, yaml};

const TIMEOUT: &str = "timeout_ms: 300\n";

/// A replicated read whose first node is a black hole waits one timeout, once; the
/// reads after it are answered by the next replica at once.
#[tokio::test]
async fn a_black_hole_costs_one_timeout_not_one_per_read() {
    let hole = black_hole().await;
    let nodes = start_nodes(1).await;
    let list = [("hole", url(hole.addr)), ("kv1", url(nodes[0].addr))];
    let (proxy, _) = start_proxy(&yaml("replication", &list, TIMEOUT)).await;
    post(proxy.addr, "/put?key=k", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    for i in 0..10 {
        let started = Instant::now();
        let got = get(proxy.addr, "/get?key=k").await.expect_json(200);
        assert_eq!(got["value"], 1);
        if i > 0 {
            assert!(
                started.elapsed() < Duration::from_millis(250),
                "read {i} took {:?}: it waited for the black hole again",
                started.elapsed()
            );
        }
    }
}

/// A replicated write does not wait for a marked node: it is listed as skipped, with
/// since when it is down, and the page's feed says so.
#[tokio::test]
async fn a_replicated_write_skips_a_marked_node() {
    let hole = black_hole().await;
    let nodes = start_nodes(1).await;
    let list = [("hole", url(hole.addr)), ("kv1", url(nodes[0].addr))];
    let (proxy, _) = start_proxy(&yaml("replication", &list, TIMEOUT)).await;
    post(proxy.addr, "/put?key=a", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    let started = Instant::now();
    let body = post(proxy.addr, "/put?key=b", r#"{"value": 2}"#)
        .await
        .expect_json(200);
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "the write waited"
    );
    let hole_outcome = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "hole")
        .cloned()
        .unwrap();
    assert_eq!(hole_outcome["skipped"], true, "{body}");
    assert!(hole_outcome["error"]
        .as_str()
        .unwrap()
        .contains("down since"));
    assert_eq!(
        value_on(nodes[0].addr, "b").await,
        Some(serde_json::json!(2))
    );
    let page = get(proxy.addr, "/state.json").await.expect_json(200);
    let feed = page["recent"].to_string();
    assert!(feed.contains("skipped: down"), "{feed}");
    let metrics = get(proxy.addr, "/metrics").await;
    assert!(
        metrics.text().contains("kv_skipped_total{node=\"hole\"} 1"),
        "{}",
        metrics.text()
    );
}

/// A node that stalls, then recovers: once it answers again (the background probe, or
/// the next request that needs it) it is no longer marked, and reads go to it first.
#[tokio::test]
async fn a_recovered_node_is_used_again() {
    let (moody, stalled) = start_moody().await;
    let nodes = start_nodes(1).await;
    let list = [("moody", url(moody.addr)), ("kv1", url(nodes[0].addr))];
    let (proxy, _) = start_proxy(&yaml("replication", &list, TIMEOUT)).await;
    post(proxy.addr, "/put?key=k", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    let got = get(proxy.addr, "/get?key=k").await;
    assert_eq!(got.header("x-kv-node"), Some("kv1"), "moody timed out");
    stalled.store(false, Ordering::SeqCst);
    // The probe comes after the first back-off (1 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // (moody never stored k: the write to it stalled. A new key reaches both.)
        post(proxy.addr, "/put?key=k2", r#"{"value": 2}"#)
            .await
            .expect_json(200);
        let got = get(proxy.addr, "/get?key=k2").await;
        if got.status == 200 && got.header("x-kv-node") == Some("moody") {
            break;
        }
        let health = get(proxy.addr, "/health").await;
        assert!(
            Instant::now() < deadline,
            "moody is never asked first again: {got:#?}\n{}",
            health.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = get(proxy.addr, "/health").await.expect_json(200);
    assert_eq!(
        health["nodes"][0]["marked_down_since_ms"],
        serde_json::Value::Null
    );
}

/// Sharding cannot answer without the key's one node, so a marked node is still asked:
/// a restarted node serves its first request.
#[tokio::test]
async fn sharding_still_asks_a_marked_node() {
    let (moody, stalled) = start_moody().await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("moody", url(moody.addr))], TIMEOUT)).await;
    get(proxy.addr, "/get?key=k").await.expect_error(504);
    stalled.store(false, Ordering::SeqCst);
    get(proxy.addr, "/get?key=k").await.expect_error(404);
}

/// Starts a [`Moody`] node, stalled; clearing the flag it hands back makes it answer.
async fn start_moody() -> (common::Node, Arc<AtomicBool>) {
    let stalled = Arc::new(AtomicBool::new(true));
    let flag = stalled.clone();
    let inner = Arc::new(
        storage::routes::Node::open(&storage::Settings::named("moody"))
            .expect("no data file to open"),
    );
    let node = start_server(move |listener, stop| {
        let moody = Arc::new(Moody {
            inner,
            stalled: flag,
        });
        storage::server::run(listener, moody, stop)
    })
    .await;
    (node, stalled)
}

/// A node that never answers while `stalled` is set, and is a storage node otherwise.
struct Moody {
    inner: Arc<storage::routes::Node>,
    stalled: Arc<AtomicBool>,
}

impl storage::server::Handler for Moody {
    async fn handle(
        &self,
        req: Request<Incoming>,
        peer: std::net::SocketAddr,
    ) -> storage::http::Response {
        if self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        self.inner.handle(req, peer).await
    }
}
