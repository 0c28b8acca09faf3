//! The placement lab on real nodes: R copies on the ring, what `/explain` says in each
//! mode, and `POST /rebalance` putting every key where the placement now says, copying
//! before it deletes, so a node that fails midway costs no key.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::{get, post, request};
use proxy::config::Config;
use serde_json::Value;
use support::{named, start_nodes, start_proxy, start_scripted, url, yaml};

/// Every key a node holds, by its own `/dump`.
async fn keys_on(node: SocketAddr) -> BTreeSet<String> {
    let dump = get(node, "/dump").await.expect_json(200);
    dump["data"].as_object().unwrap().keys().cloned().collect()
}

async fn put_keys(proxy: SocketAddr, keys: &[String]) {
    for key in keys {
        post(
            proxy,
            &format!("/put?key={key}"),
            format!(r#"{{"value": "{key}"}}"#),
        )
        .await
        .expect_json(200);
    }
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

/// `replicas: 2` on the ring puts every key on exactly two nodes, and every key stays
/// readable with one node stopped.
#[tokio::test]
async fn two_replicas_on_the_ring_survive_a_node() {
    let mut nodes = start_nodes(3).await;
    let config = yaml(
        "consistent-hashing",
        &named(&nodes),
        "replicas: 2\ntimeout_ms: 500\n",
    );
    let (proxy, _) = start_proxy(&config).await;
    let all = keys(200);
    put_keys(proxy.addr, &all).await;
    let mut copies = 0;
    for key in &all {
        let mut on = 0;
        for n in &nodes {
            on += keys_on(n.addr).await.contains(key) as usize;
        }
        assert_eq!(on, 2, "{key} is on {on} nodes");
        copies += on;
    }
    assert_eq!(copies, 400);
    nodes.remove(1).shutdown().await.unwrap();
    for key in &all {
        let got = get(proxy.addr, &format!("/get?key={key}")).await;
        assert_eq!(got.expect_json(200)["value"], key.as_str());
    }
}

/// `/explain` in the ring and rendezvous modes gives their steps and names the first
/// home as `node`, keeping the fields scripts read.
#[tokio::test]
async fn explain_follows_the_mode() {
    let nodes = start_nodes(3).await;
    for (mode, word) in [("consistent-hashing", "token"), ("rendezvous", "score")] {
        let (proxy, _) = start_proxy(&yaml(mode, &named(&nodes), "replicas: 2\n")).await;
        let e = get(proxy.addr, "/explain?key=key-7").await.expect_json(200);
        let steps = e["steps"].to_string();
        assert!(steps.contains(word), "{mode}: {steps}");
        assert_eq!(e["writes_go_to"].as_array().unwrap().len(), 2, "{e}");
        assert_eq!(e["node"], e["reads_try"][0], "{e}");
        assert!(e["sha256"].is_string() && e["mod_n"].is_number(), "{e}");
    }
}

/// After a fourth node joins the config, `/rebalance` moves every misplaced key: each key
/// is readable and on exactly its one home, and the answer counts what moved.
#[tokio::test]
async fn rebalance_puts_every_key_home() {
    let nodes = start_nodes(4).await;
    let list = named(&nodes);
    let (proxy, live) = start_proxy(&yaml("rendezvous", &list[..3], "")).await;
    let all = keys(300);
    put_keys(proxy.addr, &all).await;
    let grown = Config::parse(&yaml("rendezvous", &list, "")).unwrap();
    live.live.replace(grown);
    let missing = all
        .iter()
        .filter(|k| {
            let homes = live.live.get().homes(k);
            homes != [3] && homes.len() == 1
        })
        .count();
    assert!(missing > 0);
    let answer = post(proxy.addr, "/rebalance", "").await.expect_json(200);
    assert_eq!(answer["failed"], 0, "{answer}");
    assert!(answer["moved"].as_u64().unwrap() > 0, "{answer}");
    let mut held = 0;
    for n in &nodes {
        held += keys_on(n.addr).await.len();
    }
    assert_eq!(held, all.len(), "every key once: {answer}");
    for key in &all {
        let got = get(proxy.addr, &format!("/get?key={key}")).await;
        assert_eq!(got.expect_json(200)["value"], key.as_str());
    }
}

/// A new home that fails every write (as a node killed mid-rebalance would): its keys
/// are not deleted from where they were, so no key is lost, and the answer counts them
/// as failed.
#[tokio::test]
async fn a_failing_node_during_a_rebalance_loses_no_key() {
    let nodes = start_nodes(3).await;
    let broken = start_scripted(|_| {
        storage::http::json_text(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"disk gone"}"#.into(),
        )
    })
    .await;
    let mut list = named(&nodes);
    let (proxy, live) = start_proxy(&yaml("consistent-hashing", &list, "")).await;
    let all = keys(300);
    put_keys(proxy.addr, &all).await;
    list.push(("kv4", url(broken.node.addr)));
    live.live
        .replace(Config::parse(&yaml("consistent-hashing", &list, "")).unwrap());
    let answer = post(proxy.addr, "/rebalance", "").await.expect_json(200);
    assert!(answer["failed"].as_u64().unwrap() > 0, "{answer}");
    let mut union = BTreeSet::new();
    for n in &nodes {
        union.extend(keys_on(n.addr).await);
    }
    assert_eq!(union.len(), all.len(), "a key was lost: {answer}");
}

/// `/rebalance` moves data in bulk: with an admin token it needs it.
#[tokio::test]
async fn rebalance_needs_the_admin_token_when_there_is_one() {
    let nodes = start_nodes(2).await;
    let config = yaml("sharding", &named(&nodes), "admin_token: t3acher\n");
    let (proxy, _) = start_proxy(&config).await;
    post(proxy.addr, "/rebalance", "").await.expect_error(401);
    let ok = request(
        proxy.addr,
        "POST",
        "/rebalance",
        &[("Authorization", "Bearer t3acher")],
        b"",
    )
    .await;
    let body: Value = ok.expect_json(200);
    assert_eq!(body["keys"], 0);
}
