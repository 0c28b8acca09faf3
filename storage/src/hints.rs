//! Hints: copies a node holds *for another node* that could not take them (sloppy quorum,
//! hinted handoff).
//!
//! When a replica is down, the proxy writes its copy to another node as a hint for it,
//! and later hands the hint over to the replica once it is back (`GET /hints`, then
//! `DELETE /hints?for=..&key=..&version=..`). A hint is not this node's data: it never
//! answers `/get`, is not in `/dump`, the key counts or the digests. It does weigh in the
//! byte budget, since it takes memory all the same.
//!
//! Among hints for the same node and key the newest version wins, as among copies.

use std::collections::{HashMap, HashSet};

use crate::entry::Entry;

/// The longest node name a hint may be held for.
pub const MAX_NODE_NAME: usize = 64;

/// Every hint held, by the node it is for, then by key.
#[derive(Default)]
pub struct Hints {
    /// One set per absent node, so handing back one node's hints reads only those.
    by_node: HashMap<Box<str>, HashSet<Entry>>,
    /// How many hints in all, kept so `/health` does not count them.
    count: usize,
}

/// One hint, copied out for `/hints`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub node: String,
    pub key: String,
    pub version: Option<String>,
    /// The value's JSON text; `None` for a tombstone (a deletion to hand over).
    pub value: Option<String>,
}

/// Whether `name` is a node name a hint may be held for: 1–64 characters, none of them
/// a control character (it is shown on pages and in logs).
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= MAX_NODE_NAME && !name.chars().any(char::is_control)
}

impl Hints {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn get(&self, node: &str, key: &str) -> Option<&Entry> {
        self.by_node.get(node)?.get(key.as_bytes())
    }

    /// Holds `entry` for `node`, replacing (and returning) the hint it held for that key.
    pub fn set(&mut self, node: &str, entry: Entry) -> Option<Entry> {
        let old = match self.by_node.get_mut(node) {
            Some(set) => set.replace(entry),
            None => {
                self.by_node.entry(node.into()).or_default().insert(entry);
                None
            }
        };
        if old.is_none() {
            self.count += 1;
        }
        old
    }

    /// Drops the hint for `node` and `key`, returning it.
    pub fn remove(&mut self, node: &str, key: &str) -> Option<Entry> {
        let set = self.by_node.get_mut(node)?;
        let gone = set.take(key.as_bytes())?;
        if set.is_empty() {
            self.by_node.remove(node);
        }
        self.count -= 1;
        Some(gone)
    }

    /// Every hint, as (node, copy), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.by_node
            .iter()
            .flat_map(|(node, set)| set.iter().map(move |e| (&**node, e)))
    }

    /// The first `limit` hints by (node, key), copied out.
    pub fn first(&self, limit: usize) -> Vec<Hint> {
        let mut all: Vec<(&str, &Entry)> = self.iter().collect();
        let order = |a: &(&str, &Entry), b: &(&str, &Entry)| {
            (a.0, a.1.key_bytes()).cmp(&(b.0, b.1.key_bytes()))
        };
        if limit < all.len() {
            if limit > 0 {
                all.select_nth_unstable_by(limit - 1, order);
            }
            all.truncate(limit);
        }
        all.sort_unstable_by(order);
        all.into_iter()
            .map(|(node, e)| Hint {
                node: node.to_string(),
                key: e.key().to_string(),
                version: e.version().map(str::to_string),
                value: (!e.is_tombstone()).then(|| e.value().to_string()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_kept_per_node_and_key() {
        let mut h = Hints::default();
        assert!(h.set("kv2", Entry::new("a", "1")).is_none());
        assert!(h.set("kv3", Entry::new("a", "2")).is_none());
        assert_eq!(
            h.set("kv2", Entry::new("a", "3"))
                .map(|e| e.value().to_string()),
            Some("1".into())
        );
        assert_eq!(h.len(), 2);
        assert_eq!(h.get("kv2", "a").map(Entry::value), Some("3"));
        let listed: Vec<(String, String)> =
            h.first(10).into_iter().map(|x| (x.node, x.key)).collect();
        assert_eq!(
            listed,
            [("kv2".into(), "a".into()), ("kv3".into(), "a".into())]
        );
        assert_eq!(h.first(1).len(), 1);
        assert!(h.remove("kv2", "a").is_some());
        assert!(h.remove("kv2", "a").is_none());
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn node_names() {
        assert!(valid_node_name("kv-2"));
        assert!(valid_node_name(&"é".repeat(64)));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name(&"x".repeat(65)));
        assert!(!valid_node_name("a\nb"));
    }
}
