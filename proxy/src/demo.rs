//! `proxy --demo`: the whole classroom demo in one command: three storage nodes in this
//! process on ports 5000–5002 and the proxy on 5003, no config file needed.

use std::sync::Arc;

use storage::server;

use crate::config::{Config, NodeConfig};
use crate::Proxy;

/// The nodes' ports: the classroom original's.
pub const NODE_PORTS: [u16; 3] = [5000, 5001, 5002];

/// Starts the nodes and the proxy and serves until Ctrl-C or SIGTERM.
pub async fn run(mode: &str, host: &str, port: u16) -> Result<(), String> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut nodes = Vec::new();
    let mut tasks = Vec::new();
    for (i, node_port) in NODE_PORTS.iter().enumerate() {
        let name = format!("kv{}", i + 1);
        let listener = server::bind(host, *node_port).await.map_err(|_| {
            format!(
                "port {node_port} is already in use: the demo's nodes always take ports 5000-5002 \
                 (-p moves only the proxy); stop what uses it (`lsof -i :{node_port}`), or run \
                 your own nodes and `proxy -c configs/localhost.yml`"
            )
        })?;
        let mut settings = storage::Settings::named(&name);
        settings.port = *node_port;
        tasks.push(tokio::spawn(storage::serve(
            listener,
            settings,
            stopped(stop_rx.clone()),
        )));
        nodes.push(NodeConfig {
            name,
            url: format!("http://127.0.0.1:{node_port}"),
        });
    }
    let config = Config {
        mode: mode.to_string(),
        nodes,
        ..Config::default()
    };
    config.check()?;
    let listener = server::bind(host, port).await?;
    crate::print_banner(&config, port);
    let proxy = Arc::new(Proxy::new(config));
    tasks.push(tokio::spawn(crate::serve(
        listener,
        proxy,
        stopped(stop_rx.clone()),
    )));
    server::stop_signal().await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    println!("demo stopped: the nodes and the proxy are down, their keys gone");
    Ok(())
}
