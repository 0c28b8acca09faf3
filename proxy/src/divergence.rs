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
    /// Node name → its value, for every node that has the key.
    pub values: BTreeMap<String, String>,
}

/// How many distinct keys the nodes that answered hold, a key on several nodes once.
pub fn distinct_keys(views: &[NodeView]) -> usize {
    keys(views).len()
}

/// Every key the nodes that answered hold, each once, sorted.
pub fn keys(views: &[NodeView]) -> Vec<&str> {
    let keys: std::collections::BTreeSet<&str> = views
        .iter()
        .filter(|v| v.up)
        .flat_map(|v| v.pairs.iter().map(|(k, _)| k.as_str()))
        .collect();
    keys.into_iter().collect()
}

/// `a` before `b` as a person counts: `key-2` before `key-10` (digit runs compare as
/// numbers, the rest as text).
pub fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (x.peek().copied(), y.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let run = |it: &mut std::iter::Peekable<std::str::Chars>| {
                    let mut s = String::new();
                    while let Some(c) = it.peek().copied().filter(char::is_ascii_digit) {
                        s.push(c);
                        it.next();
                    }
                    s
                };
                let (m, n) = (run(&mut x), run(&mut y));
                let (m, n) = (m.trim_start_matches('0'), n.trim_start_matches('0'));
                let order = m.len().cmp(&n.len()).then_with(|| m.cmp(n));
                if order != std::cmp::Ordering::Equal {
                    return order;
                }
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(&d);
                }
                x.next();
                y.next();
            }
        }
    }
}

/// The keys the nodes that answered with data disagree on, in natural order, each with
/// every node's value and the nodes it is missing on.
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
    keys.sort_unstable_by(|a, b| natural(a, b));
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

#[cfg(test)]
mod tests {
    use super::natural;

    #[test]
    fn keys_sort_as_people_count() {
        let mut keys = vec!["key-10", "key-2", "key-1", "a", "key-02x", "b3", "b10"];
        keys.sort_by(|a, b| natural(a, b));
        assert_eq!(
            keys,
            ["a", "b3", "b10", "key-1", "key-2", "key-02x", "key-10"]
        );
    }
}
