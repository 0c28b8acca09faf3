//! What the proxy's tests need beyond the storage test kit (`common`): a proxy started
//! in-process on port 0, nodes that record what reached them, nodes that never answer,
//! a config written as YAML, and the kit's independent percent-encoder, passed on here.
//!
//! Each test file declares `mod common` (the storage kit, through `#[path]`) and then
//! `mod support`; this file reaches the kit as `crate::common`. The students'-nodes kit
//! (`students_support`) is built on this one and passes much of it on.

// Each test binary compiles its own copy of this module and uses only some of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use proxy::config::Config;
use proxy::Proxy;
use storage::http::Response;
use storage::server::Handler;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::{get, start_node, start_server, Node};

pub use crate::common::encode;

/// `http://127.0.0.1:PORT`, the URL a config gives a node.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A config in the classroom format: `mode`, then `nodes` as `(name, url)` in order,
/// then `extra` lines as they are (`timeout_ms: 300`).
pub fn yaml(mode: &str, nodes: &[(&str, String)], extra: &str) -> String {
    let mut text = format!("mode: {mode}\nnodes:\n");
    for (name, url) in nodes {
        text.push_str(&format!("  - name: {name}\n    url: {url}\n"));
    }
    text.push_str(extra);
    text
}

/// Starts the proxy on a free port with the config `text`.
pub async fn start_proxy(text: &str) -> (Node, Arc<Proxy>) {
    let config = Config::parse(text).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"));
    let proxy = Arc::new(Proxy::new(config));
    let serving = proxy.clone();
    let node = start_server(move |listener, stop| proxy::serve(listener, serving, stop)).await;
    (node, proxy)
}

/// Starts storage nodes called kv1, kv2, ... on free ports.
pub async fn start_nodes(n: usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in 1..=n {
        nodes.push(start_node(storage::Settings::named(&format!("kv{i}"))).await);
    }
    nodes
}

/// The `(name, url)` list of nodes started by [`start_nodes`], for [`yaml`].
pub fn named(nodes: &[Node]) -> Vec<(&'static str, String)> {
    const NAMES: [&str; 6] = ["kv1", "kv2", "kv3", "kv4", "kv5", "kv6"];
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (NAMES[i], url(n.addr)))
        .collect()
}

/// Asks a node directly for `key`: the value's JSON text when it has it, `None` on 404.
pub async fn value_on(node: SocketAddr, key: &str) -> Option<serde_json::Value> {
    let reply = get(node, &format!("/get?key={}", encode(key))).await;
    match reply.status {
        200 => Some(reply.json()["value"].clone()),
        404 => None,
        other => panic!("node {node} answered {other} for {key:?}: {reply:#?}"),
    }
}

/// How many keys a node holds, by its own `/dump`.
pub async fn count_on(node: SocketAddr) -> u64 {
    let reply = get(node, "/dump").await;
    reply.expect_json(200)["count"].as_u64().expect("a count")
}

/// An address where nothing listens: bound once, then let go, so connecting is refused.
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// A "node" that accepts connections and never answers: a hung process, a firewall
/// that drops packets. Dropping it closes the connections it holds.
pub struct BlackHole {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn black_hole() -> BlackHole {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    BlackHole { addr, task }
}

/// One request as it reached a test server.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Exactly as the request line had it, like `/put?key=a%26b`.
    pub path_and_query: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    /// Only for [`start_scripted`] servers; a spy passes the body on unread.
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn head(req: &Request<Incoming>) -> Seen {
        Seen {
            method: req.method().to_string(),
            path_and_query: req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        v.to_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            body: Bytes::new(),
        }
    }
}

/// The requests a test server saw, shared with the test.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    pub fn list(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push(seen);
    }
}

/// A test server and the log of what reached it.
pub struct Spied {
    pub node: Node,
    pub log: Log,
}

/// A real storage node that records the head of every request before answering it,
/// after `delay` (a slow node).
struct Spy {
    inner: storage::routes::Node,
    log: Log,
    delay: Duration,
}

impl Handler for Spy {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response {
        self.log.push(Seen::head(&req));
        tokio::time::sleep(self.delay).await;
        self.inner.handle(req, peer).await
    }
}

/// Starts a storage node called `name` that records what reaches it, answering after `delay`.
pub async fn start_spy(name: &str, delay: Duration) -> Spied {
    let log = Log::default();
    let spy = Arc::new(Spy {
        inner: storage::routes::Node::open(&storage::Settings::named(name))
            .expect("a node without a data file always opens"),
        log: log.clone(),
        delay,
    });
    let node = start_server(move |listener, stop| storage::server::run(listener, spy, stop)).await;
    Spied { node, log }
}

