//! The nodes the proxy sends to right now, and the mode that places keys on them.
//!
//! A [`Cluster`] never changes once built. A config reload or a student's join builds a
//! new one and swaps it in ([`Live::replace`]); a request in flight keeps the `Arc` it
//! started with, so it finishes against the cluster it began with and nothing is dropped.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::config::{Config, NodeConfig};
use crate::consistency::Consistency;
use crate::mode::{self, Mode, Op, Plan};
use crate::placement::Placement;

fn nodes_of(joined: &[Joined]) -> Vec<NodeConfig> {
    joined.iter().map(|j| j.node.clone()).collect()
}

/// One node as the proxy addresses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    pub name: String,
    /// The URL as configured, for pages and errors.
    pub url: String,
    /// The URL without its trailing `/`, so `base + "/get?key=..."` never doubles a slash
    /// and a path prefix (`https://host/alice`) is kept.
    pub base: String,
    /// It came through `POST /join` rather than from the config file.
    pub joined: bool,
}

impl NodeAddr {
    pub fn new(config: &NodeConfig, joined: bool) -> NodeAddr {
        NodeAddr {
            name: config.name.clone(),
            url: config.url.clone(),
            base: config.url.trim_end_matches('/').to_string(),
            joined,
        }
    }
}

/// A mode over a list of nodes: everything a request needs to be placed.
pub struct Cluster {
    pub mode: Arc<dyn Mode>,
    /// Where keys go over these very nodes, built once with the cluster.
    pub placement: Arc<dyn Placement>,
    /// How many nodes hold each key (R; N in replication).
    pub copies: usize,
    /// The config file's nodes, then the joined ones: placement counts them in this order.
    pub nodes: Vec<NodeAddr>,
    pub timeout: Duration,
    /// Quorums and healing ([`crate::consistency`]).
    pub consistency: Consistency,
    /// The config file as loaded (its nodes only), for `GET /config` and joins.
    pub config: Config,
}

impl Cluster {
    /// Builds the cluster a checked config describes, with the joined nodes after its own.
    pub fn new(config: Config, joined: &[NodeConfig]) -> Cluster {
        let mode = mode::by_name(&config.mode)
            .or_else(|| mode::by_name(mode::NAMES[0]))
            .expect("mode::NAMES names a mode");
        let mut nodes: Vec<NodeAddr> = config
            .nodes
            .iter()
            .map(|n| NodeAddr::new(n, false))
            .collect();
        for j in joined {
            if !nodes.iter().any(|n| n.name == j.name) {
                nodes.push(NodeAddr::new(j, true));
            }
        }
        let params = config.params();
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        Cluster {
            placement: mode.placement(names, &params),
            copies: mode.copies(nodes.len(), &params),
            mode,
            timeout: config.timeout(),
            consistency: config.consistency(),
            nodes,
            config,
        }
    }

    /// A key's homes: the nodes that hold its copies, most preferred first.
    pub fn homes(&self, key: &str) -> Vec<usize> {
        self.placement.preference(key, self.copies)
    }

    /// Where a request for `key` goes: the mode's policy over the key's homes, or
    /// Dynamo's ([`mode::quorum`]) when the config sets quorums or healing for this op.
    pub fn plan(&self, op: Op, key: &str) -> Plan {
        let c = &self.consistency;
        let dynamo = match op {
            Op::Write => c.quorum_writes(),
            Op::Read => c.quorum_reads(),
        };
        if !dynamo {
            return self.mode.plan(op, self.homes(key));
        }
        let listed = if c.hinted_handoff {
            self.nodes.len()
        } else {
            self.copies
        };
        let mut homes = self.placement.preference(key, listed);
        let spares = homes.split_off(self.copies.min(homes.len()));
        mode::quorum(op, homes, spares, c)
    }

    pub fn names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// The effective config: the file's, with the joined nodes appended (tokens left out).
    pub fn effective_config(&self) -> Config {
        let mut c = self.config.clone();
        c.join_token = None;
        c.admin_token = None;
        c.nodes = self
            .nodes
            .iter()
            .map(|n| NodeConfig {
                name: n.name.clone(),
                url: n.url.clone(),
            })
            .collect();
        c
    }
}

/// A node that joined through `POST /join`, and the secret it was handed: leaving, or
/// taking the name under another URL, needs it (or the teacher's admin token).
#[derive(Debug, Clone)]
pub struct Joined {
    pub node: NodeConfig,
    pub secret: String,
    /// The node's `instance` (its `/health`) when it joined: a rejoin without the secret
    /// gets a new one only from a node that restarted since (a new instance).
    pub instance: Option<String>,
}

/// The cluster in force, swapped whole on a reload or a join.
pub struct Live {
    /// A std lock: it is held only to clone or replace an `Arc`, never across an await.
    current: RwLock<Arc<Cluster>>,
    /// Nodes that joined, kept apart from the file so they survive a reload of it.
    /// Always locked before `current`, by every writer, so a join and a reload cannot
    /// interleave and drop one another's change.
    joined: Mutex<Vec<Joined>>,
}

impl Live {
    pub fn new(config: Config) -> Live {
        Live {
            current: RwLock::new(Arc::new(Cluster::new(config, &[]))),
            joined: Mutex::new(Vec::new()),
        }
    }

    /// The cluster to serve one request with.
    pub fn get(&self) -> Arc<Cluster> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts a newly loaded config file in force, keeping the joined nodes. Answers the
    /// cluster it replaced and the new one.
    pub fn replace(&self, config: Config) -> (Arc<Cluster>, Arc<Cluster>) {
        // Held until the swap: a join that comes in meanwhile waits, then joins this one.
        let joined = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let cluster = Arc::new(Cluster::new(config, &nodes_of(&joined)));
        let before = std::mem::replace(&mut *current, cluster.clone());
        (before, cluster)
    }

    /// Changes the joined nodes with `change` and rebuilds the cluster around them.
    /// `change` answers `Err` to refuse; nothing changes then.
    pub fn change_joined<T, E>(
        &self,
        change: impl FnOnce(&Cluster, &mut Vec<Joined>) -> Result<T, E>,
    ) -> Result<(T, Arc<Cluster>), E> {
        let mut joined = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let mut next = joined.clone();
        let out = change(&current, &mut next)?;
        *joined = next;
        let cluster = Arc::new(Cluster::new(current.config.clone(), &nodes_of(&joined)));
        *current = cluster.clone();
        Ok((out, cluster))
    }

    /// The joined node `name`, if it joined.
    pub fn joined(&self, name: &str) -> Option<Joined> {
        let joined = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        joined.iter().find(|j| j.node.name == name).cloned()
    }
}
