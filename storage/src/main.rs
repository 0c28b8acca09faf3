//! `storage -n kv1 -p 5000`: parse the flags, open the data file (`--data`), listen,
//! serve until Ctrl-C or SIGTERM.

use clap::Parser;
use storage::join::Joining;
use storage::{server, Settings};

#[tokio::main]
async fn main() {
    let settings = Settings::parse();
    let _log = server::init_logging();
    if settings.join.is_some() && settings.join_token.as_deref().unwrap_or("").is_empty() {
        eprintln!(
            "storage: --join needs --join-token (or KV_JOIN_TOKEN): the token the teacher gave the class"
        );
        std::process::exit(2);
    }
    for url in [&settings.join, &settings.advertise].into_iter().flatten() {
        if let Err(why) = storage::join::check_url(url) {
            eprintln!("storage: {why}");
            std::process::exit(2);
        }
    }
    // Opened before listening: a data file that cannot be opened is a one-line exit,
    // and a node never answers before its data is replayed.
    let node = match storage::routes::Node::open(&settings) {
        Ok(node) => node,
        Err(why) => {
            eprintln!("storage: {why}");
            std::process::exit(2);
        }
    };
    // Before the node says it listens: a signal from then on stops it cleanly.
    let signal = server::stop_signal();
    let listener = match server::bind(&settings.host, settings.port).await {
        Ok(l) => l,
        Err(why) => {
            eprintln!("storage: {why}");
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tracing::info!(
        "node {} listening on http://{addr} (open http://localhost:{port}/state)",
        settings.name
    );
    if let Some(ip) = server::lan_address().filter(|_| settings.host == "0.0.0.0") {
        tracing::info!(
            "on this network the node is http://{ip}:{port} (the URL for the teacher's config)"
        );
    }
    let joining = settings.join.as_ref().map(|proxy| {
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(settings.port);
        let token = settings.join_token.clone().unwrap_or_default();
        Joining::new(
            proxy,
            &token,
            &settings.name,
            settings.advertise.clone(),
            port,
        )
    });
    let rejoining = joining.as_ref().map(|j| j.clone().start());
    let stop = async move {
        signal.await;
        // Leave before stopping, so the class's page drops this node rather than showing
        // it down; stop asking to join first, so the leave is the last word.
        if let Some(task) = rejoining {
            task.abort();
        }
        if let Some(j) = &joining {
            j.leave().await;
        }
    };
    storage::serve_node(listener, node, stop).await;
    tracing::info!("stopped");
}
