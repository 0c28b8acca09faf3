//! Sharding through the real proxy: each key lands on the one node Python's one-liner
//! names, the node's answer comes back unchanged, and a key reaches the node whole
//! whatever characters it holds.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::{get, post, request};
use support::{encode, named, start_nodes, start_proxy, start_spy, url, value_on, yaml};

/// `(key, node index with 3 nodes)`, computed once with
/// `python3 -c 'import hashlib,sys; k=sys.argv[1]; print(int(hashlib.sha256(k.encode()).hexdigest(), 16) % 3)' KEY`
const PYTHON_MOD_3: &[(&str, usize)] = &[
    ("a&key=b", 2),
    ("100%", 1),
    ("a+b", 2),
    ("hello world", 0),
    ("path/to/x", 0),
    ("/lead", 1),
    ("Привет", 1),
    ("с пробелом", 0),
    ("%2F", 0),
    ("=", 2),
    ("&", 0),
    ("key=v&x", 2),
    ("key-0", 2),
    ("key-1", 1),
    ("key-2", 0),
    ("key-7", 0),
];

/// Every key lands on exactly the node `SHA-256(key) mod 3` names, in config order, and
/// on no other; reading each node directly shows it.
#[tokio::test]
async fn each_key_lands_on_the_node_python_names() {
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    for (i, (key, want)) in PYTHON_MOD_3.iter().enumerate() {
        let path = format!("/put?key={}", encode(key));
        let reply = post(proxy.addr, &path, format!(r#"{{"value": {i}}}"#)).await;
        let body = reply.expect_json(200);
        assert_eq!(body["key"], *key, "the node stored another key: {body}");
        assert_eq!(
            reply.header("x-kv-node"),
            Some(format!("kv{}", want + 1).as_str())
        );
        for (n, node) in nodes.iter().enumerate() {
            let held = value_on(node.addr, key).await;
            if n == *want {
                assert_eq!(
                    held,
                    Some(serde_json::json!(i)),
                    "{key:?} missing on kv{}",
                    n + 1
                );
            } else {
                assert_eq!(
                    held,
                    None,
                    "{key:?} also on kv{}, wanted only kv{}",
                    n + 1,
                    want + 1
                );
            }
        }
    }
}

/// A read through the proxy is the node's own answer, status and body byte for byte,
/// with `X-Kv-Mode` and `X-Kv-Node` added: the 200, the 404, and the node's 400 for a
/// body that is not JSON.
#[tokio::test]
async fn the_nodes_answer_comes_back_unchanged() {
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    let kv3 = nodes[2].addr; // "key-0" lives on kv3 (index 2 of 3)
    let cases: [(&str, &str, &str); 3] = [
        (
            "POST",
            "/put?key=key-0",
            r#"{"value": {"nested": [1, "two"]}}"#,
        ),
        ("GET", "/get?key=key-0", ""),
        ("GET", "/get?key=key-1", ""), // key-1 lives on kv2 and was never put: 404
    ];
    for (method, path, body) in cases {
        let via_proxy = request(proxy.addr, method, path, &[], body.as_bytes()).await;
        assert_eq!(via_proxy.header("x-kv-mode"), Some("sharding"));
        let node = if path.ends_with("key-1") {
            nodes[1].addr
        } else {
            kv3
        };
        let name = if path.ends_with("key-1") {
            "kv2"
        } else {
            "kv3"
        };
        assert_eq!(via_proxy.header("x-kv-node"), Some(name), "{method} {path}");
        // The same request straight to the node (a put again is harmless: same value).
        let direct = request(node, method, path, &[], body.as_bytes()).await;
        assert_eq!(via_proxy.status, direct.status, "{method} {path}");
        assert_eq!(via_proxy.text(), direct.text(), "{method} {path}");
        assert_eq!(
            via_proxy.header("content-type"),
            direct.header("content-type")
        );
    }
    let get = get(proxy.addr, "/get?key=key-0").await;
    assert_eq!(
        get.text(),
        r#"{"value":{"nested": [1, "two"]},"key":"key-0","node":"kv3"}"#
    );
    let missing = get_json_error(proxy.addr, "/get?key=key-1", 404).await;
    assert_eq!(missing["node"], "kv2");

    let bad = post(proxy.addr, "/put?key=key-0", "not json").await;
    let direct = post(kv3, "/put?key=key-0", "not json").await;
    let body = bad.expect_error(400);
    assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");
    assert_eq!(bad.text(), direct.text());
    assert_eq!(bad.header("x-kv-node"), Some("kv3"));
}

async fn get_json_error(addr: std::net::SocketAddr, path: &str, status: u16) -> serde_json::Value {
    get(addr, path).await.expect_error(status)
}

/// The key is percent-encoded on its way to the node: `a&key=b` arrives as one `key`
/// parameter, and a `+` the client meant as a space stays a space.
#[tokio::test]
async fn the_key_is_percent_encoded_when_forwarded() {
    let spy = start_spy("kv1", Duration::ZERO).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(spy.node.addr))], "")).await;

    let reply = post(proxy.addr, "/put?key=a%26key%3Db", r#"{"value": 1}"#).await;
    assert_eq!(reply.expect_json(200)["key"], "a&key=b");
    let seen = spy.log.list();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert!(seen[0]
        .header("user-agent")
        .unwrap_or_default()
        .starts_with("kv-proxy/"));
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path_and_query, "/put?key=a%26key%3Db");
    assert_eq!(
        value_on(spy.node.addr, "a&key=b").await,
        Some(serde_json::json!(1))
    );
    assert_eq!(value_on(spy.node.addr, "a").await, None);

    // Forms send a space as `+`: the proxy decodes it and encodes the space again.
    post(proxy.addr, "/put?key=hello+world", r#"{"value": 2}"#)
        .await
        .expect_json(200);
    assert_eq!(
        spy.log.list().pop().unwrap().path_and_query,
        "/put?key=hello%20world"
    );
    assert_eq!(
        value_on(spy.node.addr, "hello world").await,
        Some(serde_json::json!(2))
    );

    for key in ["100%", "a+b", "path/to/x", "Привет", "с пробелом"] {
        let reply = get(proxy.addr, &format!("/get?key={}", encode(key))).await;
        reply.expect_error(404);
        let last = spy.log.list().pop().unwrap();
        assert_eq!(
            last.path_and_query,
            format!("/get?key={}", encode(key)),
            "{key:?}"
        );
    }
}

/// A delete goes to the key's node only, and a second delete gets that node's 404.
#[tokio::test]
async fn delete_removes_the_key_from_its_node() {
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    post(proxy.addr, "/put?key=key-1", r#"{"value": "x"}"#)
        .await
        .expect_json(200);
    assert!(value_on(nodes[1].addr, "key-1").await.is_some());

    let reply = request(proxy.addr, "DELETE", "/delete?key=key-1", &[], b"").await;
    let body = reply.expect_json(200);
    assert_eq!(body["node"], "kv2");
    assert_eq!(reply.header("x-kv-node"), Some("kv2"));
    assert_eq!(value_on(nodes[1].addr, "key-1").await, None);

    let again = request(proxy.addr, "DELETE", "/delete?key=key-1", &[], b"").await;
    assert_eq!(again.expect_error(404)["node"], "kv2");
}
