//! Replication through the real proxy: writes land on every node and the answer lists
//! each node's outcome; reads take the first node that has the key; dead nodes are
//! named, and only a key missing everywhere is a 404.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::net::SocketAddr;

use common::{get, post, request, Node};
use serde_json::json;
use storage::http::json_text;
use support::{
    count_on, dead_addr, named, start_nodes, start_proxy, start_scripted, url, value_on, yaml,
};

/// A proxy replicating over kv1, kv2 and kv3 where kv2, in the middle, is dead: answers
/// the two live nodes (kv1 and kv3, in that order), the dead address, and the proxy.
async fn replicas_with_kv2_dead() -> (Vec<Node>, SocketAddr, Node) {
    let nodes = start_nodes(2).await;
    let dead = dead_addr().await;
    let list = vec![
        ("kv1", url(nodes[0].addr)),
        ("kv2", url(dead)),
        ("kv3", url(nodes[1].addr)),
    ];
    let (proxy, _) = start_proxy(&yaml("replication", &list, "")).await;
    (nodes, dead, proxy)
}

/// A put lands on every node; the 200 lists each node's outcome in config order.
#[tokio::test]
async fn a_put_lands_on_every_node() {
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("replication", &named(&nodes), "")).await;
    let reply = post(proxy.addr, "/put?key=Привет", r#"{"value": [1, 2]}"#).await;
    let body = reply.expect_json(200);
    assert_eq!(reply.header("x-kv-mode"), Some("replication"));
    assert_eq!(reply.header("x-kv-node"), Some("kv1,kv2,kv3"));
    assert_eq!(body["message"], "done on 3 of 3 nodes");
    let outcomes = body["nodes"].as_array().expect("a nodes list");
    assert_eq!(outcomes.len(), 3);
    for (i, o) in outcomes.iter().enumerate() {
        let name = format!("kv{}", i + 1);
        assert_eq!(o["node"], name.as_str(), "{body}");
        assert_eq!(o["status"], 200);
        assert_eq!(o["ok"], true);
        assert_eq!(o["answer"]["node"], name.as_str());
        assert_eq!(value_on(nodes[i].addr, "Привет").await, Some(json!([1, 2])));
    }
}

