//! The proxy open to the internet, as its traffic sees it: a request that comes back
//! round a loop is answered 508 at once; a client that stops sending or stops reading
//! holds a connection for a bounded time; past `max_connections` a new connection hears
//! 503; a node's answer goes out as data, never as a page on the proxy's origin; and a
//! request that may have reached a node is sent again only when twice does no harm.
//!
//! Who may join, leave, write and clear is in `internet_joins.rs`.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod students_support;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, get, post, request, request_bytes, Reply};
use hyper::StatusCode;
use proxy::config::Config;
use proxy::Proxy;
use students_support::{error_of, start_canned};
use support::{
    black_hole, named, start_nodes, start_proxy, start_spy, url, value_on, yaml, Cut, Front,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// What "at once" means here: well under any node timeout these tests configure.
const PROMPTLY: Duration = Duration::from_secs(2);

/// A proxy served on a listener the test bound itself, so that its config can name the
/// proxy's own address. Stopped when dropped.
struct Served {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// Serves a proxy with the config `text` on `listener`.
fn serve_on(listener: TcpListener, text: &str) -> Served {
    let addr = listener.local_addr().expect("the bound address");
    let config = Config::parse(text).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"));
    let proxy = Arc::new(Proxy::new(config));
    let task = tokio::spawn(proxy::serve(listener, proxy, std::future::pending()));
    Served { addr, task }
}

/// Reads until the server closes (an end or a reset) or `within` passes; answers the
/// bytes and whether the server closed in time.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (got, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// `GET path`'s status, or `None` when the connection closed with no answer.
async fn status_of(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = connect(addr).await;
    stream
        .write_all(&request_bytes(addr, "GET", path, &[], b""))
        .await
        .ok()?;
    let (bytes, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    (!bytes.is_empty()).then(|| Reply::parse(&bytes).status)
}

/// A connection whose receive buffer is tiny: a client that reads slowly, or not at all.
async fn slow_reader(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(addr).await.expect("connect")
}

/// A connection that sent a put's headers declaring 1 MB and a few bytes of it, then stops.
async fn stalled_body(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr).await;
    let head = request_bytes(
        addr,
        "POST",
        "/put?key=s",
        &[("Content-Length", "1000000")],
        br#"{"value": "#,
    );
    stream.write_all(&head).await.expect("send");
    stream
}

/// `{"value": "xxx…"}` of `chars` characters.
fn big_value(chars: usize) -> String {
    format!(r#"{{"value": "{}"}}"#, "x".repeat(chars))
}

/// Every request the proxy sends names it in `Via`, after the `Via` it came with, so a
/// loop through any number of proxies can be seen.
#[tokio::test]
async fn requests_to_nodes_carry_via_with_the_proxys_id() {
    let spy = start_spy("kv1", Duration::ZERO).await;
    let (proxy, state) = start_proxy(&yaml("sharding", &[("kv1", url(spy.node.addr))], "")).await;
    let ours = format!("1.1 {}", state.upstream.id.as_str());
    assert!(ours.starts_with("1.1 kv-proxy-"), "{ours}");

    post(proxy.addr, "/put?key=k", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    request(
        proxy.addr,
        "GET",
        "/get?key=k",
        &[("Via", "1.1 front")],
        b"",
    )
    .await
    .expect_json(200);
    let seen = spy.log.list();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(seen[0].header("via"), Some(ours.as_str()));
    assert_eq!(
        seen[1].header("via"),
        Some(format!("1.1 front, {ours}").as_str())
    );
}

/// A request that names this proxy in `Via` already, or that went through eight
/// proxies, is a loop: 508 at once, and no node hears of it.
#[tokio::test]
async fn a_request_that_went_round_is_508_before_any_node() {
    let spy = start_spy("kv1", Duration::ZERO).await;
    let (proxy, state) = start_proxy(&yaml("sharding", &[("kv1", url(spy.node.addr))], "")).await;
    let ours = format!("1.0 elsewhere, 1.1 {}", state.upstream.id.as_str());
    let reply = request(proxy.addr, "GET", "/get?key=k", &[("Via", &ours)], b"").await;
    let why = error_of(&reply, 508);
    assert!(why.contains("already went through this proxy"), "{why}");

    let eight: Vec<String> = (0..8).map(|i| format!("1.1 other-{i}")).collect();
    let reply = request(
        proxy.addr,
        "POST",
        "/put?key=k",
        &[("Via", &eight.join(", "))],
        br#"{"value": 1}"#,
    )
    .await;
    let why = error_of(&reply, 508);
    assert!(why.contains("8 proxies"), "{why}");
    assert!(
        spy.log.list().is_empty(),
        "a node heard: {:#?}",
        spy.log.list()
    );
}

/// A proxy whose only node is itself (the teacher typed the proxy's own port) answers
/// 508 naming that node at once, instead of calling itself until it runs out of
/// sockets; `/dump` and the pages, which ask every node, answer promptly too.
#[tokio::test]
async fn a_proxy_listed_as_its_own_node_answers_508_at_once() {
    let listener = bind().await;
    let me = url(listener.local_addr().unwrap());
    // A loop would cost this timeout per round; the answer must come well before it.
    let proxy = serve_on(
        listener,
        &yaml("sharding", &[("me", me.clone())], "timeout_ms: 5000\n"),
    );

    let started = Instant::now();
    let reply = get(proxy.addr, "/get?key=k").await;
    assert!(started.elapsed() < PROMPTLY, "took {:?}", started.elapsed());
    let body = reply.expect_error(508);
    assert_eq!(body["node"], "me", "{body}");
    let why = body["error"].as_str().unwrap();
    assert!(why.contains(&format!("node me ({me})")), "{why}");
    assert!(why.contains("loop"), "{why}");

    for path in ["/dump", "/state.json", "/state", "/health"] {
        let started = Instant::now();
        let reply = get(proxy.addr, path).await;
        assert_eq!(reply.status, 200, "{path}: {reply:#?}");
        assert!(
            started.elapsed() < PROMPTLY,
            "{path} took {:?}",
            started.elapsed()
        );
    }
}

/// Two proxies that list each other: a request goes A → B → A, where A finds its own
/// name in `Via` and answers 508; the client of A hears 508 naming A's node, B.
#[tokio::test]
async fn two_proxies_listing_each_other_answer_508() {
    let (a, b) = (bind().await, bind().await);
    let (a_url, b_url) = (url(a.local_addr().unwrap()), url(b.local_addr().unwrap()));
    let timeout = "timeout_ms: 5000\n";
    let a = serve_on(a, &yaml("sharding", &[("b", b_url.clone())], timeout));
    let _b = serve_on(b, &yaml("sharding", &[("a", a_url)], timeout));

    let started = Instant::now();
    let reply = get(a.addr, "/get?key=k").await;
    assert!(started.elapsed() < PROMPTLY, "took {:?}", started.elapsed());
    let body = reply.expect_error(508);
    assert_eq!(body["node"], "b", "{body}");
    assert!(body["error"].as_str().unwrap().contains(&b_url), "{body}");
}

/// A client that declares a large body and stops sending holds its connection for
/// `body_timeout_ms`, then hears 408 in a sentence and is let go.
#[tokio::test]
async fn a_body_that_stops_coming_is_408_after_body_timeout_ms() {
    let nodes = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "body_timeout_ms: 300\n")).await;
    let started = Instant::now();
    let mut stream = stalled_body(proxy.addr).await;
    let (bytes, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(!bytes.is_empty(), "no answer within 5 s");
    let body = Reply::parse(&bytes).expect_error(408);
    let why = body["error"].as_str().unwrap();
    assert!(why.contains("300 ms"), "{why}");
    assert!(closed, "the connection stayed open after the 408");
    assert!(
        took >= Duration::from_millis(300) && took < PROMPTLY,
        "took {took:?}"
    );
    assert_eq!(value_on(nodes[0].addr, "s").await, None);
}

/// Past `max_connections`, a new connection hears 503 at once and is closed, while the
/// connections held stay; once they close, requests are served again.
#[tokio::test]
async fn past_max_connections_a_new_connection_gets_503_at_once() {
    let nodes = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "max_connections: 4\n")).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(proxy.addr).await);
    }
    // Let the accept loop take all four before the fifth knocks.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let mut fifth = connect(proxy.addr).await;
    let (bytes, closed) = read_until_closed(&mut fifth, PROMPTLY).await;
    assert!(closed, "the fifth connection was kept: {bytes:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(bytes.starts_with(b"HTTP/1.1 503"), "{bytes:?}");
    let reply = Reply::parse(&bytes);
    let why = error_of(&reply, 503);
    assert!(why.contains("max_connections"), "{why}");
    assert_eq!(reply.header("retry-after"), Some("1"));

    drop(held);
    let deadline = Instant::now() + Duration::from_secs(3);
    while status_of(proxy.addr, "/health").await != Some(200) {
        assert!(
            Instant::now() < deadline,
            "still refused after the held ones closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client that asks for a big answer and stops reading it is given up after
/// `send_timeout_ms` without progress: the connection closes before the whole body has
/// gone, and the proxy serves others meanwhile.
#[tokio::test]
async fn an_answer_nobody_reads_is_given_up_after_send_timeout_ms() {
    let nodes = start_nodes(1).await;
    let extra = "send_timeout_ms: 500\ntimeout_ms: 20000\n";
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), extra)).await;
    // 8 MB: more than loopback's buffers hold for a client that reads nothing.
    for i in 0..8 {
        post(
            proxy.addr,
            &format!("/put?key=big-{i}"),
            big_value(1_000_000),
        )
        .await
        .expect_json(200);
    }
    let mut stream = slow_reader(proxy.addr).await;
    stream
        .write_all(&request_bytes(proxy.addr, "GET", "/dump", &[], b""))
        .await
        .expect("send");
    // The head: the answer has started (the gather is done); then nothing is read.
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
            .await
            .expect("the answer started")
            .expect("read");
        assert!(n > 0, "closed before the head: {head:?}");
        head.extend_from_slice(&buf[..n]);
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let declared: usize = Reply::parse(&head[..end])
        .header("content-length")
        .expect("a Content-Length")
        .parse()
        .unwrap();
    assert!(declared > 8_000_000, "the dump is {declared} bytes");

    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(status_of(proxy.addr, "/health").await, Some(200));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (rest, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let body = head.len() - end + rest.len();
    assert!(
        closed,
        "the connection is still open 10 s after reading resumed"
    );
    assert!(
        body < declared,
        "all {declared} bytes came: the unread answer was not given up"
    );
}

/// What a careless or hostile class can do at once (a node that is the proxy itself,
/// 50 bodies that never finish, 50 `/dump` answers nobody reads) does not stop the
/// proxy: `/health` still answers 200 within a second.
#[tokio::test]
async fn the_proxy_survives_a_loop_stalled_bodies_and_unread_answers_at_once() {
    let kv1 = start_nodes(1).await.pop().unwrap();
    for i in 0..4 {
        post(kv1.addr, &format!("/put?key=big-{i}"), big_value(250_000))
            .await
            .expect_json(200);
    }
    let listener = bind().await;
    let me = url(listener.local_addr().unwrap());
    let proxy = serve_on(
        listener,
        &yaml("sharding", &[("kv1", url(kv1.addr)), ("me", me)], ""),
    );
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(stalled_body(proxy.addr).await);
        let mut unread = slow_reader(proxy.addr).await;
        let dump = request_bytes(proxy.addr, "GET", "/dump", &[], b"");
        unread.write_all(&dump).await.expect("send");
        held.push(unread);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let reply = get(proxy.addr, "/health").await;
    let took = started.elapsed();
    let body = reply.expect_json(200);
    assert!(took < Duration::from_secs(1), "/health took {took:?}");
    assert_eq!(body["nodes_total"], 2, "{body}");
    assert_eq!(
        body["nodes"][0]["up"], true,
        "kv1 is served meanwhile: {body}"
    );
}

/// A node that answers a page (`text/html` with a script in it) is not passed on: the
/// proxy answers 502 in JSON naming the node, so nothing a node sends runs on the
/// proxy's origin.
#[tokio::test]
async fn a_node_answering_html_is_a_502_naming_it() {
    let page = start_canned(Duration::ZERO, |_| {
        storage::http::html("<script>alert(1)</script>".into())
    })
    .await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(page.addr))], "")).await;
    let reply = get(proxy.addr, "/get?key=k").await;
    let body = reply.expect_error(502);
    assert_eq!(body["node"], "kv1");
    let why = body["error"].as_str().unwrap();
    assert!(
        why.contains(&format!("node kv1 ({})", url(page.addr))),
        "{why}"
    );
    assert!(why.contains("not JSON"), "{why}");
    assert!(!reply.text().contains("<script"), "{}", reply.text());
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
}

