//! Nodes failing under the real proxy: one stopped, one that never answers, one
//! restarted on its port. Each failure is named in the answer, bounded by the
//! timeout, and the proxy keeps serving the rest.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::{get, post};
use serde_json::json;
use support::{
    black_hole, named, start_node_on, start_nodes, start_proxy, url, value_on, yaml, Cut, Front,
};

/// The config's `timeout_ms` for these tests: short, so a black hole costs little.
const TIMEOUT_MS: u64 = 300;

/// Slack for a loaded test machine on top of the timeout.
const SLACK: Duration = Duration::from_millis(700);

/// A stopped node gets a 502 whose JSON names it and its URL; keys on the other node
/// are still served.
#[tokio::test]
async fn a_stopped_node_is_a_502_naming_it() {
    let mut nodes = start_nodes(2).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    // key-2 lives on kv2 and key-0 on kv1 (SHA-256 mod 2, as Python's hashlib says).
    post(proxy.addr, "/put?key=key-2", r#"{"value": 2}"#)
        .await
        .expect_json(200);
    let kv2 = nodes.pop().unwrap();
    let kv2_url = url(kv2.addr);
    kv2.shutdown().await.unwrap();

    let reply = get(proxy.addr, "/get?key=key-2").await;
    let body = reply.expect_error(502);
    assert_eq!(body["node"], "kv2");
    assert_eq!(body["url"], kv2_url.as_str());
    let sentence = body["error"].as_str().unwrap();
    assert!(
        sentence.contains(&format!("node kv2 ({kv2_url})")),
        "{sentence}"
    );
    assert!(sentence.contains("refused"), "{sentence}");
    assert_eq!(reply.header("x-kv-node"), Some("kv2"));

    post(proxy.addr, "/put?key=key-0", r#"{"value": 0}"#)
        .await
        .expect_json(200);
    assert_eq!(
        get(proxy.addr, "/get?key=key-0").await.expect_json(200)["value"],
        0
    );
    let health = get(proxy.addr, "/health").await.expect_json(200);
    assert_eq!(health["nodes_up"], 1);
}

/// A node that accepts the connection and never answers costs one timeout: a 504 that
/// says so, not a hung client.
#[tokio::test]
async fn a_black_hole_is_a_504_within_the_timeout() {
    let hole = black_hole().await;
    let list = vec![("kv1", url(hole.addr))];
    let (proxy, _) = start_proxy(&yaml(
        "sharding",
        &list,
        &format!("timeout_ms: {TIMEOUT_MS}\n"),
    ))
    .await;
    let started = Instant::now();
    let reply = get(proxy.addr, "/get?key=k").await;
    let took = started.elapsed();
    let body = reply.expect_error(504);
    assert!(
        took >= Duration::from_millis(TIMEOUT_MS),
        "answered before the timeout: {took:?}"
    );
    assert!(
        took < Duration::from_millis(TIMEOUT_MS) + SLACK,
        "took {took:?}"
    );
    assert_eq!(body["node"], "kv1");
    assert_eq!(body["url"], url(hole.addr));
    let sentence = body["error"].as_str().unwrap();
    assert!(
        sentence.contains(&format!("no answer within {TIMEOUT_MS} ms")),
        "{sentence}"
    );
}

/// In replication a write still succeeds through the live node while the black hole
/// times out, and a read falls through the black hole to the live node.
#[tokio::test]
async fn replication_writes_and_reads_around_a_black_hole() {
    let hole = black_hole().await;
    let live = start_nodes(1).await.pop().unwrap();
    let list = vec![("hole", url(hole.addr)), ("kv1", url(live.addr))];
    let extra = format!("timeout_ms: {TIMEOUT_MS}\n");
    let (proxy, _) = start_proxy(&yaml("replication", &list, &extra)).await;

    let started = Instant::now();
    let reply = post(proxy.addr, "/put?key=k", r#"{"value": "v"}"#).await;
    assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS) + SLACK);
    let body = reply.expect_json(200);
    assert_eq!(body["message"], "done on 1 of 2 nodes");
    assert_eq!(body["nodes"][0]["node"], "hole");
    assert_eq!(body["nodes"][0]["status"], 504);
    assert_eq!(body["nodes"][1]["ok"], true);
    assert_eq!(value_on(live.addr, "k").await, Some(json!("v")));

    let reply = get(proxy.addr, "/get?key=k").await;
    assert_eq!(reply.expect_json(200)["value"], "v");
    assert_eq!(reply.header("x-kv-node"), Some("kv1"));
}

/// A node stopped and started again on the same port serves the very first request
/// after it is back: whatever the proxy had pooled for the old process is not reported
/// as a failure. (A graceful stop closes idle connections, so the pool usually notices
/// by itself; the retry for when it does not is pinned down by the next test.)
#[tokio::test]
async fn a_restarted_node_serves_the_first_request_after_it() {
    let first = start_nodes(1).await.pop().unwrap();
    let addr = first.addr;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(addr))], "")).await;
    // Several requests, so the proxy holds keep-alive connections to the node.
    for i in 0..3 {
        post(proxy.addr, &format!("/put?key=k{i}"), r#"{"value": 1}"#)
            .await
            .expect_json(200);
    }
    first.shutdown().await.unwrap();
    get(proxy.addr, "/get?key=k0").await.expect_error(502);

    for round in 0..3 {
        let again = start_node_on(addr, "kv1").await;
        let reply = post(proxy.addr, "/put?key=k0", r#"{"value": 2}"#).await;
        assert_eq!(
            reply.status, 200,
            "round {round}, first request after the restart: {reply:#?}"
        );
        let reply = get(proxy.addr, "/get?key=k0").await;
        assert_eq!(reply.expect_json(200)["value"], 2, "round {round}");
        again.stop().await;
    }
}

/// A pooled connection can die at the very moment the proxy reuses it (the node
/// restarted, a NAT dropped it): the request goes out and the connection just closes.
/// The proxy sends it once more on a fresh connection, so the client sees a 200.
#[tokio::test]
async fn a_request_on_a_connection_that_died_is_sent_again() {
    let node = start_nodes(1).await.pop().unwrap();
    let front = Front::start(node.addr, Cut::Requests).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(front.addr))], "")).await;
    for i in 0..3 {
        let put = post(proxy.addr, &format!("/put?key=k{i}"), r#"{"value": 1}"#).await;
        assert_eq!(put.status, 200, "{put:#?}");
    }
    let opened = front.connections();
    front.cut_open_connections();
    let put = post(proxy.addr, "/put?key=after", r#"{"value": 2}"#).await;
    assert_eq!(
        put.status, 200,
        "the first request after the connection died: {put:#?}"
    );
    assert_eq!(value_on(node.addr, "after").await, Some(json!(2)));
    assert!(
        front.connections() > opened,
        "no fresh connection was opened"
    );
}

/// When every replica is a black hole, a replicated write and a replicated read both
/// answer 504 (the nodes timed out), naming each node, within one timeout for the write.
#[tokio::test]
async fn replication_over_black_holes_is_a_504() {
    let (a, b) = (black_hole().await, black_hole().await);
    let list = vec![("kv1", url(a.addr)), ("kv2", url(b.addr))];
    let (proxy, _) = start_proxy(&yaml(
        "replication",
        &list,
        &format!("timeout_ms: {TIMEOUT_MS}\n"),
    ))
    .await;
    let started = Instant::now();
    let write = post(proxy.addr, "/put?key=k", r#"{"value": 1}"#).await;
    assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS) + SLACK);
    let body = write.expect_error(504);
    let sentence = body["error"].as_str().unwrap();
    assert!(
        sentence.contains("kv1") && sentence.contains("kv2"),
        "{sentence}"
    );
    get(proxy.addr, "/get?key=k").await.expect_error(504);
}
