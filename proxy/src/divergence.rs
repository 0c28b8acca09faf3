//! Where the replicas disagree: keys missing on some nodes, or with different values on
//! different nodes. In replication every node should hold every key with the same value;
//! a node that was down while writes went on, or restarted empty, is where the lesson of
//! repair begins.
//!
//! It needs every pair of every node, so it is computed from a full gather (see
//! [`crate::snapshot`]), made only when some node's count or digest changed.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::overview::NodeView;

/// How many disagreeing keys are listed at most.
pub const MAX_LISTED: usize = 100;

/// A key the replicas disagree on: missing on some, or with different values.
#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    pub key: String,
    pub missing_on: Vec<String>,
    /// Node name → value, when the values differ.
    pub values: BTreeMap<String, String>,
}

/// The keys the nodes that answered with data disagree on.
pub fn divergence(views: &[NodeView]) -> Vec<Divergence> {
    let readable: Vec<&NodeView> = views.iter().filter(|v| v.up && v.count.is_some()).collect();
    if readable.len() < 2 {
        return Vec::new();
    }
    let maps: Vec<BTreeMap<&str, &str>> = readable
        .iter()
        .map(|v| {
            v.pairs
                .iter()
                .map(|(k, val)| (k.as_str(), val.as_str()))
                .collect()
        })
        .collect();
    let keys: HashSet<&str> = maps.iter().flat_map(|m| m.keys().copied()).collect();
    let mut keys: Vec<&str> = keys.into_iter().collect();
    keys.sort_unstable();
    let mut out = Vec::new();
    for key in keys {
        let missing_on: Vec<String> = readable
            .iter()
            .zip(&maps)
            .filter(|(_, m)| !m.contains_key(key))
            .map(|(v, _)| v.node.name.clone())
            .collect();
        let values: BTreeMap<String, String> = readable
            .iter()
            .zip(&maps)
            .filter_map(|(v, m)| m.get(key).map(|val| (v.node.name.clone(), val.to_string())))
            .collect();
        let distinct: HashSet<&String> = values.values().collect();
        if !missing_on.is_empty() || distinct.len() > 1 {
            let values = if distinct.len() > 1 {
                values
            } else {
                BTreeMap::new()
            };
            out.push(Divergence {
                key: key.to_string(),
                missing_on,
                values,
            });
        }
        if out.len() == MAX_LISTED {
            break;
        }
    }
    out
}