/// A node in another language that sends its JSON as `text/plain` is fine: its status
/// and body go out as `application/json`.
#[tokio::test]
async fn a_node_sending_json_as_text_plain_is_answered_as_json() {
    let plain = start_canned(Duration::ZERO, |_| {
        storage::http::with_type(StatusCode::OK, "text/plain", r#"{"value": 1}"#.into())
    })
    .await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(plain.addr))], "")).await;
    let reply = get(proxy.addr, "/get?key=k").await;
    assert_eq!(reply.expect_json(200)["value"], 1);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
}

/// Every page the proxy serves runs only its own scripts and may not be framed by
/// another site, and no answer may be sniffed into another type.
#[tokio::test]
async fn pages_carry_a_csp_and_every_answer_nosniff() {
    let nodes = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    post(proxy.addr, "/put?key=k", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    let page = get(proxy.addr, "/state").await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp:?}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp:?}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    for path in [
        "/get?key=k",
        "/get?key=none",
        "/health",
        "/dump",
        "/state.json",
        "/nowhere",
    ] {
        let reply = get(proxy.addr, path).await;
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}: {reply:#?}"
        );
    }
}

/// In replication, a read that finds the first node silent and the second without the
/// key is unknown, not "not found": the silent node may hold it. 502 or 504 saying so.
#[tokio::test]
async fn a_read_past_a_silent_replica_is_unknown_not_404() {
    let hole = black_hole().await;
    let kv = start_nodes(1).await.pop().unwrap();
    let list = vec![("hole", url(hole.addr)), ("kv1", url(kv.addr))];
    let (proxy, _) = start_proxy(&yaml("replication", &list, "timeout_ms: 300\n")).await;
    let reply = get(proxy.addr, "/get?key=k").await;
    assert!(matches!(reply.status, 502 | 504), "{reply:#?}");
    let why = error_of(&reply, reply.status);
    assert!(why.contains("unknown"), "{why}");
}

