//! What the live /state page is made of, read from `/state.json`: replicas that
//! disagree, the notice when the number of nodes changes, how the keys spread, the last
//! requests; and the storage node's own live page.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use common::{get, post};
use serde_json::Value;
use support::{named, start_nodes, start_proxy, yaml};

/// The cards of a snapshot, by node name.
fn card<'a>(snapshot: &'a Value, name: &str) -> &'a Value {
    snapshot["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no card for {name}: {snapshot}"))
}

/// In replication, a key missing on some node and a key whose values differ between
/// nodes (a node restarted empty, two writers racing) are flagged, with where and what.
#[tokio::test]
async fn replicas_that_disagree_are_flagged() {
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("replication", &named(&nodes), "")).await;
    post(proxy.addr, "/put?key=same", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    post(proxy.addr, "/put?key=raced", r#"{"value": "a"}"#)
        .await
        .expect_json(200);
    // Behind the proxy's back: kv2 gets another value, and only kv1 gets `lonely`.
    post(nodes[1].addr, "/put?key=raced", r#"{"value": "b"}"#)
        .await
        .expect_json(200);
    post(nodes[0].addr, "/put?key=lonely", r#"{"value": 0}"#)
        .await
        .expect_json(200);

    let snapshot = get(proxy.addr, "/state.json").await.expect_json(200);
    let divergent = snapshot["divergent"].as_array().unwrap();
    let keys: Vec<&str> = divergent
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["lonely", "raced"], "{snapshot}");
    assert_eq!(
        divergent[0]["missing_on"],
        serde_json::json!(["kv2", "kv3"])
    );
    assert_eq!(divergent[1]["values"]["kv1"], "\"a\"");
    assert_eq!(divergent[1]["values"]["kv2"], "\"b\"");
    let page = get(proxy.addr, "/state").await.text().to_string();
    assert!(page.contains("Replicas disagree"));
    assert!(!page.contains(r#"<section id="divergent-section" hidden>"#));
}

/// In sharding, keys on one node only are the point, not a disagreement.
#[tokio::test]
async fn sharding_flags_nothing() {
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    for i in 0..10 {
        post(proxy.addr, &format!("/put?key=k{i}"), r#"{"value": 1}"#)
            .await
            .expect_json(200);
    }
    let snapshot = get(proxy.addr, "/state.json").await.expect_json(200);
    assert_eq!(snapshot["divergent"], serde_json::json!([]));
    assert_eq!(snapshot["notice"], Value::Null);
}

/// The distribution: each card's count, and its share of all keys, which add up to 100%.
#[tokio::test]
async fn each_card_has_its_count_and_share() {
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    for i in 0..30 {
        post(proxy.addr, &format!("/put?key=key-{i}"), r#"{"value": 1}"#)
            .await
            .expect_json(200);
    }
    let snapshot = get(proxy.addr, "/state.json").await.expect_json(200);
    assert_eq!(snapshot["total_keys"], 30);
    let mut counted = 0;
    let mut shares = 0.0;
    for node in &nodes {
        let health = get(node.addr, "/health").await.expect_json(200);
        let c = card(&snapshot, health["node"].as_str().unwrap());
        assert_eq!(c["count"], health["keys"]);
        counted += health["keys"].as_u64().unwrap();
        shares += c["share_pct"].as_f64().unwrap();
    }
    assert_eq!(counted, 30);
    assert!((shares - 100.0).abs() < 0.5, "shares add up to {shares}");
}

/// A reload that changes the number of nodes puts the lesson of `mod N` on the page.
#[tokio::test]
async fn a_change_of_n_is_said_on_the_page() {
    let nodes = start_nodes(3).await;
    let all = named(&nodes);
    let (proxy, shared) = start_proxy(&yaml("sharding", &all[..2], "")).await;
    let path = std::env::temp_dir().join("live-state-n.yml");
    proxy::reload::apply(&shared, &path, &yaml("sharding", &all, ""));
    let snapshot = get(proxy.addr, "/state.json").await.expect_json(200);
    let notice = snapshot["notice"].as_str().unwrap_or_default();
    assert!(notice.contains("from 2 to 3"), "{snapshot}");
    assert!(get(proxy.addr, "/state")
        .await
        .text()
        .contains("from 2 to 3"));
}

/// The last requests, newest first: method, key, the node that answered, status.
#[tokio::test]
async fn the_last_requests_are_listed() {
    let nodes = start_nodes(2).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    post(proxy.addr, "/put?key=first", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    let answer = get(proxy.addr, "/get?key=first").await;
    let node = answer.header("x-kv-node").unwrap().to_string();
    let snapshot = get(proxy.addr, "/state.json").await.expect_json(200);
    let recent = snapshot["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0]["method"], "GET");
    assert_eq!(recent[0]["key"], "first");
    assert_eq!(recent[0]["nodes"], serde_json::json!([node]));
    assert_eq!(recent[0]["status"], 200);
    assert_eq!(recent[1]["method"], "POST");
}

/// A node's own page updates itself: it loads its script, which reads `/dump?limit=N`,
/// and that answers the first N keys with the count of all.
#[tokio::test]
async fn the_node_page_is_live() {
    let node = start_nodes(1).await.pop().unwrap();
    for k in ["b", "a", "c"] {
        post(node.addr, &format!("/put?key={k}"), r#"{"value": 1}"#)
            .await
            .expect_json(200);
    }
    let page = get(node.addr, "/state").await;
    assert!(page.text().contains(r#"<script src="/state.js""#));
    let script = get(node.addr, "/state.js").await;
    assert_eq!(script.status, 200);
    assert!(script
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(script.text().contains("dump?limit="));
    assert!(!script.text().contains("innerHTML"));
    let dump = get(node.addr, "/dump?limit=2").await.expect_json(200);
    assert_eq!(dump["count"], 3);
    let keys: Vec<&String> = dump["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a", "b"]);
    get(node.addr, "/dump?limit=x").await.expect_error(400);
}

/// A card lists the keys written lately first, however long the key: a 300-character
/// key written last comes before keys that sort earlier.
#[tokio::test]
async fn the_newest_key_comes_first_even_when_long() {
    let node = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&node), "")).await;
    for k in ["a0", "a1", "a2"] {
        post(proxy.addr, &format!("/put?key={k}"), r#"{"value": 1}"#)
            .await
            .expect_json(200);
    }
    let long = "z".repeat(300);
    post(proxy.addr, &format!("/put?key={long}"), r#"{"value": 2}"#)
        .await
        .expect_json(200);
    let snapshot = get(proxy.addr, "/state.json").await.expect_json(200);
    let keys: Vec<&str> = card(&snapshot, "kv1")["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [long.as_str(), "a2", "a1", "a0"]);
}
