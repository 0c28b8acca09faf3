//! Live reload: the proxy watches its config file, so a teacher who adds a student's
//! node or switches the mode just saves the file.
//!
//! It polls the file's content twice a second rather than asking the OS for events:
//! editors save by writing a new file and renaming it over the old one, which breaks
//! a watch on the old file, while reading the path again always sees what is there now.
//! A valid edit is swapped in whole (requests in flight finish on the old cluster); an
//! invalid one is logged with its reason and the running config stays.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::pool_config;
use crate::pools::Pools;
use crate::Proxy;

/// How often the file is read; an edit takes effect within this much time.
const POLL: Duration = Duration::from_millis(500);

/// Watches `path` until the process ends; `loaded` is the text the proxy started with.
pub fn watch(proxy: Arc<Proxy>, path: PathBuf, loaded: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = loaded;
        loop {
            tokio::time::sleep(POLL).await;
            let text = match tokio::fs::read_to_string(&path).await {
                Ok(t) => t,
                // Mid-rename, or deleted: keep what runs, look again next time.
                Err(_) => continue,
            };
            if text == last {
                continue;
            }
            last = text;
            apply(&proxy, &path, &last);
        }
    })
}

/// [`watch`] for every pool of a proxy with `pools:`.
pub fn watch_pools(
    pools: Arc<Pools>,
    path: PathBuf,
    loaded: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = loaded;
        loop {
            tokio::time::sleep(POLL).await;
            let Ok(text) = tokio::fs::read_to_string(&path).await else {
                continue;
            };
            if text == last {
                continue;
            }
            last = text;
            apply_pools(&pools, &path, &last);
        }
    })
}

/// Checks an edited config and puts each pool's part in force, or says why not (on
/// every pool's page). The pools themselves are fixed at start: an edit that adds,
/// removes or renames one is refused, with what to do.
pub fn apply_pools(pools: &Pools, path: &std::path::Path, text: &str) {
    let specs = match Config::parse(text) {
        Ok(config) => pool_config::specs(&config),
        Err(why) => {
            for pool in &pools.pools {
                refused(&pool.proxy, path, &why);
            }
            return;
        }
    };
    let was: Vec<&str> = pools.pools.iter().map(|p| p.name.as_str()).collect();
    let now: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    if was != now {
        let why = format!(
            "the pools changed ({} → {}): restart the proxy to add, remove or rename a pool",
            was.join(", "),
            now.join(", ")
        );
        for pool in &pools.pools {
            refused(&pool.proxy, path, &why);
        }
        return;
    }
    for (pool, spec) in pools.pools.iter().zip(specs) {
        pool.mirror
            .store(spec.mirror, std::sync::atomic::Ordering::Relaxed);
        put_in_force(&pool.proxy, path, spec.config);
    }
    pools.note_shared_nodes();
}

/// Checks an edited config and puts it in force, or says why not.
pub fn apply(proxy: &Proxy, path: &std::path::Path, text: &str) {
    match Config::parse(text) {
        Ok(config) if !config.pools.is_empty() => refused(
            proxy,
            path,
            "this proxy runs one cluster: restart it to run `pools:`",
        ),
        Ok(config) => put_in_force(proxy, path, config),
        Err(why) => refused(proxy, path, &why),
    }
}

/// Logs and shows on the page an edit that was not put in force.
fn refused(proxy: &Proxy, path: &std::path::Path, why: &str) {
    tracing::error!(
        "config {} not reloaded, the running config stays: {why}",
        path.display()
    );
    proxy.recent.event(
        "rejected",
        format!("edit refused, the running config stays: {why}"),
    );
}

/// Swaps a checked config in and says what changed.
fn put_in_force(proxy: &Proxy, path: &std::path::Path, config: Config) {
    let allow = config.join_allow_loopback;
    let (before, after) = proxy.live.replace(config);
    proxy.upstream.set_rules(|r| r.allow_loopback = allow);
    tracing::info!(
        "config {} reloaded: mode {}, nodes {}",
        path.display(),
        after.mode.name(),
        after.names().join(", ")
    );
    let mut what = Vec::new();
    if before.mode.name() != after.mode.name() {
        what.push(format!(
            "mode {} → {}",
            before.mode.name(),
            after.mode.name()
        ));
    }
    let (was, now) = (before.names(), after.names());
    let added: Vec<&str> = now.iter().filter(|n| !was.contains(n)).copied().collect();
    let removed: Vec<&str> = was.iter().filter(|n| !now.contains(n)).copied().collect();
    if !added.is_empty() {
        what.push(format!("added {}", added.join(", ")));
    }
    if !removed.is_empty() {
        what.push(format!("removed {}", removed.join(", ")));
    }
    if what.is_empty() {
        what.push("nothing the page shows changed".into());
    }
    proxy
        .recent
        .event("reload", format!("config reloaded: {}", what.join("; ")));
    proxy.nodes_changed(before.nodes.len(), after.nodes.len());
}
