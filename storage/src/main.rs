//! `storage -n kv1 -p 5000`: parse the flags, listen, serve until Ctrl-C or SIGTERM.

use clap::Parser;
use storage::{server, Settings};

#[tokio::main]
async fn main() {
    let settings = Settings::parse();
    server::init_logging();
    let listener = match server::bind(&settings.host, settings.port).await {
        Ok(l) => l,
        Err(why) => {
            eprintln!("storage: {why}");
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!("node {} listening on http://{addr} (state page: /state)", settings.name);
    storage::serve(listener, settings, server::stop_signal()).await;
    tracing::info!("stopped");
}
