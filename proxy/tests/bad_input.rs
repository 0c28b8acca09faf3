//! Requests the proxy refuses itself: a missing or empty key, a key over 1 KiB, a body
//! over 4 MiB, an unknown route, a wrong method. Each gets its JSON error from the
//! proxy, and no node ever sees the request.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::{request, Reply};
use support::{start_proxy, start_spy, url, yaml, Spied};

/// The proxy's body limit (`routes::MAX_BODY_BYTES`), written out: 4 MiB.
const LIMIT: usize = 4 << 20;

/// Two spied nodes behind a proxy, in `mode`.
async fn setup(mode: &str) -> (common::Node, Vec<Spied>) {
    let spies = vec![
        start_spy("kv1", Duration::ZERO).await,
        start_spy("kv2", Duration::ZERO).await,
    ];
    let list = vec![
        ("kv1", url(spies[0].node.addr)),
        ("kv2", url(spies[1].node.addr)),
    ];
    let (proxy, _) = start_proxy(&yaml(mode, &list, "")).await;
    (proxy, spies)
}

fn nothing_reached(spies: &[Spied], what: &str) {
    for spy in spies {
        let seen = spy.log.list();
        assert!(seen.is_empty(), "{what} reached a node: {seen:#?}");
    }
}

/// Checks the error answer and that it came from the proxy (no node header on it).
fn refused(reply: &Reply, status: u16, words: &str) {
    let body = reply.expect_error(status);
    assert!(
        body["error"].as_str().unwrap().contains(words),
        "wanted {words:?}: {body}"
    );
    assert_eq!(reply.header("x-kv-node"), None, "{reply:#?}");
}

/// A missing or empty key, or one that is not UTF-8 once decoded, is a 400, in both
/// modes, before any node is asked.
#[tokio::test]
async fn a_missing_empty_or_undecodable_key_is_400() {
    for mode in ["sharding", "replication"] {
        let (proxy, spies) = setup(mode).await;
        let cases = [
            ("POST", "/put", "missing key"),
            ("POST", "/put?key=", "empty key"),
            ("GET", "/get", "missing key"),
            ("GET", "/get?name=x", "missing key"),
            ("DELETE", "/delete?key=", "empty key"),
            ("GET", "/get?key=%FF", "UTF-8"),
        ];
        for (method, path, words) in cases {
            let reply = request(proxy.addr, method, path, &[], br#"{"value": 1}"#).await;
            refused(&reply, 400, words);
        }
        nothing_reached(&spies, mode);
    }
}

/// A key over 1 KiB (after decoding) is a 414; exactly 1 KiB is forwarded.
#[tokio::test]
async fn a_key_over_1_kib_is_414() {
    let (proxy, spies) = setup("replication").await;
    let long = "k".repeat(1025);
    refused(
        &request(proxy.addr, "GET", &format!("/get?key={long}"), &[], b"").await,
        414,
        "1024",
    );
    // 513 Cyrillic letters are 1026 bytes: the limit counts bytes, not characters.
    let cyrillic = support::encode(&"я".repeat(513));
    let reply = request(
        proxy.addr,
        "POST",
        &format!("/put?key={cyrillic}"),
        &[],
        br#"{"value": 1}"#,
    )
    .await;
    refused(&reply, 414, "1024");
    nothing_reached(&spies, "a long key");

    let fits = "k".repeat(1024);
    let reply = request(
        proxy.addr,
        "POST",
        &format!("/put?key={fits}"),
        &[],
        br#"{"value": 1}"#,
    )
    .await;
    reply.expect_json(200);
}

/// A body over 4 MiB is a 413 from the proxy, whether its size is declared up front or
/// it comes chunked; a body of exactly 4 MiB is forwarded (and the node judges it).
#[tokio::test]
async fn a_body_over_4_mib_is_413() {
    let (proxy, spies) = setup("sharding").await;
    let over = vec![b' '; LIMIT + 1];
    let reply = request(proxy.addr, "POST", "/put?key=big", &[], &over).await;
    refused(&reply, 413, "larger than");

    let mut chunked = Vec::new();
    for part in over.chunks(1 << 20) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let headers = [("Transfer-Encoding", "chunked")];
    let reply = request(proxy.addr, "POST", "/put?key=big", &headers, &chunked).await;
    refused(&reply, 413, "larger than");
    nothing_reached(&spies, "a body over 4 MiB");

    // Exactly 4 MiB passes the proxy; the node's own limit (1 MiB) refuses it.
    let mut exact = br#"{"value": ""#.to_vec();
    exact.resize(LIMIT - 2, b'x');
    exact.extend_from_slice(br#""}"#);
    assert_eq!(exact.len(), LIMIT);
    let reply = request(proxy.addr, "POST", "/put?key=big", &[], &exact).await;
    assert_eq!(reply.status, 413, "{:?}", reply.text());
    assert!(
        reply.header("x-kv-node").is_some(),
        "the node should have judged it"
    );
    let reached: usize = spies.iter().map(|s| s.log.list().len()).sum();
    assert_eq!(reached, 1);
}

/// An unknown route is the proxy's JSON 404, and a wrong method its 405 with `Allow`.
#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_refused() {
    let (proxy, spies) = setup("sharding").await;
    let reply = request(proxy.addr, "GET", "/nope?key=k", &[], b"").await;
    let body = reply.expect_error(404);
    assert_eq!(body["path"], "/nope");
    refused(
        &request(proxy.addr, "POST", "/put/extra?key=k", &[], b"").await,
        404,
        "no route",
    );

    let cases = [
        ("GET", "/put?key=k", "POST, PUT"),
        ("DELETE", "/get?key=k", "GET, HEAD"),
        ("GET", "/delete?key=k", "DELETE, POST"),
        ("GET", "/clear", "POST, DELETE"),
        ("POST", "/state", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let reply = request(proxy.addr, method, path, &[], b"").await;
        refused(&reply, 405, "does not take");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
    nothing_reached(&spies, "a wrong route or method");
}
