//! Two lessons side by side: a sharding pool and a replication pool on one proxy, by
//! path prefix; the root keeps the one-cluster API and mirrors its writes; a node killed
//! shows the difference; the root's pages cover every pool; each pool joins and reloads
//! on its own.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod students_support;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{get, post, request, start_server, Node};
use proxy::config::Config;
use proxy::pools::Pools;
use students_support::{placement, post_auth};
use support::{start_nodes, url, value_on, TempFile};

/// The nodes' URLs.
fn urls(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(|n| url(n.addr)).collect()
}

/// `pools:` with a sharding pool over `s` and a mirrored replication pool over `r`.
fn two_pools(s: &[Node], r: &[Node], extra: &str) -> String {
    pools_of(&urls(s), &urls(r), extra)
}

fn pools_of(s: &[String], r: &[String], extra: &str) -> String {
    let block = |name: &str, mode: &str, nodes: &[String], more: &str| {
        let mut text = format!("  - name: {name}\n    mode: {mode}\n{more}    nodes:\n");
        for (i, u) in nodes.iter().enumerate() {
            text.push_str(&format!(
                "      - name: {}{}\n        url: {u}\n",
                &name[..1],
                i + 1
            ));
        }
        text
    };
    format!(
        "pools:\n{}{}{extra}",
        block("sharded", "sharding", s, ""),
        block("replicated", "replication", r, "    mirror: true\n")
    )
}

async fn start_pools(text: &str) -> (Node, Arc<Pools>) {
    let config = Config::parse(text).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"));
    let pools = Arc::new(Pools::new(config));
    let serving = pools.clone();
    let node =
        start_server(move |listener, stop| proxy::serve_pools(listener, serving, stop)).await;
    (node, pools)
}

