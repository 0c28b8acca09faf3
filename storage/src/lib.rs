//! `storage`: an in-memory key-value node over HTTP, the building block of the lesson.
//!
//! A node knows nothing of the others: it stores what it is sent and answers what it is
//! asked. Sharding and replication happen in the proxy in front of it.
//!
//! - [`db`]: the data, a map from key to value text (or tombstone), with versions,
//!   behind one lock (the store under it: `store.rs`); [`entry`]: one copy, packed; [`copies`]: the node's copies, found by key;
//!   [`slabs`]: the memory they are packed in.
//! - [`version`]: `X-Kv-Version`, the order of writes (the proxy uses it too).
//! - [`buckets`]: a key's bucket and the per-bucket digests (the proxy uses it too).
//! - [`hints`]: copies held for another node (hinted handoff).
//! - [`grace`]: dropping tombstones after `--tombstone-grace-s`.
//! - [`log`]: the data file (`--data`): append-only log, replay, compaction.
//! - [`routes`]: the HTTP API, one function per route; [`listing`]: `/dump`, `/digests`,
//!   `/hints`.
//! - [`state_page`]: the `/state` page.
//! - [`server`]: the accept loop, its limits and graceful stop, shared with the proxy;
//!   [`send_timeout`]: giving up on a client that stops reading.
//! - [`http`]: JSON answers and errors, query strings, bodies; shared with the proxy.
//! - [`settings`]: the command line.
//! - [`join`]: asking a teacher's proxy to add this node (`--join`), and to drop it on exit.
//! - [`tls`]: the certificates trusted for https (the proxy's nodes, a teacher's ngrok URL).

pub mod buckets;
pub mod copies;
pub mod db;
pub mod entry;
pub mod grace;
pub mod hints;
pub mod http;
pub mod join;
pub mod listing;
pub mod log;
pub mod routes;
pub mod send_timeout;
pub mod server;
pub mod settings;
pub mod slabs;
pub mod state_page;
mod store;
pub mod tls;
pub mod version;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use settings::Settings;

/// Runs a node on `listener` until `shutdown` completes. The caller binds the listener,
/// so tests and the proxy's demo can start real nodes on port 0. A data file that cannot
/// be opened is logged and the node does not start (the binary opens it first, with
/// [`routes::Node::open`], to exit with a message instead).
pub async fn serve(listener: TcpListener, settings: Settings, shutdown: impl Future<Output = ()>) {
    match routes::Node::open(&settings) {
        Ok(node) => serve_node(listener, node, shutdown).await,
        Err(why) => tracing::error!("node {}: {why}", settings.name),
    }
}

/// Runs an opened node, and its tombstone-grace pass beside it, until `shutdown`.
pub async fn serve_node(
    listener: TcpListener,
    node: routes::Node,
    shutdown: impl Future<Output = ()>,
) {
    let node = Arc::new(node);
    let grace = tokio::spawn(grace::run(
        node.db.clone(),
        node.tombstone_grace,
        node.name.clone(),
    ));
    server::run(listener, node, shutdown).await;
    grace.abort();
}