/// With one node dead a write still succeeds (200), and the dead node's outcome names
/// it, its URL and why.
#[tokio::test]
async fn a_write_survives_one_dead_node_and_names_it() {
    let (nodes, dead, proxy) = replicas_with_kv2_dead().await;
    let reply = post(proxy.addr, "/put?key=k", r#"{"value": 1}"#).await;
    let body = reply.expect_json(200);
    assert_eq!(body["message"], "done on 2 of 3 nodes");
    assert_eq!(reply.header("x-kv-node"), Some("kv1,kv3"));
    let down = &body["nodes"][1];
    assert_eq!(down["node"], "kv2", "{body}");
    assert_eq!(down["url"], url(dead));
    assert_eq!(down["ok"], false);
    assert_eq!(down["status"], 502);
    assert!(
        down["error"].as_str().unwrap().contains("refused"),
        "{down}"
    );
    assert_eq!(value_on(nodes[0].addr, "k").await, Some(json!(1)));
    assert_eq!(value_on(nodes[1].addr, "k").await, Some(json!(1)));
}

/// With every node dead a write is a 502 whose sentence and list give each node's reason.
#[tokio::test]
async fn a_write_with_every_node_dead_is_502_with_each_reason() {
    let list = vec![
        ("kv1", url(dead_addr().await)),
        ("kv2", url(dead_addr().await)),
    ];
    let (proxy, _) = start_proxy(&yaml("replication", &list, "")).await;
    let body = post(proxy.addr, "/put?key=k", r#"{"value": 1}"#)
        .await
        .expect_error(502);
    let sentence = body["error"].as_str().unwrap();
    assert!(sentence.contains("kv1: connection refused"), "{sentence}");
    assert!(sentence.contains("kv2: connection refused"), "{sentence}");
    let outcomes = body["nodes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 2);
    for (o, (name, url)) in outcomes.iter().zip(&list) {
        assert_eq!(o["node"], *name);
        assert_eq!(o["url"], url.as_str());
        assert_eq!(o["ok"], false);
    }
}

/// A read is the first node's 200, unchanged, even when a later node holds another value.
#[tokio::test]
async fn a_read_returns_the_first_nodes_answer_unchanged() {
    let nodes = start_nodes(2).await;
    let (proxy, _) = start_proxy(&yaml("replication", &named(&nodes), "")).await;
    post(nodes[0].addr, "/put?key=k", r#"{"value": "one"}"#).await;
    post(nodes[1].addr, "/put?key=k", r#"{"value": "two"}"#).await;
    let reply = get(proxy.addr, "/get?key=k").await;
    reply.expect_json(200);
    assert_eq!(reply.text(), get(nodes[0].addr, "/get?key=k").await.text());
    assert_eq!(reply.header("x-kv-node"), Some("kv1"));
    assert_eq!(reply.header("x-kv-mode"), Some("replication"));
}

/// When the first node is dead, or does not have the key, the read falls through to
/// the next node that does.
#[tokio::test]
async fn a_read_falls_through_a_dead_or_empty_first_node() {
    let nodes = start_nodes(2).await;
    let dead = dead_addr().await;
    // kv1 is dead, kv2 is empty, kv3 has the key.
    let list = vec![
        ("kv1", url(dead)),
        ("kv2", url(nodes[0].addr)),
        ("kv3", url(nodes[1].addr)),
    ];
    let (proxy, _) = start_proxy(&yaml("replication", &list, "")).await;
    post(nodes[1].addr, "/put?key=k", r#"{"value": 3}"#).await;
    let reply = get(proxy.addr, "/get?key=k").await;
    assert_eq!(reply.expect_json(200)["value"], 3);
    assert_eq!(reply.header("x-kv-node"), Some("kv3"));
    assert_eq!(reply.text(), get(nodes[1].addr, "/get?key=k").await.text());
}

/// A 404 only when every node says 404: a node that did not answer may hold the key, so
/// then the read is unknown (502), each node's outcome listed.
#[tokio::test]
async fn a_read_is_404_only_when_every_node_says_so() {
    let (nodes, dead, proxy) = replicas_with_kv2_dead().await;
    let body = get(proxy.addr, "/get?key=nowhere").await.expect_error(502);
    assert!(
        body["error"].as_str().unwrap().contains("unknown"),
        "{body}"
    );
    let outcomes = body["nodes"].as_array().unwrap();
    let statuses: Vec<_> = outcomes.iter().map(|o| o["status"].clone()).collect();
    assert_eq!(statuses, vec![json!(404), json!(502), json!(404)], "{body}");
    let all = vec![("kv1", url(nodes[0].addr)), ("kv3", url(nodes[1].addr))];
    let (alive, _) = start_proxy(&yaml("replication", &all, "")).await;
    get(alive.addr, "/get?key=nowhere").await.expect_error(404);

    // A node that answers 500 has not said the key is missing: 502, naming its reason.
    let broken = start_scripted(|_| {
        let body = r#"{"error":"disk on fire"}"#.to_string();
        json_text(hyper::StatusCode::INTERNAL_SERVER_ERROR, body)
    })
    .await;
    let mixed = vec![
        ("kv1", url(nodes[0].addr)),
        ("broken", url(broken.node.addr)),
    ];
    let (proxy, _) = start_proxy(&yaml("replication", &mixed, "")).await;
    let body = get(proxy.addr, "/get?key=nowhere").await.expect_error(502);
    let sentence = body["error"].as_str().unwrap();
    assert!(sentence.contains("broken: 500 disk on fire"), "{sentence}");

    // With only the dead node left to ask, nobody said 404: that is a 502, not a 404.
    let alone = vec![("kv2", url(dead))];
    let (lonely, _) = start_proxy(&yaml("replication", &alone, "")).await;
    get(lonely.addr, "/get?key=nowhere").await.expect_error(502);
}

/// `/clear` empties every node, in either mode.
#[tokio::test]
async fn clear_clears_every_node() {
    for mode in ["replication", "sharding"] {
        let nodes = start_nodes(3).await;
        let (proxy, _) = start_proxy(&yaml(mode, &named(&nodes), "")).await;
        for i in 0..10 {
            post(proxy.addr, &format!("/put?key=key-{i}"), r#"{"value": 0}"#)
                .await
                .expect_json(200);
        }
        let total: u64 = [
            count_on(nodes[0].addr).await,
            count_on(nodes[1].addr).await,
            count_on(nodes[2].addr).await,
        ]
        .iter()
        .sum();
        assert_eq!(total, if mode == "sharding" { 10 } else { 30 }, "{mode}");
        let body = post(proxy.addr, "/clear", "").await.expect_json(200);
        assert_eq!(body["message"], "done on 3 of 3 nodes", "{mode}: {body}");
        for node in &nodes {
            assert_eq!(count_on(node.addr).await, 0, "{mode}");
        }
    }
}

/// A delete removes the key from every node; deleting it again is every node's 404.
#[tokio::test]
async fn delete_removes_the_key_everywhere() {
    let nodes = start_nodes(2).await;
    let (proxy, _) = start_proxy(&yaml("replication", &named(&nodes), "")).await;
    post(proxy.addr, "/put?key=k", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    let body = request(proxy.addr, "DELETE", "/delete?key=k", &[], b"")
        .await
        .expect_json(200);
    assert_eq!(body["message"], "done on 2 of 2 nodes");
    assert_eq!(value_on(nodes[0].addr, "k").await, None);
    assert_eq!(value_on(nodes[1].addr, "k").await, None);

    let again = request(proxy.addr, "DELETE", "/delete?key=k", &[], b"")
        .await
        .expect_error(404);
    assert_eq!(again["nodes"].as_array().unwrap().len(), 2, "{again}");
    get(proxy.addr, "/get?key=k").await.expect_error(404);
}

/// When every replica answers the same client error (a delete of a missing key), the
/// proxy answers that status with the node's own sentence, not a gateway error.
#[tokio::test]
async fn the_same_client_error_everywhere_is_passed_on() {
    let nodes = start_nodes(2).await;
    let (proxy, _) = start_proxy(&yaml("replication", &named(&nodes), "")).await;
    let body = request(proxy.addr, "DELETE", "/delete?key=never", &[], b"")
        .await
        .expect_error(404);
    assert_eq!(body["error"], "key not found");
    assert_eq!(body["nodes"].as_array().map(Vec::len), Some(2));
}
