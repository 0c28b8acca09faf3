//! The node on the wire: broken requests do not stop it, and a graceful stop lets the
//! requests in flight finish before the node goes away.

mod common;

use std::time::Duration;

use common::{get, post, raw, request_bytes, start_node, Reply};
use storage::Settings;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Garbage bytes get at most an HTTP error, and the node goes on answering with its
/// data intact.
#[tokio::test]
async fn garbage_does_not_stop_the_node() {
    let node = start_node(Settings::named("kv1")).await;
    post(node.addr, "/put?key=k", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    let garbage: [&[u8]; 4] = [
        b"\x00\xff\xfe garbage \r\n\r\n",
        b"HELLO\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /get?key=k HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    ];
    for bytes in garbage {
        let answer = raw(node.addr, bytes).await;
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
            "{:?} got {:?}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&answer)
        );
    }
    let got = get(node.addr, "/get?key=k").await.expect_json(200);
    assert_eq!(got["value"], 1);
}

/// A request cut short (in its headers or its body) stores nothing, and the node goes
/// on answering.
#[tokio::test]
async fn truncated_requests_do_not_stop_the_node() {
    let node = start_node(Settings::named("kv1")).await;
    let cut_head = b"POST /put?key=k HTTP/1.1\r\nHost: x\r\nContent-Le";
    let cut_body = b"POST /put?key=k HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"value\": 1";
    for bytes in [&cut_head[..], &cut_body[..]] {
        let answer = raw(node.addr, bytes).await;
        assert!(
            !answer.starts_with(b"HTTP/1.1 200"),
            "a cut request was served: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    get(node.addr, "/get?key=k").await.expect_error(404);
    let health = get(node.addr, "/health").await.expect_json(200);
    assert_eq!(health["keys"], 0);
}

/// Many clients at once each get their own answer and every write lands.
#[tokio::test]
async fn concurrent_clients_all_land() {
    let node = start_node(Settings::named("kv1")).await;
    let addr = node.addr;
    let clients: Vec<_> = (0..50)
        .map(|i| {
            tokio::spawn(async move {
                let path = format!("/put?key=k{i}");
                post(addr, &path, format!(r#"{{"value": {i}}}"#))
                    .await
                    .expect_json(200);
                get(addr, &format!("/get?key=k{i}")).await.expect_json(200)["value"].clone()
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        assert_eq!(client.await.unwrap(), i);
    }
    assert_eq!(get(addr, "/health").await.json()["keys"], 50);
}

/// A stop lets a request in flight finish: an upload half sent when the stop comes is
/// completed and stored, new connections are refused, and then the server returns.
#[tokio::test]
async fn graceful_stop_lets_a_request_in_flight_finish() {
    let node = start_node(Settings::named("kv1")).await;
    let addr = node.addr;
    let request = request_bytes(addr, "POST", "/put?key=slow", &[], br#"{"value": "late"}"#);
    let (first, rest) = request.split_at(request.len() - 8);

    let mut upload = TcpStream::connect(addr).await.expect("connect");
    upload.write_all(first).await.expect("send the first half");
    // Give the node time to read the headers and start on the body.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopped = node.shutdown();
    // Once the listener is closed the stop has begun.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!stopped.is_finished(), "stopped before the upload finished");

    upload.write_all(rest).await.expect("send the rest");
    let answer = Reply::parse(&common::read_to_eof(&mut upload).await);
    let body = answer.expect_json(200);
    assert_eq!(body["key"], "slow");

    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the server returns once the request is done")
        .expect("the server task did not panic");
}

/// Idle connections (a browser's spare one, a student's `nc`, a finished keep-alive)
/// do not hold up a stop: the node returns at once, not after its 10 s drain limit.
#[tokio::test]
async fn idle_connections_do_not_delay_a_stop() {
    let node = start_node(Settings::named("kv1")).await;
    let _silent = TcpStream::connect(node.addr).await.expect("connect");
    let mut kept = TcpStream::connect(node.addr).await.expect("connect");
    let health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    kept.write_all(health).await.expect("send");
    let mut first = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut kept, &mut first)
        .await
        .expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 200");

    let stopped = node.shutdown();
    tokio::time::timeout(Duration::from_secs(2), stopped)
        .await
        .expect("the stop waited on idle connections")
        .expect("the server task did not panic");
}

/// The test kit reads chunked answers (the proxy's streaming answers come that way).
#[test]
fn kit_decodes_chunked_answers() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n\
                 5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
    let reply = Reply::parse(wire);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-a"), Some("b"));
    assert_eq!(reply.text(), "hello, world");
}
