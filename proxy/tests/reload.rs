//! Live reload through the real proxy: the teacher saves the config file (as editors do,
//! a new file renamed over the old) and within two seconds the proxy places keys by it;
//! a broken edit changes nothing; a request in flight finishes where it started.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{get, post, Node};
use serde_json::json;
use support::{named, start_nodes, start_spy, url, value_on, yaml, TempFile};

/// How soon a saved edit must be in force (the watcher reads the file every 500 ms).
const WITHIN: Duration = Duration::from_secs(2);

/// `(key, node index with 2 nodes, with 3 nodes)`, computed once with
/// `python3 -c 'import hashlib,sys; k=sys.argv[1]; print([int(hashlib.sha256(k.encode()).hexdigest(), 16) % n for n in (2, 3)])' KEY`
const PYTHON: &[(&str, usize, usize)] = &[
    ("key-0", 0, 2),
    ("key-1", 0, 1),
    ("key-2", 1, 0),
    ("key-3", 0, 0),
    ("key-4", 1, 1),
    ("key-5", 1, 2),
    ("key-6", 0, 2),
    ("key-7", 0, 0),
    ("key-8", 1, 2),
    ("key-9", 0, 0),
];

/// Starts the proxy on the config in `file` and watches the file, as the binary does.
async fn start_watched(file: &TempFile) -> Node {
    let text = std::fs::read_to_string(&file.path).unwrap();
    let (node, proxy) = support::start_proxy(&text).await;
    proxy::reload::watch(Arc::clone(&proxy), file.path.clone(), text);
    node
}

/// Polls `GET /get?key=KEY` until the proxy sends it to `node` in `mode`; returns how
/// long that took, or fails after [`WITHIN`].
async fn wait_for_route(proxy: SocketAddr, key: &str, mode: &str, node: &str) -> Duration {
    let started = Instant::now();
    loop {
        let reply = get(proxy, &format!("/get?key={key}")).await;
        let (m, n) = (reply.header("x-kv-mode"), reply.header("x-kv-node"));
        if m == Some(mode) && n.is_some_and(|n| n.split(',').next() == Some(node)) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WITHIN,
            "after {WITHIN:?} {key} still goes to {n:?} in {m:?}, not {node} in {mode}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts key-0..key-9 through the proxy and checks each sits on the node `index` names.
async fn check_placement(proxy: SocketAddr, nodes: &[Node], index: impl Fn(usize, usize) -> usize) {
    for (key, mod2, mod3) in PYTHON {
        post(proxy, &format!("/put?key={key}"), r#"{"value": 1}"#)
            .await
            .expect_json(200);
        let want = index(*mod2, *mod3);
        for (i, node) in nodes.iter().enumerate() {
            let held = value_on(node.addr, key).await.is_some();
            assert_eq!(
                held,
                i == want,
                "{key} on kv{}? wanted only kv{}",
                i + 1,
                want + 1
            );
        }
    }
}

/// Adding a third node to the file makes placement follow SHA-256 mod 3 within 2 s.
#[tokio::test]
async fn a_third_node_added_to_the_file_takes_effect() {
    let nodes = start_nodes(3).await;
    let all = named(&nodes);
    let file = TempFile::new("grow.yml", &yaml("sharding", &all[..2], ""));
    let server = start_watched(&file).await;
    let proxy = server.addr;
    check_placement(proxy, &nodes, |mod2, _| mod2).await;
    for node in &nodes {
        post(node.addr, "/clear", "").await.expect_json(200);
    }

    file.replace(&yaml("sharding", &all, ""));
    // key-0 goes to kv1 with 2 nodes and to kv3 with 3.
    wait_for_route(proxy, "key-0", "sharding", "kv3").await;
    check_placement(proxy, &nodes, |_, mod3| mod3).await;
}

/// Switching the file's mode to replication makes writes land on every node.
#[tokio::test]
async fn switching_the_mode_in_the_file_takes_effect() {
    let nodes = start_nodes(2).await;
    let file = TempFile::new("mode.yml", &yaml("sharding", &named(&nodes), ""));
    let server = start_watched(&file).await;
    let proxy = server.addr;
    let reply = post(proxy, "/put?key=before", r#"{"value": 1}"#).await;
    assert_eq!(reply.header("x-kv-mode"), Some("sharding"));

    file.replace(&yaml("replication", &named(&nodes), ""));
    wait_for_route(proxy, "after", "replication", "kv1").await;
    let reply = post(proxy, "/put?key=after", r#"{"value": 2}"#).await;
    assert_eq!(reply.expect_json(200)["message"], "done on 2 of 2 nodes");
    for node in &nodes {
        assert_eq!(value_on(node.addr, "after").await, Some(json!(2)));
    }
}

/// A broken edit (bad YAML, then an unknown mode) leaves the running config in force,
/// and the next good edit still takes effect.
#[tokio::test]
async fn a_broken_edit_keeps_the_running_config() {
    let nodes = start_nodes(2).await;
    let file = TempFile::new("broken.yml", &yaml("sharding", &named(&nodes), ""));
    let server = start_watched(&file).await;
    let proxy = server.addr;
    let config_before = get(proxy, "/config").await.text().to_string();

    let broken = [
        "mode: sharding\nnodes:\n  - name: kv1\n     url: http://x:1\n".to_string(),
        yaml("shardnig", &named(&nodes), ""),
        String::new(),
    ];
    for text in &broken {
        file.replace(text);
        // Two reads of the file by the watcher.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let reply = get(proxy, "/get?key=key-2").await;
        assert_eq!(
            reply.header("x-kv-mode"),
            Some("sharding"),
            "after {text:?}"
        );
        assert_eq!(reply.header("x-kv-node"), Some("kv2"), "after {text:?}");
        assert_eq!(
            get(proxy, "/config").await.text(),
            config_before,
            "after {text:?}"
        );
    }

    file.replace(&yaml("replication", &named(&nodes), ""));
    wait_for_route(proxy, "key-2", "replication", "kv1").await;
}

/// A request already at a node when the file changes finishes there: the answer is
/// the old node's 200, not an error, while new requests already go by the new file.
#[tokio::test]
async fn a_request_in_flight_during_a_reload_is_not_dropped() {
    let slow = start_spy("slow", Duration::from_millis(1500)).await;
    let fast = start_nodes(1).await.pop().unwrap();
    let file = TempFile::new(
        "inflight.yml",
        &yaml("sharding", &[("slow", url(slow.node.addr))], ""),
    );
    let server = start_watched(&file).await;
    let proxy = server.addr;

    let put = tokio::spawn(post(proxy, "/put?key=k", r#"{"value": "kept"}"#));
    let reached = Instant::now();
    while slow.log.list().is_empty() {
        assert!(
            reached.elapsed() < WITHIN,
            "the put never reached the slow node"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    file.replace(&yaml("sharding", &[("fast", url(fast.addr))], ""));
    // /config, not /get: a get would wait on the slow node itself.
    let started = Instant::now();
    while !get(proxy, "/config").await.text().contains("name: fast") {
        assert!(started.elapsed() < WITHIN, "the new file was not loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !put.is_finished(),
        "the put ended before the reload: the test shows nothing"
    );

    let reply = put.await.unwrap();
    assert_eq!(reply.expect_json(200)["node"], "slow");
    assert_eq!(reply.header("x-kv-node"), Some("slow"));
    assert_eq!(value_on(slow.node.addr, "k").await, Some(json!("kept")));
    assert_eq!(value_on(fast.addr, "k").await, None);
}
