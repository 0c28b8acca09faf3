//! Replication: every node holds every key.
//!
//! Writes go to all nodes, so any one node can answer a read: the data survives a node
//! going down. The price: every node stores everything, and every write costs N
//! requests; and a node that was down misses the writes made meanwhile.

use super::{Mode, Op, Plan};

pub struct Replication;

impl Mode for Replication {
    fn name(&self) -> &'static str {
        "replication"
    }

    /// Writes go to every node at once; reads try the nodes in config order, so the
    /// first node answers as long as it is up.
    fn plan(&self, op: Op, _key: &str, nodes: usize) -> Plan {
        let all: Vec<usize> = (0..nodes).collect();
        match op {
            Op::Write => Plan::All(all),
            Op::Read => Plan::FirstFound(all),
        }
    }

    fn rule(&self) -> &'static str {
        "every key lives on every node: writes go to all nodes, reads ask them in order until one has it"
    }
}