async fn put(addr: SocketAddr, path: &str, key: &str, value: &str) -> common::Reply {
    post(
        addr,
        &format!("{path}?key={key}"),
        format!(r#"{{"value": "{value}"}}"#),
    )
    .await
}

/// `/sharded/...` reaches only the sharding pool; the root is that pool (its reads and
/// writes), and `/replicated/...` is the other one.
#[tokio::test]
async fn pools_answer_under_their_names_and_the_root_is_the_first() {
    let (s, r) = (start_nodes(3).await, start_nodes(3).await);
    let (proxy, _) = start_pools(&two_pools(&s, &r, "")).await;
    put(proxy.addr, "/sharded/put", "only-sharded", "1")
        .await
        .expect_json(200);
    let root = get(proxy.addr, "/get?key=only-sharded").await;
    assert_eq!(root.header("x-kv-mode"), Some("sharding"));
    assert_eq!(root.expect_json(200)["value"], "1");
    get(proxy.addr, "/replicated/get?key=only-sharded")
        .await
        .expect_error(404);
    put(proxy.addr, "/replicated/put", "only-replicated", "2")
        .await
        .expect_json(200);
    for n in &r {
        assert_eq!(value_on(n.addr, "only-replicated").await, Some("2".into()));
    }
    get(proxy.addr, "/get?key=only-replicated")
        .await
        .expect_error(404);
    let explained = get(proxy.addr, "/replicated/explain?key=k")
        .await
        .expect_json(200);
    assert_eq!(explained["mode"], "replication");
    let to = get(proxy.addr, "/replicated").await;
    assert_eq!(
        (to.status, to.header("location")),
        (302, Some("/replicated/state"))
    );
}

/// A write at the root lands in the first pool and in the mirror, where each pool's
/// placement puts it; the answer waits for both and says how the mirror went; a delete
/// at the root goes to both too.
#[tokio::test]
async fn root_writes_are_mirrored() {
    let (s, r) = (start_nodes(3).await, start_nodes(3).await);
    let (proxy, _) = start_pools(&two_pools(&s, &r, "")).await;
    for i in 0..21 {
        let key = format!("key-{i}");
        let stored = put(proxy.addr, "/put", &key, &key).await;
        assert_eq!(stored.header("x-kv-mirrored"), Some("replicated 200"));
        stored.expect_json(200);
        let shard = placement(&key, 3);
        for (j, n) in s.iter().enumerate() {
            let held = value_on(n.addr, &key).await.is_some();
            assert_eq!(held, j == shard, "{key} on s{}", j + 1);
        }
        for n in &r {
            assert_eq!(value_on(n.addr, &key).await, Some(key.clone().into()));
        }
    }
    request(proxy.addr, "DELETE", "/delete?key=key-3", &[], b"")
        .await
        .expect_json(200);
    for n in s.iter().chain(&r) {
        assert_eq!(value_on(n.addr, "key-3").await, None);
    }
    // A bad write is refused once, before any pool sees it.
    let bad = request(proxy.addr, "POST", "/put", &[], b"{}").await;
    assert_eq!(bad.status, 400);
}

/// Killing a node shows the lesson: sharding's keys on it fail, replication still
/// answers every key.
#[tokio::test]
async fn a_dead_node_fails_sharding_not_replication() {
    let (mut s, r) = (start_nodes(3).await, start_nodes(3).await);
    let (proxy, _) = start_pools(&two_pools(&s, &r, "timeout_ms: 500\n")).await;
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    for k in &keys {
        put(proxy.addr, "/put", k, "v").await.expect_json(200);
    }
    let dead = s.remove(1);
    dead.shutdown().await.expect("node 2 stops");
    let mut r_dead = r;
    r_dead.remove(1).shutdown().await.expect("r2 stops");
    for k in &keys {
        let sharded = get(proxy.addr, &format!("/sharded/get?key={k}")).await;
        assert_eq!(
            sharded.status >= 500,
            placement(k, 3) == 1,
            "{k}: {}",
            sharded.text()
        );
        let replicated = get(proxy.addr, &format!("/replicated/get?key={k}")).await;
        assert_eq!(replicated.status, 200, "{k} in replication");
    }
}

/// With two pools, `/state` shows both side by side (each pool's page in a column, which
/// may be framed by this page only), and `/state.json`, `/health`, `/config`, `/metrics`
/// cover every pool.
#[tokio::test]
async fn the_root_pages_cover_every_pool() {
    let (s, r) = (start_nodes(2).await, start_nodes(2).await);
    let (proxy, _) = start_pools(&two_pools(&s, &r, "")).await;
    let page = get(proxy.addr, "/state").await;
    assert_eq!(page.status, 200);
    for want in [
        "src=\"/sharded/state\"",
        "src=\"/replicated/state\"",
        "mirrors the root",
    ] {
        assert!(page.text().contains(want), "{want} on the page");
    }
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let column = get(proxy.addr, "/replicated/state").await;
    assert_eq!(column.header("x-frame-options"), Some("SAMEORIGIN"));
    let state = get(proxy.addr, "/state.json").await.expect_json(200);
    let names: Vec<&str> = state["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sharded", "replicated"]);
    assert_eq!(state["pools"][1]["state"]["mode"], "replication");
    let health = get(proxy.addr, "/health").await.expect_json(200);
    assert_eq!(health["nodes_total"], 4);
    assert_eq!(health["pools"][1]["mirror"], true);
    let config = get(proxy.addr, "/config").await;
    let back = Config::parse(config.text()).expect("/config loads again");
    assert_eq!(back.pools.len(), 2);
    assert!(back.pools[1].mirror);
    let metrics = get(proxy.addr, "/metrics").await;
    assert!(
        metrics.text().contains("kv_nodes{pool=\"replicated\"} 2"),
        "{}",
        metrics.text()
    );
}

