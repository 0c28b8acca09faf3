//! One snapshot, many viewers: what every node holds, gathered once and shared by every
//! page, poll and stream that shows it.
//!
//! A **sweep** asks every node for a summary (its count, its digest and the first pairs
//! a card shows, long values cut: `/dump?limit=300&preview=200`) and publishes an immutable [`Sweep`], with the page's
//! JSON built once. `/state`, `/state.json`, `/events` and `/health` are served from the
//! latest sweep, so thirty viewers cost the nodes one sweep a second, not thirty.
//!
//! - One sweep is in flight at a time; requests that arrive meanwhile wait for it.
//! - While someone watches (a view in the last few seconds, or an open event stream) a
//!   background task sweeps once a second and pushes each sweep to the streams.
//! - A write through the proxy makes the latest sweep stale: the next view waits for a
//!   fresh one (at most ten sweeps a second), so a key written and then looked for is on
//!   the page. Nothing waits for a sweep otherwise: the first view waits for the first.
//!
//! What needs every pair (the merged `/dump`, a filter, the keys replicas disagree on,
//! what would move for each strategy) comes from a **full gather**, made once for every
//! request in flight and reused while it is young and nothing was written. Divergence and
//! what-moves are recomputed only when some node's count or digest changed (or the nodes
//! did), and at most every few seconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::divergence::{self, Divergence};
use crate::overview::{self, Depth, NodeView};
use crate::state_page::{self, Snapshot};
use crate::Proxy;

/// Pairs a card lists, and so what a sweep asks each node for.
pub const KEYS_PER_CARD: usize = 300;

/// A view reuses a sweep this young (the background sweeps every [`SWEEP_EVERY`]).
pub const MAX_AGE: Duration = Duration::from_millis(1500);

/// How often the background sweeps while someone watches.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Sweeps start at least this far apart: at most ten a second, however many writes.
pub const MIN_GAP: Duration = Duration::from_millis(100);

/// While a sweep is in flight, a view that owes it nothing is served a snapshot up to
/// this old rather than wait.
pub const STALE_WHILE_SWEEPING: Duration = Duration::from_secs(10);

/// How many clients' last writes are remembered before the ones already swept are
/// forgotten (a bound on what a flood of addresses can make the proxy hold).
pub const MAX_WRITERS: usize = 4096;

/// A view keeps the background sweeping for this long.
pub const WATCHED_FOR: Duration = Duration::from_secs(5);

/// Divergence is recomputed (a full gather) at most this often.
pub const DIVERGENCE_EVERY: Duration = Duration::from_secs(3);

/// A full gather is reused for `/dump` this long when nothing was written.
pub const FULL_MAX_AGE: Duration = Duration::from_secs(1);

/// One sweep: every node's summary, and the page built from it.
pub struct Sweep {
    pub cluster: Arc<Cluster>,
    pub views: Vec<NodeView>,
    pub divergent: Arc<Vec<Divergence>>,
    pub at: Instant,
    /// Sweeps so far, this one included.
    pub number: u64,
    /// The proxy's write count when it started: older than a later write means stale.
    writes: u64,
    /// The page's data (no filter) and its JSON and ETag, built once for every viewer.
    pub page: Snapshot,
    pub json: Bytes,
    pub etag: String,
}

/// Every pair of every node, for what needs them all.
pub struct FullGather {
    pub cluster: Arc<Cluster>,
    pub views: Vec<NodeView>,
    pub at: Instant,
    writes: u64,
    /// `/dump`'s answer, built by the first request that asks and shared by the rest.
    pub dump: OnceLock<Bytes>,
}

/// Every node's (count, digest): equal fingerprints, (almost surely) equal data.
type Fingerprint = Vec<(Option<usize>, Option<String>)>;

/// The keys replicas disagree on, the fingerprint they were computed from, and when.
#[derive(Default)]
struct Divergent {
    keys: Arc<Vec<Divergence>>,
    /// What would move for each strategy, on the keys held.
    moves: Option<Arc<crate::moves::Table>>,
    /// How many distinct keys the nodes held (a replicated key counts once).
    distinct: usize,
    from: Fingerprint,
    at: Option<Instant>,
}

