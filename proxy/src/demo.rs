//! `proxy --demo`: the whole classroom demo in one command: three storage nodes in this
//! process on ports 5000–5002 and the proxy on 5003, no config file needed.
//! `proxy --demo --pools`: both lessons at once, sharding over 5000–5002 and replication
//! over 5010–5012, the second mirroring every write made at the root.

use std::sync::Arc;

use storage::server;

use crate::config::{Config, NodeConfig};
use crate::pool_config::PoolConfig;
use crate::pools::Pools;

/// The nodes' ports: the classroom original's.
pub const NODE_PORTS: [u16; 3] = [5000, 5001, 5002];

/// The second pool's nodes in `--demo --pools`.
pub const MIRROR_PORTS: [u16; 3] = [5010, 5011, 5012];

/// Stops every task of the demo at once.
type Stop = tokio::sync::watch::Receiver<bool>;

async fn stopped(mut rx: Stop) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Starts nodes `prefix1`, `prefix2`, … on `ports`; answers the config's list of them.
async fn start_nodes(
    host: &str,
    prefix: &str,
    ports: &[u16],
    stop: &Stop,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<Vec<NodeConfig>, String> {
    let mut nodes = Vec::new();
    for (i, node_port) in ports.iter().enumerate() {
        let name = format!("{prefix}{}", i + 1);
        let listener = server::bind(host, *node_port).await.map_err(|_| {
            format!(
                "port {node_port} is already in use: the demo's nodes always take ports {}-{} \
                 (-p moves only the proxy); stop what uses it (`lsof -i :{node_port}`), or run \
                 your own nodes and `proxy -c configs/localhost.yml`",
                ports[0],
                ports[ports.len() - 1]
            )
        })?;
        let mut settings = storage::Settings::named(&name);
        settings.port = *node_port;
        tasks.push(tokio::spawn(storage::serve(
            listener,
            settings,
            stopped(stop.clone()),
        )));
        nodes.push(NodeConfig {
            name,
            url: format!("http://127.0.0.1:{node_port}"),
        });
    }
    Ok(nodes)
}

/// Starts the nodes and the proxy and serves until Ctrl-C or SIGTERM.
pub async fn run(mode: &str, host: &str, port: u16) -> Result<(), String> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let nodes = start_nodes(host, "kv", &NODE_PORTS, &stop_rx, &mut tasks).await?;
    let config = Config {
        mode: mode.to_string(),
        nodes,
        ..Config::default()
    };
    serve(config, host, port, stop_tx, stop_rx, tasks).await
}

/// `--demo --pools`: a sharding pool and a mirrored replication pool, six nodes.
pub async fn run_pools(host: &str, port: u16) -> Result<(), String> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let sharded = start_nodes(host, "s", &NODE_PORTS, &stop_rx, &mut tasks).await?;
    let replicated = start_nodes(host, "r", &MIRROR_PORTS, &stop_rx, &mut tasks).await?;
    let pool = |name: &str, mode: &str, nodes, mirror| PoolConfig {
        name: name.into(),
        mode: mode.into(),
        nodes,
        mirror,
        ..PoolConfig::default()
    };
    let config = Config {
        pools: vec![
            pool("sharded", "sharding", sharded, false),
            pool("replicated", "replication", replicated, true),
        ],
        ..Config::default()
    };
    serve(config, host, port, stop_tx, stop_rx, tasks).await
}

/// Checks the demo's config, serves it beside its nodes, and stops them all on Ctrl-C.
async fn serve(
    config: Config,
    host: &str,
    port: u16,
    stop_tx: tokio::sync::watch::Sender<bool>,
    stop_rx: Stop,
    mut tasks: Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), String> {
    config.check()?;
    let signal = server::stop_signal();
    let listener = server::bind(host, port).await?;
    crate::print_banner(&config, port);
    let pools = Arc::new(Pools::new(config));
    tasks.push(tokio::spawn(crate::serve_pools(
        listener,
        pools,
        stopped(stop_rx.clone()),
    )));
    signal.await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    println!("demo stopped: the nodes and the proxy are down, their keys gone");
    Ok(())
}
