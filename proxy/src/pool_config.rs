//! `pools:` in the config: several clusters on one proxy, each with its own mode and
//! nodes, so the class sees sharding and replication side by side on the same writes.
//!
//! ```yaml
//! pools:
//!   - name: sharded            # answers under /sharded/ (and, being first, at the root)
//!     mode: sharding
//!     nodes: [{name: s1, url: "http://localhost:5000"}, ...]
//!   - name: replicated
//!     mode: replication
//!     mirror: true             # also receives every write made at the root
//!     write_quorum: 2          # each pool has its own mode parameters
//!     nodes: [...]
//! timeout_ms: 2000             # everything else (timeouts, tokens, limits) is shared
//! ```
//!
//! Each pool is checked as the one-cluster config it amounts to (the shared settings
//! with its own mode, nodes and parameters), and its errors say which pool.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::config::{Config, NodeConfig};
use crate::consistency::Written;

/// The name a one-cluster config's only pool goes by.
pub const MAIN: &str = "main";

/// Paths the proxy answers itself: no pool may be called that.
const ROUTES: &[&str] = &[
    "put",
    "get",
    "delete",
    "clear",
    "dump",
    "health",
    "state",
    "state.json",
    "state.js",
    "events",
    "metrics",
    "explain",
    "config",
    "join",
    "leave",
    "rebalance",
    "chaos",
];

/// One pool as the file writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    pub mode: String,
    #[serde(default)]
    pub nodes: Vec<NodeConfig>,
    /// Also receives every write made at the root (the first pool's address).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mirror: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnodes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_quorum: Option<Written>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_quorum: Option<Written>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_repair: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hinted_handoff: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anti_entropy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_entropy_ms: Option<u64>,
}

/// A pool ready to run: its name, whether it mirrors the root, and the one-cluster
/// config it amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub name: String,
    pub mirror: bool,
    pub config: Config,
}

impl PoolConfig {
    /// The shared settings of `top` with this pool's mode, nodes and parameters.
    fn as_config(&self, top: &Config) -> Config {
        Config {
            mode: self.mode.clone(),
            nodes: self.nodes.clone(),
            replicas: self.replicas,
            vnodes: self.vnodes,
            write_quorum: self.write_quorum.clone(),
            read_quorum: self.read_quorum.clone(),
            read_repair: self.read_repair,
            hinted_handoff: self.hinted_handoff,
            anti_entropy: self.anti_entropy,
            anti_entropy_ms: self.anti_entropy_ms,
            pools: Vec::new(),
            ..top.clone()
        }
    }

    /// This pool written back, with `config`'s mode, nodes and parameters (joined nodes
    /// included), for `GET /config`.
    pub fn from_config(name: &str, mirror: bool, config: &Config) -> PoolConfig {
        PoolConfig {
            name: name.to_string(),
            mode: config.mode.clone(),
            nodes: config.nodes.clone(),
            mirror,
            replicas: config.replicas,
            vnodes: config.vnodes,
            write_quorum: config.write_quorum.clone(),
            read_quorum: config.read_quorum.clone(),
            read_repair: config.read_repair,
            hinted_handoff: config.hinted_handoff,
            anti_entropy: config.anti_entropy,
            anti_entropy_ms: config.anti_entropy_ms,
        }
    }
}

/// The pools a config runs: its `pools:`, or itself as the one pool [`MAIN`].
pub fn specs(config: &Config) -> Vec<PoolSpec> {
    if config.pools.is_empty() {
        return vec![PoolSpec {
            name: MAIN.into(),
            mirror: false,
            config: config.clone(),
        }];
    }
    config
        .pools
        .iter()
        .map(|p| PoolSpec {
            name: p.name.clone(),
            mirror: p.mirror,
            config: p.as_config(config),
        })
        .collect()
}

