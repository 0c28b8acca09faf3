//! A class watching the page: one sweep of the nodes serves every viewer, a write is on
//! the page at the next look, the page is pushed as events and answered 304 when nothing
//! changed, a big node shows up with its true count, and `/metrics` speaks Prometheus.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::{get, post, request};
use serde_json::Value;
use support::{start_nodes, start_proxy, start_spy, url, yaml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How many `/dump` requests reached a spied node.
fn dumps(log: &support::Log) -> usize {
    log.list()
        .iter()
        .filter(|s| s.path_and_query.starts_with("/dump"))
        .count()
}

/// Thirty viewers asking at once cost each node one summary (`/dump?limit=300`), not
/// thirty full dumps: they share one sweep. (One full dump, for "what moves", is made
/// once for the keys held, not per viewer.)
#[tokio::test]
async fn thirty_viewers_share_one_sweep() {
    let a = start_spy("kv1", Duration::ZERO).await;
    let b = start_spy("kv2", Duration::ZERO).await;
    let nodes = [("kv1", url(a.node.addr)), ("kv2", url(b.node.addr))];
    let (proxy, _) = start_proxy(&yaml("sharding", &nodes, "")).await;
    let viewers: Vec<_> = (0..30)
        .map(|_| tokio::spawn(async move { get(proxy.addr, "/state.json").await.status }))
        .collect();
    for v in viewers {
        assert_eq!(v.await.unwrap(), 200);
    }
    for _ in 0..30 {
        get(proxy.addr, "/state.json").await.expect_json(200);
    }
    for log in [&a.log, &b.log] {
        let asked: Vec<String> = log
            .list()
            .into_iter()
            .map(|s| s.path_and_query)
            .filter(|p| p.starts_with("/dump"))
            .collect();
        let summaries = asked
            .iter()
            .filter(|p| *p == "/dump?limit=300&preview=200")
            .count();
        assert_eq!(summaries, 1, "a summary, shared: {asked:?}");
        assert!(dumps(log) <= 2, "{asked:?}");
    }
}

/// A key written through the proxy is on the page at the very next look: the write made
/// the snapshot stale, and the view waited for a fresh sweep.
#[tokio::test]
async fn a_write_is_on_the_next_view() {
    let nodes = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(nodes[0].addr))], "")).await;
    get(proxy.addr, "/state.json").await.expect_json(200);
    for i in 0..5 {
        let key = format!("fresh-{i}");
        post(proxy.addr, &format!("/put?key={key}"), r#"{"value": 1}"#)
            .await
            .expect_json(200);
        let page = get(proxy.addr, "/state.json").await.expect_json(200);
        let keys: Vec<&str> = page["nodes"][0]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["key"].as_str().unwrap())
            .collect();
        assert!(keys.contains(&key.as_str()), "{key} not in {keys:?}");
    }
}

/// Another client's writes do not hold a view up: a view waits only for a sweep that saw
/// its own client's writes (so the writer finds its key), and is otherwise served the
/// latest sweep at once, even while someone writes without a pause.
#[tokio::test]
async fn only_the_writer_waits_for_its_write() {
    let spy = start_spy("kv1", Duration::ZERO).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(spy.node.addr))], "")).await;
    let from = |ip: &'static str| [("X-Forwarded-For", ip)];
    let viewer = from("10.0.0.1");
    let writer = from("10.0.0.2");
    request(proxy.addr, "GET", "/state.json", &viewer, b"")
        .await
        .expect_json(200);
    let before = dumps(&spy.log);
    request(
        proxy.addr,
        "POST",
        "/put?key=theirs",
        &writer,
        br#"{"value": 1}"#,
    )
    .await
    .expect_json(200);
    request(proxy.addr, "GET", "/state.json", &viewer, b"")
        .await
        .expect_json(200);
    assert_eq!(
        dumps(&spy.log),
        before,
        "the viewer was served the latest sweep"
    );
    let page = request(proxy.addr, "GET", "/state.json", &writer, b"")
        .await
        .expect_json(200);
    assert!(
        dumps(&spy.log) > before,
        "the writer's view waited for a sweep"
    );
    assert_eq!(page["nodes"][0]["keys"][0]["key"], "theirs");
}

