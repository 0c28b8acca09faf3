//! `storage`: an in-memory key-value node over HTTP, the building block of the lesson.
//!
//! A node knows nothing of the others: it stores what it is sent and answers what it is
//! asked. Sharding and replication happen in the proxy in front of it.
//!
//! - [`db`]: the data, a map from key to value text; [`entry`]: one pair, packed.
//! - [`routes`]: the HTTP API, one function per route.
//! - [`state_page`]: the `/state` page.
//! - [`server`]: the accept loop, its limits and graceful stop, shared with the proxy;
//!   [`send_timeout`]: giving up on a client that stops reading.
//! - [`http`]: JSON answers and errors, query strings, bodies; shared with the proxy.
//! - [`settings`]: the command line.
//! - [`join`]: asking a teacher's proxy to add this node (`--join`), and to drop it on exit.
//! - [`tls`]: the certificates trusted for https (the proxy's nodes, a teacher's ngrok URL).

pub mod db;
pub mod entry;
pub mod http;
pub mod join;
pub mod routes;
pub mod send_timeout;
pub mod server;
pub mod settings;
pub mod state_page;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use settings::Settings;

/// Runs a node on `listener` until `shutdown` completes. The caller binds the listener,
/// so tests and the proxy's demo can start real nodes on port 0.
pub async fn serve(listener: TcpListener, settings: Settings, shutdown: impl Future<Output = ()>) {
    let node = Arc::new(routes::Node::new(&settings));
    server::run(listener, node, shutdown).await;
}
