//! The test kit: start a real server on a free port, and speak HTTP/1.1 to it by hand.
//!
//! The client is written over a bare `TcpStream` on purpose. A library client would
//! tidy up exactly what these tests must see: the bytes of a body, a `+` in a raw query,
//! a `Content-Length` that lies, garbage on the wire. Each request says
//! `Connection: close`, so an answer is simply everything read until the server hangs up.
//!
//! Only [`start_node`] knows about `storage`; the proxy's tests reuse this file through
//! `#[path]` and start their own server with [`start_server`]. Keys go into a query
//! through [`encode`], the kit's own percent-encoder, for the same reason.

// Each test binary compiles its own copy of this module and uses only some of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any one exchange may take before the test fails instead of hanging.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The future a server watches to know when to stop (what Ctrl-C is for the binary).
pub type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server running on a tokio task of the test's runtime.
pub struct Node {
    /// Where it listens: 127.0.0.1 and the port the OS picked.
    pub addr: SocketAddr,
    /// Firing (or dropping) this completes the server's [`Stop`] future.
    stop: oneshot::Sender<()>,
    /// The task running the server; it ends once the server has drained and returned.
    task: JoinHandle<()>,
}

impl Node {
    /// Asks the server to stop, as Ctrl-C would, and hands back its task: awaiting it
    /// waits for the requests in flight. Dropping a `Node` stops the server too.
    pub fn shutdown(self) -> JoinHandle<()> {
        let _ = self.stop.send(());
        self.task
    }
}

/// Starts a storage node with `settings` on 127.0.0.1, on a port the OS picks.
pub async fn start_node(settings: storage::Settings) -> Node {
    start_server(|listener, stop| storage::serve(listener, settings, stop)).await
}

/// Binds 127.0.0.1:0 and spawns `serve(listener, stop)` on a task: any server whose
/// caller owns the listener (the mini-redis shape) can be started this way.
pub async fn start_server<F, Fut>(serve: F) -> Node
where
    F: FnOnce(TcpListener, Stop) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("the bound address");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        Box::pin(async move {
            let _ = stopped.await;
        }),
    ));
    Node { addr, stop, task }
}

/// One HTTP answer, as read off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lowercased, values trimmed, in the order they came.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if it came as `Transfer-Encoding: chunked`.
    pub body: Vec<u8>,
}

impl Reply {
    /// Parses a whole answer: status line, headers, body.
    pub fn parse(bytes: &[u8]) -> Reply {
        let shown = String::from_utf8_lossy(bytes);
        let end = find(bytes, b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of headers in the answer: {shown:?}"));
        let head = std::str::from_utf8(&bytes[..end]).expect("the answer's head is UTF-8");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        let rest = &bytes[end + 4..];
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The first header called `name` (give it lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the body is UTF-8")
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {:?}", self.text()))
    }

    /// Checks the status and that the body is JSON, and returns it; on failure the
    /// message shows the whole answer.
    pub fn expect_json(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status: {self:#?}");
        let kind = self.header("content-type").unwrap_or_default();
        assert!(kind.starts_with("application/json"), "not JSON: {self:#?}");
        self.json()
    }

    /// Checks an error answer: this status, a JSON body, a non-empty `error` sentence.
    /// Returns the body for the caller's own checks.
    pub fn expect_error(&self, status: u16) -> Value {
        let body = self.expect_json(status);
        let sentence = body["error"].as_str().unwrap_or_default();
        assert!(!sentence.is_empty(), "no `error` string: {body}");
        body
    }
}

/// Percent-encodes every byte but the unreserved ones, as a careful client would.
/// Written out here rather than borrowed from `storage` or `proxy`, so the tests check
/// the node and the proxy against an independent encoder.
pub fn encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"").await
}

/// `POST path` with `body` (no Content-Type: the node reads the body as JSON anyway).
pub async fn post(addr: SocketAddr, path: &str, body: impl AsRef<[u8]>) -> Reply {
    request(addr, "POST", path, &[], body.as_ref()).await
}

/// Sends one request and reads its answer. `Host`, `Connection: close` and
/// `Content-Length` are added unless `headers` already has them.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let bytes = request_bytes(addr, method, path, headers, body);
    let mut stream = connect(addr).await;
    within(stream.write_all(&bytes)).await.expect("send");
    let answer = read_to_eof(&mut stream).await;
    assert!(!answer.is_empty(), "{method} {path}: closed with no answer");
    Reply::parse(&answer)
}

/// The bytes of a request, as [`request`] sends them (for tests that send them in parts).
pub fn request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    if !has("content-length") && !has("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends arbitrary bytes, closes the sending half (so the server sees the end, however
/// broken the request) and returns whatever came back before the server hung up.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr).await;
    within(stream.write_all(bytes)).await.expect("send");
    within(stream.shutdown())
        .await
        .expect("close the sending half");
    read_to_eof(&mut stream).await
}

/// Opens a connection, failing the test after [`TIMEOUT`].
pub async fn connect(addr: SocketAddr) -> TcpStream {
    within(TcpStream::connect(addr))
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Reads until the server closes. A reset after some bytes ends the answer too: a
/// server may drop a connection it refused without waiting for our side.
pub async fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match within(stream.read(&mut buf)).await {
            Ok(0) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) if !answer.is_empty() => return answer,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Awaits `step`, failing the test if it takes longer than [`TIMEOUT`].
async fn within<T>(step: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, step)
        .await
        .expect("the server did not answer in time")
}

/// Joins the chunks of a `Transfer-Encoding: chunked` body (trailers are ignored).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").expect("a chunk-size line");
        let line = std::str::from_utf8(&data[..line_end]).expect("chunk size is text");
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16).expect("chunk size is hex");
        if size == 0 {
            return body;
        }
        data = &data[line_end + 2..];
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