/// The checks on `pools:`: no top-level mode or nodes beside it, names unique, safe in
/// a URL and not a route, the first pool not a mirror, and each pool a good cluster.
pub fn check(config: &Config) -> Result<(), String> {
    if !config.mode.is_empty() || !config.nodes.is_empty() {
        return Err(
            "a config with `pools:` gives each pool its own `mode:` and `nodes:`; remove the \
             top-level ones"
                .into(),
        );
    }
    let top_level = [
        ("replicas", config.replicas.is_some()),
        ("vnodes", config.vnodes.is_some()),
        ("write_quorum", config.write_quorum.is_some()),
        ("read_quorum", config.read_quorum.is_some()),
        ("read_repair", config.read_repair),
        ("hinted_handoff", config.hinted_handoff),
        ("anti_entropy", config.anti_entropy),
        ("anti_entropy_ms", config.anti_entropy_ms.is_some()),
    ];
    if let Some((field, _)) = top_level.iter().find(|(_, set)| *set) {
        return Err(format!(
            "{field} belongs to a pool when the config has `pools:`: move it into the pools it \
             is for"
        ));
    }
    let mut seen = HashSet::new();
    for (i, pool) in config.pools.iter().enumerate() {
        check_name(&pool.name)?;
        if !seen.insert(pool.name.as_str()) {
            return Err(format!(
                "two pools are named '{}': every pool needs its own name (it is its URL, \
                 /{}/...)",
                pool.name, pool.name
            ));
        }
        if i == 0 && pool.mirror {
            return Err(format!(
                "pool '{}' is first, so it already answers at the root: `mirror: true` is for \
                 the other pools",
                pool.name
            ));
        }
        pool.as_config(config)
            .check()
            .map_err(|e| format!("pool '{}': {e}", pool.name))?;
    }
    Ok(())
}

/// A pool's name is the first part of its URLs: letters, digits, `-` and `_`, and not
/// one of the proxy's own routes.
pub fn check_name(name: &str) -> Result<(), String> {
    let safe = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !safe {
        return Err(format!(
            "pool name {name:?} must be 1 to 32 letters, digits, '-' or '_': it is the pool's \
             URL (/{name}/put)"
        ));
    }
    if ROUTES.contains(&name) {
        return Err(format!(
            "pool name '{name}' is one of the proxy's own routes (/{name}): pick another"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "pools:\n  - name: sharded\n    mode: sharding\n    nodes:\n      - name: s1\n        url: http://x:1\n  - name: replicated\n    mode: replication\n    mirror: true\n    write_quorum: 1\n    nodes:\n      - name: r1\n        url: http://x:2\ntimeout_ms: 500\n";

    #[test]
    fn pools_become_clusters_with_the_shared_settings() {
        let c = Config::parse(TWO).unwrap();
        let specs = specs(&c);
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["sharded", "replicated"]);
        assert!(!specs[0].mirror && specs[1].mirror);
        assert_eq!(specs[1].config.mode, "replication");
        assert_eq!(specs[1].config.timeout_ms, Some(500));
        assert!(specs[1].config.write_quorum.is_some());
        assert!(specs[0].config.write_quorum.is_none());
    }

    #[test]
    fn bad_pools_are_one_sentence() {
        for (text, word) in [
            (
                TWO.replace("name: replicated", "name: sharded"),
                "two pools are named 'sharded'",
            ),
            (TWO.replace("name: replicated", "name: state"), "own routes"),
            (
                TWO.replace("name: replicated", "name: a/b"),
                "letters, digits",
            ),
            (
                TWO.replace("mode: replication", "mode: nope"),
                "pool 'replicated': unknown mode",
            ),
            (format!("mode: sharding\n{TWO}"), "remove the top-level"),
            (format!("replicas: 2\n{TWO}"), "belongs to a pool"),
            (
                TWO.replace("mode: sharding\n", "mode: sharding\n    mirror: true\n"),
                "first",
            ),
        ] {
            let err = Config::parse(&text).unwrap_err();
            assert!(err.contains(word), "{text:?}: {err}");
        }
    }

    #[test]
    fn one_cluster_is_one_pool() {
        let c =
            Config::parse("mode: sharding\nnodes:\n  - name: a\n    url: http://x:1\n").unwrap();
        let specs = specs(&c);
        assert_eq!((specs.len(), specs[0].name.as_str()), (1, MAIN));
        assert_eq!(specs[0].config, c);
    }
}
