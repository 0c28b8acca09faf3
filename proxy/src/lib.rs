//! `proxy`: stateless, it places each key on storage nodes by a mode (sharding or
//! replication) and forwards the request there. It keeps no key data of its own.
//!
//! Codemap, in the order a request meets it:
//! - [`pools`]: which pool a request is for (`/name/...`, the root is the first), each
//!   pool a whole [`Proxy`]; [`pool_config`]: `pools:` in the YAML.
//! - [`routes`]: the HTTP API; checks the request, asks the mode for a plan.
//! - [`mode`]: one file per mode: its placement, its copies, its policy.
//! - [`placement`]: one file per strategy (mod N, the ring, rendezvous), pure;
//!   [`moves`]: what would move, for each, on the keys stored now.
//! - [`forward`]: carries a plan out and turns the nodes' answers into one, as
//!   [`decide`] (pure rules, no I/O) says they add up; [`quorum`] carries out Dynamo's
//!   plans (W, R, newest wins, read repair, hints) when [`consistency`] asks for them,
//!   with versions from [`clock`].
//! - [`heal`]: the background healers, [`handoff`] (hints go home) and
//!   [`anti_entropy`] (bucket hashes compared, copies healed); [`chaos`]: the teacher's
//!   partitions and slow nodes, made in the proxy.
//! - [`upstream`]: the pooled HTTP(S) client, timeouts, retries, errors that name nodes;
//!   [`health`]: which nodes timed out lately, so the next requests need not wait.
//! - [`each`]: one thing done to many nodes at once (replicated writes, pages, doctor).
//! - [`cluster`]: the nodes in force, swapped whole by [`reload`] and [`join`].
//! - [`overview`], [`state_page`], [`explain`], [`recent`]: what the /state page shows.
//! - [`config`]: the YAML file and every check on it.
//! - [`rebalance`]: `POST /rebalance`, every key moved where the placement puts it.
//! - [`guard`], [`hops`], [`address`], [`secret`]: what keeps a proxy open to the
//!   internet safe: who may write or clear, no loops, where joined nodes may be.
//! - [`snapshot`]: every node swept once for every viewer; [`events`] pushes each sweep
//!   to open pages; [`divergence`]: where replicas disagree; [`metrics`]: `/metrics`.
//! - [`demo`]: the whole classroom demo in one process; [`doctor`]: checks a node.

pub mod address;
pub mod anti_entropy;
pub mod chaos;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod consistency;
pub mod decide;
pub mod demo;
pub mod divergence;
pub mod doctor;
pub mod each;
pub mod events;
pub mod explain;
pub mod forward;
pub mod guard;
pub mod handoff;
pub mod heal;
pub mod health;
pub mod hops;
pub mod join;
pub mod metrics;
pub mod mode;
pub mod moves;
pub mod overview;
pub mod placement;
pub mod pool_config;
pub mod pools;
pub mod quorum;
pub mod rebalance;
pub mod recent;
pub mod reload;
pub mod routes;
pub mod secret;
pub mod snapshot;
pub mod state_page;
pub mod upstream;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cluster::Live;
use crate::config::Config;
use crate::guard::Throttle;
use crate::metrics::Metrics;
use crate::recent::Recent;
use crate::snapshot::Snapshots;
use crate::upstream::Upstream;

/// Everything the proxy holds: which nodes, a client to reach them, the last requests.
/// No keys and no values: the nodes have those.
pub struct Proxy {
    pub live: Live,
    pub upstream: Upstream,
    pub recent: Recent,
    /// Every node's data, swept once for every viewer.
    pub snapshots: Snapshots,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Wrong tokens per client.
    pub throttle: Throttle,
    /// What anti-entropy saw last ([`anti_entropy`]).
    pub anti_entropy: anti_entropy::AntiEntropy,
    /// This pool's nodes that other pools use too, by URL, with those pools' names
    /// ([`pools`]); the page says so on the card.
    pub also_in: std::sync::RwLock<std::collections::HashMap<String, Vec<String>>>,
}

impl Proxy {
    pub fn new(config: Config) -> Proxy {
        Proxy::with_upstream(config, Upstream::new())
    }

    /// A proxy whose client is given (tests give one that looks hosts up in a table).
    pub fn with_upstream(config: Config, upstream: Upstream) -> Proxy {
        let allow = config.join_allow_loopback;
        upstream.set_rules(|r| r.allow_loopback = allow);
        Proxy {
            live: Live::new(config),
            upstream,
            recent: Recent::default(),
            snapshots: Snapshots::default(),
            metrics: Metrics::default(),
            throttle: Throttle::default(),
            anti_entropy: Default::default(),
            also_in: Default::default(),
        }
    }
}

/// Serves `proxy` on `listener` until `shutdown` completes. The caller binds the
/// listener, so tests run the real proxy on port 0.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>, shutdown: impl Future<Output = ()>) {
    // Where we listen: a node at this address is this proxy, not a node.
    if let Ok(own) = listener.local_addr() {
        proxy.upstream.set_rules(|r| r.own = Some(own));
    }
    let sweeper = snapshot::keep_fresh(Arc::downgrade(&proxy));
    let healer = heal::keep_healing(Arc::downgrade(&proxy));
    let stopping = proxy.clone();
    let shutdown = async move {
        shutdown.await;
        // Open pages' streams end now, so the stop need not wait for them.
        stopping.snapshots.close();
    };
    storage::server::run(listener, proxy, shutdown).await;
    sweeper.abort();
    healer.abort();
}

/// Serves every pool on `listener` until `shutdown` completes: the root is the first
/// pool's, `/name/...` each pool's ([`pools`]).
pub async fn serve_pools(
    listener: TcpListener,
    pools: Arc<pools::Pools>,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(own) = listener.local_addr() {
        pools.first().upstream.set_rules(|r| r.own = Some(own));
    }
    let mut tasks = Vec::new();
    for pool in &pools.pools {
        tasks.push(snapshot::keep_fresh(Arc::downgrade(&pool.proxy)));
        tasks.push(heal::keep_healing(Arc::downgrade(&pool.proxy)));
    }
    let stopping = pools.clone();
    let shutdown = async move {
        shutdown.await;
        for pool in &stopping.pools {
            pool.proxy.snapshots.close();
        }
    };
    storage::server::run(listener, pools, shutdown).await;
    for t in tasks {
        t.abort();
    }
}

/// What a teacher needs on start: each pool's mode and nodes, and the URLs to open.
pub fn print_banner(config: &Config, port: u16) {
    let specs = pool_config::specs(config);
    for spec in &specs {
        let c = &spec.config;
        if specs.len() == 1 {
            println!("proxy: mode {} over {} nodes", c.mode, c.nodes.len());
        } else {
            println!(
                "pool {}: mode {} over {} nodes, at http://localhost:{port}/{}/{}",
                spec.name,
                c.mode,
                c.nodes.len(),
                spec.name,
                if spec.mirror {
                    " (mirrors the root)"
                } else {
                    ""
                }
            );
        }
        for (i, n) in c.nodes.iter().enumerate() {
            println!(
                "  [{i}] {} at {}  (its page: {}/state)",
                n.name,
                n.url,
                n.url.trim_end_matches('/')
            );
        }
    }
    println!("open http://localhost:{port}/state");
    if let Some(ip) = storage::server::lan_address() {
        println!("students on this network open http://{ip}:{port}/state");
    }
    println!("try:  curl -i -X POST 'http://localhost:{port}/put?key=hello' -d '{{\"value\": \"world\"}}'");
}
