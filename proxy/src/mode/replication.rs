//! Replication: every node holds every key.
//!
//! Writes go to all nodes, so any one node can answer a read: the data survives a node
//! going down. The price: every node stores everything, and every write costs N
//! requests; and a node that was down misses the writes made meanwhile.

use std::sync::Arc;

use super::{Mode, Params};
use crate::placement::everywhere::Everywhere;
use crate::placement::Placement;

pub struct Replication;

impl Mode for Replication {
    fn name(&self) -> &'static str {
        "replication"
    }

    /// Every node, in config order: writes go to all at once; reads try them in order,
    /// so the first node answers as long as it is up.
    fn placement(&self, names: Vec<String>, _params: &Params) -> Arc<dyn Placement> {
        Arc::new(Everywhere { names })
    }

    /// Every node holds every key: R is N.
    fn copies(&self, nodes: usize, _params: &Params) -> usize {
        nodes.max(1)
    }

    fn rule(&self) -> &'static str {
        "every key lives on every node: writes go to all nodes, reads ask them in order until one has it"
    }
}
