//! The accept loop both binaries run: one tokio task per connection, HTTP/1.1 by hyper,
//! and a graceful stop that lets requests in flight finish.
//!
//! The caller owns the listener (as in mini-redis), so a test binds `127.0.0.1:0`, reads
//! the port it got and runs the real server in-process.
//!
//! Open to the internet, a server must not be held by clients that stop half-way: the
//! headers and the body have deadlines ([`Limits`]), an answer the client stops reading
//! is given up ([`SendTimeout`]), and past `max_connections` a new connection gets a 503
//! at once. Every answer says how a browser may treat it (`nosniff`; pages get a CSP
//! and may not be framed), so nothing a node stores can run as script on our origin.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::http::Response;
use crate::send_timeout::SendTimeout;

/// How long a client may take to send a request's headers. A half-open connection (a
/// student's `nc`, a crashed client) holds a task and a socket, not the server.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a stop waits for requests in flight before it gives up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a body may take to arrive, by default (idle gaps and all).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an answer may wait for a client that reads nothing, by default.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections are served at once, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// What one client may hold of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; one more gets a 503 and is closed.
    pub max_connections: usize,
    /// A request body must arrive within this (the handler reads it: [`crate::http::read_body`]).
    pub body_timeout: Duration,
    /// An answer is given up when the client reads nothing of it for this long.
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
        }
    }
}

/// What answers requests: the storage node's routes, or the proxy's.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request; `peer` is the address it came from.
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send;

    /// The limits the accept loop holds clients to.
    fn limits(&self) -> Limits {
        Limits::default()
    }
}

/// The headers that tell a browser how to treat an answer: never guess a type
/// (`nosniff`); a page runs only its own scripts and is never framed by another site.
pub fn secure(res: &mut Response) {
    let headers = res.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    let is_html = headers
        .get(CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    // A page that set its own framing rule (a pool's page, framed by the proxy's own
    // side-by-side page) keeps it; every other page may not be framed at all.
    if is_html && !headers.contains_key("content-security-policy") {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            ),
        );
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    }
}

/// Serves `handler` on `listener` until `shutdown` completes, then stops accepting and
/// waits (up to [`DRAIN_TIMEOUT`]) for the requests in flight.
pub async fn run<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let limits = handler.limits();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut last_full_log: Option<std::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait a moment rather than spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    let quiet = last_full_log.filter(|t| t.elapsed() < Duration::from_secs(1));
                    if quiet.is_none() {
                        tracing::warn!(
                            "{} connections are open, the most allowed: new ones get 503 (max_connections)",
                            limits.max_connections
                        );
                        last_full_log = Some(std::time::Instant::now());
                    }
                    tokio::spawn(refuse(stream));
                    continue;
                };
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move {
                        let mut res = handler.handle(req, peer).await;
                        secure(&mut res);
                        Ok::<_, Infallible>(res)
                    }
                });
                let io = SendTimeout::new(stream, limits.send_timeout);
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(io), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // A broken client connection is the client's business, not the server's.
                    let _ = conn.await;
                    drop(slot);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("stopped with requests still in flight"),
    }
}

/// The answer to a connection past `max_connections`: a 503 in a sentence, then close.
/// Bounded in time, so refused clients cannot pile up either.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "{\"error\":\"the server is at its connection limit (max_connections): try again in a moment\"}";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (`docker stop`, `kill`).
///
/// The handlers are installed when this is called, not when it is first awaited: call it
/// before saying "listening", so a signal sent the moment a client sees the node up (a
/// script, a test, `docker stop` right after start) stops it cleanly instead of killing
/// it. Must be called inside the runtime.
pub fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let next = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = next(term) => {}
                _ = next(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// This machine's address on its network (what a student's laptop reaches it at), if it
/// has one. Found by asking the OS which address a UDP socket would send from: `connect`
/// on UDP only picks a route, no packet leaves the machine.
pub fn lan_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Binds `host:port`, turning the usual failure into a sentence a teacher can act on.
pub async fn bind(host: &str, port: u16) -> Result<TcpListener, String> {
    TcpListener::bind((host, port)).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "port {port} is already in use on {host}: stop the program using it \
                 (`lsof -i :{port}`) or pick another port with -p"
            )
        } else {
            format!("cannot listen on {host}:{port}: {e}")
        }
    })
}

/// Keeps the log's writer thread running; the log is flushed when this is dropped, so
/// `main` holds it until the end.
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Starts the `tracing` log every binary writes: `RUST_LOG` tunes it, `info` by default.
///
/// Lines go to stdout through a writer thread: a request only queues its line, so the
/// teacher's terminal sees every request without making the server wait for it. Under a
/// flood the queue is bounded and lines are dropped rather than requests slowed.
pub fn init_logging() -> LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Buffered: the writer thread writes what queued up in one go and flushes when the
    // queue is empty, so a busy server makes one write per batch, not one per line.
    let out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout());
    let (writer, guard) = tracing_appender::non_blocking(out);
    // Colours for a terminal; none in a file or a pipe (`docker logs`, a test).
    let colours = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colours)
        .with_writer(writer)
        .try_init();
    LogGuard(guard)
}