/// A node in two pools is said to be on each pool's cards; a join names its pool by
/// path and joins that pool only.
#[tokio::test]
async fn shared_nodes_are_named_and_joins_pick_their_pool() {
    let (s, r) = (start_nodes(2).await, start_nodes(1).await);
    let shared = vec![url(r[0].addr), url(s[1].addr)];
    let text = pools_of(
        &urls(&s),
        &shared,
        "join_token: class\njoin_allow_loopback: true\n",
    );
    let (proxy, pools) = start_pools(&text).await;
    let state = get(proxy.addr, "/replicated/state.json")
        .await
        .expect_json(200);
    assert_eq!(state["nodes"][1]["also_in"], serde_json::json!(["sharded"]));
    assert_eq!(state["nodes"][0]["also_in"], serde_json::json!([]));
    let student = start_nodes(1).await;
    let body = serde_json::json!({"name": "st", "url": url(student[0].addr)});
    post_auth(proxy.addr, "/replicated/join", Some("class"), &body)
        .await
        .expect_json(200);
    let names = |pool: &str| -> Vec<String> {
        let p = &pools.by_name(pool).unwrap().proxy;
        p.live.get().names().iter().map(|n| n.to_string()).collect()
    };
    assert_eq!(names("replicated"), ["r1", "r2", "st"]);
    assert_eq!(names("sharded"), ["s1", "s2"]);
}

/// A bad pool config is one sentence and exit code 2, naming the pool.
#[test]
fn a_bad_pool_config_is_one_sentence() {
    let file = TempFile::new(
        "pools-bad",
        "pools:\n  - name: a\n    mode: sharding\n    nodes:\n      - name: n\n        url: http://127.0.0.1:1\n  - name: a\n    mode: replication\n    nodes:\n      - name: m\n        url: http://127.0.0.1:2\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proxy"))
        .args(["--check", "-c", file.arg()])
        .output()
        .expect("run proxy");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("two pools are named 'a'"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
}

/// A reload changes a pool in place (its mode, here); adding or removing a pool is
/// refused and said on every pool's page.
#[tokio::test]
async fn reloads_apply_per_pool() {
    let (s, r) = (start_nodes(2).await, start_nodes(2).await);
    let text = two_pools(&s, &r, "");
    let file = TempFile::new("pools-reload", &text);
    let (_proxy, pools) = start_pools(&text).await;
    let edited = text.replacen("mode: sharding", "mode: rendezvous", 1);
    proxy::reload::apply_pools(&pools, std::path::Path::new(file.arg()), &edited);
    let sharded = &pools.by_name("sharded").unwrap().proxy;
    assert_eq!(sharded.live.get().mode.name(), "rendezvous");
    let replicated = &pools.by_name("replicated").unwrap().proxy;
    assert_eq!(replicated.live.get().mode.name(), "replication");
    let one_pool = edited.replace("name: replicated", "name: other");
    proxy::reload::apply_pools(&pools, std::path::Path::new(file.arg()), &one_pool);
    let said = &replicated.recent.events()[0];
    assert_eq!(said.kind, "rejected");
    assert!(said.text.contains("restart the proxy"), "{}", said.text);
}

/// `proxy doctor -c` on a config with pools checks every pool's nodes, each once.
#[tokio::test]
async fn the_doctor_checks_every_pool() {
    let (s, r) = (start_nodes(2).await, start_nodes(1).await);
    let shared = vec![url(r[0].addr), url(s[1].addr)];
    let file = TempFile::new("pools-doctor", &pools_of(&urls(&s), &shared, ""));
    let out = students_support::doctor(&["-c", file.arg(), "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:#?}");
    let report = out.json();
    let names: Vec<&str> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s1", "s2", "r1"], "s2 is checked once: {report}");
}

/// The root's views of every pool take GET only: another method is the first pool's
/// 405, which names the methods it takes.
#[tokio::test]
async fn the_root_views_take_get_only() {
    let (s, r) = (start_nodes(1).await, start_nodes(1).await);
    let (proxy, _) = start_pools(&two_pools(&s, &r, "")).await;
    for path in ["/health", "/config", "/state.json", "/metrics"] {
        let wrong = request(proxy.addr, "POST", path, &[], b"").await;
        assert_eq!(wrong.status, 405, "POST {path}: {}", wrong.text());
        assert!(
            wrong.header("allow").is_some_and(|a| a.contains("GET")),
            "{path}"
        );
    }
}
