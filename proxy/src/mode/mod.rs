//! Modes: where a key's data lives, which is the whole lesson.
//!
//! A mode is parsed from the config with its parameters ([`Params`]: `replicas`,
//! `vnodes`). It builds a [`Placement`] once per cluster (which nodes a key prefers, in
//! what order: [`crate::placement`]) and says how many copies a key has; its policy
//! ([`Mode::plan`]) turns a key's homes into a [`Plan`]: which nodes, in what order, what
//! counts as success. [`crate::forward`] carries any plan out over HTTP. A new mode is
//! one new file here, with one line added to [`by_name`].

mod consistent_hashing;
mod rendezvous;
mod replication;
mod sharding;

use std::sync::Arc;

use crate::consistency::Consistency;
use crate::placement::Placement;

pub use sharding::{placement, sha256, sha256_hex};

/// A mode's parameters from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// How many nodes hold each key (`replicas: R`, 1 when not given).
    pub replicas: usize,
    /// Tokens per node on the ring (`vnodes: V`).
    pub vnodes: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            replicas: 1,
            vnodes: crate::placement::ring::DEFAULT_VNODES,
        }
    }
}

/// What a request does to the data; all a mode needs to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `GET /get`
    Read,
    /// `POST /put`, `DELETE /delete`
    Write,
}

/// Which nodes a request goes to, and how their answers become the proxy's answer.
/// Nodes are named by their index in the config's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Send to this one node; its answer is the proxy's answer, unchanged.
    One(usize),
    /// Send to all of these nodes at once; it worked when at least one node says so.
    All(Vec<usize>),
    /// Ask these nodes one by one, in this order; the first that has the key answers.
    FirstFound(Vec<usize>),
    /// Dynamo's rules, when the config sets quorums or healing ([`quorum`]).
    Quorum(Quorum),
}

/// A request under quorums: carried out by [`crate::quorum`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    pub op: Op,
    /// The key's copies, most preferred first.
    pub homes: Vec<usize>,
    /// W for a write, R for a read: how many copies must answer.
    pub need: usize,
    /// A write answers only once every home answered (no W given: hints only); a read
    /// asks every home at once (read repair must see them all to know which are stale).
    pub all: bool,
    /// The next nodes of the key's list, in order: with hinted handoff, a home that
    /// fails is stood in for by the first spare left, which keeps the write as a hint.
    pub spares: Vec<usize>,
    /// Read repair: older or missing copies a read saw get the newest written back.
    pub repair: bool,
}

impl Plan {
    /// The nodes the plan names, in its order (for a quorum, its homes, then its spares).
    pub fn nodes(&self) -> Vec<usize> {
        match self {
            Plan::One(i) => vec![*i],
            Plan::All(list) | Plan::FirstFound(list) => list.clone(),
            Plan::Quorum(q) => q.homes.iter().chain(&q.spares).copied().collect(),
        }
    }
}

/// Dynamo's policy: a write goes to every home at once and answers once W stored it
/// (hints on spares count: a sloppy quorum); a read asks R homes at once (every home
/// with read repair) and the newest copy wins. A quorum not given is one copy.
pub fn quorum(op: Op, homes: Vec<usize>, spares: Vec<usize>, c: &Consistency) -> Plan {
    let copies = homes.len();
    let (given, all) = match op {
        Op::Write => (c.write_quorum, c.write_quorum.is_none()),
        Op::Read => (c.read_quorum, c.read_repair),
    };
    Plan::Quorum(Quorum {
        op,
        need: given.map_or(1, |q| q.of(copies)),
        all,
        spares: if op == Op::Write && c.hinted_handoff {
            spares
        } else {
            Vec::new()
        },
        repair: op == Op::Read && c.read_repair,
        homes,
    })
}

/// A way of placing keys on nodes.
pub trait Mode: Send + Sync {
    /// The name used in the config's `mode:` and shown on every page.
    fn name(&self) -> &'static str;

    /// One sentence, for the /state page and `/explain`, on how this mode places a key.
    fn rule(&self) -> &'static str;

    /// Where keys go over these nodes (in the cluster's order): built once per cluster.
    fn placement(&self, names: Vec<String>, params: &Params) -> Arc<dyn Placement>;

    /// How many nodes hold each key when there are `nodes` (at least one): R, at most N.
    fn copies(&self, nodes: usize, params: &Params) -> usize {
        params.replicas.clamp(1, nodes.max(1))
    }

    /// The policy: a request for a key whose homes are `homes` (its first copies, most
    /// preferred first). One home answers alone; writes go to every home at once and
    /// succeed when one stored it; reads ask the homes in order, and the first that has
    /// the key answers.
    fn plan(&self, op: Op, homes: Vec<usize>) -> Plan {
        match (op, homes.as_slice()) {
            (_, [only]) => Plan::One(*only),
            (Op::Write, _) => Plan::All(homes),
            (Op::Read, _) => Plan::FirstFound(homes),
        }
    }
}

/// Every mode a config may name.
pub const NAMES: &[&str] = &[
    "sharding",
    "replication",
    "consistent-hashing",
    "rendezvous",
];

/// The modes that take `replicas:` (replication keeps every key on every node).
pub const WITH_REPLICAS: &[&str] = &["sharding", "consistent-hashing", "rendezvous"];

/// The mode a config names, or `None` for a name not in [`NAMES`].
pub fn by_name(name: &str) -> Option<Arc<dyn Mode>> {
    match name {
        "sharding" => Some(Arc::new(sharding::Sharding)),
        "replication" => Some(Arc::new(replication::Replication)),
        "consistent-hashing" => Some(Arc::new(consistent_hashing::ConsistentHashing)),
        "rendezvous" => Some(Arc::new(rendezvous::Rendezvous)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_has_a_mode() {
        for name in NAMES {
            assert_eq!(by_name(name).map(|m| m.name()), Some(*name));
        }
        assert!(by_name("shardnig").is_none());
    }
}