/// A DELETE that reached the node on a connection that then died is not sent again: a
/// second DELETE would answer 404 for a key that existed and was deleted. A GET in the
/// same plight is sent again, and answers 200.
#[tokio::test]
async fn a_delete_whose_answer_was_lost_is_not_sent_again() {
    let node = start_nodes(1).await.pop().unwrap();
    let front = Front::start(node.addr, Cut::Answers).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(front.addr))], "")).await;
    for key in ["gone", "kept"] {
        post(proxy.addr, &format!("/put?key={key}"), r#"{"value": 1}"#)
            .await
            .expect_json(200);
    }
    front.cut_open_connections();
    let reply = request(proxy.addr, "DELETE", "/delete?key=gone", &[], b"").await;
    assert_ne!(reply.status, 404, "the DELETE was sent twice: {reply:#?}");
    let body = reply.expect_error(502);
    assert_eq!(body["node"], "kv1", "{body}");
    assert_eq!(
        value_on(node.addr, "gone").await,
        None,
        "the DELETE did happen"
    );

    // A fresh pooled connection, then its answers are lost too: the GET goes again.
    get(proxy.addr, "/get?key=kept").await.expect_json(200);
    let opened = front.connections();
    front.cut_open_connections();
    let reply = get(proxy.addr, "/get?key=kept").await;
    assert_eq!(reply.expect_json(200)["value"], 1);
    assert!(
        front.connections() > opened,
        "no fresh connection was opened"
    );
}
