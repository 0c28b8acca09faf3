//! What the proxy shows about the cluster: the /state page and /state.json, /dump,
//! /health and /explain, each fetched from real nodes, escaping what students typed,
//! and answering within one timeout when nodes are dead or never answer.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::{get, post};
use serde_json::{json, Value};
use support::{
    black_hole, dead_addr, encode, named, start_nodes, start_proxy, unescape_html, url, yaml,
};

/// A key and a value a prankster would type.
const EVIL_KEY: &str = "<img src=x onerror=alert(1)>";
const EVIL_VALUE: &str = r#""</td><script>alert(2)</script>""#;

/// /state lists every key on the node that holds it, in both modes, and a hostile key
/// or value is shown as text, never as markup.
#[tokio::test]
async fn state_lists_every_key_and_escapes_them() {
    for mode in ["sharding", "replication"] {
        let nodes = start_nodes(3).await;
        let (proxy, _) = start_proxy(&yaml(mode, &named(&nodes), "")).await;
        let keys = ["key-0", "key-1", "key-2", "a&b", "Привет", EVIL_KEY];
        for key in keys {
            let body = format!(r#"{{"value": {EVIL_VALUE}}}"#);
            post(proxy.addr, &format!("/put?key={}", encode(key)), body)
                .await
                .expect_json(200);
        }
        let reply = get(proxy.addr, "/state").await;
        assert_eq!(reply.status, 200);
        let page = reply.text();
        assert!(!page.contains("<img"), "{mode}: the key is markup");
        assert!(
            !page.contains("</td><script>"),
            "{mode}: the value is markup"
        );
        assert_eq!(
            page.matches("<script").count(),
            2,
            "{mode}: a script got in"
        );
        // A node card's row is `<tr><td class="k">KEY</td><td>VALUE`: one card in sharding, every
        // card in replication (the recent list's rows start with the method instead).
        let shown = unescape_html(page);
        let copies = if mode == "sharding" { 1 } else { 3 };
        for key in keys {
            let row = format!("<tr><td class=\"k\">{key}</td><td>{EVIL_VALUE}");
            assert_eq!(
                shown.matches(&row).count(),
                copies,
                "{mode}: {key} not listed"
            );
        }

        let snapshot = get(proxy.addr, "/state.json").await.expect_json(200);
        assert_eq!(snapshot["mode"], mode);
        let listed: usize = snapshot["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["keys"].as_array().unwrap().len())
            .sum();
        assert_eq!(listed, keys.len() * copies, "{mode}: {snapshot}");
        assert_eq!(snapshot["total_keys"], keys.len() * copies);
    }
}

/// With a dead node and a black hole, /state still answers within about one timeout and
/// marks both down with the reason.
#[tokio::test]
async fn state_answers_within_the_timeout_and_marks_dead_nodes() {
    let live = start_nodes(1).await.pop().unwrap();
    let hole = black_hole().await;
    let list = vec![
        ("kv1", url(live.addr)),
        ("dead", url(dead_addr().await)),
        ("hole", url(hole.addr)),
    ];
    let (proxy, _) = start_proxy(&yaml("sharding", &list, "timeout_ms: 500\n")).await;
    let limit = Duration::from_millis(500 + 1000);

    let started = Instant::now();
    let reply = get(proxy.addr, "/state").await;
    assert!(
        started.elapsed() < limit,
        "/state took {:?}",
        started.elapsed()
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply
            .text()
            .matches(r#"<span class="badge down">DOWN</span>"#)
            .count(),
        2
    );
    assert_eq!(
        reply
            .text()
            .matches(r#"<span class="badge up">UP</span>"#)
            .count(),
        1
    );

    let started = Instant::now();
    let snapshot = get(proxy.addr, "/state.json").await.expect_json(200);
    assert!(
        started.elapsed() < limit,
        "/state.json took {:?}",
        started.elapsed()
    );
    let cards = snapshot["nodes"].as_array().unwrap();
    assert_eq!(cards[0]["up"], true);
    assert_eq!(cards[1]["up"], false);
    assert!(
        cards[1]["error"].as_str().unwrap().contains("refused"),
        "{}",
        cards[1]
    );
    assert_eq!(cards[2]["up"], false);
    assert!(
        cards[2]["error"].as_str().unwrap().contains("500 ms"),
        "{}",
        cards[2]
    );
}

/// /dump merges every node's pairs: each key with its value and the nodes holding it.
#[tokio::test]
async fn dump_merges_pairs_with_the_nodes_holding_each() {
    let nodes = start_nodes(2).await;
    let (proxy, _) = start_proxy(&yaml("replication", &named(&nodes), "")).await;
    post(proxy.addr, "/put?key=both", r#"{"value": {"n": 1}}"#).await;
    post(nodes[1].addr, "/put?key=only2", r#"{"value": [2]}"#).await;

    let dump = get(proxy.addr, "/dump").await.expect_json(200);
    assert_eq!(dump["mode"], "replication");
    assert_eq!(dump["count"], 2);
    assert_eq!(
        dump["data"]["both"],
        json!({"value": {"n": 1}, "nodes": ["kv1", "kv2"]})
    );
    assert_eq!(
        dump["data"]["only2"],
        json!({"value": [2], "nodes": ["kv2"]})
    );
    let counts: Vec<&Value> = dump["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["count"])
        .collect();
    assert_eq!(counts, vec![&json!(1), &json!(2)]);

    // In sharding each key is held by the one node it hashes to (mod 2: key-0 kv1, key-2 kv2).
    let (sharded, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    post(nodes[0].addr, "/clear", "").await;
    post(nodes[1].addr, "/clear", "").await;
    post(sharded.addr, "/put?key=key-0", r#"{"value": 0}"#).await;
    post(sharded.addr, "/put?key=key-2", r#"{"value": 2}"#).await;
    let dump = get(sharded.addr, "/dump").await.expect_json(200);
    assert_eq!(dump["data"]["key-0"]["nodes"], json!(["kv1"]));
    assert_eq!(dump["data"]["key-2"]["nodes"], json!(["kv2"]));
}

/// /health lists each node up or down, with the reason for a down one.
#[tokio::test]
async fn health_lists_each_node_up_or_down() {
    let live = start_nodes(1).await.pop().unwrap();
    let dead = dead_addr().await;
    let list = vec![("kv1", url(live.addr)), ("kv2", url(dead))];
    let (proxy, _) = start_proxy(&yaml("sharding", &list, "")).await;
    let health = get(proxy.addr, "/health").await.expect_json(200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["nodes_up"], 1);
    assert_eq!(health["nodes_total"], 2);
    assert_eq!(health["nodes"][0]["up"], true);
    assert_eq!(health["nodes"][0]["health"]["node"], "kv1");
    assert_eq!(health["nodes"][1]["up"], false);
    assert_eq!(health["nodes"][1]["url"], url(dead));
    assert!(
        health["nodes"][1]["error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{health}"
    );
}

/// /explain gives the arithmetic as Python's hashlib does it: for key-7 over 3 nodes,
/// `hashlib.sha256(b"key-7").hexdigest()`, the integer, mod 3 = 0, so kv1.
#[tokio::test]
async fn explain_matches_python() {
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    let body = get(proxy.addr, "/explain?key=key-7").await.expect_json(200);
    // python3 -c 'import hashlib; h=hashlib.sha256(b"key-7").hexdigest(); print(h, int(h, 16), int(h, 16) % 3)'
    assert_eq!(
        body["sha256"],
        "78ed7d2bf2a8c4af4a3d3652a89fe8b9f46addb8bc8e7cb69106a6467900f5e6"
    );
    assert_eq!(
        body["integer"],
        "54697148487470501034229227219331982039863182210208027117681212980549648446950"
    );
    assert_eq!(body["n"], 3);
    assert_eq!(body["mod_n"], 0);
    assert_eq!(body["index"], 0);
    assert_eq!(body["node"], "kv1");
    assert_eq!(body["writes_go_to"], json!(["kv1"]));
    // key-1 mod 3 = 1: kv2, and the put really goes there.
    let body = get(proxy.addr, "/explain?key=key-1").await.expect_json(200);
    assert_eq!(
        (body["mod_n"].clone(), body["node"].clone()),
        (json!(1), json!("kv2"))
    );
    let put = post(proxy.addr, "/put?key=key-1", r#"{"value": 1}"#).await;
    assert_eq!(put.header("x-kv-node"), Some("kv2"));
    get(proxy.addr, "/explain").await.expect_error(400);
}
