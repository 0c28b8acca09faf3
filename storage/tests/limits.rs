//! What one client may hold of a node open to the internet: bytes stored (`--max-bytes`),
//! a body's time to arrive, connections at once, and an answer nobody reads. And the
//! headers that keep what a node stores from running as a page.

mod common;

use std::time::{Duration, Instant};

use common::{get, post, request, start_node};
use serde_json::json;
use storage::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Past `--max-bytes` of keys and values, a write is 507 naming the budget; what was
/// stored stays, an update that fits still works, and `/health` shows the bytes used.
#[tokio::test]
async fn a_node_keeps_to_its_byte_budget() {
    let node = start_node(Settings {
        max_bytes: 2000,
        ..Settings::named("kv1")
    })
    .await;
    let value = format!(r#"{{"value": "{}"}}"#, "x".repeat(500));
    let mut stored = 0;
    for i in 0..10 {
        let reply = post(node.addr, &format!("/put?key=k{i}"), &value).await;
        if reply.status == 507 {
            let body = reply.expect_error(507);
            assert!(
                body["error"].as_str().unwrap().contains("--max-bytes"),
                "{body}"
            );
            break;
        }
        reply.expect_json(200);
        stored += 1;
    }
    assert_eq!(stored, 3, "500-byte values in a 2000-byte budget");
    for i in 0..stored {
        let got = get(node.addr, &format!("/get?key=k{i}"))
            .await
            .expect_json(200);
        assert_eq!(got["value"].as_str().unwrap().len(), 500);
    }
    post(node.addr, "/put?key=k0", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    let health = get(node.addr, "/health").await.expect_json(200);
    assert_eq!(health["max_bytes"], json!(2000));
    let used = health["bytes"].as_u64().unwrap();
    assert!((1000..2000).contains(&used), "{health}");
    let page = get(node.addr, "/state").await;
    assert!(page.text().contains("budget"), "the page shows the budget");
}

/// A client that declares a body and stops sending gets 408 once `body_timeout_ms` is
/// up, instead of holding the connection for ever.
#[tokio::test]
async fn a_stalled_body_times_out_with_408() {
    let node = start_node(Settings {
        body_timeout_ms: 300,
        ..Settings::named("kv1")
    })
    .await;
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    stream
        .write_all(
            b"POST /put?key=s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"value\": \"",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\""), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
    get(node.addr, "/get?key=s").await.expect_error(404);
}

/// Past `max_connections`, a new connection is answered 503 at once; when one closes,
/// there is room again.
#[tokio::test]
async fn connections_past_the_limit_get_503() {
    let node = start_node(Settings {
        max_connections: 2,
        ..Settings::named("kv1")
    })
    .await;
    let held = [
        TcpStream::connect(node.addr).await.unwrap(),
        TcpStream::connect(node.addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = get(node.addr, "/health").await;
    assert_eq!(refused.status, 503, "{refused:#?}");
    assert!(refused.text().contains("max_connections"));
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    get(node.addr, "/health").await.expect_json(200);
}

/// An answer the client never reads is given up after `send_timeout_ms` without
/// progress: the connection closes before the whole body went out.
#[tokio::test]
async fn an_unread_answer_is_given_up() {
    let node = start_node(Settings {
        send_timeout_ms: 300,
        ..Settings::named("kv1")
    })
    .await;
    let value = format!(r#"{{"value": "{}"}}"#, "x".repeat(100_000));
    for i in 0..250 {
        post(node.addr, &format!("/put?key=big{i}"), &value)
            .await
            .expect_json(200);
    }
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    stream
        .write_all(b"GET /dump HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        answer.len() < 25_000_000,
        "all {} bytes went out: the answer was not given up",
        answer.len()
    );
    get(node.addr, "/health").await.expect_json(200);
}

/// Every answer says `nosniff`; the node's page may run only its own script and may not
/// be framed, so a stored `<script>` can never run on the node's origin.
#[tokio::test]
async fn answers_carry_the_browser_guards() {
    let node = start_node(Settings::named("kv1")).await;
    let json = request(node.addr, "GET", "/health", &[], b"").await;
    assert_eq!(json.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        json.header("content-security-policy"),
        None,
        "only pages need one"
    );
    let page = get(node.addr, "/state").await;
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
}
