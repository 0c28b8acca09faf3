//! Modes: where a key's data lives, which is the whole lesson.
//!
//! A mode only decides *which nodes, in what order, and what counts as success*: it
//! returns a [`Plan`], and [`crate::forward`] carries the plan out over HTTP. So a new
//! placement strategy is one new file here, with one line added to [`by_name`].

mod replication;
mod sharding;

use std::sync::Arc;

pub use sharding::{placement, sha256, sha256_hex};

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
}

impl Plan {
    /// The nodes the plan names, in its order.
    pub fn nodes(&self) -> &[usize] {
        match self {
            Plan::One(i) => std::slice::from_ref(i),
            Plan::All(list) | Plan::FirstFound(list) => list,
        }
    }
}

/// A way of placing keys on nodes.
pub trait Mode: Send + Sync {
    /// The name used in the config's `mode:` and shown on every page.
    fn name(&self) -> &'static str;

    /// Where a request for `key` goes when there are `nodes` nodes (at least one).
    fn plan(&self, op: Op, key: &str, nodes: usize) -> Plan;

    /// One sentence, for the /state page and `/explain`, on how this mode places a key.
    fn rule(&self) -> &'static str;
}

/// Every mode a config may name.
pub const NAMES: &[&str] = &["sharding", "replication"];

/// The mode a config names, or `None` for a name not in [`NAMES`].
pub fn by_name(name: &str) -> Option<Arc<dyn Mode>> {
    match name {
        "sharding" => Some(Arc::new(sharding::Sharding)),
        "replication" => Some(Arc::new(replication::Replication)),
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