/// The latest sweep and full gather, and who is watching.
pub struct Snapshots {
    /// The latest sweep, watched by the event streams.
    latest: watch::Sender<Option<Arc<Sweep>>>,
    /// Held across a sweep: what makes concurrent views share one.
    sweeping: tokio::sync::Mutex<()>,
    /// Held across a full gather, with the latest one.
    full: tokio::sync::Mutex<Option<Arc<FullGather>>>,
    /// Divergence, and what it was computed from.
    divergent: Mutex<Divergent>,
    /// Writes through the proxy so far.
    writes: AtomicU64,
    /// Each client's last write (its number in `writes`): a view waits for a sweep that
    /// saw its own client's writes, not everyone's. A std lock, one map operation each.
    by_client: Mutex<HashMap<IpAddr, u64>>,
    sweeps: AtomicU64,
    /// When someone last looked, and when the last sweep started (std locks: one read or
    /// write each).
    viewed: Mutex<Option<Instant>>,
    started: Mutex<Option<Instant>>,
    /// Set when the proxy stops: open event streams end, so a stop does not wait for them.
    closing: watch::Sender<bool>,
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots {
            latest: watch::Sender::new(None),
            sweeping: Default::default(),
            full: Default::default(),
            divergent: Mutex::default(),
            writes: AtomicU64::new(0),
            by_client: Mutex::default(),
            sweeps: AtomicU64::new(0),
            viewed: Mutex::new(None),
            started: Mutex::new(None),
            closing: watch::Sender::new(false),
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Snapshots {
    /// Something changed the data (a repair, a hint delivered, a fault): the background
    /// sweep shows it within a second; no view waits for it.
    pub fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// `client` wrote through the proxy: its next view waits for a sweep that saw it, so
    /// a key written and then looked for is on the page. Others' views are not held up
    /// by it (under a steady stream of writes, no view would ever be served at once);
    /// they see it in the next background sweep, within a second.
    pub fn wrote_by(&self, client: IpAddr) {
        let n = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        let mut by_client = locked(&self.by_client);
        if by_client.len() >= MAX_WRITERS && !by_client.contains_key(&client) {
            // Writes a sweep has seen no longer hold anyone up: forget them.
            let seen = self.latest().map_or(0, |s| s.writes);
            by_client.retain(|_, w| *w > seen);
            if by_client.len() >= MAX_WRITERS {
                by_client.clear();
            }
        }
        by_client.insert(client, n);
    }

    /// The writes a view by `viewer` must see: its own client's (all of them for a
    /// viewer not known).
    fn owed(&self, viewer: Option<IpAddr>) -> u64 {
        match viewer {
            Some(v) => locked(&self.by_client).get(&v).copied().unwrap_or(0),
            None => self.writes.load(Ordering::Relaxed),
        }
    }

    /// The latest sweep, whatever its age (`None` before the first).
    pub fn latest(&self) -> Option<Arc<Sweep>> {
        self.latest.borrow().clone()
    }

    /// Event streams follow the sweeps through this.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Sweep>>> {
        self.latest.subscribe()
    }

    /// The proxy is stopping: every event stream ends.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Completes when the proxy stops.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|c| *c).await;
        }
    }

    /// How many pages hold an event stream open.
    pub fn streams(&self) -> usize {
        self.latest.receiver_count()
    }

    /// The age of the latest sweep, for `/metrics`.
    pub fn age(&self) -> Option<Duration> {
        self.latest().map(|s| s.at.elapsed())
    }

    fn usable(&self, cluster: &Arc<Cluster>, writes: u64, max_age: Duration) -> Option<Arc<Sweep>> {
        self.latest().filter(|s| {
            Arc::ptr_eq(&s.cluster, cluster) && s.writes >= writes && s.at.elapsed() < max_age
        })
    }

    /// A sweep of `cluster` made after `viewer`'s last write (every write, for `None`)
    /// and at most [`MAX_AGE`] old: the latest, or one made now (shared with every view
    /// waiting for it).
    pub async fn fresh(
        &self,
        proxy: &Proxy,
        cluster: &Arc<Cluster>,
        viewer: Option<IpAddr>,
    ) -> Arc<Sweep> {
        *locked(&self.viewed) = Some(Instant::now());
        let writes = self.owed(viewer);
        if let Some(s) = self.usable(cluster, writes, MAX_AGE) {
            return s;
        }
        let _one = match self.sweeping.try_lock() {
            Ok(one) => one,
            Err(_) => {
                // A sweep is in flight (a slow one, when it gathers every key for the
                // divergence table): a view that owes it nothing of its own is served the
                // latest meanwhile, which the page labels with its age.
                if let Some(s) = self.usable(cluster, writes, STALE_WHILE_SWEEPING) {
                    return s;
                }
                self.sweeping.lock().await
            }
        };
        if let Some(s) = self.usable(cluster, writes, MAX_AGE) {
            return s; // swept while this view waited
        }
        self.sweep(proxy, cluster).await
    }

    /// Sweeps now (the caller holds `sweeping`), at most ten times a second.
    async fn sweep(&self, proxy: &Proxy, cluster: &Arc<Cluster>) -> Arc<Sweep> {
        let since = locked(&self.started).map(|t| t.elapsed());
        if let Some(gap) = since.filter(|g| *g < MIN_GAP) {
            tokio::time::sleep(MIN_GAP - gap).await;
        }
        *locked(&self.started) = Some(Instant::now());
        let writes = self.writes.load(Ordering::Relaxed);
        let views = overview::gather(&proxy.upstream, cluster, Depth::Summary(KEYS_PER_CARD)).await;
        let (divergent, distinct, moves) = self.divergence(proxy, cluster, &views).await;
        let mut page = state_page::build(proxy, cluster, &views, &divergent, distinct, "");
        page.moves = moves;
        let json = Bytes::from(serde_json::to_string(&page).unwrap_or_default());
        let etag = etag(&json);
        let sweep = Arc::new(Sweep {
            cluster: cluster.clone(),
            views,
            divergent,
            at: Instant::now(),
            number: self.sweeps.fetch_add(1, Ordering::Relaxed) + 1,
            writes,
            page,
            json,
            etag,
        });
        self.latest.send_replace(Some(sweep.clone()));
        sweep
    }

    /// The keys replicas disagree on and what would move for each strategy: recomputed
    /// from a full gather when a node's count or digest changed since the last time (or
    /// the nodes did), and at most every [`DIVERGENCE_EVERY`]. With it, how many distinct
    /// keys the nodes hold in replication, when that is known for these very views (else
    /// the page counts the fullest node's keys).
    pub async fn divergence(
        &self,
        proxy: &Proxy,
        cluster: &Arc<Cluster>,
        views: &[NodeView],
    ) -> (
        Arc<Vec<Divergence>>,
        Option<usize>,
        Option<Arc<crate::moves::Table>>,
    ) {
        let now: Fingerprint = views.iter().map(|v| (v.count, v.digest.clone())).collect();
        {
            let last = locked(&self.divergent);
            let exact = last.from == now;
            let same_nodes = last
                .moves
                .as_ref()
                .map_or(0, |m| m.rows.first().map_or(0, |r| r.leave.len()))
                == cluster.nodes.len();
            if (exact && same_nodes) || last.at.is_some_and(|t| t.elapsed() < DIVERGENCE_EVERY) {
                return (
                    last.keys.clone(),
                    exact.then_some(last.distinct),
                    last.moves.clone(),
                );
            }
        }
        let full = self.full(proxy, cluster).await;
        let replicated = cluster.mode.name() == "replication";
        let names: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();
        let vnodes = cluster.config.params().vnodes;
        // Every key of every node: off the thread that serves requests.
        let (fresh, distinct, moves) = tokio::task::spawn_blocking(move || {
            let keys = divergence::keys(&full.views);
            let moves = crate::moves::table(&keys, keys.len(), &names, vnodes);
            let diverge = if replicated {
                divergence::divergence(&full.views)
            } else {
                Vec::new()
            };
            (Arc::new(diverge), keys.len(), Some(Arc::new(moves)))
        })
        .await
        .unwrap_or_default();
        *locked(&self.divergent) = Divergent {
            keys: fresh.clone(),
            moves: moves.clone(),
            distinct,
            from: now,
            at: Some(Instant::now()),
        };
        (fresh, replicated.then_some(distinct), moves)
    }

    /// Every pair of every node: the latest full gather when it is young and nothing was
    /// written since, or one made now, shared by every request waiting for it.
    pub async fn full(&self, proxy: &Proxy, cluster: &Arc<Cluster>) -> Arc<FullGather> {
        let writes = self.writes.load(Ordering::Relaxed);
        let mut latest = self.full.lock().await;
        if let Some(g) = latest.as_ref() {
            if Arc::ptr_eq(&g.cluster, cluster)
                && g.writes >= writes
                && g.at.elapsed() < FULL_MAX_AGE
            {
                return g.clone();
            }
        }
        let writes = self.writes.load(Ordering::Relaxed);
        let views = overview::gather(&proxy.upstream, cluster, Depth::Everything).await;
        let fresh = Arc::new(FullGather {
            cluster: cluster.clone(),
            views,
            at: Instant::now(),
            writes,
            dump: OnceLock::new(),
        });
        *latest = Some(fresh.clone());
        fresh
    }

    /// Someone looked lately, or holds a stream open.
    fn watched(&self) -> bool {
        self.streams() > 0 || locked(&self.viewed).is_some_and(|t| t.elapsed() < WATCHED_FOR)
    }
}

/// Keeps the snapshot fresh while someone watches: a sweep a second, pushed to the
/// streams. Ends when the proxy is dropped.
pub fn keep_fresh(proxy: Weak<Proxy>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let Some(proxy) = proxy.upgrade() else {
                return;
            };
            let snapshots = &proxy.snapshots;
            if !snapshots.watched() {
                continue;
            }
            let cluster = proxy.live.get();
            let _one = snapshots.sweeping.lock().await;
            // A view may have swept meanwhile.
            let young = snapshots.latest().is_some_and(|s| {
                Arc::ptr_eq(&s.cluster, &cluster) && s.at.elapsed() < SWEEP_EVERY / 2
            });
            if !young {
                snapshots.sweep(&proxy, &cluster).await;
            }
        }
    })
}

/// A strong ETag for a body: its SHA-256, shortened.
fn etag(body: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}
