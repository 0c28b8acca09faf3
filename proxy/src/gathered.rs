//! Every node's data, fetched once and shared by every request that needs it.
//!
//! `/dump`, `/state` and `/state.json` need every node's pairs. Fetched per request, 300
//! clients asking at once (and never reading the answer) would cost 300 fetches of every
//! node and 300 copies of the answer. Here one gather is in flight at a time: requests
//! that arrive meanwhile wait for it and share its result, and a result is reused while
//! it is young and no write went through the proxy since (a key written and then looked
//! for is always on the page). `/dump`'s body is built once per gather and shared too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::cluster::Cluster;
use crate::overview::{self, NodeView};
use crate::upstream::Upstream;

/// How long a gather is reused when nothing was written through the proxy: the page
/// polls once a second, so each poll sees at most this old a picture.
pub const MAX_AGE: Duration = Duration::from_millis(1000);

/// One gather of every node.
pub struct Gathered {
    pub views: Vec<NodeView>,
    /// When it finished.
    pub at: Instant,
    /// The cluster it was gathered for (a reload or a join makes it stale).
    cluster: Arc<Cluster>,
    /// The proxy's write count when it started.
    writes: u64,
    /// `/dump`'s answer, built by the first request that asks and shared by the rest.
    pub dump: OnceLock<Bytes>,
}

/// The latest gather and the one in flight.
#[derive(Default)]
pub struct Gatherer {
    /// A tokio lock, held across the gather on purpose: it is what makes requests that
    /// arrive during a gather wait for it instead of starting their own.
    latest: tokio::sync::Mutex<Option<Arc<Gathered>>>,
    /// Writes through the proxy so far; a gather older than the last write is stale.
    writes: AtomicU64,
}

impl Gatherer {
    /// A write went through the proxy: the next view must see it.
    pub fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// A gather of `cluster` made after the last write and at most [`MAX_AGE`] old.
    pub async fn get(&self, upstream: &Upstream, cluster: &Arc<Cluster>) -> Arc<Gathered> {
        let writes = self.writes.load(Ordering::Relaxed);
        let mut latest = self.latest.lock().await;
        if let Some(g) = latest.as_ref() {
            if Arc::ptr_eq(&g.cluster, cluster) && g.writes >= writes && g.at.elapsed() < MAX_AGE {
                return g.clone();
            }
        }
        let writes = self.writes.load(Ordering::Relaxed);
        let views = overview::gather(upstream, cluster).await;
        let fresh = Arc::new(Gathered {
            views,
            at: Instant::now(),
            cluster: cluster.clone(),
            writes,
            dump: OnceLock::new(),
        });
        *latest = Some(fresh.clone());
        fresh
    }
}
