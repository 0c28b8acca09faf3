//! `proxy -c configs/localhost.yml -p 5003`, `proxy --demo`, `proxy --check -c FILE`,
//! `proxy doctor ...`: parse the flags and hand over to the library.
//!
//! Exit codes: 0 fine; 2 a config (or flags) that cannot run, with one sentence why.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use proxy::config::Config;
use proxy::pools::Pools;
use proxy::{doctor, mode, reload};
use storage::server;

/// A stateless proxy that shards or replicates keys over storage nodes.
#[derive(Parser, Debug)]
#[command(name = "proxy", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The YAML config (mode and nodes); edits to it take effect while the proxy runs.
    #[arg(short = 'c', long, env = "KV_CONFIG")]
    config: Option<PathBuf>,

    /// The port to listen on.
    #[arg(short = 'p', long, env = "KV_PORT", default_value_t = 5003)]
    port: u16,

    /// The address to listen on (0.0.0.0: reachable from the LAN and from containers).
    #[arg(long, env = "KV_HOST", default_value = "0.0.0.0")]
    host: String,

    /// Check the config and exit (0 when it is good, 2 when not) without serving.
    #[arg(long, requires = "config")]
    check: bool,

    /// Run the whole demo in one process: nodes on 5000-5002, the proxy on -p (5003).
    #[arg(long, conflicts_with_all = ["config", "check"])]
    demo: bool,

    /// The demo's mode (sharding when not given). With a config, the config says the mode.
    #[arg(long)]
    mode: Option<String>,

    /// With --demo: two pools side by side, sharding on 5000-5002 and replication on
    /// 5010-5012, the second mirroring every write made at the root.
    #[arg(long, requires = "demo", conflicts_with = "mode")]
    pools: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check that nodes speak the API: every node of a config, or one URL.
    Doctor(doctor::Args),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The doctor prints its own report (JSON with --json): no log lines among it.
    if let Some(Command::Doctor(args)) = cli.command {
        return doctor::main(args).await;
    }
    let _log = server::init_logging();
    if cli.demo {
        let mode = cli.mode.as_deref().unwrap_or("sharding");
        if mode::by_name(mode).is_none() {
            return fail(&format!(
                "unknown mode '{mode}': valid modes are {}",
                mode::NAMES.join(", ")
            ));
        }
        let run = if cli.pools {
            proxy::demo::run_pools(&cli.host, cli.port).await
        } else {
            proxy::demo::run(mode, &cli.host, cli.port).await
        };
        return match run {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => fail(&why),
        };
    }
    if let Some(mode) = &cli.mode {
        return fail(&format!(
            "--mode {mode} works only with --demo; with a config, write `mode: {mode}` in the file \
             (the proxy reloads it live)"
        ));
    }
    let Some(path) = cli.config else {
        return fail("no config: run `proxy -c configs/localhost.yml`, or `proxy --demo` to try it without one");
    };
    let (config, loaded) = match Config::load_with_text(&path) {
        Ok(loaded) => loaded,
        Err(why) => return fail(&why),
    };
    if cli.check {
        let pools: Vec<String> = proxy::pool_config::specs(&config)
            .iter()
            .map(|p| format!("mode {}, {} nodes", p.config.mode, p.config.nodes.len()))
            .collect();
        println!("config {} is good: {}", path.display(), pools.join("; "));
        return ExitCode::SUCCESS;
    }
    // Before the banner: a signal from then on stops the proxy cleanly.
    let signal = server::stop_signal();
    let listener = match server::bind(&cli.host, cli.port).await {
        Ok(l) => l,
        Err(why) => return fail(&why),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(cli.port);
    proxy::print_banner(&config, port);
    let pools = Arc::new(Pools::new(config));
    reload::watch_pools(pools.clone(), path, loaded);
    proxy::serve_pools(listener, pools, signal).await;
    tracing::info!("proxy stopped");
    ExitCode::SUCCESS
}

/// One sentence on stderr and exit code 2: a config or flags that cannot run.
fn fail(why: &str) -> ExitCode {
    eprintln!("proxy: {why}");
    ExitCode::from(2)
}
