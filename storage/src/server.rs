//! The accept loop both binaries run: one tokio task per connection, HTTP/1.1 by hyper,
//! and a graceful stop that lets requests in flight finish.
//!
//! The caller owns the listener (as in mini-redis), so a test binds `127.0.0.1:0`, reads
//! the port it got and runs the real server in-process.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::http::Response;

/// How long a client may take to send a request's headers. A half-open connection (a
/// student's `nc`, a crashed client) holds a task and a socket, not the server.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a stop waits for requests in flight before it gives up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What answers requests: the storage node's routes, or the proxy's.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request; `peer` is the address it came from.
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send;
}

/// Serves `handler` on `listener` until `shutdown` completes, then stops accepting and
/// waits (up to [`DRAIN_TIMEOUT`]) for the requests in flight.
pub async fn run<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
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
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler.handle(req, peer).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // A broken client connection is the client's business, not the server's.
                    let _ = conn.await;
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

/// Completes on Ctrl-C (SIGINT) or SIGTERM (`docker stop`, `kill`).
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
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
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
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