/// A server whose every answer `answer` makes from the whole request (body included),
/// after `delay` (a slow server).
struct Scripted<F> {
    answer: F,
    log: Log,
    delay: Duration,
}

impl<F> Handler for Scripted<F>
where
    F: Fn(&Seen) -> Response + Send + Sync + 'static,
{
    async fn handle(&self, req: Request<Incoming>, _peer: SocketAddr) -> Response {
        let mut seen = Seen::head(&req);
        seen.body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        self.log.push(seen.clone());
        tokio::time::sleep(self.delay).await;
        (self.answer)(&seen)
    }
}

/// Starts a server that answers every request with `answer(request)` and logs it.
pub async fn start_scripted<F>(answer: F) -> Spied
where
    F: Fn(&Seen) -> Response + Send + Sync + 'static,
{
    start_scripted_after(Duration::ZERO, answer).await
}

/// Like [`start_scripted`], but each answer comes only after `delay` (the request is
/// logged when it arrives).
pub async fn start_scripted_after<F>(delay: Duration, answer: F) -> Spied
where
    F: Fn(&Seen) -> Response + Send + Sync + 'static,
{
    let log = Log::default();
    let handler = Arc::new(Scripted {
        answer,
        log: log.clone(),
        delay,
    });
    let node =
        start_server(move |listener, stop| storage::server::run(listener, handler, stop)).await;
    Spied { node, log }
}

/// A storage node on a port chosen by the test (to restart one where it was).
pub struct Fixed {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Fixed {
    /// Stops it as Ctrl-C would and waits until its listener is closed.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts a storage node called `name` listening on `addr` exactly.
pub async fn start_node_on(addr: SocketAddr, name: &str) -> Fixed {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr} again: {e}"));
    let (stop, stopped) = oneshot::channel::<()>();
    let settings = storage::Settings::named(name);
    let task = tokio::spawn(storage::serve(listener, settings, async move {
        let _ = stopped.await;
    }));
    Fixed { stop, task }
}

/// A file in the system's temp folder with a name no other test uses; removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(label: &str, contents: &str) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("proxy-test-{}-{n}-{label}", std::process::id()));
        std::fs::write(&path, contents).expect("write a temp file");
        TempFile { path }
    }

    /// The path as a command-line argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temp path")
    }

    /// Replaces the contents as editors do: write a new file beside it, rename it over.
    pub fn replace(&self, contents: &str) {
        let next = self.path.with_extension("new");
        std::fs::write(&next, contents).expect("write the new version");
        std::fs::rename(&next, &self.path).expect("rename it over the old one");
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Undoes the five escapes askama writes (named and numeric forms), to read page text.
pub fn unescape_html(text: &str) -> String {
    text.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// Which way a [`Front`] cuts an old connection once told to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The next request on it is dropped and the connection closed, unanswered: the
    /// node never saw it (a pooled connection the node had closed).
    Requests,
    /// The next request reaches the node, and its answer is lost on the way back: the
    /// node did it, the proxy never hears so.
    Answers,
}

/// The two ways through a [`Front`]: the one copied freely, then the one that is cut.
type Pipes = (
    Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
    Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
);

/// A TCP forwarder in front of a node, whose connections opened before
/// [`Front::cut_open_connections`] fail as `cut` says; connections opened after forward
/// as usual.
pub struct Front {
    pub addr: SocketAddr,
    generation: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Front {
    pub async fn start(backend: SocketAddr, cut: Cut) -> Front {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let generation = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (g, a) = (generation.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let (g, born) = (g.clone(), g.load(Ordering::SeqCst));
                tokio::spawn(async move {
                    let Ok(upstream) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let (client_rx, client_tx) = client.into_split();
                    let (up_rx, up_tx) = upstream.into_split();
                    // One way copies freely; the other (the way that is cut) is copied
                    // here, checking before each chunk whether it has been cut.
                    let (mut free_rx, mut free_tx, mut cut_rx, mut cut_tx): Pipes = match cut {
                        Cut::Requests => (
                            Box::new(up_rx),
                            Box::new(client_tx),
                            Box::new(client_rx),
                            Box::new(up_tx),
                        ),
                        Cut::Answers => (
                            Box::new(client_rx),
                            Box::new(up_tx),
                            Box::new(up_rx),
                            Box::new(client_tx),
                        ),
                    };
                    let free = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut free_rx, &mut free_tx).await;
                    });
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = cut_rx.read(&mut buf).await {
                        if n == 0 || g.load(Ordering::SeqCst) != born {
                            break;
                        }
                        if cut_tx.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    // Dropping both halves closes the client's connection.
                    free.abort();
                });
            }
        });
        Front {
            addr,
            generation,
            accepted,
            task,
        }
    }

    /// From now on, connections opened before fail as the front's [`Cut`] says.
    pub fn cut_open_connections(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}