/// While a sweep is in flight (the background one, through a node that takes 3 s to
/// answer), a view is served the latest snapshot at once, even one past its usual age,
/// rather than held up behind that sweep; the page shows the snapshot's age.
#[tokio::test]
async fn a_slow_sweep_holds_no_viewer_up() {
    let spy = start_spy("kv1", Duration::from_secs(3)).await;
    let conf = yaml(
        "sharding",
        &[("kv1", url(spy.node.addr))],
        "timeout_ms: 10000\n",
    );
    let (proxy, _) = start_proxy(&conf).await;
    // The first view sweeps (3 s, and 3 more for every key, for the what-moves table).
    // The background sweeper, a second apart while someone watches, starts the next
    // sweep within 1.5 s of that one's end, and it takes 3 s: 2 s after the first view,
    // that sweep is in flight and the first snapshot is past MAX_AGE (1.5 s).
    let first = get(proxy.addr, "/state.json").await.expect_json(200);
    // A look a second later keeps the page watched, so the background sweeper sweeps.
    tokio::time::sleep(Duration::from_secs(1)).await;
    get(proxy.addr, "/state.json").await.expect_json(200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let meanwhile = get(proxy.addr, "/state.json").await.expect_json(200);
    assert_eq!(
        meanwhile["swept_at_ms"], first["swept_at_ms"],
        "served the latest snapshot, not held up by the sweep in flight"
    );
}

/// `/state.json` carries an ETag; asking again with it, while nothing changed, is a 304
/// with no body.
#[tokio::test]
async fn an_unchanged_snapshot_is_a_304() {
    let nodes = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(nodes[0].addr))], "")).await;
    let first = get(proxy.addr, "/state.json").await;
    let etag = first.header("etag").expect("an ETag").to_string();
    let again = request(
        proxy.addr,
        "GET",
        "/state.json",
        &[("If-None-Match", &etag)],
        b"",
    )
    .await;
    assert_eq!(again.status, 304, "{again:#?}");
    assert!(again.text().is_empty());
    let stale = request(
        proxy.addr,
        "GET",
        "/state.json",
        &[("If-None-Match", "\"x\"")],
        b"",
    )
    .await;
    assert_eq!(stale.status, 200);
}

/// `/events` is a server-sent event stream: the page's JSON arrives as a `data:` line at
/// once, and the stream stays open for the next sweeps.
#[tokio::test]
async fn the_page_is_pushed_as_events() {
    let nodes = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(nodes[0].addr))], "")).await;
    post(proxy.addr, "/put?key=pushed", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    get(proxy.addr, "/state.json").await.expect_json(200);
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut events = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while events < 2 && tokio::time::Instant::now() < deadline {
        let mut buf = [0u8; 65536];
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
            .await
            .expect("the stream went quiet")
            .unwrap();
        assert!(n > 0, "the stream closed");
        seen.extend_from_slice(&buf[..n]);
        events = String::from_utf8_lossy(&seen).matches("\ndata: ").count();
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(
        events >= 2,
        "one event at once and the next sweep's: {text}"
    );
    let data = text
        .split("\ndata: ")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    let page: Value = serde_json::from_str(data).expect("JSON in the event");
    assert!(page["nodes"][0]["keys"].to_string().contains("pushed"));
}

/// A node holding more than a full `/dump` the proxy would read (70 values of 1 MB)
/// shows UP with its true count: the page reads a summary.
#[tokio::test]
async fn a_big_node_shows_up_with_its_count() {
    let node = common::start_node(storage::Settings::named("big")).await;
    let value = format!(r#"{{"value": "{}"}}"#, "x".repeat(1_000_000));
    for i in 0..70 {
        post(node.addr, &format!("/put?key=big-{i}"), &value)
            .await
            .expect_json(200);
    }
    let (proxy, _) = start_proxy(&yaml("sharding", &[("big", url(node.addr))], "")).await;
    let page = get(proxy.addr, "/state.json").await.expect_json(200);
    let card = &page["nodes"][0];
    assert_eq!(
        (&card["up"], &card["count"]),
        (&Value::Bool(true), &Value::from(70)),
        "{}",
        card["error"]
    );
    let health = get(proxy.addr, "/health").await.expect_json(200);
    assert_eq!(health["nodes_up"], 1);
}

/// `/metrics` is Prometheus text: requests by route, mode, node and status, node
/// latency, nodes down, viewers and the snapshot's age.
#[tokio::test]
async fn metrics_speak_prometheus() {
    let nodes = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(nodes[0].addr))], "")).await;
    post(proxy.addr, "/put?key=m", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    get(proxy.addr, "/state.json").await.expect_json(200);
    let reply = get(proxy.addr, "/metrics").await;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    for needle in [
        "# TYPE kv_requests counter",
        "kv_requests_total{route=\"/put\",mode=\"sharding\",node=\"kv1\",status=\"200\"} 1",
        "# TYPE kv_node_latency_seconds histogram",
        "kv_nodes_down 0",
        "kv_viewers 1",
        "kv_snapshot_age_seconds",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
}

/// A page holding `/events` open does not hold up a stop: the stream ends when the proxy
/// is told to stop, and the proxy is down well within its drain time.
#[tokio::test]
async fn an_open_stream_does_not_hold_up_a_stop() {
    let nodes = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(nodes[0].addr))], "")).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("event-stream"));
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), proxy.shutdown())
        .await
        .expect("the proxy did not stop within 5 s")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}
